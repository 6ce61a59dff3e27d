/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one tiny KVM VM that memkit's tools and tests build on: a VM with
 * RAM at guest-physical 0 (memslot 0) and one vCPU with its kvm_run
 * mapped. memcheck-guest puts its long-mode guest on it, daxsnap replay
 * and the KVM tests a flat 32-bit one (tinyvm_flat32). Callers add their
 * own memslots (1 and up) for the memory under test.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

struct tinyvm {
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	void *mem;              /* mem_size bytes of RAM at gpa 0 */
	size_t mem_size;
	bool own_kvm;           /* kvm_fd opened here (closed by tinyvm_close) */
};

/*
 * Create it on kvm_fd (borrowed), or on /dev/kvm (or $MEMKIT_KVM_DEV)
 * opened here if kvm_fd < 0, with mem_size bytes of anonymous RAM.
 * Returns 0, or -errno with *why a short reason ("KVM_CREATE_VM failed",
 * the device's error...). The struct is usable with tinyvm_close() either way.
 */
int tinyvm_open(struct tinyvm *t, int kvm_fd, size_t mem_size, const char **why);
void tinyvm_close(struct tinyvm *t);

/*
 * Copy code to gpa entry and start the vCPU there in 32-bit protected
 * mode without paging, flat 4 GiB segments (so it can reach any gpa below
 * 4 GiB), esp at the top of RAM. -EINVAL if the code does not fit.
 */
int tinyvm_flat32(struct tinyvm *t, uint64_t entry, const void *code, size_t len);

/*
 * A flat segment (base 0, 4 GiB limit, present, DPL 0, granular) with the
 * given selector and type; long_mode makes it a 64-bit code segment (L set,
 * D/B clear), otherwise a 32-bit one (D/B set). Callers adjust dpl.
 */
void tinyvm_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool long_mode);

/* KVM_GET_SUPPORTED_CPUID into a new buffer (free() it); NULL with errno set on failure. */
struct kvm_cpuid2 *tinyvm_supported_cpuid(int kvm_fd);

/* KVM_RUN once: the exit reason, or -errno. */
int tinyvm_run(struct tinyvm *t);
