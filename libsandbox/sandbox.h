/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memkit libsandbox: guarded sandbox memory for micro-VM hosts.
 *
 * A sandbox region (struct sbx_mem) is anonymous private memory with a
 * PROT_NONE guard page before and after it. It starts as an exclusive
 * handle (only the host can touch it). sbx_mem_split() hands out a guest
 * view (struct sbx_guest); from then on the sbx_mem is the host view.
 * Both share one lock word: while the guest view is entered (a vCPU runs,
 * sbx_guest_enter() .. sbx_guest_exit()), host copies still work, but
 * operations that need exclusivity (snapshot, zero, restore, trim, resize) fail
 * with -EBUSY instead of racing with the guest.
 *
 * Every host access goes through bounds-checked, overflow-safe volatile
 * copies, so a value the guest can change is read exactly once. Every host
 * write is recorded (one bit per page) and, together with KVM's dirty log,
 * lets sbx_snapshot_restore() touch only the pages dirtied since the last
 * snapshot or restore.
 *
 * Snapshots (struct sbx_snapshot) are sealed memfds (write, shrink, grow,
 * seal): immutable for their whole life. A region restored to or created
 * from a snapshot is a MAP_PRIVATE mapping of it, so many regions share the
 * snapshot's pages copy-on-write.
 *
 * Conventions: functions return 0 (or a non-negative value) on success and
 * a negative errno on failure; a failed call leaves every object as it was.
 * Out parameters come last. x_free(NULL) is a no-op. Offsets and sizes are
 * in bytes. The library never prints and never aborts on bad input.
 *
 * Thread safety and async-signal safety are stated per function below, as
 * in each man page's THREAD SAFETY section (libsandbox(3)): MT-Safe (may
 * run concurrently with any other call) or MT-Unsafe (with the calls it
 * must not overlap), and AS-Safe or AS-Unsafe (may or may not be called
 * from a signal handler). For one region: host copies and guest enters
 * and exits may run concurrently from any thread. The exclusive operations
 * (snapshot take, restore, trim, zero, resize) are MT-Safe too: they fail
 * with -EBUSY while a host copy or a guest enter is in flight or another
 * exclusive operation runs (and copies and enters fail with -EBUSY while
 * one runs), never racing. Splitting and freeing a region, and binding,
 * unbinding and reading the dirty log of a VM it is bound into, are
 * MT-Unsafe: no other call may use the same region meanwhile.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". MT-Safe, AS-Safe. */
const char *sbx_version(void);

struct sbx_mem;       /* a sandbox region: exclusive handle, then host view */
struct sbx_guest;     /* the guest view of a region */
struct sbx_snapshot;  /* an immutable snapshot (sealed memfd or fs-verity file) */
struct sbx_vm;        /* a KVM VM that regions and snapshots are bound into */

/* ------------------------------------------------------------------ */
/* Regions and lifecycle (sbx_mem_new(3))                             */

/*
 * A new zero-filled region of size bytes (a non-zero multiple of the page
 * size): MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE with a PROT_NONE guard page
 * on each side. -EINVAL for 0, unaligned or overflowing sizes. MT-Safe,
 * AS-Unsafe.
 */
int sbx_mem_new(uint64_t size, struct sbx_mem **out);
/*
 * A new region whose contents are the snapshot's: a MAP_PRIVATE mapping of
 * it (pages are shared copy-on-write with every other region made from the
 * same snapshot). The region holds a reference on the snapshot. MT-Safe,
 * AS-Unsafe.
 */
int sbx_mem_new_from_snapshot(struct sbx_snapshot *snap, struct sbx_mem **out);
/*
 * Drop the host's handle. The memory stays mapped while a guest view or a
 * KVM binding still uses it (they hold references); it is unmapped with
 * the last one. NULL is a no-op. MT-Unsafe: no other call may use m
 * meanwhile. AS-Unsafe.
 */
void sbx_mem_free(struct sbx_mem *m);
/* Usable size in bytes (without the guard pages). MT-Safe, AS-Safe. */
uint64_t sbx_mem_size(const struct sbx_mem *m);

