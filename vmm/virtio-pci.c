/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: modern virtio-pci transport and split virtqueues (virtio-pci.h). */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "vmm/virtio-pci.h"

/* BAR 0 layout. */
#define OFF_COMMON  0x0000u
#define OFF_ISR     0x1000u
#define OFF_DEVICE  0x2000u
#define OFF_NOTIFY  0x3000u
#define NOTIFY_MULT 4u
#define OFF_MSIX    0x3800u
#define OFF_PBA     0x3c00u
#define BAR0_SIZE   0x4000u

#define NO_VECTOR   0xffffu

/* A chain of direct descriptors is at most the queue size (longer: a loop, refused). */
_Static_assert(VMM_CHAIN_MAX >= VMM_VQ_SIZE, "a chain the ring can hold fits in struct vmm_chain");

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void reset(struct vmm_virtio *v)
{
	v->driver_features = 0;
	v->dfselect = v->gfselect = 0;
	v->status = 0;
	v->isr = 0;
	v->queue_select = 0;
	v->msix_config = NO_VECTOR;
	for (unsigned q = 0; q < VMM_VQ_MAX; q++)
		v->vq[q] = (struct vmm_vq){ .size = VMM_VQ_SIZE, .msix_vector = NO_VECTOR };
}

/* ---- interrupts ------------------------------------------------------------ */

static bool msix_enabled(const struct vmm_virtio *v, unsigned cap, bool *fmask)
{
	uint16_t ctl = (uint16_t)get_le(v->pci.cfg + cap + 2, 2);

	*fmask = ctl & 0x4000;
	return ctl & 0x8000;
}

static unsigned msix_cap_off(const struct vmm_virtio *v)
{
	for (uint8_t p = v->pci.cfg[0x34]; p; p = v->pci.cfg[p + 1])
		if (v->pci.cfg[p] == 0x11)
			return p;
	return 0;
}

static void signal_vector(struct vmm_virtio *v, unsigned vec)
{
	bool fmask;
	unsigned cap = msix_cap_off(v);

	if (vec >= VMM_MSIX_VECTORS || !cap || !msix_enabled(v, cap, &fmask))
		return;     /* no INTx routing in this VM: MSI-X or nothing */
	if (fmask || (v->msix[vec].ctrl & 1)) {
		v->msix_pending |= 1u << vec;
		return;
	}
	v->msix_pending &= ~(1u << vec);
	{
		struct kvm_msi msi = {
			.address_lo = v->msix[vec].addr_lo, .address_hi = v->msix[vec].addr_hi,
			.data = v->msix[vec].data,
		};

		v->n_irq++;
		if (v->vm->vm_fd >= 0)
			ioctl(v->vm->vm_fd, KVM_SIGNAL_MSI, &msi);
	}
}

/* Deliver what became deliverable (a vector or the function was unmasked). */
static void msix_flush(struct vmm_virtio *v)
{
	for (unsigned i = 0; i < VMM_MSIX_VECTORS; i++)
		if (v->msix_pending & (1u << i))
			signal_vector(v, i);
}

void vmm_virtio_irq(struct vmm_virtio *v, unsigned q)
{
	v->isr |= 1;
	signal_vector(v, v->vq[q].msix_vector);
}

static void msix_cfg_written(struct vmm_pci_dev *d, unsigned off, unsigned len)
{
	(void)off;
	(void)len;
	msix_flush(d->data);
}

/* ---- BAR 0 registers -------------------------------------------------------- */

