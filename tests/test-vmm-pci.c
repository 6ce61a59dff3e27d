/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm/'s PCI bus (pci.c) and the virtio-pci function on it (virtio-pci.c)
 * without KVM, driven through configuration mechanism #1 as a guest's
 * kernel drives it: ports 0xcf8 (address) and 0xcfc..0xcff (data), any
 * access size at any offset, including the hostile ones (writes to
 * read-only registers, capability pointers, past the 256-byte space).
 * What the guest cannot change must read back unchanged; what it may
 * (command, interrupt line, BAR addresses within their size) must.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <linux/virtio_pci.h>

#include "vmm/pci.h"
#include "vmm/virtio-pci.h"
#include "vmm/vm.h"

#define SLOT 3

/* ---- the guest's side: mechanism #1 ------------------------------------------ */

static void address(struct vmm_pci *p, unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	uint32_t a = 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc);

	vmm_pci_io(p, 0xcf8, (uint8_t *)&a, 4, true);
}

static uint32_t cfg_read_at(struct vmm_pci *p, unsigned dev, unsigned off, unsigned len)
{
	uint32_t v = 0;

	address(p, 0, dev, 0, off);
	vmm_pci_io(p, (uint16_t)(0xcfc + (off & 3)), (uint8_t *)&v, len, false);
	return v;
}

static void cfg_write_at(struct vmm_pci *p, unsigned dev, unsigned off, uint32_t v, unsigned len)
{
	address(p, 0, dev, 0, off);
	vmm_pci_io(p, (uint16_t)(0xcfc + (off & 3)), (uint8_t *)&v, len, true);
}

static uint32_t ones(unsigned len)
{
	return len == 4 ? 0xffffffffu : (1u << (8 * len)) - 1;
}

/* ---- a device with a trapping BAR ---------------------------------------------- */

struct dev {
	struct vmm_pci_dev pci;
	unsigned calls, bar;
	uint64_t off;
	unsigned len;
	bool is_write;
	unsigned written_off, written_len, writes;
};

static void bar_fn(struct vmm_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, unsigned len,
		   bool is_write)
{
	struct dev *x = d->data;

	x->calls++;
	x->bar = bar;
	x->off = off;
	x->len = len;
	x->is_write = is_write;
	if (!is_write)
		memset(data, 0xa5, len);
}

static void cfg_written(struct vmm_pci_dev *d, unsigned off, unsigned len)
{
	struct dev *x = d->data;

	x->writes++;
	x->written_off = off;
	x->written_len = len;
}

/* 00:SLOT.0: BAR 0 32-bit 4 KiB at 0xc0000000 (trapped), BARs 2-3 64-bit 1 GiB (memory). */
static void dev_init(struct dev *x, struct vmm_pci *bus)
{
	memset(x, 0, sizeof(*x));
	vmm_pci_dev_init(&x->pci, 0x1234, 0x5678, 0x05800001, 0xabcd, 0xef01);
	x->pci.data = x;
	x->pci.bar_fn = bar_fn;
	x->pci.cfg_written = cfg_written;
	g_assert_cmpint(vmm_pci_set_bar(&x->pci, 0, 0xc0000000, 0x1000, 0, true), ==, 0);
	g_assert_cmpint(vmm_pci_set_bar(&x->pci, 2, 0x400000000ull, 1ull << 30,
					VMM_BAR_MEM64 | VMM_BAR_PREFETCH, false), ==, 0);
	g_assert_cmpint(vmm_pci_add(bus, SLOT, &x->pci), ==, 0);
}

/* ---- tests ------------------------------------------------------------------- */

