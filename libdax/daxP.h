/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdax internals. The files form layers that only call downward:
 *
 *   session.c  snapshot.c          the public session calls
 *        \      /   |
 *        service.c  |              the userfaultfd fault service
 *            |      |
 *          bind.c   blob.c         binding slots / the DAXS codec
 *        /   |   \
 *  mapper-kvm.c table.c slots.c    mappers, table backend, slot index
 *
 * The userfaultfd primitives and the service thread are common/uffd.c's
 * (shared with libsandbox's lazy snapshots).
 * log.c (the log hook) and version.c sit beside them; every file may log.
 * Each section below declares one file's internal functions.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "common/hash.h"
#include "common/uffd.h"
#include "common/log.h"
#include "dax.h"

/* ==== shared types ====================================================== */

/* One live mapping (or restored, not yet bound, slot) of the window. */
struct dax_slot {
	uint64_t moffset;       /* index key: slots never overlap */
	uint64_t len;
	uint64_t nodeid;
	uint64_t foffset;
	uint32_t prot;          /* DAX_PROT_* */
	bool bound;             /* mapped into the guest */
	bool marked;            /* scratch for batch validation, always false outside a call */
	void *hva;              /* host address when bound (mapper-provided, may be NULL) */
	struct dax_file_id id;  /* recorded identity (what snapshots write for unbound slots) */
	struct dax_slot_arena *arena;  /* set when allocated in bulk by dax_slots_build() */
};

/* The slot index (slots.c): sorted chunks of slot pointers. */
#define DAX_SLOT_CHUNK 64
struct dax_slot_chunk {
	unsigned n;
	struct dax_slot *s[DAX_SLOT_CHUNK];
};

struct dax_slots {
	struct dax_slot_chunk **chunks;
	uint64_t *firsts;       /* first moffset of each chunk */
	size_t nchunks;
	size_t cap;
	size_t count;
};

#define dax_slots_foreach(x, sl)                                                   \
	for (size_t _c = 0; _c < (x)->nchunks; _c++)                               \
		for (unsigned _i = 0; _i < (x)->chunks[_c]->n &&                   \
		     ((sl) = (x)->chunks[_c]->s[_i], 1); _i++)

/*
 * The identity a restored blob recorded for a node, checked once: the
 * first open of the node after restore (by a fault or a setup) compares
 * it with the file; afterwards the guest's own writes (which move mtime)
 * do not make the node's other slots stale.
 */
enum { DAX_NODE_UNCHECKED, DAX_NODE_VERIFIED, DAX_NODE_STALE };
struct dax_node {
	uint64_t nodeid;
	int state;
	struct dax_file_id id;
};

/* A session's restored identities: nodeid -> struct dax_node, all in one array. */
struct dax_nodes {
	struct mk_hash by_id;
	struct dax_node *v;
};

/* The KVM window mapper's state (mapper-kvm.c). */
struct dax_window {
	int vm_fd;
	uint32_t slot;
	uint64_t base;
	uint64_t wlen;
	char *res;              /* host address of the window */
	int uffd;               /* userfaultfd the window is registered with; -1: eager mode */
};

/* errnos are below 4096 (the kernel's MAX_ERRNO) */
#define DAX_NERRNO 4096

struct dax_session {
	pthread_mutex_t lock;
	uint64_t base;
	uint64_t wlen;
	uint64_t cap;
	uint64_t align;
	unsigned align_log2;
	uint32_t max_remove;
	uint64_t max_mappings;
	uint64_t mapped;        /* sum of slot lengths */
	uint64_t nbound;
	struct dax_slots slots;
	struct dax_nodes nodes; /* restored identities */
	struct dax_backend be;
	struct dax_table *table; /* be.data when be.open is the built-in table's, else NULL */
	struct dax_mapper_ops mops;
	bool own_mapper;        /* mops made by libdax (destroyed on a failed new), not the caller's */
	unsigned kind;          /* enum dax_mapper_kind */
	struct dax_stats st;    /* counters; size, live/bound_mappings filled on a read */
	/* failed calls by errno: [e] for -e in 1 .. DAX_NERRNO - 1 (dax_session_rejects) */
	uint64_t rejects[DAX_NERRNO];
	/* lazy binding (service.c) */
	struct dax_window *win; /* the window mapper's state, NULL for other mappers */
	unsigned mode;          /* enum dax_fault_mode */
	struct mk_uffd_thread svc; /* the fault service thread (svc.stop_fd -1: none) */
	dax_event_fn event_fn;
	void *event_data;
	struct dax_fault_stats fst;
};

/* ==== log.c: the log hook =============================================== */

extern struct mk_log dax_log;
/* A refusal worth explaining (which field, which value, which limit). */
#define dax_refuse(...) mk_log(&dax_log, LOG_DEBUG, __VA_ARGS__)

/* ==== slots.c: the slot index =========================================== */

struct dax_slot *dax_slot_new(void);
void dax_slot_free(struct dax_slot *s);
void dax_slots_init(struct dax_slots *x);
/* Free every slot and the index. */
void dax_slots_clear(struct dax_slots *x);
/* The slot with the largest moffset <= key, or NULL. */
struct dax_slot *dax_slots_find_le(const struct dax_slots *x, uint64_t key);
/* The slot starting at key, or NULL. */
struct dax_slot *dax_slots_get(const struct dax_slots *x, uint64_t key);
/* Insert a slot whose moffset is not in the index yet: 0 or -ENOMEM (x unchanged). */
int dax_slots_insert(struct dax_slots *x, struct dax_slot *s);
/* Remove and free s (never allocates). */
void dax_slots_remove(struct dax_slots *x, struct dax_slot *s);
/* Initialise x with unbound slots made from n entries sorted by moffset: 0 or -ENOMEM (x empty). */
int dax_slots_build(struct dax_slots *x, const struct dax_mapping *v, size_t n);

/* ==== mapper-kvm.c: the KVM mappers ===================================== */

/*
 * Fill *ops for the session's window; 0 or -errno. The window mapper
 * registers the window with a userfaultfd when userfault is true and the
 * process may handle KVM's faults with one (else w->uffd is -1: eager
 * mode); *win is its state (freed by ops->destroy). vm_fd -1: a host-only
 * window (no memslot; benchmarks and tests without /dev/kvm).
 */
int dax_kvm_window_new(int vm_fd, uint32_t slot, uint64_t base, uint64_t wlen, bool userfault,
		       struct dax_mapper_ops *ops, struct dax_window **win);
/*
 * Give [off, off + len) of the window back to anonymous memory and
 * register it again; drop also discards pages a racing touch populated
 * between the two steps (needed where unbound slots may live there).
 */
int dax_window_giveback(struct dax_window *w, uint64_t off, uint64_t len, bool drop);
/* Host address of a window mapper's reservation (tests), NULL for other mappers. */
void *dax_kvm_window_hva(const struct dax_mapper_ops *ops);
int dax_kvm_memslot_new(int vm_fd, uint32_t first, uint32_t nslots, struct dax_mapper_ops *ops);
/* Live-mapping limit derived from vm.max_map_count and our current map count. */
uint64_t dax_default_max_mappings(unsigned vmas_per_mapping);

/* ==== table.c: the built-in table backend =============================== */

/*
 * The table's own fd of nodeid (no dup), checked for prot, with *id from
 * fstat (id NULL: no fstat); the table stays locked until
 * dax_table_unborrow(), also on failure. For the session's map calls: two
 * syscalls fewer than dax_table_open() + close(), three without the id.
 */
int dax_table_borrow(struct dax_table *t, uint64_t nodeid, uint32_t prot, struct dax_file_id *id);
void dax_table_unborrow(struct dax_table *t);

/* ==== blob.c: the DAXS codec ============================================ */

#define DAX_BLOB_V1_HDR 48u
#define DAX_BLOB_V1_ENT 40u
#define DAX_BLOB_V2_HDR 56u
#define DAX_BLOB_V2_ENT 80u
size_t dax_blob_hdr_size(unsigned version);
size_t dax_blob_ent_size(unsigned version);
/* Size of a blob of n entries, or 0 on overflow. */
size_t dax_blob_size(unsigned version, size_t n);
void dax_blob_put_header(uint8_t *p, const struct dax_blob_header *h);
void dax_blob_put_entry(uint8_t *p, unsigned version, const struct dax_mapping *m);
/* The trailing CRC of a version 2 blob of sz bytes. */
void dax_blob_put_crc(uint8_t *b, size_t sz);
/* dax_blob_parse() with *why always set on failure; nothing allocated on error. */
int dax_blob_decode(const uint8_t *b, size_t len, struct dax_blob_header *h,
		    struct dax_mapping **out, const char **why);

/* ==== bind.c: binding slots into the window ============================= */

/* Count a call's outcome in s->st (session lock held); returns r. */
int dax_account(struct dax_session *s, int r);
void dax_hist_add(uint64_t *h, uint64_t ns);
bool dax_file_id_equal(const struct dax_file_id *a, const struct dax_file_id *b);
void dax_slot_to_mapping(const struct dax_slot *sl, struct dax_mapping *m);
/* The slot with the largest moffset below end (the only candidate to overlap [.., end)). */
struct dax_slot *dax_slot_before(struct dax_session *s, uint64_t end);
/* Slot covering gpa, or NULL when gpa is outside the window or unmapped. */
struct dax_slot *dax_lookup_gpa(struct dax_session *s, uint64_t gpa);
/* Restored identities. */
void dax_nodes_free(struct dax_nodes *n);
/* Check a node's file identity against the restored one: 0 or -ESTALE. */
int dax_node_check(struct dax_session *s, uint64_t nodeid, const struct dax_file_id *id);
/* Does a restored identity of nodeid wait for its check (the node's first open)? */
bool dax_node_unchecked(struct dax_session *s, uint64_t nodeid);
/*
 * The backend's fd of a node for a map call: the table's own fd when the
 * backend is the built-in table (borrowed: no dup, no close), else
 * be.open's. With id NULL the table skips the identity (its fstat);
 * be.open always gives one, then dropped. Always pair with
 * dax_file_put(), also on failure.
 */
int dax_file_get(struct dax_session *s, uint64_t nodeid, uint64_t fh, uint32_t prot,
		 struct dax_file_id *id);
void dax_file_put(struct dax_session *s, int fd);
/*
 * Bound slots' identities as their files have them now, looked up once per
 * node (a bound slot's file may have changed since setup: guest writes
 * move mtime, and setup keeps none unless it checked one). For
 * dax_session_list and dax_session_snapshot, session lock held.
 */
struct dax_ids {
	struct mk_hash by_node; /* nodeid -> entry of v */
	struct dax_file_id *v;
	size_t n;
};
/* Room for n nodes: 0 or -ENOMEM (ids empty). */
int dax_ids_reserve(struct dax_ids *ids, size_t n);
void dax_ids_free(struct dax_ids *ids);
/* sl's node's identity now (sl->id if the backend cannot open it any more). */
const struct dax_file_id *dax_ids_current(struct dax_session *s, struct dax_ids *ids,
					  const struct dax_slot *sl);
/*
 * Bind sl if needed (session lock held). When fdp is not NULL the
 * caller wants an open fd of the slot's file (to complete an MMIO
 * access; it closes it) and the identity in *idp.
 */
int dax_bind_locked(struct dax_session *s, struct dax_slot *sl, int *fdp, struct dax_file_id *idp);
/* Unmap a bound slot (it stays in the index, unbound). */
int dax_unbind_locked(struct dax_session *s, struct dax_slot *sl);
/*
 * Unmap the n slots of a remove batch (sorted here by moffset). The
 * window mapper gives each run of adjacent slots back with one mmap and
 * one registration. If an unmap fails, the slots unmapped so far stay as
 * unbound slots (same guest view) and the error is returned.
 */
int dax_unbind_batch_locked(struct dax_session *s, struct dax_slot **v, size_t n);
/*
 * Unmap every bound slot. If an unmap fails, the slots already unmapped
 * stay as unbound slots (same guest view) and the error is returned.
 */
int dax_unmap_all_locked(struct dax_session *s);

/* ==== service.c: the userfaultfd fault service ========================= */

/* Start / stop the session's fault service thread. */
int dax_service_start(struct dax_session *s);
void dax_service_stop(struct dax_session *s);
/* Report an event through the session's event callback (no lock held). */
void dax_emit(struct dax_session *s, const struct dax_event *ev);

/* ==== session.c: session lifecycle, setup, remove, guest accesses ======= */

/*
 * A window-mapper session with no VM behind it (vm_fd ignored, no
 * memslot): everything but KVM, for benchmarks and tests of the mapping
 * and registration costs on machines without /dev/kvm. Not exported.
 */
int dax_session_new_host_only(const struct dax_config *cfg, const struct dax_backend *backend,
			      struct dax_session **out);

/* ==== snapshot.c: session snapshot and restore ========================== */
/* (public functions only) */
