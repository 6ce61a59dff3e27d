/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lazy snapshot loading (sbx_snapshot_open(3)), host only: userfaultfd
 * needs no KVM. For snapshot files of 256 MiB, 1 GiB and 4 GiB (256 KiB
 * chunks, a quarter of them all zero) and a working set of 5% of the
 * chunks chosen at random, each cold (the file dropped from the page cache
 * with posix_fadvise(POSIX_FADV_DONTNEED)) and warm (cached), in one run:
 *
 *  - time to ready: a lazy open and a region made from it, against
 *    sbx_snapshot_load() and a region (today's eager load, every chunk
 *    verified), and mmap(MAP_PRIVATE) of the file's data (a raw image:
 *    nothing verified), and the floor: one pread of what a lazy open
 *    must read (version 4: header and table index, 8 KiB up to 64 GiB in
 *    256 KiB chunks; the table is read a block at a time when first
 *    needed), which cold is a disk read;
 *  - time for one thread to touch the working set after ready (one byte a
 *    page, chunks in random order): lazy, lazy with the working set
 *    prefetched (saved in the file; the prefetch runs on the service thread
 *    while the toucher already runs), eager, the unverified mmap, and the
 *    floor: a pread of exactly those chunks and a memcpy of them into
 *    memory already allocated ("floor"), or into fresh memory that faults
 *    its pages in as the copy goes ("floor+alloc");
 *  - whole-file corruption check cost: every page touched through lazy
 *    verified paging against the unverified mmap (warm), and CRC-32C's
 *    speed alone.
 *
 * Goals (issue 21): ready <= 1 ms at every size; working-set touch with
 * prefetch <= 1.5 x the floor, cold and warm. Medians of several runs.
 * The machine may be shared: the load average is printed at the start and
 * the end. Measurements, not assertions.
 *
 *   bench-lazy [--sizes 256M,1G,4G] [--dir DIR] [--runs N]
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/macro.h"
#include "common/sys.h"
#include "sandboxP.h"
#include "bench/bench-util.h"

#define MIB (1ull << 20)
#define PG 4096u
#define CHUNK SBX_CHUNK_DEFAULT
#define WS_PERCENT 5
#define ZERO_PERCENT 25

static void die(const char *what, long r)
{
	fprintf(stderr, "bench-lazy: %s: %s\n", what, g_strerror(r < 0 ? (int)-r : (int)r));
	exit(1);
}

/* A file of the benchmark: its layout, which chunks are zero, the working set. */
struct bfile {
	char *path;
	int fd;
	uint64_t size, nchunks, data_off;
	uint64_t idx_end;       /* header and table index: what a lazy open reads */
	uint8_t *zero;          /* one byte a chunk */
	uint64_t *ws;           /* bitmap */
	uint32_t *order;        /* the working set's chunks, in touch order */
	unsigned nws;
};

