/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz attaching to a pool whose shared bytes another process wrote: the
 * root (geometry, users, free-list heads, chunk slots), chunk headers and
 * block headers are all outside bytes to an attacher. The target owns one
 * memfd pool (regular chunks with used, freed and over-aligned blocks, and a
 * dedicated chunk); for each input it puts the pool's files back to their
 * pristine bytes, applies the input's edits, attaches by fd (read-only or
 * read-write, by the mode byte) and stats, walks, resolves, reclaims,
 * allocates and frees. Everything must fail cleanly or stay inside the
 * pool's mappings; what it resolves or allocates must lie in its chunk.
 *
 * Input: [mode][edit]...; edit = [u8 file][u16 LE offset][u8 n][n bytes]
 * writes n bytes into file (root, then the chunks) at offset (in 16-byte
 * granules in files over 64 KiB). The memfds are sealed against shrinking
 * and growing, so sizes are not the attacker's to change here.
 * Mode bit 0: read-only attach; bit 1: edits only up to the first 4.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sys.h"
#include "shm.h"
#include "shmP.h"

#define NLIVE  10
#define MAXFDS 16

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
const char *mk_fuzz_summary(void);
int mk_fuzz_reached(void);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct shma_pool *owner;
static struct shma_handle live[NLIVE];
static int fds[MAXFDS];
static size_t nfds;
static uint8_t *pristine[MAXFDS], *view[MAXFDS];     /* view: our MAP_SHARED map */
static uint64_t plen[MAXFDS];
static unsigned long n_attached, n_allocated;

