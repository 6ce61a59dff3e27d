/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest linux check: VM, devices and the run loop (linux-vm.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/macro.h"
#include "common/sys.h"
#include "tools/memcheck/linux-vm.h"

#define CONSOLE_MAX (8u << 20)

static int fail(struct lx_vm *vm, int err, const char *what)
{
	snprintf(vm->why, sizeof(vm->why), "%s: %s", what, strerror(-err));
	return err;
}

static void console_out(void *data, const char *buf, size_t len)
{
	struct lx_vm *vm = data;

	if (vm->echo)
		fwrite(buf, 1, len, stderr);
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (vm->console_len + 1 < vm->console_cap)
			vm->console[vm->console_len++] = ch;
		if (ch == '\r')
			continue;
		if (ch != '\n') {
			if (vm->line_len + 1 < sizeof(vm->line))
				vm->line[vm->line_len++] = ch;
			continue;
		}
		vm->line[vm->line_len] = '\0';
		vm->line_len = 0;
		if (vm->line_fn && vm->line_fn(vm->line_data, vm->line))
			vm->stop = true;
	}
	if (vm->console_len < vm->console_cap)
		vm->console[vm->console_len] = '\0';
}

int lx_vm_open(struct lx_vm *vm, int kvm_fd, uint64_t ram_size)
{
	struct kvm_pit_config pit = { .flags = 0 };
	void *p;
	int r, sz;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = kvm_fd;
	vm->vm_fd = vm->vcpu_fd = -1;
	vm->console_cap = CONSOLE_MAX;
	vm->console = calloc(1, vm->console_cap);
	if (!vm->console)
		return fail(vm, -ENOMEM, "console buffer");
	r = mk_kvm_create_vm(kvm_fd);
	if (r < 0)
		return fail(vm, r, "KVM_CREATE_VM");
	vm->vm_fd = r;
	/* Intel needs a TSS for real-mode emulation; harmless elsewhere. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 && errno != ENOTTY)
		return fail(vm, -errno, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail(vm, -errno, "KVM_CREATE_IRQCHIP");
	/* The PIT: Linux calibrates the TSC and LAPIC timer against it. */
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return fail(vm, -errno, "KVM_CREATE_PIT2");

	r = sbx_vm_from_fd(vm->vm_fd, &vm->sbx);
	if (r < 0)
		return fail(vm, r, "libsandbox: sbx_vm_from_fd");
	r = sbx_mem_new(ram_size, &vm->mem);
	if (r < 0)
		return fail(vm, r, "libsandbox: sbx_mem_new (guest RAM)");
	r = sbx_mem_split(vm->mem, &vm->guest);
	if (r < 0)
		return fail(vm, r, "libsandbox: sbx_mem_split");
	/* Virtqueues are the device's DMA into guest RAM: raw access, no dirty promise. */
	vm->ram = sbx_mem_host_ptr(vm->mem, false);
	vm->ram_size = ram_size;
	r = sbx_vm_bind(vm->sbx, vm->mem, LX_SLOT_RAM, 0, 0);
	if (r < 0)
		return fail(vm, r, "libsandbox: sbx_vm_bind (guest RAM)");

	r = mk_kvm_create_vcpu(vm->vm_fd, 0);
	if (r < 0)
		return fail(vm, r, "KVM_CREATE_VCPU");
	vm->vcpu_fd = r;
	sz = mk_kvm_vcpu_mmap_size(kvm_fd);
	if (sz < 0)
		return fail(vm, sz, "KVM_GET_VCPU_MMAP_SIZE");
	r = mk_mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0, &p);
	if (r < 0)
		return fail(vm, r, "mmap of kvm_run");
	vm->run = p;
	vm->run_size = (size_t)sz;
	lx_serial_init(&vm->serial, 0x3f8, 4, vm->vm_fd, console_out, vm);
	lx_pci_init(&vm->pci);
	return 0;
}

void lx_vm_close(struct lx_vm *vm)
{
	if (vm->run)
		mk_munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		mk_close(vm->vcpu_fd);
	sbx_vm_free(vm->sbx);            /* deletes the RAM memslot */
	if (vm->guest)
		sbx_guest_free(vm->guest);
	sbx_mem_free(vm->mem);
	if (vm->vm_fd >= 0)
		mk_close(vm->vm_fd);
	free(vm->console);
	vm->run = NULL;
	vm->vcpu_fd = vm->vm_fd = -1;
	vm->sbx = NULL;
	vm->guest = NULL;
	vm->mem = NULL;
	vm->console = NULL;
}

void *lx_vm_ram(struct lx_vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa > vm->ram_size || len > vm->ram_size - gpa)
		return NULL;
	return vm->ram + gpa;
}

const char *lx_vm_console_tail(const struct lx_vm *vm, size_t n)
{
	if (!vm->console)
		return "";
	return vm->console + (vm->console_len > n ? vm->console_len - n : 0);
}

/* ---- deadline: a per-thread timer signal sets immediate_exit ------------- */

static __thread struct kvm_run *volatile cur_run;

static void on_deadline(int sig)
{
	struct kvm_run *run = cur_run;

	(void)sig;
	if (run)
		run->immediate_exit = 1;
}

static void port_io(struct lx_vm *vm, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool w = run->io.direction == KVM_EXIT_IO_OUT;
	uint16_t port = run->io.port;
	unsigned size = run->io.size;

	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (port >= 0x3f8 && port < 0x400) {
			lx_serial_io(&vm->serial, port - 0x3f8, data, w);
		} else if (port >= 0xcf8 && port < 0xd00) {
			lx_pci_io(&vm->pci, port, data, size, w);
		} else if (!w) {
			/* Nothing there. The RTC's status reads 0 so "update in progress" is never set. */
			memset(data, port == 0x71 ? 0 : 0xff, size);
		}
	}
}