/*
 * Split the exclusive handle: *guest is the guest view, m is from now on the
 * host view. -EBUSY if m was already split (one guest view per region; it
 * may be entered by several vCPUs at once). MT-Unsafe: no other call may
 * use m meanwhile. AS-Unsafe.
 */
int sbx_mem_split(struct sbx_mem *m, struct sbx_guest **guest);
/* Drop the guest view (it must not be entered: -EBUSY). NULL is a no-op (0).
 * MT-Unsafe: no other call may use the region meanwhile. AS-Unsafe. */
int sbx_guest_free(struct sbx_guest *g);
/*
 * Mark the guest as running (call before KVM_RUN on any vCPU that can reach
 * the region) / no longer running (after KVM_RUN returns). Enters nest
 * (one per vCPU). enter fails with -EBUSY while an exclusive operation is
 * in progress; exit fails with -EINVAL when not entered. Both MT-Safe,
 * AS-Safe (one atomic update of the region's lock word).
 */
int sbx_guest_enter(struct sbx_guest *g);
int sbx_guest_exit(struct sbx_guest *g);
/* The region behind a guest view (borrowed; valid while g lives). MT-Safe,
 * AS-Safe. */
struct sbx_mem *sbx_guest_mem(struct sbx_guest *g);

/*
 * Change the region's size to new_size (a non-zero multiple of the page
 * size; -EINVAL otherwise). Bytes up to the smaller of the two sizes are
 * kept, bytes past the old size read as zero, guard pages stay on both
 * sides. Growing moves the region (mremap, no copy): pointers from
 * sbx_mem_host_ptr() are invalid afterwards. A snapshot-based region keeps
 * sharing its snapshot's pages; a grown tail is anonymous memory. A
 * snapshot restores only into a region of its own size (-EINVAL), so
 * resize back (or take a new snapshot) before restoring. The same size
 * changes nothing (0). Exclusive: -EBUSY while the guest is entered, and,
 * for a real change, while the region is bound into a VM (unbind, resize,
 * bind again). A failure leaves size, address, contents and dirty record
 * as they were. MT-Safe as the other exclusive operations (-EBUSY rather
 * than racing; not beside binding, unbinding or freeing m), AS-Unsafe.
 */
int sbx_mem_resize(struct sbx_mem *m, uint64_t new_size);

/*
 * Zero the whole region: MADV_DONTNEED where that yields zeros (anonymous
 * memory), else a replacement anonymous mapping at the same address, else
 * a fill. Exclusive: -EBUSY while the guest is entered. Afterwards the
 * region is no longer based on a snapshot. MT-Safe as the other exclusive
 * operations, AS-Unsafe.
 */
int sbx_mem_zero(struct sbx_mem *m);

/*
 * The host address of byte 0 of the region. Accesses through it bypass
 * bounds checks, volatile semantics and dirty tracking: once this was
 * called with will_mark_dirty = false the library can no longer trust its
 * write record, and every later restore remaps the whole region, for the
 * region's life (still correct, no longer O(dirty)). With will_mark_dirty
 * = true the caller promises to report every write with
 * sbx_mem_mark_dirty(), and restore stays O(dirty). To keep that promise:
 * mark the bytes of each store through the pointer (or sbx_mem_write()
 * them instead) before the next snapshot, restore or trim reads the
 * record; an unmarked write is not detected, a restore leaves its page
 * with the new bytes. Reads need no marking; guest writes through a KVM
 * binding come from its dirty log (SBX_BIND_DIRTY_LOG), not from the
 * caller. No raw store may run during an exclusive operation. memkit's
 * VMM does exactly this for guest RAM (sbx_mem_host_ptr(3)). MT-Unsafe:
 * no other call may use m meanwhile. AS-Unsafe.
 */
void *sbx_mem_host_ptr(struct sbx_mem *m, bool will_mark_dirty);
/* Record that [off, off + len) was written behind the library's back.
 * MT-Safe, AS-Safe (atomic updates only). */
