/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: the VMM core. One VM, one vCPU, guest RAM
 * a libsandbox region bound at gpa 0, the in-kernel irqchip (PIC, IOAPIC,
 * LAPIC) and PIT, a 16550A console on 0x3f8/IRQ 4, PCI bus 0 (pci.h), and
 * a run loop dispatching port and MMIO exits until the guest shuts down,
 * a console line handler says stop, or the deadline passes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "sandbox.h"
#include "tools/memcheck/pci.h"
#include "tools/memcheck/serial.h"

/* Guest-physical layout above RAM. */
#define LX_GPA_PCI_MMIO  0xc0000000ull    /* 32-bit BARs */
#define LX_GPA_DAX       0x100000000ull   /* the virtio-fs cache window (64-bit BAR) */
#define LX_GPA_DAX_FIO   0x110000000ull   /* the second device's (linux-fio.h), 256 MiB aligned */
#define LX_SLOT_RAM      0
#define LX_SLOT_DAX      1
#define LX_SLOT_DAX_FIO  2

struct lx_vm {
	int kvm_fd;             /* borrowed */
	int vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	struct sbx_vm *sbx;
	struct sbx_mem *mem;    /* host view of guest RAM */
	struct sbx_guest *guest;
	uint8_t *ram;
	uint64_t ram_size;
	struct lx_serial serial;
	struct lx_pci pci;
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
	char why[256];
};

enum lx_run_result {
	LX_RUN_STOPPED,         /* line_fn asked to stop */
	LX_RUN_SHUTDOWN,        /* triple fault / reset: the guest rebooted or powered off */
	LX_RUN_TIMEOUT,
	LX_RUN_ERROR,           /* vm->why */
};

int lx_vm_open(struct lx_vm *vm, int kvm_fd, uint64_t ram_size);
void lx_vm_close(struct lx_vm *vm);
/* Host pointer to [gpa, gpa + len) of guest RAM, or NULL when outside it. */
void *lx_vm_ram(struct lx_vm *vm, uint64_t gpa, uint64_t len);
enum lx_run_result lx_vm_run(struct lx_vm *vm, uint64_t timeout_ns);
/* The last n bytes of the console (for failure reports). */
const char *lx_vm_console_tail(const struct lx_vm *vm, size_t n);
