/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The DAX session's public calls: create and free, validation and
 * bookkeeping of FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING over a window,
 * guest accesses (dax_session_fault, MMIO and KVM exits, translate),
 * listing and statistics. Binding itself is bind.c's, snapshot and
 * restore snapshot.c's. One mutex per session covers the slot index and every
 * mapper call, so setups, removes and faults from several vCPU or queue
 * threads see one consistent order, and a slot can never be mapped by a
 * fault after a remove dropped it.
 */
#include "config.h"

#include <errno.h>
#include <linux/fuse.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/ext.h"
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

/* ---- create / free ----------------------------------------------------------- */

/* cfg checks of dax_session_new(): 0 or -EINVAL, with the reason logged. */
static int check_config(const struct dax_config *cfg, bool host_only, uint64_t *alignp)
{
	uint64_t page = mk_page_size(), align, end;

	if (cfg->align_log2 && (cfg->align_log2 < mk_log2(page) || cfg->align_log2 > 40)) {
		dax_refuse("session: align_log2 %u outside [%u, 40]", cfg->align_log2, mk_log2(page));
		return -EINVAL;
	}
	align = cfg->align_log2 ? 1ull << cfg->align_log2 : page;
	if (!cfg->window_len || !mk_is_aligned(cfg->window_len, align) ||
	    !mk_is_aligned(cfg->base_gpa, align) || mk_add_u64(cfg->base_gpa, cfg->window_len, &end)) {
		dax_refuse("session: window [0x%llx, +0x%llx) empty, not aligned to 0x%llx or past 2^64",
			   (unsigned long long)cfg->base_gpa, (unsigned long long)cfg->window_len,
			   (unsigned long long)align);
		return -EINVAL;
	}
	if (cfg->cap > cfg->window_len) {
		dax_refuse("session: cap 0x%llx above window_len 0x%llx",
			   (unsigned long long)cfg->cap, (unsigned long long)cfg->window_len);
		return -EINVAL;
	}
	if (cfg->flags & ~(DAX_SESSION_NO_THREAD | DAX_SESSION_NO_USERFAULT)) {
		dax_refuse("session: unknown flags 0x%x", cfg->flags);
		return -EINVAL;
	}
	if (cfg->mapper > DAX_MAPPER_CUSTOM) {
		dax_refuse("session: unknown mapper %u", cfg->mapper);
		return -EINVAL;
	}
	if (cfg->mapper == DAX_MAPPER_KVM_WINDOW && cfg->vm_fd < 0 && !host_only) {
		dax_refuse("session: window mapper without a VM (vm_fd %d)", cfg->vm_fd);
		return -EINVAL;
	}
	if (cfg->mapper == DAX_MAPPER_CUSTOM && (!cfg->ops || !cfg->ops->map || !cfg->ops->unmap)) {
		dax_refuse("session: custom mapper without ops, map or unmap");
		return -EINVAL;
	}
	*alignp = align;
	return 0;
}

/*
 * The first published layouts (libdax 3.0) of the extensible structs
 * (common/ext.h, libdax(3)): any size from these up is accepted. Fields
 * are appended; these stay.
 */
#define DAX_CONFIG_SIZE_VER0 sizeof(struct dax_config)
#define DAX_STATS_SIZE_VER0  sizeof(struct dax_stats)

