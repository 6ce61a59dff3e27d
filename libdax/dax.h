/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memkit libdax: the virtio-fs DAX window of one KVM guest.
 *
 * A virtio-fs device (vhost-user backend or in-VMM) links libdax to serve
 * FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING: a struct dax_session owns the
 * bookkeeping of one DAX window (guest-physical base, length, cap on
 * mapped bytes, alignment) and maps file ranges into the guest through a
 * mapper (the KVM window mapper by default). Sessions serialise to a
 * "DAXS" blob (version 1: the seed VMM's format, byte-exact; version 2:
 * adds alignment, per-entry file identity, CRC-32C). A restored session
 * holds metadata only; each mapping is bound on the guest's first touch.
 * With the window mapper that touch is caught by userfaultfd where the
 * process may use it for KVM's faults (the vCPU blocks inside KVM_RUN
 * until the session's fault service binds the mapping: no exit); elsewhere
 * restore binds every mapping at once (eager mode). See
 * dax_session_fault_stats() for the mode a session runs in.
 *
 * Words: a "mapping" is one DAX mapping (a file range set up in the window
 * by FUSE_SETUPMAPPING); a "memslot" is a KVM memory slot
 * (KVM_SET_USER_MEMORY_REGION). The window mapper uses one memslot for the
 * whole window, the memslot mapper one memslot per mapping.
 *
 * Extensible structs: struct dax_config, struct dax_stats and struct
 * dax_fault_stats start with size_t size, which the caller sets to sizeof
 * the struct (libdax(3), EXTENSIBLE STRUCTS): -EINVAL below the first
 * layout, -E2BIG for a dax_config with non-zero bytes this library does not
 * know; an output is filled up to the smaller of the two sizes and its size
 * set to that. Structs that mirror a wire or file format (dax_setup_req,
 * dax_range, dax_blob_header) or are array elements or callback tables
 * (dax_mapping, dax_file_id, dax_event, dax_backend, dax_mapper_ops) keep
 * a fixed layout.
 *
 * Conventions: functions return 0 (or a non-negative count) on success
 * and a negative errno on failure; a failed call leaves the session
 * exactly as it was. Out parameters come last. dax_*_free(NULL) is a
 * no-op. Every function taking a session is MT-Safe (one mutex per
 * session) except dax_session_free. Callbacks (backend, mapper) are
 * called with the session lock held and must not call back into it.
 * Thread safety and async-signal safety are stated per function below, as
 * in each man page's THREAD SAFETY section (libdax(3)): MT-Safe (may run
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
const char *dax_version(void);

/* ---- protocol ------------------------------------------------------------ */

/* Permission bits of a mapping (the same bits the DAXS blob stores). */
#define DAX_PROT_READ  1u
#define DAX_PROT_WRITE 2u

/* FUSE_SETUPMAPPING_FLAG_* from <linux/fuse.h> (kernel ABI values). */
#define DAX_FUSE_FLAG_WRITE (1ull << 0)
#define DAX_FUSE_FLAG_READ  (1ull << 1)

/* A file handle value meaning "no handle" (Linux guests send it; rebind uses it). */
#define DAX_FH_NONE UINT64_MAX

/* Length of a REMOVEMAPPING entry that means "the whole window" (moffset 0). */
#define DAX_LEN_ALL UINT64_MAX

/* Same layout as struct fuse_setupmapping_in (40 bytes). */
struct dax_setup_req {
	uint64_t fh;       /* open handle, or DAX_FH_NONE */
	uint64_t foffset;  /* offset in the file */
	uint64_t len;      /* bytes; a multiple of the alignment */
	uint64_t flags;    /* DAX_FUSE_FLAG_READ | DAX_FUSE_FLAG_WRITE */
	uint64_t moffset;  /* offset in the window; aligned */
};

/* Same layout as struct fuse_removemapping_one (16 bytes). */
struct dax_range {
	uint64_t moffset;
	uint64_t len;
};

/* ---- file identity and backend ------------------------------------------ */

/* What a mapping's file was: a changed file (any field) is refused on rebind. */
struct dax_file_id {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t valid;     /* 1 when the fields above are known, 0 otherwise */
};

