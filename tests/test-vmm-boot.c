/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm/'s Linux boot protocol (boot.c) without KVM: what vmm_boot_load()
 * leaves in guest RAM for a bzImage and an initramfs, checked against
 * Documentation/arch/x86/boot.rst and zero-page.rst: the protected-mode
 * kernel at 1 MiB, the setup header and the loader's fields in the zero
 * page, the command line, the initramfs page-aligned at the top of RAM
 * below initrd_addr_max and above what the kernel needs, the e820 map,
 * the GDT and the identity map of the 64-bit entry. Images that are not
 * bzImages with a 64-bit entry, or do not fit, are refused with RAM left
 * untouched. Synthetic images test the edges; Debian's kernels under
 * /var/cache/memkit/kernels (the ones the linux check boots) are loaded too.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/boot.h"
#include "vmm/cpu.h"
#include "vmm/machine.h"

#define MIB         (1ull << 20)
#define RAM_SIZE    (64 * MIB)
#define SETUP_SECTS 7               /* 8 sectors of setup: 4 KiB */
#define SETUP_LEN   ((SETUP_SECTS + 1) * 512)
#define INIT_SIZE   (8 * MIB)

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* A bzImage as the kernel build makes one: setup sectors with the header, then kernel_len bytes. */
static uint8_t *bzimage(size_t kernel_len, size_t *len)
{
	uint8_t *b = g_malloc0(SETUP_LEN + kernel_len);

	b[0x1f1] = SETUP_SECTS;
	put16(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb;                    /* jmp start_of_setup: the header ends at 0x202 + 0x6a */
	b[0x201] = 0x6a;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, 0x020f);
	b[0x211] = 0x01;                    /* LOADED_HIGH */
	put32(b + 0x22c, 0x7fffffff);       /* initrd_addr_max */
	put16(b + 0x236, 0x7f);             /* xloadflags: XLF_KERNEL_64 and the rest */
	put32(b + 0x238, 2047);             /* cmdline_size */
	put32(b + 0x248, 0x100);            /* payload_offset (from the protected-mode part) */
	put32(b + 0x24c, (uint32_t)(kernel_len - 0x200));
	put32(b + 0x260, INIT_SIZE);
	for (size_t i = 0; i < kernel_len; i++)
		b[SETUP_LEN + i] = (uint8_t)(i * 13 + 7);
	*len = SETUP_LEN + kernel_len;
	return b;
}

static uint8_t *initramfs(size_t len)
{
	uint8_t *p = g_malloc(len);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + 1);
	return p;
}

/* Guest RAM without a VM: zeros, as a fresh memslot. */
static void ram_open(struct vmm_vm *vm, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	g_assert_true(p != MAP_FAILED);
	vmm_vm_init(vm);
	vm->ram = p;
	vm->ram_size = size;
}

static void ram_close(struct vmm_vm *vm)
{
	munmap(vm->ram, vm->ram_size);
}

