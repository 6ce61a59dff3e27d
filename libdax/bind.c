/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Binding slots into the window, under the session lock: slot lookup by
 * guest address, the backend's file for a map call, binding (lazy rebind
 * of restored slots) and unbinding, the check of restored file
 * identities, and the session's counters. The session calls (session.c,
 * snapshot.c) and the fault service (service.c) build on these.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "daxP.h"

int dax_account(struct dax_session *s, int r)
{
	if (r < 0) {
		s->st.rejects++;
		if (r > -DAX_NERRNO)
			s->rejects[-r]++;
	}
	return r;
}

void dax_hist_add(uint64_t *h, uint64_t ns)
{
	h[MK_MIN(mk_log2(ns | 1), DAX_HIST_BUCKETS - 1)]++;
}

bool dax_file_id_equal(const struct dax_file_id *a, const struct dax_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

void dax_slot_to_mapping(const struct dax_slot *sl, struct dax_mapping *m)
{
	*m = (struct dax_mapping){
		.moffset = sl->moffset, .len = sl->len, .nodeid = sl->nodeid,
		.foffset = sl->foffset, .prot = sl->prot,
		.flags = sl->bound ? DAX_MAPPING_BOUND : 0, .id = sl->id,
	};
}

/* ---- lookup ---------------------------------------------------------------- */

struct dax_slot *dax_slot_before(struct dax_session *s, uint64_t end)
{
	return dax_slots_find_le(&s->slots, end - 1);
}

struct dax_slot *dax_lookup_gpa(struct dax_session *s, uint64_t gpa)
{
	struct dax_slot *sl;
	uint64_t moff;

	if (gpa < s->base || gpa - s->base >= s->wlen)
		return NULL;
	moff = gpa - s->base;
	sl = dax_slot_before(s, moff + 1);
	return sl && moff - sl->moffset < sl->len ? sl : NULL;
}

/* ---- restored identities ------------------------------------------------------ */

void dax_nodes_free(struct dax_nodes *n)
{
	mk_hash_free(&n->by_id);
	free(n->v);
	n->v = NULL;
}

int dax_node_check(struct dax_session *s, uint64_t nodeid, const struct dax_file_id *id)
{
	struct dax_node *n = mk_hash_get(&s->nodes.by_id, nodeid);

	if (!n)
		return 0;
	if (n->state == DAX_NODE_UNCHECKED) {
		n->state = dax_file_id_equal(&n->id, id) ? DAX_NODE_VERIFIED : DAX_NODE_STALE;
		if (n->state == DAX_NODE_STALE)
			mk_log(&dax_log, LOG_INFO,
			       "node %llu: the file changed since the snapshot (ino %llu size %llu, "
			       "was ino %llu size %llu): its restored slots stay unbound",
			       (unsigned long long)nodeid, (unsigned long long)id->ino,
			       (unsigned long long)id->size, (unsigned long long)n->id.ino,
			       (unsigned long long)n->id.size);
	}
	return n->state == DAX_NODE_STALE ? -ESTALE : 0;
}

bool dax_node_unchecked(struct dax_session *s, uint64_t nodeid)
{
	struct dax_node *n = s->nodes.v ? mk_hash_get(&s->nodes.by_id, nodeid) : NULL;

	return n && n->state == DAX_NODE_UNCHECKED;
}

/* ---- the backend's file ----------------------------------------------------- */

int dax_file_get(struct dax_session *s, uint64_t nodeid, uint64_t fh, uint32_t prot,
		 struct dax_file_id *id)
{
	struct dax_file_id scratch;
	int fd;

	if (s->table)
		fd = dax_table_borrow(s->table, nodeid, prot, id);
	else
		fd = s->be.open(s->be.data, nodeid, fh, prot, id ? id : &scratch);
	if (fd < 0)
		mk_log(&dax_log, LOG_DEBUG, "node %llu: the backend cannot open it for %s: %d",
		       (unsigned long long)nodeid, prot & DAX_PROT_WRITE ? "writing" : "reading", fd);
	return fd;
}

void dax_file_put(struct dax_session *s, int fd)
{
	if (s->table)
		dax_table_unborrow(s->table);
	else if (fd >= 0)
		mk_close(fd);
}

int dax_ids_reserve(struct dax_ids *ids, size_t n)
{
	*ids = (struct dax_ids){ MK_HASH_INIT, NULL, 0 };
	if (!n)
		return 0;
	ids->v = mk_reallocarray(NULL, n, sizeof(*ids->v));
	if (!ids->v || mk_hash_reserve(&ids->by_node, n) < 0) {
		dax_ids_free(ids);
		return -ENOMEM;
	}
	return 0;
}

void dax_ids_free(struct dax_ids *ids)
{
	free(ids->v);
	ids->v = NULL;
	mk_hash_free(&ids->by_node);
}

const struct dax_file_id *dax_ids_current(struct dax_session *s, struct dax_ids *ids,
					  const struct dax_slot *sl)
{
	struct dax_file_id *e = mk_hash_get(&ids->by_node, sl->nodeid);
	int fd;

	if (e)
		return e;
	e = &ids->v[ids->n++];
	fd = dax_file_get(s, sl->nodeid, DAX_FH_NONE, DAX_PROT_READ, e);
	if (fd < 0)
		*e = sl->id;
	dax_file_put(s, fd);
	/* cannot fail: room for every bound slot was reserved */
	(void)mk_hash_put(&ids->by_node, sl->nodeid, e, NULL);
	return e;
}

/* ---- bind / unbind -------------------------------------------------------------- */

int dax_bind_locked(struct dax_session *s, struct dax_slot *sl, int *fdp, struct dax_file_id *idp)
{
	struct dax_file_id id = { 0 };
	uint64_t t0;
	void *hva = NULL;
	int fd, r;

	if (sl->bound && !fdp)
		return 0;
	t0 = mk_now_ns();
	if (fdp) {
		/* the caller keeps the fd past this call: always a descriptor of its own */
		fd = s->be.open(s->be.data, sl->nodeid, DAX_FH_NONE, sl->prot, &id);
		if (fd < 0)
			return fd;
	} else {
		/* The identity only settles a restored node's first open (see setup_locked). */
		fd = dax_file_get(s, sl->nodeid, DAX_FH_NONE, sl->prot,
				  dax_node_unchecked(s, sl->nodeid) ? &id : NULL);
		if (fd < 0) {
			dax_file_put(s, fd);
			return fd;
		}
	}
	if (!sl->bound) {
		r = dax_node_check(s, sl->nodeid, &id);
		if (r == 0)
			r = s->mops.map(s->mops.data, s->base + sl->moffset, sl->len, fd, sl->foffset,
					sl->prot, 0, &hva);
		if (r < 0) {
			if (fdp)
				mk_close(fd);
			else
				dax_file_put(s, fd);
			return r;
		}
		sl->bound = true;
		sl->hva = hva;
		if (id.valid)
			sl->id = id;    /* else the restored one, which its node's check confirmed */
		s->nbound++;
		s->st.faults++;
		dax_hist_add(s->st.fault_ns, mk_now_ns() - t0);
	}
	if (fdp) {
		*fdp = fd;
		*idp = id;
	} else
		dax_file_put(s, fd);
	return 0;
}

int dax_unbind_locked(struct dax_session *s, struct dax_slot *sl)
{
	int r;

	if (!sl->bound)
		return 0;
	r = s->mops.unmap(s->mops.data, s->base + sl->moffset, sl->len, sl->hva);
	if (r < 0) {
		mk_log(&dax_log, LOG_ERR, "unmap of [%llu, +%llu) failed: %d",
		       (unsigned long long)sl->moffset, (unsigned long long)sl->len, r);
		return r;
	}
	sl->bound = false;
	sl->hva = NULL;
	s->nbound--;
	return 0;
}

static int by_moffset(const void *a, const void *b)
{
	const struct dax_slot *x = *(struct dax_slot *const *)a, *y = *(struct dax_slot *const *)b;

	return (x->moffset > y->moffset) - (x->moffset < y->moffset);
}

int dax_unbind_batch_locked(struct dax_session *s, struct dax_slot **v, size_t n)
{
	size_t i = 0;

	if (!s->win) {
		for (; i < n; i++) {
			int r = dax_unbind_locked(s, v[i]);
			if (r < 0)
				return r;
		}
		return 0;
	}
	qsort(v, n, sizeof(*v), by_moffset);
	while (i < n) {
		size_t j = i + 1;
		bool bound = v[i]->bound;
		uint64_t end = v[i]->moffset + v[i]->len;
		int r;

		for (; j < n && v[j]->moffset == end; j++) {
			bound |= v[j]->bound;
			end += v[j]->len;
		}
		/*
		 * [v[i], v[j)) back in one go (an unbound slot's range is
		 * anonymous already: given back with the run, nothing changes for it).
		 */
		r = bound ? dax_window_giveback(s->win, v[i]->moffset, end - v[i]->moffset, false) : 0;
		if (r < 0) {
			mk_log(&dax_log, LOG_ERR, "unmap of [%llu, +%llu) failed: %d",
			       (unsigned long long)v[i]->moffset,
			       (unsigned long long)(end - v[i]->moffset), r);
			return r;
		}
		for (; i < j; i++) {
			if (v[i]->bound)
				s->nbound--;
			v[i]->bound = false;
			v[i]->hva = NULL;
		}
	}
	return 0;
}

int dax_unmap_all_locked(struct dax_session *s)
{
	struct dax_slot *sl;
	int err = 0;

	if (s->win) {
		/*
		 * The whole window back in one go (one mmap and one
		 * registration): this also drops the scratch pages of holes and
		 * of slots that could not be bound, so restored slots fault.
		 */
		err = dax_window_giveback(s->win, 0, s->wlen, true);
		if (err < 0) {
			mk_log(&dax_log, LOG_ERR, "giving the whole window back failed: %d", err);
			return err;
		}
		dax_slots_foreach(&s->slots, sl) {
			sl->bound = false;
			sl->hva = NULL;
		}
		s->nbound = 0;
		return 0;
	}

	dax_slots_foreach(&s->slots, sl) {
		int r = dax_unbind_locked(s, sl);
		if (r < 0 && !err)
			err = r;
	}
	return s->nbound ? (err ?: -EIO) : 0;
}
