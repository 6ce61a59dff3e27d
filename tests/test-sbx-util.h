/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What libsandbox's tests share: failing each allocation of an operation
 * on purpose (common/alloc.h's hidden injector; the tests link the internal
 * library so they reach it), and a region's observable state to compare
 * before and after a failed call.
 */
#pragma once

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "sandbox.h"

/*
 * Evaluate op (an int or int64_t expression, into r) with its (n+1)th
 * allocation failing, for n = 0, 1, 2, ... until a run makes no allocation
 * fail, i.e. until op succeeds untouched. Every failed run must return
 * -ENOMEM and pass check (the statement that proves the object unchanged).
 * Evaluates to the number of failed runs (the allocations op makes).
 */
#define SBX_FAIL_EACH_ALLOC(r, op, check) ({				\
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
	}								\
	g_assert_cmpint(r, >=, 0);					\
	n_;								\
})

/* What a caller can observe of a region. */
struct sbx_mem_image {
	uint64_t size;
	uint8_t *bytes;
	struct sbx_mem_stats st;
};

static inline void sbx_mem_image_take(struct sbx_mem *m, struct sbx_mem_image *im)
{
	im->size = sbx_mem_size(m);
	im->bytes = g_malloc(im->size);
	g_assert_cmpint(sbx_mem_read(m, 0, im->bytes, im->size), ==, 0);
	g_assert_cmpint(sbx_mem_stats(m, &im->st), ==, 0);
}

static inline void sbx_mem_image_check(struct sbx_mem *m, const struct sbx_mem_image *im)
{
	struct sbx_mem_stats st;
	uint8_t *now;

	g_assert_cmpuint(sbx_mem_size(m), ==, im->size);
	now = g_malloc(im->size);
	g_assert_cmpint(sbx_mem_read(m, 0, now, im->size), ==, 0);
	g_assert_cmpmem(now, im->size, im->bytes, im->size);
	g_free(now);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.size, ==, im->st.size);
	g_assert_cmpuint(st.dirty_pages, ==, im->st.dirty_pages);
	g_assert_cmpuint(st.private_bytes, ==, im->st.private_bytes);
	g_assert_cmpuint(st.shared_bytes, ==, im->st.shared_bytes);
	g_assert_cmpuint(st.restores_copy, ==, im->st.restores_copy);
	g_assert_cmpuint(st.restores_remap, ==, im->st.restores_remap);
	g_assert_cmpuint(st.restores_trim, ==, im->st.restores_trim);
	g_assert_cmpuint(st.pages_restored, ==, im->st.pages_restored);
}

static inline void sbx_mem_image_free(struct sbx_mem_image *im)
{
	g_free(im->bytes);
	im->bytes = NULL;
}
