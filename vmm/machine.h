/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: a small PC for a Linux guest. One VM and vCPU (vm.h) with guest
 * RAM a libsandbox region bound at gpa 0, the in-kernel irqchip (PIC,
 * IOAPIC, LAPIC) and PIT, a 16550A console on 0x3f8/IRQ 4 (serial.h), PCI
 * bus 0 (pci.h), and a run loop dispatching port and MMIO exits until the
 * guest shuts down, a console line handler says stop, or the deadline
 * passes. Devices (virtio-pci.h) are added on the bus by the caller.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "sandbox.h"
#include "vmm/err.h"
#include "vmm/pci.h"
#include "vmm/serial.h"
#include "vmm/vm.h"

#define VMM_MACHINE_SLOT_RAM 0   /* the callers' memslots are 1 and up */

struct vmm_machine {
	struct vmm_vm vm;       /* vm.ram: the host view of guest RAM (writes reported, vm.h) */
	struct sbx_vm *sbx;
	struct sbx_mem *mem;    /* guest RAM */
	struct sbx_guest *guest;
	struct vmm_serial serial;
	struct vmm_pci pci;
	/* MMIO that no BAR claimed (e.g. the DAX window's lazy rebind): 1 handled, 0 not, -errno. */
	int (*mmio_fn)(void *data, struct kvm_run *run);
	void *mmio_data;
	/* KVM_RUN failed with EFAULT without saying where: >0 retry, else fail (data: mmio_data). */
	int (*efault_fn)(void *data);
	/* Each complete console line; return true to stop the run. */
	bool (*line_fn)(void *data, const char *line);
	void *line_data;
	bool echo;              /* copy the console to stderr */
	char line[512];
	size_t line_len;
	char *console;          /* the whole console output (bounded) */
	size_t console_len, console_cap;
	bool stop;
	uint64_t n_io, n_mmio, n_unclaimed_mmio, n_memfault, n_efault;
};

enum vmm_machine_result {
	VMM_MACHINE_STOPPED,    /* line_fn asked to stop */
	VMM_MACHINE_SHUTDOWN,   /* triple fault / reset / halt: the guest rebooted or powered off (e) */
	VMM_MACHINE_TIMEOUT,    /* e says where the guest was */
	VMM_MACHINE_ERROR,      /* e */
};

/*
 * Make the region mem vm's RAM at gpa 0 (vm->ram, ram_size): its raw host
 * pointer taken with will_mark_dirty (sbx_mem_host_ptr(3)), and every
 * host write vmm reports (vmm_vm_ram_written) marked dirty in mem, so
 * restoring mem stays O(dirty). Binding it into the VM is the caller's
 * (guest writes reach the record through the binding's KVM dirty log,
 * SBX_BIND_DIRTY_LOG). -EINVAL if mem has no host address (guest_memfd).
 */
int vmm_machine_sbx_ram(struct vmm_vm *vm, struct sbx_mem *mem);
/* ram_size bytes of guest RAM. 0 or -errno (e); close the machine either way. */
int vmm_machine_open(struct vmm_machine *m, int kvm_fd, uint64_t ram_size, struct vmm_err *e);
void vmm_machine_close(struct vmm_machine *m);
/* Run the vCPU (set up by the caller, e.g. vmm_boot_vcpu()) for at most timeout_ns. */
enum vmm_machine_result vmm_machine_run(struct vmm_machine *m, uint64_t timeout_ns,
					struct vmm_err *e);
/* The last n bytes of the console (for failure reports). */
const char *vmm_machine_console_tail(const struct vmm_machine *m, size_t n);