static bool ram_zero(const struct vmm_vm *vm)
{
	static const uint8_t zero[4096];

	for (uint64_t off = 0; off < vm->ram_size; off += sizeof(zero))
		if (memcmp(vm->ram + off, zero, sizeof(zero)))
			return false;
	return true;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_layout(void)
{
	const char *cmdline = "console=ttyS0 rdinit=/init";
	size_t len, ilen = 3 * MIB + 123;
	g_autofree uint8_t *bz = bzimage(2 * MIB, &len), *rd = initramfs(ilen);
	struct vmm_err e = { 0 };
	struct vmm_boot b;
	struct vmm_vm vm;
	uint8_t *bp;

	ram_open(&vm, RAM_SIZE);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, rd, ilen, cmdline, &b, &e), ==, 0);
	g_assert_cmpstr(e.msg, ==, "");
	g_assert_cmphex(b.version, ==, 0x20f);
	g_assert_cmpuint(b.kernel_bytes, ==, 2 * MIB);
	g_assert_cmpuint(b.init_size, ==, INIT_SIZE);
	g_assert_cmphex(b.entry, ==, VMM_BOOT_KERNEL + 0x200);     /* startup_64 */
	g_assert_cmpmem(vm.ram + VMM_BOOT_KERNEL, 2 * MIB, bz + SETUP_LEN, 2 * MIB);
	/* The initramfs: page-aligned, ending at most a page below the top of RAM. */
	g_assert_cmpuint(b.initrd_len, ==, ilen);
	g_assert_cmphex(b.initrd_gpa & 0xfff, ==, 0);
	g_assert_cmpuint(b.initrd_gpa + ilen, <=, RAM_SIZE);
	g_assert_cmpuint(b.initrd_gpa + ilen, >, RAM_SIZE - 4096);
	g_assert_cmpmem(vm.ram + b.initrd_gpa, ilen, rd, ilen);
	/* The zero page: the image's setup header, then what the loader fills in. */
	bp = vm.ram + VMM_BOOT_PARAMS;
	g_assert_cmpmem(bp + 0x1fe, 12, bz + 0x1fe, 12);             /* boot flag .. version */
	g_assert_cmpmem(bp + 0x202, 4, "HdrS", 4);
	g_assert_cmphex(bp[0x1f1], ==, SETUP_SECTS);
	g_assert_cmphex(get32(bp + 0x22c), ==, 0x7fffffff);         /* initrd_addr_max */
	g_assert_cmphex(get16(bp + 0x236), ==, 0x7f);               /* xloadflags */
	g_assert_cmphex(get32(bp + 0x260), ==, INIT_SIZE);
	g_assert_cmphex(get16(bp + 0x1fa), ==, 0xffff);             /* vid_mode: normal */
	g_assert_cmphex(bp[VMM_BP_TYPE_OF_LOADER], ==, 0xff);
	g_assert_cmphex(bp[VMM_BP_LOADFLAGS] & 0x81, ==, 0x81);      /* LOADED_HIGH, CAN_USE_HEAP */
	g_assert_cmphex(get16(bp + 0x224), ==, 0xfe00);             /* heap_end_ptr */
	g_assert_cmphex(get32(bp + VMM_BP_RAMDISK_IMAGE), ==, b.initrd_gpa);
	g_assert_cmpuint(get32(bp + VMM_BP_RAMDISK_SIZE), ==, ilen);
	g_assert_cmphex(get32(bp + 0x0c0), ==, 0);                 /* ext_ramdisk_image */
	g_assert_cmphex(get32(bp + 0x0c4), ==, 0);
	g_assert_cmphex(get32(bp + VMM_BP_CMD_LINE_PTR), ==, VMM_BOOT_CMDLINE);
	g_assert_cmphex(get32(bp + 0x0c8), ==, 0);                 /* ext_cmd_line_ptr */
	g_assert_cmpstr((const char *)vm.ram + VMM_BOOT_CMDLINE, ==, cmdline);
	/* Nothing past the header but what boot.rst lets a loader fill. */
	for (unsigned off = 0x202 + 0x6a; off < 0x2d0; off++)
		g_assert_cmphex(bp[off], ==, 0);
	ram_close(&vm);
}