static void chunk_bytes(uint64_t k, uint8_t *buf)
{
	uint64_t x = k * 0x9e3779b97f4a7c15ull + 1, *w = (uint64_t *)buf;

	for (size_t i = 0; i < CHUNK / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

/* Write a version-4 file chunk by chunk (no buffer of its size): what sbx_snapshot_save writes. */
static void write_file(struct bfile *b, GRand *rng)
{
	struct sbx_snapf f;
	uint64_t *sums, *zbits;
	uint8_t *buf = g_malloc(CHUNK), *meta, *idx, hdr[4096];

	if (sbx_snapf_layout(b->size, CHUNK, mk_crc32c_hw() ? SBX_CHECKSUM_CRC32C : SBX_CHECKSUM_HASH64,
			     4, &f) < 0)
		die("layout", EINVAL);
	b->nchunks = f.nchunks;
	b->data_off = f.data_off;
	b->idx_end = f.idx_off + f.idx_len;
	b->zero = g_malloc0(f.nchunks);
	sums = g_new0(uint64_t, f.nchunks);
	zbits = g_new0(uint64_t, sbx_bitmap_words(f.nchunks));
	if (ftruncate(b->fd, 0) < 0 || ftruncate(b->fd, (off_t)(f.data_off + f.size)) < 0)
		die("ftruncate", errno);
	for (uint64_t k = 0; k < f.nchunks; k++) {
		if (g_rand_int_range(rng, 0, 100) < ZERO_PERCENT) {
			b->zero[k] = 1;
			zbits[k / 64] |= 1ull << (k % 64);
			continue;
		}
		chunk_bytes(k, buf);
		sums[k] = sbx_chunk_sum(f.alg, buf, CHUNK);
		if (mk_pwrite_full(b->fd, buf, CHUNK, f.data_off + k * CHUNK) != CHUNK)
			die("write", EIO);
	}
	meta = g_malloc((size_t)f.meta_len);
	idx = g_malloc((size_t)f.idx_len);
	sbx_snapf_meta_encode(&f, sums, zbits, meta);
	sbx_snapf_seal(&f, meta, idx);
	sbx_snapf_encode(&f, hdr);
	if (mk_pwrite_full(b->fd, meta, (size_t)f.meta_len, f.meta_off) != (ssize_t)f.meta_len ||
	    mk_pwrite_full(b->fd, idx, (size_t)f.idx_len, f.idx_off) != (ssize_t)f.idx_len ||
	    mk_pwrite_full(b->fd, hdr, sizeof(hdr), 0) != sizeof(hdr) || fsync(b->fd) < 0)
		die("write", EIO);
	g_free(meta);
	g_free(idx);
	g_free(sums);
	g_free(zbits);
	g_free(buf);
}

/* 5% of the chunks at random, in random order; saved in the file for the prefetch. */
static void pick_ws(struct bfile *b, GRand *rng)
{
	size_t words = (size_t)sbx_bitmap_words(b->nchunks);
	int r;

	b->nws = (unsigned)MK_MAX(1, b->nchunks * WS_PERCENT / 100);
	b->ws = g_new0(uint64_t, words);
	b->order = g_new(uint32_t, b->nws);
	for (unsigned i = 0; i < b->nws;) {
		uint32_t k = (uint32_t)g_rand_int_range(rng, 0, (gint32)b->nchunks);
		if (!(b->ws[k / 64] >> (k % 64) & 1)) {
			b->ws[k / 64] |= 1ull << (k % 64);
			b->order[i++] = k;
		}
	}
	r = sbx_snapshot_write_working_set(b->fd, b->ws, words);
	if (r < 0 || fsync(b->fd) < 0)
		die("sbx_snapshot_write_working_set", r);
}

static void drop_cache(const struct bfile *b)
{
	int r = posix_fadvise(b->fd, 0, 0, POSIX_FADV_DONTNEED);

	if (r)
		die("posix_fadvise", r);
}

/* Bring the whole file into the page cache. */
static void warm_cache(const struct bfile *b)
{
	uint8_t *buf = g_malloc(8 * MIB);
	uint64_t end = b->data_off + b->size;

	for (uint64_t off = 0; off < end; off += 8 * MIB)
		(void)mk_pread_full(b->fd, buf, (size_t)MK_MIN(8 * MIB, end - off), off);
	g_free(buf);
}

static volatile uint64_t sink;

/* One byte a page of the working set's chunks, in b->order. */
static void touch_ws(const struct bfile *b, const volatile uint8_t *p)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < b->nws; i++) {
		const volatile uint8_t *c = p + (uint64_t)b->order[i] * CHUNK;
		for (size_t off = 0; off < CHUNK; off += PG)
			sum += c[off];
	}
	sink += sum;
}

static void touch_all(const volatile uint8_t *p, uint64_t size)
{
	uint64_t sum = 0;

	for (uint64_t off = 0; off < size; off += PG)
		sum += p[off];
	sink += sum;
}

struct times {
	double ready_lazy, ready_eager, ready_mmap, ready_floor;
	double ws_lazy, ws_prefetch, ws_eager, ws_mmap, ws_floor, ws_floor_alloc;
};

static void lazy_open(const struct bfile *b, unsigned flags, struct sbx_snapshot **s, struct sbx_mem **m)
{
	int r = sbx_snapshot_open(b->fd, SBX_OPEN_LAZY | flags, s);

	if (r < 0)
		die("sbx_snapshot_open", r);
	r = sbx_mem_new_from_snapshot(*s, m);
	if (r < 0)
		die("sbx_mem_new_from_snapshot", r);
}

