/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * DAXS snapshot blobs (see daxsnap(5)), little-endian throughout.
 *
 * Version 1 is the seed VMM's format, byte for byte:
 *   "DAXS" u32 version=1, u64 base_gpa, window_len, cap, mapped, count;
 *   count x { u64 moffset, len, nodeid, foffset; u32 prot, reserved=0 }.
 * Version 2 adds, after count, u32 align_log2 and u32 flags=0; entries
 * sorted by moffset, each followed by u32 entry flags (bit 0: identity
 * valid), u64 dev, ino, size, i64 mtime_sec, u32 mtime_nsec, u32 0;
 * then a u32 CRC-32C of everything before it.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "daxP.h"

/* ---- CRC-32C (Castagnoli), with SSE4.2 when the CPU has it ------------------- */

static uint32_t crc_table[256];

static gpointer crc_init(gpointer unused)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
	return NULL;
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
	static GOnce once = G_ONCE_INIT;

	g_once(&once, crc_init, NULL);
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t dax_crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(crc, buf, len);
#endif
	return ~crc_soft(crc, buf, len);
}

/* ---- little-endian fields -------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) { v = GUINT32_TO_LE(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = GUINT64_TO_LE(v); memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return GUINT32_FROM_LE(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return GUINT64_FROM_LE(v); }

bool dax_file_id_equal(const struct dax_file_id *a, const struct dax_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

static size_t hdr_size(unsigned v) { return v == 1 ? DAX_BLOB_V1_HDR : DAX_BLOB_V2_HDR; }
static size_t ent_size(unsigned v) { return v == 1 ? DAX_BLOB_V1_ENT : DAX_BLOB_V2_ENT; }

/* Size of a blob of n entries, or 0 on overflow. */
static size_t blob_size(unsigned v, size_t n)
{
	size_t sz;

	if (mk_mul_size(n, ent_size(v), &sz) || mk_add_size(sz, hdr_size(v) + (v == 2 ? 4 : 0), &sz))
		return 0;
	return sz;
}

static void put_header(uint8_t *p, const struct dax_blob_header *h)
{
	memcpy(p, "DAXS", 4);
	put32(p + 4, h->version);
	put64(p + 8, h->base_gpa);
	put64(p + 16, h->window_len);
	put64(p + 24, h->cap);
	put64(p + 32, h->mapped_bytes);
	put64(p + 40, h->count);
	if (h->version == 2) {
		put32(p + 48, h->align_log2);
		put32(p + 52, 0);
	}
}

static void put_entry(uint8_t *p, unsigned v, const struct dax_mapping *m)
{
	put64(p, m->moffset);
	put64(p + 8, m->len);
	put64(p + 16, m->nodeid);
	put64(p + 24, m->foffset);
	put32(p + 32, m->prot);
	if (v == 1) {
		put32(p + 36, 0);
		return;
	}
	put32(p + 36, m->id.valid ? 1 : 0);
	put64(p + 40, m->id.valid ? m->id.dev : 0);
	put64(p + 48, m->id.valid ? m->id.ino : 0);
	put64(p + 56, m->id.valid ? m->id.size : 0);
	put64(p + 64, m->id.valid ? (uint64_t)m->id.mtime_sec : 0);
	put32(p + 72, m->id.valid ? m->id.mtime_nsec : 0);
	put32(p + 76, 0);
}

static void put_crc(uint8_t *b, size_t sz)
{
	put32(b + sz - 4, dax_crc32c(0, b, sz - 4));
}

/* ---- parse ------------------------------------------------------------------------ */

static int cmp_mapping(const void *a, const void *b)
{
	uint64_t x = ((const struct dax_mapping *)a)->moffset;
	uint64_t y = ((const struct dax_mapping *)b)->moffset;

	return x < y ? -1 : x > y;
}

#define FAIL(msg) do { *why = (msg); r = -EINVAL; goto fail; } while (0)

