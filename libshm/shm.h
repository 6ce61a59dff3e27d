/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memkit libshm: a cross-process shared-memory allocator.
 *
 * A pool is a growing set of chunks of shared memory (memfd, or files
 * under /dev/shm). Every process that attached a pool read-write may
 * allocate and free in it concurrently: the allocator's state lives in the
 * shared memory itself as offsets (each process maps the pool at its own
 * address) and is updated with lock-free atomics only, so a process killed
 * at any instant never blocks the others; what it held is at most leaked,
 * and shma_pool_reclaim() gives it back. Allocation is O(1) (size classes,
 * one lock-free free list per class) and async-signal-safe.
 *
 * A block is named across processes by a struct shma_handle (16 bytes,
 * plain data: copy it through any channel). Resolving a handle validates
 * everything about it and never opens a path taken from it.
 *
 * Conventions: functions return 0 (or a non-negative count) on success
 * and a negative errno on failure; a failed call leaves the pool exactly
 * as it was. Out parameters come last. shma_pool_free(NULL) is a no-op.
 * Thread safety and async-signal safety are stated per function below, as
 * in each man page's THREAD SAFETY section (libshm(3)): MT-Safe (may run
 * concurrently with any other call) or MT-Unsafe (with the calls it must
 * not overlap), and AS-Safe or AS-Unsafe (may or may not be called from a
 * signal handler).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". MT-Safe, AS-Safe. */
const char *shma_version(void);

/* ---- pools ---------------------------------------------------------------- */

struct shma_pool;                       /* one process's view of a pool (opaque) */

enum shma_backend {
	SHMA_BACKEND_MEMFD = 0,         /* memfd chunks; share the fds (SCM_RIGHTS) */
	SHMA_BACKEND_SHM   = 1,         /* named files in a tmpfs directory (/dev/shm) */
};

#define SHMA_CHUNK_SIZE_DEFAULT (8u << 20)   /* 8 MiB */
#define SHMA_CHUNK_SIZE_MIN     (64u << 10)  /* 64 KiB */
#define SHMA_CHUNK_SIZE_MAX     (1u << 30)   /* 1 GiB */
#define SHMA_NAME_MAX           64           /* pool names: [A-Za-z0-9_-], 1..63 bytes */
#define SHMA_DIR_DEFAULT        "/dev/shm"
/* File names in the directory: "memkit-shm.NAME" (the root) and
 * "memkit-shm.NAME.INDEX.NONCE" (chunks). */
#define SHMA_FILE_PREFIX        "memkit-shm."

/*
 * Every struct below that a call reads or fills starts with size_t size:
 * set it to sizeof the struct (the extensible-struct convention of
 * libshm(3): -EINVAL below the first layout, -E2BIG for an input with
 * non-zero bytes this library does not know; an output is filled up to
 * the smaller of the two sizes and size is set to that).
 */
struct shma_pool_opts {
	size_t size;            /* sizeof(struct shma_pool_opts) */
	unsigned backend;       /* enum shma_backend */
	const char *name;       /* SHM: pool name, NULL = generate a unique one;
				 * MEMFD: memfd name shown in /proc (may be NULL) */
	const char *dir;        /* SHM: tmpfs directory, NULL = SHMA_DIR_DEFAULT */
	uint64_t chunk_size;    /* power of two in [MIN, MAX]; 0 = default */
	uint32_t max_chunks;    /* chunk slots, 0 = as many as fit in 64 GiB of
				 * regular chunks (at most 8192) */
	unsigned flags;         /* none defined yet: 0 */
};

/*
 * Create a pool and attach to it read-write. opts NULL means a memfd pool
 * with default chunk size. A named SHM pool whose name exists is -EEXIST
 * (a generated name is retried on a clash). Files are created 0600 with
 * O_EXCL|O_NOFOLLOW and their space is reserved with fallocate(2), so a
 * full tmpfs is -ENOSPC here or in shma_alloc(), never SIGBUS later.
 * MT-Safe (creates a new object), AS-Unsafe.
 */
int shma_pool_create(const struct shma_pool_opts *opts, struct shma_pool **out);

