/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memory paged in from a lazy snapshot (sbx_snapshot_open(3)): regions
 * made from or restored onto it, and its own read-only view.
 *
 * Every mapping maps the snapshot's cache memfd (lazy.c) and is registered
 * with its userfaultfd in MISSING mode: a region privately (reads share the
 * cache's pages, writes copy them), the view shared and read-only. The
 * first access to a page that is not in the cache, by a host thread or by
 * KVM inside KVM_RUN (its get_user_pages blocks in the fault: no vCPU
 * exit), queues an event and waits; the service (lazyserve.c) reads the
 * page's chunk, verifies it, installs it into the cache (UFFDIO_COPY
 * through the view), maps it into the faulting region (MADV_POPULATE_READ,
 * read-only) and wakes the waiters. An all-zero chunk is never read: the
 * faulting mapping gets the zero page (UFFDIO_ZEROPAGE). Read-only mappings
 * matter to KVM's dirty log: a guest that only reads a page leaves it
 * clean, so restores stay O(pages written).
 *
 * Host copies (sbx_mem_read() ...) do not wait for the service (the caller
 * may be the one that serves): they load what they touch themselves
 * (sbx_lazy_map_ensure).
 *
 * A bad chunk is never installed. Its range is made PROT_NONE in the
 * mapping that touched it and the waiters are woken, so the access fails
 * instead of waiting forever: a host thread gets SIGSEGV, KVM's access
 * makes KVM_RUN fail with EFAULT; host copies get -EBADMSG before they
 * touch it.
 *
 * The cache is shared, so nothing may ever map it without the registration
 * (an access to a hole there would allocate a zero page in the cache): new
 * mappings are registered while still PROT_NONE, children get none
 * (MADV_DONTFORK), a region being moved is PROT_NONE until registered at
 * its new address.
 *
 * Mapping changes (restore, resize, free) take z->lock, and so does every
 * step that touches a region's range (zero pages, populating, protecting),
 * after checking that the mapping is still the one it started with
 * (attached, same gen): nothing lands in memory that was replaced
 * meanwhile. Installs into the cache need no such check: the view lives as
 * long as the snapshot, and a page already there is left alone.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "common/uffd.h"
#include "sandboxP.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* Prefetch runs stop at this many chunks (one word of the good-chunk mask). */
#define RUN_CHUNKS 64u

enum how { HOW_FAULT, HOW_HOST, HOW_PREFETCH };

static inline bool bit_get(const uint64_t *bm, uint64_t i)
{
	return __atomic_load_n(&bm[i / 64], __ATOMIC_ACQUIRE) >> (i % 64) & 1;
}

static inline void bit_set(uint64_t *bm, uint64_t i)
{
	__atomic_or_fetch(&bm[i / 64], 1ull << (i % 64), __ATOMIC_RELEASE);
}

static inline void bit_clear(uint64_t *bm, uint64_t i)
{
	__atomic_and_fetch(&bm[i / 64], ~(1ull << (i % 64)), __ATOMIC_RELEASE);
}

