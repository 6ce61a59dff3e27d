/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest: the VM, long-mode setup and the run loop (see vm.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/kvm.h"
#include "common/macro.h"
#include "common/sys.h"
#include "tools/memcheck/proto.h"
#include "tools/memcheck/vm.h"
#include "vmm/cpu.h"

enum { RUN_HELLO = 100 };

/* GDT, identity-mapped page tables (2 MiB pages up to MC_GPA_MAPPED), program. */
static void build_low(struct mc_vm *vm)
{
	uint64_t *gdt = (uint64_t *)(vm->low + MC_GDT);

	gdt[0] = 0;
	gdt[1] = VMM_GDT_CODE64(0);       /* 0x08 */
	gdt[2] = VMM_GDT_DATA(0);         /* 0x10 */
	gdt[3] = VMM_GDT_CODE64(3);       /* 0x18 */
	gdt[4] = VMM_GDT_DATA(3);         /* 0x20 */
	vmm_cpu_identity_map(vm->low, MC_PML4, MC_PDPT, MC_PD, MC_PD_COUNT, true);
	memcpy(vm->low + MC_CODE, mc_guest_start, (size_t)(mc_guest_end - mc_guest_start));
	/* Reported like every host write into the RAM (a region's dirty record, vm.h). */
	vmm_vm_ram_written(&vm->tv, MC_GDT, 5 * sizeof(*gdt));
	vmm_cpu_identity_map_written(&vm->tv, MC_PML4, MC_PDPT, MC_PD, MC_PD_COUNT);
	vmm_vm_ram_written(&vm->tv, MC_CODE, (uint64_t)(mc_guest_end - mc_guest_start));
}

/*
 * The guest runs at CPL 3 (user pages, DPL-3 segments, IOPL 3 for its
 * OUTs). It needs no privileged instruction, and on hosts whose KVM is
 * software-based (e.g. PVM, a nested "pagetable-based" KVM) only guest
 * user mode executes natively: CPL 0 code there is emulated instruction by
 * instruction, about 100x slower. On VMX/SVM hosts it makes no difference.
 */
static int setup_cpu(struct mc_vm *vm)
{
	const struct vmm_long_mode lm = {
		.cs = 0x18 | 3, .ds = 0x20 | 3, .dpl = 3,
		.gdt = MC_GDT, .gdt_entries = 5, .cr3 = MC_PML4,
		.cr0_extra = VMM_CR0_NE | VMM_CR0_WP,
		.rip = MC_CODE, .rsp = MC_STACK_TOP,
		.rflags = 0x3002,       /* IOPL 3: the guest's OUTs are allowed at CPL 3 */
	};
	int r = vmm_cpu_set_cpuid(&vm->tv, 0, &vm->err);

	return r < 0 ? r : vmm_cpu_long_mode(&vm->tv, &lm, &vm->err);
}

static enum mc_run_result run_loop(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status);

int mc_vm_open(struct mc_vm *vm, int kvm_fd, uint64_t timeout_ns)
{
	unsigned st;
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->t_open_ns = mk_now_ns();
	vm->timeout_ns = timeout_ns;
	r = vmm_vm_open(&vm->tv, kvm_fd, MC_LOW_SIZE, 0, &vm->err);
	if (r < 0)
		return r;
	vm->low = vm->tv.ram;
	build_low(vm);
	r = setup_cpu(vm);
	if (r < 0)
		return r;
	if (run_loop(vm, NULL, &st) != (enum mc_run_result)RUN_HELLO)
		return -EIO;
	vm->t_hello_ns = mk_now_ns();
	return 0;
}

void mc_vm_close(struct mc_vm *vm)
{
	vmm_vm_close(&vm->tv);
	vm->low = NULL;
}

static enum mc_run_result run_error(struct mc_vm *vm, const char *what)
{
	struct kvm_regs regs;

	if (mk_kvm_get_regs(vm->tv.vcpu_fd, &regs) == 0)
		vmm_fail(&vm->err, -EIO, "%s (rip 0x%llx)", what, (unsigned long long)regs.rip);
	else
		vmm_fail(&vm->err, -EIO, "%s", what);
	return MC_RUN_ERROR;
}

static enum mc_run_result run_io(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status)
{
	struct kvm_run *run = vm->tv.run;
	char what[96];
	uint8_t b;

	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1 || run->io.count != 1 ||
	    run->io.data_offset >= vm->tv.run_size) {
		snprintf(what, sizeof(what), "unexpected I/O exit (port 0x%x)", run->io.port);
		return run_error(vm, what);
	}
	b = *((uint8_t *)run + run->io.data_offset);
	if (run->io.port == MC_PORT_HELLO && !cmd)
		return (enum mc_run_result)RUN_HELLO;
	if (run->io.port == MC_PORT_DONE && cmd) {
		uint64_t res[4];

		memcpy(res, vm->low + MC_CMD + MC_C_RES0, sizeof(res));   /* copied once */
		memcpy(cmd->res, res, sizeof(res));
		*status = b;
		return MC_RUN_DONE;
	}
	snprintf(what, sizeof(what), "unexpected OUT 0x%x to port 0x%x", b, run->io.port);
	return run_error(vm, what);
}