#define SHMA_ATTACH_RDONLY 1u   /* map read-only, do not register as a user:
				 * inspection only (shma_alloc/free -EPERM) */

/*
 * Attach to a named SHM pool in dir (NULL = SHMA_DIR_DEFAULT). Only the
 * fixed file names derived from name are opened (never a path found in
 * the pool; O_NONBLOCK, so a FIFO cannot hang us), and each file is
 * checked (regular, owned by us, mode 0600, sizes and headers consistent)
 * before use: -EPERM otherwise, -ELOOP for a symbolic link. -ENOENT if
 * there is no such pool, -EINVAL for a bad name, -EBADMSG for a damaged
 * pool. A read-write attach registers the process (255 registrations;
 * dead processes' are reclaimed when all are taken): -EUSERS when every
 * one is held by a live process. A fork()ed child using an inherited pool
 * registers as itself before its first allocation. MT-Safe, AS-Unsafe.
 */
int shma_pool_attach(const char *dir, const char *name, unsigned flags,
		     struct shma_pool **out);

/*
 * Attach to a pool from fds received from its creator (shma_pool_fds() on
 * the other side, shma_recv_fds() here): fds[0] is the pool's root, the
 * others its chunks in any order. The fds are duplicated; the caller
 * keeps its own. Works for both backends. MT-Safe, AS-Unsafe.
 */
int shma_pool_attach_fds(const int *fds, size_t n, unsigned flags,
			 struct shma_pool **out);

/*
 * A memfd pool grows only in processes that can map its new chunks: the
 * creator adds chunks itself; other processes import chunk fds they are
 * sent (shma_pool_import_fd, duplicated). An attacher of a memfd pool that
 * needs a new chunk gets -ENOSPC from shma_alloc (no chunk of its own is
 * created: nobody else could map it). Resolving a handle into a chunk this
 * process has no fd for is -ENXIO. SHM pools have neither limitation.
 * MT-Safe on one pool (also while other threads allocate), AS-Unsafe.
 */
int shma_pool_import_fd(struct shma_pool *pool, int fd);

/*
 * Detach and unmap; NULL is a no-op. Blocks stay allocated in the pool
 * (they belong to the pool, not to the process). The files of a SHM pool
 * stay until shma_pool_unlink()/shma_pool_remove() or `shmctl rm`.
 * MT-Unsafe: exclusive, no other call may use pool concurrently. AS-Unsafe.
 */
void shma_pool_free(struct shma_pool *pool);

/* Remove the files of a SHM pool (mappings stay valid until freed). A
 * memfd pool has no files: 0. MT-Safe, AS-Unsafe. */
int shma_pool_unlink(struct shma_pool *pool);

/* Remove the files of the named SHM pool in dir without attaching (the
 * root and every chunk file of that name). -ENOENT if none existed.
 * MT-Safe, AS-Unsafe. */
int shma_pool_remove(const char *dir, const char *name);

/* The pool's name (SHM) or memfd name; never NULL. Valid until free.
 * MT-Safe, AS-Unsafe. */
const char *shma_pool_name(const struct shma_pool *pool);

/*
 * The fds to send to another process for shma_pool_attach_fds(): the
 * root first, then each chunk this process has. Returns the count written,
 * -ENOBUFS (with nothing written) when cap is too small. The fds stay
 * owned by the pool. MT-Safe, AS-Unsafe.
 */
int shma_pool_fds(struct shma_pool *pool, int *fds, size_t cap);

/* Send n (1..253) fds with an optional payload over a unix socket in one
 * SCM_RIGHTS message; returns 0. MT-Safe, AS-Safe (one sendmsg). */
int shma_send_fds(int sock, const int *fds, size_t n, const void *data, size_t len);
/* Receive up to cap fds (O_CLOEXEC) and up to len payload bytes; returns
 * the number of fds received, *data_len (may be NULL) the payload length.
 * A truncated message is -EMSGSIZE (and the fds that came are closed).
 * MT-Safe, AS-Safe (one recvmsg). */
int shma_recv_fds(int sock, int *fds, size_t cap, void *data, size_t len, size_t *data_len);

/* ---- blocks and handles ------------------------------------------------- */