int sbx_mem_mark_dirty(struct sbx_mem *m, uint64_t off, uint64_t len);

/* ------------------------------------------------------------------ */
/* Host access (sbx_mem_read(3)): bounds-checked volatile copies       */
/*
 * All fail with -EINVAL for a NULL handle/buffer (with len > 0) or when
 * [off, off + len) is not inside the region (overflow-safe); then nothing
 * is copied. They work while the guest is entered; they fail with -EBUSY
 * only while an exclusive operation runs on another thread. Every byte of
 * the region is read (or written) exactly once, in aligned 16-byte volatile
 * chunks where possible. Multi-byte values are host byte order. All
 * MT-Safe, AS-Unsafe (a region of a lazy snapshot takes the snapshot's
 * lock to page a chunk in).
 */
int sbx_mem_read(struct sbx_mem *m, uint64_t off, void *buf, size_t len);
int sbx_mem_write(struct sbx_mem *m, uint64_t off, const void *buf, size_t len);
int sbx_mem_fill(struct sbx_mem *m, uint64_t off, uint8_t byte, uint64_t len);
/* Copy len bytes inside the region (ranges may overlap: memmove semantics).
 * MT-Safe, AS-Unsafe, as the copies above and below. */
int sbx_mem_copy(struct sbx_mem *m, uint64_t dst_off, uint64_t src_off, uint64_t len);
int sbx_mem_read_u8(struct sbx_mem *m, uint64_t off, uint8_t *out);
int sbx_mem_read_u16(struct sbx_mem *m, uint64_t off, uint16_t *out);
int sbx_mem_read_u32(struct sbx_mem *m, uint64_t off, uint32_t *out);
int sbx_mem_read_u64(struct sbx_mem *m, uint64_t off, uint64_t *out);
int sbx_mem_write_u8(struct sbx_mem *m, uint64_t off, uint8_t v);
int sbx_mem_write_u16(struct sbx_mem *m, uint64_t off, uint16_t v);
int sbx_mem_write_u32(struct sbx_mem *m, uint64_t off, uint32_t v);
int sbx_mem_write_u64(struct sbx_mem *m, uint64_t off, uint64_t v);

/* ------------------------------------------------------------------ */
/* Buffer stack in guest-shared memory (sbx_stack_push(3))             */
/*
 * A buffer of buf_size bytes at buf_off: its first u64 is the stack pointer
 * (offset of the next free byte, relative to buf_off; 8 when empty); each
 * element is followed by an 8-byte back-pointer holding the element's own
 * offset. The guest can write all of it, so every value read from it is
 * read once and validated: stack pointer in [8, buf_size] (pop: >= 16),
 * back-pointer in [8, sp - 8], element fits its slot, no overflow. A
 * rejected call leaves the buffer unchanged. buf_off/buf_size must lie in
 * the region (-EINVAL). All four: MT-Unsafe per buffer (two threads must
 * not push or pop the same buffer at once; they may run beside the guest
 * and host copies), AS-Unsafe.
 */
/* Reset to empty: sp = 8, rest of the buffer zeroed. MT-Unsafe per buffer,
 * AS-Unsafe. */
int sbx_stack_init(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size);
/* Push len bytes; -ENOSPC if they (plus the back-pointer) do not fit,
 * -EBADMSG if sp is corrupt. MT-Unsafe per buffer, AS-Unsafe. */
int sbx_stack_push(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size,
		   const void *data, size_t len);
/*
 * Pop the top element whole into out (cap bytes) and zero its slot; the
 * element's size goes to *len. -ENODATA when empty (sp == 8), -EBADMSG for
 * a corrupt sp/back-pointer, -ENOBUFS if cap is too small (*len still set).
 * MT-Unsafe per buffer, AS-Unsafe.
 */
int sbx_stack_pop(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size,
		  void *out, size_t cap, size_t *len);
