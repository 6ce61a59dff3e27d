/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The region core (sbx_mem_new(3)): guarded mappings, reference counts, the
 * host/guest lock word and the host access check, the guest view, the
 * mapping of a base snapshot, zeroing, statistics and resizing. Everything
 * else in libsandbox sits on top of this file; it calls only dirty.c,
 * snapshot.c, lazymap.c and vcopy.c (and common/).
 *
 * A region based on a lazy snapshot maps the snapshot's cache privately
 * and pages the snapshot in (lmap, lazymap.c): every change of the mapping
 * goes through lazymap.c, which orders it with the fault service, and host
 * copies load what they touch first (sbx_host_ensure).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "common/ext.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

/* Two guard pages must fit too, and the region must be one mmap. */
static bool size_ok(uint64_t size, size_t page)
{
	return size != 0 && mk_is_aligned(size, page) && size <= (uint64_t)(SIZE_MAX / 2) - 2 * page;
}

static int mem_alloc(uint64_t size, struct sbx_mem **out, const char *fn)
{
	size_t page = mk_page_size();
	struct sbx_mem *m;

	if (!size_ok(size, page)) {
		sbx_refuse(LOG_DEBUG, "%s: size %" PRIu64 " is not a non-zero multiple of the "
			   "%zu-byte page that fits the address space", fn, size, page);
		return -EINVAL;
	}
	m = mk_calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->size = size;
	m->page = page;
	m->page_shift = mk_log2(page);
	m->npages = size >> m->page_shift;
	m->dirty_words = (size_t)((m->npages + 63) / 64);
	m->dirty = mk_calloc(m->dirty_words, sizeof(uint64_t));
	if (!m->dirty) {
		free(m);
		return -ENOMEM;
	}
	m->refs = 1;
	m->host_alive = true;
	m->st.mem_size = size;
	*out = m;
	return 0;
}

static void mem_release(struct sbx_mem *m)
{
	/* Off the service's list before the address can be reused by anyone. */
	if (m->lmap) {
		sbx_lazy_map_detach(m->lmap);
		sbx_lazy_map_free(m->lmap);
	}
	if (m->base)
		mk_unmap_guarded(m->base, m->size, m->page);
	sbx_gmem_free(m->gmem);
	sbx_snapshot_unref(m->snap);
	free(m->dirty);
	free(m);
}

MK_EXPORT int sbx_mem_new(uint64_t size, struct sbx_mem **out)
{
	struct sbx_mem *m;
	void *p;
	int r;

	if (!out) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_new: out is NULL");
		return -EINVAL;
	}
	r = mem_alloc(size, &m, "sbx_mem_new");
	if (r < 0)
		return r;
	r = mk_map_guarded(size, m->page, PROT_READ | PROT_WRITE, MAP_NORESERVE, &p);
	if (r < 0) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_new: mapping %" PRIu64 " bytes and two guard pages "
			   "failed (%d)", size, r);
		mem_release(m);
		return r;
	}
	m->base = p;
	*out = m;
	return 0;
}

MK_EXPORT int sbx_mem_new_from_snapshot(struct sbx_snapshot *snap, struct sbx_mem **out)
{
	struct sbx_mem *m;
	int r;

	if (!snap || !out) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_new_from_snapshot: snapshot %p, out %p",
			   (void *)snap, (void *)out);
		return -EINVAL;
	}
	/* Reserve region + guards as PROT_NONE, then put the file over the middle. */
	r = sbx_mem_new_reserved(snap->size, "sbx_mem_new_from_snapshot", &m);
	if (r < 0)
		return r;
	r = sbx_mem_remap(m, snap);
	if (r < 0) {
		mem_release(m);
		return r;
	}
	*out = m;
	return 0;
}