/*
 * The filesystem side. open() turns (nodeid, fh) into an fd opened for
 * at least prot (DAX_PROT_*) and fills *id from fstat of that fd
 * (dax_file_id_of_fd(fd, id) does); the fd then belongs to libdax, which
 * closes it. fh is DAX_FH_NONE when libdax rebinds a restored mapping.
 * Returns the fd or -errno.
 * destroy (optional) is called by dax_session_free().
 */
struct dax_backend {
	int (*open)(void *data, uint64_t nodeid, uint64_t fh, uint32_t prot,
		    struct dax_file_id *id);
	void (*destroy)(void *data);
	void *data;
};

/*
 * Built-in table backend: nodeid -> path. dax_table_add() opens the path
 * (read-write when possible, else read-only) and keeps that fd;
 * dax_table_open() hands out a duplicate, so its signature fits
 * struct dax_backend.open with data = the table:
 *     struct dax_backend be = { dax_table_open, NULL, table };
 * Adding an existing nodeid replaces its file. The table must outlive the
 * sessions using it. dax_table_new, _add, _remove, _open: MT-Safe,
 * AS-Unsafe. dax_table_free: MT-Unsafe (exclusive: no other call on the
 * table may run concurrently), AS-Unsafe.
 */
struct dax_table;
int dax_table_new(struct dax_table **out);
void dax_table_free(struct dax_table *t);
int dax_table_add(struct dax_table *t, uint64_t nodeid, const char *path);
int dax_table_remove(struct dax_table *t, uint64_t nodeid);
int dax_table_open(void *table, uint64_t nodeid, uint64_t fh, uint32_t prot,
		   struct dax_file_id *id);
/*
 * A file's identity as libdax records and compares it: dev, ino, size and
 * mtime from fstat of fd (what a backend's open() fills *id with), or from
 * stat of path (which follows symbolic links), and valid = 1. Any kind of
 * file gets its identity as fstat reports it (a directory, a pipe), though
 * only a regular file can back a mapping. Returns 0, or -EINVAL for a NULL
 * argument, -EBADF for an fd that is not open, or another -errno of
 * fstat/stat; *id is left untouched on failure. dax_file_id_of_fd (libdax
 * 0.4), dax_file_id_of_path: MT-Safe, AS-Safe (one fstat or stat).
 */
int dax_file_id_of_fd(int fd, struct dax_file_id *id);
int dax_file_id_of_path(const char *path, struct dax_file_id *id);

/* ---- mappers -------------------------------------------------------------- */

enum dax_mapper_kind {
	/* One memslot over the whole window (anonymous MAP_NORESERVE
	 * memory, registered with userfaultfd where allowed); setup =
	 * mmap(MAP_FIXED) of the file range, remove = anonymous memory back
	 * (registered again). Ranges without a mapping read as zeros. The default. */
	DAX_MAPPER_KVM_WINDOW = 0,
	/* One memslot per mapping (KVM_MEM_READONLY for read-only ones). */
	DAX_MAPPER_KVM_MEMSLOT = 1,
	/* Caller's callbacks (struct dax_mapper_ops); for other hypervisors and tests. */
	DAX_MAPPER_CUSTOM = 2,
};

/*
 * A custom mapper. map() maps len bytes of fd at foffset (fd is only
 * valid during the call) to guest address gpa with prot (DAX_PROT_*) and
 * stores the host address in *hva (NULL if there is none). replace is
 * non-zero when a live mapping of exactly that range is replaced in
 * place (permission upgrade); *hva then holds its host address on entry.
 * unmap() removes a mapping made by map(). destroy (optional) runs at
 * dax_session_free().
 */
struct dax_mapper_ops {
	int (*map)(void *data, uint64_t gpa, uint64_t len, int fd, uint64_t foffset,
		   uint32_t prot, int replace, void **hva);
	int (*unmap)(void *data, uint64_t gpa, uint64_t len, void *hva);
	void (*destroy)(void *data);
	void *data;
};

/* ---- session -------------------------------------------------------------- */