/* 00:00.0 is the 440FX host bridge Linux's pci_sanity_check() looks for. */
static void test_host_bridge(void)
{
	struct vmm_pci bus;

	vmm_pci_init(&bus);
	g_assert_cmphex(cfg_read_at(&bus, 0, 0x00, 2), ==, 0x8086);
	g_assert_cmphex(cfg_read_at(&bus, 0, 0x02, 2), ==, 0x1237);
	g_assert_cmphex(cfg_read_at(&bus, 0, 0x00, 4), ==, 0x12378086);
	g_assert_cmphex(cfg_read_at(&bus, 0, 0x0a, 2), ==, 0x0600);     /* class: host bridge */
	g_assert_cmphex(cfg_read_at(&bus, 0, 0x0e, 1), ==, 0x00);       /* header type 0 */
	g_assert_cmphex(cfg_read_at(&bus, 0, 0x34, 1), ==, 0);          /* no capabilities */
}

/* The address register: dword accesses at 0xcf8 only; anything else leaves it alone. */
static void test_address_register(void)
{
	struct vmm_pci bus;
	uint32_t v = 0x80001810, r = 0;
	uint8_t b = 0x12;

	vmm_pci_init(&bus);
	vmm_pci_io(&bus, 0xcf8, (uint8_t *)&v, 4, true);
	vmm_pci_io(&bus, 0xcf8, (uint8_t *)&r, 4, false);
	g_assert_cmphex(r, ==, 0x80001810);
	for (uint16_t port = 0xcf8; port < 0xcfc; port++) {
		uint16_t w = 0x3456;

		vmm_pci_io(&bus, port, &b, 1, true);
		vmm_pci_io(&bus, port, (uint8_t *)&w, 2, true);
		b = 0;
		vmm_pci_io(&bus, port, &b, 1, false);
		g_assert_cmphex(b, ==, 0xff);       /* not the register */
	}
	r = 0;
	vmm_pci_io(&bus, 0xcf8, (uint8_t *)&r, 4, false);
	g_assert_cmphex(r, ==, 0x80001810);
}

/* Absent functions, other buses and functions, and a disabled address read all ones. */
static void test_absent(void)
{
	struct vmm_pci bus;
	struct dev x;
	uint32_t v, a;

	vmm_pci_init(&bus);
	dev_init(&x, &bus);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0, 4), ==, 0x56781234);
	for (unsigned len = 1; len <= 4; len *= 2)
		g_assert_cmphex(cfg_read_at(&bus, 7, 0, len), ==, ones(len));   /* empty slot */
	address(&bus, 1, SLOT, 0, 0);                                        /* bus 1 */
	v = 0;
	vmm_pci_io(&bus, 0xcfc, (uint8_t *)&v, 4, false);
	g_assert_cmphex(v, ==, 0xffffffff);
	address(&bus, 0, SLOT, 1, 0);                                        /* function 1 */
	vmm_pci_io(&bus, 0xcfc, (uint8_t *)&v, 4, false);
	g_assert_cmphex(v, ==, 0xffffffff);
	a = (uint32_t)SLOT << 11;                                            /* enable bit clear */
	vmm_pci_io(&bus, 0xcf8, (uint8_t *)&a, 4, true);
	vmm_pci_io(&bus, 0xcfc, (uint8_t *)&v, 4, false);
	g_assert_cmphex(v, ==, 0xffffffff);
	/* A write there reaches nobody. */
	v = 0;
	vmm_pci_io(&bus, 0xcfc, (uint8_t *)&v, 4, true);
	g_assert_cmpuint(x.writes, ==, 0);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0, 4), ==, 0x56781234);
}

