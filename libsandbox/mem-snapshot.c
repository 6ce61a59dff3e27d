/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A region and its snapshot (sbx_snapshot_take(3)): taking one, restoring
 * it in O(dirty pages), trimming the pages that still equal it.
 *
 * A region based on a snapshot is a MAP_PRIVATE mapping of its fd: clean
 * pages are the snapshot's page-cache pages, dirty ones private copies.
 * Restore puts back just the dirty pages (the dirty record is dirty.c's).
 * A region based on a lazy snapshot maps the snapshot's cache of verified
 * chunks privately and pages the rest in (lazymap.c): copy-back copies from
 * the cache (the dirty pages' chunks are in it), dropped pages (TRIM, trim)
 * map the cache again, a remap maps it whole again.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

/*
 * AUTO copies dirty pages back unless more than half the region is dirty,
 * then it remaps. From bench-sbx (1 GiB sandbox, real guest, nested KVM):
 * copy-back costs 0.2-0.7 us a page and leaves the pages mapped, so the
 * guest's next write only takes a dirty-logging fault (~3 us); a remap
 * costs ~0.1 ms plus ~0.35 us a dirty page to free, but every page the
 * guest touches again must fault and copy-on-write (~6 us). Remap wins on
 * the restore alone from a few thousand pages, loses on the full cycle at
 * every count measured (up to 25% dirty); it is kept for regions dirtied
 * nearly everywhere, where it also gives the memory back.
 */
static bool prefer_remap(const struct sbx_mem *m, uint64_t dirty)
{
	return dirty > m->npages / 2;
}

MK_EXPORT int sbx_snapshot_take(struct sbx_mem *m, struct sbx_snapshot **out)
{
	struct sbx_snapshot *s;
	uint8_t *rw;
	int fd, r;

	r = sbx_mem_check(m, "sbx_snapshot_take");
	if (r < 0)
		return r;
	if (!out) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_take: out is NULL");
		return -EINVAL;
	}
	r = sbx_excl_begin(m, "sbx_snapshot_take");
	if (r < 0)
		return r;
	/* The copy below must not wait for the service (this may be its thread): load it all. */
	r = sbx_host_ensure(m, 0, m->size, "sbx_snapshot_take");
	if (r == 0)
		r = sbx_snapshot_new_sealed(m->size, &fd, &rw);
	if (r < 0)
		goto out;
	/*
	 * Exclusive, so the guest is not running: a plain copy is race-free.
	 * All-zero chunks stay holes in the memfd (reads as zero, no memory).
	 */
	for (uint64_t off = 0; off < m->size; off += 65536) {
		size_t n = (size_t)MK_MIN(65536, m->size - off);
		if (!sbx_all_zero(m->base + off, n))
			memcpy(rw + off, m->base + off, n);
	}
	mk_munmap(rw, m->size);
	r = sbx_snapshot_seal_and_wrap(fd, m->size, &s);
	if (r < 0)
		goto out;
	/* Guest writes up to now are in the snapshot: drop their log bits. */
	(void)sbx_dirty_collect(m);
	/* guest_memfd keeps its bytes (they are the snapshot's): no remap. */
	if (m->gmem)
		sbx_dirty_rebase(m, s);
	else
		r = sbx_mem_remap(m, s);
	if (r < 0) {
		sbx_snapshot_unref(s);
		goto out;
	}
	*out = s;
out:
	sbx_excl_end(m);
	return r;
}

static int run_copy(struct sbx_mem *m, uint64_t first, uint64_t n)
{
	uint64_t off = first << m->page_shift;

	/* Dirty pages are present (written): the copy never waits for a fault. */
	if (m->lmap)
		return sbx_lazy_copy_out(m->snap->lazy, off, m->base + off, n << m->page_shift,
					 m->scratch);
	memcpy(m->base + off, m->snap->ro + off, n << m->page_shift);
	return 0;
}

static int run_dontneed(struct sbx_mem *m, uint64_t first, uint64_t n)
{
	if (m->lmap)
		return sbx_lazy_map_drop(m->lmap, first << m->page_shift, n << m->page_shift);
	return mk_madvise(m->base + (first << m->page_shift), n << m->page_shift, MADV_DONTNEED);
}

MK_EXPORT int64_t sbx_snapshot_restore(struct sbx_mem *m, struct sbx_snapshot *s, unsigned flags)
{
	int64_t pages;
	uint64_t n;
	int r;

	r = sbx_mem_check(m, "sbx_snapshot_restore");
	if (r < 0)
		return r;
	if (!s || flags > SBX_RESTORE_TRIM) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_restore: snapshot %p, flags %u (known: 0..%u)",
			   (void *)s, flags, SBX_RESTORE_TRIM);
		return -EINVAL;
	}
	r = sbx_excl_begin(m, "sbx_snapshot_restore");
	if (r < 0)
		return r;
	/* Inside: sbx_mem_resize() changes the size. */
	if (s->size != m->size) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_restore: the snapshot has %" PRIu64
			   " bytes, the region %" PRIu64, s->size, m->size);
		r = -EINVAL;
		goto out;
	}
	r = sbx_dirty_collect(m);
	n = sbx_dirty_count(m);
	/*
	 * Only a region that maps s whole can be restored page by page: after
	 * a resize shrank it and grew it back, its tail is anonymous memory
	 * that holds none of the snapshot's bytes, dirty or not.
	 */
	if (m->snap != s || m->snap_len != m->size || m->untracked || m->raw_untracked || r == 1 ||
	    flags == SBX_RESTORE_REMAP || (flags == SBX_RESTORE_AUTO && prefer_remap(m, n))) {
		r = sbx_mem_remap(m, s);
		if (r < 0)
			goto out;
		m->st.restores_remap++;
		pages = (int64_t)m->npages;
	} else {
		/*
		 * Copy-back keeps every page mapped (a guest's mapping stays
		 * valid, nothing to fault in again); DONTNEED frees the private
		 * copies and lets the next access fault in the snapshot page.
		 * guest_memfd has no snapshot page under it: TRIM copies too.
		 */
		bool trim = flags == SBX_RESTORE_TRIM && !m->gmem;

		/* A lazy copy-back reads chunk by chunk through one buffer (before any change). */
		if (m->lmap && !trim && !(m->scratch = mk_malloc(s->lazy->f.chunk))) {
			r = -ENOMEM;
			goto out;
		}
		pages = sbx_dirty_for_runs(m, true, trim ? run_dontneed : run_copy);
		free(m->scratch);
		m->scratch = NULL;
		if (pages < 0) {
			/* DONTNEED refused (locked memory?) or a lazy chunk bad: fall back to the remap. */
			r = sbx_mem_remap(m, s);
			if (r < 0)
				goto out;
			pages = (int64_t)m->npages;
			m->st.restores_remap++;
		} else if (trim) {
			m->st.restores_trim++;
		} else {
			m->st.restores_copy++;
		}
		sbx_dirty_clear(m);
	}
	m->st.pages_restored += (uint64_t)pages;
	sbx_excl_end(m);
	return pages;
