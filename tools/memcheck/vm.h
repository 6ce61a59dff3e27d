/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest: the guest program (memcheck-guest.S) on a vmm/ VM, its
 * vCPU in 64-bit long mode over identity-mapped 2 MiB pages, and the
 * command protocol of memcheck/proto.h on top of KVM_RUN.
 *
 * Every call is bounded by vmm's deadline, so a guest that hangs makes
 * mc_vm_call() return MC_RUN_TIMEOUT instead of hanging the tool.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "vmm/vm.h"

struct mc_vm;

/*
 * Called for an MMIO or memory-fault exit (e.g. libdax's lazy rebind).
 * Return 1 if handled (the vCPU re-enters), 0 if not ours, -errno.
 */
typedef int (*mc_exit_fn)(void *data, struct kvm_run *run);
/*
 * Called when KVM_RUN fails with EFAULT without saying where (no
 * KVM_EXIT_MEMORY_FAULT, as on software KVMs like PVM): the host memory
 * behind a guest page is missing, e.g. an unbound DAX slot. By the guest
 * program's convention every access to test memory is in [rdi, rdi + 32)
 * and the map is identity, so gpa is the page of rdi (or of rdi + 31;
 * both are offered). Return 1
 * if the page was bound (the vCPU re-enters), 0 if not ours, -errno.
 */
typedef int (*mc_fault_fn)(void *data, uint64_t gpa);

struct mc_vm {
	struct vmm_vm tv;       /* VM, vCPU, kvm_run; its RAM is the low RAM (kvm_fd borrowed) */
	uint8_t *low;           /* tv.ram: MC_LOW_SIZE bytes of control RAM at gpa 0 */
	uint64_t timeout_ns;    /* per call */
	mc_exit_fn exit_fn;
	mc_fault_fn fault_fn;
	void *exit_data;        /* for both */
	unsigned handled_exits; /* exits exit_fn handled */
	/* Around every KVM_RUN (e.g. sbx_guest_enter/exit); enter may refuse (-errno). */
	int (*enter_fn)(void *data);
	void (*leave_fn)(void *data);
	void *run_data;
	uint64_t t_open_ns;     /* mk_now_ns() when mc_vm_open() started */
	uint64_t t_hello_ns;    /* ... when the guest's first OUT arrived */
	struct vmm_err err;     /* why the last open or call failed */
};

enum mc_run_result {
	MC_RUN_DONE = 0,        /* command completed; status in *status */
	MC_RUN_MMIO,            /* unhandled MMIO exit: see vm->run->mmio; mc_vm_resume() continues */
	MC_RUN_TIMEOUT,         /* deadline passed: the guest hangs */
	MC_RUN_ERROR,           /* anything else (shutdown, internal error, bad exit); vm->err */
};

/*
 * Create the VM on kvm_fd, with low RAM at gpa 0 (slot 0), page tables,
 * GDT, the guest program, long-mode registers; runs the guest to its
 * first OUT. Returns 0 or -errno with vm->err set.
 */
int mc_vm_open(struct mc_vm *vm, int kvm_fd, uint64_t timeout_ns);
void mc_vm_close(struct mc_vm *vm);

/* KVM memslot numbers for callers' memory (slot 0 is low RAM). */
#define MC_SLOT_TEST 1
#define MC_SLOT_DAX  2
#define MC_SLOT_SHM  3

struct mc_cmd {
	uint64_t op, addr, len, seed, arg;
	uint64_t res[4];
};

/*
 * Hand cmd to the guest and run until it reports. On MC_RUN_DONE the
 * results are copied (once) into cmd->res and *status is the guest's
 * status byte (MC_ST_*).
 */
enum mc_run_result mc_vm_call(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status);
/* Continue after MC_RUN_MMIO (for a read, fill vm->run->mmio.data first). */
enum mc_run_result mc_vm_resume(struct mc_vm *vm, struct mc_cmd *cmd, unsigned *status);

/* Convenience: call and require DONE with MC_ST_OK; else -EIO with vm->err. */
int mc_vm_do(struct mc_vm *vm, struct mc_cmd *cmd);


/* The guest program's bytes (memcheck-guest.S). */
extern const uint8_t mc_guest_start[], mc_guest_end[];
