/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Immutable snapshots and O(dirty) restore.
 *
 * A snapshot is a memfd sealed with F_SEAL_WRITE|SHRINK|GROW|SEAL (F_SEAL_WRITE
 * cannot be added while a writable shared mapping exists, so nothing can
 * change it afterwards; F_SEAL_FUTURE_WRITE alone would leave old mappings
 * writable) or an fs-verity file. A region based on it is a MAP_PRIVATE
 * mapping of it: clean pages are the snapshot's page-cache pages, dirty
 * ones private copies. Restore puts back just the dirty pages.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

#define SBX_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define SBX_SEALS_NEEDED (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

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

/* A new memfd of size bytes, mapped shared read-write for filling. */
int sbx_snapshot_new_sealed(uint64_t size, int *fd_out, uint8_t **rw_out)
{
	_mk_cleanup_close_ int fd = -1;
	void *p;
	int r;

	fd = mk_memfd_create("sbx-snapshot", MFD_ALLOW_SEALING);
	if (fd < 0)
		return fd;
	r = mk_ftruncate(fd, size);
	if (r < 0)
		return r;
	r = mk_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0, &p);
	if (r < 0)
		return r;
	*rw_out = p;
	*fd_out = mk_take_fd(&fd);
	return 0;
}

/* Seal fd (after its writable mapping is gone) and wrap it. Takes fd. */
static int seal_and_wrap(int fd, uint64_t size, struct sbx_snapshot **out)
{
	int r = mk_add_seals(fd, SBX_SEALS);

	if (r < 0) {
		mk_close(fd);
		return r;
	}
	return sbx_snapshot_wrap(fd, size, false, out);
}

/* Wrap an immutable fd of size bytes (size checked by the caller). Takes fd. */
int sbx_snapshot_wrap(int fd, uint64_t size, bool direct, struct sbx_snapshot **out)
{
	struct sbx_snapshot *s = calloc(1, sizeof(*s));
	void *p;
	int r;

	if (!s) {
		mk_close(fd);
		return -ENOMEM;
	}
	r = mk_mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0, &p);
	if (r < 0) {
		free(s);
		mk_close(fd);
		return r;
	}
	s->refs = 1;
	s->fd = fd;
	s->size = size;
	s->ro = p;
	s->direct = direct;
	*out = s;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	return true;
}

MK_EXPORT int sbx_snapshot_take(struct sbx_mem *m, struct sbx_snapshot **out)
{
	struct sbx_snapshot *s;
	uint8_t *rw;
	int fd, r;

	if (!m || !out || !m->host_alive)
		return -EINVAL;
	r = sbx_excl_begin(m);
	if (r < 0)
		return r;
	r = sbx_snapshot_new_sealed(m->size, &fd, &rw);
	if (r < 0)
		goto out;
	/*
	 * Exclusive, so the guest is not running: a plain copy is race-free.
	 * All-zero chunks stay holes in the memfd (reads as zero, no memory).
	 */
	for (uint64_t off = 0; off < m->size; off += 65536) {
		size_t n = (size_t)MK_MIN(65536, m->size - off);
		if (!all_zero(m->base + off, n))
			memcpy(rw + off, m->base + off, n);
	}
	mk_munmap(rw, m->size);
	r = seal_and_wrap(fd, m->size, &s);
	if (r < 0)
		goto out;
	/* Guest writes up to now are in the snapshot: drop their log bits. */
	(void)sbx_kvm_collect(m);
	r = sbx_mem_remap(m, s);
	if (r < 0) {
		sbx_snapshot_free(s);
		goto out;
	}
	*out = s;
out:
	sbx_excl_end(m);
	return r;
}

static bool is_verity(int fd)
{
	struct statx stx;

	if (mk_statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0)
		return false;
	return (stx.stx_attributes_mask & STATX_ATTR_VERITY) &&
	       (stx.stx_attributes & STATX_ATTR_VERITY);
}

MK_EXPORT int sbx_snapshot_import(int fd, unsigned flags, struct sbx_snapshot **out)
{
	struct stat st;
	uint64_t size;
	uint8_t *rw;
	int seals, dfd, mfd, r;
	ssize_t n;

	if (fd < 0 || !out || (flags & ~SBX_IMPORT_COPY))
		return -EINVAL;
	r = mk_fstat(fd, &st);
	if (r < 0)
		return r;
	if (!S_ISREG(st.st_mode) || st.st_size <= 0)
		return -EINVAL;
	size = (uint64_t)st.st_size;
	if (size > (uint64_t)(SIZE_MAX / 2))
		return -EINVAL;
	if (!(flags & SBX_IMPORT_COPY) && mk_is_aligned(size, mk_page_size())) {
		/* Checked before mapping: the size can no longer change, so no SIGBUS. */
		seals = mk_get_seals(fd);
		if ((seals >= 0 && (seals & SBX_SEALS_NEEDED) == SBX_SEALS_NEEDED) || is_verity(fd)) {
			dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
			if (dfd < 0)
				return -errno;
			/* Re-check on our own fd: same file, sizes are final now. */
			r = mk_fstat(dfd, &st);
			if (r < 0 || (uint64_t)st.st_size != size) {
				mk_close(dfd);
				return r < 0 ? r : -EINVAL;
			}
			return sbx_snapshot_wrap(dfd, size, true, out);
		}
	}
	/* Not provably immutable: copy it with pread (a shrinking file cannot SIGBUS us). */
	{
		uint64_t asize;
		r = mk_align_up(size, mk_page_size(), &asize);
		if (r < 0)
			return -EINVAL;
		r = sbx_snapshot_new_sealed(asize, &mfd, &rw);
		if (r < 0)
			return r;
		n = mk_pread_full(fd, rw, (size_t)size, 0);
		mk_munmap(rw, asize);
		if (n < 0) {
			mk_close(mfd);
			return (int)n;
		}
		return seal_and_wrap(mfd, asize, out);
	}
}

