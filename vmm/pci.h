/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: PCI bus 0 through configuration mechanism #1 (ports 0xcf8
 * address, 0xcfc..0xcff data), a host bridge at 00:00.0 so Linux's
 * sanity check accepts the bus, and memory BARs decoded here (MMIO exits
 * dispatched to the device that owns the address). What the guest writes
 * to configuration space goes through each register's write mask.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define VMM_PCI_SLOTS 32

#define VMM_BAR_MEM64    0x04u   /* 64-bit memory BAR (takes two registers) */
#define VMM_BAR_PREFETCH 0x08u

struct vmm_pci_dev;
/* MMIO inside a BAR: off from the BAR's start, len 1..8. */
typedef void (*vmm_bar_fn)(struct vmm_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data,
			   unsigned len, bool is_write);

struct vmm_pci_dev {
	uint8_t cfg[256];
	uint8_t wmask[256];      /* bits the driver may write (besides BARs) */
	uint8_t cap_len[256];    /* each capability's length, at its offset */
	uint64_t bar_size[6];    /* 0: no BAR; a power of two */
	unsigned bar_flags[6];
	bool bar_trap[6];        /* exits in this BAR go to bar_fn (else: memory behind it) */
	vmm_bar_fn bar_fn;
	/* After a config write at [off, off + len) (e.g. MSI-X enable). */
	void (*cfg_written)(struct vmm_pci_dev *d, unsigned off, unsigned len);
	void *data;
};

struct vmm_pci {
	uint32_t cf8;
	struct vmm_pci_dev *slot[VMM_PCI_SLOTS];
	struct vmm_pci_dev host_bridge;
};

void vmm_pci_init(struct vmm_pci *p);
/* A device at 00:slot.0 with its IDs; add BARs and capabilities after. */
void vmm_pci_dev_init(struct vmm_pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_rev,
		      uint16_t sub_vendor, uint16_t sub_device);
/* 0, -EINVAL (no such slot) or -EBUSY (taken). */
int vmm_pci_add(struct vmm_pci *p, unsigned slot, struct vmm_pci_dev *d);
/*
 * A memory BAR at addr (assigned as firmware would; Linux keeps valid
 * assignments): size a power of two of at least 16 bytes, addr aligned to
 * it, a 64-bit BAR (VMM_BAR_MEM64) takes bar and bar + 1. 0 or -EINVAL.
 */
int vmm_pci_set_bar(struct vmm_pci_dev *d, unsigned bar, uint64_t addr, uint64_t size,
		    unsigned flags, bool trap);
uint64_t vmm_pci_bar_addr(const struct vmm_pci_dev *d, unsigned bar);
/*
 * Append a capability of len bytes (body's first two, the ID and the next
 * pointer, are filled here) at the next dword after the last one; returns
 * its offset, -EINVAL (len < 2) or -ENOSPC (past the 256-byte space).
 */
int vmm_pci_add_cap(struct vmm_pci_dev *d, uint8_t id, const void *body, unsigned len);

/* Port access in 0xcf8..0xcff. */
void vmm_pci_io(struct vmm_pci *p, uint16_t port, uint8_t *data, unsigned len, bool is_write);
/* MMIO: true if a trapping BAR of a device with memory decoding on claims gpa. */
bool vmm_pci_mmio(struct vmm_pci *p, uint64_t gpa, uint8_t *data, unsigned len, bool is_write);