int sbx_lazy_map_new(struct sbx_lazy *z, bool view, struct sbx_lazy_map **out)
{
	size_t words = (size_t)sbx_bitmap_words(z->f.nchunks);
	struct sbx_lazy_map *m = mk_calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->z = z;
	m->view = view;
	m->zeroed = mk_calloc(words, sizeof(uint64_t));
	m->faulted = mk_calloc(words, sizeof(uint64_t));
	m->pf = mk_calloc(words, sizeof(uint64_t));
	if (!m->zeroed || !m->faulted || !m->pf) {
		sbx_lazy_map_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void sbx_lazy_map_free(struct sbx_lazy_map *m)
{
	if (!m)
		return;
	free(m->zeroed);
	free(m->faulted);
	free(m->pf);
	free(m);
}

/* Chunk k's address in m and its bytes there (0: past the mapping's end). */
static uint64_t chunk_range(const struct sbx_lazy_map *m, uint64_t k, uint64_t *addr)
{
	uint64_t off = k << m->z->f.chunk_shift;

	*addr = (uintptr_t)m->base + off;
	return off < m->len ? MK_MIN((uint64_t)m->z->f.chunk, m->len - off) : 0;
}

/* Is the mapping last seen as (m, gen) still there (z->lock held)? m is not dereferenced unless so. */
static bool current(struct sbx_lazy *z, const struct sbx_lazy_map *m, uint64_t gen)
{
	for (struct sbx_lazy_map *x = z->maps; x; x = x->next)
		if (x == m)
			return x->gen == gen;
	return false;
}

/* The attached mapping holding addr (z->lock held). */
static struct sbx_lazy_map *find(struct sbx_lazy *z, uint64_t addr)
{
	for (struct sbx_lazy_map *x = z->maps; x; x = x->next)
		if (addr >= (uintptr_t)x->base && addr - (uintptr_t)x->base < x->len)
			return x;
	return NULL;
}

/* Can m's accesses to chunk k go on without the service (z->lock not needed)? */
static bool present(struct sbx_lazy *z, const struct sbx_lazy_map *m, uint64_t k)
{
	return sbx_lazy_is_zero(z, k) ? bit_get(m->zeroed, k) : sbx_lazy_is_cached(z, k);
}

/*
 * A bad chunk's range in m becomes inaccessible (z->lock held): its
 * waiters' retries fail at once. False if that failed (then the waiters
 * are left waiting: a wake would only make them fault again, forever).
 */
static bool protect_bad(struct sbx_lazy_map *m, uint64_t k)
{
	uint64_t addr, n = chunk_range(m, k, &addr);
	int r = n ? mk_mprotect((void *)(uintptr_t)addr, (size_t)n, PROT_NONE) : 0;

	if (r < 0)
		sbx_refuse(LOG_ERR, "lazy snapshot: chunk %" PRIu64 " is bad and cannot be made "
			   "inaccessible (%d): its accesses keep waiting", k, r);
	return r == 0;
}

static void count(struct sbx_lazy *z, enum how how)
{
	if (how == HOW_PREFETCH)
		sbx_lazy_count(z, chunks_prefetched, 1);
	else if (how == HOW_HOST)
		sbx_lazy_count(z, host_loads, 1);
}

/*
 * After chunk k is in the cache (or zero), bring it into m as of gen
 * (z->lock held): the zero page for a zero chunk, the cache's pages mapped
 * (read-only) for a fault or a prefetch, so the access that follows faults
 * no more. Recorded in m's working set. 0, -ESTALE (m changed), -errno.
 */
static int into_map(struct sbx_lazy *z, struct sbx_lazy_map *m, uint64_t gen, uint64_t k,
		    enum how how)
{
	uint64_t addr, n;
	int r = 0;

	if (!current(z, m, gen) || !(n = chunk_range(m, k, &addr)))
		return -ESTALE;
	if (sbx_lazy_is_zero(z, k) && !bit_get(m->zeroed, k)) {
		r = mk_uffd_zero(z->uffd, addr, n);
		if (r == 0) {
			bit_set(m->zeroed, k);
			sbx_lazy_count(z, chunks_zero, 1);
		}
	} else if (!sbx_lazy_is_zero(z, k) && !m->view && how != HOW_HOST) {
		/* Only helps (minor faults would do): its failure (a kernel before 5.14) is fine. */
		(void)mk_madvise((void *)(uintptr_t)addr, (size_t)n, MADV_POPULATE_READ);
	}
	if (r < 0) {
		sbx_refuse(LOG_WARNING, "lazy snapshot: the zero page for chunk %" PRIu64 " failed (%d)",
			   k, r);
		return r;
	}
	bit_set(m->faulted, k);
	return 0;
}

/* Count a fault served from t0 (its event's read), before its waiters go on. */
static void fault_served(struct sbx_lazy *z, enum how how, uint64_t t0)
{
	if (how == HOW_FAULT)
		sbx_lazy_fault_done(z, mk_now_ns() - t0);
}

/*
 * Bring chunk k into m as of gen: into the cache first unless it is there
 * or all zero (its bytes verified already in ready, or read and verified
 * into buf), then into m, then wake m's waiters in it. 0, -EBADMSG (bad:
 * made inaccessible in m), -ESTALE (m changed meanwhile), or an install's
 * error. t0: a fault's event read.
 */
static int serve_chunk(struct sbx_lazy *z, struct sbx_lazy_map *m, uint64_t gen, uint64_t k,
		       const uint8_t *ready, uint8_t *buf, enum how how, uint64_t t0)
{
	bool wake = true, fresh = !sbx_lazy_is_zero(z, k) && !sbx_lazy_is_cached(z, k);
	uint64_t addr = 0, n = 0;
	int r = ready && fresh ? sbx_lazy_cache(z, k, ready) : sbx_lazy_load(z, k, buf);

	pthread_mutex_lock(&z->lock);
	if (r == 0)
		r = into_map(z, m, gen, k, how);
	else if (current(z, m, gen))
		wake = protect_bad(m, k);
	if (current(z, m, gen))
		n = chunk_range(m, k, &addr);
	pthread_mutex_unlock(&z->lock);
	if (r == 0 && fresh)
		count(z, how);
	fault_served(z, how, t0);
	if (n && wake)
		mk_uffd_wake(z->uffd, addr, n);
	return r;
}

void sbx_lazy_serve_fault(struct sbx_lazy *z, uint64_t addr, uint64_t t0)
{
	uint64_t page = addr & ~(uint64_t)(mk_page_size() - 1), gen, k, a, n;
	const uint8_t *ready;
	struct sbx_lazy_map *m;
	bool wake = true;

	pthread_mutex_lock(&z->lock);
	m = find(z, page);
	if (!m) {
		/* Mapped over since (restore, free): the access retries against what is there. */
		pthread_mutex_unlock(&z->lock);
		fault_served(z, HOW_FAULT, t0);
		mk_uffd_wake(z->uffd, page, mk_page_size());
		return;
	}
	k = (page - (uintptr_t)m->base) >> z->f.chunk_shift;
	gen = m->gen;
	if (sbx_lazy_is_bad(z, k)) {
		wake = protect_bad(m, k);
		n = chunk_range(m, k, &a);
		pthread_mutex_unlock(&z->lock);
		fault_served(z, HOW_FAULT, t0);
		if (wake)
			mk_uffd_wake(z->uffd, a, n);
		return;
	}
	/* Read and verified in the current prefetch run already: from there, not the file. */
	ready = NULL;
	if (z->run.next < z->run.n && k >= z->run.first + z->run.next && k < z->run.first + z->run.n &&
	    (z->run.good >> (k - z->run.first) & 1))
		ready = z->buf + ((k - z->run.first) << z->f.chunk_shift);
	pthread_mutex_unlock(&z->lock);
	(void)serve_chunk(z, m, gen, k, ready, z->fbuf, HOW_FAULT, t0);
}

int sbx_lazy_map_ensure(struct sbx_lazy_map *m, uint64_t off, uint64_t len)
{
	struct sbx_lazy *z = m->z;
	uint64_t end = MK_MIN(off + len, m->len), gen;
	uint8_t *buf = NULL;
	int r = 0;

	if (!len || off >= end)
		return 0;
	if (m->broken)
		return -EIO;
	/* The caller's host access keeps the mapping as it is (no exclusive operation runs). */
	pthread_mutex_lock(&z->lock);
	gen = m->gen;
	pthread_mutex_unlock(&z->lock);
	for (uint64_t k = off >> z->f.chunk_shift; k <= (end - 1) >> z->f.chunk_shift; k++) {
		if (present(z, m, k))
			continue;
		if (sbx_lazy_is_bad(z, k)) {
			r = -EBADMSG;
			break;
		}
		if (!buf && !sbx_lazy_is_zero(z, k) && !(buf = mk_malloc(z->f.chunk))) {
			r = -ENOMEM;
			break;
		}
		r = serve_chunk(z, m, gen, k, NULL, buf, HOW_HOST, 0);
		if (r < 0)
			break;
	}
	free(buf);
	return r;
}

/* Prefetch work of m's off the queue, the current run's rest too (z->lock held). */
static void unqueue(struct sbx_lazy *z, struct sbx_lazy_map *m)
{
	uint64_t n = 0;

	if (z->run.m == m && z->run.next < z->run.n) {
		n += z->run.n - z->run.next;
		z->run.next = z->run.n;
	}
	if (m->pf_active)
		for (size_t w = 0; w < sbx_bitmap_words(z->f.nchunks); w++)
			n += (uint64_t)__builtin_popcountll(m->pf[w]);
	__atomic_sub_fetch(&z->st.prefetch_queued, n, __ATOMIC_RELAXED);
	m->pf_active = false;
}

/* Queue z's working set for region m (z->lock held). */
static void queue_prefetch(struct sbx_lazy *z, struct sbx_lazy_map *m)
{
	size_t words = (size_t)sbx_bitmap_words(z->f.nchunks);
	uint64_t n = 0, one = 1;

	unqueue(z, m);
	if (!z->hint || m->view)
		return;         /* nothing saved; the view is not a guest's */
	for (size_t w = 0; w < words; w++) {
		m->pf[w] = z->hint[w];
		n += (uint64_t)__builtin_popcountll(m->pf[w]);
	}
	if (!n)
		return;
	m->pf_active = true;
	m->pf_ahead = false;
	m->pf_next = 0;
	sbx_lazy_count(z, prefetch_queued, n);
	(void)mk_write(z->pf_fd, &one, sizeof(one));
}

int sbx_lazy_map_reset(struct sbx_lazy_map *m, uint8_t *base, uint64_t len)
{
	struct sbx_lazy *z = m->z;
	size_t words = (size_t)sbx_bitmap_words(z->f.nchunks);
	int flags = (m->view ? MAP_SHARED : MAP_PRIVATE | MAP_NORESERVE) | MAP_FIXED;
	void *p;
	int r;

	pthread_mutex_lock(&z->lock);
	/* Registered before anything can touch it: see the top of the file. */
	r = mk_mmap(base, (size_t)len, PROT_NONE, flags, z->cfd, 0, &p);
	if (r == 0) {
		(void)mk_madvise(base, (size_t)len, MADV_DONTFORK);
		r = mk_uffd_register(z->uffd, base, len);
		if (r < 0)
			sbx_refuse(LOG_ERR, "lazy snapshot: registering %" PRIu64 " bytes at %p failed "
				   "(%d): left inaccessible", len, (void *)base, r);
		else
			r = mk_mprotect(base, (size_t)len, m->view ? PROT_READ : PROT_READ | PROT_WRITE);
		/* The old mapping is gone: a region keeping this map must not touch the range. */
		m->broken = r < 0;
	}
	if (r == 0) {
		m->base = base;
		m->len = len;
		m->gen = ++z->next_gen;
		memset(m->zeroed, 0, words * sizeof(uint64_t));
		memset(m->faulted, 0, words * sizeof(uint64_t));
		if (m->view)
			z->vbase = base;
		if (!m->attached) {
			m->next = z->maps;
			z->maps = m;
			m->attached = true;
		}
		queue_prefetch(z, m);
	}
	pthread_mutex_unlock(&z->lock);
	/* Accesses that waited in the old memory retry in the new. */
	mk_uffd_wake(z->uffd, (uintptr_t)base, len);
	return r;
}

void sbx_lazy_map_detach(struct sbx_lazy_map *m)
{
	struct sbx_lazy *z = m->z;

	if (!m->attached)
		return;
	pthread_mutex_lock(&z->lock);
	for (struct sbx_lazy_map **l = &z->maps; *l; l = &(*l)->next)
		if (*l == m) {
			*l = m->next;
			break;
		}
	m->attached = false;
	m->base = NULL;
	m->len = 0;
	unqueue(z, m);
	pthread_mutex_unlock(&z->lock);
}

int sbx_lazy_map_drop(struct sbx_lazy_map *m, uint64_t off, uint64_t len)
{
	struct sbx_lazy *z = m->z;
	uint64_t end = MK_MIN(off + len, m->len);
	int r;

	pthread_mutex_lock(&z->lock);
	/* Private copies go; cached pages map again on the next access, zero chunks fault again. */
	r = mk_madvise(m->base + off, (size_t)len, MADV_DONTNEED);
	if (r == 0 && off < end)
		for (uint64_t k = off >> z->f.chunk_shift; k <= (end - 1) >> z->f.chunk_shift; k++)
			bit_clear(m->zeroed, k);
	pthread_mutex_unlock(&z->lock);
	return r;
}

void sbx_lazy_map_set_len(struct sbx_lazy_map *m, uint64_t len)
{
	pthread_mutex_lock(&m->z->lock);
	m->len = len;
	m->gen = ++m->z->next_gen;
	pthread_mutex_unlock(&m->z->lock);
}

void sbx_lazy_map_lock(struct sbx_lazy_map *m)
{
	pthread_mutex_lock(&m->z->lock);
	(void)mk_mprotect(m->base, (size_t)m->len, PROT_NONE);
}

void sbx_lazy_map_unlock(struct sbx_lazy_map *m)
{
	/* Moved and registered again, or not moved (the resize failed): accessible. */
	if (!m->broken)
		(void)mk_mprotect(m->base, (size_t)m->len, PROT_READ | PROT_WRITE);
	pthread_mutex_unlock(&m->z->lock);
}

int sbx_lazy_map_moved(struct sbx_lazy_map *m, uint8_t *base)
{
	int r = mk_uffd_register(m->z->uffd, base, m->len);

	m->base = base;
	m->gen = ++m->z->next_gen;
	if (r < 0) {
		/* Pages not in the cache would read as zeros (and leave zeros in it): none can be read. */
		sbx_refuse(LOG_ERR, "sbx_mem_resize: registering the moved region again failed (%d): "
			   "its snapshot part is left inaccessible", r);
		m->broken = true;       /* sbx_lazy_map_unlock leaves it PROT_NONE */
	}
	return r;
}

int64_t sbx_lazy_map_ws(struct sbx_lazy_map *m, uint64_t *bitmap, size_t nwords)
{
	size_t words = (size_t)sbx_bitmap_words(m->z->f.nchunks);
	int64_t n = 0;

	for (size_t w = 0; w < nwords; w++) {
		bitmap[w] = w < words ? __atomic_load_n(&m->faulted[w], __ATOMIC_ACQUIRE) : 0;
		n += __builtin_popcountll(bitmap[w]);
	}
	return n;
}

bool sbx_lazy_prefetch_pending(struct sbx_lazy *z)
{
	if (z->run.next < z->run.n)
		return true;
	for (struct sbx_lazy_map *m = z->maps; m; m = m->next)
		if (m->pf_active)
			return true;
	return false;
}

/* Take chunk k off m's queue (z->lock held); done: it needs nothing more. */
static void dequeue(struct sbx_lazy *z, struct sbx_lazy_map *m, uint64_t k, bool done)
{
	bit_clear(m->pf, k);
	if (done)
		__atomic_sub_fetch(&z->st.prefetch_queued, 1, __ATOMIC_RELEASE);
}

/* Does chunk k of m's queue need a read from the file? */
static bool to_read(struct sbx_lazy *z, const struct sbx_lazy_map *m, uint64_t k)
{
	return sbx_bit(m->pf, k) && !sbx_lazy_is_cached(z, k) && !sbx_lazy_is_bad(z, k) &&
	       !sbx_lazy_is_zero(z, k);
}

/*
 * The next run of m's queued chunks from pf_next (z->lock held): chunks
 * that need no read (bad, or zero or already cached: brought into m here)
 * are taken off the queue on the way; a run is consecutive chunks to read,
 * at most RUN_CHUNKS and the service buffer. Returns its length (0: m is
 * done).
 */
static unsigned next_run(struct sbx_lazy *z, struct sbx_lazy_map *m, uint64_t *first)
{
	uint64_t k = m->pf_next, nch = z->f.nchunks;
	unsigned n = 0, max = (unsigned)MK_MIN((uint64_t)RUN_CHUNKS, z->buf_len >> z->f.chunk_shift);

	for (; k < nch && !n; k++) {
		if (!sbx_bit(m->pf, k))
			continue;
		if (!to_read(z, m, k)) {
			if (!sbx_lazy_is_bad(z, k) && into_map(z, m, m->gen, k, HOW_PREFETCH) == 0 &&
			    !sbx_lazy_is_zero(z, k))
				sbx_lazy_count(z, chunks_prefetched, 1);
			dequeue(z, m, k, true);         /* after the count, as the step does */
			continue;
		}
		*first = k;
		for (n = 1; n < max && k + n < nch && to_read(z, m, k + n); n++)
			;
		for (unsigned i = 0; i < n; i++)
			dequeue(z, m, k + i, false);
		m->pf_next = k + n;
	}
	if (!n)
		m->pf_active = false;
	return n;
}

/*
 * Ask the kernel to read m's queued chunks ahead, all at once (it reads
 * them in parallel and in its own order; the runs below then find them
 * in the page cache): once per queue, before its first run. The queue is
 * copied into buf (no run in it yet) under z->lock, the hints go out
 * without it.
 */
static void read_ahead(struct sbx_lazy *z, struct sbx_lazy_map *m)
{
	uint64_t words = MK_MIN(sbx_bitmap_words(z->f.nchunks), (uint64_t)(z->buf_len / 8)), first = 0, used;
	uint64_t *bits = (uint64_t *)z->buf;
	bool in = false;

	memcpy(bits, m->pf, (size_t)words * 8);
	m->pf_ahead = true;
	pthread_mutex_unlock(&z->lock);
	/* Version 4: the table in one read (through buf past the bits), not a block a chunk. */
	used = MK_MIN(z->buf_len, (words * 8 + SBX_SNAPF_BLOCK - 1) / SBX_SNAPF_BLOCK * SBX_SNAPF_BLOCK);
	sbx_lazy_table_all(z, z->buf + used, (size_t)(z->buf_len - used));
	for (uint64_t k = 0; k <= words * 64; k++) {
		bool want = k < words * 64 && k < z->f.nchunks && (bits[k / 64] >> (k % 64) & 1) &&
			    !sbx_lazy_is_zero(z, k) && !sbx_lazy_is_cached(z, k);

		if (want && !in)
			first = k;
		else if (!want && in)
			(void)mk_fadvise(z->fd, z->f.data_off + (first << z->f.chunk_shift),
					 (k - first) << z->f.chunk_shift, POSIX_FADV_WILLNEED);
		in = want;
	}
	pthread_mutex_lock(&z->lock);
}

/* Read the next run into buf (z->run): its length, 0 when nothing is queued. */
static unsigned start_run(struct sbx_lazy *z)
{
	struct sbx_lazy_map *m = NULL;
	uint64_t first = 0, good;
	unsigned n = 0;

	pthread_mutex_lock(&z->lock);
again:
	for (struct sbx_lazy_map *x = z->maps; x; x = x->next) {
		if (!x->pf_active)
			continue;
		if (!x->pf_ahead) {
			read_ahead(z, x);       /* drops the lock: the list may have changed */
			goto again;
		}
		if ((n = next_run(z, x, &first)) > 0) {
			m = x;
			break;
		}
	}
	z->run.n = z->run.next = 0;
	if (n) {
		z->run.m = m;
		z->run.gen = m->gen;
		z->run.first = first;
	}
	pthread_mutex_unlock(&z->lock);
	if (!n)
		return 0;
	/* One read for the run; if it fails, chunk by chunk (each read marks its own failure). */
	if (sbx_lazy_read_run(z, first, n, z->buf, &good) < 0)
		good = 0;
	pthread_mutex_lock(&z->lock);
	z->run.good = good;
	z->run.n = n;
	pthread_mutex_unlock(&z->lock);
	return n;
}

/* Chunk k of the run (its verified bytes at p) into the cache, counted. */
static bool cache_prefetched(struct sbx_lazy *z, uint64_t k, const uint8_t *p)
{
	if (sbx_lazy_cache(z, k, p) < 0)
		return false;
	sbx_lazy_count(z, chunks_prefetched, 1);
	return true;
}

/*
 * One chunk of prefetch a call, so the service serves the faults waiting
 * between any two (a fault on a chunk of this run takes it from buf).
 */
int sbx_lazy_prefetch_step(struct sbx_lazy *z)
{
	uint64_t k, gen, addr = 0, len = 0;
	struct sbx_lazy_map *m;
	const uint8_t *p;
	bool good;
	unsigned i;

	pthread_mutex_lock(&z->lock);
	if (z->run.next >= z->run.n) {
		pthread_mutex_unlock(&z->lock);
		if (!start_run(z))
			return 0;
		pthread_mutex_lock(&z->lock);
		if (z->run.next >= z->run.n) {  /* its map went meanwhile */
			pthread_mutex_unlock(&z->lock);
			return 1;
		}
	}
	i = z->run.next++;
	m = z->run.m;
	gen = z->run.gen;
	k = z->run.first + i;
	good = z->run.good >> i & 1;
	p = z->buf + ((uint64_t)i << z->f.chunk_shift);
	pthread_mutex_unlock(&z->lock);
	if (!good) {
		if (!sbx_lazy_is_bad(z, k))
			(void)serve_chunk(z, m, gen, k, NULL, z->fbuf, HOW_PREFETCH, 0);
	} else if (sbx_lazy_is_cached(z, k) || cache_prefetched(z, k, p)) {
		pthread_mutex_lock(&z->lock);
		if (into_map(z, m, gen, k, HOW_PREFETCH) == 0)
			len = chunk_range(m, k, &addr);
		pthread_mutex_unlock(&z->lock);
	}
	/*
	 * Off the queue only now, its counters moved: whoever reads
	 * prefetch_queued 0 (acquire) sees every chunk's work counted.
	 */
	__atomic_sub_fetch(&z->st.prefetch_queued, 1, __ATOMIC_RELEASE);
	/* A fault may wait here already (its event comes after this step): let it go. */
	if (len)
		mk_uffd_wake(z->uffd, addr, len);
	return 1;
}