/* e820: conventional memory, the legacy hole up to 1 MiB, the rest of RAM; sorted, disjoint. */
static void test_e820(void)
{
	static const struct { uint64_t addr, size; uint32_t type; } want[] = {
		{ 0, VMM_BOOT_LOW_END, VMM_E820_RAM },
		{ VMM_BOOT_LOW_END, MIB - VMM_BOOT_LOW_END, VMM_E820_RESERVED },
		{ MIB, RAM_SIZE - MIB, VMM_E820_RAM },
	};
	size_t len;
	g_autofree uint8_t *bz = bzimage(MIB, &len);
	struct vmm_boot b;
	struct vmm_vm vm;
	uint8_t *bp;
	uint64_t end = 0;

	ram_open(&vm, RAM_SIZE);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, NULL, 0, "", &b, NULL), ==, 0);
	bp = vm.ram + VMM_BOOT_PARAMS;
	g_assert_cmpuint(bp[VMM_BP_E820_ENTRIES], ==, G_N_ELEMENTS(want));
	for (unsigned i = 0; i < G_N_ELEMENTS(want); i++) {
		const uint8_t *ent = bp + VMM_BP_E820_TABLE + 20 * i;

		g_assert_cmphex(get64(ent), ==, want[i].addr);
		g_assert_cmphex(get64(ent + 8), ==, want[i].size);
		g_assert_cmpuint(get32(ent + 16), ==, want[i].type);
		g_assert_cmphex(get64(ent), ==, end);                   /* no gap, no overlap */
		end = get64(ent) + get64(ent + 8);
	}
	g_assert_cmphex(end, ==, RAM_SIZE);
	/* The boot data the loader wrote sits in the first, RAM, entry. */
	g_assert_cmpuint(VMM_BOOT_CMDLINE + VMM_BOOT_CMDLINE_MAX, <=, VMM_BOOT_LOW_END);
	g_assert_cmpuint(VMM_BOOT_PD + 4096, <=, VMM_BOOT_LOW_END);
	/* No initramfs: none announced. */
	g_assert_cmpuint(get32(bp + VMM_BP_RAMDISK_IMAGE), ==, 0);
	g_assert_cmpuint(get32(bp + VMM_BP_RAMDISK_SIZE), ==, 0);
	ram_close(&vm);
}

/* The 64-bit entry's GDT (__BOOT_CS 0x10, __BOOT_DS 0x18) and the identity map of the first GiB. */
static void test_page_tables(void)
{
	size_t len;
	g_autofree uint8_t *bz = bzimage(MIB, &len);
	const uint64_t *gdt, *pml4, *pdpt, *pd;
	struct vmm_boot b;
	struct vmm_vm vm;

	ram_open(&vm, RAM_SIZE);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, NULL, 0, "", &b, NULL), ==, 0);
	gdt = (const uint64_t *)(vm.ram + VMM_BOOT_GDT);
	g_assert_cmphex(gdt[0], ==, 0);
	g_assert_cmphex(gdt[2], ==, 0x00af9b000000ffffull);    /* 64-bit code, DPL 0 */
	g_assert_cmphex(gdt[3], ==, 0x00cf93000000ffffull);    /* data */
	g_assert_cmphex(gdt[2], ==, VMM_GDT_CODE64(0));
	pml4 = (const uint64_t *)(vm.ram + VMM_BOOT_PML4);
	pdpt = (const uint64_t *)(vm.ram + VMM_BOOT_PDPT);
	pd = (const uint64_t *)(vm.ram + VMM_BOOT_PD);
	g_assert_cmphex(pml4[0], ==, VMM_BOOT_PDPT | 3);
	g_assert_cmphex(pdpt[0], ==, VMM_BOOT_PD | 3);
	for (unsigned i = 1; i < 512; i++) {
		g_assert_cmphex(pml4[i], ==, 0);
		g_assert_cmphex(pdpt[i], ==, 0);
	}
	for (uint64_t i = 0; i < 512; i++)
		g_assert_cmphex(pd[i], ==, (i << 21) | 0x83);      /* present, writable, 2 MiB */
	ram_close(&vm);
}

