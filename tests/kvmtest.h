/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A tiny real KVM VM for tests: one vCPU in 32-bit flat protected mode
 * (no paging, 4 GiB segments), so test guests can address any GPA below
 * 4 GiB. Tests hand it code bytes and a memory slot and inspect exits.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

struct kvmtest_vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	void *mem;          /* low memory: code at gpa 0, stack at the top */
	size_t mem_size;
};

/*
 * Create the VM with mem_size bytes of RAM at gpa 0 in memslot 0. On
 * failure returns -errno and sets *why to a human reason; tests turn
 * -ENOENT/-EACCES into a SKIP with that reason.
 */
int kvmtest_vm_open(struct kvmtest_vm *t, size_t mem_size, const char **why);
void kvmtest_vm_close(struct kvmtest_vm *t);

/* Copy code to gpa entry and point the vCPU at it (flat 32-bit mode, esp at top of RAM). */
int kvmtest_load(struct kvmtest_vm *t, uint64_t entry, const void *code, size_t len);

/* KVM_RUN once; returns the exit reason or -errno. */
int kvmtest_run(struct kvmtest_vm *t);

/*
 * If /dev/kvm cannot be used, call g_test_skip() with the reason and return
 * false; otherwise say which kernel the case runs on ("# kernel RELEASE").
 */
bool kvmtest_available(void);

/* Can this process create a VM (open /dev/kvm, KVM_CREATE_VM)? why: the reason not. */
bool kvmtest_native(const char **why);

/*
 * Where make check also runs this program in memkit's microVM
 * (tests/microvm-*.sh, $MEMKIT_MICROVM_KERNELS) and this host has no usable
 * /dev/kvm, its KVM cases run there, not here: true, after saying so once.
 * False where they run here (native KVM, inside the microVM, or no microVM
 * configured: then they SKIP with the reason).
 */
bool kvmtest_elsewhere(void);

/* g_test_add_func() for a case that needs KVM, unless kvmtest_elsewhere(). */
void kvmtest_add_func(const char *path, void (*fn)(void));