static int session_new(const struct dax_config *ucfg, const struct dax_backend *backend,
		       bool host_only, struct dax_session **out)
{
	struct dax_config cfgbuf, *cfg = &cfgbuf;
	uint64_t page = mk_page_size(), align;
	struct dax_mapper_ops ops = { 0 };
	struct dax_window *win = NULL;
	struct dax_session *s;
	unsigned vmas = 2;
	int r;

	if (!ucfg || !backend || !backend->open || !out) {
		dax_refuse("session: %s is NULL", !ucfg ? "cfg" : !backend ? "backend" :
			   !backend->open ? "backend->open" : "out");
		return -EINVAL;
	}
	r = mk_ext_in(cfg, sizeof(*cfg), ucfg, DAX_CONFIG_SIZE_VER0);
	if (r < 0) {
		dax_refuse("session: cfg->size %zu below %zu, or past %zu with non-zero bytes",
			   ucfg->size, DAX_CONFIG_SIZE_VER0, sizeof(*cfg));
		return r;
	}
	r = check_config(cfg, host_only, &align);
	if (r < 0)
		return r;
	/* Our own memory first: nothing to undo but a free when it fails. */
	s = mk_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = pthread_mutex_init(&s->lock, NULL);
	if (r) {
		free(s);
		return -r;
	}

	switch (cfg->mapper) {
	case DAX_MAPPER_KVM_WINDOW:
		r = dax_kvm_window_new(host_only ? -1 : cfg->vm_fd, cfg->memslot, cfg->base_gpa,
				       cfg->window_len, !(cfg->flags & DAX_SESSION_NO_USERFAULT),
				       &ops, &win);
		s->own_mapper = true;
		break;
	case DAX_MAPPER_KVM_MEMSLOT:
		r = dax_kvm_memslot_new(cfg->vm_fd, cfg->memslot, cfg->nmemslots ?: 256, &ops);
		s->own_mapper = true;
		vmas = 1;
		break;
	default:
		/* the caller's mapper: never destroyed by a failed dax_session_new() */
		ops = *cfg->ops;
		r = 0;
		break;
	}
	if (r < 0) {
		mk_log(&dax_log, LOG_DEBUG, "session: the mapper cannot be set up: %d", r);
		goto fail;
	}

	s->base = cfg->base_gpa;
	s->wlen = cfg->window_len;
	s->cap = cfg->cap ?: cfg->window_len;
	s->align = align;
	s->align_log2 = mk_log2(align);
	s->max_remove = cfg->max_remove ?: (uint32_t)(page / sizeof(struct dax_range));
	s->max_mappings = cfg->max_mappings ?: dax_default_max_mappings(vmas);
	if (cfg->mapper == DAX_MAPPER_KVM_MEMSLOT)
		s->max_mappings = MK_MIN(s->max_mappings, cfg->nmemslots ?: 256);
	dax_slots_init(&s->slots);
	s->be = *backend;
	/* the table stays locked across our own mappers' map calls only, never the caller's */
	s->table = s->own_mapper && backend->open == dax_table_open && backend->data ? backend->data : NULL;
	s->mops = ops;
	s->kind = cfg->mapper;
	s->win = win;
	s->svc.stop_fd = -1;
	s->mode = !win ? DAX_FAULT_EXIT : win->uffd >= 0 ? DAX_FAULT_USERFAULT : DAX_FAULT_EAGER;
	if (s->mode == DAX_FAULT_USERFAULT && !(cfg->flags & DAX_SESSION_NO_THREAD)) {
		r = dax_service_start(s);
		if (r < 0)
			goto fail;
	}
	*out = s;
	return 0;

fail:
	if (s->own_mapper && ops.destroy)
		ops.destroy(ops.data);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return r;
}