struct dax_config {
	size_t size;            /* sizeof(struct dax_config) (libdax(3)) */
	uint64_t base_gpa;      /* guest-physical start of the window; aligned */
	uint64_t window_len;    /* > 0, a multiple of the alignment */
	uint64_t cap;           /* max mapped bytes; 0 = window_len */
	uint32_t align_log2;    /* FUSE_INIT map_alignment; 0 = host page size (>= it) */
	uint32_t max_remove;    /* max REMOVEMAPPING entries; 0 = page size / 16 */
	uint64_t max_mappings;  /* live mapping limit; 0 = from vm.max_map_count */
	uint32_t mapper;        /* enum dax_mapper_kind */
	int32_t vm_fd;          /* KVM mappers: the VM fd (borrowed, not closed) */
	uint32_t memslot;       /* window: its memslot; memslot mapper: first memslot */
	uint32_t nmemslots;     /* memslot mapper: memslots it may use; 0 = 256 */
	const struct dax_mapper_ops *ops;  /* DAX_MAPPER_CUSTOM only (copied) */
	uint32_t flags;         /* DAX_SESSION_* */
};

/*
 * dax_config.flags (window mapper only; others ignore them):
 * NO_THREAD: do not start the session's fault service thread; the caller
 * polls dax_session_fault_fd() and calls dax_session_service(). Until it
 * does, a vCPU touching an unbound page stays blocked in KVM_RUN.
 * NO_USERFAULT: never use userfaultfd, run in eager mode.
 */
#define DAX_SESSION_NO_THREAD    1u
#define DAX_SESSION_NO_USERFAULT 2u

struct dax_session;

/*
 * Create a session. Validates cfg (-EINVAL; -E2BIG: cfg->size above this
 * library's struct with non-zero bytes past it), and for the window mapper
 * reserves the window and registers its memslot on cfg->vm_fd. backend
 * is copied. On failure nothing is left behind (backend->destroy is
 * not called). MT-Safe, AS-Unsafe.
 */
int dax_session_new(const struct dax_config *cfg, const struct dax_backend *backend,
		    struct dax_session **out);
/*
 * Tear down every mapping, the window memslot/reservation, call destroys.
 * MT-Unsafe: exclusive, no other call on s may run concurrently, and no
 * vCPU may touch the window meanwhile. AS-Unsafe.
 */
void dax_session_free(struct dax_session *s);

/*
 * FUSE_SETUPMAPPING for nodeid. -EINVAL: zero/unknown permission flags,
 * zero length, misalignment, outside the window, overflow; -EEXIST: the
 * range partially overlaps live mappings; -ENOSPC: the cap or the
 * mapping limit would be exceeded; errors of the backend or mapper.
 * A request for exactly the range of a live mapping replaces it in place
 * (the guest's read -> write upgrade, or a new file at the same range).
 * MT-Safe, AS-Unsafe (as every call below on a session: its mutex).
 */
int dax_session_setup(struct dax_session *s, uint64_t nodeid, const struct dax_setup_req *req);
/* Same, from the raw fuse_setupmapping_in bytes (len must be >= 40).
 * MT-Safe, AS-Unsafe. */
int dax_session_setup_raw(struct dax_session *s, uint64_t nodeid, const void *payload,
			  size_t len);

/*
 * FUSE_REMOVEMAPPING: remove count ranges, all or nothing. Each entry
 * must be aligned and name exactly one live mapping (-ENOENT when none
 * starts there, -EINVAL for a length mismatch, a duplicate, or count
 * above max_remove); { 0, DAX_LEN_ALL } removes everything. MT-Safe,
 * AS-Unsafe.
 */
int dax_session_remove(struct dax_session *s, const struct dax_range *entries, size_t count);
/* Same, from the raw payload: u32 count, then count 16-byte entries at
 * offset 4. MT-Safe, AS-Unsafe. */
int dax_session_remove_raw(struct dax_session *s, const void *payload, size_t len);
/* Remove every mapping (FUSE_INIT / FUSE_DESTROY). MT-Safe, AS-Unsafe. */
int dax_session_reset(struct dax_session *s);

