/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest: the VM, long-mode setup and the run loop (see vm.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "common/kvm.h"
#include "common/macro.h"
#include "common/sys.h"
#include "tools/memcheck/proto.h"
#include "tools/memcheck/vm.h"

enum { RUN_HELLO = 100 };

/* The vCPU currently in KVM_RUN, for the deadline signal. */
static struct kvm_run *volatile cur_run;

static void on_alarm(int sig)
{
	struct kvm_run *run = cur_run;

	(void)sig;
	if (run)
		run->immediate_exit = 1;
}

static void alarm_init(void)
{
	static bool done;
	struct sigaction sa;

	if (done)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;       /* no SA_RESTART: KVM_RUN returns -EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	done = true;
}

static void alarm_arm(uint64_t ns)
{
	struct itimerval it = { 0 };

	if (ns && ns < 1000)
		ns = 1000;
	it.it_value.tv_sec = (time_t)(ns / 1000000000u);
	it.it_value.tv_usec = (suseconds_t)(ns % 1000000000u / 1000u);
	setitimer(ITIMER_REAL, &it, NULL);
}

/* The host's supported CPUID, fetched once: long mode needs CPUID.LM in the guest. */
static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	static struct kvm_cpuid2 *cpuid;

	if (!cpuid)
		cpuid = tinyvm_supported_cpuid(kvm_fd);
	return cpuid;
}

static int fail(struct mc_vm *vm, int err, const char *what)
{
	snprintf(vm->why, sizeof(vm->why), "%s: %s", what, strerror(-err));
	return err;
}

/* GDT, identity-mapped page tables (2 MiB pages up to MC_GPA_MAPPED), program. */
static void build_low(struct mc_vm *vm)
{
	uint64_t *gdt = (uint64_t *)(vm->low + MC_GDT);
	uint64_t *pml4 = (uint64_t *)(vm->low + MC_PML4);
	uint64_t *pdpt = (uint64_t *)(vm->low + MC_PDPT);
	uint64_t *pd = (uint64_t *)(vm->low + MC_PD);

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull;   /* 0x08: 64-bit code, DPL 0 */
	gdt[2] = 0x00cf93000000ffffull;   /* 0x10: data, DPL 0 */
	gdt[3] = 0x00affb000000ffffull;   /* 0x18: 64-bit code, DPL 3 */
	gdt[4] = 0x00cff3000000ffffull;   /* 0x20: data, DPL 3 */
	pml4[0] = MC_PDPT | 7;            /* present, writable, user */
	for (unsigned i = 0; i < MC_PD_COUNT; i++)
		pdpt[i] = (MC_PD + i * 0x1000ull) | 7;
	for (uint64_t i = 0; i < MC_PD_COUNT * 512ull; i++)
		pd[i] = (i << 21) | 0x87;     /* present, writable, user, 2 MiB page */
	memcpy(vm->low + MC_CODE, mc_guest_start, (size_t)(mc_guest_end - mc_guest_start));
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
	struct kvm_cpuid2 *cpuid = supported_cpuid(vm->tv.kvm_fd);
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int r;

	if (!cpuid)
		return fail(vm, -errno ? -errno : -ENOMEM, "KVM_GET_SUPPORTED_CPUID");
	if (ioctl(vm->tv.vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
		return fail(vm, -errno, "KVM_SET_CPUID2");
	r = mk_kvm_get_sregs(vm->tv.vcpu_fd, &sregs);
	if (r < 0)
		return fail(vm, r, "KVM_GET_SREGS");
	tinyvm_flat_segment(&sregs.cs, 0x18 | 3, 0x0b, true);
	tinyvm_flat_segment(&sregs.ds, 0x20 | 3, 0x03, false);
	sregs.cs.dpl = sregs.ds.dpl = 3;
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = MC_GDT;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.cr3 = MC_PML4;
	sregs.cr4 = (1u << 5);                          /* PAE */
	sregs.cr0 = 0x80000011u | (1u << 5) | (1u << 16); /* PG, ET, PE, NE, WP */
	sregs.efer = (1u << 8) | (1u << 10);            /* LME, LMA */
	r = mk_kvm_set_sregs(vm->tv.vcpu_fd, &sregs);
	if (r < 0)
		return fail(vm, r, "KVM_SET_SREGS (long mode)");
	memset(&regs, 0, sizeof(regs));
	regs.rip = MC_CODE;
	regs.rsp = MC_STACK_TOP;
	regs.rflags = 0x3002;       /* IOPL 3: the guest's OUTs are allowed at CPL 3 */
	r = mk_kvm_set_regs(vm->tv.vcpu_fd, &regs);
	if (r < 0)
		return fail(vm, r, "KVM_SET_REGS");
	return 0;
}

static enum mc_run_result run_loop(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status);

int mc_vm_open(struct mc_vm *vm, int kvm_fd, uint64_t timeout_ns)
{
	const char *why;
	unsigned st;
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->t_open_ns = mk_now_ns();
	vm->timeout_ns = timeout_ns;
	alarm_init();

	r = tinyvm_open(&vm->tv, kvm_fd, MC_LOW_SIZE, &why);
	if (r < 0)
		return fail(vm, r, why);
	vm->low = vm->tv.mem;
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
	tinyvm_close(&vm->tv);
	vm->low = NULL;
}

const char *mc_exit_name(uint32_t reason)
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

static enum mc_run_result run_error(struct mc_vm *vm, const char *what)
{
	struct kvm_regs regs;

	if (mk_kvm_get_regs(vm->tv.vcpu_fd, &regs) == 0)
		snprintf(vm->why, sizeof(vm->why), "%s (rip 0x%llx)", what,
			 (unsigned long long)regs.rip);
	else
		snprintf(vm->why, sizeof(vm->why), "%s", what);
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

/* KVM_RUN said EFAULT and nothing else: see mc_fault_fn. 1 retry, 0 not ours, -errno. */
static int efault(struct mc_vm *vm, uint64_t *last_rip, unsigned *same)
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
	/* The guest's access is in [rdi, rdi + 32): one page, or two. */
	r = vm->fault_fn(vm->exit_data, regs.rdi & ~0xfffull);
	if (r >= 0 && ((regs.rdi + 31) & ~0xfffull) != (regs.rdi & ~0xfffull)) {
		int r2 = vm->fault_fn(vm->exit_data, (regs.rdi + 31) & ~0xfffull);
		r = r2 < 0 ? r2 : MK_MAX(r, r2);
	}
	if (r < 0)
		snprintf(vm->why, sizeof(vm->why), "fault at gpa 0x%llx: handler: %s",
			 (unsigned long long)regs.rdi, strerror(-r));
	return r;
}

static enum mc_run_result run_loop(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status)
{
	uint64_t deadline = mk_now_ns() + vm->timeout_ns, last_fault_rip = ~0ull;
	unsigned same_rip = 0;
	enum mc_run_result res;
	char what[128];

	for (;;) {
		uint64_t now = mk_now_ns();
		int r, h;

		if (now >= deadline) {
			snprintf(vm->why, sizeof(vm->why), "guest did not answer within %.1f s (stopped)",
				 (double)vm->timeout_ns / 1e9);
			res = MC_RUN_TIMEOUT;
			break;
		}
		if (vm->enter_fn) {
			r = vm->enter_fn(vm->run_data);
			if (r < 0) {
				snprintf(what, sizeof(what), "entering the guest: %s", strerror(-r));
				res = run_error(vm, what);
				break;
			}
		}
		cur_run = vm->tv.run;
		alarm_arm(deadline - now);
		r = mk_kvm_run(vm->tv.vcpu_fd);
		alarm_arm(0);
		cur_run = NULL;
		if (vm->leave_fn)
			vm->leave_fn(vm->run_data);
		vm->tv.run->immediate_exit = 0;
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r == -EFAULT && vm->tv.run->exit_reason != KVM_EXIT_MEMORY_FAULT && vm->fault_fn) {
			h = efault(vm, &last_fault_rip, &same_rip);
			if (h > 0) {
				vm->handled_exits++;
				continue;
			}
			if (h < 0) {
				res = run_error(vm, vm->why);
				break;
			}
		}
		if (r < 0 && !(r == -EFAULT && vm->tv.run->exit_reason == KVM_EXIT_MEMORY_FAULT)) {
			snprintf(what, sizeof(what), "KVM_RUN: %s (exit %u)", strerror(-r), vm->tv.run->exit_reason);
			res = run_error(vm, what);
			break;
		}
		switch (vm->tv.run->exit_reason) {
		case KVM_EXIT_IO:
			return run_io(vm, cmd, status);
		case KVM_EXIT_MMIO:
		case KVM_EXIT_MEMORY_FAULT:
			if (vm->exit_fn) {
				h = vm->exit_fn(vm->exit_data, vm->tv.run);
				if (h > 0) {
					vm->handled_exits++;
					continue;
				}
				if (h < 0) {
					snprintf(what, sizeof(what), "%s exit at gpa 0x%llx: handler: %s",
						 mc_exit_name(vm->tv.run->exit_reason),
						 (unsigned long long)vm->tv.run->mmio.phys_addr,
						 strerror(-h));
					return run_error(vm, what);
				}
			}
			if (vm->tv.run->exit_reason == KVM_EXIT_MMIO)
				return MC_RUN_MMIO;
			return run_error(vm, "unhandled memory fault exit");
		case KVM_EXIT_HLT:
			return run_error(vm, "guest halted");
		case KVM_EXIT_SHUTDOWN:
			return run_error(vm, "guest shut down (triple fault)");
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(what, sizeof(what), "VM entry failed (reason 0x%llx)",
				 (unsigned long long)vm->tv.run->fail_entry.hardware_entry_failure_reason);
			return run_error(vm, what);
		case KVM_EXIT_INTERNAL_ERROR:
			snprintf(what, sizeof(what), "KVM internal error (suberror %u)",
				 vm->tv.run->internal.suberror);
			return run_error(vm, what);
		default:
			snprintf(what, sizeof(what), "unexpected exit reason %u", vm->tv.run->exit_reason);
			return run_error(vm, what);
		}
	}
	return res;
}

enum mc_run_result mc_vm_call(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status)
{
	uint64_t hdr[5] = { cmd->op, cmd->addr, cmd->len, cmd->seed, cmd->arg };

	memcpy(vm->low + MC_CMD, hdr, sizeof(hdr));
	memset(vm->low + MC_CMD + MC_C_RES0, 0, 4 * sizeof(uint64_t));
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
		snprintf(vm->why, sizeof(vm->why), "guest refused command %llu (status %u)",
			 (unsigned long long)cmd->op, st);
	else if (r == MC_RUN_MMIO)
		snprintf(vm->why, sizeof(vm->why), "unexpected MMIO %s at gpa 0x%llx",
			 vm->tv.run->mmio.is_write ? "write" : "read",
			 (unsigned long long)vm->tv.run->mmio.phys_addr);
	return -EIO;
}
