/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: the modern virtio-pci transport (virtio 1.x, section 4.1):
 * common/notify/ISR/device configuration structures and the MSI-X table
 * in BAR 0, an optional shared memory region (the virtio-fs DAX window)
 * as a 64-bit BAR 2 described by a VIRTIO_PCI_CAP_SHARED_MEMORY_CFG
 * capability, split virtqueues, interrupts by KVM_SIGNAL_MSI.
 *
 * Queues are processed synchronously on the vCPU thread when the driver
 * writes a notify register (an MMIO exit).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/err.h"
#include "vmm/pci.h"
#include "vmm/vm.h"

#define VMM_VQ_MAX       4
#define VMM_VQ_SIZE      128
#define VMM_MSIX_VECTORS 4
#define VMM_CHAIN_MAX    260      /* descriptors per chain we accept */

/*
 * One request: the device-readable then the device-writable buffers (host
 * pointers into guest RAM). A device that stores into w[] reports the
 * bytes with vmm_vm_ram_written_at() (vm.h), as virtio-fs does.
 */
struct vmm_chain {
	uint16_t head;
	unsigned nr, nw;
	struct iovec r[VMM_CHAIN_MAX];
	struct iovec w[VMM_CHAIN_MAX];
	uint64_t r_len, w_len;
};

struct vmm_vq {
	uint16_t size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc, avail, used;
	uint16_t last_avail;
};

struct vmm_virtio {
	struct vmm_pci_dev pci;
	struct vmm_vm *vm;          /* guest RAM (the rings, the buffers), MSIs */
	uint64_t features;          /* offered */
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint8_t isr;
	uint16_t queue_select;
	uint16_t msix_config;
	unsigned nvq;
	struct vmm_vq vq[VMM_VQ_MAX];
	struct { uint32_t addr_lo, addr_hi, data, ctrl; } msix[VMM_MSIX_VECTORS];
	uint32_t msix_pending;
	const uint8_t *devcfg;
	unsigned devcfg_len;
	/* The driver notified queue q. */
	void (*notify)(struct vmm_virtio *v, unsigned q);
	void *data;
	uint64_t n_notify, n_irq;
	struct vmm_err error;       /* the guest's first transport error (bad descriptor ...) */
};

/*
 * Set up the PCI function (vendor 0x1af4, device 0x1040 + device_id) with
 * BAR 0 at bar0_gpa and, if shm_len, BAR 2 = shared memory region 0 at
 * shm_gpa (a power-of-two size; not trapped: the caller backs it with a
 * memslot), and add it to bus at slot. Its rings and buffers are in vm's
 * RAM (vm_fd -1: no interrupts are sent). 0 or -errno.
 */
int vmm_virtio_init(struct vmm_virtio *v, struct vmm_vm *vm, struct vmm_pci *bus, unsigned slot,
		    uint16_t device_id, uint64_t features, unsigned nvq, const void *devcfg,
		    unsigned devcfg_len, uint64_t bar0_gpa, uint64_t shm_gpa, uint64_t shm_len);
/*
 * Next available chain of queue q: 1 got one, 0 none, -errno malformed
 * (v->error says why; the device then sets DEVICE_NEEDS_RESET in its status
 * and ignores notifications until the driver resets it). Rings must be in
 * RAM and aligned (16/2/4 bytes); each descriptor is read from guest memory
 * once.
 */
int vmm_virtio_pop(struct vmm_virtio *v, unsigned q, struct vmm_chain *c);
/* Return a chain with written bytes to the used ring (reported as written, vm.h). */
void vmm_virtio_push(struct vmm_virtio *v, unsigned q, uint16_t head, uint32_t written);
/* Interrupt the driver for queue q (its MSI-X vector). */
void vmm_virtio_irq(struct vmm_virtio *v, unsigned q);
