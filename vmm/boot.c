/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: bzImage loading and the 64-bit entry (boot.h). */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "vmm/boot.h"
#include "vmm/cpu.h"

/* Offsets in boot_params / the setup header (boot.rst, "THE REAL-MODE KERNEL HEADER"). */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_HDR               0x1f1
#define BP_SETUP_SECTS       0x1f1
#define BP_VID_MODE          0x1fa
#define BP_JUMP              0x200
#define BP_HEADER_MAGIC      0x202
#define BP_VERSION           0x206
#define BP_HEAP_END_PTR      0x224
#define BP_INITRD_ADDR_MAX   0x22c
#define BP_XLOADFLAGS        0x236
#define BP_CMDLINE_SIZE      0x238
#define BP_PAYLOAD_OFFSET    0x248
#define BP_PAYLOAD_LENGTH    0x24c
#define BP_INIT_SIZE         0x260

#define XLF_KERNEL_64        0x01
#define LOADED_HIGH          0x01
#define CAN_USE_HEAP         0x80
#define MIB                  0x100000ull

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }

/* The setup sectors' length: setup_sects + 1 sectors (0 means 4). */
static size_t setup_len(const uint8_t *bz)
{
	return (size_t)((bz[BP_SETUP_SECTS] ? bz[BP_SETUP_SECTS] : 4) + 1) * 512;
}

/* A bzImage's header: what the image is and what it needs. */
static int parse_header(const uint8_t *bz, size_t bz_len, struct vmm_boot *b, struct vmm_err *e)
{
	if (bz_len < 0x1000 || memcmp(bz + BP_HEADER_MAGIC, "HdrS", 4))
		return vmm_fail(e, -ENOEXEC, "not a bzImage (no HdrS setup header)");
	b->version = rd16(bz + BP_VERSION);
	/* 2.12 brought xloadflags, which says whether the 64-bit entry exists. */
	if (b->version < 0x20c || !(rd16(bz + BP_XLOADFLAGS) & XLF_KERNEL_64))
		return vmm_fail(e, -ENOEXEC, "bzImage without the 64-bit entry (boot protocol < 2.12)");
	if (setup_len(bz) >= bz_len)
		return vmm_fail(e, -ENOEXEC, "bzImage shorter than its setup sectors");
	b->kernel_bytes = bz_len - setup_len(bz);
	b->init_size = rd32(bz + BP_INIT_SIZE);
	return 0;
}

/*
 * Where everything goes: the kernel at 1 MiB and its decompressor's
 * init_size bytes from 16 MiB, the initramfs page-aligned at the top of
 * RAM (below the header's initrd_addr_max) above both. 0 or -ENOMEM.
 */
static int place(uint64_t ram_size, const uint8_t *bz, size_t initrd_len, struct vmm_boot *b,
		 struct vmm_err *e)
{
	uint64_t need = VMM_BOOT_RUN_ADDR + b->init_size, top;

	if (VMM_BOOT_KERNEL + b->kernel_bytes > need)
		need = VMM_BOOT_KERNEL + b->kernel_bytes;
	top = (uint64_t)rd32(bz + BP_INITRD_ADDR_MAX) + 1;
	if (top > ram_size)
		top = ram_size;
	if (need > top || initrd_len > top - need ||
	    (initrd_len && ((top - initrd_len) & ~0xfffull) < need))
		return vmm_fail(e, -ENOMEM, "guest RAM too small for kernel and initramfs "
				"(%llu MiB kernel area, %zu-byte initramfs below 0x%llx)",
				(unsigned long long)(need >> 20), initrd_len, (unsigned long long)top);
	b->initrd_len = initrd_len;
	b->initrd_gpa = initrd_len ? (top - initrd_len) & ~0xfffull : 0;
	return 0;
}