/* initrd_addr_max below the top of RAM: the initramfs ends below it, aligned; too low: refused. */
static void test_initrd_addr_max(void)
{
	size_t len, ilen = MIB + 1;
	g_autofree uint8_t *bz = bzimage(MIB, &len), *rd = initramfs(ilen);
	struct vmm_err e = { 0 };
	struct vmm_boot b;
	struct vmm_vm vm;

	put32(bz + 0x22c, 40 * MIB - 1);
	ram_open(&vm, RAM_SIZE);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, rd, ilen, "", &b, &e), ==, 0);
	g_assert_cmphex(b.initrd_gpa, ==, (40 * MIB - ilen) & ~0xfffull);
	g_assert_cmpmem(vm.ram + b.initrd_gpa, ilen, rd, ilen);
	ram_close(&vm);
	/* Below what the decompressor needs (16 MiB + init_size): nowhere to put it. */
	put32(bz + 0x22c, 16 * MIB + INIT_SIZE + MIB - 1);
	ram_open(&vm, RAM_SIZE);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, rd, ilen, "", &b, &e), ==, -ENOMEM);
	g_assert_cmpint(e.err, ==, -ENOMEM);
	g_assert_nonnull(strstr(e.msg, "too small"));
	g_assert_true(ram_zero(&vm));
	ram_close(&vm);
}

/* The initramfs fits exactly above the kernel's area, or it is refused: the edge, page by page. */
static void test_fit_edges(void)
{
	const uint64_t need = 16 * MIB + INIT_SIZE;
	size_t len, ilen = RAM_SIZE - need;
	g_autofree uint8_t *bz = bzimage(MIB, &len), *rd = initramfs(ilen + 1);
	struct vmm_boot b;
	struct vmm_vm vm;

	ram_open(&vm, RAM_SIZE);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, rd, ilen, "", &b, NULL), ==, 0);
	g_assert_cmphex(b.initrd_gpa, ==, need);
	ram_close(&vm);
	ram_open(&vm, RAM_SIZE);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, rd, ilen + 1, "", &b, NULL), ==, -ENOMEM);
	g_assert_true(ram_zero(&vm));
	ram_close(&vm);
	/* RAM that holds nothing past the decompressor's area: no room for any initramfs. */
	ram_open(&vm, need);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, NULL, 0, "", &b, NULL), ==, 0);
	ram_close(&vm);
	ram_open(&vm, need);
	g_assert_cmpint(vmm_boot_load(&vm, bz, len, rd, 1, "", &b, NULL), ==, -ENOMEM);
	ram_close(&vm);
}

/* Mutations of a good image, each refused with its errno and RAM left as it was. */
static void test_refused(void)
{
	enum { SHORT, NO_MAGIC, OLD, NO_64BIT, SETUP_PAST_END, KERNEL_TOO_BIG, INIT_TOO_BIG,
	       INITRD_TOO_BIG, INITRD_PAST_RAM, CMDLINE_PAST_SIZE, CMDLINE_PAST_MAX, N };
	static const int want[N] = { -ENOEXEC, -ENOEXEC, -ENOEXEC, -ENOEXEC, -ENOEXEC, -ENOMEM, -ENOMEM,
				     -ENOMEM, -ENOMEM, -E2BIG, -E2BIG };
	g_autofree char *cl2047 = g_strnfill(2047, 'x'), *cl4096 = g_strnfill(4096, 'y');

	for (int c = 0; c < N; c++) {
		size_t len, klen = c == KERNEL_TOO_BIG ? RAM_SIZE - MIB + 1 : MIB, ilen = MIB;
		g_autofree uint8_t *bz = bzimage(klen, &len), *rd = initramfs(RAM_SIZE + MIB);
		const char *cmdline = "quiet";
		struct vmm_err e = { 0 };
		struct vmm_boot b;
		struct vmm_vm vm;

		switch (c) {
		case SHORT: len = 0xfff; break;
		case NO_MAGIC: bz[0x205] = 'T'; break;
		case OLD: put16(bz + 0x206, 0x020b); break;
		case NO_64BIT: put16(bz + 0x236, 0x7e); break;
		case SETUP_PAST_END: len = SETUP_LEN; break;
		case INIT_TOO_BIG: put32(bz + 0x260, (uint32_t)(RAM_SIZE - 16 * MIB)); break;
		case INITRD_TOO_BIG: ilen = RAM_SIZE - 16 * MIB - INIT_SIZE + 1; break;
		case INITRD_PAST_RAM: ilen = RAM_SIZE + MIB; break;
		case CMDLINE_PAST_SIZE: cmdline = cl2047; break;
		case CMDLINE_PAST_MAX: put32(bz + 0x238, 0xffffffff); cmdline = cl4096; break;
		default: break;
		}
		ram_open(&vm, RAM_SIZE);
		g_assert_cmpint(vmm_boot_load(&vm, bz, len, rd, ilen, cmdline, &b, &e), ==, want[c]);
		g_test_message("case %d: %s", c, e.msg);
		g_assert_cmpint(e.err, ==, want[c]);
		g_assert_cmpstr(e.msg, !=, "");
		g_assert_true(ram_zero(&vm));
		ram_close(&vm);
	}
	/* The longest command lines that fit: cmdline_size, and the loader's page. */
	{
		size_t len;
		g_autofree uint8_t *bz = bzimage(MIB, &len);
		struct vmm_boot b;
		struct vmm_vm vm;

		ram_open(&vm, RAM_SIZE);
		cl2047[2046] = '\0';
		g_assert_cmpint(vmm_boot_load(&vm, bz, len, NULL, 0, cl2047, &b, NULL), ==, 0);
		g_assert_cmpuint(strlen((const char *)vm.ram + VMM_BOOT_CMDLINE), ==, 2046);
		put32(bz + 0x238, 0xffffffff);
		cl4096[4095] = '\0';
		g_assert_cmpint(vmm_boot_load(&vm, bz, len, NULL, 0, cl4096, &b, NULL), ==, 0);
		g_assert_cmpuint(strlen((const char *)vm.ram + VMM_BOOT_CMDLINE), ==, 4095);
		ram_close(&vm);
	}
}

