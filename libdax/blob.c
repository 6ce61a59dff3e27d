/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The DAXS blob codec (see daxsnap(5)), little-endian throughout: parse,
 * validate and build blobs, no session involved (snapshot.c writes and
 * restores sessions with it).
 *
 * Version 1 is the seed VMM's format, byte for byte:
 *   "DAXS" u32 version=1, u64 base_gpa, window_len, cap, mapped, count;
 *   count x { u64 moffset, len, nodeid, foffset; u32 prot, reserved=0 }.
 * Version 2 adds, after count, u32 align_log2 and u32 flags=0; entries
 * sorted by moffset, each followed by u32 entry flags (bit 0: identity
 * valid), u64 dev, ino, size, i64 mtime_sec, u32 mtime_nsec, u32 0;
 * then a u32 CRC-32C of everything before it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "common/le.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "daxP.h"

/* ---- layout ---------------------------------------------------------------------- */

size_t dax_blob_hdr_size(unsigned v) { return v == 1 ? DAX_BLOB_V1_HDR : DAX_BLOB_V2_HDR; }
size_t dax_blob_ent_size(unsigned v) { return v == 1 ? DAX_BLOB_V1_ENT : DAX_BLOB_V2_ENT; }

size_t dax_blob_size(unsigned v, size_t n)
{
	size_t sz;

	if (mk_mul_size(n, dax_blob_ent_size(v), &sz) || mk_add_size(sz, dax_blob_hdr_size(v) + (v == 2 ? 4 : 0), &sz))
		return 0;
	return sz;
}

void dax_blob_put_header(uint8_t *p, const struct dax_blob_header *h)
{
	memcpy(p, "DAXS", 4);
	mk_put_le32(p + 4, h->version);
	mk_put_le64(p + 8, h->base_gpa);
	mk_put_le64(p + 16, h->window_len);
	mk_put_le64(p + 24, h->cap);
	mk_put_le64(p + 32, h->mapped_bytes);
	mk_put_le64(p + 40, h->count);
	if (h->version == 2) {
		mk_put_le32(p + 48, h->align_log2);
		mk_put_le32(p + 52, 0);
	}
}

void dax_blob_put_entry(uint8_t *p, unsigned v, const struct dax_mapping *m)
{
	mk_put_le64(p, m->moffset);
	mk_put_le64(p + 8, m->len);
	mk_put_le64(p + 16, m->nodeid);
	mk_put_le64(p + 24, m->foffset);
	mk_put_le32(p + 32, m->prot);
	if (v == 1) {
		mk_put_le32(p + 36, 0);
		return;
	}
	mk_put_le32(p + 36, m->id.valid ? 1 : 0);
	mk_put_le64(p + 40, m->id.valid ? m->id.dev : 0);
	mk_put_le64(p + 48, m->id.valid ? m->id.ino : 0);
	mk_put_le64(p + 56, m->id.valid ? m->id.size : 0);
	mk_put_le64(p + 64, m->id.valid ? (uint64_t)m->id.mtime_sec : 0);
	mk_put_le32(p + 72, m->id.valid ? m->id.mtime_nsec : 0);
	mk_put_le32(p + 76, 0);
}

void dax_blob_put_crc(uint8_t *b, size_t sz)
{
	mk_put_le32(b + sz - 4, mk_crc32c(0, b, sz - 4));
}

/* ---- parse ------------------------------------------------------------------------ */

static int cmp_mapping(const void *a, const void *b)
{
	uint64_t x = ((const struct dax_mapping *)a)->moffset;
	uint64_t y = ((const struct dax_mapping *)b)->moffset;

	return x < y ? -1 : x > y;
}

#define FAIL(msg) do { *why = (msg); r = -EINVAL; goto fail; } while (0)

/*
 * The one rule a blob's layout follows, for parse and build alike (so
 * daxsnap's create, verify and rebase agree): a window that is not empty,
 * does not pass 2^64 and whose base and length are multiples of the
 * alignment (a session could not hold it otherwise); entries present,
 * aligned (offset and length to the alignment, file offset to 4 KiB),
 * inside the window, with sane fields, sorted, non-overlapping, their sum
 * within the cap.
 */