static void e820(uint8_t *bp, unsigned i, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t *e = bp + VMM_BP_E820_TABLE + 20 * i;

	memcpy(e, &addr, 8);
	memcpy(e + 8, &size, 8);
	wr32(e + 16, type);
	bp[VMM_BP_E820_ENTRIES] = (uint8_t)(i + 1);
}

/* The zero page: zeros, the image's setup header at its offset, what the loader fills. */
static void zero_page(struct vmm_vm *vm, const uint8_t *bz, const struct vmm_boot *b)
{
	uint8_t *bp = vm->ram + VMM_BOOT_PARAMS;
	size_t hdr_end = BP_HEADER_MAGIC + bz[BP_JUMP + 1];   /* the header says its own length */

	memset(bp, 0, 4096);
	memcpy(bp + BP_HDR, bz + BP_HDR, hdr_end - BP_HDR);
	wr16(bp + BP_VID_MODE, 0xffff);   /* "normal" */
	bp[VMM_BP_TYPE_OF_LOADER] = 0xff; /* undefined loader */
	bp[VMM_BP_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	wr16(bp + BP_HEAP_END_PTR, 0xfe00);
	wr32(bp + VMM_BP_CMD_LINE_PTR, (uint32_t)VMM_BOOT_CMDLINE);
	wr32(bp + BP_EXT_CMD_LINE_PTR, 0);
	if (b->initrd_len) {
		wr32(bp + VMM_BP_RAMDISK_IMAGE, (uint32_t)b->initrd_gpa);
		wr32(bp + VMM_BP_RAMDISK_SIZE, (uint32_t)b->initrd_len);
		wr32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(b->initrd_gpa >> 32));
		wr32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(b->initrd_len >> 32));
	}
	/* e820: conventional memory, the legacy hole (BIOS/VGA), the rest of RAM. */
	e820(bp, 0, 0, VMM_BOOT_LOW_END, VMM_E820_RAM);
	e820(bp, 1, VMM_BOOT_LOW_END, MIB - VMM_BOOT_LOW_END, VMM_E820_RESERVED);
	e820(bp, 2, MIB, vm->ram_size - MIB, VMM_E820_RAM);
}

int vmm_boot_load(struct vmm_vm *vm, const uint8_t *bz, size_t bz_len, const uint8_t *initrd,
		  size_t initrd_len, const char *cmdline, struct vmm_boot *b, struct vmm_err *e)
{
	uint64_t *gdt = (uint64_t *)(vm->ram + VMM_BOOT_GDT);
	size_t cl = strlen(cmdline);
	int r;

	memset(b, 0, sizeof(*b));
	r = parse_header(bz, bz_len, b, e);
	if (r < 0)
		return r;
	r = place(vm->ram_size, bz, initrd_len, b, e);
	if (r < 0)
		return r;
	if (cl + 1 > VMM_BOOT_CMDLINE_MAX || cl + 1 > rd32(bz + BP_CMDLINE_SIZE))
		return vmm_fail(e, -E2BIG, "command line too long");

	/* Each store into RAM is reported (vmm_vm_ram_written): a region's restore stays O(dirty). */
	memcpy(vm->ram + VMM_BOOT_KERNEL, bz + setup_len(bz), b->kernel_bytes);
	vmm_vm_ram_written(vm, VMM_BOOT_KERNEL, b->kernel_bytes);
	b->entry = VMM_BOOT_KERNEL + 0x200;      /* the 64-bit entry of the decompressor */
	if (initrd_len) {
		memcpy(vm->ram + b->initrd_gpa, initrd, initrd_len);
		vmm_vm_ram_written(vm, b->initrd_gpa, initrd_len);
	}
	memcpy(vm->ram + VMM_BOOT_CMDLINE, cmdline, cl + 1);
	vmm_vm_ram_written(vm, VMM_BOOT_CMDLINE, cl + 1);
	zero_page(vm, bz, b);
	vmm_vm_ram_written(vm, VMM_BOOT_PARAMS, 4096);
	/* Flat segments at the selectors boot.rst names: __BOOT_CS 0x10, __BOOT_DS 0x18. */
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = VMM_GDT_CODE64(0);
	gdt[3] = VMM_GDT_DATA(0);
	vmm_vm_ram_written(vm, VMM_BOOT_GDT, 4 * sizeof(*gdt));
	vmm_cpu_identity_map(vm->ram, VMM_BOOT_PML4, VMM_BOOT_PDPT, VMM_BOOT_PD, 1, false);
	vmm_cpu_identity_map_written(vm, VMM_BOOT_PML4, VMM_BOOT_PDPT, VMM_BOOT_PD, 1);
	return 0;
}