static uint64_t common_read(struct vmm_virtio *v, unsigned off, unsigned len)
{
	struct vmm_vq *q = v->queue_select < v->nvq ? &v->vq[v->queue_select] : NULL;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: return v->dfselect;
	case VIRTIO_PCI_COMMON_DF: return v->dfselect < 2 ? (uint32_t)(v->features >> (32 * v->dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT: return v->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return v->gfselect < 2 ? (uint32_t)(v->driver_features >> (32 * v->gfselect)) : 0;
	case VIRTIO_PCI_COMMON_MSIX: return v->msix_config;
	case VIRTIO_PCI_COMMON_NUMQ: return v->nvq;
	case VIRTIO_PCI_COMMON_STATUS: return v->status;
	case VIRTIO_PCI_COMMON_CFGGENERATION: return 0;
	case VIRTIO_PCI_COMMON_Q_SELECT: return v->queue_select;
	case VIRTIO_PCI_COMMON_Q_SIZE: return q ? q->size : 0;
	case VIRTIO_PCI_COMMON_Q_MSIX: return q ? q->msix_vector : NO_VECTOR;
	case VIRTIO_PCI_COMMON_Q_ENABLE: return q ? q->enabled : 0;
	case VIRTIO_PCI_COMMON_Q_NOFF: return v->queue_select;
	case VIRTIO_PCI_COMMON_Q_DESCLO: return q ? (uint32_t)q->desc : 0;
	case VIRTIO_PCI_COMMON_Q_DESCHI: return q ? (uint32_t)(q->desc >> 32) : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: return q ? (uint32_t)q->avail : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: return q ? (uint32_t)(q->avail >> 32) : 0;
	case VIRTIO_PCI_COMMON_Q_USEDLO: return q ? (uint32_t)q->used : 0;
	case VIRTIO_PCI_COMMON_Q_USEDHI: return q ? (uint32_t)(q->used >> 32) : 0;
	default: (void)len; return 0;
	}
}

static void set_lo(uint64_t *r, uint32_t v) { *r = (*r & ~0xffffffffull) | v; }
static void set_hi(uint64_t *r, uint32_t v) { *r = (*r & 0xffffffffull) | (uint64_t)v << 32; }

static void common_write(struct vmm_virtio *v, unsigned off, uint64_t val)
{
	struct vmm_vq *q = v->queue_select < v->nvq ? &v->vq[v->queue_select] : NULL;
	uint32_t x = (uint32_t)val;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: v->dfselect = x; break;
	case VIRTIO_PCI_COMMON_GFSELECT: v->gfselect = x; break;
	case VIRTIO_PCI_COMMON_GF:
		if (v->gfselect == 0)
			set_lo(&v->driver_features, x & (uint32_t)v->features);
		else if (v->gfselect == 1)
			set_hi(&v->driver_features, x & (uint32_t)(v->features >> 32));
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		v->msix_config = x < VMM_MSIX_VECTORS ? (uint16_t)x : NO_VECTOR;
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		if (!x)
			reset(v);
		else
			v->status = (uint8_t)x;
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT: v->queue_select = (uint16_t)x; break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		/* A power of two up to what we offered (split rings). */
		if (q && x && x <= VMM_VQ_SIZE && !(x & (x - 1)))
			q->size = (uint16_t)x;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (q)
			q->msix_vector = x < VMM_MSIX_VECTORS ? (uint16_t)x : NO_VECTOR;
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (q) {
			q->enabled = x & 1;
			q->last_avail = 0;
		}
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO: if (q) set_lo(&q->desc, x); break;
	case VIRTIO_PCI_COMMON_Q_DESCHI: if (q) set_hi(&q->desc, x); break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: if (q) set_lo(&q->avail, x); break;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: if (q) set_hi(&q->avail, x); break;
	case VIRTIO_PCI_COMMON_Q_USEDLO: if (q) set_lo(&q->used, x); break;
	case VIRTIO_PCI_COMMON_Q_USEDHI: if (q) set_hi(&q->used, x); break;
	default: break;
	}
}