/*
 * KVM_RUN said EFAULT and nothing else: see mc_fault_fn. 1 retry, 0 not
 * ours, -errno (the guest's access at *gpa).
 */
static int efault(struct mc_vm *vm, uint64_t *last_rip, unsigned *same, uint64_t *gpa)
{
	struct kvm_regs regs;
	int r = mk_kvm_get_regs(vm->tv.vcpu_fd, &regs);

	if (r < 0)
		return 0;
	/* The same instruction faulting again after a successful bind: give up. */
	if (regs.rip == *last_rip && ++*same > 4)
		return 0;
	if (regs.rip != *last_rip)
		*same = 0;
	*last_rip = regs.rip;
	*gpa = regs.rdi;
	/* The guest's access is in [rdi, rdi + 32): one page, or two. */
	r = vm->fault_fn(vm->exit_data, regs.rdi & ~0xfffull);
	if (r >= 0 && ((regs.rdi + 31) & ~0xfffull) != (regs.rdi & ~0xfffull)) {
		int r2 = vm->fault_fn(vm->exit_data, (regs.rdi + 31) & ~0xfffull);
		r = r2 < 0 ? r2 : MK_MAX(r, r2);
	}
	return r;
}

/* An MMIO or memory-fault exit: exit_fn's (-1: handled, the vCPU re-enters), else the result. */
static int run_mmio(struct mc_vm *vm)
{
	struct kvm_run *run = vm->tv.run;
	char what[128];

	if (vm->exit_fn) {
		int h = vm->exit_fn(vm->exit_data, run);

		if (h > 0) {
			vm->handled_exits++;
			return -1;
		}
		if (h < 0) {
			snprintf(what, sizeof(what), "%s exit at gpa 0x%llx: handler: %s",
				 vmm_exit_name(run->exit_reason),
				 (unsigned long long)run->mmio.phys_addr, strerror(-h));
			return run_error(vm, what);
		}
	}
	if (run->exit_reason == KVM_EXIT_MMIO)
		return MC_RUN_MMIO;
	return run_error(vm, "unhandled memory fault exit");
}

/* Any other exit ends the call with an error. */
static enum mc_run_result run_other(struct mc_vm *vm)
{
	struct kvm_run *run = vm->tv.run;
	char what[128];

	switch (run->exit_reason) {
	case KVM_EXIT_HLT:
		return run_error(vm, "guest halted");
	case KVM_EXIT_SHUTDOWN:
		return run_error(vm, "guest shut down (triple fault)");
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed (reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return run_error(vm, what);
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error (suberror %u)", run->internal.suberror);
		return run_error(vm, what);
	default:
		snprintf(what, sizeof(what), "unexpected exit reason %u", run->exit_reason);
		return run_error(vm, what);
	}
}

/* KVM_RUN until an exit that ends the call (the deadline armed by run_loop). */
static enum mc_run_result run_exits(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status)
{
	struct kvm_run *run = vm->tv.run;
	uint64_t last_fault_rip = ~0ull, gpa = 0;
	unsigned same_rip = 0;
	char what[128];