int vmm_boot_payload(const uint8_t *bz, size_t bz_len, const uint8_t **payload, size_t *len)
{
	size_t off, n;

	if (bz_len < 0x1000 || memcmp(bz + BP_HEADER_MAGIC, "HdrS", 4) || rd16(bz + BP_VERSION) < 0x208)
		return -ENOEXEC;
	off = setup_len(bz) + rd32(bz + BP_PAYLOAD_OFFSET);   /* from the protected-mode start */
	n = rd32(bz + BP_PAYLOAD_LENGTH);
	if (n < 8 || off > bz_len || n > bz_len - off)
		return -ENOEXEC;
	*payload = bz + off;
	*len = n - 4;
	return 0;
}

/* PT_LOAD segment i of a checked ELF header: 1 and *ph, 0 another type. */
static int load_segment(const uint8_t *elf, const Elf64_Ehdr *eh, unsigned i, Elf64_Phdr *ph)
{
	memcpy(ph, elf + eh->e_phoff + i * sizeof(*ph), sizeof(*ph));
	return ph->p_type == PT_LOAD;
}

int vmm_boot_vmlinux(struct vmm_vm *vm, const uint8_t *elf, size_t elf_len, struct vmm_boot *b,
		     struct vmm_err *e)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;

	if (elf_len >= sizeof(eh))
		memcpy(&eh, elf, sizeof(eh));
	if (elf_len < sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 || eh.e_phoff > elf_len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > elf_len - eh.e_phoff)
		return vmm_fail(e, -ENOEXEC, "the bzImage's payload is not an x86-64 ELF vmlinux");
	/* Every segment checked before the first is copied. */
	for (unsigned i = 0; i < eh.e_phnum; i++)
		if (load_segment(elf, &eh, i, &ph) &&
		    (ph.p_offset > elf_len || ph.p_filesz > elf_len - ph.p_offset ||
		     ph.p_filesz > ph.p_memsz || ph.p_paddr > vm->ram_size ||
		     ph.p_memsz > vm->ram_size - ph.p_paddr ||
		     (b->initrd_len && ph.p_paddr + ph.p_memsz > b->initrd_gpa)))
			return vmm_fail(e, -ENOEXEC,
					"vmlinux segment outside guest RAM or over the initramfs");
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (!load_segment(elf, &eh, i, &ph))
			continue;
		memcpy(vm->ram + ph.p_paddr, elf + ph.p_offset, ph.p_filesz);
		memset(vm->ram + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		vmm_vm_ram_written(vm, ph.p_paddr, ph.p_memsz);
	}
	b->entry = eh.e_entry;     /* phys_startup_64: vmlinux's entry is physical */
	return 0;
}

int vmm_boot_vcpu(struct vmm_vm *vm, uint64_t entry, struct vmm_err *e)
{
	const struct vmm_long_mode lm = {
		.cs = 0x10, .ds = 0x18, .dpl = 0,
		.gdt = VMM_BOOT_GDT, .gdt_entries = 4, .cr3 = VMM_BOOT_PML4,
		.rip = entry, .rsi = VMM_BOOT_PARAMS, .rflags = 0x2,
	};
	int r = vmm_cpu_set_cpuid(vm, VMM_CPUID_LINUX, e);

	return r < 0 ? r : vmm_cpu_long_mode(vm, &lm, e);
}