/* Every register at every size and offset: only the writable bits change. */
static void test_write_masks(void)
{
	struct vmm_pci bus;
	struct dev x;
	uint8_t before[256];

	vmm_pci_init(&bus);
	dev_init(&x, &bus);
	memcpy(before, x.pci.cfg, sizeof(before));
	/* All ones everywhere but the BARs (sized below), bytewise, wordwise, dwordwise. */
	for (unsigned len = 1; len <= 4; len *= 2)
		for (unsigned off = 0; off < 256; off += len)
			if (off + len <= 0x10 || off >= 0x28)
				cfg_write_at(&bus, SLOT, off, 0xffffffffu, len);
	for (unsigned off = 0; off < 256; off++) {
		uint8_t want = before[off];

		if (off == 0x04)
			want = 0x07;            /* command: I/O, memory, bus master */
		else if (off == 0x05)
			want = 0x04;            /* INTx disable */
		else if (off == 0x3c)
			want = 0xff;            /* interrupt line */
		g_assert_cmphex(cfg_read_at(&bus, SLOT, off, 1), ==, want);
	}
	g_assert_cmpuint(x.writes, >, 0);
	/* The device hears of each write: where and how long. */
	cfg_write_at(&bus, SLOT, 0x3c, 0x0b, 1);
	g_assert_cmpuint(x.written_off, ==, 0x3c);
	g_assert_cmpuint(x.written_len, ==, 1);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x3c, 1), ==, 0x0b);
	/* A dword at 0xfc read through 0xcfe reaches past the space: all ones, nothing written. */
	address(&bus, 0, SLOT, 0, 0xfc);
	{
		uint32_t v = 0;

		vmm_pci_io(&bus, 0xcfe, (uint8_t *)&v, 4, false);
		g_assert_cmphex(v, ==, 0xffffffff);
		x.writes = 0;
		vmm_pci_io(&bus, 0xcfe, (uint8_t *)&v, 4, true);
		g_assert_cmpuint(x.writes, ==, 0);
	}
}

/* BAR sizing as Linux does it: all ones, read the mask, write the address back. */
static void test_bar_sizing(void)
{
	struct vmm_pci bus;
	struct dev x;

	vmm_pci_init(&bus);
	dev_init(&x, &bus);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x10, 4), ==, 0xc0000000);
	cfg_write_at(&bus, SLOT, 0x10, 0xffffffff, 4);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x10, 4), ==, 0xfffff000);      /* 4 KiB, 32-bit */
	cfg_write_at(&bus, SLOT, 0x10, 0xc0000000, 4);
	g_assert_cmphex(vmm_pci_bar_addr(&x.pci, 0), ==, 0xc0000000);
	/* The 64-bit BAR: flags in the low dword, the size across both. */
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x18, 4), ==, 0x0000000c);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x1c, 4), ==, 0x4);
	cfg_write_at(&bus, SLOT, 0x18, 0xffffffff, 4);
	cfg_write_at(&bus, SLOT, 0x1c, 0xffffffff, 4);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x18, 4), ==, 0xc000000c);      /* 1 GiB */
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x1c, 4), ==, 0xffffffff);
	cfg_write_at(&bus, SLOT, 0x18, 0x80000000, 4);
	cfg_write_at(&bus, SLOT, 0x1c, 0x5, 4);
	g_assert_cmphex(vmm_pci_bar_addr(&x.pci, 2), ==, 0x580000000ull);
	/* Unimplemented BARs read 0 whatever is written; BARs take dword writes only. */
	cfg_write_at(&bus, SLOT, 0x14, 0xffffffff, 4);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x14, 4), ==, 0);
	cfg_write_at(&bus, SLOT, 0x24, 0xffffffff, 4);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x24, 4), ==, 0);
	cfg_write_at(&bus, SLOT, 0x12, 0xffff, 2);
	cfg_write_at(&bus, SLOT, 0x11, 0xff, 1);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x10, 4), ==, 0xc0000000);
}

