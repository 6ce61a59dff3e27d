/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz handle resolution: a handle is 16 bytes from another process and
 * must be validated completely. The target owns one pool with regular,
 * over-aligned, freed and dedicated-chunk blocks, and resolves each 16-byte
 * record of the input (byte 0 of a record may also pick a live handle to
 * mutate, so the fuzzer reaches deep checks). Whatever resolves must lie
 * inside its chunk, be readable, and agree with shma_handle_of.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shm.h"

#define NLIVE 12

static struct shma_pool *pool;
static struct shma_handle live[NLIVE];

static void setup(void)
{
	struct shma_pool_opts o = { .size = sizeof(o), .chunk_size = 64u << 10 };
	struct shma_handle gone;

	if (pool)
		return;
	if (shma_pool_create(&o, &pool) < 0)
		abort();
	for (int i = 0; i < NLIVE; i++) {
		size_t len = i == NLIVE - 1 ? 100000 : 16 + (size_t)i * 333;
		if (shma_alloc(pool, len, i % 4 == 3 ? 1024 : 0, &live[i], NULL) < 0)
			abort();
	}
	if (shma_alloc(pool, 50, 0, &gone, NULL) < 0 || shma_free_handle(pool, &gone) < 0)
		abort();
}

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	setup();
	if (i >= NLIVE || cap < sizeof(live[0]))
		return 0;
	memcpy(buf, &live[i], sizeof(live[i]));
	return sizeof(live[i]);
}

static void check(const struct shma_handle *h)
{
	struct shma_chunk_info ci = { .size = sizeof(ci) };
	struct shma_handle back;
	void *p;
	volatile uint8_t sink;

	if (shma_resolve(pool, h, &p) < 0)
		return;
	if (shma_block_chunk(pool, h, &ci) < 0)
		abort();
	if ((uint8_t *)p != (uint8_t *)ci.base + ci.offset || ci.offset + h->len > ci.len)
		abort();
	sink = ((uint8_t *)p)[0];
	sink = ((uint8_t *)p)[h->len - 1];
	(void)sink;
	if (shma_handle_of(pool, p, &back) < 0 || memcmp(&back, h, sizeof(back)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	for (size_t off = 0; off + 16 <= size; off += 16) {
		struct shma_handle h;
		memcpy(&h, data + off, sizeof(h));
		check(&h);
		/* Also as a mutation of a live handle: XOR the tail into it. */
		{
			struct shma_handle m = live[data[off] % NLIVE];
			uint8_t x[16];
			memcpy(x, data + off, 16);
			x[0] = 0;
			for (int k = 0; k < 16; k++)
				((uint8_t *)&m)[k] ^= x[k];
			check(&m);
		}
	}
	return 0;
}