MK_EXPORT void dax_session_free(struct dax_session *s)
{
	if (!s)
		return;
	dax_service_stop(s);
	dax_unmap_all_locked(s);
	dax_slots_clear(&s->slots);
	dax_nodes_free(&s->nodes);
	if (s->mops.destroy)
		s->mops.destroy(s->mops.data);
	if (s->be.destroy)
		s->be.destroy(s->be.data);
	pthread_mutex_destroy(&s->lock);
	free(s);
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

static int check_setup(struct dax_session *s, uint64_t nodeid, const struct dax_setup_req *q)
{
	uint64_t end;

	if (q->flags & ~(DAX_FUSE_FLAG_READ | DAX_FUSE_FLAG_WRITE) ||
	    !(q->flags & (DAX_FUSE_FLAG_READ | DAX_FUSE_FLAG_WRITE))) {
		dax_refuse("setup node %llu: flags 0x%llx (READ 1 and/or WRITE 2, nothing else)",
			   (unsigned long long)nodeid, (unsigned long long)q->flags);
		return -EINVAL;
	}
	if (!q->len || !mk_is_aligned(q->moffset, s->align) || !mk_is_aligned(q->len, s->align) ||
	    !mk_is_aligned(q->foffset, mk_page_size())) {
		dax_refuse("setup node %llu: moffset 0x%llx len 0x%llx foffset 0x%llx: zero or not "
			   "aligned (window 0x%llx, file page 0x%zx)", (unsigned long long)nodeid,
			   (unsigned long long)q->moffset, (unsigned long long)q->len,
			   (unsigned long long)q->foffset, (unsigned long long)s->align, mk_page_size());
		return -EINVAL;
	}
	if (mk_add_u64(q->foffset, q->len, &end) || end > (uint64_t)INT64_MAX) {
		dax_refuse("setup node %llu: file range foffset 0x%llx + len 0x%llx overflows",
			   (unsigned long long)nodeid, (unsigned long long)q->foffset,
			   (unsigned long long)q->len);
		return -EINVAL;
	}
	if (!mk_range_ok(q->moffset, q->len, s->wlen)) {
		dax_refuse("setup node %llu: [0x%llx, +0x%llx) outside the window of 0x%llx bytes",
			   (unsigned long long)nodeid, (unsigned long long)q->moffset,
			   (unsigned long long)q->len, (unsigned long long)s->wlen);
		return -EINVAL;
	}
	return 0;
}

static int setup_locked(struct dax_session *s, uint64_t nodeid, const struct dax_setup_req *q)
{
	struct dax_slot *old, *sl = NULL;
	struct dax_file_id id = { 0 };
	uint32_t prot = 0;
	void *hva = NULL;
	bool check;
	int fd, r;

	r = check_setup(s, nodeid, q);
	if (r < 0)
		return r;
	if (q->flags & DAX_FUSE_FLAG_READ)
		prot |= DAX_PROT_READ;
	if (q->flags & DAX_FUSE_FLAG_WRITE)
		prot |= DAX_PROT_WRITE;

	old = dax_slot_before(s, q->moffset + q->len);
	if (old && old->moffset + old->len > q->moffset) {
		/* Exactly the live range: the guest's upgrade/replace. Else a partial overlap. */
		if (old->moffset != q->moffset || old->len != q->len) {
			dax_refuse("setup node %llu: [0x%llx, +0x%llx) overlaps the live mapping "
				   "[0x%llx, +0x%llx)", (unsigned long long)nodeid,
				   (unsigned long long)q->moffset, (unsigned long long)q->len,
				   (unsigned long long)old->moffset, (unsigned long long)old->len);
			return -EEXIST;
		}
	} else {
		old = NULL;
		if (s->mapped + q->len > s->cap || s->slots.count >= s->max_mappings) {
			dax_refuse("setup node %llu: 0x%llx more bytes over 0x%llx mapped (cap 0x%llx) "
				   "or %zu live mappings (limit %llu)", (unsigned long long)nodeid,
				   (unsigned long long)q->len, (unsigned long long)s->mapped,
				   (unsigned long long)s->cap, s->slots.count,
				   (unsigned long long)s->max_mappings);
			return -ENOSPC;
		}
		/*
		 * The new slot goes into the index before anything is mapped
		 * (nobody sees it: the lock is held), so running out of memory
		 * is found while nothing has changed yet.
		 */
		sl = dax_slot_new();
		if (!sl)
			return -ENOMEM;
		sl->moffset = q->moffset;
		sl->len = q->len;
		if (dax_slots_insert(&s->slots, sl) < 0) {
			dax_slot_free(sl);
			return -ENOMEM;
		}
	}

	/*
	 * The guest maps the file as it is now: its identity matters only to
	 * settle the fate of a restored node's slots, at the node's first
	 * open. Otherwise the table skips the fstat (a bound slot's identity
	 * is looked up when a list or snapshot asks: dax_ids_current); another
	 * backend's open gives one anyway, kept.
	 */
	check = dax_node_unchecked(s, nodeid);
	fd = dax_file_get(s, nodeid, q->fh, prot, check || !s->table ? &id : NULL);
	if (fd >= 0) {
		if (check)
			dax_node_check(s, nodeid, &id);
		if (old && old->bound)
			hva = old->hva;
		r = s->mops.map(s->mops.data, s->base + q->moffset, q->len, fd, q->foffset, prot,
				old && old->bound, &hva);
		if (r < 0)
			mk_log(&dax_log, LOG_WARNING, "setup node %llu: mapping [0x%llx, +0x%llx) "
			       "failed: %d", (unsigned long long)nodeid,
			       (unsigned long long)q->moffset, (unsigned long long)q->len, r);
	} else
		r = fd;
	dax_file_put(s, fd);
	if (r < 0) {
		if (sl)
			dax_slots_remove(&s->slots, sl);
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

	if (!s || !req) {
		dax_refuse("setup: %s is NULL", !s ? "session" : "req");
		return -EINVAL;
	}
	q = *req;       /* copy once: req may live in guest-shared memory */
	pthread_mutex_lock(&s->lock);
	r = dax_account(s, setup_locked(s, nodeid, &q));
	dax_hist_add(s->st.setup_ns, mk_now_ns() - t0);
	pthread_mutex_unlock(&s->lock);
	return r;
}

MK_EXPORT int dax_session_setup_raw(struct dax_session *s, uint64_t nodeid, const void *payload,
				    size_t len)
{
	struct dax_setup_req q;

	if (!s || !payload || len < sizeof(q)) {
		dax_refuse("setup: raw payload %s (%zu bytes, needs %zu)",
			   !s ? "without a session" : !payload ? "NULL" : "too short", len, sizeof(q));
		return -EINVAL;
	}
	memcpy(&q, payload, sizeof(q));
	return dax_session_setup(s, nodeid, &q);
}

/* ---- remove ------------------------------------------------------------------ */

static int reset_locked(struct dax_session *s)
{
	int r = dax_unmap_all_locked(s);

	if (r < 0)
		return r;
	s->st.removes += s->slots.count;
	dax_slots_clear(&s->slots);
	dax_nodes_free(&s->nodes);
	s->mapped = 0;
	s->st.resets++;
	return 0;
}

/* Validate a remove batch into v (slots, in order) before anything is touched. */
static int check_remove(struct dax_session *s, const struct dax_range *e, size_t count,
			struct dax_slot **v)
{
	size_t i, done;
	int r = 0;

	for (i = 0; i < count; i++) {
		struct dax_slot *sl;

		if (!e[i].len || !mk_is_aligned(e[i].moffset, s->align) ||
		    !mk_is_aligned(e[i].len, s->align) || !mk_range_ok(e[i].moffset, e[i].len, s->wlen)) {
			dax_refuse("remove entry %zu: [0x%llx, +0x%llx) empty, not aligned to 0x%llx "
				   "or outside the window of 0x%llx bytes", i,
				   (unsigned long long)e[i].moffset, (unsigned long long)e[i].len,
				   (unsigned long long)s->align, (unsigned long long)s->wlen);
			r = -EINVAL;
			break;
		}
		sl = dax_slots_get(&s->slots, e[i].moffset);
		if (!sl) {
			dax_refuse("remove entry %zu: no mapping starts at 0x%llx", i,
				   (unsigned long long)e[i].moffset);
			r = -ENOENT;
			break;
		}
		if (sl->len != e[i].len || sl->marked) {
			dax_refuse("remove entry %zu: [0x%llx, +0x%llx) %s (the mapping there is "
				   "0x%llx bytes)", i, (unsigned long long)e[i].moffset,
				   (unsigned long long)e[i].len, sl->marked ? "named twice" :
				   "is not one whole mapping", (unsigned long long)sl->len);
			r = -EINVAL;
			break;
		}
		sl->marked = true;
		v[i] = sl;
	}
	done = i;
	for (i = 0; i < done; i++)
		v[i]->marked = false;
	return r;
}

static int remove_locked(struct dax_session *s, const struct dax_range *e, size_t count)
{
	struct dax_slot *small[8], **v = small;
	size_t i;
	int r;

	if (count > s->max_remove) {
		dax_refuse("remove: %zu entries, limit %u", count, s->max_remove);
		return -EINVAL;
	}
	if (count == 1 && e[0].moffset == 0 && e[0].len == DAX_LEN_ALL)
		return reset_locked(s);
	if (count > MK_ARRAY_SIZE(small)) {
		v = mk_reallocarray(NULL, count, sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	r = check_remove(s, e, count, v);
	if (r < 0)
		goto out;
	/* Slots unmapped so far by a failing batch stay as unbound slots: the
	 * guest's view is unchanged, they rebind on the next touch. */
	r = dax_unbind_batch_locked(s, v, count);
	if (r < 0)
		goto out;
	for (i = 0; i < count; i++) {
		s->mapped -= v[i]->len;
		dax_slots_remove(&s->slots, v[i]);
	}
	s->st.removes += count;
out:
	if (v != small)
		free(v);
	return r;
}

MK_EXPORT int dax_session_remove(struct dax_session *s, const struct dax_range *entries, size_t count)
{
	uint64_t t0 = mk_now_ns();
	int r;

	if (!s || (!entries && count)) {
		dax_refuse("remove: %s is NULL", !s ? "session" : "entries");
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	r = dax_account(s, remove_locked(s, entries, count));
	dax_hist_add(s->st.remove_ns, mk_now_ns() - t0);
	pthread_mutex_unlock(&s->lock);
	return r;
}

MK_EXPORT int dax_session_remove_raw(struct dax_session *s, const void *payload, size_t len)
{
	struct dax_range small[8], *v = small;
	uint32_t count;
	int r;

	if (!s || !payload || len < sizeof(count)) {
		dax_refuse("remove: raw payload %s (%zu bytes)",
			   !s ? "without a session" : !payload ? "NULL" : "too short", len);
		r = -EINVAL;
	} else {
		memcpy(&count, payload, sizeof(count));
		if (count > s->max_remove || (len - 4) / sizeof(struct dax_range) < count) {
			dax_refuse("remove: raw payload of %zu bytes says %u entries (limit %u)", len,
				   count, s->max_remove);
			r = -EINVAL;
		} else {
			/* Copy once (the payload is guest-written), then validate the copy. */
			if (count > MK_ARRAY_SIZE(small))
				v = mk_reallocarray(NULL, count, sizeof(*v));
			if (v) {
				memcpy(v, (const char *)payload + 4, count * sizeof(*v));
				r = dax_session_remove(s, v, count);
				if (v != small)
					free(v);
				return r;
			}
			r = -ENOMEM;
		}
	}
	if (s) {
		pthread_mutex_lock(&s->lock);
		dax_account(s, r);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

MK_EXPORT int dax_session_reset(struct dax_session *s)
{
	int r;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = dax_account(s, reset_locked(s));
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- guest accesses ------------------------------------------------------------ */

MK_EXPORT int dax_session_fault(struct dax_session *s, uint64_t gpa)
{
	struct dax_slot *sl;
	int r;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	sl = dax_lookup_gpa(s, gpa);
	r = sl ? dax_account(s, dax_bind_locked(s, sl, NULL, NULL)) : 0;
	pthread_mutex_unlock(&s->lock);
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
	pthread_mutex_lock(&s->lock);
	sl = dax_lookup_gpa(s, phys_addr);
	if (!sl) {
		pthread_mutex_unlock(&s->lock);
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
	dax_account(s, r);
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? r : 1;
}

MK_EXPORT int dax_session_handle_kvm_exit(struct dax_session *s, struct kvm_run *run)
{
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
		pthread_mutex_lock(&s->lock);
		sl = dax_lookup_gpa(s, mf[1]);
		if (!sl)
			r = 0;
		else if (sl->bound)
			r = -EFAULT;    /* re-entering would fault again: not ours to fix */
		else
			r = dax_bind_locked(s, sl, NULL, NULL) ?: 1;
		dax_account(s, r);
		pthread_mutex_unlock(&s->lock);
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
	pthread_mutex_lock(&s->lock);
	sl = dax_lookup_gpa(s, gpa);
	r = sl ? dax_bind_locked(s, sl, NULL, NULL) : -ENOENT;
	if (r == 0 && !sl->hva)
		r = -ENODATA;
	if (r == 0) {
		uint64_t off = gpa - s->base - sl->moffset;
		*hva = (char *)sl->hva + off;
		*len = sl->len - off;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- inspection -------------------------------------------------------------- */

MK_EXPORT int dax_session_list(struct dax_session *s, struct dax_mapping **out, size_t *count)
{
	struct dax_mapping *v;
	struct dax_ids ids;
	struct dax_slot *sl;
	size_t i = 0;

	if (!s || !out || !count)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	v = mk_reallocarray(NULL, s->slots.count + 1, sizeof(*v));
	if (!v || dax_ids_reserve(&ids, s->nbound) < 0) {
		pthread_mutex_unlock(&s->lock);
		free(v);
		return -ENOMEM;
	}
	/* A bound slot's file as it is now (once per node); an unbound one's as restored. */
	dax_slots_foreach(&s->slots, sl) {
		dax_slot_to_mapping(sl, &v[i]);
		if (sl->bound)
			v[i].id = *dax_ids_current(s, &ids, sl);
		i++;
	}
	pthread_mutex_unlock(&s->lock);
	dax_ids_free(&ids);
	*out = v;
	*count = i;
	return (int)MK_MIN(i, (size_t)INT32_MAX);
}

MK_EXPORT int dax_session_stats(struct dax_session *s, struct dax_stats *ust)
{
	int64_t usize = mk_ext_size(ust, DAX_STATS_SIZE_VER0);
	struct dax_stats st;

	if (!s || usize < 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	st = s->st;
	st.live_mappings = s->slots.count;
	st.bound_mappings = s->nbound;
	st.mapped_bytes = s->mapped;
	st.cap = s->cap;
	st.max_mappings = s->max_mappings;
	pthread_mutex_unlock(&s->lock);
	mk_ext_out(ust, &st, sizeof(st), (size_t)usize);
	return 0;
}

MK_EXPORT int64_t dax_session_rejects(struct dax_session *s, int err)
{
	uint64_t n;

	if (!s || err > 0 || err <= -DAX_NERRNO)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	n = err ? s->rejects[-err] : s->st.rejects;
	pthread_mutex_unlock(&s->lock);
	return (int64_t)MK_MIN(n, (uint64_t)INT64_MAX);
}
