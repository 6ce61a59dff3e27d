/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: the vCPU's starting state. Two modes: flat 32-bit protected mode
 * without paging (daxsnap replay, the KVM tests: any gpa below 4 GiB is
 * reachable), and 64-bit long mode over identity-mapped 2 MiB pages
 * (memcheck-guest's program, a Linux kernel's 64-bit entry). CPUID is the
 * host KVM's, optionally adjusted for a Linux guest.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "vmm/vm.h"

/* Flat 4 GiB GDT descriptors (what vmm_cpu_flat_segment() loads into a segment register). */
#define VMM_GDT_CODE64(dpl) (0x00af9b000000ffffull | (uint64_t)(dpl) << 45)
#define VMM_GDT_DATA(dpl)   (0x00cf93000000ffffull | (uint64_t)(dpl) << 45)

/* KVM_GET_SUPPORTED_CPUID into a new buffer (free() it); NULL with errno set on failure. */
struct kvm_cpuid2 *vmm_cpu_supported_cpuid(int kvm_fd);

/*
 * For a Linux guest: hide BMI1/BMI2/ADX (software KVMs cannot emulate them
 * at CPL 0), say "running on a hypervisor" (so Linux finds kvmclock), and
 * APIC ID 0 in every leaf that carries one.
 */
#define VMM_CPUID_LINUX 0x1u
/* KVM_SET_CPUID2 with the host KVM's supported CPUID (fetched once per process), adjusted. */
int vmm_cpu_set_cpuid(struct vmm_vm *vm, unsigned flags, struct vmm_err *e);

/*
 * A flat segment (base 0, 4 GiB limit, present, granular) with the given
 * selector, type and privilege level; long_mode makes it a 64-bit code
 * segment (L set, D/B clear), otherwise a 32-bit one (D/B set).
 */
void vmm_cpu_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl,
			  bool long_mode);

/*
 * Copy code to gpa entry and start the vCPU there in 32-bit protected
 * mode without paging, flat segments, esp at the top of RAM. -EINVAL if
 * the code does not fit in RAM; 0 or -errno (e, which may be NULL).
 */
int vmm_cpu_flat32(struct vmm_vm *vm, uint64_t entry, const void *code, size_t len,
		   struct vmm_err *e);

/*
 * Identity-map [0, npd GiB) with 2 MiB pages: one PML4 page, one PDPT
 * page and npd page directories from pd (consecutive pages), in guest
 * RAM at gpa 0 (ram). user: pages accessible at CPL 3 too.
 */
void vmm_cpu_identity_map(uint8_t *ram, uint64_t pml4, uint64_t pdpt, uint64_t pd, unsigned npd,
			  bool user);
/* Report the pages vmm_cpu_identity_map() wrote into vm's RAM (vmm_vm_ram_written()). */
void vmm_cpu_identity_map_written(const struct vmm_vm *vm, uint64_t pml4, uint64_t pdpt,
				  uint64_t pd, unsigned npd);

/* Long mode: CR0 PE|ET|PG, CR4 PAE, EFER LME|LMA, and these. */
struct vmm_long_mode {
	uint16_t cs, ds;        /* selectors of the GDT's code and data descriptors */
	uint8_t dpl;            /* their privilege level (and the CPL the vCPU starts at) */
	uint64_t gdt;           /* gpa of the GDT, gdt_entries descriptors long */
	unsigned gdt_entries;
	uint64_t cr3;           /* the PML4 (vmm_cpu_identity_map) */
	uint64_t cr0_extra;     /* e.g. NE, WP */
	uint64_t rip, rsp, rsi, rflags;
};
#define VMM_CR0_NE (1u << 5)
#define VMM_CR0_WP (1u << 16)
int vmm_cpu_long_mode(struct vmm_vm *vm, const struct vmm_long_mode *lm, struct vmm_err *e);
