/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest test region. TEMPORARY: plain anonymous memory until
 * libsandbox's API lands; the library-only operations report -ENOSYS.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "tools/memcheck/mem.h"

struct mc_mem {
	void *p;
	uint64_t size;
};

int mc_mem_new(uint64_t size, struct mc_mem **out, const char **why)
{
	struct mc_mem *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	r = mk_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0, &m->p);
	if (r < 0) {
		*why = "mmap";
		free(m);
		return r;
	}
	m->size = size;
	*out = m;
	return 0;
}

void mc_mem_free(struct mc_mem *m)
{
	if (!m)
		return;
	mk_munmap(m->p, m->size);
	free(m);
}

uint64_t mc_mem_size(const struct mc_mem *m) { return m->size; }
void *mc_mem_host_ptr(struct mc_mem *m) { return m->p; }

int mc_mem_read(struct mc_mem *m, uint64_t off, void *buf, size_t len)
{
	if (off > m->size || len > m->size - off)
		return -EINVAL;
	memcpy(buf, (char *)m->p + off, len);
	return 0;
}

int mc_mem_write(struct mc_mem *m, uint64_t off, const void *buf, size_t len)
{
	if (off > m->size || len > m->size - off)
		return -EINVAL;
	memcpy((char *)m->p + off, buf, len);
	return 0;
}

int mc_mem_bind(struct mc_mem *m, struct mc_vm *vm, uint32_t slot, uint64_t gpa,
		unsigned flags, const char **why)
{
	uint32_t kf = ((flags & MC_MEM_RO) ? KVM_MEM_READONLY : 0) |
		      ((flags & MC_MEM_DIRTY) ? KVM_MEM_LOG_DIRTY_PAGES : 0);
	int r = mk_kvm_set_memslot(vm->vm_fd, slot, kf, gpa, m->size, m->p);

	if (r < 0)
		*why = "KVM_SET_USER_MEMORY_REGION";
	return r;
}

int mc_mem_dirty_log(struct mc_mem *m, uint64_t *bitmap, const char **why)
{
	*why = "libsandbox: sbx_vm_dirty_log";
	return -ENOSYS;
}

int mc_mem_snapshot(struct mc_mem *m, const char **why)
{
	*why = "libsandbox: sbx_snapshot_take";
	return -ENOSYS;
}

int64_t mc_mem_restore(struct mc_mem *m, const char **why)
{
	*why = "libsandbox: sbx_snapshot_restore";
	return -ENOSYS;
}
