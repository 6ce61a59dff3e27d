/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Creating regions backed by guest_memfd (sbx_vm_mem_new_gmem(3)): the
 * kernel probe and the region. A guest_memfd belongs to the VM that made
 * it, so its region is made through that VM. The kernel must let a
 * default VM have guest_memfd that the host can map and that starts
 * shared with it (KVM_CAP_GUEST_MEMFD_FLAGS with GUEST_MEMFD_FLAG_MMAP and
 * GUEST_MEMFD_FLAG_INIT_SHARED: Linux 6.18); elsewhere -EOPNOTSUPP.
 */
#include "config.h"

#include <errno.h>
#include <sys/mman.h>

#include "common/kvm.h"
#include "common/macro.h"
#include "common/sys.h"
#include "common/uapi.h"
#include "sandboxP.h"

#define GMEM_FLAGS (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)

/* 0 when vm's kernel offers what a guest_memfd region needs; -EOPNOTSUPP (logged as fn's). */
static int probe(const struct sbx_vm *vm, const char *fn)
{
	int gmem = mk_kvm_check_extension(vm->vm_fd, KVM_CAP_GUEST_MEMFD);
	int mem2 = mk_kvm_check_extension(vm->vm_fd, KVM_CAP_USER_MEMORY2);
	int flags = mk_kvm_check_extension(vm->vm_fd, KVM_CAP_GUEST_MEMFD_FLAGS);

	if (gmem > 0 && mem2 > 0 && flags > 0 && ((uint64_t)flags & GMEM_FLAGS) == GMEM_FLAGS)
		return 0;
	sbx_refuse(LOG_DEBUG, "%s: this VM cannot have host-mappable guest_memfd "
		   "(KVM_CAP_GUEST_MEMFD %d, KVM_CAP_USER_MEMORY2 %d, KVM_CAP_GUEST_MEMFD_FLAGS "
		   "%d: Linux 6.18 or later needed)", fn, gmem, mem2, flags);
	return -EOPNOTSUPP;
}

MK_EXPORT int sbx_vm_gmem_supported(struct sbx_vm *vm)
{
	if (!vm) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_gmem_supported: vm is NULL");
		return -EINVAL;
	}
	return probe(vm, "sbx_vm_gmem_supported");
}

MK_EXPORT int sbx_vm_mem_new_gmem(struct sbx_vm *vm, uint64_t size, unsigned flags,
				  struct sbx_mem **out)
{
	static const char fn[] = "sbx_vm_mem_new_gmem";
	struct sbx_mem *m;
	struct sbx_gmem *g;
	int fd, r;

	if (!vm || !out || (flags & ~SBX_GMEM_KEEP_MAPPED)) {
		sbx_refuse(LOG_DEBUG, "%s: vm %p, out %p, flags 0x%x (known: 0x%x)", fn, (void *)vm,
			   (void *)out, flags, SBX_GMEM_KEEP_MAPPED);
		return -EINVAL;
	}
	r = probe(vm, fn);
	if (r < 0)
		return r;
	r = sbx_mem_new_reserved(size, fn, &m);
	if (r < 0)
		return r;
	fd = mk_kvm_create_guest_memfd(vm->vm_fd, size, GMEM_FLAGS);
	if (fd < 0) {
		sbx_refuse(LOG_DEBUG, "%s: KVM_CREATE_GUEST_MEMFD of %" PRIu64 " bytes failed (%d)",
			   fn, size, fd);
		sbx_mem_unref_internal(m);
		return fd;
	}
	r = sbx_gmem_new(fd, flags & SBX_GMEM_KEEP_MAPPED, &g);
	if (r < 0) {
		mk_close(fd);
		sbx_mem_unref_internal(m);
		return r;
	}
	m->gmem = g;
	if (!g->kept) {
		/* The memslot's host address, away from the window (gmem.c says why). */
		void *p;
		r = mk_mmap(NULL, (size_t)size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			    MAP_NORESERVE, -1, 0, &p);
		if (r < 0) {
			sbx_mem_unref_internal(m);
			return r;
		}
		g->slot_hva = p;
		g->slot_len = (size_t)size;
	}
	if (g->kept && (r = sbx_gmem_map(m)) < 0) {
		sbx_refuse(LOG_DEBUG, "%s: mapping the guest_memfd failed (%d)", fn, r);
		sbx_mem_unref_internal(m);
		return r;
	}
	*out = m;
	return 0;
}