int sbx_mem_new_reserved(uint64_t size, const char *fn, struct sbx_mem **out)
{
	struct sbx_mem *m;
	void *p;
	int r;

	r = mem_alloc(size, &m, fn);
	if (r < 0)
		return r;
	r = mk_map_guarded(m->size, m->page, PROT_NONE, 0, &p);
	if (r < 0) {
		mem_release(m);
		return r;
	}
	m->base = p;
	*out = m;
	return 0;
}

struct sbx_mem *sbx_mem_ref_internal(struct sbx_mem *m)
{
	__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
	return m;
}

void sbx_mem_unref_internal(struct sbx_mem *m)
{
	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
		mem_release(m);
}

MK_EXPORT void sbx_mem_free(struct sbx_mem *m)
{
	if (!m || !m->host_alive)
		return;
	m->host_alive = false;
	sbx_mem_unref_internal(m);
}

MK_EXPORT uint64_t sbx_mem_size(const struct sbx_mem *m)
{
	/* Atomic: sbx_mem_resize() may change it on another thread. */
	return m ? __atomic_load_n(&m->size, __ATOMIC_RELAXED) : 0;
}

int sbx_mem_check(const struct sbx_mem *m, const char *fn)
{
	if (!m) {
		sbx_refuse(LOG_DEBUG, "%s: the region is NULL", fn);
		return -EINVAL;
	}
	if (!m->host_alive) {
		sbx_refuse(LOG_DEBUG, "%s: the region's host handle was freed (sbx_mem_free)", fn);
		return -EINVAL;
	}
	return 0;
}

/* ---- the lock word ---- */

static void log_busy(const char *fn, uint64_t s)
{
	sbx_refuse(LOG_DEBUG, "%s: the region is busy (%s, %" PRIu64 " guest enters, %" PRIu64
		   " host copies)", fn, s & SBX_EXCL ? "an exclusive operation runs" : "in use",
		   (uint64_t)((s & SBX_GUEST_MASK) / SBX_GUEST_ONE), (uint64_t)(s & SBX_HOST_MASK));
}

