/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libdax internals: shared by the session, mappers, blob code and tests. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "dax.h"

/* One live mapping (or restored, not yet bound, slot) of the window. */
struct dax_slot {
	uint64_t moffset;       /* GTree key: slots never overlap */
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

struct dax_slot *dax_slot_new(void);
void dax_slot_free(struct dax_slot *s);
void dax_slots_init(struct dax_slots *x);
/* Free every slot and the index. */
void dax_slots_clear(struct dax_slots *x);
/* The slot with the largest moffset <= key, or NULL. */
struct dax_slot *dax_slots_find_le(const struct dax_slots *x, uint64_t key);
/* The slot starting at key, or NULL. */
struct dax_slot *dax_slots_get(const struct dax_slots *x, uint64_t key);
/* Insert a slot whose moffset is not in the index yet. */
void dax_slots_insert(struct dax_slots *x, struct dax_slot *s);
/* Remove and free s. */
void dax_slots_remove(struct dax_slots *x, struct dax_slot *s);
/* Initialise x with unbound slots made from n entries sorted by moffset. */
void dax_slots_build(struct dax_slots *x, const struct dax_mapping *v, size_t n);

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

/* The KVM window mapper's state (mapper-kvm.c). */
struct dax_window {
	int vm_fd;
	uint32_t slot;
	uint64_t base;
	uint64_t wlen;
	char *res;              /* host address of the window */
	int uffd;               /* userfaultfd the window is registered with; -1: eager mode */
};

struct dax_session {
	GMutex lock;
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
	GHashTable *nodes;      /* nodeid -> struct dax_node: restored identities */
	struct dax_backend be;
	struct dax_mapper_ops mops;
	unsigned kind;          /* enum dax_mapper_kind */
	struct dax_stats st;
	/* lazy binding (userfault.c) */
	struct dax_window *win; /* the window mapper's state, NULL for other mappers */
	unsigned mode;          /* enum dax_fault_mode */
	GThread *thread;        /* fault service thread, or NULL */
	int stop_fd;            /* eventfd that stops it; -1 */
	dax_event_fn event_fn;
	void *event_data;
	struct dax_fault_stats fst;
};

/*
 * Mappers (mapper-kvm.c): fill *ops for the session's window; 0 or -errno.
 * The window mapper registers the window with a userfaultfd when
 * userfault is true and the process may handle KVM's faults with one
 * (else w->uffd is -1: eager mode); *win is its state (freed by ops->destroy).
 */
int dax_kvm_window_new(int vm_fd, uint32_t slot, uint64_t base, uint64_t wlen, bool userfault,
		       struct dax_mapper_ops *ops, struct dax_window **win);
/*
 * Give [off, off + len) of the window back to anonymous memory and
 * register it again; drop also discards pages a racing touch populated
 * between the two steps (needed where unbound slots may live there).
 */
int dax_window_giveback(struct dax_window *w, uint64_t off, uint64_t len, bool drop);

/*
 * A window-mapper session with no VM behind it (vm_fd ignored, no
 * memslot): everything but KVM, for benchmarks and tests of the mapping
 * and registration costs on machines without /dev/kvm. Not exported.
 */
int dax_session_new_host_only(const struct dax_config *cfg, const struct dax_backend *backend,
			      struct dax_session **out);

/* userfault.c: a userfaultfd that may serve kernel-mode (KVM) faults, API checked. */
int dax_uffd_open(void);
int dax_uffd_register(int uffd, void *addr, uint64_t len);
/* The session's fault service thread. */
int dax_service_start(struct dax_session *s);
void dax_service_stop(struct dax_session *s);
void dax_emit(struct dax_session *s, const struct dax_event *ev);

/* session.c, for the fault service (session lock held). */
struct dax_slot *dax_lookup_gpa(struct dax_session *s, uint64_t gpa);
int dax_bind_locked(struct dax_session *s, struct dax_slot *sl, int *fdp, struct dax_file_id *idp);
void dax_hist_add(uint64_t *h, uint64_t ns);
int dax_kvm_memslot_new(int vm_fd, uint32_t first, uint32_t nslots,
			struct dax_mapper_ops *ops);
/* Host address of a window mapper's reservation (tests). */
void *dax_kvm_window_hva(const struct dax_mapper_ops *ops);

/* Live-mapping limit derived from vm.max_map_count and our current map count. */
uint64_t dax_default_max_mappings(unsigned vmas_per_mapping);

/* Blob codec (blob.c). */
#define DAX_BLOB_V1_HDR 48u
#define DAX_BLOB_V1_ENT 40u
#define DAX_BLOB_V2_HDR 56u
#define DAX_BLOB_V2_ENT 80u
uint32_t dax_crc32c(uint32_t crc, const void *buf, size_t len);
bool dax_file_id_equal(const struct dax_file_id *a, const struct dax_file_id *b);

int dax_session_unmap_all_locked(struct dax_session *s);
GHashTable *dax_nodes_new(void);
/* Check a node's file identity against the restored one: 0 or -ESTALE. */
int dax_node_check(struct dax_session *s, uint64_t nodeid, const struct dax_file_id *id);
void dax_slot_to_mapping(const struct dax_slot *sl, struct dax_mapping *m);
