/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: the Linux x86 boot protocol (Documentation/arch/x86/boot.rst),
 * 64-bit entry: the protected-mode part of a bzImage at 1 MiB,
 * boot_params (the "zero page") with the setup header, an e820 map, the
 * command line and the initramfs, and a vCPU in long mode over
 * identity-mapped page tables (cpu.h), rsi = boot_params.
 *
 * The bzImage and the initramfs come from files: their sizes and the
 * header's fields are checked against guest RAM before anything is copied.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmm/err.h"
#include "vmm/vm.h"

/* Guest-physical layout of low memory the loader uses. */
#define VMM_BOOT_GDT         0x0500ull
#define VMM_BOOT_PARAMS      0x7000ull
#define VMM_BOOT_PML4        0x9000ull
#define VMM_BOOT_PDPT        0xa000ull
#define VMM_BOOT_PD          0xb000ull    /* 1 page: identity map of 0 .. 1 GiB */
#define VMM_BOOT_CMDLINE     0x20000ull
#define VMM_BOOT_CMDLINE_MAX 0x1000u
#define VMM_BOOT_KERNEL      0x100000ull
#define VMM_BOOT_LOW_END     0x9fc00ull   /* e820: RAM below, reserved up to 1 MiB */
/* The decompressor runs at LOAD_PHYSICAL_ADDR (16 MiB) with init_size bytes. */
#define VMM_BOOT_RUN_ADDR    0x1000000ull

/* Offsets in boot_params (boot.rst, "THE REAL-MODE KERNEL HEADER", zero-page.rst). */
#define VMM_BP_E820_ENTRIES  0x1e8
#define VMM_BP_E820_TABLE    0x2d0        /* 20-byte entries: addr, size, type */
#define VMM_BP_TYPE_OF_LOADER 0x210
#define VMM_BP_LOADFLAGS     0x211
#define VMM_BP_RAMDISK_IMAGE 0x218
#define VMM_BP_RAMDISK_SIZE  0x21c
#define VMM_BP_CMD_LINE_PTR  0x228
#define VMM_E820_RAM         1
#define VMM_E820_RESERVED    2

struct vmm_boot {
	uint16_t version;        /* boot protocol version of the image */
	uint64_t kernel_bytes;   /* protected-mode part copied */
	uint64_t initrd_gpa, initrd_len;
	uint32_t init_size;      /* memory the kernel needs from its load address */
	uint64_t entry;          /* where the vCPU starts (64-bit entry) */
};

/*
 * Lay out the guest in vm's RAM (at gpa 0): the kernel, the initramfs
 * (top of RAM, below the header's initrd_addr_max, above what the kernel
 * needs), boot_params, the command line and the page tables. 0 or -errno
 * (e): -ENOEXEC not a bzImage with the 64-bit entry, -ENOMEM it does not
 * fit, -E2BIG command line too long. Nothing is copied on failure.
 */
int vmm_boot_load(struct vmm_vm *vm, const uint8_t *bz, size_t bz_len, const uint8_t *initrd,
		  size_t initrd_len, const char *cmdline, struct vmm_boot *b, struct vmm_err *e);
/*
 * The compressed kernel inside a bzImage (payload_offset/payload_length of
 * the setup header, without the 4-byte size the kernel build appends).
 * 0 or -ENOEXEC.
 */
int vmm_boot_payload(const uint8_t *bz, size_t bz_len, const uint8_t **payload, size_t *len);
/*
 * Instead of the bzImage's own decompressor, enter the kernel proper
 * (the decompressed vmlinux ELF) directly: its PT_LOAD segments at their
 * physical addresses, b->entry = its (physical) entry point, with the
 * boot_params vmm_boot_load() wrote. For hosts whose KVM cannot run the
 * decompressor (software KVMs emulating CPL 0 stop at its BMI2
 * instructions). Call after vmm_boot_load(). 0 or -errno (e).
 */
int vmm_boot_vmlinux(struct vmm_vm *vm, const uint8_t *elf, size_t elf_len, struct vmm_boot *b,
		     struct vmm_err *e);
/* CPUID for Linux and the registers of the 64-bit entry at entry. 0 or -errno (e). */
int vmm_boot_vcpu(struct vmm_vm *vm, uint64_t entry, struct vmm_err *e);