/* Ready and touch through a lazy region (prefetch: the file's working set, else none). */
static void run_lazy(const struct bfile *b, bool prefetch, double *ready, double *touch)
{
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	double t0 = bench_now_us(), t1;

	lazy_open(b, prefetch ? 0 : SBX_OPEN_NO_PREFETCH, &s, &m);
	t1 = bench_now_us();
	touch_ws(b, sbx_mem_host_ptr(m, true));
	*touch = bench_now_us() - t1;
	if (ready)
		*ready = t1 - t0;
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

static void run_eager(const struct bfile *b, double *ready, double *touch)
{
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	double t0 = bench_now_us(), t1;
	int r = sbx_snapshot_load(b->fd, &s);

	if (r < 0)
		die("sbx_snapshot_load", r);
	r = sbx_mem_new_from_snapshot(s, &m);
	if (r < 0)
		die("sbx_mem_new_from_snapshot", r);
	t1 = bench_now_us();
	touch_ws(b, sbx_mem_host_ptr(m, true));
	*touch = bench_now_us() - t1;
	*ready = t1 - t0;
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

static void run_mmap(const struct bfile *b, double *ready, double *touch)
{
	double t0 = bench_now_us(), t1;
	void *p = mmap(NULL, b->size, PROT_READ, MAP_PRIVATE, b->fd, (off_t)b->data_off);

	if (p == MAP_FAILED)
		die("mmap", errno);
	t1 = bench_now_us();
	touch_ws(b, p);
	*touch = bench_now_us() - t1;
	*ready = t1 - t0;
	munmap(p, b->size);
}

/*
 * Ready's floor: one pread of what a lazy open without prefetch must read,
 * header and table index (the table's blocks are read when first needed).
 */
static double run_ready_floor(const struct bfile *b)
{
	uint8_t *buf = g_malloc((size_t)b->idx_end);
	double t0 = bench_now_us(), t;

	if (mk_pread_full(b->fd, buf, (size_t)b->idx_end, 0) != (ssize_t)b->idx_end)
		die("pread", EIO);
	t = bench_now_us() - t0;
	g_free(buf);
	return t;
}

/* pread exactly the working set's chunks (zero ones: nothing to read) and copy them to dst. */
static double run_floor(const struct bfile *b, bool fresh)
{
	uint8_t *buf = g_malloc(CHUNK), *dst;
	size_t len = (size_t)b->nws * CHUNK;
	double t0, t;

	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (fresh ? 0 : MAP_POPULATE),
		   -1, 0);
	if (dst == MAP_FAILED)
		die("mmap", errno);
	t0 = bench_now_us();
	for (unsigned i = 0; i < b->nws; i++) {
		uint64_t k = b->order[i];
		if (b->zero[k]) {
			memset(dst + (size_t)i * CHUNK, 0, CHUNK);
			continue;
		}
		if (mk_pread_full(b->fd, buf, CHUNK, b->data_off + k * CHUNK) != CHUNK)
			die("pread", EIO);
		memcpy(dst + (size_t)i * CHUNK, buf, CHUNK);
	}
	t = bench_now_us() - t0;
	sink += dst[len - 1];
	munmap(dst, len);
	g_free(buf);
	return t;
}

/* One round of every variant, cold (each after dropping the cache) or warm. */
static void round_of(const struct bfile *b, bool cold, struct times *t)
{
#define PREP() do { if (cold) drop_cache(b); else warm_cache(b); } while (0)
	PREP();
	run_lazy(b, false, &t->ready_lazy, &t->ws_lazy);
	PREP();
	run_lazy(b, true, NULL, &t->ws_prefetch);
	PREP();
	run_eager(b, &t->ready_eager, &t->ws_eager);
	PREP();
	run_mmap(b, &t->ready_mmap, &t->ws_mmap);
	PREP();
	t->ready_floor = run_ready_floor(b);
	PREP();
	t->ws_floor = run_floor(b, false);
	PREP();
	t->ws_floor_alloc = run_floor(b, true);
#undef PREP
}

static double med(double *v, int n)
{
	return bench_median(v, n);
}

static void report(const struct bfile *b, bool cold, int runs)
{
	struct times t[16];
	double v[16], r[10];

	for (int i = 0; i < runs; i++)
		round_of(b, cold, &t[i]);
#define M(f, idx) do { for (int i = 0; i < runs; i++) v[i] = t[i].f; r[idx] = med(v, runs); } while (0)
	M(ready_lazy, 0); M(ready_eager, 1); M(ready_mmap, 2);
	M(ws_lazy, 3); M(ws_prefetch, 4); M(ws_eager, 5); M(ws_mmap, 6); M(ws_floor, 7);
	M(ws_floor_alloc, 8); M(ready_floor, 9);
#undef M
	printf("%5llu MiB %-4s %7.3f %9.1f %7.3f %7.3f | %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f | %5.2f %5.2f "
	       "%5.2f %5.2f\n",
	       (unsigned long long)(b->size / MIB), cold ? "cold" : "warm", r[0] / 1e3, r[1] / 1e3,
	       r[2] / 1e3, r[9] / 1e3, r[3] / 1e3, r[4] / 1e3, r[5] / 1e3, r[6] / 1e3, r[7] / 1e3,
	       r[8] / 1e3, r[4] / r[7], r[4] / r[8], r[3] / r[7], r[0] / r[9]);
	fflush(stdout);
}

/* Whole file, warm: verified paging (lazy, every chunk checked) against the unverified mmap. */
static void whole_file(const struct bfile *b, int runs)
{
	double lazy[16], mm[16], crc[16];
	uint8_t *buf = g_malloc(CHUNK);

	warm_cache(b);
	memset(buf, 0x5a, CHUNK);
	for (int i = 0; i < runs; i++) {
		struct sbx_snapshot *s;
		struct sbx_mem *m;
		double t0;
		void *p;

		lazy_open(b, SBX_OPEN_NO_PREFETCH, &s, &m);
		t0 = bench_now_us();
		touch_all(sbx_mem_host_ptr(m, true), b->size);
		lazy[i] = bench_now_us() - t0;
		sbx_mem_free(m);
		sbx_snapshot_unref(s);
		p = mmap(NULL, b->size, PROT_READ, MAP_PRIVATE, b->fd, (off_t)b->data_off);
		if (p == MAP_FAILED)
			die("mmap", errno);
		t0 = bench_now_us();
		touch_all(p, b->size);
		mm[i] = bench_now_us() - t0;
		munmap(p, b->size);
		t0 = bench_now_us();
		for (unsigned k = 0; k < 256; k++)
			sink += mk_crc32c(0, buf, CHUNK);
		crc[i] = bench_now_us() - t0;
	}
	printf("%5llu MiB warm, every page: lazy verified %.1f ms (%.2f GB/s), mmap unverified %.1f ms "
	       "(%.2f GB/s): verification costs %.2fx; CRC-32C alone %.1f GB/s\n",
	       (unsigned long long)(b->size / MIB), med(lazy, runs) / 1e3,
	       (double)b->size / med(lazy, runs) / 1e3, med(mm, runs) / 1e3,
	       (double)b->size / med(mm, runs) / 1e3, med(lazy, runs) / med(mm, runs),
	       256.0 * CHUNK / med(crc, runs) / 1e3);
	g_free(buf);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);

	switch (*end) {
	case 'G': case 'g': v <<= 30; break;
	case 'M': case 'm': v <<= 20; break;
	case 'K': case 'k': v <<= 10; break;
	case '\0': break;
	default: die("size", EINVAL);
	}
	if (!v || v % CHUNK)
		die("size (a multiple of 256 KiB)", EINVAL);
	return v;
}