/* Entries: present-range and field checks, sorted, non-overlapping, sum within cap. */
static int check_entries(const struct dax_blob_header *h, struct dax_mapping *v, size_t n,
			 uint64_t align, bool check_sum, bool need_sorted, const char **why)
{
	uint64_t sum = 0, end;
	bool sorted = true;
	int r;

	for (size_t i = 0; i < n; i++) {
		const struct dax_mapping *m = &v[i];

		if (!m->len)
			FAIL("entry with zero length");
		if (!mk_is_aligned(m->moffset, align) || !mk_is_aligned(m->len, align) ||
		    !mk_is_aligned(m->foffset, 4096))
			FAIL("entry not aligned");
		if (!mk_range_ok(m->moffset, m->len, h->window_len))
			FAIL("entry outside the window");
		if (mk_add_u64(m->foffset, m->len, &end) || end > (uint64_t)INT64_MAX)
			FAIL("entry file range overflows");
		if (!m->prot || (m->prot & ~(DAX_PROT_READ | DAX_PROT_WRITE)))
			FAIL("entry with bad permissions");
		if (m->id.valid && m->id.mtime_nsec >= 1000000000u)
			FAIL("entry with bad file identity");
		if (mk_add_u64(sum, m->len, &sum))
			FAIL("total length overflows");
		if (i && m->moffset < v[i - 1].moffset)
			sorted = false;
	}
	/* daxsnap(5): version 2 is written sorted; disorder means a corrupt or forged blob. */
	if (!sorted && need_sorted)
		FAIL("version 2 entries out of order");
	if (!sorted)
		qsort(v, n, sizeof(*v), cmp_mapping);
	for (size_t i = 1; i < n; i++)
		if (v[i - 1].moffset + v[i - 1].len > v[i].moffset)
			FAIL("entries overlap");
	if (sum > h->cap)
		FAIL("total length above the cap");
	if (check_sum && sum != h->mapped_bytes)
		FAIL("mapped bytes do not match the entries");
	return 0;
fail:
	return r;
}

/* Parse into a caller-owned header and a malloc'd array; nothing allocated on error. */
static int parse(const uint8_t *b, size_t len, struct dax_blob_header *h,
		 struct dax_mapping **out, const char **why)
{
	struct dax_mapping *v = NULL;
	uint64_t end, align;
	size_t es, hs, n;
	int r;

	*h = (struct dax_blob_header){ 0 };
	if (len < 8)
		FAIL("truncated header");
	if (memcmp(b, "DAXS", 4))
		FAIL("bad magic");
	h->version = get32(b + 4);
	if (h->version != 1 && h->version != 2)
		FAIL("unsupported version");
	hs = hdr_size(h->version);
	es = ent_size(h->version);
	if (len < hs + (h->version == 2 ? 4 : 0))
		FAIL("truncated header");
	h->base_gpa = get64(b + 8);
	h->window_len = get64(b + 16);
	h->cap = get64(b + 24);
	h->mapped_bytes = get64(b + 32);
	h->count = get64(b + 40);
	if (h->version == 2) {
		if (get32(b + len - 4) != dax_crc32c(0, b, len - 4))
			FAIL("CRC mismatch");
		h->align_log2 = get32(b + 48);
		if (h->align_log2 < 12 || h->align_log2 > 40)
			FAIL("bad alignment");
		if (get32(b + 52))
			FAIL("unknown header flags");
	}
	align = h->version == 2 ? 1ull << h->align_log2 : 4096;
	if (!h->window_len || mk_add_u64(h->base_gpa, h->window_len, &end))
		FAIL("bad window");
	if (h->count > (len - hs) / es || blob_size(h->version, (size_t)h->count) != len)
		FAIL("entry count does not match the length");
	n = (size_t)h->count;
	v = malloc(sizeof(*v) * (n ?: 1));
	if (!v) {
		*why = "out of memory";
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = b + hs + i * es;
		struct dax_mapping *m = &v[i];
		uint32_t ef;

		*m = (struct dax_mapping){
			.moffset = get64(p), .len = get64(p + 8), .nodeid = get64(p + 16),
			.foffset = get64(p + 24), .prot = get32(p + 32),
		};
		ef = get32(p + 36);
		if (h->version == 1) {
			if (ef)
				FAIL("reserved field not zero");
			continue;
		}
		if (ef & ~1u || get32(p + 76))
			FAIL("unknown entry flags");
		if (ef & 1)
			m->id = (struct dax_file_id){
				.dev = get64(p + 40), .ino = get64(p + 48), .size = get64(p + 56),
				.mtime_sec = (int64_t)get64(p + 64), .mtime_nsec = get32(p + 72),
				.valid = 1,
			};
	}
	r = check_entries(h, v, n, align, h->version == 2, h->version == 2, why);
	if (r < 0)
		goto fail;
	*out = v;
	return 0;
fail:
	free(v);
	return r;
}

