/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * "Fail each allocation in turn" (and count the open fds a failed run
 * must not leak), shared by the tests that link a library's internal
 * convenience library and so reach common/alloc.h's hidden fault
 * injector (mk_alloc_fail_after, mk_alloc_fail_fired).
 */
#pragma once

#include <errno.h>
#include <glib.h>
#include <stdbool.h>

#include "common/alloc.h"

/*
 * Evaluate op (an int or int64_t expression, into r) with its (n+1)th
 * allocation failing, for n = 0, 1, 2, ... until a run makes no allocation
 * fail, i.e. until op ran untouched by the injector. Every failed run must
 * return -ENOMEM and pass check (statements that prove the failed call
 * changed and leaked nothing; they run with the injector disarmed), and the
 * last run must succeed (r >= 0: the caller checks its exact value).
 * Evaluates to the number of failed runs, i.e. the allocations op makes.
 * A macro rather than a function so that op and check are written in
 * place, over the caller's own variables.
 */
#define MK_FAIL_EACH_ALLOC(r, op, check) ({				\
	long n_ = 0;							\
	for (;; n_++) {							\
		bool fired_;						\
		mk_alloc_fail_after(n_);				\
		r = (op);						\
		fired_ = mk_alloc_fail_fired();				\
		mk_alloc_fail_after(-1);				\
		if (!fired_)						\
			break;						\
		g_assert_cmpint(r, ==, -ENOMEM);			\
		check;							\
		g_assert_cmpint(n_, <, 10000);				\
	}								\
	g_assert_cmpint(r, >=, 0);					\
	n_;								\
})

/* Open file descriptors of this process, for "a failed call leaks none". */
static inline unsigned mk_test_open_fds(void)
{
	GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
	unsigned n = 0;

	g_assert_nonnull(d);
	while (g_dir_read_name(d))
		n++;
	g_dir_close(d);
	return n;
}
