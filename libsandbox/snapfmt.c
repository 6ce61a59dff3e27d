/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The snapshot file format (memkit-snapshot(5)): parsing and building
 * headers, the chunk table and zero bitmap of version 3, the working-set
 * section, the checksums, and reading a file's header and tables with
 * their checks. snapfile.c loads and saves files, lazy.c pages them in;
 * both (and the fuzzers) go through these functions.
 *
 * Version 3, little-endian:
 *    0 magic "MKSBXSNP"          48 chunk size (u32, power of two 64K..2M)
 *    8 version (u32) = 3         52 chunk checksum (u32: 1 CRC-32C, 2 hash64)
 *   12 header size (u32) 4096    56 chunk count (u64) = ceil(size / chunk)
 *   16 data offset (u64)         64 table offset (u64) = 4096
 *   24 data size (u64, pages)    72 zero bitmap offset (u64) = 4096 + 8 count
 *   32 table checksum (u64)      80 working-set offset (u64, 4 KiB aligned)
 *   40 header checksum (u64)     88 working-set size (u64, 4 KiB multiple)
 *                                96..4095 zero
 * then the table (a u64 checksum a chunk, 0 for an all-zero chunk), the
 * zero bitmap (bit i of word i / 64: chunk i is all zero and not read),
 * zeros up to the working-set section, that section, and the data, which
 * ends the file. The header checksum (hash64 of the 4096 bytes, its own
 * field as zero) covers the table checksum (hash64 of the bytes from 4096
 * to the working-set offset), so it covers the table.
 * The working set (a bitmap of chunks to prefetch) is written after the
 * snapshot, so it has its own checksum, seeded with the header checksum:
 * one left from an earlier save of the file never matches.
 *
 * Version 4 (written since 0.4) is version 3 with a second level, so a
 * lazy open reads a small prefix whatever the file's size: an index of
 * one hash64 per 4096-byte block of table and zero bitmap lies at 4096
 * (96: index offset, 104: index size, 112..4095 zero), the table after it;
 * the header's 32 is the index's checksum, so the header covers the index
 * and the index every table block. A lazy open reads header and index; a
 * table block is read and checked when a chunk it describes is first
 * needed (sbx_snapf_block()).
 *
 * Versions 1 and 2 (still read, never written): data offset 4096, a
 * checksum of all data at 32, bytes 48..4095 zero; version 2's header
 * checksum covers the 4096 bytes, version 1's bytes 0..39 only.
 *
 * The checksums find corruption and truncation; they are not a signature
 * against an attacker who can rewrite the file.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "common/le.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

#define MAGIC    "MKSBXSNP"
#define WS_MAGIC "MKSBXWS1"
#define V2_RESERVED 48u     /* versions 1 and 2: bytes 48..4095 are zero */
#define V3_RESERVED 96u
#define V4_RESERVED 112u
#define WS_HDR   32u

static const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full,
		      P3 = 0x165667B19E3779F9ull, P4 = 0x85EBCA77C2B2AE63ull;

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t round64(uint64_t acc, uint64_t v)
{
	return rotl(acc + v * P2, 31) * P1;
}

uint64_t sbx_hash64(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t a = seed + P1 + P2, b = seed + P2, c = seed, d = seed - P1, h;
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		a = round64(a, mk_get_le64(p + i));
		b = round64(b, mk_get_le64(p + i + 8));
		c = round64(c, mk_get_le64(p + i + 16));
		d = round64(d, mk_get_le64(p + i + 24));
	}
	h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + (uint64_t)len;
	for (; i + 8 <= len; i += 8)
		h = rotl(h ^ round64(0, mk_get_le64(p + i)), 27) * P1 + P4;
	for (; i < len; i++)
		h = rotl(h ^ (p[i] * P3), 11) * P1;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	return h ^ (h >> 32);
}

uint64_t sbx_chunk_sum(uint32_t alg, const void *p, size_t len)
{
	return alg == SBX_CHECKSUM_CRC32C ? mk_crc32c(0, p, len) : sbx_hash64(p, len, 0);
}

