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

#include "common/kvm.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

static int vm_alloc(struct sbx_vm **out)
{
	struct sbx_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return -ENOMEM;
	vm->vm_fd = vm->kvm_fd = -1;
	vm->binds = g_ptr_array_new();
	*out = vm;
	return 0;
}

MK_EXPORT int sbx_vm_new(struct sbx_vm **out)
{
	struct sbx_vm *vm;
	int r;

	if (!out)
		return -EINVAL;
	r = vm_alloc(&vm);
	if (r < 0)
		return r;
	r = mk_kvm_open();
	if (r < 0)
		goto fail;
	vm->kvm_fd = r;
	r = mk_kvm_create_vm(vm->kvm_fd);
	if (r < 0)
		goto fail;
	vm->vm_fd = r;
	vm->owned = true;
	*out = vm;
	return 0;
fail:
	if (vm->kvm_fd >= 0)
		mk_close(vm->kvm_fd);
	g_ptr_array_free(vm->binds, TRUE);
	free(vm);
	return r;
}

MK_EXPORT int sbx_vm_from_fd(int vm_fd, struct sbx_vm **out)
{
	struct sbx_vm *vm;
	int r;

	if (vm_fd < 0 || !out)
		return -EINVAL;
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

static struct sbx_binding *find(struct sbx_vm *vm, uint32_t slot, unsigned *idx)
{
	for (unsigned i = 0; i < vm->binds->len; i++) {
		struct sbx_binding *b = g_ptr_array_index(vm->binds, i);
		if (b->slot == slot) {
			if (idx)
				*idx = i;
			return b;
		}
	}
	return NULL;
}

static bool writable(const struct sbx_binding *b)
{
	return b->mem && !(b->kflags & KVM_MEM_READONLY);
}

/* Fetch b's KVM dirty log (clears it in KVM) and OR it into its region's record. */
static int fetch_log(struct sbx_binding *b)
{
	struct sbx_mem *m = b->mem;
	int r = mk_kvm_get_dirty_log(b->vm->vm_fd, b->slot, b->log);

	if (r < 0)
		return r;
	for (size_t i = 0; i < m->dirty_words; i++)
		if (b->log[i])
			__atomic_or_fetch(&m->dirty[i], b->log[i], __ATOMIC_RELAXED);
	return 0;
}

int sbx_kvm_collect(struct sbx_mem *m)
{
	bool untracked = false;

	for (unsigned i = 0; i < m->binds->len; i++) {
		struct sbx_binding *b = g_ptr_array_index(m->binds, i);
		int r;
		if (!writable(b))
			continue;
		if (!b->log) {
			untracked = true;
			continue;
		}
		/* A log we cannot read (VM fd closed under us?): assume the worst. */
		r = fetch_log(b);
		if (r < 0)
			untracked = true;
	}
	return untracked;
}

static int bind_common(struct sbx_vm *vm, struct sbx_mem *m, struct sbx_snapshot *s,
		       uint32_t slot, uint64_t gpa, unsigned flags)
{
	struct sbx_binding *b;
	uint64_t size = m ? m->size : s->size;
	uint64_t end;
	uint32_t kflags = 0;
	const void *hva = m ? (const void *)m->base : (const void *)s->ro;
	int r;

	if (!vm || (flags & ~(SBX_BIND_READONLY | SBX_BIND_DIRTY_LOG)) ||
	    !mk_is_aligned(gpa, mk_page_size()) || mk_add_u64(gpa, size, &end) < 0)
		return -EINVAL;
	if (find(vm, slot, NULL))
		return -EEXIST;
	if (flags & SBX_BIND_READONLY)
		kflags |= KVM_MEM_READONLY;
	if (flags & SBX_BIND_DIRTY_LOG)
		kflags |= KVM_MEM_LOG_DIRTY_PAGES;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (m && (kflags & KVM_MEM_LOG_DIRTY_PAGES)) {
		b->log = calloc(m->dirty_words, sizeof(uint64_t));
		if (!b->log) {
			free(b);
			return -ENOMEM;
		}
	}
	r = mk_kvm_set_memslot(vm->vm_fd, slot, kflags, gpa, size, (void *)hva);
	if (r < 0) {
		free(b->log);
		free(b);
		return r;
	}
	b->vm = vm;
	b->slot = slot;
	b->gpa = gpa;
	b->kflags = kflags;
	if (m) {
		b->mem = sbx_mem_ref_internal(m);
		g_ptr_array_add(m->binds, b);
	} else {
		b->snap = sbx_snapshot_ref(s);
	}
	g_ptr_array_add(vm->binds, b);
	return 0;
}

MK_EXPORT int sbx_vm_bind(struct sbx_vm *vm, struct sbx_mem *m, uint32_t slot, uint64_t gpa,
			  unsigned flags)
{
	if (!m || !m->host_alive)
		return -EINVAL;
	return bind_common(vm, m, NULL, slot, gpa, flags);
}

MK_EXPORT int sbx_vm_bind_snapshot(struct sbx_vm *vm, struct sbx_snapshot *s, uint32_t slot,
				   uint64_t gpa)
{
	if (!s)
		return -EINVAL;
	return bind_common(vm, NULL, s, slot, gpa, SBX_BIND_READONLY);
}

static int unbind(struct sbx_vm *vm, unsigned idx)
{
	struct sbx_binding *b = g_ptr_array_index(vm->binds, idx);
	int r;

	/* Keep the guest's last writes for the next restore before the log goes away. */
	if (b->log)
		(void)fetch_log(b);
	r = mk_kvm_delete_memslot(vm->vm_fd, b->slot);
	if (r < 0 && r != -EBADF && r != -EINVAL)
		return r;
	g_ptr_array_remove_index(vm->binds, idx);
	if (b->mem) {
		/* Writes through an unlogged writable slot were never seen. */
		if (writable(b) && !b->log)
			b->mem->untracked = true;
		g_ptr_array_remove(b->mem->binds, b);
		sbx_mem_unref_internal(b->mem);
	}
	sbx_snapshot_free(b->snap);
	free(b->log);
	free(b);
	return 0;
}

MK_EXPORT int sbx_vm_unbind(struct sbx_vm *vm, uint32_t slot)
{
	unsigned idx;

	if (!vm)
		return -EINVAL;
	if (!find(vm, slot, &idx))
		return -ENOENT;
	return unbind(vm, idx);
}

MK_EXPORT void sbx_vm_free(struct sbx_vm *vm)
{
	if (!vm)
		return;
	while (vm->binds->len) {
		/* Memslot deletion cannot fail for a live VM; drop the binding regardless. */
		if (unbind(vm, vm->binds->len - 1) < 0) {
			struct sbx_binding *b = g_ptr_array_steal_index(vm->binds, vm->binds->len - 1);
			if (b->mem) {
				g_ptr_array_remove(b->mem->binds, b);
				sbx_mem_unref_internal(b->mem);
			}
			sbx_snapshot_free(b->snap);
			free(b->log);
			free(b);
		}
	}
	g_ptr_array_free(vm->binds, TRUE);
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

	if (!vm || !bitmap)
		return -EINVAL;
	b = find(vm, slot, NULL);
	if (!b)
		return -ENOENT;
	if (!b->log)
		return -EINVAL;
	if (nwords < b->mem->dirty_words)
		return -ENOBUFS;
	r = fetch_log(b);
	if (r < 0)
		return r;
	memcpy(bitmap, b->log, b->mem->dirty_words * sizeof(uint64_t));
	memset(bitmap + b->mem->dirty_words, 0, (nwords - b->mem->dirty_words) * sizeof(uint64_t));
	for (size_t i = 0; i < b->mem->dirty_words; i++)
		n += __builtin_popcountll(b->log[i]);
	return n;
}
