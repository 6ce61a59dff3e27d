/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "kvmtest.h"

bool kvmtest_native(const char **why)
{
	int fd = mk_kvm_open(), vm;

	if (fd < 0) {
		*why = mk_kvm_strerror(fd);
		return false;
	}
	vm = mk_kvm_create_vm(fd);
	mk_close(fd);
	if (vm < 0) {
		*why = "KVM_CREATE_VM failed";
		return false;
	}
	mk_close(vm);
	return true;
}

bool kvmtest_available(void)
{
	static char release[sizeof(((struct utsname *)0)->release)];
	const char *why;

	if (!kvmtest_native(&why)) {
		g_autofree char *msg = g_strdup_printf("KVM unavailable: %s", why);
		g_test_skip(msg);
		return false;
	}
	if (!*release) {
		struct utsname u;

		g_strlcpy(release, uname(&u) == 0 ? u.release : "unknown", sizeof(release));
	}
	g_test_message("kernel %s", release);
	return true;
}

/* Does the microVM run this program's cases that need what is missing here? */
static bool microvm_runs_them(void)
{
	const char *kernels = getenv("MEMKIT_MICROVM_KERNELS");

	return kernels && *kernels && !getenv("MEMKIT_MICROVM_GUEST");
}

bool kvmtest_elsewhere(void)
{
	static int elsewhere = -1;
	const char *why;

	if (elsewhere < 0) {
		elsewhere = microvm_runs_them() && !kvmtest_native(&why);
		if (elsewhere)
			g_test_message("KVM unavailable here (%s): this program's KVM cases run "
				       "in the microVM on kernels %s (tests/microvm-*.sh)", why,
				       getenv("MEMKIT_MICROVM_KERNELS"));
	}
	return elsewhere;
}

void kvmtest_add_func(const char *path, void (*fn)(void))
{
	if (!kvmtest_elsewhere())
		g_test_add_func(path, fn);
}

int kvmtest_vm_open(struct kvmtest_vm *t, size_t mem_size, const char **why)
{
	void *p;
	int r, sz;

	memset(t, 0, sizeof(*t));
	t->kvm_fd = t->vm_fd = t->vcpu_fd = -1;
	*why = NULL;

	r = mk_kvm_open();
	if (r < 0) {
		*why = mk_kvm_strerror(r);
		return r;
	}
	t->kvm_fd = r;
	r = mk_kvm_create_vm(t->kvm_fd);
	if (r < 0) {
		*why = "KVM_CREATE_VM failed";
		goto fail;
	}
	t->vm_fd = r;
	r = mk_mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &p);
	if (r < 0) {
		*why = "mmap of guest RAM failed";
		goto fail;
	}
	t->mem = p;
	t->mem_size = mem_size;
	r = mk_kvm_set_memslot(t->vm_fd, 0, 0, 0, mem_size, t->mem);
	if (r < 0) {
		*why = "KVM_SET_USER_MEMORY_REGION failed";
		goto fail;
	}
	r = mk_kvm_create_vcpu(t->vm_fd, 0);
	if (r < 0) {
		*why = "KVM_CREATE_VCPU failed";
		goto fail;
	}
	t->vcpu_fd = r;
	sz = mk_kvm_vcpu_mmap_size(t->kvm_fd);
	if (sz < 0) {
		r = sz;
		*why = "KVM_GET_VCPU_MMAP_SIZE failed";
		goto fail;
	}
	r = mk_mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, t->vcpu_fd, 0, &p);
	if (r < 0) {
		*why = "mmap of kvm_run failed";
		goto fail;
	}
	t->run = p;
	t->run_size = (size_t)sz;
	return 0;
fail:
	kvmtest_vm_close(t);
	return r;
}

void kvmtest_vm_close(struct kvmtest_vm *t)
{
	if (t->run)
		mk_munmap(t->run, t->run_size);
	if (t->vcpu_fd >= 0)
		mk_close(t->vcpu_fd);
	if (t->vm_fd >= 0)
		mk_close(t->vm_fd);
	if (t->mem)
		mk_munmap(t->mem, t->mem_size);
	if (t->kvm_fd >= 0)
		mk_close(t->kvm_fd);
	memset(t, 0, sizeof(*t));
	t->kvm_fd = t->vm_fd = t->vcpu_fd = -1;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = 1;
	s->s = 1;
	s->g = 1;
}

int kvmtest_load(struct kvmtest_vm *t, uint64_t entry, const void *code, size_t len)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int r;

	if (entry + len > t->mem_size)
		return -EINVAL;
	memcpy((char *)t->mem + entry, code, len);

	r = mk_kvm_get_sregs(t->vcpu_fd, &sregs);
	if (r < 0)
		return r;
	flat_segment(&sregs.cs, 0x08, 0x0b);  /* code: execute/read, accessed */
	flat_segment(&sregs.ds, 0x10, 0x03);  /* data: read/write, accessed */
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

int kvmtest_run(struct kvmtest_vm *t)
{
	int r = mk_kvm_run(t->vcpu_fd);

	return r < 0 ? r : (int)t->run->exit_reason;
}
