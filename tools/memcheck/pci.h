/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: PCI bus 0 through configuration mechanism #1
 * (ports 0xcf8 address, 0xcfc..0xcff data), a host bridge at 00:00.0 so
 * Linux's sanity check accepts the bus, and memory BARs decoded here
 * (MMIO exits dispatched to the device that owns the address).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define LX_PCI_SLOTS 32

#define LX_BAR_MEM64    0x04u   /* 64-bit memory BAR (takes two registers) */
#define LX_BAR_PREFETCH 0x08u

struct lx_pci_dev;
/* MMIO inside a BAR: off from the BAR's start, len 1..8. */
typedef void (*lx_bar_fn)(struct lx_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data,
			  unsigned len, bool is_write);

struct lx_pci_dev {
	uint8_t cfg[256];
	uint8_t wmask[256];      /* bits the driver may write (besides BARs) */
	uint64_t bar_size[6];    /* 0: no BAR; a power of two */
	unsigned bar_flags[6];
	bool bar_trap[6];        /* exits in this BAR go to bar_fn (else: memory behind it) */
	lx_bar_fn bar_fn;
	/* After a config write at [off, off + len) (e.g. MSI-X enable). */
	void (*cfg_written)(struct lx_pci_dev *d, unsigned off, unsigned len);
	void *data;
};

struct lx_pci {
	uint32_t cf8;
	struct lx_pci_dev *slot[LX_PCI_SLOTS];
	struct lx_pci_dev host_bridge;
};

void lx_pci_init(struct lx_pci *p);
/* A device at 00:slot.0 with its IDs; add BARs and capabilities after. */
void lx_pci_dev_init(struct lx_pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_rev,
		     uint16_t sub_vendor, uint16_t sub_device);
int lx_pci_add(struct lx_pci *p, unsigned slot, struct lx_pci_dev *d);
/* A memory BAR at addr (assigned as firmware would; Linux keeps valid assignments). */
void lx_pci_set_bar(struct lx_pci_dev *d, unsigned bar, uint64_t addr, uint64_t size,
		    unsigned flags, bool trap);
uint64_t lx_pci_bar_addr(const struct lx_pci_dev *d, unsigned bar);
/* Append a capability of len bytes (first two bytes filled here); returns its offset. */
unsigned lx_pci_add_cap(struct lx_pci_dev *d, uint8_t id, const void *body, unsigned len);

/* Port access in 0xcf8..0xcff. */
void lx_pci_io(struct lx_pci *p, uint16_t port, uint8_t *data, unsigned len, bool is_write);
/* MMIO: true if a trapping BAR of a device with memory decoding on claims gpa. */
bool lx_pci_mmio(struct lx_pci *p, uint64_t gpa, uint8_t *data, unsigned len, bool is_write);
