/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The DAX session: validation and bookkeeping of FUSE_SETUPMAPPING /
 * FUSE_REMOVEMAPPING over a window, lazy rebind after restore, and
 * statistics. One mutex per session covers the slot index and every
 * mapper call, so setups, removes and faults from several vCPU or queue
 * threads see one consistent order, and a slot can never be mapped by a
 * fault after a remove dropped it.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <linux/fuse.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/stat.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "common/uapi.h"
#include "daxP.h"

_Static_assert(sizeof(struct dax_setup_req) == sizeof(struct fuse_setupmapping_in), "abi");
_Static_assert(sizeof(struct dax_range) == sizeof(struct fuse_removemapping_one), "abi");
_Static_assert(sizeof(struct fuse_removemapping_in) == 4, "abi");
_Static_assert(DAX_FUSE_FLAG_READ == FUSE_SETUPMAPPING_FLAG_READ, "abi");
_Static_assert(DAX_FUSE_FLAG_WRITE == FUSE_SETUPMAPPING_FLAG_WRITE, "abi");

MK_EXPORT int dax_err_index(int err)
{
	switch (err) {
	case -EINVAL: return DAX_ERR_EINVAL;
	case -EEXIST: return DAX_ERR_EEXIST;
	case -ENOSPC: return DAX_ERR_ENOSPC;
	case -ENOENT: return DAX_ERR_ENOENT;
	case -ESTALE: return DAX_ERR_ESTALE;
	case -EACCES: return DAX_ERR_EACCES;
	case -ENOMEM: return DAX_ERR_ENOMEM;
	default: return DAX_ERR_OTHER;
	}
}

void dax_hist_add(uint64_t *h, uint64_t ns)
{
	h[MK_MIN(mk_log2(ns | 1), DAX_HIST_BUCKETS - 1)]++;
}

/* Count a call's outcome; returns r. */
static int account(struct dax_session *s, int r)
{
	if (r < 0)
		s->st.rejects[dax_err_index(r)]++;
	return r;
}

/* ---- lookup ---------------------------------------------------------------- */

/* The slot with the largest moffset below end (the only candidate to overlap [.., end)). */
static struct dax_slot *slot_before(struct dax_session *s, uint64_t end)
{
	return dax_slots_find_le(&s->slots, end - 1);
}

static struct dax_slot *slot_covering(struct dax_session *s, uint64_t moff)
{
	struct dax_slot *sl = slot_before(s, moff + 1);

	return sl && moff - sl->moffset < sl->len ? sl : NULL;
}

/* ---- create / free ----------------------------------------------------------- */

GHashTable *dax_nodes_new(void)
{
	return g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
}

int dax_node_check(struct dax_session *s, uint64_t nodeid, const struct dax_file_id *id)
{
	struct dax_node *n = g_hash_table_lookup(s->nodes, &nodeid);

	if (!n)
		return 0;
	if (n->state == DAX_NODE_UNCHECKED)
		n->state = dax_file_id_equal(&n->id, id) ? DAX_NODE_VERIFIED : DAX_NODE_STALE;
	return n->state == DAX_NODE_STALE ? -ESTALE : 0;
}