/*
 * Pop a size-prefixed element (a little-endian u32 byte count n, then n
 * bytes; e.g. a size-prefixed flatbuffer): copies the 4 + n bytes to out.
 * The element slot must hold at least 8 bytes and 4 + n must fit in it
 * (-EBADMSG otherwise). MT-Unsafe per buffer, AS-Unsafe.
 */
int sbx_stack_pop_sized(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size,
			void *out, size_t cap, size_t *len);

/* ------------------------------------------------------------------ */
/* Snapshots (sbx_snapshot_take(3))                                    */

/*
 * Copy the region into a new memfd sealed with F_SEAL_WRITE|F_SEAL_SHRINK|
 * F_SEAL_GROW|F_SEAL_SEAL, and rebase the region on it (it becomes a
 * MAP_PRIVATE mapping of the snapshot, same address, no gap; its dirty
 * record is cleared). Exclusive: -EBUSY while the guest is entered. MT-Safe
 * as the other exclusive operations, AS-Unsafe.
 */
int sbx_snapshot_take(struct sbx_mem *m, struct sbx_snapshot **out);
/*
 * Accept a snapshot from outside. fd is dup'ed (the caller keeps its own).
 * Mapped directly only when provably immutable: a memfd sealed against
 * write, shrink and grow, or a regular file with fs-verity enabled, whose
 * size is a non-zero multiple of the page size. Anything else (or, with
 * SBX_IMPORT_COPY, everything) is read with pread into a new sealed memfd,
 * its size rounded up to a page with zeros. -EINVAL for an empty or
 * non-regular file. MT-Safe (reads with pread), AS-Unsafe.
 */
#define SBX_IMPORT_COPY 1u
int sbx_snapshot_import(int fd, unsigned flags, struct sbx_snapshot **out);
/* Snapshots are reference counted; regions and bindings hold references.
 * MT-Safe, AS-Safe. */
struct sbx_snapshot *sbx_snapshot_ref(struct sbx_snapshot *s);
/* Drop a reference (the last one frees); NULL is a no-op.
 * MT-Safe, AS-Unsafe (the last reference munmaps and frees). */
void sbx_snapshot_unref(struct sbx_snapshot *s);
/* The snapshot's size, fd, data and origin: MT-Safe, AS-Safe. */
uint64_t sbx_snapshot_size(const struct sbx_snapshot *s);
/* The snapshot's fd (borrowed; immutable contents). MT-Safe, AS-Safe. */
int sbx_snapshot_fd(const struct sbx_snapshot *s);
/* A read-only mapping of the snapshot's bytes (valid while s lives).
 * MT-Safe, AS-Safe. */
const void *sbx_snapshot_data(const struct sbx_snapshot *s);
/* Was the snapshot accepted without a copy (sealed memfd / fs-verity)?
 * MT-Safe, AS-Safe. */
bool sbx_snapshot_is_direct(const struct sbx_snapshot *s);

/*
 * Make the region equal to the snapshot. If the region is based on s
 * (made from it, or rebased by take/restore), only the pages dirtied since
 * are touched: host writes from the library's record, guest writes from
 * the dirty logs of the region's KVM bindings. Strategy by flags:
 *   SBX_RESTORE_AUTO   copy-back for few dirty pages, remap for many
 *   SBX_RESTORE_COPY   copy each dirty page back from the snapshot
 *                      (keeps the pages mapped; memory stays allocated)
 *   SBX_RESTORE_REMAP  one MAP_FIXED remap of the whole region
 *   SBX_RESTORE_TRIM   MADV_DONTNEED the dirty pages (gives their memory back)
 * Otherwise (other snapshot, untracked raw-pointer writes, a writable KVM
 * binding without dirty logging) the whole region is remapped onto s.
 * The mapping address never changes and memslots are never touched; bound
 * guests see the snapshot's bytes. Exclusive: -EBUSY while entered.
 * -EINVAL if the sizes differ. Returns the number of pages restored.
 * MT-Safe as the other exclusive operations, AS-Unsafe.
 */
