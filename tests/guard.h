/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A buffer followed by guard bytes, for tests and fuzzers that hand a
 * buffer and its size to code that must not write past it: the guard is
 * poisoned under ASan (a write there is reported where it happens) and
 * holds a pattern checked afterwards (a write there is found without ASan).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define MK_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MK_HAVE_ASAN 1
#endif
#endif
#ifdef MK_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

#define MK_GUARD_BYTES 64
#define MK_GUARD_FILL  0x5a

/* n usable bytes (filled with MK_GUARD_FILL) and the guard after them; NULL if out of memory. */
static inline uint8_t *mk_guard_alloc(size_t n)
{
	uint8_t *p = malloc(n + MK_GUARD_BYTES);

	if (p) {
		memset(p, MK_GUARD_FILL, n + MK_GUARD_BYTES);
		ASAN_POISON_MEMORY_REGION(p + n, MK_GUARD_BYTES);
	}
	return p;
}

/* Free a buffer from mk_guard_alloc(p, n): false if anything was written to its guard. */
static inline bool mk_guard_free(uint8_t *p, size_t n)
{
	bool ok = true;

	ASAN_UNPOISON_MEMORY_REGION(p + n, MK_GUARD_BYTES);
	for (size_t i = n; i < n + MK_GUARD_BYTES; i++)
		ok &= p[i] == MK_GUARD_FILL;
	free(p);
	return ok;
}
