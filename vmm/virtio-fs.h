/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: the virtio-fs device (virtio 1.2 section 5.11): a hiprio queue
 * and one request queue over the virtio-pci transport, requests handed
 * to the FUSE server, and the DAX cache window as shared memory region 0
 * (its memslot is libdax's).
 */
#pragma once

#include "vmm/fuse-server.h"
#include "vmm/virtio-pci.h"

#define VMM_VIRTIO_ID_FS 26

struct vmm_virtiofs {
	struct vmm_virtio v;
	uint8_t cfg[40];            /* tag[36], num_request_queues (le32) */
	struct vmm_fuse *fuse;
	uint8_t *in, *out;
	size_t cap;
	struct vmm_chain chain;
	uint64_t requests;
	uint64_t max_request;       /* largest request (bytes) */
	struct vmm_err error;       /* the guest's first malformed request or chain */
};

/*
 * The device with tag (up to 36 bytes) on bus at slot, its requests served
 * by fuse, its cache window of window_len bytes at window_gpa (0: none).
 * 0 or -errno; free it either way.
 */
int vmm_virtiofs_init(struct vmm_virtiofs *fs, struct vmm_vm *vm, struct vmm_pci *bus,
		      unsigned slot, const char *tag, struct vmm_fuse *fuse, uint64_t bar0_gpa,
		      uint64_t window_gpa, uint64_t window_len);
void vmm_virtiofs_free(struct vmm_virtiofs *fs);