/* The compressed payload the header points at, without the 4-byte size after it. */
static void test_payload(void)
{
	size_t len, plen;
	g_autofree uint8_t *bz = bzimage(MIB, &len);
	const uint8_t *p;

	g_assert_cmpint(vmm_boot_payload(bz, len, &p, &plen), ==, 0);
	g_assert_true(p == bz + SETUP_LEN + 0x100);
	g_assert_cmpuint(plen, ==, MIB - 0x200 - 4);
	put32(bz + 0x248, (uint32_t)(MIB - 0x1ff));                 /* runs past the image */
	g_assert_cmpint(vmm_boot_payload(bz, len, &p, &plen), ==, -ENOEXEC);
	put32(bz + 0x248, 0xffffffff);
	g_assert_cmpint(vmm_boot_payload(bz, len, &p, &plen), ==, -ENOEXEC);
	put32(bz + 0x248, 0x100);
	put32(bz + 0x24c, 7);                                        /* shorter than its size field */
	g_assert_cmpint(vmm_boot_payload(bz, len, &p, &plen), ==, -ENOEXEC);
	put32(bz + 0x24c, 0x1000);
	put16(bz + 0x206, 0x207);                                    /* no payload fields before 2.08 */
	g_assert_cmpint(vmm_boot_payload(bz, len, &p, &plen), ==, -ENOEXEC);
	g_assert_cmpint(vmm_boot_payload(bz, 0x800, &p, &plen), ==, -ENOEXEC);
}

/* An x86-64 ELF with two PT_LOAD segments (and a note), its program headers at phoff. */
static uint8_t *elf_image(size_t phoff, uint64_t paddr2, size_t *len)
{
	const size_t data = 0x400, n1 = 0x1000, n2 = 0x800;
	uint8_t *b = g_malloc0(data + n1 + n2);
	Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			  .e_entry = 16 * MIB + 0x40, .e_phoff = phoff, .e_ehsize = sizeof(eh),
			  .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 3 };
	Elf64_Phdr ph[3] = {
		{ .p_type = PT_LOAD, .p_offset = data, .p_paddr = 16 * MIB, .p_filesz = n1,
		  .p_memsz = 0x3000 },
		{ .p_type = PT_NOTE, .p_offset = 0, .p_paddr = 0, .p_filesz = 4, .p_memsz = 4 },
		{ .p_type = PT_LOAD, .p_offset = data + n1, .p_paddr = paddr2, .p_filesz = n2,
		  .p_memsz = n2 },
	};

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(b, &eh, sizeof(eh));
	memcpy(b + phoff, ph, sizeof(ph));
	for (size_t i = data; i < data + n1 + n2; i++)
		b[i] = (uint8_t)(i ^ 0x5a);
	*len = data + n1 + n2;
	return b;
}

