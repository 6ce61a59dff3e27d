/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: one KVM VM with one vCPU (its kvm_run mapped) and RAM at
 * guest-physical 0 in memslot 0: the VM every memkit guest runs in.
 * memcheck-guest's checks put a long-mode program on it (cpu.h), the
 * linux check a whole PC (machine.h), daxsnap replay and the KVM tests
 * a flat 32-bit guest. Callers add their own memslots (1 and up).
 *
 * A deadline bounds a run: a per-thread timer signal sets the vCPU's
 * immediate_exit, so a hung guest ends KVM_RUN with -EINTR instead of
 * hanging the tool. Not thread-safe: one thread at a time uses a VM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <linux/kvm.h>

#include "vmm/err.h"

struct vmm_vm {
	int kvm_fd;             /* borrowed, or opened by vmm_vm_open (own_kvm) */
	int vm_fd;
	int vcpu_fd;            /* vCPU 0 */
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;           /* host view of the RAM at gpa 0, ram_size bytes */
	uint64_t ram_size;
	/*
	 * Told of every host write into the RAM (vmm_vm_ram_written), if set:
	 * a RAM that is a libsandbox region (vmm_machine_sbx_ram) records them
	 * so its restore stays O(dirty). NULL for plain anonymous RAM.
	 */
	void (*ram_written_fn)(void *data, uint64_t gpa, uint64_t len);
	void *ram_written_data;
	bool own_kvm, own_ram;
	bool has_timer;         /* timer (the deadline) created, for thread timer_tid */
	timer_t timer;
	int timer_tid;
};

/* In-kernel PIC, IOAPIC and LAPIC, and the PIT (created before the vCPU, as KVM requires). */
#define VMM_VM_IRQCHIP 0x1u

/* A VM that holds nothing: fds -1 (vmm_vm_close() on it does nothing). */
void vmm_vm_init(struct vmm_vm *vm);
/*
 * Create the VM on kvm_fd (borrowed), or on /dev/kvm ($MEMKIT_KVM_DEV)
 * opened here if kvm_fd < 0; ram_size bytes of anonymous RAM at gpa 0
 * (memslot 0), or with ram_size 0 none: the caller binds memslot 0 and
 * sets ram and ram_size itself. Then vCPU 0 with its kvm_run. 0 or -errno
 * (e); close the VM either way.
 */
int vmm_vm_open(struct vmm_vm *vm, int kvm_fd, uint64_t ram_size, unsigned flags,
		struct vmm_err *e);
void vmm_vm_close(struct vmm_vm *vm);

/* Host pointer to [gpa, gpa + len) of the RAM at gpa 0, or NULL when outside it. */
void *vmm_vm_ram(const struct vmm_vm *vm, uint64_t gpa, uint64_t len);
/*
 * The host wrote [gpa, gpa + len) of the RAM through vm->ram: tell
 * ram_written_fn (if any). Every host-side store into guest RAM (loading,
 * page tables, virtqueue used rings, device replies) is followed by this
 * call; reads and the guest's own writes (KVM's dirty log) need none.
 */
void vmm_vm_ram_written(const struct vmm_vm *vm, uint64_t gpa, uint64_t len);
/* The same for a host pointer p into the RAM (p - vm->ram is the gpa). */
void vmm_vm_ram_written_at(const struct vmm_vm *vm, const void *p, uint64_t len);

/* KVM_RUN once: the exit reason, or -errno (-EINTR: a signal, or the deadline passed). */
int vmm_vm_run(struct vmm_vm *vm);
/*
 * Arm the deadline: ns from now, the calling thread's KVM_RUN on vm
 * returns -EINTR and vmm_vm_expired() says so (until the next arm). ns 0
 * disarms. 0 or -errno (e).
 */
int vmm_vm_deadline(struct vmm_vm *vm, uint64_t ns, struct vmm_err *e);
bool vmm_vm_expired(const struct vmm_vm *vm);

/* "IO", "MMIO", "HLT"... for a KVM exit reason ("other" for the rest). */
const char *vmm_exit_name(uint32_t reason);
