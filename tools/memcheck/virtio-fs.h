/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: the virtio-fs device (virtio 1.2 section
 * 5.11): a hiprio queue and one request queue over the virtio-pci
 * transport, requests handed to the FUSE server, and the DAX cache window
 * as shared memory region 0 (its memslot is libdax's).
 */
#pragma once

#include "tools/memcheck/fuse-server.h"
#include "tools/memcheck/virtio-pci.h"

#define LX_VIRTIO_ID_FS 26

struct lx_virtiofs {
	struct lx_virtio v;
	uint8_t cfg[40];            /* tag[36], num_request_queues (le32) */
	struct lx_fuse *fuse;
	uint8_t *in, *out;
	size_t cap;
	struct lx_chain chain;
	uint64_t requests;
	uint64_t max_request;       /* largest request (bytes) */
	char error[160];
};

int lx_virtiofs_init(struct lx_virtiofs *fs, struct lx_vm *vm, unsigned slot, const char *tag,
		     struct lx_fuse *fuse, uint64_t bar0_gpa, uint64_t window_gpa,
		     uint64_t window_len);
void lx_virtiofs_free(struct lx_virtiofs *fs);
