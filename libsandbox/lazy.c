/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A lazily loaded snapshot file (sbx_snapshot_open(3) with SBX_OPEN_LAZY):
 * the file, its chunk table, reading a chunk and verifying it before any
 * byte of it is used, the cache of verified chunks, the chunks found bad,
 * the counters.
 *
 * The cache is a memfd of the data's size that holds exactly the chunks
 * verified so far, holes elsewhere. A chunk enters it once, whole, through
 * UFFDIO_COPY into the snapshot's view (a shared, read-only mapping of it
 * registered with the userfaultfd), so no page of it is ever visible
 * before all its bytes are; regions map the memfd privately and share its
 * pages until they write (lazymap.c). All-zero chunks are never read nor
 * cached: mappings get the zero page.
 *
 * A chunk that fails (its checksum does not match, the file ends before
 * it does, or reading it fails) is bad for the snapshot's whole life: it
 * is never installed anywhere, every access to it gets the defined
 * outcome (lazymap.c), and it is logged once at LOG_ERR with its data and
 * file offsets. A chunk that checked once may be read again later (after
 * a restore dropped its pages) and is checked again.
 *
 * The mappings that page the file in are lazymap.c's, their fault service
 * lazyserve.c's.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "common/alloc.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

/* The service's reads: prefetch runs up to this (and at least a chunk). */
#define BUF_LEN (1u << 20)

int sbx_lazy_new(int fd, const struct sbx_snapf *f, uint64_t file_size, uint64_t *sums,
		 uint64_t *zero, uint64_t *idx, uint64_t *hint, struct sbx_lazy **out)
{
	size_t words = (size_t)sbx_bitmap_words(f->nchunks);
	struct sbx_lazy *z = mk_calloc(1, sizeof(*z));
	int r = -ENOMEM;

	if (!z)
		goto fail_arrays;
	z->fd = z->cfd = z->uffd = z->pf_fd = z->epfd = -1;
	z->svc.stop_fd = -1;
	z->f = *f;
	z->file_size = file_size;
	z->sums = sums;
	z->zero = zero;
	z->idx = idx;
	z->hint = hint;
	z->st.data_size = f->size;
	z->st.chunk_size = f->chunk;
	z->st.checksum = f->alg;
	z->st.chunks = f->nchunks;
	z->st.bad_offset = UINT64_MAX;
	z->buf_len = MK_MAX(f->chunk, BUF_LEN);
	z->bad = mk_calloc(words, sizeof(uint64_t));
	z->cached = mk_calloc(words, sizeof(uint64_t));
	if (!sums)
		z->rawzero = mk_calloc(words, sizeof(uint64_t));
	if (idx) {
		z->known = mk_calloc(words, sizeof(uint64_t));
		z->blk_done = mk_calloc((size_t)sbx_bitmap_words(f->nblocks), sizeof(uint64_t));
		z->blk_bad = mk_calloc((size_t)sbx_bitmap_words(f->nblocks), sizeof(uint64_t));
		z->blk = mk_malloc(SBX_SNAPF_BLOCK);
	}
	z->buf = mk_malloc(z->buf_len);
	z->fbuf = mk_malloc(f->chunk);
	if (!z->bad || !z->cached || (!sums && !z->rawzero) || !z->buf || !z->fbuf ||
	    (idx && (!z->known || !z->blk_done || !z->blk_bad || !z->blk)))
		goto fail;
	r = z->fd = mk_dup_cloexec(fd);
	if (r >= 0)
		r = z->cfd = mk_memfd_create("sbx-lazy-cache", 0);
	if (r >= 0)
		r = mk_ftruncate(z->cfd, f->size);
	if (r >= 0)
		r = z->uffd = mk_uffd_open();
	if (r >= 0)
		r = z->pf_fd = mk_eventfd(0, EFD_NONBLOCK);
	if (r >= 0)
		r = z->epfd = mk_epoll_create();
	if (r >= 0)
		r = mk_epoll_add(z->epfd, z->uffd, EPOLLIN);
	if (r >= 0)
		r = mk_epoll_add(z->epfd, z->pf_fd, EPOLLIN);
	if (r < 0) {
		if (r == -EPERM)
			sbx_refuse(LOG_ERR, "sbx_snapshot_open: userfaultfd is not allowed here (needs "
				   "CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to "
				   "/dev/userfaultfd); open without SBX_OPEN_LAZY");
		goto fail;
	}
	pthread_mutex_init(&z->lock, NULL);
	pthread_mutex_init(&z->svc_lock, NULL);
	pthread_mutex_init(&z->meta_lock, NULL);
	*out = z;
	return 0;
fail:
	sbx_lazy_free(z);
	return r;
fail_arrays:
	free(sums);
	free(zero);
	free(idx);
	free(hint);
	return r;
}

