/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Heap allocation for the libraries: every malloc-family call inside
 * libdax, libsandbox and libshm goes through these, so that
 *  - each failure is an ordinary NULL the caller turns into -ENOMEM
 *    (nothing here aborts, unlike g_new), and
 *  - tests can fail the Nth allocation on purpose (mk_alloc_fail_after)
 *    and check that the failed call left its object exactly as it was.
 *
 * The fault injector is a hidden counter in common/, so it is never
 * exported; only test programs that link a library's internal convenience
 * library can reach it. Disarmed, it costs one relaxed load per call.
 */
#pragma once

#include <stddef.h>
#include <stdlib.h>

#include "macro.h"

/* > 0: that many more allocations succeed, then one fails; 0: disarmed. */
extern long mk_alloc_countdown;
int mk_alloc_fail_now(void);

static inline int mk_alloc_should_fail(void)
{
	return mk_unlikely(__atomic_load_n(&mk_alloc_countdown, __ATOMIC_RELAXED) != 0) &&
	       mk_alloc_fail_now();
}

void *mk_malloc(size_t size);
void *mk_calloc(size_t nmemb, size_t size);
/* realloc; on failure ptr is untouched (and still owned by the caller). */
void *mk_realloc(void *ptr, size_t size);
/* realloc of nmemb * size; an overflowing product fails like any allocation (NULL, ENOMEM). */
void *mk_reallocarray(void *ptr, size_t nmemb, size_t size);
char *mk_strdup(const char *s);
void *mk_memdup(const void *p, size_t size);

/*
 * Test-only: let n more allocations succeed (in any thread), then fail the
 * next one with ENOMEM, then disarm. n < 0 disarms at once.
 * mk_alloc_fail_fired() says whether the armed failure happened (and resets that).
 */
void mk_alloc_fail_after(long n);
int mk_alloc_fail_fired(void);
