/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM in the tests: whether and where KVM cases run (natively, or in
 * memkit's microVM), and the VM they use (vmm/vm.h, vmm/cpu.h: one vCPU in
 * flat 32-bit protected mode, so test guests can address any gpa below
 * 4 GiB; tests hand it code bytes and memory slots and inspect exits).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "vmm/cpu.h"

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