void sbx_lazy_free(struct sbx_lazy *z)
{
	if (!z)
		return;
	mk_uffd_thread_stop(&z->svc);
	if (z->epfd >= 0) {
		/* Initialised together with the last fd: the locks exist. */
		pthread_mutex_destroy(&z->lock);
		pthread_mutex_destroy(&z->svc_lock);
		pthread_mutex_destroy(&z->meta_lock);
	}
	if (z->fd >= 0)
		mk_close(z->fd);
	if (z->cfd >= 0)
		mk_close(z->cfd);
	if (z->uffd >= 0)
		mk_close(z->uffd);
	if (z->pf_fd >= 0)
		mk_close(z->pf_fd);
	if (z->epfd >= 0)
		mk_close(z->epfd);
	free(z->sums);
	free(z->zero);
	free(z->idx);
	free(z->known);
	free(z->blk_done);
	free(z->blk_bad);
	free(z->blk);
	free(z->hint);
	free(z->bad);
	free(z->cached);
	free(z->rawzero);
	free(z->buf);
	free(z->fbuf);
	free(z);
}

/*
 * Mark chunk k bad (once), count and log it: err -EBADMSG (a the sum
 * computed), -ENODATA (a the bytes the file had), -EUCLEAN (its table
 * entry is bad: a its table block, UINT64_MAX: the entry), else a read
 * error. Returns -EBADMSG, what every user of a bad chunk gets.
 */
static int mark_bad(struct sbx_lazy *z, uint64_t k, int err, uint64_t a)
{
	uint64_t bit = 1ull << (k % 64), off = k << z->f.chunk_shift;
	size_t n = sbx_lazy_chunk_len(z, k);

	if (__atomic_fetch_or(&z->bad[k / 64], bit, __ATOMIC_ACQ_REL) & bit)
		return -EBADMSG;
	sbx_lazy_count(z, chunks_bad, 1);
	__atomic_store_n(&z->st.bad_offset, off, __ATOMIC_RELAXED);
	if (err == -EBADMSG)
		sbx_refuse(LOG_ERR, "lazy snapshot: chunk %" PRIu64 " (data offset %" PRIu64 ", file "
			   "offset %" PRIu64 ", %zu bytes): checksum mismatch (0x%" PRIx64 ", the table "
			   "has 0x%" PRIx64 "); never mapped, accesses to it fail", k, off,
			   z->f.data_off + off, n, a, z->sums[k]);
	else if (err == -ENODATA)
		sbx_refuse(LOG_ERR, "lazy snapshot: chunk %" PRIu64 " (data offset %" PRIu64 ", file "
			   "offset %" PRIu64 ", %zu bytes): the file ends %" PRIu64 " bytes into it; "
			   "never mapped, accesses to it fail", k, off, z->f.data_off + off, n, a);
	else if (err == -EUCLEAN)
		sbx_refuse(LOG_ERR, "lazy snapshot: chunk %" PRIu64 " (data offset %" PRIu64 ", file "
			   "offset %" PRIu64 ", %zu bytes): its table %s%" PRIu64 " is bad; never "
			   "mapped, accesses to it fail", k, off, z->f.data_off + off, n,
			   a == UINT64_MAX ? "entry" : "block ", a == UINT64_MAX ? k : a);
	else
		sbx_refuse(LOG_ERR, "lazy snapshot: chunk %" PRIu64 " (data offset %" PRIu64 ", file "
			   "offset %" PRIu64 ", %zu bytes): read error %d; never mapped, accesses to "
			   "it fail", k, off, z->f.data_off + off, n, err);
	return -EBADMSG;
}

/*
 * Version 4: table block b checked against the index and decoded
 * (meta_lock held), its bytes at p when got (what a pread gave for it) is
 * SBX_SNAPF_BLOCK, or read here when p is NULL: 0, or -EBADMSG (bad for
 * good: counted, logged once with its offset).
 */
