/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Regions backed by guest_memfd (sbx_vm_mem_new_gmem(3)): the memory
 * belongs to KVM, not to a mapping of this process. The region's address
 * range is a PROT_NONE reservation (with its guard pages); the guest_memfd
 * is mapped shared over it only while a host copy or an exclusive
 * operation runs (the "window": the first user maps, the last unmaps),
 * or for the region's whole life with SBX_GMEM_KEEP_MAPPED. Outside a call
 * nothing in the process maps the guest's bytes: a stray pointer faults
 * and /proc/PID/mem reads fail (-EIO) at the region's address.
 *
 * guest_memfd has no read/write and no copy-on-write mapping (Linux 7.2:
 * read and pwrite fail, MAP_PRIVATE is -EINVAL) and cannot change size,
 * so a snapshot is a copy out of it and a restore a copy back into it;
 * fallocate(PUNCH_HOLE) gives pages back (they read as zero again), which
 * a full restore uses for the snapshot's all-zero parts. KVM refuses dirty
 * logging and read-only memslots on guest_memfd (kvm_main.c,
 * check_memory_region_flags), so after a guest could write, every restore
 * rewrites the whole region.
 *
 * KVM takes a guest_memfd memslot's pages from the guest_memfd, but its
 * MMU notifier still watches the memslot's host address range: if that
 * were the window, every map and unmap would zap the guest's mappings of
 * the whole region (the guest then refaults every page it touches). A
 * region not kept mapped gives KVM a reservation of its own instead,
 * which nothing ever maps (gmem-vm.c makes it).
 *
 * Calls only common/, snapfmt.c and dirty.c (sandboxP.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "common/macro.h"
#include "common/sys.h"
#include "common/uapi.h"
#include "sandboxP.h"

/* The chunk a full restore checks for zeros (and punches, not copies). */
#define GMEM_ZERO_CHUNK (64u << 10)

int sbx_gmem_new(int fd, bool kept, struct sbx_gmem **out)
{
	struct sbx_gmem *g = mk_calloc(1, sizeof(*g));
	int r;

	if (!g)
		return -ENOMEM;
	r = pthread_mutex_init(&g->lock, NULL);
	if (r != 0) {
		free(g);
		return -r;
	}
	g->fd = fd;
	g->kept = kept;
	*out = g;
	return 0;
}

void sbx_gmem_free(struct sbx_gmem *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	if (g->slot_hva)
		mk_munmap(g->slot_hva, g->slot_len);
	if (g->fd >= 0)
		mk_close(g->fd);
	free(g);
}

/* The guest_memfd over the region's reservation (same address, no gap). */
int sbx_gmem_map(struct sbx_mem *m)
{
	void *p;

	return mk_mmap(m->base, m->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		       m->gmem->fd, 0, &p);
}

/* Back to the bare reservation: nothing maps the guest's bytes any more. */
static void unmap_window(struct sbx_mem *m)
{
	void *p;

	if (mk_mmap(m->base, m->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
		    MAP_NORESERVE, -1, 0, &p) == 0)
		return;
	/* Out of memory for a new mapping: at least make it inaccessible. */
	if (mk_mprotect(m->base, m->size, PROT_NONE) < 0)
		sbx_refuse(LOG_ERR, "guest_memfd region: unmapping the host window failed: "
			   "it stays mapped");
}

int sbx_gmem_hold(struct sbx_mem *m)
{
	struct sbx_gmem *g = m->gmem;
	int r = 0;

	if (g->kept)
		return 0;
	pthread_mutex_lock(&g->lock);
	if (g->users == 0) {
		r = sbx_gmem_map(m);
		if (r < 0)
			sbx_refuse(LOG_DEBUG, "guest_memfd region: mapping the host window failed "
				   "(%d)", r);
	}
	if (r == 0)
		g->users++;
	pthread_mutex_unlock(&g->lock);
	return r;
}

void sbx_gmem_release(struct sbx_mem *m)
{
	struct sbx_gmem *g = m->gmem;

	if (g->kept)
		return;
	pthread_mutex_lock(&g->lock);
	if (--g->users == 0)
		unmap_window(m);
	pthread_mutex_unlock(&g->lock);
}

int sbx_gmem_punch(struct sbx_mem *m, uint64_t off, uint64_t len)
{
	return mk_fallocate(m->gmem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}

/*
 * Make the whole region equal to s (window held, exclusive): every page
 * given back, then the snapshot's non-zero chunks copied in. Pages never
 * copied read as zero, as in s. A failed punch (none seen) leaves the old
 * bytes, so then every chunk is copied.
 */
int sbx_gmem_rewrite(struct sbx_mem *m, struct sbx_snapshot *s)
{
	bool punched;

	if (s->lazy) {
		sbx_refuse(LOG_DEBUG, "guest_memfd region: restoring a lazily loaded snapshot "
			   "into it is not supported");
		return -EOPNOTSUPP;
	}
	punched = sbx_gmem_punch(m, 0, m->size) == 0;
	for (uint64_t off = 0; off < m->size; off += GMEM_ZERO_CHUNK) {
		size_t n = (size_t)MK_MIN(GMEM_ZERO_CHUNK, m->size - off);
		if (!punched || !sbx_all_zero(s->ro + off, n))
			memcpy(m->base + off, s->ro + off, n);
	}
	sbx_dirty_rebase(m, s);
	return 0;
}

MK_EXPORT bool sbx_mem_is_gmem(const struct sbx_mem *m)
{
	return m && m->gmem;
}