static int session_new(const struct dax_config *cfg, const struct dax_backend *backend,
		       bool host_only, struct dax_session **out)
{
	uint64_t page = mk_page_size(), align, end;
	struct dax_mapper_ops ops = { 0 };
	struct dax_window *win = NULL;
	struct dax_session *s;
	unsigned vmas = 2;
	int r;

	if (!cfg || !backend || !backend->open || !out)
		return -EINVAL;
	for (size_t i = 0; i < MK_ARRAY_SIZE(cfg->reserved); i++)
		if (cfg->reserved[i])
			return -EINVAL;
	if (cfg->align_log2 && (cfg->align_log2 < mk_log2(page) || cfg->align_log2 > 40))
		return -EINVAL;
	align = cfg->align_log2 ? 1ull << cfg->align_log2 : page;
	if (!cfg->window_len || !mk_is_aligned(cfg->window_len, align) ||
	    !mk_is_aligned(cfg->base_gpa, align) || mk_add_u64(cfg->base_gpa, cfg->window_len, &end))
		return -EINVAL;
	if (cfg->cap > cfg->window_len)
		return -EINVAL;
	if (cfg->reserved32 || (cfg->flags & ~(DAX_SESSION_NO_THREAD | DAX_SESSION_NO_USERFAULT)))
		return -EINVAL;

	switch (cfg->mapper) {
	case DAX_MAPPER_KVM_WINDOW:
		if (cfg->vm_fd < 0 && !host_only)
			return -EINVAL;
		r = dax_kvm_window_new(host_only ? -1 : cfg->vm_fd, cfg->slot, cfg->base_gpa,
				       cfg->window_len, !(cfg->flags & DAX_SESSION_NO_USERFAULT),
				       &ops, &win);
		break;
	case DAX_MAPPER_KVM_MEMSLOT:
		r = dax_kvm_memslot_new(cfg->vm_fd, cfg->slot, cfg->nslots ?: 256, &ops);
		vmas = 1;
		break;
	case DAX_MAPPER_CUSTOM:
		if (!cfg->ops || !cfg->ops->map || !cfg->ops->unmap)
			return -EINVAL;
		ops = *cfg->ops;
		r = 0;
		break;
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;

	s = g_new0(struct dax_session, 1);
	g_mutex_init(&s->lock);
	s->base = cfg->base_gpa;
	s->wlen = cfg->window_len;
	s->cap = cfg->cap ?: cfg->window_len;
	s->align = align;
	s->align_log2 = mk_log2(align);
	s->max_remove = cfg->max_remove ?: (uint32_t)(page / sizeof(struct dax_range));
	s->max_mappings = cfg->max_mappings ?: dax_default_max_mappings(vmas);
	if (cfg->mapper == DAX_MAPPER_KVM_MEMSLOT)
		s->max_mappings = MK_MIN(s->max_mappings, cfg->nslots ?: 256);
	dax_slots_init(&s->slots);
	s->nodes = dax_nodes_new();
	s->be = *backend;
	s->mops = ops;
	s->kind = cfg->mapper;
	s->win = win;
	s->stop_fd = -1;
	s->mode = !win ? DAX_FAULT_EXIT : win->uffd >= 0 ? DAX_FAULT_USERFAULT : DAX_FAULT_EAGER;
	if (s->mode == DAX_FAULT_USERFAULT && !(cfg->flags & DAX_SESSION_NO_THREAD)) {
		r = dax_service_start(s);
		if (r < 0) {
			ops.destroy(ops.data);
			g_hash_table_destroy(s->nodes);
			g_mutex_clear(&s->lock);
			g_free(s);
			return r;
		}
	}
	*out = s;
	return 0;
}

MK_EXPORT void dax_session_free(struct dax_session *s)
{
	if (!s)
		return;
	dax_service_stop(s);
	dax_session_unmap_all_locked(s);
	dax_slots_clear(&s->slots);
	g_hash_table_destroy(s->nodes);
	if (s->mops.destroy)
		s->mops.destroy(s->mops.data);
	if (s->be.destroy)
		s->be.destroy(s->be.data);
	g_mutex_clear(&s->lock);
	g_free(s);
}

MK_EXPORT int dax_session_new(const struct dax_config *cfg, const struct dax_backend *backend,
			      struct dax_session **out)
{
	return session_new(cfg, backend, false, out);
}

int dax_session_new_host_only(const struct dax_config *cfg, const struct dax_backend *backend,
			      struct dax_session **out)
{
	return session_new(cfg, backend, true, out);
}

/* ---- setup ------------------------------------------------------------------- */

static int setup_locked(struct dax_session *s, uint64_t nodeid, const struct dax_setup_req *q)
{
	struct dax_slot *old, *sl;
	struct dax_file_id id = { 0 };
	uint32_t prot = 0;
	uint64_t end;
	void *hva = NULL;
	int fd, r;

	if (q->flags & ~(DAX_FUSE_FLAG_READ | DAX_FUSE_FLAG_WRITE))
		return -EINVAL;
	if (q->flags & DAX_FUSE_FLAG_READ)
		prot |= DAX_PROT_READ;
	if (q->flags & DAX_FUSE_FLAG_WRITE)
		prot |= DAX_PROT_WRITE;
	if (!prot || !q->len || !mk_is_aligned(q->moffset, s->align) ||
	    !mk_is_aligned(q->len, s->align) || !mk_is_aligned(q->foffset, mk_page_size()) ||
	    mk_add_u64(q->foffset, q->len, &end) || q->foffset + q->len > (uint64_t)INT64_MAX ||
	    !mk_range_ok(q->moffset, q->len, s->wlen))
		return -EINVAL;

	old = slot_before(s, q->moffset + q->len);
	if (old && old->moffset + old->len > q->moffset) {
		/* Exactly the live range: the guest's upgrade/replace. Else a partial overlap. */
		if (old->moffset != q->moffset || old->len != q->len)
			return -EEXIST;
	} else {
		old = NULL;
		if (s->mapped + q->len > s->cap || s->slots.count >= s->max_mappings)
			return -ENOSPC;
	}

	fd = s->be.open(s->be.data, nodeid, q->fh, prot, &id);
	if (fd < 0)
		return fd;
	/* The guest maps the file as it is now; this only settles restored slots' fate. */
	dax_node_check(s, nodeid, &id);
	if (old && old->bound)
		hva = old->hva;
	r = s->mops.map(s->mops.data, s->base + q->moffset, q->len, fd, q->foffset, prot,
			old && old->bound, &hva);
	mk_close(fd);
	if (r < 0) {
		/* A failed replace may have lost the old mapping: it rebinds on next touch. */
		if (old && old->bound) {
			old->bound = false;
			old->hva = NULL;
			s->nbound--;
		}
		return r;
	}
	if (old) {
		sl = old;
		s->st.upgrades++;
		if (!sl->bound)
			s->nbound++;
	} else {
		sl = dax_slot_new();
		sl->moffset = q->moffset;
		sl->len = q->len;
		dax_slots_insert(&s->slots, sl);
		s->mapped += q->len;
		s->nbound++;
	}
	sl->nodeid = nodeid;
	sl->foffset = q->foffset;
	sl->prot = prot;
	sl->bound = true;
	sl->hva = hva;
	sl->id = id;
	s->st.setups++;
	return 0;
}

MK_EXPORT int dax_session_setup(struct dax_session *s, uint64_t nodeid, const struct dax_setup_req *req)
{
	struct dax_setup_req q;
	uint64_t t0 = mk_now_ns();
	int r;

	if (!s || !req)
		return -EINVAL;
	q = *req;       /* copy once: req may live in guest-shared memory */
	g_mutex_lock(&s->lock);
	r = account(s, setup_locked(s, nodeid, &q));
	dax_hist_add(s->st.setup_ns, mk_now_ns() - t0);
	g_mutex_unlock(&s->lock);
	return r;
}

MK_EXPORT int dax_session_setup_raw(struct dax_session *s, uint64_t nodeid, const void *payload,
				    size_t len)
{
	struct dax_setup_req q;

	if (!s || !payload || len < sizeof(q))
		return -EINVAL;
	memcpy(&q, payload, sizeof(q));
	return dax_session_setup(s, nodeid, &q);
}

/* ---- remove ------------------------------------------------------------------ */

static int unmap_slot(struct dax_session *s, struct dax_slot *sl)
{
	int r;

	if (!sl->bound)
		return 0;
	r = s->mops.unmap(s->mops.data, s->base + sl->moffset, sl->len, sl->hva);
	if (r < 0)
		return r;
	sl->bound = false;
	sl->hva = NULL;
	s->nbound--;
	return 0;
}

/*
 * Unmap every bound slot. If an unmap fails, the slots already unmapped
 * stay as unbound slots (same guest view) and -EIO is returned.
 */
int dax_session_unmap_all_locked(struct dax_session *s)
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
		if (err < 0)
			return err;
		dax_slots_foreach(&s->slots, sl) {
			sl->bound = false;
			sl->hva = NULL;
		}
		s->nbound = 0;
		return 0;
	}

	dax_slots_foreach(&s->slots, sl) {
		int r = unmap_slot(s, sl);
		if (r < 0 && !err)
			err = r;
	}
	return s->nbound ? (err ?: -EIO) : 0;
}