static void test_vmlinux(void)
{
	struct vmm_boot b = { .initrd_gpa = 48 * MIB, .initrd_len = MIB };
	struct vmm_err e = { 0 };
	struct vmm_vm vm;
	size_t len;

	/* Program headers at an odd offset: read without unaligned access. */
	for (size_t phoff = 0x40; phoff <= 0x41; phoff++) {
		g_autofree uint8_t *elf = elf_image(phoff, 20 * MIB, &len);

		ram_open(&vm, RAM_SIZE);
		memset(vm.ram + 16 * MIB, 0xcc, 0x4000);
		g_assert_cmpint(vmm_boot_vmlinux(&vm, elf, len, &b, &e), ==, 0);
		g_assert_cmphex(b.entry, ==, 16 * MIB + 0x40);
		g_assert_cmpmem(vm.ram + 16 * MIB, 0x1000, elf + 0x400, 0x1000);
		for (unsigned i = 0x1000; i < 0x3000; i++)           /* memsz past filesz: zeros */
			g_assert_cmphex(vm.ram[16 * MIB + i], ==, 0);
		g_assert_cmphex(vm.ram[16 * MIB + 0x3000], ==, 0xcc);
		g_assert_cmpmem(vm.ram + 20 * MIB, 0x800, elf + 0x1400, 0x800);
		ram_close(&vm);
	}
	/* A segment past RAM or over the initramfs: refused before the first is copied. */
	for (int c = 0; c < 4; c++) {
		const uint64_t paddr2[] = { RAM_SIZE - 0x7ff, 48 * MIB - 0x7ff, ~0ull - 0x100, RAM_SIZE };
		g_autofree uint8_t *elf = elf_image(0x40, paddr2[c], &len);

		ram_open(&vm, RAM_SIZE);
		vmm_err_clear(&e);
		g_assert_cmpint(vmm_boot_vmlinux(&vm, elf, len, &b, &e), ==, -ENOEXEC);
		g_assert_nonnull(strstr(e.msg, "segment"));
		g_assert_true(ram_zero(&vm));
		ram_close(&vm);
	}
	/* Not an x86-64 ELF, or headers past the end. */
	for (int c = 0; c < 4; c++) {
		g_autofree uint8_t *elf = elf_image(0x40, 20 * MIB, &len);

		if (c == 0)
			elf[1] = 'F';
		if (c == 1)
			elf[EI_CLASS] = ELFCLASS32;
		if (c == 2)
			put16(elf + 0x12, EM_386);
		if (c == 3)
			len = 0x40 + 2 * sizeof(Elf64_Phdr);
		ram_open(&vm, RAM_SIZE);
		g_assert_cmpint(vmm_boot_vmlinux(&vm, elf, len, &b, NULL), ==, -ENOEXEC);
		g_assert_true(ram_zero(&vm));
		ram_close(&vm);
	}
}

/* Set bit of every page in [off, off + len) (the test's own record of what the loader wrote). */
static void pages_set(uint64_t *bm, uint64_t off, uint64_t len)
{
	for (uint64_t pg = off / 4096; pg <= (off + len - 1) / 4096; pg++)
		bm[pg / 64] |= 1ull << (pg % 64);
}

