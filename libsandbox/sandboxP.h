/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libsandbox internals shared by its source files (never installed).
 *
 * The files form layers; each calls only the ones below it:
 *
 *   access.c  stack.c  mem-snapshot.c  kvm.c     host copies, the buffer stack,
 *   gmem-vm.c                                    take/restore/trim, memslots,
 *                                                guest_memfd regions' creation
 *   mem.c     snapfile.c                         the region core; snapshot files
 *                                                (save, load, open lazily)
 *   gmem.c                                       guest_memfd: window, rewrite
 *   dirty.c   snapshot.c                         dirty record, snapshot objects
 *   lazyserve.c                                  a lazy snapshot's fault service
 *   lazymap.c                                    memory paged in from one
 *   lazy.c                                       its file, chunks read and verified
 *   snapfmt.c                                    the file format
 *   vcopy.c   log.c   version.c                  volatile copies, the log hook
 *
 * Every function one file offers another is declared here, in the section
 * of the file that defines it.
 */
#pragma once

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <pthread.h>

#include "common/log.h"
#include "common/uffd.h"
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
struct sbx_gmem;
struct sbx_lazy;
struct sbx_lazy_map;

struct sbx_snapshot {
	int refs;                 /* atomic */
	int fd;                   /* sealed memfd or fs-verity file; -1 when lazy */
	uint64_t size;
	const uint8_t *ro;        /* PROT_READ MAP_SHARED mapping of fd, or the lazy view */
	bool direct;              /* accepted without a copy */
	struct sbx_lazy *lazy;    /* paged in on demand (lazy.c), or NULL */
	struct sbx_lazy_map *view; /* ... its read-only view (ro), one of its mappings */
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
	struct sbx_snapshot *snap; /* base snapshot (MAP_PRIVATE of its fd, or lazily
				      loaded anonymous memory: lmap) or NULL */
	struct sbx_lazy_map *lmap; /* [0, snap_len) when snap is lazy, else NULL */
	uint8_t *scratch;         /* a lazy copy-back's chunk buffer (inside the restore) */
	uint64_t snap_len;        /* bytes [0, snap_len) map snap; the rest (after a
				     sbx_mem_resize() grow) is anonymous zero memory */
	struct sbx_binding *binds; /* list through mem_next; writable ones matter to restore */
	struct sbx_gmem *gmem;    /* backed by guest_memfd (gmem.c), or NULL */
	struct sbx_mem_stats st;
};

struct sbx_guest {
	struct sbx_mem *m;
};

/*
 * A memslot bound through a VM: on its VM's list (vm_next) and, for a
 * region, on the region's list (mem_next). The lists are intrusive so that
 * binding allocates nothing after the memslot exists (nothing left to fail).
 */
struct sbx_binding {
	struct sbx_vm *vm;
	struct sbx_mem *mem;      /* or */
	struct sbx_snapshot *snap;
	struct sbx_binding *vm_next;
	struct sbx_binding *mem_next;
	uint32_t slot;
	uint32_t kflags;
	uint64_t gpa;
	uint64_t *log;            /* KVM dirty log buffer (mem bindings with dirty log) */
};

struct sbx_vm {
	int vm_fd;
	int kvm_fd;               /* -1 when borrowed */
	bool owned;
	struct sbx_binding *binds; /* list through vm_next */
};

/* ---- log.c: the library's log hook (sbx_set_log_fn(3)) ---- */
extern struct mk_log sbx_log;
/* Every refusal path: sbx_refuse(LOG_DEBUG, "sbx_mem_new: size %llu ...", ...). */
#define sbx_refuse(priority, ...) mk_log(&sbx_log, (priority), __VA_ARGS__)

/* ---- vcopy.c: volatile copies on raw pointers (bounds already checked) ---- */
void sbx_vcopy_out(void *dst, const volatile uint8_t *src, size_t len);
void sbx_vcopy_in(volatile uint8_t *dst, const void *src, size_t len);
void sbx_vfill(volatile uint8_t *dst, uint8_t byte, size_t len);

/*
 * One value of size 1, 2, 4 or 8 bytes: a single volatile access of that
 * width when src/dst is aligned to it, else byte-exact sbx_vcopy_*().
 * Inline (with a constant size the switch folds to one load or store).
 */
