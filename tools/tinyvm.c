/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "tools/tinyvm.h"

int tinyvm_open(struct tinyvm *t, int kvm_fd, size_t mem_size, const char **why)
{
	void *p;
	int r, sz;

	memset(t, 0, sizeof(*t));
	t->vm_fd = t->vcpu_fd = -1;
	t->kvm_fd = kvm_fd;
	if (kvm_fd < 0) {
		r = mk_kvm_open();
		if (r < 0) {
			*why = mk_kvm_strerror(r);
			return r;
		}
		t->kvm_fd = r;
		t->own_kvm = true;
	}
	r = mk_kvm_create_vm(t->kvm_fd);
	if (r < 0) {
		*why = "KVM_CREATE_VM failed";
		return r;
	}
	t->vm_fd = r;
	r = mk_mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &p);
	if (r < 0) {
		*why = "mmap of guest RAM failed";
		return r;
	}
	t->mem = p;
	t->mem_size = mem_size;
	r = mk_kvm_set_memslot(t->vm_fd, 0, 0, 0, mem_size, t->mem);
	if (r < 0) {
		*why = "KVM_SET_USER_MEMORY_REGION failed";
		return r;
	}
	r = mk_kvm_create_vcpu(t->vm_fd, 0);
	if (r < 0) {
		*why = "KVM_CREATE_VCPU failed";
		return r;
	}
	t->vcpu_fd = r;
	sz = mk_kvm_vcpu_mmap_size(t->kvm_fd);
	if (sz < 0) {
		*why = "KVM_GET_VCPU_MMAP_SIZE failed";
		return sz;
	}
	r = mk_mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, t->vcpu_fd, 0, &p);
	if (r < 0) {
		*why = "mmap of kvm_run failed";
		return r;
	}
	t->run = p;
	t->run_size = (size_t)sz;
	return 0;
}

void tinyvm_close(struct tinyvm *t)
{
	if (t->run)
		mk_munmap(t->run, t->run_size);
	if (t->vcpu_fd >= 0)
		mk_close(t->vcpu_fd);
	if (t->vm_fd >= 0)
		mk_close(t->vm_fd);
	if (t->mem)
		mk_munmap(t->mem, t->mem_size);
	if (t->own_kvm && t->kvm_fd >= 0)
		mk_close(t->kvm_fd);
	memset(t, 0, sizeof(*t));
	t->kvm_fd = t->vm_fd = t->vcpu_fd = -1;
}

void tinyvm_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool long_mode)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = long_mode;
	s->db = !long_mode;
}

struct kvm_cpuid2 *tinyvm_supported_cpuid(int kvm_fd)
{
	const unsigned nent = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(struct kvm_cpuid_entry2));

	if (!cpuid)
		return NULL;
	cpuid->nent = nent;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		int e = errno;

		free(cpuid);
		errno = e;
		return NULL;
	}
	return cpuid;
}

int tinyvm_flat32(struct tinyvm *t, uint64_t entry, const void *code, size_t len)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int r;

	if (entry > t->mem_size || len > t->mem_size - entry)
		return -EINVAL;
	memcpy((char *)t->mem + entry, code, len);

	r = mk_kvm_get_sregs(t->vcpu_fd, &sregs);
	if (r < 0)
		return r;
	tinyvm_flat_segment(&sregs.cs, 0x08, 0x0b, false);  /* code: execute/read, accessed */
	tinyvm_flat_segment(&sregs.ds, 0x10, 0x03, false);  /* data: read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 |= 1;                       /* PE, paging off */
	r = mk_kvm_set_sregs(t->vcpu_fd, &sregs);
	if (r < 0)
		return r;

	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rsp = t->mem_size;
	regs.rflags = 2;
	return mk_kvm_set_regs(t->vcpu_fd, &regs);
}

int tinyvm_run(struct tinyvm *t)
{
	int r = mk_kvm_run(t->vcpu_fd);

	return r < 0 ? r : (int)t->run->exit_reason;
}