/* Header checksum of versions 2 and 3: the 4096 bytes, bytes 40..47 read as zero. */
uint64_t sbx_snapf_hdr_sum(const uint8_t *hdr)
{
	uint8_t copy[SBX_SNAPF_HDR];

	memcpy(copy, hdr, sizeof(copy));
	memset(copy + 40, 0, 8);
	return sbx_hash64(copy, sizeof(copy), 0);
}

bool sbx_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	/* Each byte equal to the next and the first zero: memcmp's vector loop does the work. */
	return !n || (!b[0] && !memcmp(b, b + 1, n - 1));
}

/* A refusal of the file's contents (hostile input): logged, then -err. */
#define bad_file(err, fn, fmt, ...) \
	({ sbx_refuse(LOG_INFO, "%s: " fmt, (fn), ##__VA_ARGS__); -(err); })

int sbx_snapf_layout(uint64_t size, uint32_t chunk, uint32_t alg, uint32_t version, struct sbx_snapf *f)
{
	uint64_t n, words, end;

	if (!mk_is_pow2(chunk) || chunk < SBX_CHUNK_MIN || chunk > SBX_CHUNK_MAX || !size ||
	    size > (uint64_t)(SIZE_MAX / 2) || (alg != SBX_CHECKSUM_CRC32C && alg != SBX_CHECKSUM_HASH64) ||
	    (version != 3 && version != 4))
		return -EINVAL;
	memset(f, 0, sizeof(*f));
	n = (size + chunk - 1) / chunk;
	words = sbx_bitmap_words(n);
	f->version = version;
	f->size = size;
	f->chunk = chunk;
	f->chunk_shift = mk_log2(chunk);
	f->alg = alg;
	f->nchunks = n;
	/* Small numbers (n <= 2^47): no overflow below; the data end is checked. */
	(void)mk_align_up(8 * n + 8 * words, SBX_SNAPF_BLOCK, &f->meta_len);   /* with the padding */
	if (version == 4) {
		f->nblocks = f->meta_len / SBX_SNAPF_BLOCK;
		f->idx_off = SBX_SNAPF_HDR;
		(void)mk_align_up(8 * f->nblocks, 4096, &f->idx_len);
	}
	f->meta_off = SBX_SNAPF_HDR + f->idx_len;
	f->ws_off = f->meta_off + f->meta_len;
	(void)mk_align_up(WS_HDR + 8 * words, 4096, &f->ws_len);
	f->data_off = f->ws_off + f->ws_len;
	return mk_add_u64(f->data_off, size, &end) < 0 ? -EINVAL : 0;
}

void sbx_snapf_seal(struct sbx_snapf *f, const uint8_t *meta, uint8_t *idx)
{
	if (f->version == 3) {
		f->meta_sum = sbx_hash64(meta, (size_t)f->meta_len, 0);
		return;
	}
	memset(idx, 0, (size_t)f->idx_len);
	for (uint64_t b = 0; b < f->nblocks; b++)
		mk_put_le64(idx + 8 * b, sbx_hash64(meta + b * SBX_SNAPF_BLOCK, SBX_SNAPF_BLOCK, 0));
	f->meta_sum = sbx_hash64(idx, (size_t)f->idx_len, 0);
}

void sbx_snapf_encode(const struct sbx_snapf *f, uint8_t *hdr)
{
	memset(hdr, 0, SBX_SNAPF_HDR);
	memcpy(hdr, MAGIC, 8);
	mk_put_le32(hdr + 8, f->version);
	mk_put_le32(hdr + 12, SBX_SNAPF_HDR);
	mk_put_le64(hdr + 16, f->data_off);
	mk_put_le64(hdr + 24, f->size);
	mk_put_le64(hdr + 32, f->meta_sum);
	mk_put_le32(hdr + 48, f->chunk);
	mk_put_le32(hdr + 52, f->alg);
	mk_put_le64(hdr + 56, f->nchunks);
	mk_put_le64(hdr + 64, f->meta_off);
	mk_put_le64(hdr + 72, f->meta_off + 8 * f->nchunks);
	mk_put_le64(hdr + 80, f->ws_off);
	mk_put_le64(hdr + 88, f->ws_len);
	if (f->version == 4) {
		mk_put_le64(hdr + 96, f->idx_off);
		mk_put_le64(hdr + 104, f->idx_len);
	}
	mk_put_le64(hdr + 40, sbx_snapf_hdr_sum(hdr));
}

/* Versions 3 and 4: the fields after the common ones, exactly the layout they imply. */
static int parse_chunked(const uint8_t *hdr, struct sbx_snapf *f, const char *fn)
{
	struct sbx_snapf want;
	uint32_t chunk = mk_get_le32(hdr + 48), alg = mk_get_le32(hdr + 52);
	unsigned reserved = f->version == 4 ? V4_RESERVED : V3_RESERVED;

	if (sbx_snapf_layout(f->size, chunk, alg, f->version, &want) < 0)
		return bad_file(EBADMSG, fn, "chunk size %" PRIu32 " or checksum %" PRIu32 " is not one "
				"of this format's (64 KiB to 2 MiB, a power of two; 1 or 2), or %" PRIu64
				" data bytes do not fit", chunk, alg, f->size);
	if (mk_get_le64(hdr + 56) != want.nchunks || mk_get_le64(hdr + 64) != want.meta_off ||
	    mk_get_le64(hdr + 72) != want.meta_off + 8 * want.nchunks ||
	    mk_get_le64(hdr + 80) != want.ws_off || mk_get_le64(hdr + 88) != want.ws_len ||
	    mk_get_le64(hdr + 16) != want.data_off)
		return bad_file(EBADMSG, fn, "chunk count %" PRIu64 ", offsets %" PRIu64 "/%" PRIu64
				"/%" PRIu64 "/%" PRIu64 " (+%" PRIu64 ") are not the layout of %" PRIu64
				" bytes in %" PRIu32 "-byte chunks", mk_get_le64(hdr + 56),
				mk_get_le64(hdr + 64), mk_get_le64(hdr + 72), mk_get_le64(hdr + 80),
				mk_get_le64(hdr + 16), mk_get_le64(hdr + 88), f->size, chunk);
	if (f->version == 4 && (mk_get_le64(hdr + 96) != want.idx_off || mk_get_le64(hdr + 104) != want.idx_len))
		return bad_file(EBADMSG, fn, "index offset %" PRIu64 " and size %" PRIu64 " are not the "
				"layout's (%" PRIu64 ", %" PRIu64 ")", mk_get_le64(hdr + 96),
				mk_get_le64(hdr + 104), want.idx_off, want.idx_len);
	if (!sbx_all_zero(hdr + reserved, SBX_SNAPF_HDR - reserved))
		return bad_file(EBADMSG, fn, "reserved header bytes are not zero");
	want.hdr_sum = f->hdr_sum;
	want.meta_sum = mk_get_le64(hdr + 32);
	*f = want;
	return 0;
}

int sbx_snapf_parse(const uint8_t *hdr, size_t n, struct sbx_snapf *f, const char *fn)
{
	uint64_t sum, size;
	uint32_t version;

	memset(f, 0, sizeof(*f));
	if (n < V2_RESERVED)
		return bad_file(ENODATA, fn, "%zu bytes are too short for a header", n);
	if (memcmp(hdr, MAGIC, 8))
		return bad_file(EBADMSG, fn, "no " MAGIC " magic");
	version = mk_get_le32(hdr + 8);
	sum = mk_get_le64(hdr + 40);
	if (version == 1) {
		if (sum != sbx_hash64(hdr, 40, 0))
			return bad_file(EBADMSG, fn, "version 1 header checksum mismatch");
	} else {
		/* Version 2 and any later one: the checksum covers the whole header. */
		if (n < SBX_SNAPF_HDR)
			return bad_file(ENODATA, fn, "%zu bytes are too short for a header", n);
		if (sum != sbx_snapf_hdr_sum(hdr))
			return bad_file(EBADMSG, fn, "header checksum mismatch");
		if (version < 2 || version > 4)
			return bad_file(EPROTONOSUPPORT, fn, "version %" PRIu32 " (this library reads 1..4)",
					version);
	}
	size = mk_get_le64(hdr + 24);
	if (mk_get_le32(hdr + 12) != SBX_SNAPF_HDR || size == 0 || !mk_is_aligned(size, mk_page_size()) ||
	    size > (uint64_t)(SIZE_MAX / 2))
		return bad_file(EBADMSG, fn, "header size %" PRIu32 ", data size %" PRIu64 " (need %u "
				"and a non-zero page multiple)", mk_get_le32(hdr + 12), size, SBX_SNAPF_HDR);
	f->version = version;
	f->size = size;
	f->hdr_sum = sum;
	if (version >= 3)
		return parse_chunked(hdr, f, fn);
	if (mk_get_le64(hdr + 16) != SBX_SNAPF_HDR)
		return bad_file(EBADMSG, fn, "data offset %" PRIu64 " (need %u)", mk_get_le64(hdr + 16),
				SBX_SNAPF_HDR);
	if (n < SBX_SNAPF_HDR)
		return bad_file(ENODATA, fn, "%zu bytes are too short for a header", n);
	if (!sbx_all_zero(hdr + V2_RESERVED, SBX_SNAPF_HDR - V2_RESERVED))
		return bad_file(EBADMSG, fn, "reserved header bytes are not zero");
	f->data_off = SBX_SNAPF_HDR;
	f->data_sum = mk_get_le64(hdr + 32);
	return 0;
}

int sbx_snapf_index(const struct sbx_snapf *f, const uint8_t *raw, uint64_t *idx, const char *fn)
{
	if (sbx_hash64(raw, (size_t)f->idx_len, 0) != f->meta_sum)
		return bad_file(EBADMSG, fn, "table index checksum mismatch");
	if (!sbx_all_zero(raw + 8 * f->nblocks, (size_t)(f->idx_len - 8 * f->nblocks)))
		return bad_file(EBADMSG, fn, "the padding after the table index is not zero");
	for (uint64_t b = 0; b < f->nblocks; b++)
		idx[b] = mk_get_le64(raw + 8 * b);
	return 0;
}

/*
 * Decode table block b (SBX_SNAPF_BLOCK bytes of the table, zero bitmap
 * and padding, from byte b * SBX_SNAPF_BLOCK) into sums and zero, with the
 * checks one block allows: 0 or -EBADMSG.
 */
static int decode_block(const struct sbx_snapf *f, uint64_t b, const uint8_t *blk, uint64_t *sums,
			uint64_t *zero, const char *fn)
{
	uint64_t words = sbx_bitmap_words(f->nchunks), tab = 8 * f->nchunks, used = tab + 8 * words;

	for (uint64_t o = b * SBX_SNAPF_BLOCK, e = o + SBX_SNAPF_BLOCK; o < e; o += 8) {
		uint64_t v = mk_get_le64(blk + o % SBX_SNAPF_BLOCK), w = (o - tab) / 8;

		if (o < tab) {
			sums[o / 8] = v;
			if (f->alg == SBX_CHECKSUM_CRC32C && v >> 32)
				return bad_file(EBADMSG, fn, "chunk %" PRIu64 "'s CRC-32C has 64 bits", o / 8);
		} else if (o < used) {
			zero[w] = v;
			/* Bits past the last chunk stay clear. */
			if (w == words - 1 && f->nchunks % 64 && v >> (f->nchunks % 64))
				return bad_file(EBADMSG, fn, "zero bitmap has bits past chunk %" PRIu64,
						f->nchunks);
		} else if (v) {
			return bad_file(EBADMSG, fn, "the padding after the zero bitmap is not zero");
		}
	}
	return 0;
}

int sbx_snapf_block(const struct sbx_snapf *f, uint64_t b, const uint8_t *blk, uint64_t sum,
		    uint64_t *sums, uint64_t *zero, const char *fn)
{
	if (sbx_hash64(blk, SBX_SNAPF_BLOCK, 0) != sum)
		return bad_file(EBADMSG, fn, "table block %" PRIu64 " (file offset %" PRIu64 ") checksum "
				"mismatch", b, f->meta_off + b * SBX_SNAPF_BLOCK);
	return decode_block(f, b, blk, sums, zero, fn);
}

int sbx_snapf_entry(const struct sbx_snapf *f, const uint64_t *sums, const uint64_t *zero, uint64_t k,
		    const char *fn)
{
	if (sbx_bit(zero, k) && sums[k])
		return bad_file(EBADMSG, fn, "chunk %" PRIu64 " is marked all zero but has a checksum", k);
	return 0;
}

int sbx_snapf_meta(const struct sbx_snapf *f, const uint8_t *meta, const uint64_t *idx, uint64_t *sums,
		   uint64_t *zero, const char *fn)
{
	int r = 0;

	if (f->version == 3 && sbx_hash64(meta, (size_t)f->meta_len, 0) != f->meta_sum)
		return bad_file(EBADMSG, fn, "chunk table checksum mismatch");
	for (uint64_t b = 0; r == 0 && b < f->meta_len / SBX_SNAPF_BLOCK; b++) {
		const uint8_t *blk = meta + b * SBX_SNAPF_BLOCK;

		r = f->version == 3 ? decode_block(f, b, blk, sums, zero, fn)
				    : sbx_snapf_block(f, b, blk, idx[b], sums, zero, fn);
	}
	for (uint64_t k = 0; r == 0 && k < f->nchunks; k++)
		r = sbx_snapf_entry(f, sums, zero, k, fn);
	return r;
}

void sbx_snapf_meta_encode(const struct sbx_snapf *f, const uint64_t *sums, const uint64_t *zero,
			   uint8_t *meta)
{
	uint64_t words = sbx_bitmap_words(f->nchunks);

	memset(meta, 0, (size_t)f->meta_len);
	for (uint64_t i = 0; i < f->nchunks; i++)
		mk_put_le64(meta + 8 * i, sums[i]);
	for (uint64_t w = 0; w < words; w++)
		mk_put_le64(meta + 8 * f->nchunks + 8 * w, zero[w]);
}

static uint64_t ws_sum(const struct sbx_snapf *f, const uint8_t *ws)
{
	return sbx_hash64(ws + WS_HDR, (size_t)(8 * sbx_bitmap_words(f->nchunks)), f->hdr_sum);
}

int sbx_snapf_ws_decode(const struct sbx_snapf *f, const uint8_t *ws, uint64_t *bits, const char *fn)
{
	uint64_t words = sbx_bitmap_words(f->nchunks), count = 0;

	if (sbx_all_zero(ws, WS_HDR))
		return -ENODATA;        /* none saved */
	if (memcmp(ws, WS_MAGIC, 8) || mk_get_le64(ws + 8) != f->nchunks || mk_get_le64(ws + 24) != ws_sum(f, ws))
		return bad_file(ENODATA, fn, "the working set saved in the file is damaged or from "
				"an earlier snapshot: not prefetched");
	for (uint64_t w = 0; w < words; w++) {
		bits[w] = mk_get_le64(ws + WS_HDR + 8 * w);
		count += (uint64_t)__builtin_popcountll(bits[w]);
	}
	if ((f->nchunks % 64 && bits[words - 1] >> (f->nchunks % 64)) || count != mk_get_le64(ws + 16))
		return bad_file(ENODATA, fn, "the working set saved in the file is damaged: not "
				"prefetched");
	return 0;
}

void sbx_snapf_ws_encode(const struct sbx_snapf *f, const uint64_t *bits, uint8_t *ws)
{
	uint64_t words = sbx_bitmap_words(f->nchunks), count = 0;

	memset(ws, 0, (size_t)f->ws_len);
	memcpy(ws, WS_MAGIC, 8);
	mk_put_le64(ws + 8, f->nchunks);
	for (uint64_t w = 0; w < words; w++) {
		uint64_t v = bits[w];

		if (w == words - 1 && f->nchunks % 64)
			v &= (1ull << (f->nchunks % 64)) - 1;
		mk_put_le64(ws + WS_HDR + 8 * w, v);
		count += (uint64_t)__builtin_popcountll(v);
	}
	mk_put_le64(ws + 16, count);
	mk_put_le64(ws + 24, ws_sum(f, ws));
}

/* The file's length against the header's: a regular file ends right after the data. */
static int check_length(int fd, const struct sbx_snapf *f, const char *fn)
{
	struct stat st;
	uint64_t end;
	int r = mk_fstat(fd, &st);

	if (r < 0)
		return r;
	if (mk_add_u64(f->data_off, f->size, &end) < 0)
		return bad_file(EBADMSG, fn, "data size %" PRIu64 " overflows", f->size);
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end)
		return bad_file(ENODATA, fn, "the file has %lld bytes, the header promises %" PRIu64,
				(long long)st.st_size, end);
	/* Bytes after the data are not ours: save truncates the file there. */
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > end)
		return bad_file(EBADMSG, fn, "the file has %lld bytes, more than the header's %" PRIu64,
				(long long)st.st_size, end);
	return 0;
}

/*
 * Header, table and working set lie together at the file's start: one
 * read of up to PREFIX bytes gets all of them for files of up to about 2
 * GiB in 256 KiB chunks, a second read the rest, for larger ones, up to
 * PREFIX_MAX; past that, one read each. A lazy open of version 4 reads
 * LAZY_PREFIX, header and the first index page (a table of up to 2 MiB:
 * 64 GiB in 256 KiB chunks), then the working set if it wants it.
 */
#define PREFIX      (64u << 10)
#define PREFIX_MAX  (1u << 20)
#define LAZY_PREFIX (SBX_SNAPF_HDR + 4096u)

/* Bytes [off, off + len) of the file: in buf (n bytes from 0), or read into tmp. NULL on error. */
static const uint8_t *part(int fd, const uint8_t *buf, size_t n, uint64_t off, uint64_t len,
			   uint8_t **tmp, int *err, const char *fn, const char *what)
{
	ssize_t got;

	if (off + len <= n)
		return buf + off;
	*tmp = mk_malloc((size_t)len);
	if (!*tmp) {
		*err = -ENOMEM;
		return NULL;
	}
	got = mk_pread_full(fd, *tmp, (size_t)len, off);
	if (got >= 0 && (uint64_t)got < len)
		got = bad_file(ENODATA, fn, "the %s ends after %zd of %" PRIu64 " bytes", what, got, len);
	if (got < 0) {
		*err = (int)got;
		return NULL;
	}
	return *tmp;
}

/* The working set of the section in buf or the file (NULL: none, or not valid: logged). */
static int read_ws(int fd, const uint8_t *buf, size_t n, const struct sbx_snapf *f, uint64_t **out,
		   const char *fn)
{
	uint64_t *bits = mk_calloc((size_t)sbx_bitmap_words(f->nchunks), sizeof(uint64_t));
	uint8_t *tmp = NULL;
	const uint8_t *p;
	int r = 0;

	*out = NULL;
	if (!bits)
		return -ENOMEM;
	p = part(fd, buf, n, f->ws_off, f->ws_len, &tmp, &r, fn, "working set");
	if (p && sbx_snapf_ws_decode(f, p, bits, fn) == 0)
		*out = bits;
	else
		free(bits);
	free(tmp);
	return r == -ENODATA ? 0 : r;           /* a hint lost, nothing else */
}

/* Version 4's index from buf or the file into a new array (*idx). */
static int read_index(int fd, const uint8_t *buf, size_t n, const struct sbx_snapf *f, uint64_t **idx,
		      const char *fn)
{
	uint8_t *tmp = NULL;
	const uint8_t *p;
	int r = 0;

	*idx = mk_calloc((size_t)f->nblocks, sizeof(uint64_t));
	if (!*idx)
		return -ENOMEM;
	p = part(fd, buf, n, f->idx_off, f->idx_len, &tmp, &r, fn, "table index");
	if (p)
		r = sbx_snapf_index(f, p, *idx, fn);
	free(tmp);
	if (r < 0) {
		free(*idx);
		*idx = NULL;
	}
	return r;
}

/* The table (and, version 4, its index) from buf (n bytes of the file's start) or the file. */
static int read_tables(int fd, const uint8_t *buf, size_t n, const struct sbx_snapf *f,
		       uint64_t *s, uint64_t *z, const char *fn)
{
	uint64_t *idx = NULL;
	uint8_t *tmp = NULL;
	const uint8_t *p;
	int r = f->version == 4 ? read_index(fd, buf, n, f, &idx, fn) : 0;

	if (r < 0)
		return r;
	p = part(fd, buf, n, f->meta_off, f->meta_len, &tmp, &r, fn, "chunk table");
	if (p)
		r = sbx_snapf_meta(f, p, idx, s, z, fn);
	free(tmp);
	free(idx);
	return r;
}

/* Read [n, need) into *buf too when it is not too much (else part() reads what it needs). */
static size_t grow(int fd, uint8_t **buf, size_t n, uint64_t need)
{
	uint8_t *more;
	ssize_t got;

	if (need <= n || need > PREFIX_MAX || !(more = mk_realloc(*buf, (size_t)need)))
		return n;
	*buf = more;
	got = mk_pread_full(fd, more + n, (size_t)(need - n), n);
	return got < 0 ? n : n + (size_t)got;
}

int sbx_snapf_read(int fd, struct sbx_snapf *f, uint64_t **sums, uint64_t **zero, uint64_t **ws,
		   uint64_t **idx, const char *fn)
{
	size_t first = idx ? LAZY_PREFIX : PREFIX, n;
	uint64_t *s = NULL, *z = NULL;
	uint8_t *buf = mk_malloc(first);
	ssize_t got;
	int r;

	*sums = *zero = NULL;
	if (ws)
		*ws = NULL;
	if (idx)
		*idx = NULL;
	if (!buf)
		return -ENOMEM;
	got = mk_pread_full(fd, buf, first, 0);
	r = got < 0 ? (int)got : sbx_snapf_parse(buf, MK_MIN((size_t)got, (size_t)SBX_SNAPF_HDR), f, fn);
	n = got < 0 ? 0 : (size_t)got;
	/* Check the length before allocating anything of the sizes the header gives. */
	if (r == 0)
		r = check_length(fd, f, fn);
	if (r < 0 || f->version < 3)
		goto out;
	s = mk_calloc((size_t)f->nchunks, sizeof(uint64_t));
	z = mk_calloc((size_t)sbx_bitmap_words(f->nchunks), sizeof(uint64_t));
	if (!s || !z) {
		r = -ENOMEM;
	} else if (idx && f->version == 4) {
		/* Lazy: the index only, the table blocks when needed (their arrays zero until then). */
		r = read_index(fd, buf, n, f, idx, fn);
		if (r == 0 && ws)
			r = read_ws(fd, buf, n, f, ws, fn);
	} else {
		n = grow(fd, &buf, n, ws ? f->ws_off + f->ws_len : f->meta_off + f->meta_len);
		r = read_tables(fd, buf, n, f, s, z, fn);
		if (r == 0 && ws)
			r = read_ws(fd, buf, n, f, ws, fn);
	}
	if (r < 0) {
		free(s);
		free(z);
		if (idx) {
			free(*idx);
			*idx = NULL;
		}
		goto out;
	}
	*sums = s;
	*zero = z;
out:
	free(buf);
	return r;
}