/*
 * Bind the mapping covering gpa if it is not bound yet (after restore).
 * Returns 1 when a mapping covers gpa (bound now or before), 0 when gpa is
 * outside the window or no mapping covers it, -ESTALE when the mapping's
 * file no longer matches its recorded identity (it stays unbound), or
 * other -errno from the backend/mapper. MT-Safe, AS-Unsafe.
 */
int dax_session_fault(struct dax_session *s, uint64_t gpa);

/*
 * Lazy rebind for a KVM_EXIT_MMIO at phys_addr inside the window (the
 * memslot mapper's holes; the window mapper does not exit): binds
 * the mapping (as dax_session_fault) and completes the pending access with
 * pread/pwrite on the file (zeros read past end of file; writes past it
 * are dropped) - libdax never touches mapped pages, so the host cannot
 * take SIGBUS. data/len/is_write are struct kvm_run's mmio fields (len
 * 1..8); for a read data is filled. Afterwards the guest accesses the
 * page directly. Returns 1 handled, 0 not ours (caller dispatches the
 * MMIO elsewhere), -EACCES for a write to a read-only mapping, -ESTALE, ...
 * MT-Safe, AS-Unsafe.
 */
int dax_session_handle_mmio(struct dax_session *s, uint64_t phys_addr, uint8_t *data,
			    uint32_t len, int is_write);
/*
 * Convenience: run is the vCPU's struct kvm_run (<linux/kvm.h>; declared
 * here only by name, so this header does not need the kernel's). Handles
 * KVM_EXIT_MMIO (as above) and KVM_EXIT_MEMORY_FAULT (binds; the caller
 * re-enters; a memory fault on an already bound mapping is -EFAULT). Returns
 * 1 handled, 0 not ours / other exit, -errno. The parameter was a void *
 * before 0.4 (same ABI). MT-Safe, AS-Unsafe.
 */
struct kvm_run;
int dax_session_handle_kvm_exit(struct dax_session *s, struct kvm_run *run);

/*
 * Host address of gpa for request buffers living in the window: binds
 * the mapping if needed; *hva and *len (bytes to the mapping's end).
 * -ENOENT if no mapping covers gpa, -ENODATA if the mapper has no host
 * address.
 * The caller reads mapped file pages: past end of file that is SIGBUS.
 * MT-Safe, AS-Unsafe.
 */
int dax_session_translate(struct dax_session *s, uint64_t gpa, void **hva, uint64_t *len);

/* ---- inspection ----------------------------------------------------------- */

#define DAX_MAPPING_BOUND 1u   /* mapped into the guest (else: restored, metadata only) */

struct dax_mapping {
	uint64_t moffset;
	uint64_t len;
	uint64_t nodeid;
	uint64_t foffset;
	uint32_t prot;          /* DAX_PROT_* */
	uint32_t flags;         /* DAX_MAPPING_* (sessions); blob entries: 0 */
	struct dax_file_id id;
};

/* Live mappings sorted by moffset into a malloc'd array (free()); returns
 * the count. MT-Safe, AS-Unsafe. */
int dax_session_list(struct dax_session *s, struct dax_mapping **out, size_t *count);

/* Latency histograms: bucket i counts operations taking [2^i, 2^(i+1)) ns. */
#define DAX_HIST_BUCKETS 40

struct dax_stats {
	size_t size;            /* sizeof(struct dax_stats) (libdax(3)) */
	uint64_t live_mappings;
	uint64_t bound_mappings;
	uint64_t mapped_bytes;
	uint64_t cap;
	uint64_t max_mappings;
	uint64_t setups;        /* successful, including upgrades */
	uint64_t upgrades;      /* in-place replacements */
	uint64_t removes;       /* mappings removed */
	uint64_t faults;        /* mappings bound lazily */
	uint64_t mmio_completed;
	uint64_t restores;
	uint64_t resets;
	uint64_t rejects;       /* failed calls (by errno: dax_session_rejects) */
	uint64_t setup_ns[DAX_HIST_BUCKETS];
	uint64_t remove_ns[DAX_HIST_BUCKETS];
	uint64_t fault_ns[DAX_HIST_BUCKETS];
};