MK_EXPORT int dax_blob_parse(const void *blob, size_t len, struct dax_blob_header *hdr,
			     struct dax_mapping **entries, const char **why)
{
	const char *dummy;
	struct dax_mapping *v;
	int r;

	if (!why)
		why = &dummy;
	*why = NULL;
	if ((!blob && len) || !hdr || !entries) {
		*why = "invalid argument";
		return -EINVAL;
	}
	r = parse(blob, len, hdr, &v, why);
	if (r < 0)
		return r;
	*entries = v;
	return 0;
}

MK_EXPORT int dax_blob_build(const struct dax_blob_header *hdr, const struct dax_mapping *entries,
			     size_t n, void **blob, size_t *len, const char **why)
{
	struct dax_blob_header h;
	struct dax_mapping *v = NULL;
	const char *dummy;
	uint64_t end;
	uint8_t *b = NULL;
	size_t sz;
	int r;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (!hdr || (!entries && n) || !blob || !len)
		FAIL("invalid argument");
	h = *hdr;
	if (h.version != 1 && h.version != 2)
		FAIL("unsupported version");
	if (h.version == 1)
		h.align_log2 = 0;
	else if (h.align_log2 < 12 || h.align_log2 > 40)
		FAIL("bad alignment");
	if (!h.window_len || mk_add_u64(h.base_gpa, h.window_len, &end))
		FAIL("bad window");
	sz = blob_size(h.version, n);
	if (!sz)
		FAIL("too many entries");
	v = malloc(sizeof(*v) * (n ?: 1));
	b = malloc(sz);
	if (!v || !b) {
		*why = "out of memory";
		r = -ENOMEM;
		goto fail;
	}
	memcpy(v, entries, sizeof(*v) * n);
	h.mapped_bytes = 0;
	for (size_t i = 0; i < n; i++)
		h.mapped_bytes += v[i].len;     /* overflow is caught by check_entries */
	h.count = n;
	r = check_entries(&h, v, n, h.version == 2 ? 1ull << h.align_log2 : 4096, false, false, why);
	if (r < 0)
		goto fail;
	put_header(b, &h);
	for (size_t i = 0; i < n; i++)
		put_entry(b + hdr_size(h.version) + i * ent_size(h.version), h.version, &v[i]);
	if (h.version == 2)
		put_crc(b, sz);
	free(v);
	*blob = b;
	*len = sz;
	return 0;
fail:
	free(v);
	free(b);
	return r;
}

/* ---- session snapshot / restore ---------------------------------------------------- */


struct id_cache {
	uint64_t nodeid;
	struct dax_file_id id;
};