static int reset_locked(struct dax_session *s)
{
	int r = dax_session_unmap_all_locked(s);

	if (r < 0)
		return r;
	s->st.removes += s->slots.count;
	dax_slots_clear(&s->slots);
	g_hash_table_remove_all(s->nodes);
	s->mapped = 0;
	s->st.resets++;
	return 0;
}

static int remove_locked(struct dax_session *s, const struct dax_range *e, size_t count)
{
	struct dax_slot **v;
	size_t i, done;
	int r = 0;

	if (count > s->max_remove)
		return -EINVAL;
	if (count == 1 && e[0].moffset == 0 && e[0].len == DAX_LEN_ALL)
		return reset_locked(s);
	v = g_new(struct dax_slot *, count ?: 1);
	/* Validate the whole batch before touching anything. */
	for (i = 0; i < count; i++) {
		struct dax_slot *sl;
		uint64_t key = e[i].moffset;

		if (!e[i].len || !mk_is_aligned(e[i].moffset, s->align) ||
		    !mk_is_aligned(e[i].len, s->align) || !mk_range_ok(e[i].moffset, e[i].len, s->wlen)) {
			r = -EINVAL;
			break;
		}
		sl = dax_slots_get(&s->slots, key);
		if (!sl) {
			r = -ENOENT;
			break;
		}
		if (sl->len != e[i].len || sl->marked) {
			r = -EINVAL;
			break;
		}
		sl->marked = true;
		v[i] = sl;
	}
	done = i;
	for (i = 0; i < done; i++)
		v[i]->marked = false;
	if (r < 0)
		goto out;
	for (i = 0; i < count; i++) {
		r = unmap_slot(s, v[i]);
		if (r < 0) {
			/* Slots unmapped so far stay as unbound slots: the guest's
			 * view is unchanged, they rebind on the next touch. */
			goto out;
		}
	}
	for (i = 0; i < count; i++) {
		s->mapped -= v[i]->len;
		dax_slots_remove(&s->slots, v[i]);
	}
	s->st.removes += count;
out:
	g_free(v);
	return r;
}