int sbx_excl_begin(struct sbx_mem *m, const char *fn)
{
	uint64_t expect = 0;

	if (!__atomic_compare_exchange_n(&m->state, &expect, SBX_EXCL, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		log_busy(fn, expect);
		return -EBUSY;
	}
	/* A guest_memfd region is mapped for the operation (gmem.c). */
	if (m->gmem) {
		int r = sbx_gmem_hold(m);
		if (r < 0) {
			__atomic_and_fetch(&m->state, ~SBX_EXCL, __ATOMIC_RELEASE);
			return r;
		}
	}
	return 0;
}

void sbx_excl_end(struct sbx_mem *m)
{
	if (m->gmem)
		sbx_gmem_release(m);
	__atomic_and_fetch(&m->state, ~SBX_EXCL, __ATOMIC_RELEASE);
}

/* Add inc to the lock word unless an exclusive operation holds it. */
static int state_add(struct sbx_mem *m, uint64_t inc, uint64_t mask, const char *fn)
{
	uint64_t s = __atomic_load_n(&m->state, __ATOMIC_RELAXED);

	do {
		if (s & SBX_EXCL) {
			log_busy(fn, s);
			return -EBUSY;
		}
		if ((s & mask) == mask) {
			sbx_refuse(LOG_DEBUG, "%s: %" PRIu64 " concurrent %s already", fn, (uint64_t)(mask / (inc & -inc)),
				   inc == 1 ? "host copies" : "guest enters");
			return -EOVERFLOW;
		}
	} while (!__atomic_compare_exchange_n(&m->state, &s, s + inc, true,
					      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
	/* A host access maps a guest_memfd region for its duration (gmem.c). */
	if (inc == 1 && m->gmem) {
		int r = sbx_gmem_hold(m);
		if (r < 0) {
			__atomic_sub_fetch(&m->state, 1, __ATOMIC_RELEASE);
			return r;
		}
	}
	return 0;
}

int sbx_host_begin(struct sbx_mem *m)
{
	return state_add(m, 1, SBX_HOST_MASK, "host access");
}

void sbx_host_end(struct sbx_mem *m)
{
	if (m->gmem)
		sbx_gmem_release(m);
	__atomic_sub_fetch(&m->state, 1, __ATOMIC_RELEASE);
}

/* A range inside the region; logs fn's refusal. Call between sbx_host_begin and _end. */
static int range_check(const struct sbx_mem *m, uint64_t off, uint64_t len, const char *fn)
{
	if (mk_range_ok(off, len, m->size))
		return 0;
	sbx_refuse(LOG_DEBUG, "%s: [%" PRIu64 ", +%" PRIu64 ") is outside the region's %" PRIu64
		   " bytes", fn, off, len, m->size);
	return -EINVAL;
}

int sbx_host_ensure(struct sbx_mem *m, uint64_t off, uint64_t len, const char *fn)
{
	int r;

	if (!m->lmap)
		return 0;
	r = sbx_lazy_map_ensure(m->lmap, off, len);
	if (r == -EBADMSG)
		sbx_refuse(LOG_DEBUG, "%s: [%" PRIu64 ", +%" PRIu64 ") holds a chunk of the lazy "
			   "snapshot that failed its check", fn, off, len);
	return r;
}

/*
 * The range is checked inside the access: sbx_mem_resize() may change the
 * size until the access has begun.
 */
int sbx_host_access(struct sbx_mem *m, uint64_t off, uint64_t len, const char *fn)
{
	int r = sbx_mem_check(m, fn);

	if (r < 0)
		return r;
	r = state_add(m, 1, SBX_HOST_MASK, fn);
	if (r < 0)
		return r;
	r = range_check(m, off, len, fn);
	if (r == 0)
		r = sbx_host_ensure(m, off, len, fn);
	if (r < 0)
		sbx_host_end(m);
	return r;
}

/* ---- views ---- */

MK_EXPORT int sbx_mem_split(struct sbx_mem *m, struct sbx_guest **guest)
{
	struct sbx_guest *g;

	int r = sbx_mem_check(m, "sbx_mem_split");

	if (r < 0)
		return r;
	if (!guest) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_split: guest is NULL");
		return -EINVAL;
	}
	if (m->guest) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_split: the region already has a guest view");
		return -EBUSY;
	}
	g = mk_calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->m = sbx_mem_ref_internal(m);
	m->guest = g;
	*guest = g;
	return 0;
}

MK_EXPORT int sbx_guest_free(struct sbx_guest *g)
{
	struct sbx_mem *m;

	if (!g)
		return 0;
	m = g->m;
	if (__atomic_load_n(&m->state, __ATOMIC_ACQUIRE) & SBX_GUEST_MASK) {
		sbx_refuse(LOG_DEBUG, "sbx_guest_free: the guest view is entered");
		return -EBUSY;
	}
	m->guest = NULL;
	free(g);
	sbx_mem_unref_internal(m);
	return 0;
}

MK_EXPORT int sbx_guest_enter(struct sbx_guest *g)
{
	if (!g) {
		sbx_refuse(LOG_DEBUG, "sbx_guest_enter: the guest view is NULL");
		return -EINVAL;
	}
	return state_add(g->m, SBX_GUEST_ONE, SBX_GUEST_MASK, "sbx_guest_enter");
}

MK_EXPORT int sbx_guest_exit(struct sbx_guest *g)
{
	uint64_t s;

	if (!g) {
		sbx_refuse(LOG_DEBUG, "sbx_guest_exit: the guest view is NULL");
		return -EINVAL;
	}
	s = __atomic_load_n(&g->m->state, __ATOMIC_RELAXED);
	do {
		if (!(s & SBX_GUEST_MASK)) {
			sbx_refuse(LOG_DEBUG, "sbx_guest_exit: the guest view is not entered");
			return -EINVAL;
		}
	} while (!__atomic_compare_exchange_n(&g->m->state, &s, s - SBX_GUEST_ONE, true,
					      __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	return 0;
}

MK_EXPORT struct sbx_mem *sbx_guest_mem(struct sbx_guest *g)
{
	return g ? g->m : NULL;
}

/* ---- the dirty record (dirty.c holds it) ---- */

MK_EXPORT int sbx_mem_mark_dirty(struct sbx_mem *m, uint64_t off, uint64_t len)
{
	int r;

	if (!m) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_mark_dirty: the region is NULL");
		return -EINVAL;
	}
	/* Like a host copy: the record (and the size) are stable only inside. */
	r = state_add(m, 1, SBX_HOST_MASK, "sbx_mem_mark_dirty");
	if (r < 0)
		return r;
	r = range_check(m, off, len, "sbx_mem_mark_dirty");
	if (r == 0)
		sbx_dirty_mark(m, off, len);
	sbx_host_end(m);
	return r;
}

MK_EXPORT void *sbx_mem_host_ptr(struct sbx_mem *m, bool will_mark_dirty)
{
	if (!m)
		return NULL;
	/* A guest_memfd region has no lasting address unless kept mapped. */
	if (m->gmem && !m->gmem->kept)
		return NULL;
	if (!will_mark_dirty)
		m->raw_untracked = true;
	return m->base;
}

/* ---- mappings ---- */

int sbx_mem_remap(struct sbx_mem *m, struct sbx_snapshot *snap)
{
	struct sbx_lazy_map *old = m->lmap, *lm = NULL;
	void *p;
	int r;

	if (m->gmem)
		return sbx_gmem_rewrite(m, snap);
	if (snap->lazy) {
		/* Fresh memory that pages the snapshot in (its own map unless it had one). */
		if (old && old->z == snap->lazy)
			lm = old;
		else if ((r = sbx_lazy_map_new(snap->lazy, false, &lm)) < 0)
			return r;
		r = sbx_lazy_map_reset(lm, m->base, m->size);
		if (r < 0) {
			if (lm != old)
				sbx_lazy_map_free(lm);
			return r;
		}
	} else {
		/* MAP_FIXED replaces the old pages atomically: no gap under a memslot. */
		r = mk_mmap(m->base, m->size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, snap->fd, 0, &p);
		if (r < 0)
			return r;
	}
	if (old && old != lm) {
		sbx_lazy_map_detach(old);
		sbx_lazy_map_free(old);
	}
	m->lmap = lm;
	sbx_dirty_rebase(m, snap);
	return 0;
}

MK_EXPORT int sbx_mem_zero(struct sbx_mem *m)
{
	void *p;
	int r;

	if (!m) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_zero: the region is NULL");
		return -EINVAL;
	}
	r = sbx_excl_begin(m, "sbx_mem_zero");
	if (r < 0)
		return r;
	/* Drop the guest's pending log bits: they are about to be meaningless. */
	(void)sbx_dirty_collect(m);
	if (m->gmem) {
		/* Give every page back: guest_memfd reads zero in holes. */
		r = sbx_gmem_punch(m, 0, m->size);
		if (r < 0)
			sbx_vfill(m->base, 0, m->size);
		sbx_snapshot_unref(m->snap);
		m->snap = NULL;
		m->snap_len = 0;
		goto done;
	}
	if (!m->snap && mk_madvise(m->base, m->size, MADV_DONTNEED) == 0)
		goto done;
	/* Snapshot-based (DONTNEED would bring the snapshot back) or DONTNEED
	 * refused (e.g. locked pages): a fresh anonymous mapping in place. */
	r = mk_mmap(m->base, m->size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0, &p);
	if (r < 0 && m->lmap) {
		/* A fill would page the whole snapshot in first (and stop at a bad chunk). */
		sbx_excl_end(m);
		return r;
	}
	if (r < 0) {
		sbx_vfill(m->base, 0, m->size);
	} else {
		if (m->lmap) {
			sbx_lazy_map_detach(m->lmap);
			sbx_lazy_map_free(m->lmap);
			m->lmap = NULL;
		}
		sbx_snapshot_unref(m->snap);
		m->snap = NULL;
		m->snap_len = 0;
	}
done:
	sbx_dirty_clear(m);
	m->untracked = false;
	sbx_excl_end(m);
	return 0;
}

/* Hex or decimal digits at *p (at least one), advancing *p. */
static bool parse_u64(const char **p, const char *end, unsigned base, uint64_t *out)
{
	const char *q = *p;
	uint64_t v = 0;

	for (; q < end; q++) {
		unsigned d;
		if (*q >= '0' && *q <= '9')
			d = (unsigned)(*q - '0');
		else if (base == 16 && *q >= 'a' && *q <= 'f')
			d = (unsigned)(*q - 'a' + 10);
		else
			break;
		v = v * base + d;
	}
	if (q == *p)
		return false;
	*p = q;
	*out = v;
	return true;
}

struct smaps_sum {
	uint64_t lo, hi;        /* the region */
	bool in;                /* the current mapping lies inside it */
	uint64_t total;
};

/* One line of /proc/self/smaps: a mapping's "lo-hi perms ..." header, or one of its fields. */
static void smaps_line(struct smaps_sum *s, const char *l, size_t n)
{
	static const char anon[] = "Anonymous:";
	const char *p = l, *end = l + n;
	uint64_t a, b, kb;

	if (parse_u64(&p, end, 16, &a) && p < end && *p == '-') {
		p++;
		if (parse_u64(&p, end, 16, &b) && p < end && *p == ' ') {
			s->in = a >= s->lo && b <= s->hi;
			return;
		}
	}
	if (!s->in || n < sizeof(anon) - 1 || memcmp(l, anon, sizeof(anon) - 1) != 0)
		return;
	p = l + sizeof(anon) - 1;
	while (p < end && *p == ' ')
		p++;
	if (parse_u64(&p, end, 10, &kb))
		s->total += kb * 1024;
}

/*
 * Resident anonymous bytes of the region's mapping, from /proc/self/smaps
 * (read through common/ without stdio; a line longer than the buffer is
 * seen by its start, which is all a header or a field needs).
 */
static int private_bytes(const struct sbx_mem *m, uint64_t *out)
{
	struct smaps_sum sum = { (uintptr_t)m->base, (uintptr_t)m->base + m->size, false, 0 };
	char buf[1024];
	size_t have = 0;
	bool skip = false;      /* inside the cut-off rest of a long line */
	int fd = mk_openat(AT_FDCWD, "/proc/self/smaps", O_RDONLY, 0);

	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t n = mk_read(fd, buf + have, sizeof(buf) - have);
		size_t start = 0;
		if (n < 0) {
			mk_close(fd);
			return (int)n;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			if (!skip)
				smaps_line(&sum, buf + start, i - start);
			skip = false;
			start = i + 1;
		}
		if (start == 0 && have == sizeof(buf)) {
			/* A full buffer without a newline: its start is the line. */
			if (!skip)
				smaps_line(&sum, buf, have);
			skip = true;
			start = have;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	mk_close(fd);
	if (have && !skip)
		smaps_line(&sum, buf, have);
	*out = sum.total;
	return 0;
}

MK_EXPORT int sbx_mem_stats(struct sbx_mem *m, struct sbx_mem_stats *uout)
{
	/* Extensible struct (common/ext.h, libsandbox(3)); first layout: 4.0's. */
	int64_t usize = mk_ext_size(uout, sizeof(struct sbx_mem_stats));
	struct sbx_mem_stats outbuf, *out = &outbuf;
	uint64_t n = 0, priv = 0;
	int r;

	if (!m || usize < 0) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_stats: region %p, out %p (size below %zu)", (void *)m,
			   (void *)uout, sizeof(struct sbx_mem_stats));
		return -EINVAL;
	}
	/*
	 * The record and the mapping are stable only outside exclusive
	 * operations (sbx_mem_resize() replaces both): wait those out, they
	 * are short and never wait for anything themselves.
	 */
	while ((r = sbx_host_begin(m)) == -EBUSY)
		mk_sched_yield();
	if (r < 0)
		return r;
	n = sbx_dirty_count(m);
	r = private_bytes(m, &priv);
	if (r < 0) {
		sbx_host_end(m);
		return r;
	}
	*out = m->st;
	out->mem_size = m->size;
	out->dirty_pages = n;
	out->private_bytes = priv;
	/* guest_memfd shares nothing with a snapshot (and has no anonymous pages). */
	out->shared_bytes = m->snap && !m->gmem ? m->snap_len - MK_MIN(priv, m->snap_len) : 0;
	sbx_host_end(m);
	mk_ext_out(uout, out, sizeof(*out), (size_t)usize);
	return 0;
}