/* MMIO reaches a trapping BAR where it is, only with memory decoding on. */
static void test_mmio_decoding(void)
{
	struct vmm_pci bus;
	struct dev x;
	uint64_t v = 0;

	vmm_pci_init(&bus);
	dev_init(&x, &bus);
	g_assert_false(vmm_pci_mmio(&bus, 0xc0000010, (uint8_t *)&v, 4, false));   /* decoding off */
	cfg_write_at(&bus, SLOT, 0x04, 0x0002, 2);
	g_assert_true(vmm_pci_mmio(&bus, 0xc0000010, (uint8_t *)&v, 4, false));
	g_assert_cmpuint(x.calls, ==, 1);
	g_assert_cmpuint(x.bar, ==, 0);
	g_assert_cmphex(x.off, ==, 0x10);
	g_assert_cmpuint(x.len, ==, 4);
	g_assert_cmphex(v, ==, 0xa5a5a5a5);
	g_assert_true(vmm_pci_mmio(&bus, 0xc0000ff8, (uint8_t *)&v, 8, true));
	g_assert_true(x.is_write);
	g_assert_cmphex(x.off, ==, 0xff8);
	g_assert_false(vmm_pci_mmio(&bus, 0xc0001000, (uint8_t *)&v, 4, false));   /* past it */
	g_assert_false(vmm_pci_mmio(&bus, 0xbffffffc, (uint8_t *)&v, 4, false));
	/* BAR 2 is memory behind a memslot, not trapped. */
	g_assert_false(vmm_pci_mmio(&bus, 0x400000000ull, (uint8_t *)&v, 4, false));
	/* The guest moves BAR 0: decoding follows. */
	cfg_write_at(&bus, SLOT, 0x10, 0xd0000000, 4);
	g_assert_false(vmm_pci_mmio(&bus, 0xc0000010, (uint8_t *)&v, 4, false));
	g_assert_true(vmm_pci_mmio(&bus, 0xd0000010, (uint8_t *)&v, 4, false));
	cfg_write_at(&bus, SLOT, 0x04, 0, 2);
	g_assert_false(vmm_pci_mmio(&bus, 0xd0000010, (uint8_t *)&v, 4, false));
	g_assert_cmpuint(x.calls, ==, 3);
}

/* The host side's mistakes are refused: bad BARs, slots, capabilities. */
static void test_host_errors(void)
{
	struct vmm_pci bus;
	struct dev x;
	struct vmm_pci_dev d;
	uint8_t body[8] = { 0 };

	vmm_pci_init(&bus);
	dev_init(&x, &bus);
	vmm_pci_dev_init(&d, 1, 2, 0, 0, 0);
	g_assert_cmpint(vmm_pci_set_bar(&d, 6, 0, 0x1000, 0, true), ==, -EINVAL);
	g_assert_cmpint(vmm_pci_set_bar(&d, 5, 0, 0x1000, VMM_BAR_MEM64, true), ==, -EINVAL);
	g_assert_cmpint(vmm_pci_set_bar(&d, 0, 0, 0x1800, 0, true), ==, -EINVAL);     /* not 2^n */
	g_assert_cmpint(vmm_pci_set_bar(&d, 0, 0x800, 0x1000, 0, true), ==, -EINVAL); /* misaligned */
	g_assert_cmpint(vmm_pci_set_bar(&d, 0, 0, 8, 0, true), ==, -EINVAL);          /* < 16 */
	g_assert_cmpint(vmm_pci_set_bar(&d, 0, 1ull << 32, 0x1000, 0, true), ==, -EINVAL);
	g_assert_cmpint(vmm_pci_set_bar(&d, 0, 0, 1ull << 32, 0, true), ==, -EINVAL);
	g_assert_cmpuint(d.bar_size[0], ==, 0);                                       /* untouched */
	g_assert_cmpint(vmm_pci_add(&bus, VMM_PCI_SLOTS, &d), ==, -EINVAL);
	g_assert_cmpint(vmm_pci_add(&bus, 0, &d), ==, -EBUSY);                         /* host bridge */
	g_assert_cmpint(vmm_pci_add(&bus, SLOT, &d), ==, -EBUSY);
	g_assert_cmpint(vmm_pci_add_cap(&d, 0x09, body, 1), ==, -EINVAL);
	g_assert_cmpint(d.cfg[0x34], ==, 0);
}

/* Walk the list as a driver does (pci_find_capability): at most 48 steps, none out of the space. */
static unsigned walk(struct vmm_pci *bus, unsigned dev, unsigned *offs, uint8_t *ids, unsigned max)
{
	unsigned n = 0;

	g_assert_cmphex(cfg_read_at(bus, dev, 0x06, 2) & 0x10, ==, 0x10);   /* status: list */
	for (unsigned p = cfg_read_at(bus, dev, 0x34, 1); p; p = cfg_read_at(bus, dev, p + 1, 1)) {
		g_assert_cmpuint(p, >=, 0x40);
		g_assert_cmpuint(p & 3, ==, 0);
		g_assert_cmpuint(n, <, max);
		offs[n] = p;
		ids[n++] = (uint8_t)cfg_read_at(bus, dev, p, 1);
	}
	return n;
}