/*
 * A block's name across processes. Plain data, 16 bytes, host byte
 * order. An all-zero handle never names a block.
 */
struct shma_handle {
	uint32_t chunk;         /* chunk slot (low 16 bits) | slot generation << 16 */
	uint32_t gen;           /* block generation (odd while allocated) */
	uint32_t offset;        /* offset of the data in the chunk */
	uint32_t len;           /* length requested at allocation */
};

/*
 * Allocate len bytes (1 .. 4 GiB - 1) aligned to align (0 = 16; a power
 * of two up to the page size) from the pool. Returns the data pointer in
 * *ptr and/or its handle in *handle (either may be NULL). Blocks up to
 * SHMA_CLASS_MAX come from size classes in O(1); larger ones get a
 * dedicated chunk. The memory is not zeroed. -ENOSPC when the pool cannot
 * grow (chunk slots exhausted, tmpfs full), -EPERM on a read-only attach;
 * a chunk file that cannot be mapped is its error (-EPERM, -ELOOP,
 * -EBADMSG, -EACCES; -ENXIO: a memfd chunk never sent), with nothing
 * carved; -EUSERS in a fork()ed child that finds no registration free.
 * MT-Safe, AS-Safe (may grow the pool: open/fallocate/mmap, all
 * signal-safe syscalls).
 */
int shma_alloc(struct shma_pool *pool, size_t len, size_t align,
	       struct shma_handle *handle, void **ptr);

#define SHMA_CLASS_MAX (256u << 10)  /* largest size-class block (bytes of data, at
				       * most chunk_size / 4 of smaller chunks) */

/*
 * Free a block by its pointer or by its handle. A pointer outside this
 * pool's chunks, or not the start of a block, is -EINVAL; a block already
 * free is -EINVAL (double free), a handle to a freed or reused block is
 * -ESTALE; a damaged block header is -EFAULT. In every error case the
 * pool is unchanged. shma_free(pool, NULL) is a no-op returning 0.
 * MT-Safe, AS-Safe.
 */
int shma_free(struct shma_pool *pool, void *ptr);
int shma_free_handle(struct shma_pool *pool, const struct shma_handle *handle);

/*
 * Thread caches (LIBSHM_0.4). Each thread keeps a small cache of free
 * blocks per size class and pool object (at most 128 blocks and 256 KiB
 * a class): shma_free puts a block there and shma_alloc takes it back
 * without touching the shared free lists. A cached block is free (its
 * handles are stale) and its header names the caching process, so a
 * process killed with blocks in its caches loses none: shma_pool_reclaim
 * gives them back. A thread's exit, shma_pool_free, and shma_pool_trim
 * (for the calling thread) put cached blocks back on the shared lists;
 * blocks in other live threads' caches stay there, and trim cannot
 * release their chunks. A thread with a cache carves fresh blocks from a
 * chunk of its own (the pool's current chunk at first, then new chunks as
 * each fills), so its blocks share pages with no other thread's. Behind
 * the thread caches, each pool object keeps a pool cache that all threads
 * of the process share (at most 4096 blocks a class and 32 MiB in all, libshm
 * 3.0.0): a full thread cache moves half its blocks there and an empty one
 * refills from there, so a process's freed blocks stay in its own pages.
 * Its blocks are marked cached by the process, as a thread cache's are.
 * The environment variable LIBSHM_TCACHE=0 (read at load) turns both off.
 *
 * shma_flush_cache puts the calling thread's cached blocks of this pool
 * (every attachment of it in this process) and those attachments' pool
 * caches back on the shared lists, e.g. before the thread goes idle for
 * long. Returns how many; 0 on a read-only attachment. MT-Safe (it changes only the calling thread's
 * caches), AS-Safe (a handler interrupting its thread's own cache use
 * flushes nothing).
 */
int shma_flush_cache(struct shma_pool *pool);

/* The handle of an allocated block from its data pointer (errors as
 * shma_free). MT-Safe, AS-Safe. */
int shma_handle_of(struct shma_pool *pool, const void *ptr, struct shma_handle *handle);