static inline void sbx_vload(void *dst, const volatile uint8_t *src, size_t size)
{
	if (((uintptr_t)src & (size - 1)) == 0) {
		uint64_t v;
		switch (size) {
		case 1: v = *src; break;
		case 2: v = *(const volatile uint16_t *)src; break;
		case 4: v = *(const volatile uint32_t *)src; break;
		case 8: v = *(const volatile uint64_t *)src; break;
		default: goto bytes;
		}
		switch (size) {
		case 1: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
		case 2: { uint16_t x = (uint16_t)v; memcpy(dst, &x, 2); break; }
		case 4: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
		default: memcpy(dst, &v, 8); break;
		}
		return;
	}
bytes:
	sbx_vcopy_out(dst, src, size);
}

static inline void sbx_vstore(volatile uint8_t *dst, const void *src, size_t size)
{
	if (((uintptr_t)dst & (size - 1)) == 0) {
		switch (size) {
		case 1: { uint8_t x; memcpy(&x, src, 1); *dst = x; return; }
		case 2: { uint16_t x; memcpy(&x, src, 2); *(volatile uint16_t *)dst = x; return; }
		case 4: { uint32_t x; memcpy(&x, src, 4); *(volatile uint32_t *)dst = x; return; }
		case 8: { uint64_t x; memcpy(&x, src, 8); *(volatile uint64_t *)dst = x; return; }
		default: break;
		}
	}
	sbx_vcopy_in(dst, src, size);
}

/* ---- snapshot.c: snapshot objects ---- */
/* A new memfd of size bytes, mapped shared read-write for filling. */
int sbx_snapshot_new_sealed(uint64_t size, int *fd_out, uint8_t **rw_out);
/* Seal fd (after its writable mapping is gone) and wrap it. Takes fd. */
int sbx_snapshot_seal_and_wrap(int fd, uint64_t size, struct sbx_snapshot **out);
/* A snapshot paged in from z, with its read-only view. Takes z (freed on failure). */
int sbx_snapshot_wrap_lazy(struct sbx_lazy *z, struct sbx_snapshot **out);

/* ---- snapfile.c: snapshot files ---- */
/* sbx_snapshot_save_chunked() writing version (3: what 0.3 wrote, for tests; 4). */
int sbx_snapshot_save_version(const struct sbx_snapshot *s, int fd, uint32_t chunk_size, unsigned flags,
			      uint32_t version);

/* ---- snapfmt.c: the snapshot file format (memkit-snapshot(5)) ---- */
#define SBX_SNAPF_HDR 4096u
/* Version 4: the unit of table (and zero bitmap) the index checksums, and a lazy open reads. */
#define SBX_SNAPF_BLOCK 4096u

static inline uint64_t sbx_bitmap_words(uint64_t bits)
{
	return (bits + 63) / 64;
}