/* ---- resizing ---- */

/* Move [from, from + old_len) to dst (replacing what is there), grown to new_len. */
static int move_fixed(void *from, size_t old_len, size_t new_len, void *dst)
{
	void *p;

	return mk_mremap(from, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, dst, &p);
}

/*
 * Shrink in place (host pointers stay valid): the page at the new end
 * becomes the guard, everything after it goes. The mprotect is the step
 * that can fail cleanly; if the munmap fails after it, it is undone.
 */
static int shrink(struct sbx_mem *m, uint64_t new_size)
{
	uint8_t *guard = m->base + new_size;
	int r;

	r = mk_mprotect(guard, m->page, PROT_NONE);
	if (r < 0)
		return r;
	/* The rest of the old region and its old guard page. */
	r = mk_munmap(guard + m->page, (size_t)(m->size - new_size));
	if (r < 0) {
		(void)mk_mprotect(guard, m->page, PROT_READ | PROT_WRITE);
		return r;
	}
	/* The new guard's old bytes are never readable again: free them. */
	(void)mk_madvise(guard, m->page, MADV_DONTNEED);
	return 0;
}

/*
 * Grow by moving the region into a fresh guarded reservation: mremap moves
 * page tables, not bytes. The region is at most two mappings: the snapshot
 * file part [0, snap_len) (moved as is: extending a mapping of the sealed
 * memfd past its end would SIGBUS) and an anonymous part [snap_len, size)
 * (the whole region when not snapshot-based), which one mremap moves and
 * extends with zero pages. A snapshot region without an anonymous part gets
 * a fresh anonymous tail. Until the last step succeeds the old mapping is
 * intact (or moved back), so a failure changes nothing.
 */
