/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: the PC, its devices' dispatch and the run loop (machine.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kvm.h"
#include "vmm/machine.h"

#define CONSOLE_MAX (8u << 20)
#define COM1        0x3f8
#define COM1_IRQ    4

static void console_out(void *data, const char *buf, size_t len)
{
	struct vmm_machine *m = data;

	if (m->echo)
		fwrite(buf, 1, len, stderr);
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (m->console_len + 1 < m->console_cap)
			m->console[m->console_len++] = ch;
		if (ch == '\r')
			continue;
		if (ch != '\n') {
			if (m->line_len + 1 < sizeof(m->line))
				m->line[m->line_len++] = ch;
			continue;
		}
		m->line[m->line_len] = '\0';
		m->line_len = 0;
		if (m->line_fn && m->line_fn(m->line_data, m->line))
			m->stop = true;
	}
	if (m->console_len < m->console_cap)
		m->console[m->console_len] = '\0';
}

static void sbx_ram_written(void *data, uint64_t gpa, uint64_t len)
{
	/* In range by construction (vmm_vm_ram bounds every pointer): cannot fail. */
	(void)sbx_mem_mark_dirty(data, gpa, len);
}

int vmm_machine_sbx_ram(struct vmm_vm *vm, struct sbx_mem *mem)
{
	/*
	 * The raw pointer comes with the promise to report every host write
	 * (sbx_mem_host_ptr(3)): vmm's stores into RAM all go through
	 * vmm_vm_ram_written(), which marks them dirty here, so the region's
	 * record stays complete and a restore stays O(dirty).
	 */
	uint8_t *p = sbx_mem_host_ptr(mem, true);

	if (!p)
		return -EINVAL;
	vm->ram = p;
	vm->ram_size = sbx_mem_size(mem);
	vm->ram_written_fn = sbx_ram_written;
	vm->ram_written_data = mem;
	return 0;
}

/* Guest RAM: a libsandbox region bound as memslot 0. */
static int sandbox_ram(struct vmm_machine *m, uint64_t ram_size, struct vmm_err *e)
{
	int r = sbx_vm_from_fd(m->vm.vm_fd, &m->sbx);

	if (r < 0)
		return vmm_fail_sys(e, r, "libsandbox: sbx_vm_from_fd");
	r = sbx_mem_new(ram_size, &m->mem);
	if (r < 0)
		return vmm_fail_sys(e, r, "libsandbox: sbx_mem_new (guest RAM)");
	r = sbx_mem_split(m->mem, &m->guest);
	if (r < 0)
		return vmm_fail_sys(e, r, "libsandbox: sbx_mem_split");
	/* Loading, virtqueues and device replies store through the raw pointer; vm.c reports them. */
	r = vmm_machine_sbx_ram(&m->vm, m->mem);
	if (r < 0)
		return vmm_fail_sys(e, r, "libsandbox: sbx_mem_host_ptr (guest RAM)");
	/*
	 * No dirty log: nothing snapshots this RAM today, and the log would
	 * cost the guest its huge-page mappings. A restore of it would then
	 * remap the whole region; with SBX_BIND_DIRTY_LOG here it would be
	 * O(dirty), the host's writes being in the record already.
	 */
	r = sbx_vm_bind(m->sbx, m->mem, VMM_MACHINE_SLOT_RAM, 0, 0);
	if (r < 0)
		return vmm_fail_sys(e, r, "libsandbox: sbx_vm_bind (guest RAM)");
	return 0;
}

int vmm_machine_open(struct vmm_machine *m, int kvm_fd, uint64_t ram_size, struct vmm_err *e)
{
	int r;

	memset(m, 0, sizeof(*m));
	vmm_vm_init(&m->vm);
	m->console_cap = CONSOLE_MAX;
	m->console = calloc(1, m->console_cap);
	if (!m->console)
		return vmm_fail_sys(e, -ENOMEM, "console buffer");
	r = vmm_vm_open(&m->vm, kvm_fd, 0, VMM_VM_IRQCHIP, e);
	if (r < 0)
		return r;
	r = sandbox_ram(m, ram_size, e);
	if (r < 0)
		return r;
	vmm_serial_init(&m->serial, COM1, COM1_IRQ, m->vm.vm_fd, console_out, m);
	vmm_pci_init(&m->pci);
	return 0;
}

