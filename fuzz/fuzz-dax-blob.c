/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz DAXS blob parsing and session restore: whatever the bytes,
 * dax_blob_parse() and dax_session_restore() either fail cleanly (and
 * the session keeps its state) or produce entries that are sorted,
 * aligned, inside the window and within the cap; a restored session
 * snapshots back into a blob that parses to the same entries.
 *
 * Input: [mode byte][blob]. An even mode passes the blob unchanged. A v2
 * blob ends in a CRC-32C that random mutations almost never keep right, so
 * an odd mode mends the blob first and lets mutations reach the checks
 * behind it: 0x02 magic, 0x04 entry count made to fit the length (the
 * blob cut to a whole number of entries), 0x08 mapped bytes := the sum of
 * the entry lengths, 0x10 entries sorted by offset; last, for version 2,
 * the CRC (computed here, not by libdax).
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dax.h"
#include "tests/crc32c-ref.h"

#define BASE 0x40000000ull
#define WLEN (1ull << 30)
#define MAXBLOB 65536

#define MEND_MAGIC  0x02
#define MEND_COUNT  0x04
#define MEND_MAPPED 0x08
#define MEND_SORT   0x10

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
const char *mk_fuzz_summary(void);
int mk_fuzz_reached(void);

static unsigned long n_parsed, n_restored, n_mended, n_restored_mended;

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static int cmp_moffset(const void *a, const void *b)
{
	uint64_t x = get64(a), y = get64(b);

	return x < y ? -1 : x > y;
}

/* Mend an odd-mode blob in place (see the top); returns its new length. */
static size_t mend(unsigned mode, uint8_t *b, size_t len)
{
	uint32_t version;
	size_t hs, es, tail, n;

	if (len < 8)
		return len;
	if (mode & MEND_MAGIC)
		memcpy(b, "DAXS", 4);
	memcpy(&version, b + 4, 4);
	version = le32toh(version);
	if (version != 1 && version != 2)
		return len;
	hs = version == 1 ? 48 : 56;
	es = version == 1 ? 40 : 80;
	tail = version == 2 ? 4 : 0;
	if (len < hs + tail)
		return len;
	n = (len - hs - tail) / es;
	if (mode & MEND_COUNT) {
		put64(b + 40, n);
		len = hs + n * es + tail;
	}
	if (mode & MEND_SORT)
		qsort(b + hs, n, es, cmp_moffset);
	if (mode & MEND_MAPPED) {
		uint64_t sum = 0;
		for (size_t i = 0; i < n; i++)
			sum += get64(b + hs + i * es + 8);
		put64(b + 32, sum);
	}
	if (version == 2)
		put32(b + len - 4, crc32c_ref(b, len - 4));
	return len;
}

static int no_open(void *d, uint64_t nodeid, uint64_t fh, uint32_t prot, struct dax_file_id *id)
{
	return -ENOENT;
}

static int nop_map(void *d, uint64_t gpa, uint64_t len, int fd, uint64_t foff, uint32_t prot,
		   int replace, void **hva)
{
	*hva = NULL;
	return 0;
}

static int nop_unmap(void *d, uint64_t gpa, uint64_t len, void *hva)
{
	return 0;
}

static struct dax_session *session(void)
{
	static struct dax_session *s;
	static const struct dax_mapper_ops ops = { nop_map, nop_unmap, NULL, NULL };

	if (!s) {
		struct dax_config cfg = { .size = sizeof(cfg), .base_gpa = BASE, .window_len = WLEN, .align_log2 = 12,
					  .max_mappings = 1 << 20, .mapper = DAX_MAPPER_CUSTOM, .ops = &ops };
		struct dax_backend be = { no_open, NULL, NULL };
		if (dax_session_new(&cfg, &be, &s) < 0)
			abort();
	}
	return s;
}

