/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: the VM, its vCPU and RAM, one KVM_RUN, the deadline (vm.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "vmm/vm.h"

void vmm_vm_init(struct vmm_vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
}

/* In-kernel interrupt controllers and PIT: what a Linux guest needs. */
static int irqchip(struct vmm_vm *vm, struct vmm_err *e)
{
	struct kvm_pit_config pit = { .flags = 0 };

	/* Intel needs a TSS for real-mode emulation; harmless elsewhere. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 && errno != ENOTTY)
		return vmm_fail_sys(e, -errno, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vmm_fail_sys(e, -errno, "KVM_CREATE_IRQCHIP");
	/* The PIT: Linux calibrates the TSC and LAPIC timer against it. */
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return vmm_fail_sys(e, -errno, "KVM_CREATE_PIT2");
	return 0;
}

static int anon_ram(struct vmm_vm *vm, uint64_t size, struct vmm_err *e)
{
	void *p;
	int r = mk_mmap(NULL, size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &p);

	if (r < 0)
		return vmm_fail_sys(e, r, "mmap of guest RAM");
	vm->ram = p;
	vm->ram_size = size;
	vm->own_ram = true;
	r = mk_kvm_set_memslot(vm->vm_fd, 0, 0, 0, size, p);
	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_SET_USER_MEMORY_REGION (RAM)");
	return 0;
}

static int vcpu(struct vmm_vm *vm, struct vmm_err *e)
{
	void *p;
	int r = mk_kvm_create_vcpu(vm->vm_fd, 0), sz;

	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_CREATE_VCPU");
	vm->vcpu_fd = r;
	sz = mk_kvm_vcpu_mmap_size(vm->kvm_fd);
	if (sz < 0)
		return vmm_fail_sys(e, sz, "KVM_GET_VCPU_MMAP_SIZE");
	r = mk_mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0, &p);
	if (r < 0)
		return vmm_fail_sys(e, r, "mmap of kvm_run");
	vm->run = p;
	vm->run_size = (size_t)sz;
	return 0;
}

int vmm_vm_open(struct vmm_vm *vm, int kvm_fd, uint64_t ram_size, unsigned flags,
		struct vmm_err *e)
{
	int r;

	vmm_vm_init(vm);
	vm->kvm_fd = kvm_fd;
	if (kvm_fd < 0) {
		r = mk_kvm_open();
		if (r < 0)
			return vmm_fail(e, r, "%s", mk_kvm_strerror(r));
		vm->kvm_fd = r;
		vm->own_kvm = true;
	}
	r = mk_kvm_create_vm(vm->kvm_fd);
	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_CREATE_VM");
	vm->vm_fd = r;
	if (flags & VMM_VM_IRQCHIP) {
		r = irqchip(vm, e);
		if (r < 0)
			return r;
	}
	if (ram_size) {
		r = anon_ram(vm, ram_size, e);
		if (r < 0)
			return r;
	}
	return vcpu(vm, e);
}

/* The kvm_run of the VM whose deadline is armed on this thread (see vmm_vm_deadline). */
static __thread struct kvm_run *volatile deadline_run;

void vmm_vm_close(struct vmm_vm *vm)
{
	if (vm->run && deadline_run == vm->run)
		deadline_run = NULL;
	if (vm->has_timer)
		timer_delete(vm->timer);
	if (vm->run)
		mk_munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		mk_close(vm->vcpu_fd);
	if (vm->vm_fd >= 0)
		mk_close(vm->vm_fd);
	if (vm->own_ram && vm->ram)
		mk_munmap(vm->ram, vm->ram_size);
	if (vm->own_kvm && vm->kvm_fd >= 0)
		mk_close(vm->kvm_fd);
	vmm_vm_init(vm);
}

void *vmm_vm_ram(const struct vmm_vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa > vm->ram_size || len > vm->ram_size - gpa)
		return NULL;
	return vm->ram + gpa;
}

void vmm_vm_ram_written(const struct vmm_vm *vm, uint64_t gpa, uint64_t len)
{
	if (vm->ram_written_fn && len)
		vm->ram_written_fn(vm->ram_written_data, gpa, len);
}

void vmm_vm_ram_written_at(const struct vmm_vm *vm, const void *p, uint64_t len)
{
	vmm_vm_ram_written(vm, (uint64_t)((const uint8_t *)p - vm->ram), len);
}

int vmm_vm_run(struct vmm_vm *vm)
{
	int r = mk_kvm_run(vm->vcpu_fd);

	return r < 0 ? r : (int)vm->run->exit_reason;
}

/* ---- the deadline: a per-thread timer signal sets immediate_exit ------------- */


static void on_deadline(int sig)
{
	struct kvm_run *run = deadline_run;

	(void)sig;
	if (run)
		run->immediate_exit = 1;
}

static int deadline_signal(void)
{
	return SIGRTMIN + 3;
}

/* The handler, installed once: no SA_RESTART, so KVM_RUN returns -EINTR. */
static int install_handler(struct vmm_err *e)
{
	static int installed;
	struct sigaction sa;

	if (__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_deadline;
	sigemptyset(&sa.sa_mask);
	if (sigaction(deadline_signal(), &sa, NULL) < 0)
		return vmm_fail_sys(e, -errno, "sigaction (the deadline's signal)");
	__atomic_store_n(&installed, 1, __ATOMIC_RELEASE);
	return 0;
}

/* The VM's timer, signalling the calling thread (made again if another thread arms it). */
static int thread_timer(struct vmm_vm *vm, struct vmm_err *e)
{
	struct sigevent sev;
	int tid = (int)syscall(SYS_gettid);

	if (vm->has_timer && vm->timer_tid == tid)
		return 0;
	if (vm->has_timer)
		timer_delete(vm->timer);
	vm->has_timer = false;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = deadline_signal();
	sev._sigev_un._tid = tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &vm->timer) < 0)
		return vmm_fail_sys(e, -errno, "timer_create");
	vm->has_timer = true;
	vm->timer_tid = tid;
	return 0;
}

int vmm_vm_deadline(struct vmm_vm *vm, uint64_t ns, struct vmm_err *e)
{
	struct itimerspec its = { 0 };
	int r;

	if (!ns) {
		if (vm->has_timer)
			timer_settime(vm->timer, 0, &its, NULL);
		if (deadline_run == vm->run)
			deadline_run = NULL;
		if (vm->run)
			vm->run->immediate_exit = 0;
		return 0;
	}
	r = install_handler(e);
	if (r >= 0)
		r = thread_timer(vm, e);
	if (r < 0)
		return r;
	deadline_run = vm->run;
	vm->run->immediate_exit = 0;
	its.it_value.tv_sec = (time_t)(ns / 1000000000u);
	its.it_value.tv_nsec = (long)(ns % 1000000000u);
	if (timer_settime(vm->timer, 0, &its, NULL) < 0)
		return vmm_fail_sys(e, -errno, "timer_settime");
	return 0;
}

bool vmm_vm_expired(const struct vmm_vm *vm)
{
	return vm->run && vm->run->immediate_exit;
}

const char *vmm_exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	case KVM_EXIT_MEMORY_FAULT: return "MEMORY_FAULT";
	default: return "other";
	}
}
