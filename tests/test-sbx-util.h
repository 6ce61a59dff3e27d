/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What libsandbox's tests share: failing each allocation of an operation
 * on purpose (MK_FAIL_EACH_ALLOC of tests/alloc-fail.h; the tests link the
 * internal library so they reach common/'s hidden injector), and a
 * region's observable state to compare before and after a failed call.
 */
#pragma once

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdlib.h>

#include "tests/alloc-fail.h"
#include "sandbox.h"

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
	im->st = (struct sbx_mem_stats){ .size = sizeof(im->st) };
	g_assert_cmpint(sbx_mem_stats(m, &im->st), ==, 0);
}

static inline void sbx_mem_image_check(struct sbx_mem *m, const struct sbx_mem_image *im)
{
	struct sbx_mem_stats st = { .size = sizeof(st) };
	uint8_t *now;

	g_assert_cmpuint(sbx_mem_size(m), ==, im->size);
	now = g_malloc(im->size);
	g_assert_cmpint(sbx_mem_read(m, 0, now, im->size), ==, 0);
	g_assert_cmpmem(now, im->size, im->bytes, im->size);
	g_free(now);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.mem_size, ==, im->st.mem_size);
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