void vmm_machine_close(struct vmm_machine *m)
{
	sbx_vm_free(m->sbx);            /* deletes the RAM memslot */
	if (m->guest)
		sbx_guest_free(m->guest);
	sbx_mem_free(m->mem);
	m->sbx = NULL;
	m->guest = NULL;
	m->mem = NULL;
	vmm_vm_close(&m->vm);
	free(m->console);
	m->console = NULL;
}

const char *vmm_machine_console_tail(const struct vmm_machine *m, size_t n)
{
	if (!m->console)
		return "";
	return m->console + (m->console_len > n ? m->console_len - n : 0);
}

/* ---- exits ------------------------------------------------------------------ */

static void port_io(struct vmm_machine *m, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool w = run->io.direction == KVM_EXIT_IO_OUT;
	uint16_t port = run->io.port;
	unsigned size = run->io.size;

	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (port >= COM1 && port < COM1 + 8) {
			vmm_serial_io(&m->serial, port - COM1, data, w);
		} else if (port >= 0xcf8 && port < 0xd00) {
			vmm_pci_io(&m->pci, port, data, size, w);
		} else if (!w) {
			/* Nothing there. The RTC's status reads 0 so "update in progress" is never set. */
			memset(data, port == 0x71 ? 0 : 0xff, size);
		}
	}
}

/* A BAR's, else mmio_fn's; nobody's reads all ones. 0 handled, -errno (e). */
static int mmio(struct vmm_machine *m, struct kvm_run *run, struct vmm_err *e)
{
	int r;

	m->n_mmio++;
	if (vmm_pci_mmio(&m->pci, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			 run->mmio.is_write))
		return 0;
	r = m->mmio_fn ? m->mmio_fn(m->mmio_data, run) : 0;
	if (r < 0)
		return vmm_fail(e, r, "MMIO %s at 0x%llx: %s", run->mmio.is_write ? "write" : "read",
				(unsigned long long)run->mmio.phys_addr, strerror(-r));
	if (!r) {
		m->n_unclaimed_mmio++;
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
	}
	return 0;
}

/* KVM_EXIT_MEMORY_FAULT: mmio_fn may bind what is missing. 0 handled, -errno (e). */
static int memory_fault(struct vmm_machine *m, struct kvm_run *run, struct vmm_err *e)
{
	int r = m->mmio_fn ? m->mmio_fn(m->mmio_data, run) : 0;
	uint64_t mf[3];    /* flags, gpa, size: shares the exit union */

	if (r > 0) {
		m->n_memfault++;
		return 0;
	}
	memcpy(mf, &run->mmio, sizeof(mf));
	return vmm_fail(e, r < 0 ? r : -EFAULT, "memory fault at gpa 0x%llx: %s",
			(unsigned long long)mf[1], r < 0 ? strerror(-r) : "nobody's");
}

