/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* KVM ioctl wrappers: each returns a value >= 0 or -errno. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "uapi.h"

/* Open /dev/kvm (or $MEMKIT_KVM_DEV) and check the API version; returns the fd. */
int mk_kvm_open(void);
/* A human reason for a failure of mk_kvm_open(): "no /dev/kvm", "permission denied"... */
const char *mk_kvm_strerror(int err);
int mk_kvm_check_extension(int fd, long cap);
int mk_kvm_create_vm(int kvm_fd);
int mk_kvm_create_vcpu(int vm_fd, unsigned id);
/* Size of the struct kvm_run mapping for vCPUs. */
int mk_kvm_vcpu_mmap_size(int kvm_fd);
int mk_kvm_set_memslot(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
		       uint64_t size, void *hva);
int mk_kvm_delete_memslot(int vm_fd, uint32_t slot);
/* KVM_CREATE_GUEST_MEMFD on vm_fd (flags: GUEST_MEMFD_FLAG_*): the new fd (close-on-exec). */
int mk_kvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags);
/* KVM_SET_USER_MEMORY_REGION2: a memslot backed by guest_memfd gmem_fd from gmem_off
 * (flags must hold KVM_MEM_GUEST_MEMFD); hva is where the host maps it, if anywhere. */
int mk_kvm_set_memslot_gmem(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
			    uint64_t size, void *hva, int gmem_fd, uint64_t gmem_off);
/* bitmap: one bit per page of the slot, (npages + 63) / 64 u64 words, cleared on read. */
int mk_kvm_get_dirty_log(int vm_fd, uint32_t slot, uint64_t *bitmap);
int mk_kvm_run(int vcpu_fd);
int mk_kvm_get_regs(int vcpu_fd, struct kvm_regs *regs);
int mk_kvm_set_regs(int vcpu_fd, const struct kvm_regs *regs);
int mk_kvm_get_sregs(int vcpu_fd, struct kvm_sregs *sregs);
int mk_kvm_set_sregs(int vcpu_fd, const struct kvm_sregs *sregs);
