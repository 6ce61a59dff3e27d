/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: where its devices sit in the guest on
 * vmm/'s machine (linux.c, linux-fio.c), and the DAX backend of its
 * virtio-fs device (linux-dax.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dax.h"
#include "vmm/err.h"
#include "vmm/fuse-server.h"
#include "vmm/machine.h"

/* Guest-physical layout above RAM. */
#define LX_GPA_PCI_MMIO  0xc0000000ull    /* 32-bit BARs */
#define LX_GPA_DAX       0x100000000ull   /* the virtio-fs cache window (64-bit BAR) */
#define LX_GPA_DAX_FIO   0x110000000ull   /* the second device's (linux-fio.h), 256 MiB aligned */
/* Memslots (0 is the machine's RAM) and PCI slots (0 is the host bridge). */
#define LX_SLOT_DAX      1
#define LX_SLOT_DAX_FIO  2
#define LX_PCI_FS        1
#define LX_PCI_FS_FIO    2

#define LX_WINDOW_LEN    (16ull << 20)    /* the check's window: 8 DAX ranges of 2 MiB */

/*
 * The DAX backend of the check's virtio-fs device (linux-dax.c): a libdax
 * session over the window, replaceable while the guest runs (snapshot,
 * destroy, create, restore: a device-backend restart), and the exit
 * handlers that let libdax bind slots lazily.
 */
struct lx_dax {
	struct dax_session *s;
	struct dax_session *fio;  /* the fio device's window (linux-fio.h), or NULL */
	struct vmm_fuse *fuse;
	struct dax_config cfg;
	struct dax_backend be;
	bool restarted;
	int err;                 /* restart failure */
	uint64_t restore_ns;     /* snapshot + free + new + restore */
	size_t blob_len;
	uint64_t slots;          /* slots in the snapshot */
	uint64_t efault_binds;   /* slots bound after a bare EFAULT (no exit info) */
	uint64_t exits_handled;  /* MMIO / memory-fault exits libdax handled (lazy rebind) */
	struct dax_stats before; /* the first session's counters at the restart */
	/* Fault injection "drop-write": the window's reservation of a custom mapper. */
	uint8_t *drop_base;
	struct dax_mapper_ops drop_ops;
};

/*
 * The session for fuse's window on m (its memslot LX_SLOT_DAX at
 * LX_GPA_DAX); drop_writes: through the fault injection's mapper that
 * loses the guest's stores. Sets fuse->dax. 0 or -errno (e).
 */
int lx_dax_open(struct lx_dax *d, struct vmm_machine *m, struct vmm_fuse *fuse, bool drop_writes,
		struct vmm_err *e);
/* Close after the machine (the window's memslot is in its VM). */
void lx_dax_close(struct lx_dax *d);
/* The machine's mmio_fn and efault_fn (data: the struct lx_dax). */
int lx_dax_exit(void *data, struct kvm_run *run);
int lx_dax_efault(void *data);
/* The restart; d->err and d->s say how it went. */
void lx_dax_restart(struct lx_dax *d);
