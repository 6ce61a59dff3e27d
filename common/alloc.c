/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Allocation wrappers with a fault injector for tests; see alloc.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"

long mk_alloc_countdown;	/* n + 1 while armed for "n more succeed" */
static int fired;

int mk_alloc_fail_now(void)
{
	long c = __atomic_load_n(&mk_alloc_countdown, __ATOMIC_RELAXED);

	while (c > 0) {
		/* 1 means: this call is the one to fail, and it disarms */
		if (__atomic_compare_exchange_n(&mk_alloc_countdown, &c, c - 1, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			if (c != 1)
				return 0;
			__atomic_store_n(&fired, 1, __ATOMIC_RELEASE);
			return 1;
		}
	}
	return 0;
}

void mk_alloc_fail_after(long n)
{
	__atomic_store_n(&fired, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&mk_alloc_countdown, n < 0 ? 0 : n + 1, __ATOMIC_RELEASE);
}

int mk_alloc_fail_fired(void)
{
	return __atomic_exchange_n(&fired, 0, __ATOMIC_ACQ_REL);
}

void *mk_malloc(size_t size)
{
	if (mk_alloc_should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return malloc(size ? size : 1);
}

void *mk_calloc(size_t nmemb, size_t size)
{
	if (mk_alloc_should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *mk_realloc(void *ptr, size_t size)
{
	if (mk_alloc_should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(ptr, size ? size : 1);
}

void *mk_reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(nmemb, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return mk_realloc(ptr, total);
}

void *mk_memdup(const void *p, size_t size)
{
	void *q = mk_malloc(size);

	if (q && size)
		memcpy(q, p, size);
	return q;
}

char *mk_strdup(const char *s)
{
	return mk_memdup(s, strlen(s) + 1);
}