static int check_layout(const struct dax_blob_header *h, struct dax_mapping *v, size_t n,
			uint64_t align, bool check_sum, bool need_sorted, const char **why)
{
	uint64_t sum = 0, end;
	bool sorted = true;
	int r;

	if (!h->window_len || mk_add_u64(h->base_gpa, h->window_len, &end))
		FAIL("bad window");
	if (!mk_is_aligned(h->base_gpa, align) || !mk_is_aligned(h->window_len, align))
		FAIL("window base or length not aligned");
	for (size_t i = 0; i < n; i++) {
		const struct dax_mapping *m = &v[i];

		if (!m->len)
			FAIL("entry with zero length");
		if (!mk_is_aligned(m->moffset, align) || !mk_is_aligned(m->len, align) ||
		    !mk_is_aligned(m->foffset, 4096))
			FAIL("entry not aligned");
		if (!mk_range_ok(m->moffset, m->len, h->window_len))
			FAIL("entry outside the window");
		if (mk_add_u64(m->foffset, m->len, &end) || end > (uint64_t)INT64_MAX)
			FAIL("entry file range overflows");
		if (!m->prot || (m->prot & ~(DAX_PROT_READ | DAX_PROT_WRITE)))
			FAIL("entry with bad permissions");
		if (m->id.valid && m->id.mtime_nsec >= 1000000000u)
			FAIL("entry with bad file identity");
		if (mk_add_u64(sum, m->len, &sum))
			FAIL("total length overflows");
		if (i && m->moffset < v[i - 1].moffset)
			sorted = false;
	}
	/* daxsnap(5): version 2 is written sorted; disorder means a corrupt or forged blob. */
	if (!sorted && need_sorted)
		FAIL("version 2 entries out of order");
	if (!sorted)
		qsort(v, n, sizeof(*v), cmp_mapping);
	for (size_t i = 1; i < n; i++)
		if (v[i - 1].moffset + v[i - 1].len > v[i].moffset)
			FAIL("entries overlap");
	if (sum > h->cap)
		FAIL("total length above the cap");
	if (check_sum && sum != h->mapped_bytes)
		FAIL("mapped bytes do not match the entries");
	return 0;
fail:
	return r;
}

int dax_blob_decode(const uint8_t *b, size_t len, struct dax_blob_header *h,
		 struct dax_mapping **out, const char **why)
{
	struct dax_mapping *v = NULL;
	uint64_t align;
	size_t es, hs, n, want;
	int r;

