/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz DAXS blob parsing and session restore: whatever the bytes,
 * dax_blob_parse() and dax_session_restore() either fail cleanly (and
 * the session keeps its state) or produce entries that are sorted,
 * aligned, inside the window and within the cap; a restored session
 * snapshots back into a blob that parses to the same entries.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dax.h"

#define BASE 0x40000000ull
#define WLEN (1ull << 30)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

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
		struct dax_config cfg = { .base_gpa = BASE, .window_len = WLEN, .align_log2 = 12,
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
	struct dax_stats before, after;
	const char *why;
	void *out;
	size_t olen;
	int r;

	if (dax_blob_parse(data, size, &h, &v, &why) == 0) {
		check_entries(&h, v);
		free(v);
	} else if (!why) {
		abort();
	}

	dax_session_stats(s, &before);
	r = dax_session_restore(s, data, size);
	dax_session_stats(s, &after);
	if (r < 0) {
		if (before.live_slots != after.live_slots || before.mapped_bytes != after.mapped_bytes)
			abort();
		return 0;
	}
	/* round trip through both versions */
	for (unsigned ver = 1; ver <= 2; ver++) {
		if (dax_session_snapshot(s, ver, &out, &olen) < 0)
			abort();
		if (dax_blob_parse(out, olen, &h2, &v2, &why) < 0 || h2.count != after.live_slots ||
		    h2.mapped_bytes != after.mapped_bytes)
			abort();
		free(v2);
		free(out);
	}
	/* a fault into the window: the backend has no files, so no slot binds */
	if (after.live_slots)
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

	if (i >= 8)
		return 0;
	if (i >= 4)
		h.base_gpa = 0x1000;    /* parses, but does not restore here */
	if (dax_blob_build(&h, e, 1 + i % 4, &blob, &len, NULL) < 0 || len > cap)
		abort();
	memcpy(buf, blob, len);
	free(blob);
	return len;
}