MK_EXPORT int dax_session_remove(struct dax_session *s, const struct dax_range *entries, size_t count)
{
	uint64_t t0 = mk_now_ns();
	int r;

	if (!s || (!entries && count))
		return -EINVAL;
	g_mutex_lock(&s->lock);
	r = account(s, remove_locked(s, entries, count));
	dax_hist_add(s->st.remove_ns, mk_now_ns() - t0);
	g_mutex_unlock(&s->lock);
	return r;
}

MK_EXPORT int dax_session_remove_raw(struct dax_session *s, const void *payload, size_t len)
{
	g_autofree struct dax_range *v = NULL;
	uint32_t count;
	int r;

	if (!s || !payload || len < sizeof(count))
		r = -EINVAL;
	else {
		memcpy(&count, payload, sizeof(count));
		if (count > s->max_remove || (len - 4) / sizeof(struct dax_range) < count)
			r = -EINVAL;
		else {
			/* Copy once (the payload is guest-written), then validate the copy. */
			v = g_new(struct dax_range, count ?: 1);
			memcpy(v, (const char *)payload + 4, count * sizeof(*v));
			return dax_session_remove(s, v, count);
		}
	}
	if (s) {
		g_mutex_lock(&s->lock);
		account(s, r);
		g_mutex_unlock(&s->lock);
	}
	return r;
}

