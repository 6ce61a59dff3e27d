/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest test region: libsandbox memory. The region is split into
 * a host view (every host access: sbx_mem_read/write, volatile, bounds
 * checked) and a guest view entered around each KVM_RUN; it is bound into
 * the check's VM through libsandbox's KVM binding.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"
#include "tools/memcheck/mem.h"

struct mc_mem {
	struct sbx_mem *m;
	struct sbx_guest *g;
	struct sbx_vm *vm;
	struct sbx_snapshot *snap;
	struct mc_vm *bound;     /* the memcheck VM whose run hooks we set */
	uint32_t slot;
	uint64_t size;
};

/* A region in anonymous memory (vm NULL) or in a guest_memfd of vm. */
static int mem_new(uint64_t size, struct mc_vm *vm, struct mc_mem **out, const char **why)
{
	struct mc_mem *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->size = size;
	if (vm) {
		r = sbx_vm_from_fd(vm->tv.vm_fd, &m->vm);
		if (r < 0) {
			*why = "libsandbox: sbx_vm_from_fd";
			free(m);
			return r;
		}
		r = sbx_vm_mem_new_gmem(m->vm, size, 0, &m->m);
		*why = "libsandbox: sbx_vm_mem_new_gmem";
	} else {
		r = sbx_mem_new(size, &m->m);
		*why = "libsandbox: sbx_mem_new";
	}
	if (r < 0) {
		sbx_vm_free(m->vm);
		free(m);
		return r;
	}
	r = sbx_mem_split(m->m, &m->g);
	if (r < 0) {
		*why = "libsandbox: sbx_mem_split";
		sbx_mem_free(m->m);
		sbx_vm_free(m->vm);
		free(m);
		return r;
	}
	*out = m;
	return 0;
}

int mc_mem_new(uint64_t size, struct mc_mem **out, const char **why)
{
	return mem_new(size, NULL, out, why);
}

int mc_mem_new_gmem(uint64_t size, struct mc_vm *vm, struct mc_mem **out, const char **why)
{
	return mem_new(size, vm, out, why);
}

void mc_mem_free(struct mc_mem *m)
{
	if (!m)
		return;
	if (m->bound) {
		m->bound->enter_fn = NULL;
		m->bound->leave_fn = NULL;
	}
	/* Memslots go first (the VM fd is borrowed and still open), then the memory. */
	sbx_vm_free(m->vm);
	sbx_snapshot_unref(m->snap);
	sbx_guest_free(m->g);
	sbx_mem_free(m->m);
	free(m);
}

uint64_t mc_mem_size(const struct mc_mem *m) { return m->size; }

void *mc_mem_host_ptr(struct mc_mem *m)
{
	/* With the promise: callers report their writes (mc_mem_mark_dirty), restore stays O(dirty). */
	return sbx_mem_host_ptr(m->m, true);
}

int mc_mem_mark_dirty(struct mc_mem *m, uint64_t off, uint64_t len)
{
	return sbx_mem_mark_dirty(m->m, off, len);
}

int mc_mem_read(struct mc_mem *m, uint64_t off, void *buf, size_t len)
{
	return sbx_mem_read(m->m, off, buf, len);
}

int mc_mem_write(struct mc_mem *m, uint64_t off, const void *buf, size_t len)
{
	return sbx_mem_write(m->m, off, buf, len);
}

static int enter(void *data)
{
	return sbx_guest_enter(data);
}

static void leave(void *data)
{
	sbx_guest_exit(data);
}

int mc_mem_bind(struct mc_mem *m, struct mc_vm *vm, uint32_t slot, uint64_t gpa,
		unsigned flags, const char **why)
{
	unsigned sf = ((flags & MC_MEM_RO) ? SBX_BIND_READONLY : 0) |
		      ((flags & MC_MEM_DIRTY) ? SBX_BIND_DIRTY_LOG : 0);
	int r;

	bool own = !m->vm;      /* a guest_memfd region has its VM handle already */

	if (m->bound)
		return -EBUSY;
	if (own) {
		r = sbx_vm_from_fd(vm->tv.vm_fd, &m->vm);
		if (r < 0) {
			*why = "libsandbox: sbx_vm_from_fd";
			return r;
		}
	}
	r = sbx_vm_bind(m->vm, m->m, slot, gpa, sf);
	if (r < 0) {
		*why = "libsandbox: sbx_vm_bind";
		if (own) {
			sbx_vm_free(m->vm);
			m->vm = NULL;
		}
		return r;
	}
	m->slot = slot;
	m->bound = vm;
	vm->enter_fn = enter;
	vm->leave_fn = leave;
	vm->run_data = m->g;
	return 0;
}

int mc_mem_dirty_log(struct mc_mem *m, uint64_t *bitmap, const char **why)
{
	int64_t r = sbx_vm_dirty_log(m->vm, m->slot, bitmap, (m->size / 4096 + 63) / 64);

	if (r < 0)
		*why = "libsandbox: sbx_vm_dirty_log";
	return r < 0 ? (int)r : 0;
}

int mc_mem_snapshot(struct mc_mem *m, const char **why)
{
	int r;

	sbx_snapshot_unref(m->snap);
	m->snap = NULL;
	r = sbx_snapshot_take(m->m, &m->snap);
	if (r < 0)
		*why = "libsandbox: sbx_snapshot_take";
	return r;
}

int64_t mc_mem_restore(struct mc_mem *m, const char **why)
{
	int64_t r = sbx_snapshot_restore(m->m, m->snap, SBX_RESTORE_AUTO);

	if (r < 0)
		*why = "libsandbox: sbx_snapshot_restore";
	return r;
}

int mc_mem_restore_counts(struct mc_mem *m, uint64_t *copy, uint64_t *remap, uint64_t *trim)
{
	struct sbx_mem_stats st = { .size = sizeof(st) };
	int r = sbx_mem_stats(m->m, &st);

	if (r < 0)
		return r;
	*copy = st.restores_copy;
	*remap = st.restores_remap;
	*trim = st.restores_trim;
	return 0;
}