/* One exit: -1 handled (run on), else how the run ends (e). */
static int exit_of(struct vmm_machine *m, struct vmm_err *e)
{
	struct kvm_run *run = m->vm.run;
	struct kvm_regs regs = { 0 };

	switch (run->exit_reason) {
	case KVM_EXIT_MEMORY_FAULT:
		return memory_fault(m, run, e) < 0 ? VMM_MACHINE_ERROR : -1;
	case KVM_EXIT_IO:
		m->n_io++;
		port_io(m, run);
		return -1;
	case KVM_EXIT_MMIO:
		return mmio(m, run, e) < 0 ? VMM_MACHINE_ERROR : -1;
	case KVM_EXIT_SHUTDOWN:
		vmm_fail(e, -ESHUTDOWN, "the guest shut down (reset or triple fault)");
		return VMM_MACHINE_SHUTDOWN;
	case KVM_EXIT_HLT:
		vmm_fail(e, -ESHUTDOWN, "the guest halted");
		return VMM_MACHINE_SHUTDOWN;
	case KVM_EXIT_INTERNAL_ERROR:
		mk_kvm_get_regs(m->vm.vcpu_fd, &regs);
		vmm_fail(e, -EIO, "KVM internal error %u (data %llx %llx) at rip 0x%llx",
			 run->internal.suberror,
			 (unsigned long long)(run->internal.ndata > 0 ? run->internal.data[0] : 0),
			 (unsigned long long)(run->internal.ndata > 1 ? run->internal.data[1] : 0),
			 (unsigned long long)regs.rip);
		return VMM_MACHINE_ERROR;
	default:
		vmm_fail(e, -EIO, "unexpected KVM exit %u", run->exit_reason);
		return VMM_MACHINE_ERROR;
	}
}

/* The deadline passed: where the guest was (a hung kernel's RIP is the first clue). */
static enum vmm_machine_result timed_out(struct vmm_machine *m, uint64_t timeout_ns,
					 struct vmm_err *e)
{
	struct kvm_regs regs = { 0 };
	struct kvm_sregs sregs = { 0 };

	mk_kvm_get_regs(m->vm.vcpu_fd, &regs);
	mk_kvm_get_sregs(m->vm.vcpu_fd, &sregs);
	vmm_fail(e, -ETIMEDOUT, "no result within %.0f s (rip 0x%llx rsp 0x%llx rflags 0x%llx "
		 "cr2 0x%llx cr3 0x%llx, cs 0x%x)",
		 (double)timeout_ns / 1e9, (unsigned long long)regs.rip,
		 (unsigned long long)regs.rsp, (unsigned long long)regs.rflags,
		 (unsigned long long)sregs.cr2, (unsigned long long)sregs.cr3, sregs.cs.selector);
	return VMM_MACHINE_TIMEOUT;
}

/* KVM_RUN until the run ends (the deadline armed by vmm_machine_run). */
static enum vmm_machine_result run_exits(struct vmm_machine *m, uint64_t timeout_ns,
					 struct vmm_err *e)
{
	for (;;) {
		int r;

		if (m->stop)
			return VMM_MACHINE_STOPPED;
		r = sbx_guest_enter(m->guest);
		if (r < 0) {
			vmm_fail_sys(e, r, "libsandbox: sbx_guest_enter");
			return VMM_MACHINE_ERROR;
		}
		r = vmm_vm_run(&m->vm);
		sbx_guest_exit(m->guest);
		if (r == -EINTR || r == -EAGAIN) {
			if (vmm_vm_expired(&m->vm))
				return timed_out(m, timeout_ns, e);
			continue;
		}
		if (r == -EFAULT && m->efault_fn) {
			/* KVM could not reach host memory behind a memslot and did not
			 * say where (no KVM_EXIT_MEMORY_FAULT): e.g. unbound DAX slots
			 * after a restore. The handler binds what it can. */
			r = m->efault_fn(m->mmio_data);
			if (r > 0) {
				m->n_efault++;
				continue;
			}
			r = r < 0 ? r : -EFAULT;
		}
		if (r < 0) {
			vmm_fail_sys(e, r, "KVM_RUN");
			return VMM_MACHINE_ERROR;
		}
		r = exit_of(m, e);
		if (r >= 0)
			return (enum vmm_machine_result)r;
	}
}

enum vmm_machine_result vmm_machine_run(struct vmm_machine *m, uint64_t timeout_ns,
					struct vmm_err *e)
{
	enum vmm_machine_result res;

	if (vmm_vm_deadline(&m->vm, timeout_ns, e) < 0)
		return VMM_MACHINE_ERROR;
	m->stop = false;
	res = run_exits(m, timeout_ns, e);
	vmm_vm_deadline(&m->vm, 0, NULL);
	return res;
}