#define SBX_RESTORE_AUTO  0u
#define SBX_RESTORE_COPY  1u
#define SBX_RESTORE_REMAP 2u
#define SBX_RESTORE_TRIM  3u
int64_t sbx_snapshot_restore(struct sbx_mem *m, struct sbx_snapshot *s, unsigned flags);
/*
 * Give back the private memory of pages that are equal to the region's
 * snapshot (restored by copy-back, not written since). Exclusive. Returns
 * the number of pages trimmed; 0 for a region not based on a snapshot.
 * MT-Safe as the other exclusive operations, AS-Unsafe.
 */
int64_t sbx_mem_trim(struct sbx_mem *m);

/*
 * Save to fd at offset 0 in the format of memkit-snapshot(5), version 4: a
 * 4 KiB header, an index of the table's 4 KiB blocks' checksums, a table
 * of per-chunk checksums (CRC-32C where the CPU has instructions for it,
 * else a 64-bit hash) and a bitmap of all-zero chunks (not written:
 * holes), a working-set section, then the bytes. The fd is
 * truncated first and to the written size at the end. MT-Safe, AS-Unsafe.
 */
int sbx_snapshot_save(const struct sbx_snapshot *s, int fd);
/*
 * Load a file written by sbx_snapshot_save() (version 4, or 1 to 3 of
 * earlier releases) into a new sealed memfd, verifying everything:
 * -EBADMSG bad magic, header, table or data checksum; -EPROTONOSUPPORT
 * unknown version; -ENODATA truncated file. Never reads all-zero chunks.
 * MT-Safe, AS-Unsafe.
 */
int sbx_snapshot_load(int fd, struct sbx_snapshot **out);

/*
 * Save with a chunk size of chunk_size bytes (a power of two from
 * SBX_CHUNK_MIN to SBX_CHUNK_MAX; 0: SBX_CHUNK_DEFAULT) and flags
 * (SBX_SAVE_HASH64: checksum the chunks with the 64-bit hash even where
 * the CPU has CRC-32C instructions). sbx_snapshot_save() is this with 0, 0.
 * Since 0.3. MT-Safe, AS-Unsafe.
 */
#define SBX_CHUNK_MIN     (64u << 10)
#define SBX_CHUNK_MAX     (2u << 20)
#define SBX_CHUNK_DEFAULT (256u << 10)
#define SBX_SAVE_HASH64   1u
int sbx_snapshot_save_chunked(const struct sbx_snapshot *s, int fd, uint32_t chunk_size,
			      unsigned flags);
/* A file's chunk checksums (struct sbx_lazy_stats, memkit-snapshot(5)). */
#define SBX_CHECKSUM_NONE   0u     /* a raw image: nothing to verify */
#define SBX_CHECKSUM_CRC32C 1u
#define SBX_CHECKSUM_HASH64 2u

/* ------------------------------------------------------------------ */
/* Lazy loading (sbx_snapshot_open(3)); since 0.3                      */

/*
 * Open a snapshot file. Without SBX_OPEN_LAZY: sbx_snapshot_load() (or,
 * with SBX_OPEN_RAW, a copy of the raw image as sbx_snapshot_import() with
 * SBX_IMPORT_COPY makes). With it, in time independent of the data's size
 * (version 4: the header and the table's index only; each table block read
 * and verified when first needed; version 3: header and chunk table): the
 * snapshot's bytes are paged in on demand, each chunk read and verified
 * against the table before anyone
 * sees it (regions made from it with sbx_mem_new_from_snapshot() or
 * restored onto it, sbx_snapshot_data(), sbx_vm_bind_snapshot()), through
 * a userfaultfd. Version 1 and 2 files load eagerly (they have no chunks).
 *   SBX_OPEN_LAZY        page in on demand
 *   SBX_OPEN_RAW         fd is a plain memory image (no header, nothing
 *                        to verify: the caller vouches for its bytes)
 *   SBX_OPEN_NO_THREAD   no service thread: the caller polls
 *                        sbx_snapshot_fault_fd() and calls
 *                        sbx_snapshot_service() (with SBX_OPEN_LAZY)
 *   SBX_OPEN_NO_PREFETCH ignore the working set saved in the file
 * fd is duplicated; the file must stay as it is while the snapshot lives.
 * MT-Safe, AS-Unsafe.
 */
