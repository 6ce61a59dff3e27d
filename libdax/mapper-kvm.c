/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM mappers. The window mapper registers the whole DAX window as one
 * memslot over anonymous memory and maps files into it with
 * mmap(MAP_FIXED): KVM follows the host page tables through its MMU
 * notifier, so no memslot changes per mapping.
 *
 * Ranges without a mapping are anonymous, readable and writable: stock
 * KVM (6.1, 6.12) answers a guest access to a PROT_NONE page of a memslot
 * with KVM_RUN failing EFAULT and no address, a dead vCPU. Where the
 * process may handle kernel-mode faults with userfaultfd, those ranges
 * are registered (UFFDIO_REGISTER_MODE_MISSING): KVM's gup of a missing
 * page blocks on the userfaultfd until the session's fault service maps
 * the slot (or a zero page) and wakes it (service.c). A MAP_FIXED over
 * a range ends its registration; giving the range back registers it again.
 *
 * Read-only slots are MAP_PRIVATE and writable: a guest write to one
 * (which its FUSE driver never does before asking for a write mapping)
 * lands in a private copy, never in the file, and the vCPU goes on; a
 * read-only host mapping would make that write a dead vCPU too.
 *
 * The memslot mapper gives every mapping its own memslot (the seed's
 * shape), KVM_MEM_READONLY when it is read-only.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/kvm.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "common/uffd.h"
#include "daxP.h"

static int to_mmap_prot(uint32_t prot)
{
	/* PROT_WRITE implies read on every KVM host; say so explicitly. */
	return PROT_READ | ((prot & DAX_PROT_WRITE) ? PROT_WRITE : 0);
}

/* ---- window ---------------------------------------------------------------- */

int dax_window_giveback(struct dax_window *w, uint64_t off, uint64_t len, bool drop)
{
	char *addr = w->res + off;
	void *p;
	int r;

	r = mk_mmap(addr, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0, &p);
	if (r < 0 || w->uffd < 0)
		return r;
	r = mk_uffd_register(w->uffd, addr, len);
	if (r < 0) {
		mk_log(&dax_log, LOG_ERR, "window [0x%llx, +0x%llx): registering it again failed: %d",
		       (unsigned long long)off, (unsigned long long)len, r);
		return r;
	}
	/*
	 * A touch between the mmap and the registration got an ordinary
	 * anonymous page instead of a fault event. In a range without a
	 * slot that is the documented scratch memory; where an unbound slot
	 * may be (restore, a failed replace) it would hide the slot's file.
	 */
	return drop ? mk_madvise(addr, len, MADV_DONTNEED) : 0;
}

static int window_map(void *data, uint64_t gpa, uint64_t len, int fd, uint64_t foffset,
		      uint32_t prot, int replace, void **hva)
{
	struct dax_window *w = data;
	char *addr = w->res + (gpa - w->base);
	int flags = (prot & DAX_PROT_WRITE) ? MAP_SHARED : MAP_PRIVATE | MAP_NORESERVE;
	void *p;
	int r;

	(void)replace;
	/* MAP_FIXED replaces an old mapping atomically (the upgrade case). */
	r = mk_mmap(addr, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, (off_t)foffset, &p);
	if (r < 0) {
		/* A failed MAP_FIXED may leave a hole: put anonymous memory back. */
		dax_window_giveback(w, gpa - w->base, len, true);
		return r;
	}
	*hva = p;
	return 0;
}

static int window_unmap(void *data, uint64_t gpa, uint64_t len, void *hva)
{
	struct dax_window *w = data;

	(void)hva;
	return dax_window_giveback(w, gpa - w->base, len, false);
}

static void window_destroy(void *data)
{
	struct dax_window *w = data;

	if (w->vm_fd >= 0)
		mk_kvm_delete_memslot(w->vm_fd, w->slot);
	mk_munmap(w->res, w->wlen);
	if (w->uffd >= 0)
		mk_close(w->uffd);
	free(w);
}