static int load_block(struct sbx_lazy *z, uint64_t b, const uint8_t *p, ssize_t got)
{
	uint64_t off = z->f.meta_off + b * SBX_SNAPF_BLOCK, bit = 1ull << (b % 64);
	int r;

	if (z->blk_done[b / 64] & bit)
		return z->blk_bad[b / 64] & bit ? -EBADMSG : 0;
	if (!p) {
		got = mk_pread_full(z->fd, z->blk, SBX_SNAPF_BLOCK, off);
		p = z->blk;
	}
	r = got == SBX_SNAPF_BLOCK ? sbx_snapf_block(&z->f, b, p, z->idx[b], z->sums, z->zero,
						     "lazy snapshot") : -EBADMSG;
	sbx_lazy_count(z, table_blocks_read, 1);
	if (r < 0) {
		z->blk_bad[b / 64] |= bit;
		sbx_lazy_count(z, table_blocks_bad, 1);
		sbx_refuse(LOG_ERR, "lazy snapshot: table block %" PRIu64 " (file offset %" PRIu64 ") is "
			   "bad (%s, pread gave %zd): the chunks it describes fail", b, off,
			   got < 0 ? "read error" : got < SBX_SNAPF_BLOCK ? "the file ends in it" :
			   "checksum or contents", got);
	}
	z->blk_done[b / 64] |= bit;
	return r;
}

void sbx_lazy_table_all(struct sbx_lazy *z, uint8_t *buf, size_t len)
{
	uint64_t per = len / SBX_SNAPF_BLOCK;

	if (!z->idx || !per)
		return;         /* nothing to read, or a block at a time after all */
	pthread_mutex_lock(&z->meta_lock);
	for (uint64_t b0 = 0; b0 < z->f.nblocks; b0 += per) {
		uint64_t n = MK_MIN(per, z->f.nblocks - b0);
		ssize_t got = mk_pread_full(z->fd, buf, (size_t)(n * SBX_SNAPF_BLOCK),
					    z->f.meta_off + b0 * SBX_SNAPF_BLOCK);

		for (uint64_t i = 0; got >= 0 && i < n; i++) {
			ssize_t in = got - (ssize_t)(i * SBX_SNAPF_BLOCK);

			(void)load_block(z, b0 + i, buf + i * SBX_SNAPF_BLOCK,
					 MK_MAX(MK_MIN(in, (ssize_t)SBX_SNAPF_BLOCK), 0));
		}
	}
	pthread_mutex_unlock(&z->meta_lock);
}

int sbx_lazy_entry_slow(struct sbx_lazy *z, uint64_t k)
{
	/* The entry's block, then the zero bitmap word's. */
	uint64_t tb = 8 * k / SBX_SNAPF_BLOCK, zb = (8 * z->f.nchunks + 8 * (k / 64)) / SBX_SNAPF_BLOCK;
	int r;

	/* Found bad already (its data, or its entry: then it is logged once, not each time). */
	if (sbx_lazy_is_bad(z, k))
		return -EBADMSG;
	pthread_mutex_lock(&z->meta_lock);
	r = load_block(z, tb, NULL, 0);
	if (r == 0)
		r = load_block(z, zb, NULL, 0);
	else
		zb = tb;
	if (r == 0 && sbx_snapf_entry(&z->f, z->sums, z->zero, k, "lazy snapshot") < 0)
		zb = UINT64_MAX, r = -EBADMSG;
	if (r == 0)
		__atomic_or_fetch(&z->known[k / 64], 1ull << (k % 64), __ATOMIC_RELEASE);
	pthread_mutex_unlock(&z->meta_lock);
	return r < 0 ? mark_bad(z, k, -EUCLEAN, zb) : 0;
}

/* Check chunk k's n bytes at p (read from the file): 0 or -EBADMSG (marked). */
static int check(struct sbx_lazy *z, uint64_t k, const uint8_t *p, size_t n)
{
	uint64_t sum;

	sbx_lazy_count(z, chunks_read, 1);
	sbx_lazy_count(z, bytes_read, n);
	if (z->f.alg == SBX_CHECKSUM_NONE)
		return 0;
	sum = sbx_chunk_sum(z->f.alg, p, n);
	if (sum != z->sums[k])
		return mark_bad(z, k, -EBADMSG, sum);
	sbx_lazy_count(z, chunks_verified, 1);
	return 0;
}

/*
 * pread [off, off + n) of the data into buf. A raw image is read up to its
 * size at open and zero-filled after it (its last page rounded up). The
 * bytes read, or -errno.
 */
static ssize_t read_data(struct sbx_lazy *z, uint64_t off, uint8_t *buf, size_t n)
{
	size_t want = n;
	ssize_t got;

	if (z->f.alg == SBX_CHECKSUM_NONE && off + n > z->file_size) {
		want = off < z->file_size ? (size_t)(z->file_size - off) : 0;
		memset(buf + want, 0, n - want);
	}
	got = want ? mk_pread_full(z->fd, buf, want, z->f.data_off + off) : 0;
	return got < 0 || (size_t)got < want ? got : (ssize_t)n;
}

