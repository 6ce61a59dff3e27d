/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest: the test region a check gives its guest. A thin layer
 * over libsandbox (sbx_*): every host access goes through the library's
 * bounds-checked volatile API, binding is the library's KVM binding.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "tools/memcheck/vm.h"

struct mc_mem;

#define MC_MEM_RO    1u   /* bind read-only (KVM_MEM_READONLY) */
#define MC_MEM_DIRTY 2u   /* bind with dirty logging */

/* 0 or -errno; on failure *why says which library call failed. */
int mc_mem_new(uint64_t size, struct mc_mem **out, const char **why);
/* The same in a guest_memfd of vm (libsandbox's sbx_vm_mem_new_gmem): -EOPNOTSUPP
 * where the kernel cannot; it binds into vm only. */
int mc_mem_new_gmem(uint64_t size, struct mc_vm *vm, struct mc_mem **out, const char **why);
void mc_mem_free(struct mc_mem *m);
uint64_t mc_mem_size(const struct mc_mem *m);
/*
 * The host mapping (for the benchmark's memset/memcmp over the same bytes),
 * taken with libsandbox's will_mark_dirty promise: report every store
 * through it with mc_mem_mark_dirty() before the next snapshot or restore.
 */
void *mc_mem_host_ptr(struct mc_mem *m);
int mc_mem_mark_dirty(struct mc_mem *m, uint64_t off, uint64_t len);
int mc_mem_read(struct mc_mem *m, uint64_t off, void *buf, size_t len);
int mc_mem_write(struct mc_mem *m, uint64_t off, const void *buf, size_t len);
int mc_mem_bind(struct mc_mem *m, struct mc_vm *vm, uint32_t slot, uint64_t gpa,
		unsigned flags, const char **why);
/* The guest's dirty pages since the last call, one bit per 4 KiB page; clears the log. */
int mc_mem_dirty_log(struct mc_mem *m, uint64_t *bitmap, const char **why);
/* Snapshot of the current bytes; restore the region to it (O(dirty)): pages restored. */
int mc_mem_snapshot(struct mc_mem *m, const char **why);
int64_t mc_mem_restore(struct mc_mem *m, const char **why);
/* How the restores so far were done (libsandbox's counters). */
int mc_mem_restore_counts(struct mc_mem *m, uint64_t *copy, uint64_t *remap, uint64_t *trim);