static void setup(void)
{
	struct shma_pool_opts o = { .size = sizeof(o), .backend = SHMA_BACKEND_MEMFD,
				    .chunk_size = SHMA_CHUNK_SIZE_MIN, .max_chunks = 8 };
	struct shma_handle gone;
	int n;

	if (owner)
		return;
	if (shma_pool_create(&o, &owner) < 0)
		abort();
	for (int i = 0; i < NLIVE; i++) {
		size_t len = i == NLIVE - 1 ? 300000 : 16 + (size_t)i * 700;
		if (shma_alloc(owner, len, i % 4 == 3 ? 4096 : 0, &live[i], NULL) < 0)
			abort();
	}
	for (int i = 0; i < 3; i++)
		if (shma_alloc(owner, 40 + i * 100, 0, &gone, NULL) < 0 || shma_free_handle(owner, &gone) < 0)
			abort();
	n = shma_pool_fds(owner, fds, MAXFDS);
	if (n < 2)
		abort();
	nfds = (size_t)n;
	for (size_t i = 0; i < nfds; i++) {
		struct stat st;
		if (fstat(fds[i], &st) < 0)
			abort();
		plen[i] = (uint64_t)st.st_size;
		pristine[i] = malloc(plen[i]);
		view[i] = mmap(NULL, plen[i], PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (!pristine[i] || view[i] == MAP_FAILED)
			abort();
		memcpy(pristine[i], view[i], plen[i]);
	}
}

/* Back to the pristine bytes, copying only the pages that differ (cheap when few do). */
static void restore(void)
{
	for (size_t i = 0; i < nfds; i++)
		for (uint64_t off = 0; off < plen[i]; off += 4096) {
			size_t n = plen[i] - off < 4096 ? plen[i] - off : 4096;
			if (memcmp(view[i] + off, pristine[i] + off, n))
				memcpy(view[i] + off, pristine[i] + off, n);
		}
}

/* A handle that resolves must name bytes inside its chunk, and map back to itself. */
static void check_handle(struct shma_pool *p, const struct shma_handle *h)
{
	struct shma_chunk_info ci = { .size = sizeof(ci) };
	struct shma_handle back;
	volatile uint8_t sink;
	void *ptr;

	if (shma_resolve(p, h, &ptr) < 0)
		return;
	if (shma_block_chunk(p, h, &ci) < 0)
		abort();
	if ((uint8_t *)ptr != (uint8_t *)ci.base + ci.offset || ci.offset + h->len > ci.len)
		abort();
	sink = ((uint8_t *)ptr)[0];
	sink = ((uint8_t *)ptr)[h->len - 1];
	(void)sink;
	if (shma_handle_of(p, ptr, &back) == 0 && memcmp(&back, h, sizeof(back)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shma_pool *p;
	struct shma_pool_stat st = { .size = sizeof(st) };
	unsigned mode, edits = 0;
	size_t i = 1;

	setup();
	if (!size)
		return 0;
	mode = data[0];
	restore();
	while (i + 4 <= size && (!(mode & 2) || edits < 4)) {
		size_t f = data[i] % nfds, n = data[i + 3];
		uint64_t off = (uint64_t)data[i + 1] | (uint64_t)data[i + 2] << 8;

		i += 4;
		edits++;
		if (!n)
			continue;
		if (n > size - i)
			n = size - i;
		/* Stretch offsets over big files: the u16 counts 16-byte granules there. */
		if (plen[f] > 65536)
			off *= 16;
		if (off + n > plen[f])
			off = plen[f] > n ? plen[f] - n : 0;
		if (n > plen[f])
			n = plen[f];
		memcpy(view[f] + off, data + i, n);
		i += n;
	}

	if (shma_pool_attach_fds(fds, nfds, (mode & 1) ? SHMA_ATTACH_RDONLY : 0, &p) < 0)
		return 0;
	n_attached++;
	if (shma_pool_stat(p, &st) == 0 && st.chunks > st.max_chunks)
		abort();
	for (uint32_t c = 0; c < 16; c++) {
		struct shma_chunk_stat cs = { .size = sizeof(cs) };
		if (shma_pool_chunk_stat(p, c, &cs) == 0 && cs.used > cs.len)
			abort();
	}
	for (int k = 0; k < NLIVE; k++)
		check_handle(p, &live[k]);
	if (!(mode & 1)) {
		struct shma_handle h[4];
		void *ptr;
		int got = 0;

		shma_pool_reclaim(p);
		for (int k = 0; k < 4; k++) {
			if (shma_alloc(p, 24 + (size_t)k * 3000, k == 2 ? 256 : 0, &h[got], &ptr) < 0)
				continue;
			check_handle(p, &h[got]);
			memset(ptr, 0xa5, h[got].len);
			got++;
			n_allocated++;
		}
		for (int k = 0; k < got; k++)
			shma_free_handle(p, &h[k]);
		shma_pool_trim(p);
	}
	shma_pool_free(p);
	return 0;
}

static size_t edit(uint8_t *b, unsigned file, unsigned off, const void *bytes, unsigned n)
{
	b[0] = (uint8_t)file;
	b[1] = (uint8_t)off;
	b[2] = (uint8_t)(off >> 8);
	b[3] = (uint8_t)n;
	memcpy(b + 4, bytes, n);
	return 4 + n;
}

/*
 * Seeds: the pristine pool both ways, then one edit each at places the
 * attacher must not trust: geometry, a free-list head, a slot, a user, a
 * chunk header, a block header, the chunk being carved.
 */
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	static const uint8_t ones[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t small[8] = { 3, 0, 0, 0, 0, 0, 0, 0 };
	size_t n = 1;

	setup();
	if (cap < 64)
		return 0;
	buf[0] = (uint8_t)(i & 1);
	switch (i / 2) {
	case 0: break;
	case 1: n += edit(buf + n, 0, offsetof(struct shma_root, chunk_size), ones, 8); break;
	case 2: n += edit(buf + n, 0, offsetof(struct shma_root, max_chunks), ones, 4); break;
	case 3: n += edit(buf + n, 0, offsetof(struct shma_root, heads), small, 8); break;
	case 4: n += edit(buf + n, 0, offsetof(struct shma_root, slots) + 8, ones, 8); break;
	case 5: n += edit(buf + n, 0, offsetof(struct shma_root, users), ones, 8); break;
	case 6: n += edit(buf + n, 0, offsetof(struct shma_root, hwm), ones, 4); break;
	case 7: n += edit(buf + n, 1, offsetof(struct shma_chunk_hdr, index), ones, 4); break;
	case 8: n += edit(buf + n, 1, SHMA_CHUNK_DATA + 8, small, 4); break;     /* block self */
	case 9: n += edit(buf + n, 1, SHMA_CHUNK_DATA, ones, 8); break;          /* block word */
	case 10: n += edit(buf + n, 0, offsetof(struct shma_root, cur), ones, 4); break;
	default: return 0;
	}
	return n;
}

const char *mk_fuzz_summary(void)
{
	static char msg[96];

	snprintf(msg, sizeof(msg), "%lu attached, %lu blocks allocated", n_attached, n_allocated);
	return msg;
}

/* make check fails if no generated input got that far. */
int mk_fuzz_reached(void)
{
	return n_attached > 0 && n_allocated > 0;
}
