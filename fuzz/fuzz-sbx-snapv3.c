/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: version-3 and -4 snapshot files (memkit-snapshot(5))
 * through both readers: sbx_snapshot_load() (eager, every table block and
 * chunk checked) and sbx_snapshot_open(SBX_OPEN_LAZY) (version 3: header
 * and table at open; version 4: header and table index at open, a table
 * block when a chunk it describes is first read; each chunk when read, the
 * working set when a region is mapped).
 *
 * Input: [mode byte][rest]. An even mode feeds rest as the file's bytes.
 * Random bytes almost never carry right 64-bit checksums, so an odd mode
 * builds the file from rest and mends what the mode bits ask for:
 *
 *   rest = params | npages | 48 header bytes | patches | data bytes
 *   params: bits 0..2 chunk size 64 KiB << n (6, 7: 32 KiB, 4 MiB: wrong),
 *           bit 3 the 64-bit hash instead of CRC-32C, bits 4..7 zero chunks
 *   npages: bit 7 version 4 (else 3), the rest 1 + n % 48 pages
 *   patches: a count (0..7), then that many (u16 LE file offset, u8 value)
 *
 *   0x02 magic, version, header size    0x04 the layout fields
 *   0x08 table and zero bitmap from the data   0x10 table (v3) or index
 *   (v4) and header checksums   0x20 the patches go in before the mends
 *   (else after: past the checksums only if they miss them)   0x40 a valid
 *   working set   0x80 the file one byte short
 *
 * Oracle: an independent reading of the format (head_ok(), block_ok(),
 * entry_ok(), chunk_ok() below, from the man page). Load must succeed
 * exactly for a valid file, with its data (zeros for zero chunks); a lazy
 * open exactly when what it reads is valid (v3: header and table; v4:
 * header and index), then each chunk must read right or fail -EBADMSG
 * exactly as its checks say (v4: its table blocks' too), and a valid
 * working set must be queued for prefetch chunk for chunk.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/le.h"
#include "common/macro.h"
#include "common/sys.h"
#include "sandboxP.h"         /* sbx_hash64(): the format's hash */
#include "fuzz/seeds.h"

#define HDR 4096u
#define BLK 4096u
#define MEND_MAGIC  0x02
#define MEND_LAYOUT 0x04
#define MEND_TABLE  0x08
#define MEND_SUMS   0x10
#define PATCH_FIRST 0x20
#define MEND_WS     0x40
#define SHORT       0x80
#define MAXPAGES    48u
#define MAXFILE     (4 * HDR + 2 * HDR + MAXPAGES * 4096u)

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
const char *mk_fuzz_summary(void);
int mk_fuzz_reached(void);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long n_loaded, n_structured, n_built_loaded, n_lazy, n_bad_chunks, n_prefetch,
		     n_v4_lazy, n_bad_blocks;

static uint64_t up4k(uint64_t x)
{
	return (x + 4095) & ~4095ull;
}

/* The layout a version, data size and chunk size imply (man page, "Version 3", "Version 4"). */
struct layout {
	uint32_t version;
	uint64_t size, chunk, n, words, nblocks, idx_len, meta_off, meta_len, zero_off, ws_off, ws_len,
		 data_off;
};

static void layout_of(uint32_t version, uint64_t size, uint64_t chunk, struct layout *l)
{
	l->version = version;
	l->size = size;
	l->chunk = chunk;
	l->n = (size + chunk - 1) / chunk;
	l->words = (l->n + 63) / 64;
	l->meta_len = up4k(8 * l->n + 8 * l->words);
	l->nblocks = version == 4 ? l->meta_len / BLK : 0;
	l->idx_len = up4k(8 * l->nblocks);
	l->meta_off = HDR + l->idx_len;
	l->zero_off = l->meta_off + 8 * l->n;
	l->ws_off = l->meta_off + l->meta_len;
	l->ws_len = up4k(32 + 8 * l->words);
	l->data_off = l->ws_off + l->ws_len;
}

static uint64_t header_sum(const uint8_t *f)
{
	uint8_t copy[HDR];

	memcpy(copy, f, HDR);
	memset(copy + 40, 0, 8);
	return sbx_hash64(copy, HDR, 0);
}

static uint64_t chunk_sum(uint32_t alg, const uint8_t *p, size_t n)
{
	return alg == 1 ? mk_crc32c_soft(0, p, n) : sbx_hash64(p, n, 0);
}

static bool zero_bit(const uint8_t *f, const struct layout *l, uint64_t k)
{
	return f[l->zero_off + k / 8] >> (k % 8) & 1;
}

static uint64_t entry(const uint8_t *f, const struct layout *l, uint64_t k)
{
	return mk_get_le64(f + l->meta_off + 8 * k);
}

/* The checks of table block b's own bytes: CRC-32C entries of 32 bits, no stray bits, zero padding. */
static bool block_bytes_ok(const uint8_t *f, const struct layout *l, uint64_t b)
{
	uint64_t tab = 8 * l->n, used = tab + 8 * l->words;

	for (uint64_t i = b * BLK; i < (b + 1) * BLK; i++) {
		uint8_t v = f[l->meta_off + i];

		if (!v)
			continue;
		if (i >= used || (i < tab && i % 8 >= 4 && mk_get_le32(f + 52) == 1))
			return false;
		for (unsigned bit = 0; i >= tab && bit < 8; bit++)
			if ((i - tab) * 8 + bit >= l->n && v >> bit & 1)
				return false;   /* a zero bit past the last chunk */
	}
	return true;
}

/* Version 4: table block b matches its index entry and checks. */
static bool block_ok(const uint8_t *f, const struct layout *l, uint64_t b)
{
	return mk_get_le64(f + HDR + 8 * b) == sbx_hash64(f + l->meta_off + b * BLK, BLK, 0) &&
	       block_bytes_ok(f, l, b);
}

/* Chunk k's entry usable: v4 its two table blocks good; not zero with a checksum. */
static bool entry_ok(const uint8_t *f, const struct layout *l, uint64_t k)
{
	if (l->version == 4 && (!block_ok(f, l, 8 * k / BLK) ||
				!block_ok(f, l, (8 * l->n + 8 * (k / 64)) / BLK)))
		return false;
	return !(zero_bit(f, l, k) && entry(f, l, k));
}

/*
 * What a lazy open reads is valid (the file's length too): the header, and
 * the table (v3) or the index (v4). *l filled.
 */
static bool head_ok(const uint8_t *f, size_t len, struct layout *l)
{
	uint64_t size, chunk;
	uint32_t alg, version;
	size_t reserved;

	if (len < HDR || memcmp(f, "MKSBXSNP", 8) || mk_get_le64(f + 40) != header_sum(f))
		return false;
	version = mk_get_le32(f + 8);
	size = mk_get_le64(f + 24);
	chunk = mk_get_le32(f + 48);
	alg = mk_get_le32(f + 52);
	if ((version != 3 && version != 4) || mk_get_le32(f + 12) != HDR || !size ||
	    size % (uint64_t)getpagesize() || size > (SIZE_MAX / 2) ||
	    chunk < 65536 || chunk > (2u << 20) || (chunk & (chunk - 1)) || (alg != 1 && alg != 2))
		return false;
	layout_of(version, size, chunk, l);
	if (mk_get_le64(f + 56) != l->n || mk_get_le64(f + 64) != l->meta_off ||
	    mk_get_le64(f + 72) != l->zero_off || mk_get_le64(f + 80) != l->ws_off ||
	    mk_get_le64(f + 88) != l->ws_len || mk_get_le64(f + 16) != l->data_off)
		return false;
	if (version == 4 && (mk_get_le64(f + 96) != HDR || mk_get_le64(f + 104) != l->idx_len))
		return false;
	reserved = version == 4 ? 112 : 96;
	for (size_t i = reserved; i < HDR; i++)
		if (f[i])
			return false;
	if (len != l->data_off + size)
		return false;
	if (version == 4) {
		for (uint64_t i = HDR + 8 * l->nblocks; i < l->meta_off; i++)
			if (f[i])
				return false;
		return mk_get_le64(f + 32) == sbx_hash64(f + HDR, l->idx_len, 0);
	}
	if (mk_get_le64(f + 32) != sbx_hash64(f + l->meta_off, l->meta_len, 0))
		return false;
	for (uint64_t b = 0; b < l->meta_len / BLK; b++)
		if (!block_bytes_ok(f, l, b))
			return false;
	for (uint64_t k = 0; k < l->n; k++)
		if (!entry_ok(f, l, k))
			return false;
	return true;
}

static size_t chunk_len(const struct layout *l, uint64_t k)
{
	uint64_t off = k * l->chunk;

	return (size_t)(l->size - off < l->chunk ? l->size - off : l->chunk);
}

static bool chunk_ok(const uint8_t *f, const struct layout *l, uint64_t k)
{
	return entry_ok(f, l, k) &&
	       (zero_bit(f, l, k) || entry(f, l, k) == chunk_sum(mk_get_le32(f + 52),
								 f + l->data_off + k * l->chunk,
								 chunk_len(l, k)));
}

/* Does got (chunk k as a reader returned it) hold the chunk's bytes: zeros for a zero chunk? */
static bool chunk_matches(const uint8_t *f, const struct layout *l, uint64_t k, const uint8_t *got)
{
	size_t n = chunk_len(l, k);

	if (zero_bit(f, l, k))
		return !got[0] && !memcmp(got, got + 1, n - 1);
	return !memcmp(got, f + l->data_off + k * l->chunk, n);
}

/* The working-set section's chunk count, or -1 when it is none or not valid. */
static int64_t valid_ws(const uint8_t *f, const struct layout *l)
{
	const uint8_t *ws = f + l->ws_off;
	uint64_t count = 0;

	if (memcmp(ws, "MKSBXWS1", 8) || mk_get_le64(ws + 8) != l->n ||
	    mk_get_le64(ws + 24) != sbx_hash64(ws + 32, 8 * l->words, mk_get_le64(f + 40)))
		return -1;
	for (uint64_t w = 0; w < l->words; w++)
		count += (uint64_t)__builtin_popcountll(mk_get_le64(ws + 32 + 8 * w));
	for (uint64_t k = l->n; k < 64 * l->words; k++)
		if (ws[32 + k / 8] >> (k % 8) & 1)
			return -1;
	return count == mk_get_le64(ws + 16) ? (int64_t)count : -1;
}

/* Patches: a count (0..7), then (u16 LE offset, u8 value) each; returns bytes used. */
static size_t patch(uint8_t *f, size_t flen, const uint8_t *in, size_t n)
{
	size_t used = 1, k;

	if (!n)
		return 0;
	for (k = in[0] % 8; k && used + 3 <= n; k--, used += 3)
		f[(in[used] | in[used + 1] << 8) % flen] = in[used + 2];
	return used;
}

/* The table (sums and zero bits) from the data. */
static void mend_table(uint8_t *f, const struct layout *l, uint32_t alg)
{
	memset(f + l->meta_off, 0, l->meta_len);
	for (uint64_t k = 0; k < l->n; k++) {
		const uint8_t *p = f + l->data_off + k * l->chunk;
		size_t n = chunk_len(l, k), i;

		for (i = 0; i < n && !p[i]; i++)
			;
		if (i == n)
			f[l->zero_off + k / 8] |= (uint8_t)(1u << (k % 8));
		else
			mk_put_le64(f + l->meta_off + 8 * k, chunk_sum(alg, p, n));
	}
}

/* Version 3: the table's checksum; 4: the index of the table blocks and its checksum. */
static void mend_sums(uint8_t *f, const struct layout *l)
{
	if (l->version == 3) {
		mk_put_le64(f + 32, sbx_hash64(f + l->meta_off, l->meta_len, 0));
		return;
	}
	memset(f + HDR, 0, l->idx_len);
	for (uint64_t b = 0; b < l->nblocks; b++)
		mk_put_le64(f + HDR + 8 * b, sbx_hash64(f + l->meta_off + b * BLK, BLK, 0));
	mk_put_le64(f + 32, sbx_hash64(f + HDR, l->idx_len, 0));
}

static void mend_ws(uint8_t *f, const struct layout *l, uint8_t bits)
{
	uint8_t *ws = f + l->ws_off;
	uint64_t w = bits & (l->n >= 64 ? ~0ull : (1ull << l->n) - 1);

	memset(ws, 0, l->ws_len);
	memcpy(ws, "MKSBXWS1", 8);
	mk_put_le64(ws + 8, l->n);
	mk_put_le64(ws + 16, (uint64_t)__builtin_popcountll(w));
	mk_put_le64(ws + 32, w);
	mk_put_le64(ws + 24, sbx_hash64(ws + 32, 8 * l->words, mk_get_le64(f + 40)));
}

/* Build the file of an odd-mode input; returns its length. */
static size_t build(unsigned mode, const uint8_t *in, size_t n, uint8_t *f)
{
	unsigned params = n ? in[0] : 0, sel = params & 7;
	uint64_t chunk = sel == 6 ? 32768 : sel == 7 ? 4u << 20 : 65536ull << sel;
	uint32_t alg = params & 8 ? 2 : 1;
	uint64_t pages = n > 1 ? 1 + (in[1] & 0x7f) % MAXPAGES : 20;
	uint32_t version = n > 1 && in[1] & 0x80 ? 4 : 3;
	const uint8_t *hdr_in = in + MK_MIN(n, (size_t)2), *pin, *d;
	size_t hlen = n > 2 ? MK_MIN(n - 2, (size_t)48) : 0, len, used, dlen;
	struct layout l;

	layout_of(version, pages * 4096, chunk > (2u << 20) || chunk < 65536 ? 65536 : chunk, &l);
	len = (size_t)(l.data_off + l.size);
	memset(f, 0, len);
	memcpy(f, hdr_in, hlen);
	pin = hdr_in + hlen;
	used = patch(f, len, pin, n - (size_t)(pin - in));
	d = pin + used;
	dlen = n - (size_t)(d - in);
	for (uint64_t i = 0; i < l.size; i++)
		f[l.data_off + i] = dlen ? d[i % dlen] : (uint8_t)(i * 7 + i / 4096);
	/* Zero chunks: bits 4..7 of params for chunks 0..3. */
	for (uint64_t k = 0; k < l.n && k < 4; k++)
		if (params >> (4 + k) & 1)
			memset(f + l.data_off + k * l.chunk, 0, chunk_len(&l, k));
	if (mode & PATCH_FIRST)
		(void)patch(f, len, pin, n - (size_t)(pin - in));
	if (mode & MEND_MAGIC) {
		memcpy(f, "MKSBXSNP", 8);
		mk_put_le32(f + 8, version);
		mk_put_le32(f + 12, HDR);
	}
	if (mode & MEND_LAYOUT) {
		mk_put_le64(f + 16, l.data_off);
		mk_put_le64(f + 24, l.size);
		mk_put_le32(f + 48, (uint32_t)chunk);
		mk_put_le32(f + 52, alg);
		mk_put_le64(f + 56, l.n);
		mk_put_le64(f + 64, l.meta_off);
		mk_put_le64(f + 72, l.zero_off);
		mk_put_le64(f + 80, l.ws_off);
		mk_put_le64(f + 88, l.ws_len);
		memset(f + 96, 0, HDR - 96);
		if (version == 4) {
			mk_put_le64(f + 96, HDR);
			mk_put_le64(f + 104, l.idx_len);
		}
	}
	if (mode & MEND_TABLE)
		mend_table(f, &l, alg);
	if (mode & MEND_SUMS) {
		mend_sums(f, &l);
		mk_put_le64(f + 40, header_sum(f));
	}
	if (mode & MEND_WS)
		mend_ws(f, &l, (uint8_t)(params * 37 + 11));
	if (!(mode & PATCH_FIRST))
		(void)patch(f, len, pin, n - (size_t)(pin - in));
	return mode & SHORT ? len - 1 : len;
}

/* The eager reader against the oracle. */
static void check_load(int fd, const uint8_t *f, size_t len, bool meta, const struct layout *l)
{
	struct sbx_snapshot *s = NULL;
	bool valid = meta;
	int r;

	for (uint64_t k = 0; valid && k < l->n; k++)
		valid = chunk_ok(f, l, k);
	r = sbx_snapshot_load(fd, &s);
	if (r == -ENOMEM)
		return;
	if (r == 0 && mk_get_le32(f + 8) != 3 && mk_get_le32(f + 8) != 4) {
		sbx_snapshot_unref(s);   /* a version 1 or 2 file: fuzz-sbx-snapfile's oracle */
		return;
	}
	if ((r == 0) != valid)
		abort();
	if (r < 0) {
		if (s || (r != -EBADMSG && r != -ENODATA && r != -EPROTONOSUPPORT))
			abort();
		return;
	}
	for (uint64_t k = 0; k < l->n; k++)
		if (!chunk_matches(f, l, k, (const uint8_t *)sbx_snapshot_data(s) + k * l->chunk))
			abort();
	sbx_snapshot_unref(s);
	n_loaded++;
	(void)len;
}

/* The lazy reader: open exactly when what it reads is valid; each chunk as its checks say. */
static void check_lazy(int fd, const uint8_t *f, bool meta, const struct layout *l)
{
	struct sbx_snapshot *s = NULL;
	struct sbx_mem *m = NULL;
	struct sbx_lazy_stats st = { .size = sizeof(st) };
	uint8_t *buf;
	int64_t ws;
	int r = sbx_snapshot_open(fd, SBX_OPEN_LAZY | SBX_OPEN_NO_THREAD, &s);

	if (r == -ENOMEM || r == -EPERM || r == -EMFILE)
		return;
	if (r == 0 && !sbx_snapshot_is_lazy(s)) {
		sbx_snapshot_unref(s);   /* version 1 or 2: loaded whole */
		return;
	}
	if ((r == 0) != meta)
		abort();
	if (r < 0) {
		if (s || (r != -EBADMSG && r != -ENODATA && r != -EPROTONOSUPPORT))
			abort();
		return;
	}
	if (sbx_mem_new_from_snapshot(s, &m) < 0) {
		sbx_snapshot_unref(s);
		return;
	}
	ws = valid_ws(f, l);
	if (sbx_snapshot_lazy_stats(s, &st) < 0 || st.prefetch_queued != (uint64_t)(ws < 0 ? 0 : ws))
		abort();
	n_prefetch += ws > 0;
	buf = malloc(l->chunk);
	for (uint64_t k = 0; buf && k < l->n; k++) {
		size_t n = chunk_len(l, k);

		r = sbx_mem_read(m, k * l->chunk, buf, n);
		if (r == -ENOMEM)
			continue;
		if (chunk_ok(f, l, k) ? r != 0 : r != -EBADMSG)
			abort();
		if (r == 0 && !chunk_matches(f, l, k, buf))
			abort();
		n_bad_chunks += r != 0;
	}
	n_v4_lazy += l->version == 4;
	if (l->version == 4 && sbx_snapshot_lazy_stats(s, &st) == 0)
		n_bad_blocks += st.table_blocks_bad;
	free(buf);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	n_lazy++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t file[MAXFILE + 1];
	struct layout l = { 0 };
	const uint8_t *f;
	size_t len;
	bool meta;
	int fd;

	if (!size)
		return 0;
	len = mk_fuzz_file(data, size, build, file, &f, &n_structured);
	meta = head_ok(f, len, &l);
	fd = mk_memfd_create("fuzz-snapv3", 0);
	if (fd < 0)
		abort();
	if (mk_pwrite_full(fd, f, len, 0) != (ssize_t)len)
		abort();
	{
		unsigned long before = n_loaded;

		check_load(fd, f, len, meta, &l);
		n_built_loaded += f == file && n_loaded > before;
	}
	check_lazy(fd, f, meta, &l);
	close(fd);
	return 0;
}

/*
 * Seeds: files written by libsandbox (raw mode, one chunk: an input holds
 * at most 64 KiB; version 4 with CRC-32C, version 3 with the hash), and
 * structured inputs of three chunks with every mend bit, with and without
 * a working set and a zero chunk, of version 3 (seeds 2..4) and 4 (5..7).
 */
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	uint64_t pages = i == 0 ? 4 : 12;
	ssize_t n;
	int fd;

	if (i >= 8 || cap < 1 + 4 * HDR + pages * 4096)
		return 0;
	if (i >= 2) {
		unsigned j = (i - 2) % 3;

		buf[0] = 1 | MEND_MAGIC | MEND_LAYOUT | MEND_TABLE | MEND_SUMS | (j == 1 ? MEND_WS : 0);
		buf[1] = (uint8_t)(j == 2 ? 0x18 : 0x00);       /* 64 KiB; hash and chunk 0 zero */
		buf[2] = (uint8_t)(39 | (i >= 5 ? 0x80 : 0));   /* 40 pages: 3 chunks; the version */
		memset(buf + 3, 0, 48);
		buf[51] = 0;                                    /* no patches */
		memset(buf + 52, 0x5a, 100);
		return 152;
	}
	if (sbx_mem_new(pages * 4096, &m) < 0)
		abort();
	sbx_mem_fill(m, 100, (uint8_t)(0x30 + i), 3000);
	if (sbx_snapshot_take(m, &s) < 0)
		abort();
	fd = mk_memfd_create("fuzz-seed", 0);
	if (fd < 0 || sbx_snapshot_save_version(s, fd, 65536, i ? SBX_SAVE_HASH64 : 0, i ? 3 : 4) < 0)
		abort();
	buf[0] = 0;
	n = mk_pread_full(fd, buf + 1, cap - 1, 0);
	close(fd);
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
	return n > 0 ? (size_t)n + 1 : 0;
}

const char *mk_fuzz_summary(void)
{
	static char msg[256];

	snprintf(msg, sizeof(msg), "%lu loaded (%lu of %lu built by structure), %lu opened lazily "
		 "(%lu of version 4, %lu bad table blocks; %lu bad chunks refused, %lu working sets "
		 "queued)", n_loaded, n_built_loaded, n_structured, n_lazy, n_v4_lazy, n_bad_blocks,
		 n_bad_chunks, n_prefetch);
	return msg;
}

/*
 * make check fails unless generated inputs got past every checksum, some
 * chunks failed theirs, version-4 files opened lazily and some of their
 * table blocks failed.
 */
int mk_fuzz_reached(void)
{
	return n_built_loaded > 0 && n_bad_chunks > 0 && n_prefetch > 0 && n_v4_lazy > 0 && n_bad_blocks > 0;
}