static void bar0(struct vmm_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, unsigned len,
		 bool is_write)
{
	struct vmm_virtio *v = d->data;

	(void)bar;
	if (off < OFF_COMMON + 0x40) {
		if (is_write)
			common_write(v, (unsigned)off, get_le(data, len));
		else
			put_le(data, common_read(v, (unsigned)off, len), len);
	} else if (off == OFF_ISR) {
		if (!is_write) {
			put_le(data, v->isr, len);
			v->isr = 0;           /* reading ISR clears it */
		}
	} else if (off >= OFF_DEVICE && off < OFF_DEVICE + v->devcfg_len) {
		unsigned o = (unsigned)(off - OFF_DEVICE);

		if (!is_write) {
			memset(data, 0, len);
			memcpy(data, v->devcfg + o, len <= v->devcfg_len - o ? len : v->devcfg_len - o);
		}
	} else if (off >= OFF_NOTIFY && off < OFF_NOTIFY + NOTIFY_MULT * v->nvq) {
		unsigned q = (unsigned)(off - OFF_NOTIFY) / NOTIFY_MULT;

		/* Nothing more after a malformed chain until the driver resets the device. */
		if (is_write && v->vq[q].enabled && (v->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
		    !(v->status & VIRTIO_CONFIG_S_NEEDS_RESET)) {
			v->n_notify++;
			v->notify(v, q);
		}
	} else if (off >= OFF_MSIX && off < OFF_MSIX + 16u * VMM_MSIX_VECTORS) {
		unsigned e = (unsigned)(off - OFF_MSIX) / 16, w = (unsigned)(off - OFF_MSIX) % 16;
		/* An entry: address low, address high, data, vector control. */
		uint32_t *f = w < 4 ? &v->msix[e].addr_lo : w < 8 ? &v->msix[e].addr_hi :
			      w < 12 ? &v->msix[e].data : &v->msix[e].ctrl;
		if (is_write) {
			if (len == 8 && !(w & 4)) {   /* a 64-bit write covers two fields */
				uint64_t x = get_le(data, 8);

				f[0] = (uint32_t)x;
				f[1] = (uint32_t)(x >> 32);
			} else {
				*f = (uint32_t)get_le(data, len);
			}
			msix_flush(v);
		} else {
			put_le(data, *f, len < 4 ? len : 4);
		}
	} else if (off >= OFF_PBA && off < OFF_PBA + 8) {
		if (!is_write)
			put_le(data, off == OFF_PBA ? v->msix_pending : 0, len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
}

/* ---- capabilities ----------------------------------------------------------- */

static int vcap(struct vmm_virtio *v, uint8_t type, uint8_t bar, uint8_t id, uint64_t off,
		uint64_t len, uint32_t extra, bool has_extra, bool is64)
{
	uint8_t c[24] = { 0 };
	unsigned n = 16;

	c[2] = 16;
	c[3] = type;
	c[4] = bar;
	c[5] = id;
	put_le(c + 8, (uint32_t)off, 4);
	put_le(c + 12, (uint32_t)len, 4);
	if (has_extra) {
		put_le(c + 16, extra, 4);
		n = 20;
	}
	if (is64) {
		put_le(c + 16, (uint32_t)(off >> 32), 4);
		put_le(c + 20, (uint32_t)(len >> 32), 4);
		n = 24;
	}
	c[2] = (uint8_t)n;
	return vmm_pci_add_cap(&v->pci, 0x09, c, n);
}

/* The virtio structures' capabilities, then MSI-X (table and PBA in BAR 0). */
static int add_caps(struct vmm_virtio *v, uint64_t shm_len)
{
	uint8_t msix[12] = { 0 };
	int r;

	r = vcap(v, VIRTIO_PCI_CAP_COMMON_CFG, 0, 0, OFF_COMMON, 0x40, 0, false, false);
	if (r >= 0)
		r = vcap(v, VIRTIO_PCI_CAP_NOTIFY_CFG, 0, 0, OFF_NOTIFY, NOTIFY_MULT * v->nvq,
			 NOTIFY_MULT, true, false);
	if (r >= 0)
		r = vcap(v, VIRTIO_PCI_CAP_ISR_CFG, 0, 0, OFF_ISR, 1, 0, false, false);
	if (r >= 0 && v->devcfg_len)
		r = vcap(v, VIRTIO_PCI_CAP_DEVICE_CFG, 0, 0, OFF_DEVICE, v->devcfg_len, 0, false,
			 false);
	if (r >= 0 && shm_len)   /* shared memory region id 0: virtio-fs's DAX cache */
		r = vcap(v, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, 2, 0, 0, shm_len, 0, false, true);
	if (r < 0)
		return r;
	/* MSI-X: table size N-1, table and PBA in BAR 0. */
	put_le(msix + 2, VMM_MSIX_VECTORS - 1, 2);
	put_le(msix + 4, OFF_MSIX | 0, 4);
	put_le(msix + 8, OFF_PBA | 0, 4);
	r = vmm_pci_add_cap(&v->pci, 0x11, msix, sizeof(msix));
	if (r < 0)
		return r;
	v->pci.wmask[r + 3] = 0xc0;     /* enable, function mask */
	return 0;
}

int vmm_virtio_init(struct vmm_virtio *v, struct vmm_vm *vm, struct vmm_pci *bus, unsigned slot,
		    uint16_t device_id, uint64_t features, unsigned nvq, const void *devcfg,
		    unsigned devcfg_len, uint64_t bar0_gpa, uint64_t shm_gpa, uint64_t shm_len)
{
	int r;

	if (nvq > VMM_VQ_MAX || devcfg_len > OFF_NOTIFY - OFF_DEVICE)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->features = features | (1ull << VIRTIO_F_VERSION_1);
	v->nvq = nvq;
	v->devcfg = devcfg;
	v->devcfg_len = devcfg_len;
	reset(v);
	/* Class: "other" (0xff00), revision 1: a modern-only device. */
	vmm_pci_dev_init(&v->pci, 0x1af4, (uint16_t)(0x1040 + device_id), 0xff000001, 0x1af4,
			 (uint16_t)(0x1040 + device_id));
	v->pci.data = v;
	v->pci.bar_fn = bar0;
	v->pci.cfg_written = msix_cfg_written;
	r = vmm_pci_set_bar(&v->pci, 0, bar0_gpa, BAR0_SIZE, 0, true);
	if (r >= 0 && shm_len)
		r = vmm_pci_set_bar(&v->pci, 2, shm_gpa, shm_len, VMM_BAR_MEM64 | VMM_BAR_PREFETCH,
				    false);
	if (r >= 0)
		r = add_caps(v, shm_len);
	return r < 0 ? r : vmm_pci_add(bus, slot, &v->pci);
}

/* ---- split virtqueues ---------------------------------------------------------- */

/*
 * A ring of queue qi in guest RAM, len bytes at gpa: inside RAM and aligned
 * as virtio 1.x (2.7 "Split Virtqueues") requires of the driver, descriptors
 * on 16, the available ring on 2, the used ring on 4 bytes (the casts to
 * struct vring_* are undefined on anything less). NULL, with v->error, if not.
 */
static void *ring(struct vmm_virtio *v, unsigned qi, const char *what, uint64_t gpa, uint64_t len,
		  unsigned align)
{
	void *p = gpa & (align - 1) ? NULL : vmm_vm_ram(v->vm, gpa, len);

	if (!p)
		vmm_fail(&v->error, -EFAULT, "queue %u: %s ring at 0x%llx %s", qi, what,
			 (unsigned long long)gpa, gpa & (align - 1) ? "misaligned" : "outside RAM");
	return p;
}

/* Refuse the driver's chain: the device needs a reset (virtio 1.x 2.1.2). */
static int bad_chain(struct vmm_virtio *v, unsigned qi, int err, const char *why)
{
	vmm_fail(&v->error, err, "queue %u: %s", qi, why);
	v->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	return err;
}

/* One descriptor, each field read once from guest memory (the guest may change it meanwhile). */
static struct vring_desc read_desc(const struct vring_desc *d)
{
	return (struct vring_desc){
		.addr = __atomic_load_n(&d->addr, __ATOMIC_RELAXED),
		.len = __atomic_load_n(&d->len, __ATOMIC_RELAXED),
		.flags = __atomic_load_n(&d->flags, __ATOMIC_RELAXED),
		.next = __atomic_load_n(&d->next, __ATOMIC_RELAXED),
	};
}

/* Append descriptor d (its buffer at p) to c: readable ones first, then writable. */
static int chain_add(struct vmm_virtio *v, unsigned qi, struct vmm_chain *c,
		     const struct vring_desc *d, void *p)
{
	if (d->flags & VRING_DESC_F_WRITE) {
		if (c->nw == VMM_CHAIN_MAX)
			return bad_chain(v, qi, -E2BIG, "more than VMM_CHAIN_MAX writable descriptors");
		c->w[c->nw++] = (struct iovec){ p, d->len };
		c->w_len += d->len;
	} else {
		if (c->nw)
			return bad_chain(v, qi, -EINVAL, "readable after writable");
		if (c->nr == VMM_CHAIN_MAX)
			return bad_chain(v, qi, -E2BIG, "more than VMM_CHAIN_MAX readable descriptors");
		c->r[c->nr++] = (struct iovec){ p, d->len };
		c->r_len += d->len;
	}
	return 0;
}

int vmm_virtio_pop(struct vmm_virtio *v, unsigned qi, struct vmm_chain *c)
{
	struct vmm_vq *q = &v->vq[qi];
	struct vring_desc *desc = ring(v, qi, "descriptor", q->desc, 16ull * q->size, 16);
	struct vring_avail *avail = ring(v, qi, "available", q->avail, 4 + 2ull * q->size, 2);
	struct vring_used *used = ring(v, qi, "used", q->used, 4 + 8ull * q->size, 4);
	struct vring_desc d;
	uint16_t idx, head, i;
	unsigned n = 0;
	int r;

	if (!desc || !avail || !used) {
		v->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
		return -EFAULT;
	}
	idx = __atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE);
	if (idx == q->last_avail)
		return 0;
	if ((uint16_t)(idx - q->last_avail) > q->size)
		return bad_chain(v, qi, -EINVAL, "available index ahead by more than the queue size");
	head = __atomic_load_n(&avail->ring[q->last_avail % q->size], __ATOMIC_RELAXED);
	q->last_avail++;
	memset(c, 0, offsetof(struct vmm_chain, r));
	c->r_len = c->w_len = 0;
	c->head = head;
	for (i = head;; i = d.next) {        /* d: the copy, never desc[i] again */
		void *p;

		if (i >= q->size || ++n > q->size)
			return bad_chain(v, qi, -EINVAL,
					 "bad descriptor chain (index out of the ring or a loop)");
		d = read_desc(&desc[i]);
		if (d.flags & VRING_DESC_F_INDIRECT)
			return bad_chain(v, qi, -EINVAL, "indirect descriptor (not offered)");
		p = vmm_vm_ram(v->vm, d.addr, d.len);
		if (!p) {
			vmm_fail(&v->error, -EFAULT, "queue %u: buffer 0x%llx+%u outside RAM", qi,
				 (unsigned long long)d.addr, d.len);
			v->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
			return -EFAULT;
		}
		r = chain_add(v, qi, c, &d, p);
		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
	}
	return 1;
}

void vmm_virtio_push(struct vmm_virtio *v, unsigned qi, uint16_t head, uint32_t written)
{
	struct vmm_vq *q = &v->vq[qi];
	struct vring_used *used = ring(v, qi, "used", q->used, 4 + 8ull * q->size, 4);
	uint16_t idx;

	if (!used)
		return;
	idx = used->idx;
	used->ring[idx % q->size].id = head;
	used->ring[idx % q->size].len = written;
	__atomic_store_n(&used->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
	/* The used ring is the device's write into guest RAM: report it (vm.h). */
	vmm_vm_ram_written(v->vm, q->used, 4 + 8ull * q->size);
}
