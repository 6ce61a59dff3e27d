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

int sbx_snapf_layout(uint64_t size, uint32_t chunk, uint32_t alg, struct sbx_snapf *f)
{
	uint64_t n, words, end;

	if (!mk_is_pow2(chunk) || chunk < SBX_CHUNK_MIN || chunk > SBX_CHUNK_MAX || !size ||
	    size > (uint64_t)(SIZE_MAX / 2) || (alg != SBX_CHECKSUM_CRC32C && alg != SBX_CHECKSUM_HASH64))
		return -EINVAL;
	memset(f, 0, sizeof(*f));
	n = (size + chunk - 1) / chunk;
	words = sbx_bitmap_words(n);
	f->version = 3;
	f->size = size;
	f->chunk = chunk;
	f->chunk_shift = mk_log2(chunk);
	f->alg = alg;
	f->nchunks = n;
	f->meta_off = SBX_SNAPF_HDR;
	/* Small numbers (n <= 2^47): no overflow below; the data end is checked. */
	(void)mk_align_up(f->meta_off + 8 * n + 8 * words, 4096, &f->ws_off);
	f->meta_len = f->ws_off - f->meta_off;   /* with the zero padding up to the working set */
	(void)mk_align_up(WS_HDR + 8 * words, 4096, &f->ws_len);
	f->data_off = f->ws_off + f->ws_len;
	return mk_add_u64(f->data_off, size, &end) < 0 ? -EINVAL : 0;
}

void sbx_snapf_encode(const struct sbx_snapf *f, uint8_t *hdr)
{
	memset(hdr, 0, SBX_SNAPF_HDR);
	memcpy(hdr, MAGIC, 8);
	mk_put_le32(hdr + 8, 3);
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
	mk_put_le64(hdr + 40, sbx_snapf_hdr_sum(hdr));
}

