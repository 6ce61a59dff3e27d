/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libsandbox buffer stack: protocol round trips and hostile guest values. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "sandbox.h"

#define PG 4096u
#define BUF_OFF 256u
#define BUF_SIZE 1024u

static struct sbx_mem *new_stack(void)
{
	struct sbx_mem *m;

	g_assert_cmpint(sbx_mem_new(PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_fill(m, 0, 0xcc, PG), ==, 0);
	g_assert_cmpint(sbx_stack_init(m, BUF_OFF, BUF_SIZE), ==, 0);
	return m;
}

static void test_roundtrip(void)
{
	struct sbx_mem *m = new_stack();
	uint8_t out[256];
	size_t len = 0;
	uint64_t sp;

	g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, -ENODATA);
	g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, "hello", 5), ==, 0);
	g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, "", 0), ==, 0);
	g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, "world!!", 7), ==, 0);
	g_assert_cmpint(sbx_mem_read_u64(m, BUF_OFF, &sp), ==, 0);
	g_assert_cmpuint(sp, ==, 8 + 13 + 8 + 15);
	g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, 0);
	g_assert_cmpmem(out, len, "world!!", 7);
	g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, 0);
	g_assert_cmpuint(len, ==, 0);
	/* Too small a buffer: refused, element stays. */
	g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, 4, &len), ==, -ENOBUFS);
	g_assert_cmpuint(len, ==, 5);
	g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, 5, &len), ==, 0);
	g_assert_cmpmem(out, len, "hello", 5);
	g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, -ENODATA);
	/* Popped slots were zeroed. */
	g_assert_cmpint(sbx_mem_read(m, BUF_OFF + 8, out, 64), ==, 0);
	for (unsigned i = 0; i < 64; i++)
		g_assert_cmpint(out[i], ==, 0);
	/* Full: the element and its back-pointer must fit exactly. */
	{
		uint8_t big[BUF_SIZE];
		memset(big, 0x42, sizeof(big));
		g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, big, BUF_SIZE - 15), ==, -ENOSPC);
		g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, big, BUF_SIZE - 16), ==, 0);
		g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, big, 0), ==, -ENOSPC);
	}
	/* The buffer must lie inside the region. */
	g_assert_cmpint(sbx_stack_push(m, PG - 8, 16, "x", 1), ==, -EINVAL);
	g_assert_cmpint(sbx_stack_push(m, UINT64_MAX - 4, 16, "x", 1), ==, -EINVAL);
	g_assert_cmpint(sbx_stack_init(m, 0, 4), ==, -EINVAL);
	sbx_mem_free(m);
}

static void test_sized(void)
{
	struct sbx_mem *m = new_stack();
	uint8_t el[16] = { 12, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l' };
	uint8_t out[64];
	size_t len;

	g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, el, sizeof(el)), ==, 0);
	g_assert_cmpint(sbx_stack_pop_sized(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, 0);
	g_assert_cmpmem(out, len, el, 16);
	/* A prefix claiming more than the slot holds is refused. */
	el[0] = 13;
	g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, el, sizeof(el)), ==, 0);
	g_assert_cmpint(sbx_stack_pop_sized(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, -EBADMSG);
	/* A prefix of UINT32_MAX must not wrap. */
	memset(el, 0xff, 4);
	g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, 0);
	g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, el, sizeof(el)), ==, 0);
	g_assert_cmpint(sbx_stack_pop_sized(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, -EBADMSG);
	g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, 0);
	/* Slots under 8 bytes cannot hold a sized element. */
	g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, "\x03\0\0\0abc", 7), ==, 0);
	g_assert_cmpint(sbx_stack_pop_sized(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, -EBADMSG);
	sbx_mem_free(m);
}

/* Each hostile value is refused and the whole buffer stays byte-for-byte as it was. */
static void test_hostile(void)
{
	static const struct { uint64_t sp, bp; bool set_bp; int err; } cases[] = {
		{ 0, 0, false, -EBADMSG },
		{ 7, 0, false, -EBADMSG },
		{ 9, 0, false, -EBADMSG },
		{ 15, 0, false, -EBADMSG },
		{ BUF_SIZE + 1, 0, false, -EBADMSG },
		{ UINT64_MAX, 0, false, -EBADMSG },
		{ UINT64_MAX - 7, 0, false, -EBADMSG },
		{ 64, 0, true, -EBADMSG },                 /* back-pointer below 8 */
		{ 64, 7, true, -EBADMSG },
		{ 64, 57, true, -EBADMSG },                /* past sp - 8 */
		{ 64, UINT64_MAX, true, -EBADMSG },
		{ 64, UINT64_MAX - 50, true, -EBADMSG },
		{ 64, 64, true, -EBADMSG },
		{ BUF_SIZE, BUF_SIZE, true, -EBADMSG },
	};
	uint8_t before[BUF_SIZE], after[BUF_SIZE], out[BUF_SIZE];
	size_t len;

	for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct sbx_mem *m = new_stack();
		g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, "payload!", 8), ==, 0);
		g_assert_cmpint(sbx_mem_write_u64(m, BUF_OFF, cases[i].sp), ==, 0);
		if (cases[i].set_bp && cases[i].sp >= 8 && cases[i].sp <= BUF_SIZE)
			g_assert_cmpint(sbx_mem_write_u64(m, BUF_OFF + cases[i].sp - 8, cases[i].bp), ==, 0);
		g_assert_cmpint(sbx_mem_read(m, BUF_OFF, before, BUF_SIZE), ==, 0);
		g_assert_cmpint(sbx_stack_pop(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, cases[i].err);
		g_assert_cmpint(sbx_stack_pop_sized(m, BUF_OFF, BUF_SIZE, out, sizeof(out), &len), ==, cases[i].err);
		if (cases[i].sp < 8 || cases[i].sp > BUF_SIZE)
			g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, "x", 1), ==, -EBADMSG);
		g_assert_cmpint(sbx_mem_read(m, BUF_OFF, after, BUF_SIZE), ==, 0);
		g_assert_cmpmem(before, BUF_SIZE, after, BUF_SIZE);
		sbx_mem_free(m);
	}
	/* A push that would run past the end with a big sp near the limit. */
	{
		struct sbx_mem *m = new_stack();
		g_assert_cmpint(sbx_mem_write_u64(m, BUF_OFF, BUF_SIZE - 8), ==, 0);
		g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, "x", 1), ==, -ENOSPC);
		g_assert_cmpint(sbx_stack_push(m, BUF_OFF, BUF_SIZE, "", 0), ==, 0);
		sbx_mem_free(m);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sbx/stack/roundtrip", test_roundtrip);
	g_test_add_func("/sbx/stack/sized", test_sized);
	g_test_add_func("/sbx/stack/hostile", test_hostile);
	return g_test_run();
}