/* Capabilities: appended dword-aligned without overlap until the space is full. */
static void test_capability_walk(void)
{
	struct vmm_pci bus;
	struct dev x;
	unsigned offs[64], lens[64], n, added = 0;
	uint8_t ids[64], body[24];
	int off;

	vmm_pci_init(&bus);
	dev_init(&x, &bus);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x06, 2) & 0x10, ==, 0);
	for (unsigned i = 0;; i++) {
		unsigned len = 2 + (i * 7) % 23;      /* 2..24 bytes, most not a dword multiple */

		for (unsigned k = 0; k < sizeof(body); k++)
			body[k] = (uint8_t)(i + k);
		off = vmm_pci_add_cap(&x.pci, (uint8_t)(0x80 + i), body, len);
		if (off < 0) {
			g_assert_cmpint(off, ==, -ENOSPC);
			break;
		}
		g_assert_cmpint(off, >=, 0x40);
		g_assert_cmpint(off + (int)len, <=, 256);
		lens[added++] = len;
	}
	g_assert_cmpuint(added, >, 8);
	n = walk(&bus, SLOT, offs, ids, G_N_ELEMENTS(offs));
	g_assert_cmpuint(n, ==, added);
	for (unsigned i = 0; i < n; i++) {
		g_assert_cmphex(ids[i], ==, 0x80 + i);
		if (i)
			g_assert_cmpuint(offs[i], ==, (offs[i - 1] + lens[i - 1] + 3) & ~3u);
		for (unsigned k = 2; k < lens[i]; k++)      /* the body is there, untouched */
			g_assert_cmphex(cfg_read_at(&bus, SLOT, offs[i] + k, 1), ==, (uint8_t)(i + k));
	}
	/* The guest cannot rewire the list: IDs and next pointers are read-only. */
	for (unsigned i = 0; i < n; i++)
		cfg_write_at(&bus, SLOT, offs[i], 0x4040, 2);
	cfg_write_at(&bus, SLOT, 0x34, 0x44, 1);
	cfg_write_at(&bus, SLOT, 0x06, 0, 2);
	g_assert_cmpuint(walk(&bus, SLOT, offs, ids, G_N_ELEMENTS(offs)), ==, added);
	g_assert_cmphex(ids[0], ==, 0x80);
}

