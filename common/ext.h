/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Extensible structs: the one convention every memkit library uses for a
 * struct the caller passes in or the library fills (libshm(3), libdax(3),
 * libsandbox(3) describe it to callers). The struct's first member is
 * `size_t size`, set by the caller to sizeof the struct it was compiled
 * with, as perf_event_attr.size and clone_args (clone3's size argument).
 * Fields are only ever appended, so a struct of any size is a prefix of
 * the newest layout. A library accepts any size at or above the first
 * published layout's (min; smaller is -EINVAL):
 *
 *  input  (mk_ext_in):  reads min(size, its sizeof) bytes, treats the
 *         fields past the caller's size as zero; a caller's struct larger
 *         than the library's must be zero in the bytes the library does not
 *         know, else -E2BIG (the kernel's copy_struct_from_user rule):
 *         the caller asked for something this library cannot do.
 *  output (mk_ext_out_begin / mk_ext_out): fills min(size, its sizeof)
 *         bytes, zeroes the rest of the caller's struct, writes nothing
 *         past the caller's size, and sets size to the bytes it filled
 *         (min of the two), so a newer caller learns what an older library
 *         knew.
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"

/* The caller's size (the struct's first member), or -EINVAL below min. */
static inline int64_t mk_ext_size(const void *user, size_t min)
{
	size_t usize;

	if (!user)
		return -EINVAL;
	memcpy(&usize, user, sizeof(usize));
	if (usize < min || usize < sizeof(size_t) || usize > INT64_MAX)
		return -EINVAL;
	return (int64_t)usize;
}

/*
 * Copy the caller's input struct into the library's (ksize bytes at dst):
 * 0, -EINVAL (NULL, or size below min), -E2BIG (a non-zero byte the
 * library does not know). dst->size is left as the caller's.
 */
static inline int mk_ext_in(void *dst, size_t ksize, const void *user, size_t min)
{
	int64_t usize = mk_ext_size(user, min);
	const unsigned char *u = user;

	if (usize < 0)
		return (int)usize;
	for (size_t i = ksize; i < (size_t)usize; i++)
		if (u[i])
			return -E2BIG;
	memset(dst, 0, ksize);
	memcpy(dst, user, MK_MIN((size_t)usize, ksize));
	return 0;
}

/*
 * Copy the library's filled struct (ksize bytes at src, its size member
 * ignored) out to the caller's, whose size mk_ext_size() accepted.
 */
static inline void mk_ext_out(void *user, const void *src, size_t ksize, size_t usize)
{
	size_t n = MK_MIN(usize, ksize);

	memcpy((unsigned char *)user + sizeof(size_t), (const unsigned char *)src + sizeof(size_t),
	       n - sizeof(size_t));
	if (usize > n)
		memset((unsigned char *)user + n, 0, usize - n);
	memcpy(user, &n, sizeof(n));
}
