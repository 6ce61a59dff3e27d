/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Session snapshot and restore: a session's slots written as a DAXS blob
 * (blob.c), and a blob turned back into a session's slots (metadata only;
 * each slot is bound on its first touch, or all at once in eager mode).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/alloc.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "daxP.h"

/* ---- snapshot ------------------------------------------------------------------ */

MK_EXPORT int dax_session_snapshot(struct dax_session *s, unsigned version, void **blob, size_t *len)
{
	struct dax_ids ids = { MK_HASH_INIT, NULL, 0 };
	struct dax_blob_header h;
	uint8_t *b = NULL, *p;
	struct dax_slot *sl;
	size_t sz;
	int r = 0;

	if (!s || (version != 1 && version != 2) || !blob || !len) {
		dax_refuse("snapshot: %s", !s ? "no session" : !blob || !len ? "blob or len is NULL" :
			   "version must be 1 or 2");
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	h = (struct dax_blob_header){
		.version = version, .align_log2 = version == 2 ? s->align_log2 : 0,
		.base_gpa = s->base, .window_len = s->wlen, .cap = s->cap,
		.mapped_bytes = s->mapped, .count = s->slots.count,
	};
	sz = dax_blob_size(version, (size_t)h.count);
	if (sz)
		b = mk_malloc(sz);
	/* A bound slot's file as it is now (guest writes move mtime): once per node. */
	if (b && version == 2)
		r = dax_ids_reserve(&ids, s->nbound);
	if (!b || r < 0) {
		pthread_mutex_unlock(&s->lock);
		free(b);
		return -ENOMEM;
	}
	dax_blob_put_header(b, &h);
	p = b + dax_blob_hdr_size(version);
	dax_slots_foreach(&s->slots, sl) {
		struct dax_mapping m;

		dax_slot_to_mapping(sl, &m);
		if (version == 2 && sl->bound)
			m.id = *dax_ids_current(s, &ids, sl);
		dax_blob_put_entry(p, version, &m);
		p += dax_blob_ent_size(version);
	}
	pthread_mutex_unlock(&s->lock);
	dax_ids_free(&ids);
	if (version == 2)
		dax_blob_put_crc(b, sz);
	*blob = b;
	*len = sz;
	return 0;
}

/* ---- restore -------------------------------------------------------------------- */

/* The restored identities of v's nodes: 0 or -ENOMEM (n empty). */
static int nodes_build(struct dax_nodes *n, const struct dax_mapping *v, size_t count)
{
	size_t k = 0;

	*n = (struct dax_nodes){ MK_HASH_INIT, NULL };
	if (!count)
		return 0;
	n->v = mk_reallocarray(NULL, count, sizeof(*n->v));
	if (!n->v || mk_hash_reserve(&n->by_id, count) < 0) {
		dax_nodes_free(n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		/* runs of one node are common: skip the hash lookup for a repeat */
		if (v[i].id.valid && !(i && v[i - 1].id.valid && v[i - 1].nodeid == v[i].nodeid) &&
		    !mk_hash_get(&n->by_id, v[i].nodeid)) {
			struct dax_node *d = &n->v[k++];

			*d = (struct dax_node){ .nodeid = v[i].nodeid, .id = v[i].id };
			(void)mk_hash_put(&n->by_id, d->nodeid, d, NULL);  /* reserved: cannot fail */
		}
	}
	return 0;
}

/*
 * Eager mode (the window without userfaultfd): nothing could catch the
 * first touch of an unbound page, so every restored slot is bound now.
 * A slot that cannot be bound stays unbound over anonymous memory (reads
 * as zeros) and is reported (events has room for every slot); the
 * restore itself succeeded. Returns the number of events.
 */
static size_t bind_all_locked(struct dax_session *s, struct dax_event *events)
{
	struct dax_slot *sl;
	uint64_t t0 = mk_now_ns();
	size_t n = 0;

	dax_slots_foreach(&s->slots, sl) {
		int r = dax_bind_locked(s, sl, NULL, NULL);

		if (r == 0) {
			s->fst.eager_binds++;
			continue;
		}
		dax_account(s, r);
		s->fst.unbound++;
		events[n++] = (struct dax_event){ DAX_EVENT_UNBOUND, r, s->base + sl->moffset,
						  sl->moffset, sl->len, sl->nodeid };
	}
	s->fst.eager_ns += mk_now_ns() - t0;
	return n;
}

/* Checks of a parsed blob against this session: 0 or -errno; *sum the mapped bytes. */
static int check_blob(struct dax_session *s, const struct dax_blob_header *h,
		      const struct dax_mapping *v, uint64_t *sum)
{
	if (h->base_gpa != s->base || h->window_len != s->wlen) {
		dax_refuse("restore: the blob's window [0x%llx, +0x%llx) is not the session's "
			   "[0x%llx, +0x%llx)", (unsigned long long)h->base_gpa,
			   (unsigned long long)h->window_len, (unsigned long long)s->base,
			   (unsigned long long)s->wlen);
		return -EBADSLT;
	}
	if (h->count > s->max_mappings) {
		dax_refuse("restore: %llu slots, the session's limit is %llu",
			   (unsigned long long)h->count, (unsigned long long)s->max_mappings);
		return -ENOSPC;
	}
	*sum = 0;
	for (size_t i = 0; i < h->count; i++) {
		if (!mk_is_aligned(v[i].moffset, s->align) || !mk_is_aligned(v[i].len, s->align)) {
			dax_refuse("restore: slot [0x%llx, +0x%llx) not aligned to the session's 0x%llx",
				   (unsigned long long)v[i].moffset, (unsigned long long)v[i].len,
				   (unsigned long long)s->align);
			return -EINVAL;
		}
		*sum += v[i].len;       /* cannot overflow: the decoder checked it */
	}
	if (*sum > s->cap) {
		dax_refuse("restore: 0x%llx mapped bytes above the session's cap 0x%llx",
			   (unsigned long long)*sum, (unsigned long long)s->cap);
		return -ENOSPC;
	}
	return 0;
}

MK_EXPORT int dax_session_restore(struct dax_session *s, const void *blob, size_t len)
{
	struct dax_blob_header h;
	struct dax_mapping *v = NULL;
	const char *why;
	struct dax_slots fresh, old;
	struct dax_nodes nodes, old_nodes;
	struct dax_event *events = NULL;
	size_t nev = 0;
	uint64_t sum;
	int r;

	if (!s || (!blob && len)) {
		dax_refuse("restore: %s is NULL", !s ? "session" : "blob");
		return -EINVAL;
	}
	r = dax_blob_decode(blob, len, &h, &v, &why);
	if (r < 0) {
		dax_refuse("restore: bad blob: %s", why);
		goto out_count;
	}
	r = check_blob(s, &h, v, &sum);
	if (r < 0)
		goto out_count;

	/* Build the new index outside the lock: restored slots are metadata only. */
	r = dax_slots_build(&fresh, v, h.count);
	if (r < 0)
		goto out_count;
	r = nodes_build(&nodes, v, h.count);
	/* eager mode reports the slots it cannot bind: room for all of them, before anything changes */
	if (r == 0 && s->mode == DAX_FAULT_EAGER && h.count &&
	    !(events = mk_reallocarray(NULL, h.count, sizeof(*events)))) {
		dax_nodes_free(&nodes);
		r = -ENOMEM;
	}
	if (r < 0) {
		dax_slots_clear(&fresh);
		goto out_count;
	}
	free(v);
	v = NULL;

	pthread_mutex_lock(&s->lock);
	/* Tear down live mappings first; if that fails, keep the old state. */
	r = dax_unmap_all_locked(s);
	if (r < 0) {
		dax_account(s, r);
		pthread_mutex_unlock(&s->lock);
		dax_slots_clear(&fresh);
		dax_nodes_free(&nodes);
		free(events);
		return r;
	}
	old = s->slots;
	old_nodes = s->nodes;
	s->slots = fresh;
	s->nodes = nodes;
	s->mapped = sum;
	s->st.restores++;
	if (s->mode == DAX_FAULT_EAGER)
		nev = bind_all_locked(s, events);
	pthread_mutex_unlock(&s->lock);
	dax_slots_clear(&old);
	dax_nodes_free(&old_nodes);
	for (size_t i = 0; i < nev; i++)
		dax_emit(s, &events[i]);
	free(events);
	return 0;

out_count:
	free(v);
	pthread_mutex_lock(&s->lock);
	dax_account(s, r);
	pthread_mutex_unlock(&s->lock);
	return r;
}