static int grow(struct sbx_mem *m, uint64_t new_size, uint8_t **base_out)
{
	uint64_t old = m->size, anon = m->snap ? m->snap_len : 0;
	uint8_t *nb;
	void *p;
	int r;

	r = mk_map_guarded((size_t)new_size, m->page, PROT_NONE, 0, &p);
	if (r < 0) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_resize: reserving %" PRIu64 " bytes and two guard "
			   "pages failed (%d)", new_size, r);
		return r;
	}
	nb = p;
	if (anon < old)
		r = move_fixed(m->base + anon, (size_t)(old - anon), (size_t)(new_size - anon),
			       nb + anon);
	else
		r = mk_mmap(nb + old, (size_t)(new_size - old), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0, &p);
	if (r < 0)
		goto fail;
	if (anon > 0) {
		r = move_fixed(m->base, (size_t)anon, (size_t)anon, nb);
		if (r < 0) {
			/*
			 * Put the anonymous part back into the hole it left in the
			 * old reservation (same size, so this does not allocate).
			 */
			if (anon < old &&
			    move_fixed(nb + anon, (size_t)(old - anon), (size_t)(old - anon),
				       m->base + anon) < 0) {
				sbx_refuse(LOG_ERR, "sbx_mem_resize: moving the region's anonymous "
					   "part back failed: bytes from %" PRIu64 " on are lost", anon);
				r = -ENOTRECOVERABLE;
			}
			goto fail;
		}
	}
	/* Committed: the old guard pages go; the old region's range is already empty. */
	(void)mk_munmap(m->base - m->page, m->page);
	(void)mk_munmap(m->base + old, m->page);
	*base_out = nb;
	return 0;