	for (;;) {
		int r, h;

		if (vm->enter_fn) {
			r = vm->enter_fn(vm->run_data);
			if (r < 0) {
				snprintf(what, sizeof(what), "entering the guest: %s", strerror(-r));
				return run_error(vm, what);
			}
		}
		r = vmm_vm_run(&vm->tv);
		if (vm->leave_fn)
			vm->leave_fn(vm->run_data);
		if ((r == -EINTR || r == -EAGAIN) && vmm_vm_expired(&vm->tv)) {
			vmm_fail(&vm->err, -ETIMEDOUT, "guest did not answer within %.1f s (stopped)",
				 (double)vm->timeout_ns / 1e9);
			return MC_RUN_TIMEOUT;
		}
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r == -EFAULT && run->exit_reason != KVM_EXIT_MEMORY_FAULT && vm->fault_fn) {
			h = efault(vm, &last_fault_rip, &same_rip, &gpa);
			if (h > 0) {
				vm->handled_exits++;
				continue;
			}
			if (h < 0) {
				snprintf(what, sizeof(what), "fault at gpa 0x%llx: handler: %s",
					 (unsigned long long)gpa, strerror(-h));
				return run_error(vm, what);
			}
		}
		if (r < 0 && !(r == -EFAULT && run->exit_reason == KVM_EXIT_MEMORY_FAULT)) {
			snprintf(what, sizeof(what), "KVM_RUN: %s (exit %u)", strerror(-r), run->exit_reason);
			return run_error(vm, what);
		}
		if (run->exit_reason == KVM_EXIT_IO)
			return run_io(vm, cmd, status);
		if (run->exit_reason != KVM_EXIT_MMIO && run->exit_reason != KVM_EXIT_MEMORY_FAULT)
			return run_other(vm);
		h = run_mmio(vm);
		if (h >= 0)
			return (enum mc_run_result)h;
	}
}

static enum mc_run_result run_loop(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status)
{
	enum mc_run_result res;

	vmm_err_clear(&vm->err);
	if (vmm_vm_deadline(&vm->tv, vm->timeout_ns, &vm->err) < 0)
		return MC_RUN_ERROR;
	res = run_exits(vm, cmd, status);
	vmm_vm_deadline(&vm->tv, 0, NULL);
	return res;
}

enum mc_run_result mc_vm_call(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status)
{
	uint64_t hdr[5] = { cmd->op, cmd->addr, cmd->len, cmd->seed, cmd->arg };

	memcpy(vm->low + MC_CMD, hdr, sizeof(hdr));
	memset(vm->low + MC_CMD + MC_C_RES0, 0, 4 * sizeof(uint64_t));
	/* low is the VM's RAM (tv.ram): a region's record needs the write (vm.h). */
	vmm_vm_ram_written(&vm->tv, MC_CMD, sizeof(hdr));
	vmm_vm_ram_written(&vm->tv, MC_CMD + MC_C_RES0, 4 * sizeof(uint64_t));
	return run_loop(vm, cmd, status);
}

enum mc_run_result mc_vm_resume(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status)
{
	return run_loop(vm, cmd, status);
}

int mc_vm_do(struct mc_vm *vm, struct mc_cmd *cmd)
{
	unsigned st = 0;
	enum mc_run_result r = mc_vm_call(vm, cmd, &st);

	if (r == MC_RUN_DONE && st == MC_ST_OK)
		return 0;
	if (r == MC_RUN_DONE)
		vmm_fail(&vm->err, -EIO, "guest refused command %llu (status %u)",
			 (unsigned long long)cmd->op, st);
	else if (r == MC_RUN_MMIO)
		vmm_fail(&vm->err, -EIO, "unexpected MMIO %s at gpa 0x%llx",
			 vm->tv.run->mmio.is_write ? "write" : "read",
			 (unsigned long long)vm->tv.run->mmio.phys_addr);
	return -EIO;
}
