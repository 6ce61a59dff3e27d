/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: buffer-stack pops over arbitrary guest bytes. The input
 * is [mode byte][buffer bytes]; the buffer is placed in a sandbox region
 * and popped (raw and size-prefixed, by the mode bits) until empty or
 * refused. A refused pop must leave the buffer byte-for-byte unchanged and
 * a successful one must shrink the stack pointer.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"

#define REGION (128u * 1024)

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sbx_mem *region(void)
{
	static struct sbx_mem *m;

	if (!m && sbx_mem_new(REGION, &m) < 0)
		abort();
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_mem *m = region();
	static uint8_t before[REGION], after[REGION], out[REGION];
	uint64_t bsize, off;
	unsigned mode;

	if (size < 1 || size - 1 > REGION / 2)
		return 0;
	mode = data[0];
	bsize = size - 1;
	/* Place the buffer at an offset chosen by the mode (exercises alignment). */
	off = (mode >> 4) * 3;
	if (sbx_mem_fill(m, 0, 0, REGION / 2 + 64) < 0 || sbx_mem_write(m, off, data + 1, bsize) < 0)
		abort();
	for (unsigned step = 0; step < 64; step++) {
		size_t len = 0, cap = (mode & 2) ? 16 : sizeof(out);
		uint64_t sp0, sp1;
		int r;

		if (sbx_mem_read(m, off, before, bsize) < 0)
			abort();
		sbx_mem_read_u64(m, off, &sp0);
		if ((mode ^ step) & 1)
			r = sbx_stack_pop_sized(m, off, bsize, out, cap, &len);
		else
			r = sbx_stack_pop(m, off, bsize, out, cap, &len);
		if (sbx_mem_read(m, off, after, bsize) < 0)
			abort();
		if (r < 0) {
			if (bsize >= 8 && memcmp(before, after, bsize))
				abort();        /* a refused pop changed the buffer */
			if (r == -ENODATA && (mode & 4) && step < 8) {
				/* Empty: push something and keep going. */
				if (sbx_stack_push(m, off, bsize, data, size > 32 ? 32 : size) < 0 &&
				    memcmp(before, after, bsize))
					abort();
				continue;
			}
			break;
		}
		sbx_mem_read_u64(m, off, &sp1);
		if (sp1 >= sp0 || len > cap || len > sp0)
			abort();
	}
	return 0;
}

/* Well-formed stacks: i + 1 elements of assorted sizes, some size-prefixed. */
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	struct sbx_mem *m = region();
	uint64_t bsize = 512;

	if (i >= 6 || cap < bsize + 1)
		return 0;
	sbx_mem_fill(m, 0, 0, REGION / 2 + 64);
	sbx_stack_init(m, 0, bsize);
	for (unsigned k = 0; k <= i; k++) {
		uint8_t el[40];
		uint32_t n = (uint32_t)(k * 5 % 32);
		memcpy(el, &n, 4);
		memset(el + 4, (int)('a' + k), sizeof(el) - 4);
		sbx_stack_push(m, 0, bsize, el, n + 4);
	}
	buf[0] = (uint8_t)(i & 1 ? 0x05 : 0x14);
	sbx_mem_read(m, 0, buf + 1, bsize);
	return bsize + 1;
}
