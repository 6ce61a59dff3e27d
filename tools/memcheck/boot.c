/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest linux check: bzImage loading and the 64-bit entry (boot.h). */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "common/kvm.h"
#include "tools/memcheck/boot.h"
#include "vmm/cpu.h"

/* Offsets in boot_params / the setup header (boot.rst, "THE REAL-MODE KERNEL HEADER"). */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_HDR               0x1f1
#define BP_SETUP_SECTS       0x1f1
#define BP_VID_MODE          0x1fa
#define BP_HEADER_MAGIC      0x202
#define BP_VERSION           0x206
#define BP_TYPE_OF_LOADER    0x210
#define BP_LOADFLAGS         0x211
#define BP_RAMDISK_IMAGE     0x218
#define BP_RAMDISK_SIZE      0x21c
#define BP_HEAP_END_PTR      0x224
#define BP_CMD_LINE_PTR      0x228
#define BP_INITRD_ADDR_MAX   0x22c
#define BP_XLOADFLAGS        0x236
#define BP_CMDLINE_SIZE      0x238
#define BP_INIT_SIZE         0x260
#define BP_E820_TABLE        0x2d0

#define XLF_KERNEL_64        0x01
#define LOADED_HIGH          0x01
#define CAN_USE_HEAP         0x80
#define E820_RAM             1
#define E820_RESERVED        2

static int fail(struct lx_boot *b, int err, const char *msg)
{
	snprintf(b->why, sizeof(b->why), "%s", msg);
	return err;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }

static void e820(uint8_t *bp, unsigned i, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t *e = bp + BP_E820_TABLE + 20 * i;

	memcpy(e, &addr, 8);
	memcpy(e + 8, &size, 8);
	wr32(e + 16, type);
	bp[BP_E820_ENTRIES] = (uint8_t)(i + 1);
}

int lx_boot_load(uint8_t *ram, uint64_t ram_size, const uint8_t *bz, size_t bz_len,
		 const uint8_t *initrd, size_t initrd_len, const char *cmdline,
		 struct lx_boot *b)
{
	uint8_t *bp = ram + LX_BOOT_PARAMS;
	uint64_t *gdt = (uint64_t *)(ram + LX_BOOT_GDT);
	uint64_t *pml4 = (uint64_t *)(ram + LX_BOOT_PML4);
	uint64_t *pdpt = (uint64_t *)(ram + LX_BOOT_PDPT);
	uint64_t *pd = (uint64_t *)(ram + LX_BOOT_PD);
	size_t setup_len, hdr_end, cl = strlen(cmdline);
	uint64_t initrd_max, top;
	unsigned sects;

	memset(b, 0, sizeof(*b));
	if (bz_len < 0x1000 || memcmp(bz + BP_HEADER_MAGIC, "HdrS", 4))
		return fail(b, -ENOEXEC, "not a bzImage (no HdrS setup header)");
	b->version = rd16(bz + BP_VERSION);
	/* 2.12 brought xloadflags, which says whether the 64-bit entry exists. */
	if (b->version < 0x20c || !(rd16(bz + BP_XLOADFLAGS) & XLF_KERNEL_64))
		return fail(b, -ENOEXEC, "bzImage without the 64-bit entry (boot protocol < 2.12)");
	sects = bz[BP_SETUP_SECTS] ? bz[BP_SETUP_SECTS] : 4;
	setup_len = (size_t)(sects + 1) * 512;
	if (setup_len >= bz_len)
		return fail(b, -ENOEXEC, "bzImage shorter than its setup sectors");
	b->kernel_bytes = bz_len - setup_len;
	b->init_size = rd32(bz + BP_INIT_SIZE);
	/* The decompressor runs from 16 MiB (LOAD_PHYSICAL_ADDR) with init_size bytes. */
	if (ram_size < (16ull << 20) + b->init_size + initrd_len + (4ull << 20))
		return fail(b, -ENOMEM, "guest RAM too small for kernel and initramfs");
	if (cl + 1 > LX_BOOT_CMDLINE_MAX || cl + 1 > rd32(bz + BP_CMDLINE_SIZE))
		return fail(b, -E2BIG, "command line too long");

	memcpy(ram + LX_BOOT_KERNEL, bz + setup_len, b->kernel_bytes);
	b->entry = LX_BOOT_KERNEL + 0x200;      /* the 64-bit entry of the decompressor */