int dax_kvm_window_new(int vm_fd, uint32_t slot, uint64_t base, uint64_t wlen, bool userfault,
		       struct dax_mapper_ops *ops, struct dax_window **win)
{
	struct dax_window *w;
	int uffd = -1;
	void *p;
	int r;

	if (wlen > SIZE_MAX) {
		dax_refuse("window: 0x%llx bytes do not fit the address space", (unsigned long long)wlen);
		return -EINVAL;
	}
	w = mk_calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	r = mk_mmap(NULL, wlen, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &p);
	if (r < 0) {
		free(w);
		return r;
	}
	if (userfault) {
		/* Not allowed (or not built into the kernel): eager mode. */
		uffd = mk_uffd_open();
		if (uffd >= 0 && mk_uffd_register(uffd, p, wlen) < 0) {
			mk_close(uffd);
			uffd = -1;
		}
	}
	/* vm_fd -1: a host-only window (dax_session_new_host_only) */
	r = vm_fd >= 0 ? mk_kvm_set_memslot(vm_fd, slot, 0, base, wlen, p) : 0;
	if (r < 0) {
		mk_log(&dax_log, LOG_DEBUG, "window: KVM refused memslot %u at 0x%llx: %d", slot,
		       (unsigned long long)base, r);
		if (uffd >= 0)
			mk_close(uffd);
		mk_munmap(p, wlen);
		free(w);
		return r;
	}
	w->vm_fd = vm_fd;
	w->slot = slot;
	w->base = base;
	w->wlen = wlen;
	w->res = p;
	w->uffd = uffd;
	*ops = (struct dax_mapper_ops){ window_map, window_unmap, window_destroy, w };
	*win = w;
	return 0;
}

void *dax_kvm_window_hva(const struct dax_mapper_ops *ops)
{
	return ops->map == window_map ? ((struct dax_window *)ops->data)->res : NULL;
}

/* ---- memslot per mapping --------------------------------------------------- */

struct kvm_memslots {
	int vm_fd;
	uint32_t first;
	uint32_t n;
	uint32_t hint;
	struct mk_hash by_gpa;  /* gpa -> (void *)(slot index + 1) */
	uint8_t *used;
};

static int memslot_free_one(struct kvm_memslots *m, uint64_t gpa, uint64_t len, void *hva)
{
	uintptr_t v = (uintptr_t)mk_hash_get(&m->by_gpa, gpa);
	uint32_t idx;
	int r;

	if (!v)
		return -ENOENT;
	idx = (uint32_t)(v - 1);
	r = mk_kvm_delete_memslot(m->vm_fd, m->first + idx);
	if (r < 0)
		return r;
	mk_hash_del(&m->by_gpa, gpa);
	m->used[idx] = 0;
	mk_munmap(hva, len);
	return 0;
}

static int memslot_map(void *data, uint64_t gpa, uint64_t len, int fd, uint64_t foffset,
		       uint32_t prot, int replace, void **hva)
{
	struct kvm_memslots *m = data;
	uint32_t flags = (prot & DAX_PROT_WRITE) ? 0 : KVM_MEM_READONLY;
	uint32_t idx;
	void *p;
	int r;

	/* Room for the new key first: the only step that allocates. */
	if (mk_hash_reserve(&m->by_gpa, 1) < 0)
		return -ENOMEM;
	/* Memslot flags cannot change in place: replace = delete + create. */
	if (replace) {
		r = memslot_free_one(m, gpa, len, *hva);
		if (r < 0)
			return r;
	}
	for (idx = 0; idx < m->n; idx++)
		if (!m->used[(m->hint + idx) % m->n])
			break;
	if (idx == m->n) {
		dax_refuse("memslot mapper: all %u memslots in use", m->n);
		return -ENOSPC;
	}
	idx = (m->hint + idx) % m->n;
	r = mk_mmap(NULL, len, to_mmap_prot(prot), MAP_SHARED, fd, (off_t)foffset, &p);
	if (r < 0)
		return r;
	r = mk_kvm_set_memslot(m->vm_fd, m->first + idx, flags, gpa, len, p);
	if (r < 0) {
		mk_log(&dax_log, LOG_WARNING, "memslot mapper: KVM refused memslot %u at 0x%llx: %d",
		       m->first + idx, (unsigned long long)gpa, r);
		mk_munmap(p, len);
		return r;
	}
	m->used[idx] = 1;
	m->hint = (idx + 1) % m->n;
	(void)mk_hash_put(&m->by_gpa, gpa, (void *)(uintptr_t)(idx + 1), NULL);  /* reserved */
	*hva = p;
	return 0;
}