#define SBX_OPEN_LAZY        0x1u
#define SBX_OPEN_RAW         0x2u
#define SBX_OPEN_NO_THREAD   0x4u
#define SBX_OPEN_NO_PREFETCH 0x8u
int sbx_snapshot_open(int fd, unsigned flags, struct sbx_snapshot **out);
/* Is s paged in on demand (opened with SBX_OPEN_LAZY from a version 3 or 4
 * file or a raw image)? MT-Safe, AS-Safe. */
bool sbx_snapshot_is_lazy(const struct sbx_snapshot *s);
/*
 * The fault service's fd: readable (poll POLLIN) while faults or prefetch
 * work are pending. -ENOTSUP unless s is lazy and was opened with
 * SBX_OPEN_NO_THREAD. It belongs to the snapshot. MT-Safe, AS-Unsafe.
 */
int sbx_snapshot_fault_fd(struct sbx_snapshot *s);
/*
 * Serve every pending fault without blocking (except on the file's
 * reads), then prefetch one run of the working set: the number of faults
 * served and chunks prefetched (0: nothing to do), or -errno (-ENOTSUP
 * when s is not lazy). May run beside the service thread. MT-Safe,
 * AS-Unsafe.
 */
int sbx_snapshot_service(struct sbx_snapshot *s);

/*
 * The working set of a region made from (or restored onto) a lazy
 * snapshot: the chunks it brought in since it was mapped (on demand or by
 * prefetch), one bit a chunk (bit i of word i / 64) into bitmap (nwords >=
 * (chunks + 63) / 64, else -ENOBUFS). Returns the number of chunks;
 * -EINVAL for a region that is not lazily loaded. MT-Safe (-EBUSY rather
 * than racing with an exclusive operation), AS-Unsafe.
 */
int64_t sbx_mem_working_set(struct sbx_mem *m, uint64_t *bitmap, size_t nwords);
/*
 * What regions mapped from s from now on prefetch (NULL: nothing), kept
 * beside the snapshot by the caller; replaces what the file held. MT-Safe,
 * AS-Unsafe.
 */
int sbx_snapshot_set_working_set(struct sbx_snapshot *s, const uint64_t *bitmap, size_t nwords);
/*
 * Store a working set inside a version 3 or 4 snapshot file (its working-set
 * section, checksummed on its own): later lazy opens prefetch it.
 * -EOPNOTSUPP for a version 1 or 2 file, -EINVAL if nwords is short.
 * MT-Safe, AS-Unsafe.
 */
int sbx_snapshot_write_working_set(int fd, const uint64_t *bitmap, size_t nwords);

/*
 * Counters of a lazy snapshot. struct sbx_lazy_stats and struct
 * sbx_mem_stats start with size_t size, which the caller sets to sizeof
 * the struct (libsandbox(3), EXTENSIBLE STRUCTS): -EINVAL below the first
 * layout; the library fills up to the smaller of the two sizes, zeroes
 * the rest of the caller's struct and sets size to what it filled.
 */