/*
 * Resolve a handle (from any process) to a pointer in this process,
 * mapping the chunk on first use. Checks: the chunk slot is live in this
 * pool with the handle's generation (else -ESTALE; never used: -ENOENT),
 * offset and length lie inside the chunk, the block header's magic and
 * self-reference are intact (else -EFAULT), the block is allocated with
 * the handle's generation (else -ESTALE) and length. Malformed handles are
 * -EINVAL. MT-Safe, AS-Safe; the warm path is a few loads.
 */
int shma_resolve(struct shma_pool *pool, const struct shma_handle *handle, void **ptr);

/*
 * Where a block lives, for binding its chunk elsewhere (e.g. as a KVM
 * memslot: base/len are page aligned, the fd can be mmap()ed at offset 0
 * or sent to a VMM). Validates the handle like shma_resolve. MT-Safe,
 * AS-Safe.
 */
struct shma_chunk_info {
	size_t size;            /* sizeof(struct shma_chunk_info) (libshm(3)) */
	void *base;             /* this process's mapping of the whole chunk */
	uint64_t len;           /* chunk length (a multiple of the page size) */
	int fd;                 /* the chunk's fd, owned by the pool (dup to keep) */
	uint32_t index;         /* chunk slot */
	uint64_t offset;        /* the block's data offset within the chunk */
};
int shma_block_chunk(struct shma_pool *pool, const struct shma_handle *handle,
		     struct shma_chunk_info *info);

/* ---- inspection, crash recovery ------------------------------------------ */

#define SHMA_NCLASSES 64

struct shma_pool_stat {
	size_t size;            /* sizeof(struct shma_pool_stat) (libshm(3)) */
	uint64_t chunk_size;    /* regular chunk size */
	uint32_t chunks;        /* live chunks (regular + dedicated) */
	uint32_t max_chunks;
	uint64_t mapped_bytes;  /* sum of live chunk sizes */
	uint64_t used_bytes;    /* bytes in allocated blocks (headers included) */
	uint64_t free_bytes;    /* bytes in free blocks + never-used chunk tails */
	uint64_t blocks_used;
	uint64_t blocks_free;
	uint32_t users;         /* attached processes still alive */
	uint32_t users_dead;    /* registered processes that died without detaching */
	uint32_t nclasses;      /* entries used in the arrays below */
	uint32_t class_size[SHMA_NCLASSES];   /* block size of each class (with header) */
	uint64_t class_used[SHMA_NCLASSES];
	uint64_t class_free[SHMA_NCLASSES];
};

/* Walk the pool and fill *st. A consistent snapshot only when nobody is
 * allocating concurrently (the counts are otherwise approximate). MT-Safe,
 * AS-Unsafe. */
int shma_pool_stat(struct shma_pool *pool, struct shma_pool_stat *st);

struct shma_chunk_stat {
	size_t size;            /* sizeof(struct shma_chunk_stat) (libshm(3)) */
	uint32_t index;
	uint32_t gen;
	unsigned dedicated;     /* 1: a chunk of one large block */
	int owner_pid;          /* creator */
	uint64_t owner_start;   /* creator's start time (clock ticks since boot) */
	int owner_alive;        /* that process (pid + start time) still runs */
	uint64_t len;           /* chunk length (was size before libshm 3.0) */
	uint64_t used;          /* bytes handed out by the chunk's bump pointer */
};

/* Per-chunk records: for index = 0, 1, ... until -ENOENT past the last
 * slot; an unused slot is -ESRCH. MT-Safe, AS-Unsafe (reads /proc). */
int shma_pool_chunk_stat(struct shma_pool *pool, uint32_t index, struct shma_chunk_stat *st);

/*
 * Take ownership of the block handle names (one another process allocated
 * and handed over): from then on only this process's death lets
 * shma_pool_reclaim free it. One CAS on the block's header, so of an adopt
 * and a racing free or reclaim of the sender exactly one wins (-ESTALE
 * here, nothing changed). MT-Safe, AS-Safe. (LIBSHM_0.3)
 */
int shma_adopt(struct shma_pool *pool, const struct shma_handle *handle);