/* One consistent state of the session's counters. MT-Safe, AS-Unsafe. */
int dax_session_stats(struct dax_session *s, struct dax_stats *st);
/*
 * How many calls on s failed with err, a negative errno (1 .. 4095);
 * err 0: all failed calls (dax_stats.rejects). -EINVAL for another err.
 * (libdax 3.0) MT-Safe, AS-Unsafe.
 */
int64_t dax_session_rejects(struct dax_session *s, int err);

/* ---- lazy binding (libdax 0.2) ------------------------------------------- */

/* How a session binds restored mappings (dax_fault_stats.mode). */
enum dax_fault_mode {
	/* Window mapper with userfaultfd: the first touch of an unbound page
	 * (by a vCPU inside KVM_RUN or a host thread) blocks until the fault
	 * service maps the mapping's file over it and wakes it. No vCPU exit. */
	DAX_FAULT_USERFAULT = 1,
	/* Window mapper, userfaultfd not allowed for kernel-mode faults (or
	 * DAX_SESSION_NO_USERFAULT): restore binds every mapping before it returns. */
	DAX_FAULT_EAGER = 2,
	/* Memslot or custom mapper: the first touch is a KVM exit (MMIO or
	 * memory fault) for dax_session_handle_kvm_exit(), or dax_session_fault(). */
	DAX_FAULT_EXIT = 3,
};

/*
 * The fault service's fd: readable (poll POLLIN) when faults are pending.
 * -ENOTSUP unless the session runs in DAX_FAULT_USERFAULT mode. The fd
 * belongs to the session. MT-Safe, AS-Unsafe.
 */
int dax_session_fault_fd(struct dax_session *s);
/*
 * Serve the pending faults without blocking: returns how many (0: none),
 * or -errno (-ENOTSUP outside DAX_FAULT_USERFAULT mode). May run beside
 * the service thread: each fault is served once. MT-Safe, AS-Unsafe.
 */
int dax_session_service(struct dax_session *s);

/* What happened to a touch libdax could not bind (dax_event.kind). */
enum dax_event_kind {
	/* A window range with no mapping (never set up, or removed) was
	 * touched: it reads as zeros; writes land in anonymous scratch
	 * memory no file sees, dropped by the next setup, reset or restore there. */
	DAX_EVENT_HOLE = 1,
	/* A mapping could not be bound (err: -ESTALE when its file changed
	 * since the snapshot, or the backend's/mapper's error): the touched
	 * page reads as zeros, writes go to scratch as above; the mapping stays
	 * unbound (a later setup of its range replaces it). */
	DAX_EVENT_UNBOUND = 2,
};

struct dax_event {
	uint32_t kind;          /* enum dax_event_kind */
	int32_t err;            /* DAX_EVENT_UNBOUND: negative errno */
	uint64_t gpa;           /* page touched (eager mode: the mapping's start) */
	uint64_t moffset;       /* the mapping's (UNBOUND) */
	uint64_t len;
	uint64_t nodeid;
};

/*
 * Called for every event, from the thread that served it (the service
 * thread, a dax_session_service() caller, or the dax_session_restore()
 * caller in eager mode), without the session lock: it may call other
 * libdax functions, but not dax_session_free(). fn NULL: no callback.
 * dax_session_set_event_fn: MT-Safe, AS-Unsafe.
 */
typedef void (*dax_event_fn)(void *data, const struct dax_event *ev);
int dax_session_set_event_fn(struct dax_session *s, dax_event_fn fn, void *data);