out:
	sbx_excl_end(m);
	return r;
}

MK_EXPORT int64_t sbx_mem_trim(struct sbx_mem *m)
{
	int64_t pages;
	int r;

	r = sbx_mem_check(m, "sbx_mem_trim");
	if (r < 0)
		return r;
	r = sbx_excl_begin(m, "sbx_mem_trim");
	if (r < 0)
		return r;
	/* Nothing to give back: guest_memfd pages are not the snapshot's. */
	if (!m->snap || m->gmem) {
		sbx_excl_end(m);
		return 0;
	}
	r = sbx_dirty_collect(m);
	if (r != 0 || m->untracked || m->raw_untracked) {
		/* Unknown guest or raw writes: no page is known clean. */
		sbx_excl_end(m);
		return 0;
	}
	/* Clean pages equal the snapshot: dropping them changes no byte. */
	pages = sbx_dirty_for_runs(m, false, run_dontneed);
	sbx_excl_end(m);
	return pages;
}

MK_EXPORT int64_t sbx_mem_working_set(struct sbx_mem *m, uint64_t *bitmap, size_t nwords)
{
	int64_t n;
	int r;

	r = sbx_mem_check(m, "sbx_mem_working_set");
	if (r < 0)
		return r;
	if (!bitmap) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_working_set: bitmap is NULL");
		return -EINVAL;
	}
	/* Stable outside exclusive operations (a restore resets it). */
	r = sbx_host_begin(m);
	if (r < 0)
		return r;
	if (!m->lmap) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_working_set: the region is not lazily loaded");
		n = -EINVAL;
	} else if (nwords < sbx_bitmap_words(m->snap->lazy->f.nchunks)) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_working_set: %zu words cannot hold %" PRIu64 " chunks",
			   nwords, m->snap->lazy->f.nchunks);
		n = -ENOBUFS;
	} else {
		n = sbx_lazy_map_ws(m->lmap, bitmap, nwords);
	}
	sbx_host_end(m);
	return n;
}