#define SBX_HIST_BUCKETS 40
struct sbx_lazy_stats {
	size_t size;                /* sizeof(struct sbx_lazy_stats) */
	uint64_t data_size;         /* data bytes (was size before libsandbox 4.0) */
	uint32_t chunk_size;
	uint32_t checksum;          /* SBX_CHECKSUM_* of the chunks (NONE: a raw image) */
	uint64_t chunks;            /* in the file */
	uint64_t chunks_read;       /* reads of a chunk from the file */
	uint64_t chunks_verified;   /* ... whose checksum matched */
	uint64_t chunks_zero;       /* installed as zero pages without a read */
	uint64_t chunks_prefetched; /* installed by the prefetch */
	uint64_t chunks_bad;        /* failed: checksum, short file, read error (once each) */
	uint64_t bad_offset;        /* data offset of the last bad chunk; UINT64_MAX: none */
	uint64_t bytes_read;
	uint64_t faults;            /* userfaultfd faults served */
	uint64_t fault_ns_total;    /* event read to waiters woken, summed */
	uint64_t fault_ns_max;
	uint64_t host_loads;        /* chunks loaded for host copies (sbx_mem_read() ...) */
	uint64_t prefetch_queued;   /* chunks still to prefetch */
	uint32_t thread;            /* 1: the library's service thread runs */
	uint64_t fault_ns[SBX_HIST_BUCKETS]; /* bucket i: faults served in [2^i, 2^(i+1)) ns */
	/* a version-4 file's table blocks read after open (0 for other files) */
	uint64_t table_blocks_read;
	uint64_t table_blocks_bad;  /* ... that failed: the chunks they describe fail */
};
/* MT-Safe, AS-Unsafe. */
int sbx_snapshot_lazy_stats(struct sbx_snapshot *s, struct sbx_lazy_stats *out);

/* Counters of a region (sbx_mem_stats(3)). */
struct sbx_mem_stats {
	size_t size;              /* sizeof(struct sbx_mem_stats) (see above) */
	uint64_t mem_size;        /* usable bytes (was size before libsandbox 4.0) */
	uint64_t dirty_pages;     /* recorded dirty since the last snapshot/restore (not yet
				     counting unfetched KVM dirty logs) */
	uint64_t private_bytes;   /* resident private (copy-on-write / anonymous) bytes */
	uint64_t shared_bytes;    /* bytes still shared with the snapshot (size - private
				     when based on a snapshot, else 0) */
	uint64_t restores_copy;   /* restores done by copy-back */
	uint64_t restores_remap;  /* ... by remapping the region */
	uint64_t restores_trim;   /* ... by MADV_DONTNEED */
	uint64_t pages_restored;
};
/* MT-Safe (waits for a running exclusive operation to end), AS-Unsafe. */
int sbx_mem_stats(struct sbx_mem *m, struct sbx_mem_stats *out);

/* ------------------------------------------------------------------ */
/* KVM binding (sbx_vm_new(3))                                         */

/* Open /dev/kvm and create a VM owned by the handle. MT-Safe, AS-Unsafe. */
int sbx_vm_new(struct sbx_vm **out);
/* Wrap the caller's VM fd (borrowed: sbx_vm_free() does not close it).
 * MT-Safe, AS-Unsafe. */
int sbx_vm_from_fd(int vm_fd, struct sbx_vm **out);
/* Delete every memslot bound through vm, close owned fds. NULL is a no-op.
 * MT-Unsafe: no other call may use vm meanwhile. AS-Unsafe. */
void sbx_vm_free(struct sbx_vm *vm);
/* The VM fd (for KVM_CREATE_VCPU etc.), and the /dev/kvm fd (-EBADF if
 * borrowed). MT-Safe, AS-Safe. */
int sbx_vm_fd(const struct sbx_vm *vm);
int sbx_vm_kvm_fd(const struct sbx_vm *vm);

#define SBX_BIND_READONLY  1u   /* KVM_MEM_READONLY: guest writes exit as MMIO */
#define SBX_BIND_DIRTY_LOG 2u   /* KVM_MEM_LOG_DIRTY_PAGES: O(dirty) restore of guest writes */
/*
 * Bind the whole region as memslot memslot at guest physical address gpa
 * (page aligned). The binding holds a reference on the region. -EEXIST if
 * the memslot is in use through vm; KVM's errors otherwise. MT-Unsafe: one
 * thread at a time on vm, not beside an exclusive operation or free of m.
 * AS-Unsafe.
 */
int sbx_vm_bind(struct sbx_vm *vm, struct sbx_mem *m, uint32_t memslot, uint64_t gpa,
		unsigned flags);
/* Bind a snapshot's bytes read-only (KVM_MEM_READONLY over a PROT_READ
 * mapping). MT-Unsafe: one thread at a time on vm. AS-Unsafe. */
int sbx_vm_bind_snapshot(struct sbx_vm *vm, struct sbx_snapshot *s, uint32_t memslot,
			 uint64_t gpa);