static int memslot_unmap(void *data, uint64_t gpa, uint64_t len, void *hva)
{
	return memslot_free_one(data, gpa, len, hva);
}

static void memslot_destroy(void *data)
{
	struct kvm_memslots *m = data;

	/* The session unmapped every mapping before; drop any stragglers' slots. */
	for (uint32_t i = 0; i < m->n; i++)
		if (m->used[i])
			mk_kvm_delete_memslot(m->vm_fd, m->first + i);
	mk_hash_free(&m->by_gpa);
	free(m->used);
	free(m);
}

int dax_kvm_memslot_new(int vm_fd, uint32_t first, uint32_t nslots,
			struct dax_mapper_ops *ops)
{
	struct kvm_memslots *m;

	if (vm_fd < 0 || nslots == 0 || first + (uint64_t)nslots > UINT16_MAX) {
		dax_refuse("memslot mapper: vm_fd %d, memslots [%u, +%u) (at most 65535)", vm_fd,
			   first, nslots);
		return -EINVAL;
	}
	m = mk_calloc(1, sizeof(*m));
	if (m)
		m->used = mk_calloc(nslots, 1);
	if (!m || !m->used) {
		free(m);
		return -ENOMEM;
	}
	m->vm_fd = vm_fd;
	m->first = first;
	m->n = nslots;
	*ops = (struct dax_mapper_ops){ memslot_map, memslot_unmap, memslot_destroy, m };
	return 0;
}

/* ---- map count guard ------------------------------------------------------- */

/*
 * Scan a small /proc file in pieces (no allocation): the value of its
 * first decimal number when num is not NULL, and the number of lines.
 */
static int scan_proc(const char *path, uint64_t *num, uint64_t *lines)
{
	char buf[4096];
	bool in_num = true;
	uint64_t v = 0, n = 0;
	ssize_t got;
	int fd = mk_openat(AT_FDCWD, path, O_RDONLY, 0);

	if (fd < 0)
		return fd;
	while ((got = mk_read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < got; i++) {
			if (in_num && buf[i] >= '0' && buf[i] <= '9' && v < UINT64_MAX / 10)
				v = v * 10 + (uint64_t)(buf[i] - '0');
			else
				in_num = false;
			n += buf[i] == '\n';
		}
	mk_close(fd);
	if (got < 0)
		return (int)got;
	if (num)
		*num = v;
	if (lines)
		*lines = n;
	return 0;
}

/*
 * Every window mapping splits the reservation, so it costs up to two
 * VMAs; mmap fails with ENOMEM at vm.max_map_count. Leave headroom for
 * the rest of the process (libraries, threads, other sessions).
 */
uint64_t dax_default_max_mappings(unsigned vmas_per_mapping)
{
	uint64_t max = 0, used = 0;

	if (scan_proc("/proc/sys/vm/max_map_count", &max, NULL) < 0 || !max)
		max = 65530;
	(void)scan_proc("/proc/self/maps", NULL, &used);
	used += 1024;

	return max > used ? (max - used) / vmas_per_mapping : 0;
}
