/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: PCI configuration space and BAR decoding (pci.h). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "vmm/pci.h"

#define CFG_COMMAND   0x04
#define CFG_STATUS    0x06
#define CFG_BAR0      0x10
#define CFG_CAP_PTR   0x34
#define CMD_MEM       0x02
#define STATUS_CAPS   0x10

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

void vmm_pci_dev_init(struct vmm_pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_rev,
		      uint16_t sub_vendor, uint16_t sub_device)
{
	memset(d, 0, sizeof(*d));
	put16(d->cfg + 0x00, vendor);
	put16(d->cfg + 0x02, device);
	put32(d->cfg + 0x08, class_rev);
	put16(d->cfg + 0x2c, sub_vendor);
	put16(d->cfg + 0x2e, sub_device);
	/* Command: I/O, memory, bus master, INTx disable. Interrupt line: writable. */
	put16(d->wmask + CFG_COMMAND, 0x0407);
	d->wmask[0x3c] = 0xff;
}

void vmm_pci_init(struct vmm_pci *p)
{
	memset(p, 0, sizeof(*p));
	/* Intel 440FX host bridge: what pci_sanity_check() looks for on bus 0. */
	vmm_pci_dev_init(&p->host_bridge, 0x8086, 0x1237, 0x06000002, 0, 0);
	p->slot[0] = &p->host_bridge;
}

int vmm_pci_add(struct vmm_pci *p, unsigned slot, struct vmm_pci_dev *d)
{
	if (slot >= VMM_PCI_SLOTS)
		return -EINVAL;
	if (p->slot[slot])
		return -EBUSY;
	p->slot[slot] = d;
	return 0;
}

int vmm_pci_set_bar(struct vmm_pci_dev *d, unsigned bar, uint64_t addr, uint64_t size,
		    unsigned flags, bool trap)
{
	uint8_t *r = d->cfg + CFG_BAR0 + 4 * bar;

	if (bar >= 6 || ((flags & VMM_BAR_MEM64) && bar == 5) || size < 16 || (size & (size - 1)) ||
	    (addr & (size - 1)) || (!(flags & VMM_BAR_MEM64) && (addr >> 32 || size > 1ull << 31)))
		return -EINVAL;
	d->bar_size[bar] = size;
	d->bar_flags[bar] = flags;
	d->bar_trap[bar] = trap;
	put32(r, (uint32_t)(addr & ~0xfull) | flags);
	if (flags & VMM_BAR_MEM64)
		put32(r + 4, (uint32_t)(addr >> 32));
	return 0;
}

uint64_t vmm_pci_bar_addr(const struct vmm_pci_dev *d, unsigned bar)
{
	uint64_t a = get32(d->cfg + CFG_BAR0 + 4 * bar) & ~0xfull;

	if (d->bar_flags[bar] & VMM_BAR_MEM64)
		a |= (uint64_t)get32(d->cfg + CFG_BAR0 + 4 * bar + 4) << 32;
	return a;
}

int vmm_pci_add_cap(struct vmm_pci_dev *d, uint8_t id, const void *body, unsigned len)
{
	unsigned off = 0x40, p = 0;

	if (len < 2)
		return -EINVAL;
	/* Walk to the end of the list; the next one starts after the last (4-aligned). */
	if (d->cfg[CFG_STATUS] & STATUS_CAPS) {
		for (p = d->cfg[CFG_CAP_PTR]; d->cfg[p + 1]; p = d->cfg[p + 1])
			;
		off = (p + d->cap_len[p] + 3u) & ~3u;
	}
	if (off + len > sizeof(d->cfg))
		return -ENOSPC;
	if (p)
		d->cfg[p + 1] = (uint8_t)off;
	else
		d->cfg[CFG_CAP_PTR] = (uint8_t)off;
	d->cfg[CFG_STATUS] |= STATUS_CAPS;
	d->cap_len[off] = (uint8_t)len;
	memcpy(d->cfg + off, body, len);
	d->cfg[off] = id;
	d->cfg[off + 1] = 0;
	return (int)off;
}

/* A 32-bit BAR register write: address bits outside the size are read-only zeros. */
static void bar_write(struct vmm_pci_dev *d, unsigned reg, uint32_t v)
{
	unsigned bar = reg, lo = bar;
	uint64_t mask;

	if (bar > 0 && !d->bar_size[bar] && (d->bar_flags[bar - 1] & VMM_BAR_MEM64))
		lo = bar - 1;                 /* upper half of a 64-bit BAR */
	if (!d->bar_size[lo]) {
		put32(d->cfg + CFG_BAR0 + 4 * bar, 0);
		return;
	}
	mask = ~(d->bar_size[lo] - 1);
	if (lo == bar)
		put32(d->cfg + CFG_BAR0 + 4 * bar, (v & (uint32_t)mask & ~0xfu) | d->bar_flags[bar]);
	else
		put32(d->cfg + CFG_BAR0 + 4 * bar, v & (uint32_t)(mask >> 32));
}

static void cfg_write(struct vmm_pci_dev *d, unsigned off, const uint8_t *data, unsigned len)
{
	if (off >= CFG_BAR0 && off < CFG_BAR0 + 24) {
		/* Linux sizes and programs BARs with dword accesses only. */
		if (len == 4 && !(off & 3))
			bar_write(d, (off - CFG_BAR0) / 4, get32(data));
		return;
	}
	for (unsigned i = 0; i < len && off + i < 256; i++) {
		uint8_t m = d->wmask[off + i];

		d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~m) | (data[i] & m));
	}
	if (d->cfg_written)
		d->cfg_written(d, off, len);
}

void vmm_pci_io(struct vmm_pci *p, uint16_t port, uint8_t *data, unsigned len, bool is_write)
{
	struct vmm_pci_dev *d = NULL;
	unsigned off;

	if (port >= 0xcf8 && port < 0xcfc) {
		/* Only whole-dword accesses at 0xcf8 are the address register. */
		if (port == 0xcf8 && len == 4) {
			if (is_write)
				p->cf8 = get32(data);
			else
				put32(data, p->cf8);
		} else if (!is_write) {
			memset(data, 0xff, len);
		}
		return;
	}
	off = (p->cf8 & 0xfc) + (port - 0xcfc);
	/* Enabled, bus 0, function 0 only. */
	if ((p->cf8 & 0x80000000u) && !((p->cf8 >> 16) & 0xff) && !((p->cf8 >> 8) & 7))
		d = p->slot[(p->cf8 >> 11) & 0x1f];
	if (!d || off + len > 256) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write)
		cfg_write(d, off, data, len);
	else
		memcpy(data, d->cfg + off, len);
}

bool vmm_pci_mmio(struct vmm_pci *p, uint64_t gpa, uint8_t *data, unsigned len, bool is_write)
{
	for (unsigned s = 0; s < VMM_PCI_SLOTS; s++) {
		struct vmm_pci_dev *d = p->slot[s];

		if (!d || !(d->cfg[CFG_COMMAND] & CMD_MEM))
			continue;
		for (unsigned b = 0; b < 6; b++) {
			uint64_t a;

			if (!d->bar_size[b] || !d->bar_trap[b] || !d->bar_fn)
				continue;
			a = vmm_pci_bar_addr(d, b);
			if (gpa >= a && gpa - a < d->bar_size[b]) {
				d->bar_fn(d, b, gpa - a, data, len, is_write);
				return true;
			}
		}
	}
	return false;
}