enum lx_run_result lx_vm_run(struct lx_vm *vm, uint64_t timeout_ns)
{
	struct sigevent sev = { 0 };
	struct itimerspec its = { 0 };
	struct sigaction sa = { 0 }, old_sa;
	enum lx_run_result res = LX_RUN_ERROR;
	const int sig = SIGRTMIN + 3;
	timer_t timer;
	struct kvm_run *run = vm->run;

	sa.sa_handler = on_deadline;     /* no SA_RESTART: KVM_RUN returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, &old_sa);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = sig;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) < 0) {
		fail(vm, -errno, "timer_create");
		sigaction(sig, &old_sa, NULL);
		return LX_RUN_ERROR;
	}
	its.it_value.tv_sec = (time_t)(timeout_ns / 1000000000u);
	its.it_value.tv_nsec = (long)(timeout_ns % 1000000000u);
	cur_run = run;
	run->immediate_exit = 0;
	timer_settime(timer, 0, &its, NULL);
	vm->stop = false;
	for (;;) {
		int r;

		if (vm->stop) {
			res = LX_RUN_STOPPED;
			break;
		}
		r = sbx_guest_enter(vm->guest);
		if (r < 0) {
			fail(vm, r, "libsandbox: sbx_guest_enter");
			break;
		}
		r = mk_kvm_run(vm->vcpu_fd);
		sbx_guest_exit(vm->guest);
		if (r == -EINTR || r == -EAGAIN) {
			if (run->immediate_exit) {
				struct kvm_regs regs = { 0 };
				struct kvm_sregs sregs = { 0 };

				/* Where the guest was: a hung kernel's RIP is the first clue. */
				mk_kvm_get_regs(vm->vcpu_fd, &regs);
				mk_kvm_get_sregs(vm->vcpu_fd, &sregs);
				res = LX_RUN_TIMEOUT;
				snprintf(vm->why, sizeof(vm->why),
					 "no result within %.0f s (rip 0x%llx rsp 0x%llx rflags 0x%llx "
					 "cr2 0x%llx cr3 0x%llx, cs 0x%x)",
					 (double)timeout_ns / 1e9, (unsigned long long)regs.rip,
					 (unsigned long long)regs.rsp, (unsigned long long)regs.rflags,
					 (unsigned long long)sregs.cr2, (unsigned long long)sregs.cr3,
					 sregs.cs.selector);
				break;
			}
			continue;
		}
		if (r == -EFAULT && vm->efault_fn) {
			/* KVM could not reach host memory behind a memslot and did not
			 * say where (no KVM_EXIT_MEMORY_FAULT): e.g. unbound DAX slots
			 * after a restore. The handler binds what it can. */
			r = vm->efault_fn(vm->mmio_data);
			if (r > 0) {
				vm->n_efault++;
				continue;
			}
			r = r < 0 ? r : -EFAULT;
		}
		if (r < 0) {
			fail(vm, r, "KVM_RUN");
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_MEMORY_FAULT:
			r = vm->mmio_fn ? vm->mmio_fn(vm->mmio_data, run) : 0;
			if (r <= 0) {
				uint64_t mf[3];    /* flags, gpa, size: shares the exit union */

				memcpy(mf, &run->mmio, sizeof(mf));
				snprintf(vm->why, sizeof(vm->why), "memory fault at gpa 0x%llx: %s",
					 (unsigned long long)mf[1], r < 0 ? strerror(-r) : "nobody's");
				goto out;
			}
			vm->n_memfault++;
			break;
		case KVM_EXIT_IO:
			vm->n_io++;
			port_io(vm, run);
			break;
		case KVM_EXIT_MMIO:
			vm->n_mmio++;
			if (lx_pci_mmio(&vm->pci, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
					run->mmio.is_write))
				break;
			r = vm->mmio_fn ? vm->mmio_fn(vm->mmio_data, run) : 0;
			if (r < 0) {
				snprintf(vm->why, sizeof(vm->why), "MMIO %s at 0x%llx: %s",
					 run->mmio.is_write ? "write" : "read",
					 (unsigned long long)run->mmio.phys_addr, strerror(-r));
				goto out;
			}
			if (!r) {
				vm->n_unclaimed_mmio++;
				if (!run->mmio.is_write)
					memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
			}
			break;
		case KVM_EXIT_SHUTDOWN:
			res = LX_RUN_SHUTDOWN;
			snprintf(vm->why, sizeof(vm->why), "the guest shut down (reset or triple fault)");
			goto out;
		case KVM_EXIT_HLT:
			res = LX_RUN_SHUTDOWN;
			snprintf(vm->why, sizeof(vm->why), "the guest halted");
			goto out;
		case KVM_EXIT_INTERNAL_ERROR: {
			struct kvm_regs regs = { 0 };

			mk_kvm_get_regs(vm->vcpu_fd, &regs);
			snprintf(vm->why, sizeof(vm->why),
				 "KVM internal error %u (data %llx %llx) at rip 0x%llx",
				 run->internal.suberror,
				 (unsigned long long)(run->internal.ndata > 0 ? run->internal.data[0] : 0),
				 (unsigned long long)(run->internal.ndata > 1 ? run->internal.data[1] : 0),
				 (unsigned long long)regs.rip);
			goto out;
		}
		default:
			snprintf(vm->why, sizeof(vm->why), "unexpected KVM exit %u", run->exit_reason);
			goto out;
		}
	}
out:
	timer_delete(timer);
	cur_run = NULL;
	sigaction(sig, &old_sa, NULL);
	return res;
}