MK_EXPORT int dax_session_reset(struct dax_session *s)
{
	int r;

	if (!s)
		return -EINVAL;
	g_mutex_lock(&s->lock);
	r = account(s, reset_locked(s));
	g_mutex_unlock(&s->lock);
	return r;
}

/* ---- lazy rebind ------------------------------------------------------------- */

/*
 * Bind sl if needed. When fdp is not NULL the caller wants an open fd of
 * the slot's file (to complete an MMIO access) and the identity in *idp.
 */
int dax_bind_locked(struct dax_session *s, struct dax_slot *sl, int *fdp,
		       struct dax_file_id *idp)
{
	struct dax_file_id id = { 0 };
	uint64_t t0;
	void *hva = NULL;
	int fd, r;

	if (sl->bound && !fdp)
		return 0;
	t0 = mk_now_ns();
	fd = s->be.open(s->be.data, sl->nodeid, DAX_FH_NONE, sl->prot, &id);
	if (fd < 0)
		return fd;
	if (!sl->bound) {
		r = dax_node_check(s, sl->nodeid, &id);
		if (r < 0) {
			mk_close(fd);
			return r;
		}
		r = s->mops.map(s->mops.data, s->base + sl->moffset, sl->len, fd, sl->foffset,
				sl->prot, 0, &hva);
		if (r < 0) {
			mk_close(fd);
			return r;
		}
		sl->bound = true;
		sl->hva = hva;
		sl->id = id;
		s->nbound++;
		s->st.faults++;
		dax_hist_add(s->st.fault_ns, mk_now_ns() - t0);
	}
	if (fdp) {
		*fdp = fd;
		*idp = id;
	} else
		mk_close(fd);
	return 0;
}

/* Slot covering gpa, or NULL when gpa is outside the window or unmapped. */
struct dax_slot *dax_lookup_gpa(struct dax_session *s, uint64_t gpa)
{
	if (gpa < s->base || gpa - s->base >= s->wlen)
		return NULL;
	return slot_covering(s, gpa - s->base);
}

MK_EXPORT int dax_session_fault(struct dax_session *s, uint64_t gpa)
{
	struct dax_slot *sl;
	int r;

	if (!s)
		return -EINVAL;
	g_mutex_lock(&s->lock);
	sl = dax_lookup_gpa(s, gpa);
	r = sl ? account(s, dax_bind_locked(s, sl, NULL, NULL)) : 0;
	g_mutex_unlock(&s->lock);
	return r < 0 ? r : !!sl;
}

static int complete_mmio(struct dax_slot *sl, uint64_t moff, int fd, const struct dax_file_id *id,
			 uint8_t *data, uint32_t len, int is_write)
{
	uint64_t off = sl->foffset + (moff - sl->moffset);
	ssize_t n;

	if (is_write) {
		if (!(sl->prot & DAX_PROT_WRITE))
			return -EACCES;
		/* A mapping cannot grow the file: bytes past EOF are dropped. */
		if (off >= id->size)
			return 0;
		n = mk_pwrite_full(fd, data, MK_MIN((uint64_t)len, id->size - off), off);
		return n < 0 ? (int)n : 0;
	}
	n = mk_pread_full(fd, data, len, off);
	if (n < 0)
		return (int)n;
	memset(data + n, 0, len - (size_t)n);     /* past EOF reads as zeros */
	return 0;
}

MK_EXPORT int dax_session_handle_mmio(struct dax_session *s, uint64_t phys_addr, uint8_t *data,
				      uint32_t len, int is_write)
{
	struct dax_file_id id;
	struct dax_slot *sl;
	uint64_t moff;
	int fd = -1, r;

	if (!s || !data || !len || len > 8)
		return -EINVAL;
	g_mutex_lock(&s->lock);
	sl = dax_lookup_gpa(s, phys_addr);
	if (!sl) {
		g_mutex_unlock(&s->lock);
		return 0;
	}
	moff = phys_addr - s->base;
	if (sl->moffset + sl->len - moff < len) {
		r = -EINVAL;            /* KVM splits accesses at page boundaries */
		goto out;
	}
	r = dax_bind_locked(s, sl, &fd, &id);
	if (r < 0)
		goto out;
	r = complete_mmio(sl, moff, fd, &id, data, len, is_write);
	mk_close(fd);
	if (r == 0)
		s->st.mmio_completed++;
out:
	account(s, r);
	g_mutex_unlock(&s->lock);
	return r < 0 ? r : 1;
}