/* Delete the memslot; -ENOENT if memslot was not bound through vm. MT-Unsafe
 * as sbx_vm_bind, AS-Unsafe. */
int sbx_vm_unbind(struct sbx_vm *vm, uint32_t memslot);
/*
 * The pages the guest wrote through a SBX_BIND_DIRTY_LOG binding since the
 * last call (or restore): one bit per page, bit i of word i / 64, into
 * bitmap (nwords >= (pages + 63) / 64, else -ENOBUFS). The bits are also
 * kept in the region's record for the next restore. Returns the number of
 * dirty pages. MT-Unsafe as sbx_vm_bind, AS-Unsafe.
 */
int64_t sbx_vm_dirty_log(struct sbx_vm *vm, uint32_t memslot, uint64_t *bitmap, size_t nwords);

/* ------------------------------------------------------------------ */
/* Regions in guest_memfd (sbx_vm_mem_new_gmem(3)); since 0.4          */

/*
 * Can vm back regions with guest_memfd the host can map (a default VM on
 * Linux 6.18 or later: KVM_CAP_GUEST_MEMFD_FLAGS offers GUEST_MEMFD_FLAG_MMAP
 * and GUEST_MEMFD_FLAG_INIT_SHARED)? 0 if so, -EOPNOTSUPP if not. MT-Safe,
 * AS-Safe (ioctls only).
 */
int sbx_vm_gmem_supported(struct sbx_vm *vm);
/*
 * A new zero-filled region of size bytes (a non-zero multiple of the page
 * size) backed by a guest_memfd of vm: its memory belongs to KVM, not to a
 * mapping of this process. Without SBX_GMEM_KEEP_MAPPED the host maps it
 * only for the duration of a library call (host copies, snapshot, restore):
 * between calls its address range is inaccessible (a stray pointer faults,
 * /proc/PID/mem cannot read it) and sbx_mem_host_ptr() returns NULL. With
 * it, the mapping stays (faster copies, no such protection). It binds only
 * into vm (sbx_vm_bind(): KVM_SET_USER_MEMORY_REGION2), without
 * SBX_BIND_READONLY or SBX_BIND_DIRTY_LOG where KVM refuses them on
 * guest_memfd (Linux 7.2: -EOPNOTSUPP), so a restore after the guest could
 * write rewrites the whole region. It cannot be resized (-EOPNOTSUPP).
 * -EOPNOTSUPP where the kernel cannot (sbx_vm_gmem_supported()). MT-Safe,
 * AS-Unsafe.
 */
#define SBX_GMEM_KEEP_MAPPED 1u
int sbx_vm_mem_new_gmem(struct sbx_vm *vm, uint64_t size, unsigned flags, struct sbx_mem **out);
/* Is m backed by guest_memfd? false for NULL. MT-Safe, AS-Safe. */
bool sbx_mem_is_gmem(const struct sbx_mem *m);

/* ------------------------------------------------------------------ */
/* Debug log (sbx_set_log_fn(3)); since 0.2                             */

/*
 * Why a call was refused (which argument, which value, which limit), at a
 * syslog priority (LOG_ERR .. LOG_DEBUG): the library never prints. Silent
 * by default; the environment variable LIBSANDBOX_LOG (a priority name or
 * number, read when the library is loaded) sets the threshold and, while no
 * callback is set, sends messages to standard error. Process-wide.
 */
typedef void (*sbx_log_fn)(void *userdata, int priority, const char *msg);
/* Install fn (NULL: silent again) with its userdata. MT-Safe, AS-Unsafe
 * (concurrent calls take turns on a spin flag). */
void sbx_set_log_fn(sbx_log_fn fn, void *userdata);
/* Messages above priority are dropped (default LOG_ERR); clamped to
 * LOG_EMERG..LOG_DEBUG. Both MT-Safe, AS-Safe. */
void sbx_set_log_priority(int priority);
int sbx_get_log_priority(void);

#ifdef __cplusplus
}
#endif
