/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Overflow-checked size and alignment arithmetic. All return 0 or -EINVAL/-EOVERFLOW. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

static inline bool mk_is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

/* a + b into *out; -EOVERFLOW when it does not fit. */
static inline int mk_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -EOVERFLOW : 0;
}

static inline int mk_add_size(size_t a, size_t b, size_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -EOVERFLOW : 0;
}

static inline int mk_mul_size(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? -EOVERFLOW : 0;
}

static inline bool mk_is_aligned(uint64_t x, uint64_t align)
{
	return mk_is_pow2(align) && (x & (align - 1)) == 0;
}

/* Round x up to align (a power of two); -EINVAL for a bad align, -EOVERFLOW on wrap. */
static inline int mk_align_up(uint64_t x, uint64_t align, uint64_t *out)
{
	uint64_t t;

	if (!mk_is_pow2(align))
		return -EINVAL;
	if (__builtin_add_overflow(x, align - 1, &t))
		return -EOVERFLOW;
	*out = t & ~(align - 1);
	return 0;
}

/*
 * Is [off, off + len) inside [0, total)? False on overflow. len == 0 is
 * accepted when off <= total.
 */
static inline bool mk_range_ok(uint64_t off, uint64_t len, uint64_t total)
{
	uint64_t end;

	if (__builtin_add_overflow(off, len, &end))
		return false;
	return end <= total;
}

/* log2 of a power of two. */
static inline unsigned mk_log2(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x | 1);
}

/* The host page size, cached; async-signal-safe after the first call. */
size_t mk_page_size(void);
