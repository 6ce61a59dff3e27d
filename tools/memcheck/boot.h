/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: the Linux x86 boot protocol
 * (Documentation/arch/x86/boot.rst), 64-bit entry: the protected-mode
 * part of a bzImage at 1 MiB, boot_params (the "zero page") with the
 * setup header, an e820 map, the command line and the initramfs, and a
 * vCPU in long mode over identity-mapped page tables, rsi = boot_params.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Guest-physical layout of low memory the loader uses. */
#define LX_BOOT_GDT       0x0500ull
#define LX_BOOT_PARAMS    0x7000ull
#define LX_BOOT_PML4      0x9000ull
#define LX_BOOT_PDPT      0xa000ull
#define LX_BOOT_PD        0xb000ull    /* 1 page: identity map of 0 .. 1 GiB */
#define LX_BOOT_CMDLINE   0x20000ull
#define LX_BOOT_CMDLINE_MAX 0x1000u
#define LX_BOOT_KERNEL    0x100000ull
#define LX_BOOT_LOW_END   0x9fc00ull   /* e820: RAM below, reserved up to 1 MiB */

struct lx_boot {
	uint16_t version;        /* boot protocol version of the image */
	uint64_t kernel_bytes;   /* protected-mode part copied */
	uint64_t initrd_gpa, initrd_len;
	uint32_t init_size;      /* memory the kernel needs from its load address */
	uint64_t entry;          /* where the vCPU starts (64-bit entry) */
	char why[256];
};

/*
 * Lay out the guest: ram (host mapping of guest RAM at gpa 0, ram_size
 * bytes) receives the kernel, the initramfs (top of RAM), boot_params,
 * the command line and the page tables. Returns 0 or -errno (b->why).
 */
int lx_boot_load(uint8_t *ram, uint64_t ram_size, const uint8_t *bz, size_t bz_len,
		 const uint8_t *initrd, size_t initrd_len, const char *cmdline,
		 struct lx_boot *b);
/*
 * The compressed kernel inside a bzImage (payload_offset/payload_length of
 * the setup header, without the 4-byte size the kernel build appends).
 * 0 or -ENOEXEC.
 */
int lx_boot_payload(const uint8_t *bz, size_t bz_len, const uint8_t **payload, size_t *len);
/*
 * Instead of the bzImage's own decompressor, enter the kernel proper
 * (the decompressed vmlinux ELF) directly: its PT_LOAD segments at their
 * physical addresses, b->entry = its (physical) entry point, with the
 * boot_params lx_boot_load() wrote. For hosts whose KVM cannot run the
 * decompressor (software KVMs emulating CPL 0 stop at its BMI2
 * instructions). Call after lx_boot_load(). 0 or -errno (b->why).
 */
int lx_boot_vmlinux(uint8_t *ram, uint64_t ram_size, const uint8_t *elf, size_t elf_len,
		    struct lx_boot *b);
/* Registers for the 64-bit entry at entry (CPUID from kvm_fd first). 0 or -errno (why). */
int lx_boot_vcpu(int kvm_fd, int vcpu_fd, uint64_t entry, char *why, size_t why_len);