MK_EXPORT struct sbx_snapshot *sbx_snapshot_ref(struct sbx_snapshot *s)
{
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

MK_EXPORT void sbx_snapshot_free(struct sbx_snapshot *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	mk_munmap((void *)s->ro, s->size);
	mk_close(s->fd);
	free(s);
}

MK_EXPORT uint64_t sbx_snapshot_size(const struct sbx_snapshot *s)
{
	return s ? s->size : 0;
}

MK_EXPORT int sbx_snapshot_fd(const struct sbx_snapshot *s)
{
	return s ? s->fd : -EINVAL;
}

MK_EXPORT const void *sbx_snapshot_data(const struct sbx_snapshot *s)
{
	return s ? s->ro : NULL;
}

MK_EXPORT bool sbx_snapshot_is_direct(const struct sbx_snapshot *s)
{
	return s && s->direct;
}

/* Call fn on each run of set (want = true) or clear bits of the dirty record. */
static int64_t for_runs(struct sbx_mem *m, bool want,
			int (*fn)(struct sbx_mem *m, uint64_t first, uint64_t n))
{
	int64_t pages = 0;
	uint64_t i = 0;

	while (i < m->npages) {
		uint64_t w = m->dirty[i / 64];
		uint64_t bits = want ? w : ~w;
		uint64_t start, end;
		int r;

		bits &= ~0ull << (i % 64);
		if (!bits) {
			i = (i / 64 + 1) * 64;
			continue;
		}
		start = (i / 64) * 64 + (uint64_t)__builtin_ctzll(bits);
		if (start >= m->npages)
			break;
		/* Extend the run while the bits stay as wanted. */
		end = start + 1;
		while (end < m->npages) {
			uint64_t ww = m->dirty[end / 64];
			uint64_t b = (want ? ~ww : ww) & (~0ull << (end % 64));
			if (b) {
				end = (end / 64) * 64 + (uint64_t)__builtin_ctzll(b);
				break;
			}
			end = (end / 64 + 1) * 64;
		}
		if (end > m->npages)
			end = m->npages;
		r = fn(m, start, end - start);
		if (r < 0)
			return r;
		pages += (int64_t)(end - start);
		i = end;
	}
	return pages;
}

static int run_copy(struct sbx_mem *m, uint64_t first, uint64_t n)
{
	uint64_t off = first << m->page_shift;

	memcpy(m->base + off, m->snap->ro + off, n << m->page_shift);
	return 0;
}

static int run_dontneed(struct sbx_mem *m, uint64_t first, uint64_t n)
{
	return mk_madvise(m->base + (first << m->page_shift), n << m->page_shift, MADV_DONTNEED);
}

static uint64_t dirty_count(const struct sbx_mem *m)
{
	uint64_t n = 0;

	for (size_t i = 0; i < m->dirty_words; i++)
		n += (uint64_t)__builtin_popcountll(m->dirty[i]);
	return n;
}

MK_EXPORT int64_t sbx_snapshot_restore(struct sbx_mem *m, struct sbx_snapshot *s, unsigned flags)
{
	int64_t pages;
	uint64_t n;
	int r;

	if (!m || !s || flags > SBX_RESTORE_TRIM || !m->host_alive)
		return -EINVAL;
	r = sbx_excl_begin(m);
	if (r < 0)
		return r;
	/* Inside: sbx_mem_resize() changes the size. */
	if (s->size != m->size) {
		r = -EINVAL;
		goto out;
	}
	r = sbx_kvm_collect(m);
	n = dirty_count(m);
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
		 */
		bool trim = flags == SBX_RESTORE_TRIM;
		pages = for_runs(m, true, trim ? run_dontneed : run_copy);
		if (pages < 0) {
			/* DONTNEED refused (locked memory?): fall back to the remap. */
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

	if (!m || !m->host_alive)
		return -EINVAL;
	r = sbx_excl_begin(m);
	if (r < 0)
		return r;
	if (!m->snap) {
		sbx_excl_end(m);
		return 0;
	}
	r = sbx_kvm_collect(m);
	if (r != 0 || m->untracked || m->raw_untracked) {
		/* Unknown guest or raw writes: no page is known clean. */
		sbx_excl_end(m);
		return 0;
	}
	/* Clean pages equal the snapshot: dropping them changes no byte. */
	pages = for_runs(m, false, run_dontneed);
	sbx_excl_end(m);
	return pages;
}