	*h = (struct dax_blob_header){ 0 };
	if (len && memcmp(b, "DAXS", MK_MIN(len, (size_t)4)))
		FAIL("bad magic");
	if (len < 8)
		FAIL("truncated");
	h->version = mk_get_le32(b + 4);
	if (h->version != 1 && h->version != 2)
		FAIL("unsupported version");
	hs = dax_blob_hdr_size(h->version);
	es = dax_blob_ent_size(h->version);
	if (len < hs + (h->version == 2 ? 4 : 0))
		FAIL("truncated");
	h->base_gpa = mk_get_le64(b + 8);
	h->window_len = mk_get_le64(b + 16);
	h->cap = mk_get_le64(b + 24);
	h->mapped_bytes = mk_get_le64(b + 32);
	h->count = mk_get_le64(b + 40);
	/* The length the header announces, before the CRC: a blob cut short or
	 * with bytes appended is that, not a CRC mismatch. */
	want = h->count > SIZE_MAX / es ? 0 : dax_blob_size(h->version, (size_t)h->count);
	if (!want || len < want)
		FAIL("truncated");
	if (len > want)
		FAIL("trailing data after the last entry");
	if (h->version == 2) {
		if (mk_get_le32(b + len - 4) != mk_crc32c(0, b, len - 4))
			FAIL("CRC mismatch");
		h->align_log2 = mk_get_le32(b + 48);
		if (h->align_log2 < 12 || h->align_log2 > 40)
			FAIL("bad alignment");
		if (mk_get_le32(b + 52))
			FAIL("unknown header flags");
	}
	align = h->version == 2 ? 1ull << h->align_log2 : 4096;
	n = (size_t)h->count;
	v = mk_reallocarray(NULL, n ?: 1, sizeof(*v));
	if (!v) {
		*why = "out of memory";
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = b + hs + i * es;
		struct dax_mapping *m = &v[i];
		uint32_t ef;

		*m = (struct dax_mapping){
			.moffset = mk_get_le64(p), .len = mk_get_le64(p + 8), .nodeid = mk_get_le64(p + 16),
			.foffset = mk_get_le64(p + 24), .prot = mk_get_le32(p + 32),
		};
		ef = mk_get_le32(p + 36);
		if (h->version == 1) {
			if (ef)
				FAIL("reserved field not zero");
			continue;
		}
		if (ef & ~1u || mk_get_le32(p + 76))
			FAIL("unknown entry flags");
		if (ef & 1)
			m->id = (struct dax_file_id){
				.dev = mk_get_le64(p + 40), .ino = mk_get_le64(p + 48), .size = mk_get_le64(p + 56),
				.mtime_sec = (int64_t)mk_get_le64(p + 64), .mtime_nsec = mk_get_le32(p + 72),
				.valid = 1,
			};
	}
	r = check_layout(h, v, n, align, h->version == 2, h->version == 2, why);
	if (r < 0)
		goto fail;
	*out = v;
	return 0;
fail:
	free(v);
	return r;
}

MK_EXPORT int dax_blob_parse(const void *blob, size_t len, struct dax_blob_header *hdr,
			     struct dax_mapping **entries, const char **why)
{
	const char *dummy;
	struct dax_mapping *v;
	int r;

	if (!why)
		why = &dummy;
	*why = NULL;
	if ((!blob && len) || !hdr || !entries) {
		*why = "invalid argument";
		return -EINVAL;
	}
	r = dax_blob_decode(blob, len, hdr, &v, why);
	if (r < 0)
		return r;
	*entries = v;
	return 0;
}

MK_EXPORT int dax_blob_build(const struct dax_blob_header *hdr, const struct dax_mapping *entries,
			     size_t n, void **blob, size_t *len, const char **why)
{
	struct dax_blob_header h;
	struct dax_mapping *v = NULL;
	const char *dummy;
	uint8_t *b = NULL;
	size_t sz;
	int r;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (!hdr || (!entries && n) || !blob || !len)
		FAIL("invalid argument");
	h = *hdr;
	if (h.version != 1 && h.version != 2)
		FAIL("unsupported version");
	if (h.version == 1)
		h.align_log2 = 0;
	else if (h.align_log2 < 12 || h.align_log2 > 40)
		FAIL("bad alignment");
	sz = dax_blob_size(h.version, n);
	if (!sz)
		FAIL("too many entries");
	v = mk_reallocarray(NULL, n ?: 1, sizeof(*v));
	b = mk_malloc(sz);
	if (!v || !b) {
		*why = "out of memory";
		r = -ENOMEM;
		goto fail;
	}
	if (n)  /* entries may be NULL for none: memcpy's arguments must not be */
		memcpy(v, entries, sizeof(*v) * n);
	h.mapped_bytes = 0;
	for (size_t i = 0; i < n; i++)
		h.mapped_bytes += v[i].len;     /* overflow is caught by check_layout */
	h.count = n;
	r = check_layout(&h, v, n, h.version == 2 ? 1ull << h.align_log2 : 4096, false, false, why);
	if (r < 0)
		goto fail;
	dax_blob_put_header(b, &h);
	for (size_t i = 0; i < n; i++)
		dax_blob_put_entry(b + dax_blob_hdr_size(h.version) + i * dax_blob_ent_size(h.version), h.version, &v[i]);
	if (h.version == 2)
		dax_blob_put_crc(b, sz);
	free(v);
	*blob = b;
	*len = sz;
	return 0;
fail:
	free(v);
	free(b);
	return r;
}