static uint64_t pages_count(const uint64_t *bm, size_t words)
{
	uint64_t n = 0;

	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/*
 * RAM that is a libsandbox region, as vmm_machine_open() makes it
 * (vmm_machine_sbx_ram: the raw pointer with the will_mark_dirty promise):
 * after loading a bzImage, an initramfs and a vmlinux, the region's record
 * holds exactly the pages the loader wrote, and a restore copies those back
 * (not a remap of all 64 MiB) and leaves RAM equal to the snapshot. A store
 * the loader did not report stays behind (ram_zero fails); one it reported
 * too much shows in the count.
 */
static void test_sbx_ram(void)
{
	const char *cmdline = "console=ttyS0 rdinit=/init";
	size_t len, elen, ilen = 3 * MIB + 123;
	g_autofree uint8_t *bz = bzimage(2 * MIB, &len), *rd = initramfs(ilen);
	g_autofree uint8_t *elf = elf_image(0x40, 20 * MIB, &elen);
	uint64_t want[RAM_SIZE / 4096 / 64] = { 0 };
	struct sbx_mem_stats st = { .size = sizeof(st) };
	struct sbx_snapshot *snap;
	struct vmm_err e = { 0 };
	struct sbx_mem *mem;
	struct vmm_boot b, bl;
	struct vmm_vm vm;
	uint64_t n;

	g_assert_cmpint(sbx_mem_new(RAM_SIZE, &mem), ==, 0);
	vmm_vm_init(&vm);
	g_assert_cmpint(vmm_machine_sbx_ram(&vm, mem), ==, 0);
	g_assert_cmpuint(vm.ram_size, ==, RAM_SIZE);
	g_assert_cmpint(sbx_snapshot_take(mem, &snap), ==, 0);

	for (int round = 0; round < 2; round++) {
		g_assert_cmpint(vmm_boot_load(&vm, bz, len, rd, ilen, cmdline, &b, &e), ==, 0);
		bl = (struct vmm_boot){ .initrd_gpa = b.initrd_gpa, .initrd_len = b.initrd_len };
		g_assert_cmpint(vmm_boot_vmlinux(&vm, elf, elen, &bl, &e), ==, 0);
		g_assert_false(ram_zero(&vm));
		memset(want, 0, sizeof(want));
		pages_set(want, VMM_BOOT_KERNEL, b.kernel_bytes);
		pages_set(want, b.initrd_gpa, ilen);
		pages_set(want, VMM_BOOT_CMDLINE, strlen(cmdline) + 1);
		pages_set(want, VMM_BOOT_PARAMS, 4096);
		pages_set(want, VMM_BOOT_GDT, 32);
		pages_set(want, VMM_BOOT_PML4, 4096);
		pages_set(want, VMM_BOOT_PDPT, 4096);
		pages_set(want, VMM_BOOT_PD, 4096);
		pages_set(want, 16 * MIB, 0x3000);           /* elf_image's two segments */
		pages_set(want, 20 * MIB, 0x800);
		n = pages_count(want, G_N_ELEMENTS(want));
		g_assert_cmpint(sbx_mem_stats(mem, &st), ==, 0);
		g_test_message("round %d: loader wrote %llu pages of %llu, record holds %llu", round,
			       (unsigned long long)n, (unsigned long long)(RAM_SIZE / 4096),
			       (unsigned long long)st.dirty_pages);
		g_assert_cmpuint(st.dirty_pages, ==, n);
		g_assert_cmpint(sbx_snapshot_restore(mem, snap, SBX_RESTORE_AUTO), ==, (int64_t)n);
		g_assert_cmpint(sbx_mem_stats(mem, &st), ==, 0);
		g_assert_cmpuint(st.restores_copy, ==, round + 1);
		g_assert_cmpuint(st.restores_remap, ==, 0);
		g_assert_cmpuint(st.pages_restored, ==, (round + 1) * n);
		g_assert_true(ram_zero(&vm));
	}

	/* The contrast: a raw pointer without the promise makes the next restore a full remap. */
	g_assert_true(sbx_mem_host_ptr(mem, false) == vm.ram);
	vm.ram[VMM_BOOT_PARAMS] = 1;
	g_assert_cmpint(sbx_snapshot_restore(mem, snap, SBX_RESTORE_AUTO), ==,
			(int64_t)(RAM_SIZE / 4096));
	g_assert_cmpint(sbx_mem_stats(mem, &st), ==, 0);
	g_assert_cmpuint(st.restores_remap, ==, 1);
	g_assert_true(ram_zero(&vm));
	sbx_snapshot_unref(snap);
	sbx_mem_free(mem);
}

/* Debian's kernels, as the linux check boots them (with a small initramfs). */
static void test_real_kernels(void)
{
	const char *dir = "/var/cache/memkit/kernels";
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	g_autofree uint8_t *rd = initramfs(2 * MIB);
	const char *name;
	unsigned n = 0;

	if (!d) {
		g_test_skip("no kernels in /var/cache/memkit/kernels (scripts/fetch-kernels.sh)");
		return;
	}
	while ((name = g_dir_read_name(d))) {
		g_autofree char *path = g_build_filename(dir, name, "vmlinuz", NULL);
		g_autofree char *bz = NULL;
		struct vmm_err e = { 0 };
		struct vmm_boot b;
		struct vmm_vm vm;
		const uint8_t *pl;
		size_t plen;
		gsize len;

		if (!g_file_get_contents(path, &bz, &len, NULL))
			continue;
		ram_open(&vm, 512 * MIB);
		g_assert_cmpint(vmm_boot_load(&vm, (uint8_t *)bz, len, rd, 2 * MIB,
					      "console=ttyS0", &b, &e), ==, 0);
		g_test_message("%s: boot protocol %x.%02x, %llu kernel bytes, init_size %u MiB, "
			       "initramfs at 0x%llx", name, b.version >> 8, b.version & 0xff,
			       (unsigned long long)b.kernel_bytes, b.init_size >> 20,
			       (unsigned long long)b.initrd_gpa);
		g_assert_cmphex(b.version, >=, 0x20c);
		g_assert_cmpmem(vm.ram + VMM_BOOT_KERNEL, 4096, bz + len - b.kernel_bytes, 4096);
		g_assert_cmpuint(b.initrd_gpa, >=, VMM_BOOT_RUN_ADDR + b.init_size);
		g_assert_cmpuint(vm.ram[VMM_BOOT_PARAMS + VMM_BP_E820_ENTRIES], ==, 3);
		/* The payload is a compressed vmlinux the linux check's debug path can unpack. */
		g_assert_cmpint(vmm_boot_payload((uint8_t *)bz, len, &pl, &plen), ==, 0);
		g_assert_true((plen > 4 && !memcmp(pl, "\x28\xb5\x2f\xfd", 4)) ||
			      (plen > 6 && !memcmp(pl, "\xfd" "7zXZ", 5)) ||
			      (plen > 2 && pl[0] == 0x1f && pl[1] == 0x8b));
		ram_close(&vm);
		n++;
	}
	if (!n)
		g_test_skip("no readable vmlinuz under /var/cache/memkit/kernels");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmm/boot/layout", test_layout);
	g_test_add_func("/vmm/boot/e820", test_e820);
	g_test_add_func("/vmm/boot/page-tables", test_page_tables);
	g_test_add_func("/vmm/boot/initrd-addr-max", test_initrd_addr_max);
	g_test_add_func("/vmm/boot/fit-edges", test_fit_edges);
	g_test_add_func("/vmm/boot/refused", test_refused);
	g_test_add_func("/vmm/boot/payload", test_payload);
	g_test_add_func("/vmm/boot/vmlinux", test_vmlinux);
	g_test_add_func("/vmm/boot/real-kernels", test_real_kernels);
	g_test_add_func("/vmm/boot/sbx-ram", test_sbx_ram);
	return g_test_run();
}