/* Version 3's fields after the common ones: the layout must be exactly the one it implies. */
static int parse_v3(const uint8_t *hdr, struct sbx_snapf *f, const char *fn)
{
	struct sbx_snapf want;
	uint32_t chunk = mk_get_le32(hdr + 48), alg = mk_get_le32(hdr + 52);

	if (sbx_snapf_layout(f->size, chunk, alg, &want) < 0)
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
	if (!sbx_all_zero(hdr + V3_RESERVED, SBX_SNAPF_HDR - V3_RESERVED))
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
		if (version != 2 && version != 3)
			return bad_file(EPROTONOSUPPORT, fn, "version %" PRIu32 " (this library reads 1..3)",
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
	if (version == 3)
		return parse_v3(hdr, f, fn);
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

int sbx_snapf_meta(const struct sbx_snapf *f, const uint8_t *meta, uint64_t *sums, uint64_t *zero,
		   const char *fn)
{
	uint64_t words = sbx_bitmap_words(f->nchunks), used = 8 * f->nchunks + 8 * words;
	const uint8_t *zb = meta + 8 * f->nchunks;

	if (sbx_hash64(meta, (size_t)f->meta_len, 0) != f->meta_sum)
		return bad_file(EBADMSG, fn, "chunk table checksum mismatch");
	if (!sbx_all_zero(meta + used, (size_t)(f->meta_len - used)))
		return bad_file(EBADMSG, fn, "the padding after the zero bitmap is not zero");
	for (uint64_t w = 0; w < words; w++) {
		zero[w] = mk_get_le64(zb + 8 * w);
		/* Bits past the last chunk stay clear. */
		if (w == words - 1 && f->nchunks % 64 && zero[w] >> (f->nchunks % 64))
			return bad_file(EBADMSG, fn, "zero bitmap has bits past chunk %" PRIu64, f->nchunks);
	}
	for (uint64_t i = 0; i < f->nchunks; i++) {
		sums[i] = mk_get_le64(meta + 8 * i);
		if (sbx_bit(zero, i) && sums[i])
			return bad_file(EBADMSG, fn, "chunk %" PRIu64 " is marked all zero but has a "
					"checksum", i);
		if (f->alg == SBX_CHECKSUM_CRC32C && sums[i] >> 32)
			return bad_file(EBADMSG, fn, "chunk %" PRIu64 "'s CRC-32C has 64 bits", i);
	}
	return 0;
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
 * GiB in 256 KiB chunks (a lazy open from a cold cache is one disk read),
 * a second read the rest, for larger ones, up to PREFIX_MAX; past that,
 * one read each.
 */
#define PREFIX     (64u << 10)
#define PREFIX_MAX (1u << 20)

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

/* The working set in the section at ws (NULL: none, or not valid: logged). */
static int decode_ws(const struct sbx_snapf *f, const uint8_t *ws, uint64_t **out, const char *fn)
{
	uint64_t *bits = mk_calloc((size_t)sbx_bitmap_words(f->nchunks), sizeof(uint64_t));

	if (!bits)
		return -ENOMEM;
	if (sbx_snapf_ws_decode(f, ws, bits, fn) < 0) {
		free(bits);
		bits = NULL;
	}
	*out = bits;
	return 0;
}

/* Version 3's table (and working set) from buf (n bytes of the file's start) or the file. */
static int read_tables(int fd, const uint8_t *buf, size_t n, const struct sbx_snapf *f,
		       uint64_t *s, uint64_t *z, uint64_t **ws, const char *fn)
{
	uint8_t *tmp = NULL;
	const uint8_t *p;
	int r = 0;

	p = part(fd, buf, n, f->meta_off, f->meta_len, &tmp, &r, fn, "chunk table");
	if (p)
		r = sbx_snapf_meta(f, p, s, z, fn);
	free(tmp);
	tmp = NULL;
	if (r < 0 || !ws)
		return r;
	p = part(fd, buf, n, f->ws_off, f->ws_len, &tmp, &r, fn, "working set");
	if (p)
		r = decode_ws(f, p, ws, fn);
	else if (r == -ENODATA)
		r = 0;          /* a hint lost, nothing else */
	free(tmp);
	return r;
}

int sbx_snapf_read(int fd, struct sbx_snapf *f, uint64_t **sums, uint64_t **zero, uint64_t **ws,
		   const char *fn)
{
	uint64_t *s = NULL, *z = NULL, need;
	uint8_t *buf = mk_malloc(PREFIX), *more;
	ssize_t n, got;
	int r;

	*sums = *zero = NULL;
	if (ws)
		*ws = NULL;
	if (!buf)
		return -ENOMEM;
	n = mk_pread_full(fd, buf, PREFIX, 0);
	r = n < 0 ? (int)n : sbx_snapf_parse(buf, (size_t)MK_MIN((size_t)n, (size_t)SBX_SNAPF_HDR), f, fn);
	/* Check the length before allocating anything of the sizes the header gives. */
	if (r == 0)
		r = check_length(fd, f, fn);
	if (r < 0 || f->version < 3)
		goto out;
	need = ws ? f->ws_off + f->ws_len : f->meta_off + f->meta_len;
	if (need > (uint64_t)n && need <= PREFIX_MAX && (more = mk_realloc(buf, (size_t)need))) {
		buf = more;
		got = mk_pread_full(fd, buf + n, (size_t)(need - (uint64_t)n), (uint64_t)n);
		n = got < 0 ? n : n + got;
	}
	s = mk_calloc((size_t)f->nchunks, sizeof(uint64_t));
	z = mk_calloc((size_t)sbx_bitmap_words(f->nchunks), sizeof(uint64_t));
	r = s && z ? read_tables(fd, buf, (size_t)n, f, s, z, ws, fn) : -ENOMEM;
	if (r < 0) {
		free(s);
		free(z);
		goto out;
	}
	*sums = s;
	*zero = z;
out:
	free(buf);
	return r;
}