static void loadavg(const char *when)
{
	double la[3];

	if (getloadavg(la, 3) == 3)
		printf("load average (%s): %.2f %.2f %.2f on %ld CPUs\n", when, la[0], la[1], la[2],
		       sysconf(_SC_NPROCESSORS_ONLN));
}

int main(int argc, char **argv)
{
	const char *sizes = "256M,1G,4G", *dir = g_getenv("BENCH_DIR") ?: "/var/tmp";
	g_auto(GStrv) list = NULL;
	GRand *rng = g_rand_new_with_seed(21);
	int runs = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
			sizes = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench-lazy [--sizes 256M,1G,4G] [--dir DIR] [--runs N]\n");
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	printf("bench-lazy: snapshot files in %u KiB chunks (%d%% all zero, CRC-32C %s), a working set "
	       "of %d%% of the chunks at random, touched one byte a page in random chunk order; files in "
	       "%s\n", CHUNK / 1024, ZERO_PERCENT, mk_crc32c_hw() ? "in hardware" : "in software",
	       WS_PERCENT, dir);
	loadavg("start");
	printf("                     ready (ms)                  | working-set touch after ready (ms)"
	       "                    | ratios\n"
	       " size     cache  lazy     eager    mmap   floor  |     lazy lazy+pf    eager     mmap    "
	       "floor fl+alloc | pf/fl pf/fa lz/fl rd/fl\n");
	list = g_strsplit(sizes, ",", -1);
	for (char **s = list; *s; s++) {
		struct bfile b = { 0 };
		int n = runs ? runs : parse_size(*s) >= (4ull << 30) ? 3 : 7;

		b.size = parse_size(*s);
		b.path = g_build_filename(dir, "bench-lazy-XXXXXX", NULL);
		b.fd = g_mkstemp_full(b.path, O_RDWR | O_CLOEXEC, 0600);
		if (b.fd < 0)
			die(b.path, errno);
		unlink(b.path);
		write_file(&b, rng);
		pick_ws(&b, rng);
		report(&b, true, MK_MIN(n, 16));
		report(&b, false, MK_MIN(n, 16));
		whole_file(&b, MK_MIN(n, 16));
		close(b.fd);
		g_free(b.path);
		g_free(b.zero);
		g_free(b.ws);
		g_free(b.order);
	}
	loadavg("end");
	printf("goals: ready <= 1 ms at every size (lazy column; its floor: one pread of the header and "
	       "table index, rd/fl); pf/fl <= 1.5 cold and warm (fl: pread + memcpy into allocated memory; fa: "
	       "into fresh memory)\n");
	g_rand_free(rng);
	return 0;
}