static inline bool sbx_bit(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

/* A parsed and checked header. */
struct sbx_snapf {
	uint32_t version;       /* 1 to 4 */
	uint64_t size;          /* data bytes */
	uint64_t data_off;
	uint64_t data_sum;      /* versions 1 and 2: checksum of all the data */
	uint64_t hdr_sum;       /* the header checksum (seeds the working set's) */
	/* versions 3 and 4 */
	uint32_t chunk;         /* bytes, a power of two */
	unsigned chunk_shift;
	uint32_t alg;           /* SBX_CHECKSUM_* of the chunks */
	uint64_t nchunks;
	uint64_t meta_off;      /* the table, the zero bitmap, zeros up to ws_off */
	uint64_t meta_len;      /* a multiple of SBX_SNAPF_BLOCK */
	uint64_t meta_sum;      /* version 3: the table's checksum; 4: the index's */
	uint64_t idx_off;       /* version 4: the index, a checksum a table block */
	uint64_t idx_len;       /* (0 in version 3) */
	uint64_t nblocks;       /* version 4: meta_len / SBX_SNAPF_BLOCK */
	uint64_t ws_off;        /* the working-set section */
	uint64_t ws_len;
};

/* Are the n bytes at p all zero (any alignment)? */
bool sbx_all_zero(const void *p, size_t n);
/* The files' 64-bit hash (also the fuzzers' and the tests' reference). */
uint64_t sbx_hash64(const void *p, size_t len, uint64_t seed);
/* A chunk's checksum by algorithm (SBX_CHECKSUM_CRC32C: the CRC in the low 32 bits). */
uint64_t sbx_chunk_sum(uint32_t alg, const void *p, size_t len);
/* Versions 2 and 3: the checksum of a 4096-byte header (its own field read as zero). */
uint64_t sbx_snapf_hdr_sum(const uint8_t *hdr);
/*
 * Check a header of which n bytes were read into *f: 0, or -EBADMSG (not
 * valid), -ENODATA (too short), -EPROTONOSUPPORT (unknown version), logged
 * as fn's refusal at LOG_INFO. Versions 1 and 2 are read whole here.
 */
int sbx_snapf_parse(const uint8_t *hdr, size_t n, struct sbx_snapf *f, const char *fn);
/* The version-3 or -4 layout of size bytes in chunks of chunk bytes: 0 or -EINVAL. */
int sbx_snapf_layout(uint64_t size, uint32_t chunk, uint32_t alg, uint32_t version, struct sbx_snapf *f);
/*
 * After the table is encoded into meta: its checksum into f->meta_sum
 * (version 3), or, version 4, the index of its blocks into idx (idx_len
 * bytes, to write at idx_off) and the index's checksum into f->meta_sum.
 */
void sbx_snapf_seal(struct sbx_snapf *f, const uint8_t *meta, uint8_t *idx);
/* A version-3 or -4 header of f (layout and meta_sum), checksummed, into hdr[4096]. */
void sbx_snapf_encode(const struct sbx_snapf *f, uint8_t *hdr);
/*
 * Check the meta_len bytes of table and zero bitmap against the header
 * (version 3) or the index idx (version 4) and decode them into
 * sums[nchunks] and zero[words]: 0 or -EBADMSG.
 */
int sbx_snapf_meta(const struct sbx_snapf *f, const uint8_t *meta, const uint64_t *idx, uint64_t *sums,
		   uint64_t *zero, const char *fn);
/* Version 4: check the idx_len bytes of index at raw against the header, decode into idx[nblocks]. */
int sbx_snapf_index(const struct sbx_snapf *f, const uint8_t *raw, uint64_t *idx, const char *fn);
/*
 * Version 4: check table block b (SBX_SNAPF_BLOCK bytes at blk) against
 * its index entry sum and decode the entries and bitmap words it holds
 * into sums and zero: 0 or -EBADMSG. Entries of other blocks untouched.
 */
int sbx_snapf_block(const struct sbx_snapf *f, uint64_t b, const uint8_t *blk, uint64_t sum,
		    uint64_t *sums, uint64_t *zero, const char *fn);
/* Chunk k's entry against its zero bit (both decoded): 0 or -EBADMSG. */
int sbx_snapf_entry(const struct sbx_snapf *f, const uint64_t *sums, const uint64_t *zero, uint64_t k,
		    const char *fn);
void sbx_snapf_meta_encode(const struct sbx_snapf *f, const uint64_t *sums, const uint64_t *zero,
			   uint8_t *meta);
/*
 * The working-set section (ws_len bytes) into bits[words]: 0, or -ENODATA
 * when none was saved or it does not check (then logged: a hint is lost,
 * nothing else).
 */
int sbx_snapf_ws_decode(const struct sbx_snapf *f, const uint8_t *ws, uint64_t *bits, const char *fn);
void sbx_snapf_ws_encode(const struct sbx_snapf *f, const uint64_t *bits, uint8_t *ws);
/*
 * Read fd's header (checked, and the file's length against it) and, for
 * versions 3 and 4, its table and zero bitmap into new arrays (*sums,
 * *zero: free() them; NULL for versions 1 and 2) and, when ws is not
 * NULL, its working set (*ws, free() it; NULL when none was saved or it
 * does not check: logged, not an error). With idx not NULL, a version-4
 * file's table is not read: *idx gets its index (free() it) and *sums,
 * *zero are all zero, for sbx_snapf_block() to fill (else *idx is NULL).
 * Errors as sbx_snapf_parse(), -ENOMEM, and pread's.
 */
int sbx_snapf_read(int fd, struct sbx_snapf *f, uint64_t **sums, uint64_t **zero, uint64_t **ws,
		   uint64_t **idx, const char *fn);

/* ---- lazy.c: a lazily loaded snapshot file, its chunks read and verified ---- */

/*
 * The file behind a lazy snapshot, its table, the cache of verified bytes
 * every mapping of it maps, the chunks found bad, the userfaultfd every
 * mapping is registered with, and its counters. Immutable after
 * sbx_lazy_new() except: cached, rawzero and bad (atomic bits), st (atomic
 * counters), vbase (set once), and what lock guards.
 */
struct sbx_lazy {
	int fd;                   /* our duplicate of the file */
	struct sbx_snapf f;       /* size, data_off, chunk, nchunks, alg (NONE: raw) */
	uint64_t file_size;       /* a raw image's bytes at open (the rest reads as zero) */
	uint64_t *sums, *zero;    /* the table and zero bitmap; NULL for a raw image */
	/*
	 * Version 4: the table's index, read at open; sums and zero filled a
	 * table block at a time when first needed (under meta_lock). known:
	 * chunks whose entry is decoded and checked (atomic bits); blk_done,
	 * blk_bad: table blocks read (bad ones for good). All NULL when the
	 * whole table was read at open (version 3) or there is none (raw).
	 */
	uint64_t *idx, *known, *blk_done, *blk_bad;
	uint8_t *blk;             /* a table block's read (meta_lock) */
	pthread_mutex_t meta_lock;
	uint64_t *rawzero;        /* a raw image's chunks found all zero (then as zero) */
	int cfd;                  /* memfd of size bytes: the verified chunks, holes elsewhere */
	uint64_t *cached;         /* chunks whose every page is in cfd */
	uint8_t *vbase;           /* the view: installs into cfd go through it */
	uint64_t *bad;            /* chunks that failed once: never installed */
	int uffd;
	int pf_fd;                /* eventfd, readable while prefetch work is queued */
	int epfd;                 /* uffd + pf_fd: the service's (and caller's) fd to poll */
	struct mk_uffd_thread svc;
	uint8_t *buf;             /* the service's prefetch runs (buf_len >= chunk) */
	size_t buf_len;
	uint8_t *fbuf;            /* the service's fault reads (a chunk) */
	struct {                  /* the prefetch run in buf, installed a chunk a call (lock) */
		struct sbx_lazy_map *m;
		uint64_t gen, first, good;      /* good: chunk first + i checked */
		unsigned n, next;
	} run;
	pthread_mutex_t svc_lock; /* one service call at a time (buf, fbuf) */
	pthread_mutex_t lock;     /* maps and their state, hint, installs */
	struct sbx_lazy_map *maps;
	uint64_t next_gen;
	uint64_t *hint;           /* the working set new mappings prefetch, or NULL */
	struct sbx_lazy_stats st;
};

/* Counters: atomic, read by sbx_snapshot_lazy_stats() while the service runs. */
#define sbx_lazy_count(z, field, n) __atomic_add_fetch(&(z)->st.field, (n), __ATOMIC_RELAXED)

/*
 * A lazy snapshot of the file fd (duplicated), laid out as f with its table
 * (sums, zero: NULL for a raw image of file_size bytes; all zero with idx,
 * a version-4 index, to be read a block at a time) and the working set to
 * prefetch (hint, or NULL), all four taken over (freed on failure too). No
 * thread yet (lazyserve.c starts it). 0 or -errno.
 */
int sbx_lazy_new(int fd, const struct sbx_snapf *f, uint64_t file_size, uint64_t *sums,
		 uint64_t *zero, uint64_t *idx, uint64_t *hint, struct sbx_lazy **out);
/* Stop the service thread, close and free (no mapping is left: regions hold references). */
void sbx_lazy_free(struct sbx_lazy *z);
/* Chunk k's bytes (the last chunk may be short). */
static inline size_t sbx_lazy_chunk_len(const struct sbx_lazy *z, uint64_t k)
{
	uint64_t off = k << z->f.chunk_shift;

	return (size_t)(z->f.size - off < z->f.chunk ? z->f.size - off : z->f.chunk);
}
static inline bool sbx_lazy_is_bad(struct sbx_lazy *z, uint64_t k)
{
	return __atomic_load_n(&z->bad[k / 64], __ATOMIC_ACQUIRE) >> (k % 64) & 1;
}
/*
 * Chunk k's table entry and zero bit read and checked (version 4: its
 * table blocks read on first need): 0, or -EBADMSG (a table block is bad,
 * or the entry: chunk k is marked bad, counted and logged).
 */
int sbx_lazy_entry_slow(struct sbx_lazy *z, uint64_t k);
/*
 * Version 4: every table block not read yet, in preads of len bytes
 * through buf (the prefetch's first step: its chunks are all over the
 * table; len < a block: none). A read error leaves them to be read one by
 * one.
 */
void sbx_lazy_table_all(struct sbx_lazy *z, uint8_t *buf, size_t len);
static inline int sbx_lazy_entry(struct sbx_lazy *z, uint64_t k)
{
	if (!z->known || __atomic_load_n(&z->known[k / 64], __ATOMIC_ACQUIRE) >> (k % 64) & 1)
		return 0;
	return sbx_lazy_entry_slow(z, k);
}
/*
 * Chunk k is all zero by the table (or, in a raw image, found so): never
 * read (again). May read its table block (false when that is bad).
 */
static inline bool sbx_lazy_is_zero(struct sbx_lazy *z, uint64_t k)
{
	if (!z->zero)
		return __atomic_load_n(&z->rawzero[k / 64], __ATOMIC_ACQUIRE) >> (k % 64) & 1;
	return sbx_lazy_entry(z, k) == 0 && sbx_bit(z->zero, k);
}
static inline bool sbx_lazy_is_cached(struct sbx_lazy *z, uint64_t k)
{
	return __atomic_load_n(&z->cached[k / 64], __ATOMIC_ACQUIRE) >> (k % 64) & 1;
}
/*
 * Read chunk k into buf and verify it: 0; or -EBADMSG when it is bad
 * (checksum mismatch, the file too short, a read error): then it is
 * marked bad for good, counted and logged with its offsets.
 */
int sbx_lazy_read(struct sbx_lazy *z, uint64_t k, uint8_t *buf);
/*
 * Chunk k's verified bytes at buf into the cache (UFFDIO_COPY through the
 * view; a raw image's all-zero chunk is only marked zero): 0 or -errno.
 * Wakes the view's waiters.
 */
int sbx_lazy_cache(struct sbx_lazy *z, uint64_t k, const uint8_t *buf);
/* Chunk k in the cache, read and verified into buf first if need be: 0, -EBADMSG, -errno. */
int sbx_lazy_load(struct sbx_lazy *z, uint64_t k, uint8_t *buf);
/*
 * The same for chunks [first, first + n), read with one pread into buf
 * (n chunks must fit): bit i of *good (n <= 64) says chunk first + i
 * checked. 0, or a read error (then nothing is marked bad: the caller
 * falls back to chunk by chunk).
 */
int sbx_lazy_read_run(struct sbx_lazy *z, uint64_t first, unsigned n, uint8_t *buf, uint64_t *good);
/*
 * Verified bytes [off, off + len) of the data into dst: from the cache,
 * loading chunks not in it through buf (one chunk). 0, -EBADMSG, -errno.
 */
int sbx_lazy_copy_out(struct sbx_lazy *z, uint64_t off, uint8_t *dst, uint64_t len, uint8_t *buf);
/* A fault served (latency from its event's read). */
void sbx_lazy_fault_done(struct sbx_lazy *z, uint64_t ns);

/* ---- lazymap.c: memory paged in from a lazy snapshot ---- */

/*
 * An address range backed by a lazy snapshot from data offset 0: a
 * region's [0, snap_len) (MAP_PRIVATE of the cache memfd) or the
 * snapshot's own view (MAP_SHARED, read-only), registered with the
 * snapshot's userfaultfd for missing pages. Fields change under z->lock
 * only; zeroed and faulted are also read without it (atomic bits).
 */
struct sbx_lazy_map {
	struct sbx_lazy *z;
	struct sbx_lazy_map *next;  /* on z->maps while attached */
	uint8_t *base;
	uint64_t len;               /* registered bytes from base: a page multiple <= size */
	uint64_t gen;               /* new whenever the mapping is replaced or moved */
	bool view;                  /* the snapshot's view (shared, read-only) */
	bool attached;
	bool broken;                /* left PROT_NONE by a failed registration: host copies -EIO */
	bool pf_active;             /* pf holds chunks still to prefetch */
	bool pf_ahead;              /* their readahead was asked for */
	uint64_t pf_next;           /* where the prefetch goes on */
	uint64_t *zeroed;           /* all-zero chunks given the zero page here */
	uint64_t *faulted;          /* the working set: chunks brought in since the last reset */
	uint64_t *pf;               /* chunks to prefetch */
};

/* A mapping of z, the view or a region's (not attached yet); 0 or -ENOMEM. */
int sbx_lazy_map_new(struct sbx_lazy *z, bool view, struct sbx_lazy_map **out);
/* Free a detached (or never attached) mapping; NULL is a no-op. */
void sbx_lazy_map_free(struct sbx_lazy_map *m);
/*
 * A fresh mapping of the cache at [base, base + len) (MAP_FIXED over what
 * was there), registered for missing-page faults before it is accessible,
 * MADV_DONTFORK (in a child it would read zeros where the snapshot has
 * bytes, and put them in the cache: it gets no mapping instead); attached,
 * its working set reset, the snapshot's working set queued for prefetch.
 * 0 or -errno (if the registration failed, the range is left PROT_NONE:
 * never zeros where the snapshot has bytes).
 */
int sbx_lazy_map_reset(struct sbx_lazy_map *m, uint8_t *base, uint64_t len);
/* No install reaches m after this; waiters in its range are woken to retry. */
void sbx_lazy_map_detach(struct sbx_lazy_map *m);
/* MADV_DONTNEED [off, off + len): those pages page in again on their next access. */
int sbx_lazy_map_drop(struct sbx_lazy_map *m, uint64_t off, uint64_t len);
/* Only [0, len) is (or, undoing a shrink, is again) backed: len <= the registered length. */
void sbx_lazy_map_set_len(struct sbx_lazy_map *m, uint64_t len);
/*
 * Around moving the memory (sbx_mem_resize()): no install runs in between,
 * and the memory is inaccessible from lock to moved/unlock (unregistered
 * after the move, an access to a page not in the cache would put zeros
 * there). moved: it is at base now (mremap drops the registration):
 * registered there again and accessible.
 */
void sbx_lazy_map_lock(struct sbx_lazy_map *m);
void sbx_lazy_map_unlock(struct sbx_lazy_map *m);
int sbx_lazy_map_moved(struct sbx_lazy_map *m, uint8_t *base);
/*
 * Make [off, off + len) present, loading missing chunks in the calling
 * thread (a host copy must never wait for the service, which may be the
 * caller): 0, -EBADMSG (a chunk in it is bad), -ENOMEM.
 */
int sbx_lazy_map_ensure(struct sbx_lazy_map *m, uint64_t off, uint64_t len);
/* The working set into bitmap (nwords checked by the caller): the chunk count. */
int64_t sbx_lazy_map_ws(struct sbx_lazy_map *m, uint64_t *bitmap, size_t nwords);
/*
 * Service side (lazyserve.c, under z->svc_lock, z->buf theirs): one fault
 * (its event read at t0: counted before its waiters go on); one prefetch run.
 */
void sbx_lazy_serve_fault(struct sbx_lazy *z, uint64_t addr, uint64_t t0);
int sbx_lazy_prefetch_step(struct sbx_lazy *z);
/* Is prefetch work queued (z->lock held)? */
bool sbx_lazy_prefetch_pending(struct sbx_lazy *z);

/* ---- lazyserve.c: the fault service of a lazy snapshot ---- */
/* Serve the pending faults, then one prefetch run: the number done, or -errno. */
int sbx_lazy_service(struct sbx_lazy *z);
/* Start the snapshot's service thread: 0 or -errno. */
int sbx_lazy_start(struct sbx_lazy *z);

/* ---- dirty.c: the dirty record (host marks + fetched KVM dirty logs) ---- */
void sbx_dirty_mark(struct sbx_mem *m, uint64_t off, uint64_t len);
void sbx_dirty_clear(struct sbx_mem *m);
/* The region is based on s now, all of it (its bytes are s's): the record starts empty. */
void sbx_dirty_rebase(struct sbx_mem *m, struct sbx_snapshot *s);
uint64_t sbx_dirty_count(const struct sbx_mem *m);
/* Call fn on each run of set (want = true) or clear pages; pages visited or fn's error. */
int64_t sbx_dirty_for_runs(struct sbx_mem *m, bool want,
			   int (*fn)(struct sbx_mem *m, uint64_t first, uint64_t n));
/* Fetch b's KVM dirty log (clears it in KVM) and OR it into its region's record. */
int sbx_dirty_fetch_log(struct sbx_binding *b);
/*
 * Fetch the dirty logs of m's writable bindings into m->dirty. Returns 1
 * if guest writes may be missing from the record (a writable binding
 * without dirty log, or a log that could not be read), else 0.
 */
int sbx_dirty_collect(struct sbx_mem *m);
/* A binding the guest can write (a region bound without SBX_BIND_READONLY). */
bool sbx_binding_writable(const struct sbx_binding *b);

/* ---- gmem.c: regions backed by guest_memfd ---- */
struct sbx_gmem {
	int fd;                   /* the guest_memfd (owned) */
	bool kept;                /* SBX_GMEM_KEEP_MAPPED: mapped for the region's life */
	pthread_mutex_t lock;     /* users, and the window's mapping */
	unsigned users;           /* host copies and exclusive operations mapping it */
	void *slot_hva;           /* not kept: the memslot's host address, a PROT_NONE
				     reservation of slot_len bytes that is never mapped */
	size_t slot_len;
};
/* Wrap fd (taken on success). */
int sbx_gmem_new(int fd, bool kept, struct sbx_gmem **out);
/* Close the fd and free; NULL is a no-op. */
void sbx_gmem_free(struct sbx_gmem *g);
/* Map the guest_memfd shared over the region's reservation. */
int sbx_gmem_map(struct sbx_mem *m);
/* The window: mapped from the first hold to the last release (no-ops when kept). */
int sbx_gmem_hold(struct sbx_mem *m);
void sbx_gmem_release(struct sbx_mem *m);
/* Give [off, off + len) back (reads as zero). */
int sbx_gmem_punch(struct sbx_mem *m, uint64_t off, uint64_t len);
/* Make the whole region s's bytes (window held, exclusive) and rebase on s. */
int sbx_gmem_rewrite(struct sbx_mem *m, struct sbx_snapshot *s);

/* ---- mem.c: the region core ---- */
struct sbx_mem *sbx_mem_ref_internal(struct sbx_mem *m);
void sbx_mem_unref_internal(struct sbx_mem *m);
/* -EINVAL (logged as fn's refusal) unless m is a region whose host handle is live. */
int sbx_mem_check(const struct sbx_mem *m, const char *fn);
/* The lock word: an exclusive operation, or one host copy among others. */
/* fn names the public function for the log (-EBUSY is worth telling). */
int sbx_excl_begin(struct sbx_mem *m, const char *fn);
void sbx_excl_end(struct sbx_mem *m);
int sbx_host_begin(struct sbx_mem *m);
void sbx_host_end(struct sbx_mem *m);
/*
 * Begin a host access to [off, off + len) of a live region (checked inside,
 * where the size is stable); on success the caller must sbx_host_end().
 * fn names the public function for the log.
 */
int sbx_host_access(struct sbx_mem *m, uint64_t off, uint64_t len, const char *fn);
/* Inside a host access: make [off, off + len) of a lazy region present (0 for others). */
int sbx_host_ensure(struct sbx_mem *m, uint64_t off, uint64_t len, const char *fn);
/*
 * A new region of size bytes over a PROT_NONE reservation with guard pages
 * (what fills it is the caller's); on failure of what follows, drop it
 * with sbx_mem_unref_internal().
 */
int sbx_mem_new_reserved(uint64_t size, const char *fn, struct sbx_mem **out);
/* Map snap's fd MAP_PRIVATE|MAP_FIXED over the region (same address, no gap);
 * a guest_memfd region gets snap's bytes copied in (sbx_gmem_rewrite). */
int sbx_mem_remap(struct sbx_mem *m, struct sbx_snapshot *snap);
