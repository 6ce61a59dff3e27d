/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libsandbox internals shared by its source files (never installed). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox.h"

/*
 * The lock word shared by host and guest views: EXCL while an exclusive
 * operation runs, guest enters counted in bits 32..62, host copies in
 * progress in bits 0..31. Exclusive operations only start from 0, so they
 * never race with a running guest or a host copy; everything else fails
 * with -EBUSY while EXCL is set.
 */
#define SBX_EXCL       (1ull << 63)
#define SBX_GUEST_ONE  (1ull << 32)
#define SBX_GUEST_MASK (((1ull << 31) - 1) << 32)
#define SBX_HOST_MASK  ((1ull << 32) - 1)

struct sbx_binding;

struct sbx_snapshot {
	int refs;                 /* atomic */
	int fd;                   /* sealed memfd or fs-verity file */
	uint64_t size;
	const uint8_t *ro;        /* PROT_READ MAP_SHARED mapping of fd */
	bool direct;              /* accepted without a copy */
};

struct sbx_mem {
	int refs;                 /* atomic: host handle + guest view + bindings */
	uint8_t *base;            /* byte 0 (guard pages around it) */
	uint64_t size;
	uint64_t npages;
	size_t page;
	unsigned page_shift;
	uint64_t state;           /* atomic lock word, see SBX_EXCL */
	uint64_t *dirty;          /* host record (+ fetched KVM logs), one bit per page */
	size_t dirty_words;
	bool untracked;           /* writes since the last remap the record may lack */
	bool raw_untracked;       /* raw pointer handed out without a promise: for good */
	bool host_alive;          /* sbx_mem_free() not yet called */
	struct sbx_guest *guest;
	struct sbx_snapshot *snap; /* base snapshot (MAP_PRIVATE of its fd) or NULL */
	uint64_t snap_len;        /* bytes [0, snap_len) map snap; the rest (after a
				     sbx_mem_resize() grow) is anonymous zero memory */
	GPtrArray *binds;         /* struct sbx_binding *, writable ones matter to restore */
	struct sbx_mem_stats st;
};

struct sbx_guest {
	struct sbx_mem *m;
};

struct sbx_binding {
	struct sbx_vm *vm;
	struct sbx_mem *mem;      /* or */
	struct sbx_snapshot *snap;
	uint32_t slot;
	uint32_t kflags;
	uint64_t gpa;
	uint64_t *log;            /* KVM dirty log buffer (mem bindings with dirty log) */
};

struct sbx_vm {
	int vm_fd;
	int kvm_fd;               /* -1 when borrowed */
	bool owned;
	GPtrArray *binds;
};

/* mem.c */
void sbx_mem_unref_internal(struct sbx_mem *m);
struct sbx_mem *sbx_mem_ref_internal(struct sbx_mem *m);
int sbx_excl_begin(struct sbx_mem *m);
void sbx_excl_end(struct sbx_mem *m);
int sbx_host_begin(struct sbx_mem *m);
void sbx_host_end(struct sbx_mem *m);
void sbx_mark_dirty(struct sbx_mem *m, uint64_t off, uint64_t len);
/* Map snap's fd MAP_PRIVATE|MAP_FIXED over the region (same address, no gap). */
int sbx_mem_remap(struct sbx_mem *m, struct sbx_snapshot *snap);
void sbx_dirty_clear(struct sbx_mem *m);

/* access.c: volatile copies on raw pointers (bounds already checked) */
void sbx_vcopy_out(void *dst, const volatile uint8_t *src, size_t len);
void sbx_vcopy_in(volatile uint8_t *dst, const void *src, size_t len);
void sbx_vfill(volatile uint8_t *dst, uint8_t byte, size_t len);
bool sbx_range_ok(const struct sbx_mem *m, uint64_t off, uint64_t len);
/* Begin a host access to [off, off + len) (checked inside, where the size is
 * stable); on success the caller must sbx_host_end(). */
int sbx_host_access(struct sbx_mem *m, uint64_t off, uint64_t len);

/* snapshot.c */
int sbx_snapshot_new_sealed(uint64_t size, int *fd_out, uint8_t **rw_out);
int sbx_snapshot_wrap(int fd, uint64_t size, bool direct, struct sbx_snapshot **out);

/* kvm.c: fetch the dirty logs of m's writable bindings into m->dirty.
 * Returns 1 if guest writes may be missing from the record (a writable
 * binding without dirty log, or a log that could not be read), else 0. */
int sbx_kvm_collect(struct sbx_mem *m);
void sbx_kvm_drop_mem_bindings(struct sbx_mem *m);

/* snapfile.c */
uint64_t sbx_hash64(const void *p, size_t len, uint64_t seed);