fail:
	/*
	 * A failed mremap may have unmapped its target in the reservation
	 * first; the reservation is released whole either way. (The kernel
	 * checks the map count before it unmaps anything, so this needs an
	 * unexpected mapping layout, e.g. a caller's mprotect through the raw
	 * pointer; then another thread's mmap could in theory land in that
	 * hole before this munmap.)
	 */
	mk_unmap_guarded(nb, (size_t)new_size, m->page);
	return r;
}

/*
 * shrink() or grow(), ordered with a lazy region's fault service: it
 * forgets the part that goes before it goes (its address may be reused at
 * once), and sees a move only once the memory was registered again.
 */
static int resize_mapping(struct sbx_mem *m, uint64_t new_size, uint8_t **nb)
{
	uint64_t old_len;
	int r;

	if (!m->lmap)
		return new_size < m->size ? shrink(m, new_size) : grow(m, new_size, nb);
	if (new_size < m->size) {
		old_len = m->snap_len;
		sbx_lazy_map_set_len(m->lmap, MK_MIN(old_len, new_size));
		r = shrink(m, new_size);
		if (r < 0)
			sbx_lazy_map_set_len(m->lmap, old_len);
		return r;
	}
	/* Inaccessible while moved and not registered yet (lazymap.c says why). */
	sbx_lazy_map_lock(m->lmap);
	r = grow(m, new_size, nb);
	/* Moved: a failed registration leaves that part inaccessible (logged), not undone. */
	if (r == 0)
		(void)sbx_lazy_map_moved(m->lmap, *nb);
	sbx_lazy_map_unlock(m->lmap);
	return r;
}