/* A virtio-pci function: its capabilities as virtio_pci_modern reads them, BAR 2 the shared memory. */
static void test_virtio_capabilities(void)
{
	static const uint8_t devcfg[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	const uint64_t shm_gpa = 0x100000000ull, shm_len = 16ull << 20;
	struct vmm_pci bus;
	struct vmm_vm vm;
	struct vmm_virtio v;
	unsigned offs[16], n, seen = 0, msix = 0;
	uint8_t ids[16];

	vmm_vm_init(&vm);
	vmm_pci_init(&bus);
	g_assert_cmpint(vmm_virtio_init(&v, &vm, &bus, SLOT, 26, 0, 2, devcfg, sizeof(devcfg),
					0xc0000000, shm_gpa, shm_len), ==, 0);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x00, 4), ==, 0x105a1af4);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x08, 1), ==, 1);            /* revision 1: modern */
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x18, 4), ==, 0x0000000c);   /* 64-bit, prefetchable */
	g_assert_cmphex(cfg_read_at(&bus, SLOT, 0x1c, 4), ==, 1);
	n = walk(&bus, SLOT, offs, ids, G_N_ELEMENTS(offs));
	for (unsigned i = 0; i < n; i++) {
		unsigned p = offs[i], type, bar, len;

		if (ids[i] == 0x11) {                  /* MSI-X: 4 vectors, table and PBA in BAR 0 */
			msix = p;
			g_assert_cmphex(cfg_read_at(&bus, SLOT, p + 2, 2) & 0x7ff, ==, VMM_MSIX_VECTORS - 1);
			continue;
		}
		g_assert_cmphex(ids[i], ==, 0x09);
		type = cfg_read_at(&bus, SLOT, p + VIRTIO_PCI_CAP_CFG_TYPE, 1);
		bar = cfg_read_at(&bus, SLOT, p + VIRTIO_PCI_CAP_BAR, 1);
		len = cfg_read_at(&bus, SLOT, p + VIRTIO_PCI_CAP_LEN, 1);
		seen |= 1u << type;
		if (type == VIRTIO_PCI_CAP_SHARED_MEMORY_CFG) {
			/* struct virtio_pci_cap64: 64-bit offset and length, region id 0, BAR 2 */
			g_assert_cmpuint(len, ==, 24);
			g_assert_cmpuint(bar, ==, 2);
			g_assert_cmpuint(cfg_read_at(&bus, SLOT, p + 5, 1), ==, 0);
			g_assert_cmphex(cfg_read_at(&bus, SLOT, p + 8, 4), ==, 0);
			g_assert_cmphex(cfg_read_at(&bus, SLOT, p + 12, 4), ==, (uint32_t)shm_len);
			g_assert_cmphex(cfg_read_at(&bus, SLOT, p + 16, 4), ==, 0);
			g_assert_cmphex(cfg_read_at(&bus, SLOT, p + 20, 4), ==, (uint32_t)(shm_len >> 32));
		} else {
			g_assert_cmpuint(bar, ==, 0);
			g_assert_cmpuint(len, >=, 16);
		}
		if (type == VIRTIO_PCI_CAP_DEVICE_CFG)
			g_assert_cmpuint(cfg_read_at(&bus, SLOT, p + 12, 4), ==, sizeof(devcfg));
	}
	g_assert_cmphex(seen, ==, 1u << VIRTIO_PCI_CAP_COMMON_CFG | 1u << VIRTIO_PCI_CAP_NOTIFY_CFG |
			1u << VIRTIO_PCI_CAP_ISR_CFG | 1u << VIRTIO_PCI_CAP_DEVICE_CFG |
			1u << VIRTIO_PCI_CAP_SHARED_MEMORY_CFG);
	g_assert_cmpuint(msix, !=, 0);
	/* MSI-X enable and function mask are the only writable bits of the capability. */
	cfg_write_at(&bus, SLOT, msix, 0xffffffff, 4);
	g_assert_cmphex(cfg_read_at(&bus, SLOT, msix + 2, 2), ==, 0xc000 | (VMM_MSIX_VECTORS - 1));
	g_assert_cmphex(cfg_read_at(&bus, SLOT, msix, 1), ==, 0x11);
	g_assert_cmphex(vmm_pci_bar_addr(&v.pci, 2), ==, shm_gpa);
	/* A device configuration larger than its window is refused. */
	g_assert_cmpint(vmm_virtio_init(&v, &vm, &bus, SLOT + 1, 26, 0, 2, devcfg, 0x2000, 0xc0004000,
					0, 0), ==, -EINVAL);
	g_assert_cmpint(vmm_virtio_init(&v, &vm, &bus, SLOT, 26, 0, 2, NULL, 0, 0xc0004000, 0, 0),
			==, -EBUSY);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmm/pci/host-bridge", test_host_bridge);
	g_test_add_func("/vmm/pci/address-register", test_address_register);
	g_test_add_func("/vmm/pci/absent", test_absent);
	g_test_add_func("/vmm/pci/write-masks", test_write_masks);
	g_test_add_func("/vmm/pci/bar-sizing", test_bar_sizing);
	g_test_add_func("/vmm/pci/mmio-decoding", test_mmio_decoding);
	g_test_add_func("/vmm/pci/host-errors", test_host_errors);
	g_test_add_func("/vmm/pci/capability-walk", test_capability_walk);
	g_test_add_func("/vmm/pci/virtio-capabilities", test_virtio_capabilities);
	return g_test_run();
}