/*
 * Give back what processes that died without detaching held: blocks they
 * allocated and never freed are freed, their registration slots cleared,
 * and what they were doing inside shma_alloc/shma_free/shma_pool_trim when
 * they died is finished or rolled back from their in-flight records (lists
 * a dead trim held go back, chunks it closed are dropped; nothing is left
 * that only shma_pool_repair could give back). Returns the number of
 * blocks freed. Safe while live processes keep allocating (it only frees
 * blocks whose owner is provably dead). A block handed to another process
 * stays owned by its allocator until the receiver calls shma_adopt.
 * MT-Safe, AS-Unsafe.
 */
int shma_pool_reclaim(struct shma_pool *pool);

/*
 * Give back free blocks that no free list holds (left by damage; a process
 * killed inside shma_alloc, shma_free, shma_pool_trim or shma_pool_repair
 * leaves in-flight records and marks from which shma_pool_reclaim finishes
 * its work). Runs only when no other live process is attached read-write
 * (-EBUSY otherwise), after a reclaim; attaches wait while it runs.
 * Returns the number of blocks given back. MT-Unsafe: exclusive, no other
 * thread of the caller may use the pool meanwhile. AS-Unsafe. (LIBSHM_0.2)
 */
int shma_pool_repair(struct shma_pool *pool);

/*
 * Release regular chunks all of whose blocks are free: their files are
 * removed and their memory returned (in other processes when they next
 * touch the slot or detach). While it runs, allocations in other threads
 * carve fresh space instead of reusing free blocks. Returns the number of
 * chunks released. A process killed inside it loses nothing: the next
 * shma_pool_reclaim puts back the lists it held and drops the chunks it had
 * closed. MT-Safe, AS-Unsafe.
 */
int shma_pool_trim(struct shma_pool *pool);

/* ---- sealed blobs ------------------------------------------------------- */

/*
 * Publish len bytes as a sealed memfd (F_SEAL_WRITE|SHRINK|GROW|SEAL):
 * returns the fd (O_CLOEXEC), which anyone may map knowing its bytes and
 * size can never change. len 0 is -EINVAL. MT-Safe, AS-Unsafe.
 */
int shma_blob_publish(const char *name, const void *data, size_t len);

/*
 * Check that fd is provably immutable: a memfd sealed against write,
 * shrink and grow, or a regular file with fs-verity enabled. -EPERM when
 * it is not (unsealed, resizable, or an ordinary file), -EINVAL for an
 * empty one or a non-regular fd. On success *size is its size. MT-Safe,
 * AS-Unsafe.
 */
int shma_blob_check(int fd, uint64_t *size);

/* shma_blob_check, then map the whole file read-only (private to the
 * caller; unmap with shma_blob_unmap). Both MT-Safe, AS-Unsafe. */
int shma_blob_map(int fd, const void **addr, size_t *len);
int shma_blob_unmap(const void *addr, size_t len);

/* ---- debug log (LIBSHM_0.3) --------------------------------------------- */

/*
 * libshm never prints. Why it refused a call (a pool file with the wrong
 * mode, owner or type, a handle whose generation is stale, a full user
 * table) goes to one process-wide callback: priority is syslog's
 * (LOG_ERR .. LOG_DEBUG), msg one line without a newline. Silent by
 * default; LIBSHM_LOG=debug (or err, info, ... or 0-7) in the environment
 * sets the default threshold and, while no callback is set, sends the
 * lines to standard error. fn may be called from any thread, and from a
 * signal handler that calls libshm: it must be async-signal-safe itself if
 * the program allocates from handlers, and must not call libshm.
 * shma_set_log_fn: MT-Safe, AS-Unsafe (concurrent calls take turns on a
 * spin flag); shma_set_log_priority, shma_get_log_priority: MT-Safe,
 * AS-Safe. See shma_set_log_fn(3).
 */
typedef void (*shma_log_fn)(void *userdata, int priority, const char *msg);
void shma_set_log_fn(shma_log_fn fn, void *userdata);
/* Messages numerically above priority are dropped (clamped to 0..7). Both
 * MT-Safe, AS-Safe. */
void shma_set_log_priority(int priority);
int shma_get_log_priority(void);

#ifdef __cplusplus
}
#endif
