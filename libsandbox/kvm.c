/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM binding: regions and snapshots as memslots. Memslots are set once at
 * bind time and never touched by restore: KVM follows the host virtual
 * address, and restore keeps that address mapped at every instant (copy
 * into the mapped pages, or one MAP_FIXED replacement, which KVM sees
 * through its MMU notifier).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/kvm.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

static int vm_alloc(struct sbx_vm **out)
{
	struct sbx_vm *vm = mk_calloc(1, sizeof(*vm));

	if (!vm)
		return -ENOMEM;
	vm->vm_fd = vm->kvm_fd = -1;
	*out = vm;
	return 0;
}

MK_EXPORT int sbx_vm_new(struct sbx_vm **out)
{
	struct sbx_vm *vm;
	int r;

	if (!out) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_new: out is NULL");
		return -EINVAL;
	}
	r = vm_alloc(&vm);
	if (r < 0)
		return r;
	r = mk_kvm_open();
	if (r < 0) {
		sbx_refuse(LOG_ERR, "sbx_vm_new: cannot use /dev/kvm (%d)", r);
		goto fail;
	}
	vm->kvm_fd = r;
	r = mk_kvm_create_vm(vm->kvm_fd);
	if (r < 0) {
		sbx_refuse(LOG_ERR, "sbx_vm_new: KVM_CREATE_VM failed (%d)", r);
		goto fail;
	}
	vm->vm_fd = r;
	vm->owned = true;
	*out = vm;
	return 0;
fail:
	if (vm->kvm_fd >= 0)
		mk_close(vm->kvm_fd);
	free(vm);
	return r;
}

MK_EXPORT int sbx_vm_from_fd(int vm_fd, struct sbx_vm **out)
{
	struct sbx_vm *vm;
	int r;

	if (vm_fd < 0 || !out) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_from_fd: vm_fd %d, out %p", vm_fd, (void *)out);
		return -EINVAL;
	}
	r = vm_alloc(&vm);
	if (r < 0)
		return r;
	vm->vm_fd = vm_fd;
	*out = vm;
	return 0;
}

MK_EXPORT int sbx_vm_fd(const struct sbx_vm *vm)
{
	return vm ? vm->vm_fd : -EINVAL;
}

MK_EXPORT int sbx_vm_kvm_fd(const struct sbx_vm *vm)
{
	if (!vm)
		return -EINVAL;
	return vm->kvm_fd >= 0 ? vm->kvm_fd : -EBADF;
}

/* The binding of slot in vm, and the link that points at it (for unlinking). */
static struct sbx_binding *find(struct sbx_vm *vm, uint32_t slot, struct sbx_binding ***link)
{
	for (struct sbx_binding **l = &vm->binds; *l; l = &(*l)->vm_next) {
		if ((*l)->slot == slot) {
			if (link)
				*link = l;
			return *l;
		}
	}
	return NULL;
}

/*
 * A guest_memfd region's memslot (KVM_SET_USER_MEMORY_REGION2): KVM takes
 * the guest's pages from the guest_memfd. Its host address is the mapping
 * when kept, else a reservation nothing maps (gmem.c says why, and that
 * KVM's own accesses through it fail). KVM refuses read-only and
 * dirty-logged guest_memfd memslots (Linux 7.2): -EOPNOTSUPP then.
 */
static int bind_gmem(struct sbx_vm *vm, struct sbx_mem *m, uint32_t slot, uint32_t kflags,
		     uint64_t gpa, const char *fn)
{
	void *hva = m->gmem->kept ? (void *)m->base : m->gmem->slot_hva;
	int r = mk_kvm_set_memslot_gmem(vm->vm_fd, slot, kflags | KVM_MEM_GUEST_MEMFD, gpa,
					m->size, hva, m->gmem->fd, 0);

	if (r == -EINVAL && (kflags & (KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES))) {
		sbx_refuse(LOG_DEBUG, "%s: this kernel's KVM takes no %s on a guest_memfd memslot",
			   fn, kflags & KVM_MEM_READONLY ? "read-only binding" : "dirty logging");
		return -EOPNOTSUPP;
	}
	if (r == -EINVAL)
		sbx_refuse(LOG_DEBUG, "%s: KVM_SET_USER_MEMORY_REGION2 refused the guest_memfd "
			   "region (a guest_memfd binds only into the VM that made it)", fn);
	return r;
}