MK_EXPORT int sbx_mem_resize(struct sbx_mem *m, uint64_t new_size)
{
	uint64_t npages, keep, *dirty;
	uint8_t *nb = NULL;
	size_t words;
	int r;

	r = sbx_mem_check(m, "sbx_mem_resize");
	if (r < 0)
		return r;
	if (!size_ok(new_size, m->page)) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_resize: size %" PRIu64 " is not a non-zero multiple "
			   "of the %zu-byte page that fits the address space", new_size, m->page);
		return -EINVAL;
	}
	r = sbx_excl_begin(m, "sbx_mem_resize");
	if (r < 0)
		return r;
	if (new_size == m->size)
		goto out;
	if (m->gmem) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_resize: a guest_memfd region has a fixed size");
		r = -EOPNOTSUPP;
		goto out;
	}
	/* A memslot's size and address are fixed: the caller unbinds first. */
	if (m->binds) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_resize: the region is bound into a VM "
			   "(memslot %" PRIu32 "): unbind it first", m->binds->slot);
		r = -EBUSY;
		goto out;
	}
	/* Everything that can fail comes before the mapping changes. */
	npages = new_size >> m->page_shift;
	words = (size_t)((npages + 63) / 64);
	dirty = mk_calloc(words, sizeof(uint64_t));
	if (!dirty) {
		r = -ENOMEM;
		goto out;
	}
	keep = MK_MIN(npages, m->npages);
	memcpy(dirty, m->dirty, (size_t)(keep / 64) * sizeof(uint64_t));
	if (keep % 64)
		dirty[keep / 64] = m->dirty[keep / 64] & ((1ull << (keep % 64)) - 1);
	r = resize_mapping(m, new_size, &nb);
	if (r < 0) {
		free(dirty);
		goto out;
	}
	if (nb)
		m->base = nb;
	free(m->dirty);
	m->dirty = dirty;
	m->dirty_words = words;
	m->npages = npages;
	m->snap_len = MK_MIN(m->snap_len, new_size);
	m->st.mem_size = new_size;
	__atomic_store_n(&m->size, new_size, __ATOMIC_RELAXED);
out:
	sbx_excl_end(m);
	return r;
}