struct dax_fault_stats {
	size_t size;            /* sizeof(struct dax_fault_stats) (libdax(3)) */
	uint32_t mode;          /* enum dax_fault_mode */
	uint32_t thread;        /* 1 when the session's service thread runs */
	uint64_t uffd_faults;   /* userfaultfd page faults served */
	uint64_t uffd_binds;    /* mappings they bound */
	uint64_t holes;         /* DAX_EVENT_HOLE events */
	uint64_t unbound;       /* DAX_EVENT_UNBOUND events */
	uint64_t eager_binds;   /* mappings bound by restore in eager mode */
	uint64_t eager_ns;      /* time restores spent binding them */
	/* first-touch service: event read -> mapping mapped -> vCPU woken */
	uint64_t uffd_ns[DAX_HIST_BUCKETS];
};
/* The session's fault mode and counters. MT-Safe, AS-Unsafe. */
int dax_session_fault_stats(struct dax_session *s, struct dax_fault_stats *st);

/* ---- snapshots ------------------------------------------------------------ */

#define DAX_BLOB_V1 1u
#define DAX_BLOB_V2 2u

/*
 * Serialise the session's metadata into a malloc'd blob (free()).
 * Version 2 records the current identity of each bound mapping's file (via
 * the backend) and the recorded one of unbound mappings. MT-Safe, AS-Unsafe.
 */
int dax_session_snapshot(struct dax_session *s, unsigned version, void **blob, size_t *len);
/*
 * Replace the session's mappings by the blob's, all or nothing: the blob
 * is validated fully first (-EINVAL bad magic/version/CRC/structure,
 * -EBADSLT window base/length mismatch, -EINVAL misaligned/overlapping/
 * out-of-window entries, -ENOSPC above the cap or mapping limit), then
 * live mappings are torn down and the entries become unbound mappings.
 * MT-Safe (concurrent faults see the old or the new table), AS-Unsafe.
 */
int dax_session_restore(struct dax_session *s, const void *blob, size_t len);

struct dax_blob_header {
	uint32_t version;       /* DAX_BLOB_V1 or DAX_BLOB_V2 */
	uint32_t align_log2;    /* v2; 0 in v1 */
	uint64_t base_gpa;
	uint64_t window_len;
	uint64_t cap;
	uint64_t mapped_bytes;  /* recorded sum of lengths */
	uint64_t count;
};

/*
 * Parse and validate a blob on its own (no session): the length its count
 * announces ("truncated", "trailing data after the last entry"), CRC,
 * window base and length and each entry aligned (v2: to align_log2; v1:
 * to 4 KiB), entries in window, non-overlapping, total within cap,
 * mapped_bytes consistent. *entries (malloc'd, free()) is sorted by
 * moffset. On error *why (if not NULL) points to a static description.
 * MT-Safe, AS-Unsafe (allocates).
 */
int dax_blob_parse(const void *blob, size_t len, struct dax_blob_header *hdr,
		   struct dax_mapping **entries, const char **why);
/*
 * Build a blob of hdr->version from hdr and n entries (sorted on the
 * way; hdr->count and mapped_bytes are recomputed). Validated like
 * dax_blob_parse. *blob is malloc'd (free()). MT-Safe, AS-Unsafe.
 */
int dax_blob_build(const struct dax_blob_header *hdr, const struct dax_mapping *entries,
		   size_t n, void **blob, size_t *len, const char **why);

/* ---- debug log (libdax 0.3) --------------------------------------------- */

/*
 * A process-wide hook that explains refusals and failures: priority is
 * syslog's (LOG_ERR .. LOG_DEBUG), msg one line without a newline.
 * Silent by default. LIBDAX_LOG (err, warning, notice, info, debug or
 * 0-7), read when libdax is loaded, sets the default priority and, while
 * no callback is set, sends messages to standard error. The callback may
 * be called from any thread, with a session lock held: it must not call
 * into libdax. fn NULL: back to silent. dax_set_log_fn: MT-Safe,
 * AS-Unsafe (concurrent calls take turns on a spin flag);
 * dax_set_log_priority, dax_get_log_priority: MT-Safe, AS-Safe.
 */
typedef void (*dax_log_fn)(void *userdata, int priority, const char *msg);
void dax_set_log_fn(dax_log_fn fn, void *userdata);
/* Messages above priority are dropped (LOG_ERR by default). Both MT-Safe,
 * AS-Safe. */
void dax_set_log_priority(int priority);
int dax_get_log_priority(void);

#ifdef __cplusplus
}
#endif