int sbx_lazy_read(struct sbx_lazy *z, uint64_t k, uint8_t *buf)
{
	size_t n = sbx_lazy_chunk_len(z, k);
	ssize_t got;

	if (sbx_lazy_entry(z, k) < 0 || sbx_lazy_is_bad(z, k))
		return -EBADMSG;
	got = read_data(z, k << z->f.chunk_shift, buf, n);
	if (got < 0)
		return mark_bad(z, k, (int)got, 0);
	if ((size_t)got < n)
		return mark_bad(z, k, -ENODATA, (uint64_t)got);
	return check(z, k, buf, n);
}

int sbx_lazy_read_run(struct sbx_lazy *z, uint64_t first, unsigned n, uint8_t *buf, uint64_t *good)
{
	uint64_t off = first << z->f.chunk_shift;
	size_t len = (size_t)(MK_MIN((first + n) << z->f.chunk_shift, z->f.size) - off);
	ssize_t got = read_data(z, off, buf, len);

	*good = 0;
	if (got < 0 || (size_t)got < len)
		return got < 0 ? (int)got : -ENODATA;
	for (unsigned i = 0; i < n; i++)
		if (sbx_lazy_entry(z, first + i) == 0 && !sbx_lazy_is_bad(z, first + i) &&
		    check(z, first + i, buf + ((uint64_t)i << z->f.chunk_shift),
			  sbx_lazy_chunk_len(z, first + i)) == 0)
			*good |= 1ull << i;
	return 0;
}

int sbx_lazy_cache(struct sbx_lazy *z, uint64_t k, const uint8_t *buf)
{
	uint64_t off = k << z->f.chunk_shift, addr = (uintptr_t)z->vbase + off;
	size_t n = sbx_lazy_chunk_len(z, k);
	int r;

	if (!z->sums && sbx_all_zero(buf, n)) {
		/* A raw image's zeros: like a table's zero chunk from now on. */
		__atomic_or_fetch(&z->rawzero[k / 64], 1ull << (k % 64), __ATOMIC_RELEASE);
		return 0;
	}
	/* Pages already there (a racing load of the same bytes) are left as they are. */
	r = mk_uffd_copy(z->uffd, addr, buf, n);
	if (r < 0) {
		sbx_refuse(LOG_WARNING, "lazy snapshot: caching chunk %" PRIu64 " failed (%d)", k, r);
		return r;
	}
	__atomic_or_fetch(&z->cached[k / 64], 1ull << (k % 64), __ATOMIC_RELEASE);
	mk_uffd_wake(z->uffd, addr, n);
	return 0;
}

int sbx_lazy_load(struct sbx_lazy *z, uint64_t k, uint8_t *buf)
{
	int r;

	if (sbx_lazy_is_zero(z, k) || sbx_lazy_is_cached(z, k))
		return 0;
	r = sbx_lazy_read(z, k, buf);
	return r < 0 ? r : sbx_lazy_cache(z, k, buf);
}

int sbx_lazy_copy_out(struct sbx_lazy *z, uint64_t off, uint8_t *dst, uint64_t len, uint8_t *buf)
{
	while (len) {
		uint64_t k = off >> z->f.chunk_shift, in = off - (k << z->f.chunk_shift);
		size_t n = (size_t)MK_MIN(len, sbx_lazy_chunk_len(z, k) - in);
		ssize_t got;
		int r = sbx_lazy_load(z, k, buf);

		if (r < 0)
			return r;
		if (sbx_lazy_is_zero(z, k)) {
			memset(dst, 0, n);
		} else {
			/* pread of the memfd: its holes would read as zeros, never allocate. */
			got = mk_pread_full(z->cfd, dst, n, off);
			if (got < 0 || (size_t)got < n)
				return got < 0 ? (int)got : -EIO;
		}
		off += n;
		dst += n;
		len -= n;
	}
	return 0;
}

void sbx_lazy_fault_done(struct sbx_lazy *z, uint64_t ns)
{
	uint64_t max = __atomic_load_n(&z->st.fault_ns_max, __ATOMIC_RELAXED);

	sbx_lazy_count(z, faults, 1);
	sbx_lazy_count(z, fault_ns_total, ns);
	sbx_lazy_count(z, fault_ns[MK_MIN(mk_log2(ns | 1), SBX_HIST_BUCKETS - 1)], 1);
	while (ns > max && !__atomic_compare_exchange_n(&z->st.fault_ns_max, &max, ns, true,
							 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}