static int bind_common(struct sbx_vm *vm, struct sbx_mem *m, struct sbx_snapshot *s,
		       uint32_t slot, uint64_t gpa, unsigned flags, const char *fn)
{
	struct sbx_binding *b;
	uint64_t size = m ? m->size : s->size;
	uint64_t end;
	uint32_t kflags = 0;
	const void *hva = m ? (const void *)m->base : (const void *)s->ro;
	int r;

	if (!vm || (flags & ~(SBX_BIND_READONLY | SBX_BIND_DIRTY_LOG))) {
		sbx_refuse(LOG_DEBUG, "%s: vm %p, flags 0x%x (known: 0x%x)", fn, (void *)vm, flags,
			   SBX_BIND_READONLY | SBX_BIND_DIRTY_LOG);
		return -EINVAL;
	}
	if (!mk_is_aligned(gpa, mk_page_size()) || mk_add_u64(gpa, size, &end) < 0) {
		sbx_refuse(LOG_DEBUG, "%s: guest address 0x%" PRIx64 " is not page aligned, or "
			   "%" PRIu64 " bytes from it overflow", fn, gpa, size);
		return -EINVAL;
	}
	if (find(vm, slot, NULL)) {
		sbx_refuse(LOG_DEBUG, "%s: memslot %" PRIu32 " is already bound", fn, slot);
		return -EEXIST;
	}
	if (flags & SBX_BIND_READONLY)
		kflags |= KVM_MEM_READONLY;
	if (flags & SBX_BIND_DIRTY_LOG)
		kflags |= KVM_MEM_LOG_DIRTY_PAGES;
	b = mk_calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (m && (kflags & KVM_MEM_LOG_DIRTY_PAGES)) {
		b->log = mk_calloc(m->dirty_words, sizeof(uint64_t));
		if (!b->log) {
			free(b);
			return -ENOMEM;
		}
	}
	if (m && m->gmem)
		r = bind_gmem(vm, m, slot, kflags, gpa, fn);
	else
		r = mk_kvm_set_memslot(vm->vm_fd, slot, kflags, gpa, size, (void *)hva);
	if (r < 0) {
		sbx_refuse(LOG_DEBUG, "%s: KVM_SET_USER_MEMORY_REGION of memslot %" PRIu32
			   " at 0x%" PRIx64 " (%" PRIu64 " bytes) refused (%d)", fn, slot, gpa, size, r);
		free(b->log);
		free(b);
		return r;
	}
	b->vm = vm;
	b->slot = slot;
	b->gpa = gpa;
	b->kflags = kflags;
	/* The memslot exists: from here on nothing can fail. */
	if (m) {
		b->mem = sbx_mem_ref_internal(m);
		b->mem_next = m->binds;
		m->binds = b;
	} else {
		b->snap = sbx_snapshot_ref(s);
	}
	b->vm_next = vm->binds;
	vm->binds = b;
	return 0;
}

MK_EXPORT int sbx_vm_bind(struct sbx_vm *vm, struct sbx_mem *m, uint32_t slot, uint64_t gpa,
			  unsigned flags)
{
	int r = sbx_mem_check(m, "sbx_vm_bind");

	if (r < 0)
		return r;
	return bind_common(vm, m, NULL, slot, gpa, flags, "sbx_vm_bind");
}

