/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Checks of the extensible-struct convention (common/ext.h, libshm(3),
 * libdax(3), libsandbox(3)) on a library call that fills a struct T through
 * a pointer. The struct sits in a buffer with 32 bytes after it, all set to
 * a pattern first: a size below the first layout's is -EINVAL with nothing
 * written; sizeof(T) fills it, writes nothing past it and answers size =
 * sizeof(T); a newer caller's 16 bytes more are zeroed and size answers
 * sizeof(T) (what this library filled), with nothing written past those 16.
 */
#pragma once

#include <errno.h>
#include <glib.h>
#include <string.h>

#define EXT_PAT 0xa5

/* Bytes [from, to) of b all equal v. */
static inline gboolean ext_all(const unsigned char *b, size_t from, size_t to, unsigned char v)
{
	for (size_t i = from; i < to; i++)
		if (b[i] != v)
			return FALSE;
	return TRUE;
}

/* CALL is an expression of the pointer x (T *) that returns 0 on success. */
#define EXT_CHECK_OUT(T, CALL) do {                                                     \
	union { T t; unsigned char b[sizeof(T) + 32]; } u_;                             \
	T *x = &u_.t;                                                                   \
	size_t sz_;                                                                     \
	/* too small: -EINVAL, nothing past the size member written */                  \
	memset(u_.b, EXT_PAT, sizeof(u_.b));                                            \
	sz_ = sizeof(T) - 1;                                                            \
	memcpy(u_.b, &sz_, sizeof(sz_));                                                \
	g_assert_cmpint((CALL), ==, -EINVAL);                                           \
	g_assert_true(ext_all(u_.b, sizeof(size_t), sizeof(u_.b), EXT_PAT));            \
	sz_ = 0;                                                                        \
	memcpy(u_.b, &sz_, sizeof(sz_));                                                \
	g_assert_cmpint((CALL), ==, -EINVAL);                                           \
	/* this layout: filled, nothing written past it */                              \
	memset(u_.b, EXT_PAT, sizeof(u_.b));                                            \
	sz_ = sizeof(T);                                                                \
	memcpy(u_.b, &sz_, sizeof(sz_));                                                \
	g_assert_cmpint((CALL), ==, 0);                                                 \
	g_assert_cmpuint(x->size, ==, sizeof(T));                                       \
	g_assert_true(ext_all(u_.b, sizeof(T), sizeof(u_.b), EXT_PAT));                 \
	g_assert_false(ext_all(u_.b, sizeof(size_t), sizeof(T), EXT_PAT));             \
	/* a newer caller: its unknown tail zeroed, size says what was filled */        \
	memset(u_.b, EXT_PAT, sizeof(u_.b));                                            \
	sz_ = sizeof(T) + 16;                                                           \
	memcpy(u_.b, &sz_, sizeof(sz_));                                                \
	g_assert_cmpint((CALL), ==, 0);                                                 \
	g_assert_cmpuint(x->size, ==, sizeof(T));                                       \
	g_assert_true(ext_all(u_.b, sizeof(T), sizeof(T) + 16, 0));                     \
	g_assert_true(ext_all(u_.b, sizeof(T) + 16, sizeof(u_.b), EXT_PAT));            \
} while (0)