MK_EXPORT int dax_session_handle_kvm_exit(struct dax_session *s, void *runp)
{
	struct kvm_run *run = runp;

	if (!s || !run)
		return -EINVAL;
	if (run->exit_reason == KVM_EXIT_MMIO)
		return dax_session_handle_mmio(s, run->mmio.phys_addr, run->mmio.data,
					       run->mmio.len, run->mmio.is_write);
	if (run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
		/* struct { u64 flags, gpa, size; } memory_fault shares the exit union. */
		uint64_t mf[3];
		struct dax_slot *sl;
		int r;

		memcpy(mf, &run->mmio, sizeof(mf));
		g_mutex_lock(&s->lock);
		sl = dax_lookup_gpa(s, mf[1]);
		if (!sl)
			r = 0;
		else if (sl->bound)
			r = -EFAULT;    /* re-entering would fault again: not ours to fix */
		else
			r = dax_bind_locked(s, sl, NULL, NULL) ?: 1;
		account(s, r);
		g_mutex_unlock(&s->lock);
		return r;
	}
	return 0;
}

MK_EXPORT int dax_session_translate(struct dax_session *s, uint64_t gpa, void **hva, uint64_t *len)
{
	struct dax_slot *sl;
	int r;

	if (!s || !hva || !len)
		return -EINVAL;
	g_mutex_lock(&s->lock);
	sl = dax_lookup_gpa(s, gpa);
	r = sl ? dax_bind_locked(s, sl, NULL, NULL) : -ENOENT;
	if (r == 0 && !sl->hva)
		r = -ENODATA;
	if (r == 0) {
		uint64_t off = gpa - s->base - sl->moffset;
		*hva = (char *)sl->hva + off;
		*len = sl->len - off;
	}
	g_mutex_unlock(&s->lock);
	return r;
}

/* ---- inspection -------------------------------------------------------------- */

void dax_slot_to_mapping(const struct dax_slot *sl, struct dax_mapping *m)
{
	*m = (struct dax_mapping){
		.moffset = sl->moffset, .len = sl->len, .nodeid = sl->nodeid,
		.foffset = sl->foffset, .prot = sl->prot,
		.flags = sl->bound ? DAX_MAPPING_BOUND : 0, .id = sl->id,
	};
}

MK_EXPORT int dax_session_list(struct dax_session *s, struct dax_mapping **out, size_t *count)
{
	struct dax_mapping *v;
	struct dax_slot *sl;
	size_t i = 0;

	if (!s || !out || !count)
		return -EINVAL;
	g_mutex_lock(&s->lock);
	v = malloc(sizeof(*v) * (s->slots.count + 1));
	if (!v) {
		g_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	dax_slots_foreach(&s->slots, sl)
		dax_slot_to_mapping(sl, &v[i++]);
	g_mutex_unlock(&s->lock);
	*out = v;
	*count = i;
	return (int)MK_MIN(i, (size_t)INT32_MAX);
}

MK_EXPORT int dax_session_stats(struct dax_session *s, struct dax_stats *st)
{
	if (!s || !st)
		return -EINVAL;
	g_mutex_lock(&s->lock);
	*st = s->st;
	st->live_slots = s->slots.count;
	st->bound_slots = s->nbound;
	st->mapped_bytes = s->mapped;
	st->cap = s->cap;
	st->max_mappings = s->max_mappings;
	g_mutex_unlock(&s->lock);
	return 0;
}