MK_EXPORT int sbx_vm_bind_snapshot(struct sbx_vm *vm, struct sbx_snapshot *s, uint32_t slot,
				   uint64_t gpa)
{
	if (!s) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_bind_snapshot: the snapshot is NULL");
		return -EINVAL;
	}
	return bind_common(vm, NULL, s, slot, gpa, SBX_BIND_READONLY, "sbx_vm_bind_snapshot");
}

/* Take b off its VM's list (at *link) and its region's, and free it. */
static void binding_drop(struct sbx_binding *b, struct sbx_binding **link)
{
	*link = b->vm_next;
	if (b->mem) {
		struct sbx_binding **l = &b->mem->binds;
		while (*l != b)
			l = &(*l)->mem_next;
		*l = b->mem_next;
		/* Writes through an unlogged writable slot were never seen. */
		if (sbx_binding_writable(b) && !b->log)
			b->mem->untracked = true;
		sbx_mem_unref_internal(b->mem);
	}
	sbx_snapshot_unref(b->snap);
	free(b->log);
	free(b);
}

static int unbind(struct sbx_vm *vm, struct sbx_binding *b, struct sbx_binding **link)
{
	int r;

	/* Keep the guest's last writes for the next restore before the log goes away. */
	if (b->log)
		(void)sbx_dirty_fetch_log(b);
	r = mk_kvm_delete_memslot(vm->vm_fd, b->slot);
	if (r < 0 && r != -EBADF && r != -EINVAL) {
		sbx_refuse(LOG_ERR, "deleting memslot %" PRIu32 " failed (%d)", b->slot, r);
		return r;
	}
	binding_drop(b, link);
	return 0;
}

MK_EXPORT int sbx_vm_unbind(struct sbx_vm *vm, uint32_t slot)
{
	struct sbx_binding *b, **link;

	if (!vm) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_unbind: vm is NULL");
		return -EINVAL;
	}
	b = find(vm, slot, &link);
	if (!b) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_unbind: memslot %" PRIu32 " is not bound", slot);
		return -ENOENT;
	}
	return unbind(vm, b, link);
}

MK_EXPORT void sbx_vm_free(struct sbx_vm *vm)
{
	if (!vm)
		return;
	while (vm->binds) {
		/* Memslot deletion cannot fail for a live VM; drop the binding regardless. */
		if (unbind(vm, vm->binds, &vm->binds) < 0)
			binding_drop(vm->binds, &vm->binds);
	}
	if (vm->owned) {
		mk_close(vm->vm_fd);
		mk_close(vm->kvm_fd);
	}
	free(vm);
}

MK_EXPORT int64_t sbx_vm_dirty_log(struct sbx_vm *vm, uint32_t slot, uint64_t *bitmap,
				   size_t nwords)
{
	struct sbx_binding *b;
	int64_t n = 0;
	int r;

	if (!vm || !bitmap) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_dirty_log: vm %p, bitmap %p", (void *)vm, (void *)bitmap);
		return -EINVAL;
	}
	b = find(vm, slot, NULL);
	if (!b) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_dirty_log: memslot %" PRIu32 " is not bound", slot);
		return -ENOENT;
	}
	if (!b->log) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_dirty_log: memslot %" PRIu32 " was bound without "
			   "SBX_BIND_DIRTY_LOG", slot);
		return -EINVAL;
	}
	if (nwords < b->mem->dirty_words) {
		sbx_refuse(LOG_DEBUG, "sbx_vm_dirty_log: %zu words cannot hold memslot %" PRIu32
			   "'s %zu", nwords, slot, b->mem->dirty_words);
		return -ENOBUFS;
	}
	r = sbx_dirty_fetch_log(b);
	if (r < 0)
		return r;
	memcpy(bitmap, b->log, b->mem->dirty_words * sizeof(uint64_t));
	memset(bitmap + b->mem->dirty_words, 0, (nwords - b->mem->dirty_words) * sizeof(uint64_t));
	for (size_t i = 0; i < b->mem->dirty_words; i++)
		n += __builtin_popcountll(b->log[i]);
	return n;
}