MK_EXPORT int dax_session_snapshot(struct dax_session *s, unsigned version, void **blob, size_t *len)
{
	g_autoptr(GHashTable) ids = NULL;
	struct dax_blob_header h;
	uint8_t *b, *p;
	struct dax_slot *sl;
	size_t sz;

	if (!s || (version != 1 && version != 2) || !blob || !len)
		return -EINVAL;
	if (version == 2)
		ids = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	g_mutex_lock(&s->lock);
	h = (struct dax_blob_header){
		.version = version, .align_log2 = version == 2 ? s->align_log2 : 0,
		.base_gpa = s->base, .window_len = s->wlen, .cap = s->cap,
		.mapped_bytes = s->mapped, .count = s->slots.count,
	};
	sz = blob_size(version, (size_t)h.count);
	b = sz ? malloc(sz) : NULL;
	if (!b) {
		g_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	put_header(b, &h);
	p = b + hdr_size(version);
	dax_slots_foreach(&s->slots, sl) {
		struct dax_mapping m;

		dax_slot_to_mapping(sl, &m);
		if (version == 2 && sl->bound) {
			/* A bound slot's file may have changed since setup (guest
			 * writes move mtime): record what it is now, once per node. */
			struct id_cache *e = g_hash_table_lookup(ids, &sl->nodeid);
			if (!e) {
				int fd;
				e = g_new0(struct id_cache, 1);
				e->nodeid = sl->nodeid;
				fd = s->be.open(s->be.data, sl->nodeid, DAX_FH_NONE, DAX_PROT_READ, &e->id);
				if (fd >= 0)
					mk_close(fd);
				else
					e->id = sl->id;
				g_hash_table_insert(ids, &e->nodeid, e);
			}
			m.id = e->id;
		}
		put_entry(p, version, &m);
		p += ent_size(version);
	}
	g_mutex_unlock(&s->lock);
	if (version == 2)
		put_crc(b, sz);
	*blob = b;
	*len = sz;
	return 0;
}

/*
 * Eager mode (the window without userfaultfd): nothing could catch the
 * first touch of an unbound page, so every restored slot is bound now.
 * A slot that cannot be bound stays unbound over anonymous memory (reads
 * as zeros) and is reported; the restore itself succeeded.
 */
static GArray *bind_all_locked(struct dax_session *s)
{
	GArray *events = NULL;
	struct dax_slot *sl;
	uint64_t t0 = mk_now_ns();

	dax_slots_foreach(&s->slots, sl) {
		int r = dax_bind_locked(s, sl, NULL, NULL);

		if (r == 0) {
			s->fst.eager_binds++;
			continue;
		}
		s->st.rejects[dax_err_index(r)]++;
		s->fst.unbound++;
		if (!events)
			events = g_array_new(FALSE, FALSE, sizeof(struct dax_event));
		g_array_append_val(events, ((struct dax_event){ DAX_EVENT_UNBOUND, r,
				   s->base + sl->moffset, sl->moffset, sl->len, sl->nodeid }));
	}
	s->fst.eager_ns += mk_now_ns() - t0;
	return events;
}

MK_EXPORT int dax_session_restore(struct dax_session *s, const void *blob, size_t len)
{
	struct dax_blob_header h;
	struct dax_mapping *v;
	const char *why;
	struct dax_slots fresh, old;
	GHashTable *nodes, *old_nodes;
	GArray *events = NULL;
	int r;

	if (!s || (!blob && len))
		return -EINVAL;
	r = parse(blob, len, &h, &v, &why);
	if (r < 0)
		goto out_count;
	/* Checks against this session (the blob was checked against itself). */
	if (h.base_gpa != s->base || h.window_len != s->wlen)
		r = -EBADSLT;
	else if (h.count > s->max_mappings)
		r = -ENOSPC;
	for (size_t i = 0; r == 0 && i < h.count; i++)
		if (!mk_is_aligned(v[i].moffset, s->align) || !mk_is_aligned(v[i].len, s->align))
			r = -EINVAL;
	if (r == 0) {
		uint64_t sum = 0;
		for (size_t i = 0; i < h.count; i++)
			sum += v[i].len;        /* cannot overflow: parse checked it */
		if (sum > s->cap)
			r = -ENOSPC;
		h.mapped_bytes = sum;
	}
	if (r < 0) {
		free(v);
		goto out_count;
	}

	/* Build the new tree outside the lock: restored slots are metadata only. */
	dax_slots_build(&fresh, v, h.count);
	nodes = dax_nodes_new();
	for (size_t i = 0; i < h.count; i++) {
		/* runs of one node are common: skip the hash lookup for a repeat */
		if (v[i].id.valid && !(i && v[i - 1].id.valid && v[i - 1].nodeid == v[i].nodeid) &&
		    !g_hash_table_contains(nodes, &v[i].nodeid)) {
			struct dax_node *n = g_new0(struct dax_node, 1);
			n->nodeid = v[i].nodeid;
			n->id = v[i].id;
			g_hash_table_insert(nodes, &n->nodeid, n);
		}
	}
	free(v);

	g_mutex_lock(&s->lock);
	/* Tear down live mappings first; if that fails, keep the old state. */
	r = dax_session_unmap_all_locked(s);
	if (r < 0) {
		s->st.rejects[dax_err_index(r)]++;
		g_mutex_unlock(&s->lock);
		dax_slots_clear(&fresh);
		g_hash_table_destroy(nodes);
		return r;
	}
	old = s->slots;
	old_nodes = s->nodes;
	s->slots = fresh;
	s->nodes = nodes;
	s->mapped = h.mapped_bytes;
	s->st.restores++;
	if (s->mode == DAX_FAULT_EAGER)
		events = bind_all_locked(s);
	g_mutex_unlock(&s->lock);
	dax_slots_clear(&old);
	g_hash_table_destroy(old_nodes);
	if (events) {
		for (guint i = 0; i < events->len; i++)
			dax_emit(s, &g_array_index(events, struct dax_event, i));
		g_array_unref(events);
	}
	return 0;

out_count:
	g_mutex_lock(&s->lock);
	s->st.rejects[dax_err_index(r)]++;
	g_mutex_unlock(&s->lock);
	return r;
}
