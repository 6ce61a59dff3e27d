/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: a FUSE server passing one host directory through (the requests a
 * Linux virtio-fs client sends: memcheck-guest's linux check mounts it),
 * with FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING handed to a libdax session. It counts what the kernel sent: requests by opcode,
 * mapping flags, REMOVEMAPPING batch sizes, alignment.
 *
 * Transport-independent: one request in (fuse_in_header + arguments), one
 * reply out; virtio-fs.c moves them through virtqueues.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dax.h"
#include "vmm/err.h"

#define VMM_FUSE_OPS 64      /* opcodes counted individually (all Linux sends are below) */
#define VMM_FUSE_MAX_WRITE (128u << 10)   /* fuse_init_out.max_write; larger WRITEs are refused */

struct vmm_fuse_node {
	char *path;             /* relative to the root directory ("." for the root) */
	uint64_t nlookup;
};

struct vmm_fuse_file {
	int fd;                 /* -1: free */
	char **names;           /* directories: the entries, read at OPENDIR */
	unsigned *types;
	uint64_t *inos;
	size_t nnames;
};

#define VMM_FUSE_BATCH_BUCKETS 6

struct vmm_fuse_stats {
	uint64_t ops[VMM_FUSE_OPS];
	uint64_t unknown_ops;
	uint64_t errors;             /* replies with an error */
	/* Requests refused before any handler ran (short argument, bad name or
	 * length, no room for the reply): a well-behaved kernel sends none. */
	uint64_t refused;
	uint64_t setup_read, setup_write;      /* SETUPMAPPING by flags: read-only / writable */
	uint64_t setup_fh_none;      /* ... with fh = -1 (Linux never sends a handle) */
	uint64_t setup_len_2m;       /* ... of exactly 2 MiB */
	uint64_t setup_unaligned;    /* ... whose foffset/moffset is not 2 MiB aligned */
	uint64_t setup_failed;
	uint64_t remove_entries;     /* mappings named by REMOVEMAPPING */
	uint64_t remove_max_batch;
	uint64_t remove_batches_gt1; /* requests naming more than one mapping */
	/* REMOVEMAPPING requests by how many mappings they name: 1, 2-3, 4-7, 8-15, 16-31, 32+. */
	uint64_t remove_batch[VMM_FUSE_BATCH_BUCKETS];
	uint64_t remove_failed;
	uint64_t bytes_read, bytes_written;    /* through FUSE READ/WRITE */
	uint64_t max_write_seen;
	uint32_t init_minor, init_flags, init_flags2;
};

struct vmm_fuse {
	int root_fd;
	struct vmm_fuse_node *nodes;  /* index = nodeid; 0 unused, 1 root */
	size_t nnodes;
	struct vmm_fuse_file *files;  /* index = fh */
	size_t nfiles;
	struct dax_session *dax;     /* NULL: no DAX window */
	uint64_t window_len;
	uint32_t map_alignment_log2;
	/* Fault injection: shift every read-only mapping's file offset by 2 MiB. */
	bool inject_wrong_range;
	/* Debug: one line per SETUPMAPPING / REMOVEMAPPING (and the node's path) here. */
	FILE *trace;
	struct vmm_fuse_stats st;
	struct vmm_err error;        /* first unexpected failure or refused request, for the report */
};

/* root_fd is borrowed (must stay open). dax may be NULL. */
int vmm_fuse_init(struct vmm_fuse *f, int root_fd, struct dax_session *dax, uint64_t window_len);
void vmm_fuse_free(struct vmm_fuse *f);
/*
 * Handle one request of in_len bytes; the reply goes to out (cap bytes).
 * Returns the reply length, 0 when the request has no reply (FORGET,
 * BATCH_FORGET, INTERRUPT) or no room for one.
 *
 * Everything in the request is the guest's and hostile: nothing is read
 * outside [in, in + in_len) nor written outside [out, out + cap); in must
 * not change meanwhile (virtio-fs.c passes its own copy of the guest's
 * buffers, the fixed argument is copied again here). Each
 * opcode's fixed argument, names and lengths are checked once, before its
 * handler runs, and a request that fails gets -EINVAL (-ENAMETOOLONG for a
 * name longer than NAME_MAX), is counted in st.refused, and the first is
 * described in error; a reply that would not fit in cap is an error
 * reply instead (or nothing, when not even the header fits).
 */
size_t vmm_fuse_handle(struct vmm_fuse *f, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap);
/* The dax backend: opens a node's file for libdax (data = struct vmm_fuse). */
int vmm_fuse_dax_open(void *data, uint64_t nodeid, uint64_t fh, uint32_t prot,
		      struct dax_file_id *id);
const char *vmm_fuse_opname(unsigned op);