static void check_entries(const struct dax_blob_header *h, const struct dax_mapping *v)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < h->count; i++) {
		if (!v[i].len || v[i].moffset + v[i].len > h->window_len || v[i].moffset + v[i].len < v[i].moffset)
			abort();
		if (i && v[i - 1].moffset + v[i - 1].len > v[i].moffset)
			abort();
		sum += v[i].len;
	}
	if (sum > h->cap)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dax_session *s = session();
	struct dax_blob_header h, h2;
	struct dax_mapping *v = NULL, *v2 = NULL;
	struct dax_stats before = { .size = sizeof(before) }, after = { .size = sizeof(after) };
	const char *why;
	void *out;
	size_t olen;
	static uint8_t mended[MAXBLOB];
	int r;

	if (!size)
		return 0;
	if (data[0] & 1) {
		size = size - 1 < MAXBLOB ? size - 1 : MAXBLOB;
		memcpy(mended, data + 1, size);
		size = mend(data[0], mended, size);
		data = mended;
		n_mended++;
	} else {
		data++;
		size--;
	}
	if (dax_blob_parse(data, size, &h, &v, &why) == 0) {
		check_entries(&h, v);
		free(v);
		n_parsed++;
	} else if (!why) {
		abort();
	}

	dax_session_stats(s, &before);
	r = dax_session_restore(s, data, size);
	dax_session_stats(s, &after);
	if (r < 0) {
		if (before.live_mappings != after.live_mappings || before.mapped_bytes != after.mapped_bytes)
			abort();
		return 0;
	}
	n_restored++;
	n_restored_mended += data == mended;
	/* round trip through both versions */
	for (unsigned ver = 1; ver <= 2; ver++) {
		if (dax_session_snapshot(s, ver, &out, &olen) < 0)
			abort();
		if (dax_blob_parse(out, olen, &h2, &v2, &why) < 0 || h2.count != after.live_mappings ||
		    h2.mapped_bytes != after.mapped_bytes)
			abort();
		free(v2);
		free(out);
	}
	/* a fault into the window: the backend has no files, so no slot binds */
	if (after.live_mappings)
		if (dax_session_fault(s, BASE + (size % WLEN)) > 0)
			abort();
	return 0;
}

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	struct dax_mapping e[4] = {
		{ .moffset = 0, .len = 0x200000, .nodeid = 1, .foffset = 0, .prot = DAX_PROT_READ },
		{ .moffset = 0x200000, .len = 0x1000, .nodeid = 2, .foffset = 0x1000, .prot = 3 },
		{ .moffset = 0x400000, .len = 0x200000, .nodeid = 1, .foffset = 0x200000, .prot = 3,
		  .id = { 1, 2, 3, 4, 5, 1 } },
		{ .moffset = WLEN - 0x1000, .len = 0x1000, .nodeid = 9, .foffset = 0, .prot = 2 },
	};
	struct dax_blob_header h = { .version = 1 + (i & 1), .align_log2 = 12, .base_gpa = BASE,
				     .window_len = WLEN, .cap = WLEN };
	void *blob;
	size_t len;

	if (i >= 16)
		return 0;
	if ((i & 7) >= 4)
		h.base_gpa = 0x1000;    /* parses, but does not restore here */
	if (dax_blob_build(&h, e, 1 + i % 4, &blob, &len, NULL) < 0 || len + 1 > cap)
		abort();
	/* 0..7 raw; 8..15 the same blobs with every mend (what they mend is already right) */
	buf[0] = i < 8 ? 0 : 1 | MEND_MAGIC | MEND_COUNT | MEND_MAPPED | MEND_SORT;
	memcpy(buf + 1, blob, len);
	free(blob);
	return len + 1;
}

const char *mk_fuzz_summary(void)
{
	static char msg[128];

	snprintf(msg, sizeof(msg), "%lu parsed, %lu restored, %lu mended (%lu of them restored)",
		 n_parsed, n_restored, n_mended, n_restored_mended);
	return msg;
}

/* make check fails if no generated input got that far. */
int mk_fuzz_reached(void)
{
	return n_restored_mended > 0;
}
