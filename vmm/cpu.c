/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: CPUID and the registers of flat 32-bit and long mode (cpu.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/kvm.h"
#include "vmm/cpu.h"

#define CR0_PE   (1u << 0)
#define CR0_ET   (1u << 4)
#define CR0_PG   (1u << 31)
#define CR4_PAE  (1u << 5)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

#define SEG_CODE 0x0b           /* execute/read, accessed */
#define SEG_DATA 0x03           /* read/write, accessed */

struct kvm_cpuid2 *vmm_cpu_supported_cpuid(int kvm_fd)
{
	const unsigned nent = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(struct kvm_cpuid_entry2));

	if (!cpuid)
		return NULL;
	cpuid->nent = nent;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		int e = errno;

		free(cpuid);
		errno = e;
		return NULL;
	}
	return cpuid;
}

/* The supported CPUID, fetched once (each VM's open is measured by bench-memcheck). */
static const struct kvm_cpuid2 *supported_once(int kvm_fd)
{
	static struct kvm_cpuid2 *cached;
	struct kvm_cpuid2 *c = __atomic_load_n(&cached, __ATOMIC_ACQUIRE), *expected = NULL;

	if (c)
		return c;
	c = vmm_cpu_supported_cpuid(kvm_fd);
	if (!c)
		return NULL;
	if (!__atomic_compare_exchange_n(&cached, &expected, c, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		free(c);            /* another thread's copy won */
		c = expected;
	}
	return c;
}

static void linux_cpuid(struct kvm_cpuid2 *cpuid)
{
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		/*
		 * Hide BMI1/BMI2/ADX (CPUID.7.0:EBX bits 3, 8, 19). Software KVMs such
		 * as PVM emulate the guest's CPL-0 code instruction by instruction,
		 * and their emulator stops at VEX-encoded BMI2 (the kernel's zstd
		 * picks them at run time when CPUID offers them).
		 */
		if (e->function == 7 && e->index == 0)
			e->ebx &= ~((1u << 3) | (1u << 8) | (1u << 19));
		/* "Running on a hypervisor": without it Linux never looks for
		 * KVM's leaves (kvmclock gives the TSC frequency; calibrating
		 * against the PIT fails under emulation). */
		if (e->function == 1) {
			e->ecx |= 1u << 31;
			e->ebx &= 0x00ffffffu;    /* initial APIC ID: vCPU 0 */
		}
		/* Topology leaves carry the x2APIC ID in EDX: ours is 0. */
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = 0;
	}
}

int vmm_cpu_set_cpuid(struct vmm_vm *vm, unsigned flags, struct vmm_err *e)
{
	const struct kvm_cpuid2 *sup = supported_once(vm->kvm_fd);
	struct kvm_cpuid2 *cpuid;
	size_t size;
	int r = 0;

	if (!sup)
		return vmm_fail_sys(e, errno ? -errno : -ENOMEM, "KVM_GET_SUPPORTED_CPUID");
	size = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	cpuid = malloc(size);
	if (!cpuid)
		return vmm_fail_sys(e, -ENOMEM, "CPUID");
	memcpy(cpuid, sup, size);
	if (flags & VMM_CPUID_LINUX)
		linux_cpuid(cpuid);
	if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
		r = vmm_fail_sys(e, -errno, "KVM_SET_CPUID2");
	free(cpuid);
	return r;
}

void vmm_cpu_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl,
			  bool long_mode)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->dpl = dpl;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = long_mode;
	s->db = !long_mode;
}

int vmm_cpu_flat32(struct vmm_vm *vm, uint64_t entry, const void *code, size_t len,
		   struct vmm_err *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int r;

	if (entry > vm->ram_size || len > vm->ram_size - entry)
		return vmm_fail(e, -EINVAL, "%zu bytes of code at 0x%llx: outside RAM", len,
				(unsigned long long)entry);
	memcpy(vm->ram + entry, code, len);
	vmm_vm_ram_written(vm, entry, len);

	r = mk_kvm_get_sregs(vm->vcpu_fd, &sregs);
	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_GET_SREGS");
	vmm_cpu_flat_segment(&sregs.cs, 0x08, SEG_CODE, 0, false);
	vmm_cpu_flat_segment(&sregs.ds, 0x10, SEG_DATA, 0, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 |= CR0_PE;                  /* paging off */
	r = mk_kvm_set_sregs(vm->vcpu_fd, &sregs);
	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_SET_SREGS (flat 32-bit)");

	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rsp = vm->ram_size;
	regs.rflags = 2;
	r = mk_kvm_set_regs(vm->vcpu_fd, &regs);
	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_SET_REGS");
	return 0;
}

void vmm_cpu_identity_map(uint8_t *ram, uint64_t pml4, uint64_t pdpt, uint64_t pd, unsigned npd,
			  bool user)
{
	uint64_t *l4 = (uint64_t *)(ram + pml4), *l3 = (uint64_t *)(ram + pdpt);
	uint64_t *l2 = (uint64_t *)(ram + pd);
	uint64_t flags = user ? 7 : 3;        /* present, writable (, user) */

	memset(l4, 0, 4096);
	memset(l3, 0, 4096);
	l4[0] = pdpt | flags;
	for (unsigned i = 0; i < npd; i++)
		l3[i] = (pd + i * 0x1000ull) | flags;
	for (uint64_t i = 0; i < npd * 512ull; i++)
		l2[i] = (i << 21) | flags | 0x80;     /* a 2 MiB page */
}

void vmm_cpu_identity_map_written(const struct vmm_vm *vm, uint64_t pml4, uint64_t pdpt,
				  uint64_t pd, unsigned npd)
{
	vmm_vm_ram_written(vm, pml4, 4096);
	vmm_vm_ram_written(vm, pdpt, 4096);
	vmm_vm_ram_written(vm, pd, npd * 4096ull);
}

int vmm_cpu_long_mode(struct vmm_vm *vm, const struct vmm_long_mode *lm, struct vmm_err *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int r;

	r = mk_kvm_get_sregs(vm->vcpu_fd, &sregs);
	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_GET_SREGS");
	vmm_cpu_flat_segment(&sregs.cs, lm->cs, SEG_CODE, lm->dpl, true);
	vmm_cpu_flat_segment(&sregs.ds, lm->ds, SEG_DATA, lm->dpl, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = lm->gdt;
	sregs.gdt.limit = (uint16_t)(lm->gdt_entries * 8 - 1);
	sregs.cr3 = lm->cr3;
	sregs.cr4 = CR4_PAE;
	sregs.cr0 = CR0_PG | CR0_ET | CR0_PE | lm->cr0_extra;
	sregs.efer = EFER_LME | EFER_LMA;
	r = mk_kvm_set_sregs(vm->vcpu_fd, &sregs);
	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_SET_SREGS (long mode)");
	memset(&regs, 0, sizeof(regs));
	regs.rip = lm->rip;
	regs.rsp = lm->rsp;
	regs.rsi = lm->rsi;
	regs.rflags = lm->rflags;
	r = mk_kvm_set_regs(vm->vcpu_fd, &regs);
	if (r < 0)
		return vmm_fail_sys(e, r, "KVM_SET_REGS");
	return 0;
}
