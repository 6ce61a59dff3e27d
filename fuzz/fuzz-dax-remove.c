/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the FUSE_REMOVEMAPPING payload (and, with a leading 0x01, the
 * FUSE_SETUPMAPPING one): a session with 8 live slots gets the payload;
 * the call is all or nothing and the byte count matches the slots.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "dax.h"

#define BASE 0x40000000ull
#define WLEN (64ull << 20)
#define SLOT 0x10000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

static int memfd_open(void *d, uint64_t nodeid, uint64_t fh, uint32_t prot, struct dax_file_id *id)
{
	static int fd = -1;

	if (nodeid > 4)
		return -ENOENT;
	if (fd < 0)
		fd = memfd_create("fuzz-dax", MFD_CLOEXEC);
	memset(id, 0, sizeof(*id));
	return fd < 0 ? -errno : dup(fd);
}

static int nop_map(void *d, uint64_t gpa, uint64_t len, int fd, uint64_t foff, uint32_t prot,
		   int replace, void **hva)
{
	if (gpa < BASE || gpa + len > BASE + WLEN || fd < 0)
		abort();
	*hva = NULL;
	return 0;
}

static int nop_unmap(void *d, uint64_t gpa, uint64_t len, void *hva)
{
	return 0;
}

static struct dax_session *s;

static void reset_to_eight(void)
{
	static const struct dax_mapper_ops ops = { nop_map, nop_unmap, NULL, NULL };

	if (!s) {
		struct dax_config cfg = { .size = sizeof(cfg), .base_gpa = BASE, .window_len = WLEN, .align_log2 = 16,
					  .max_mappings = 64, .mapper = DAX_MAPPER_CUSTOM, .ops = &ops };
		struct dax_backend be = { memfd_open, NULL, NULL };
		if (dax_session_new(&cfg, &be, &s) < 0)
			abort();
	}
	if (dax_session_reset(s) < 0)
		abort();
	for (uint64_t i = 0; i < 8; i++) {
		struct dax_setup_req q = { DAX_FH_NONE, 0, SLOT * (1 + i % 2), DAX_FUSE_FLAG_READ, i * 4 * SLOT };
		if (dax_session_setup(s, 1, &q) < 0)
			abort();
	}
}

static void check_consistent(void)
{
	struct dax_mapping *v;
	struct dax_stats st = { .size = sizeof(st) };
	uint64_t sum = 0;
	size_t n;

	if (dax_session_list(s, &v, &n) < 0 || dax_session_stats(s, &st) < 0)
		abort();
	for (size_t i = 0; i < n; i++)
		sum += v[i].len;
	if (sum != st.mapped_bytes || n != st.live_mappings)
		abort();
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dax_stats a = { .size = sizeof(a) }, b = { .size = sizeof(b) };
	int r;

	reset_to_eight();
	dax_session_stats(s, &a);
	if (size && data[0] == 0x01) {
		r = dax_session_setup_raw(s, size > 1 ? data[1] % 6 : 1, data + 1, size - 1);
		dax_session_stats(s, &b);
		if (r < 0 && (a.live_mappings != b.live_mappings || a.mapped_bytes != b.mapped_bytes))
			abort();
	} else {
		uint32_t count = 0;
		r = dax_session_remove_raw(s, data, size);
		dax_session_stats(s, &b);
		if (size >= 4)
			memcpy(&count, data, 4);
		if (r < 0 && (a.live_mappings != b.live_mappings || a.mapped_bytes != b.mapped_bytes))
			abort();
		if (r == 0 && b.live_mappings != 0 && a.live_mappings - b.live_mappings != count)
			abort();
	}
	check_consistent();
	return 0;
}

static size_t put(uint8_t *buf, uint32_t count, const uint64_t *pairs)
{
	memcpy(buf, &count, 4);
	memcpy(buf + 4, pairs, count * 16);
	return 4 + count * 16;
}

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	uint64_t one[2] = { 0, SLOT };
	uint64_t two[4] = { 4 * SLOT, 2 * SLOT, 8 * SLOT, SLOT };
	uint64_t all[2] = { 0, UINT64_MAX };
	uint64_t setup[5] = { DAX_FH_NONE, 0, SLOT, DAX_FUSE_FLAG_READ | DAX_FUSE_FLAG_WRITE, 40 * SLOT };

	switch (i) {
	case 0: return put(buf, 1, one);
	case 1: return put(buf, 2, two);
	case 2: return put(buf, 1, all);
	case 3:
		buf[0] = 0x01;
		memcpy(buf + 1, setup, sizeof(setup));
		return 1 + sizeof(setup);
	default: return 0;
	}
}