	/* The zero page: zeros, then the image's setup header at its offset. */
	memset(bp, 0, 4096);
	hdr_end = 0x202 + bz[0x201];      /* the header says its own length */
	memcpy(bp + BP_HDR, bz + BP_HDR, hdr_end - BP_HDR);
	wr16(bp + BP_VID_MODE, 0xffff);   /* "normal" */
	bp[BP_TYPE_OF_LOADER] = 0xff;     /* undefined loader */
	bp[BP_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	wr16(bp + BP_HEAP_END_PTR, 0xfe00);
	memcpy(ram + LX_BOOT_CMDLINE, cmdline, cl + 1);
	wr32(bp + BP_CMD_LINE_PTR, (uint32_t)LX_BOOT_CMDLINE);
	wr32(bp + BP_EXT_CMD_LINE_PTR, 0);

	/* The initramfs at the top of RAM, below what the kernel can address. */
	initrd_max = rd32(bz + BP_INITRD_ADDR_MAX);
	top = ram_size < initrd_max + 1ull ? ram_size : initrd_max + 1ull;
	if (initrd_len) {
		b->initrd_gpa = (top - initrd_len) & ~0xfffull;
		b->initrd_len = initrd_len;
		memcpy(ram + b->initrd_gpa, initrd, initrd_len);
		wr32(bp + BP_RAMDISK_IMAGE, (uint32_t)b->initrd_gpa);
		wr32(bp + BP_RAMDISK_SIZE, (uint32_t)initrd_len);
		wr32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(b->initrd_gpa >> 32));
		wr32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)initrd_len >> 32));
	}

	/* e820: conventional memory, the legacy hole (BIOS/VGA), the rest of RAM. */
	e820(bp, 0, 0, LX_BOOT_LOW_END, E820_RAM);
	e820(bp, 1, LX_BOOT_LOW_END, 0x100000 - LX_BOOT_LOW_END, E820_RESERVED);
	e820(bp, 2, 0x100000, ram_size - 0x100000, E820_RAM);

	/* Flat segments at the selectors boot.rst names: __BOOT_CS 0x10, __BOOT_DS 0x18. */
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffull;   /* 64-bit code */
	gdt[3] = 0x00cf93000000ffffull;   /* data */
	memset(pml4, 0, 3 * 4096);
	pml4[0] = LX_BOOT_PDPT | 3;
	pdpt[0] = LX_BOOT_PD | 3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x83;     /* present, writable, 2 MiB */
	return 0;
}

int lx_boot_payload(const uint8_t *bz, size_t bz_len, const uint8_t **payload, size_t *len)
{
	size_t setup_len, off, n;

	if (bz_len < 0x1000 || memcmp(bz + BP_HEADER_MAGIC, "HdrS", 4) || rd16(bz + BP_VERSION) < 0x208)
		return -ENOEXEC;
	setup_len = (size_t)((bz[BP_SETUP_SECTS] ? bz[BP_SETUP_SECTS] : 4) + 1) * 512;
	off = setup_len + rd32(bz + 0x248);     /* payload_offset, from the protected-mode start */
	n = rd32(bz + 0x24c);                   /* payload_length */
	if (n < 8 || off > bz_len || n > bz_len - off)
		return -ENOEXEC;
	*payload = bz + off;
	*len = n - 4;
	return 0;
}

int lx_boot_vmlinux(uint8_t *ram, uint64_t ram_size, const uint8_t *elf, size_t elf_len,
		    struct lx_boot *b)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;

	if (elf_len < sizeof(*eh) || memcmp(elf, ELFMAG, SELFMAG) || elf[EI_CLASS] != ELFCLASS64 ||
	    eh->e_machine != EM_X86_64 || eh->e_phoff > elf_len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > elf_len - eh->e_phoff)
		return fail(b, -ENOEXEC, "the bzImage's payload is not an x86-64 ELF vmlinux");
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(elf + eh->e_phoff) + i;

		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_offset > elf_len || ph->p_filesz > elf_len - ph->p_offset ||
		    ph->p_filesz > ph->p_memsz || ph->p_paddr > ram_size ||
		    ph->p_memsz > ram_size - ph->p_paddr ||
		    (b->initrd_len && ph->p_paddr + ph->p_memsz > b->initrd_gpa))
			return fail(b, -ENOEXEC, "vmlinux segment outside guest RAM or over the initramfs");
		memcpy(ram + ph->p_paddr, elf + ph->p_offset, ph->p_filesz);
		memset(ram + ph->p_paddr + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	}
	b->entry = eh->e_entry;     /* phys_startup_64: vmlinux's entry is physical */
	return 0;
}

int lx_boot_vcpu(int kvm_fd, int vcpu_fd, uint64_t entry, char *why, size_t why_len)
{
	struct kvm_cpuid2 *cpuid = vmm_cpu_supported_cpuid(kvm_fd);
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	const char *what = NULL;
	int r = 0;

	if (!cpuid) {
		r = -errno;
		snprintf(why, why_len, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return r;
	}
	/*
	 * Hide BMI1/BMI2/ADX (CPUID.7.0:EBX bits 3, 8, 19). Software KVMs such as
	 * PVM emulate the guest's CPL-0 code instruction by instruction, and
	 * their emulator stops at VEX-encoded BMI2 (the kernel's zstd picks
	 * them at run time when CPUID offers them). Nothing here needs them.
	 */
	for (unsigned i = 0; !what && i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

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
	if (what)
		;
	else if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
		what = "KVM_SET_CPUID2";
	if (what) {
		r = -errno;
		goto out;
	}
	r = mk_kvm_get_sregs(vcpu_fd, &sregs);
	if (r < 0) {
		what = "KVM_GET_SREGS";
		goto out;
	}
	vmm_cpu_flat_segment(&sregs.cs, 0x10, 0x0b, 0, true);
	vmm_cpu_flat_segment(&sregs.ds, 0x18, 0x03, 0, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = LX_BOOT_GDT;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr3 = LX_BOOT_PML4;
	sregs.cr4 = 1u << 5;                     /* PAE */
	sregs.cr0 = 0x80000011u;                 /* PG, ET, PE */
	sregs.efer = (1u << 8) | (1u << 10);     /* LME, LMA */
	r = mk_kvm_set_sregs(vcpu_fd, &sregs);
	if (r < 0) {
		what = "KVM_SET_SREGS";
		goto out;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rsi = LX_BOOT_PARAMS;
	regs.rflags = 0x2;
	r = mk_kvm_set_regs(vcpu_fd, &regs);
	if (r < 0)
		what = "KVM_SET_REGS";
out:
	if (r < 0)
		snprintf(why, why_len, "%s: %s", what, strerror(-r));
	free(cpuid);
	return r;
}
