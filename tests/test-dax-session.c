/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libdax session logic through the recording mapper (real files, real
 * table backend): every error path, the seed VMM's own test scenarios
 * translated, snapshots, lazy rebind, MMIO completion, threads. The same
 * paths run against a real KVM guest in test-dax-kvm.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/fuse.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/uapi.h"
#include "daxP.h"
#include "test-dax-util.h"
#include "tests/ext-check.h"
#include "tests/alloc-fail.h"

/* The seed's geometry: window at 0x80_0000_0000, 16 GiB, 16 KiB alignment. */
#define BASE 0x8000000000ull
#define WLEN 0x400000000ull
#define A 0x4000ull

struct fx {
	struct rec_mapper rec;
	struct dax_mapper_ops ops;
	struct dax_table *table;
	struct dax_session *s;
	char *path;
	char *ro_path;
	bool own_path;
};

/* A session over the recording mapper; nodes 7 11 13 42 99 all name path (NULL: a new file). */
static void fx_open_path(struct fx *f, uint64_t cap, uint64_t max_mappings, const char *path)
{
	struct dax_config cfg = {
		.size = sizeof(cfg),
		.base_gpa = BASE, .window_len = WLEN, .cap = cap, .align_log2 = 14,
		.max_mappings = max_mappings, .mapper = DAX_MAPPER_CUSTOM,
	};
	struct dax_backend be;
	static const uint64_t nodes[] = { 7, 11, 13, 42, 99 };

	memset(f, 0, sizeof(*f));
	rec_init(&f->rec);
	f->ops = rec_ops_template;
	f->ops.data = &f->rec;
	cfg.ops = &f->ops;
	g_assert_cmpint(dax_table_new(&f->table), ==, 0);
	f->own_path = !path;
	f->path = path ? g_strdup(path) : dax_test_file(1 << 20);
	for (size_t i = 0; i < G_N_ELEMENTS(nodes); i++)
		g_assert_cmpint(dax_table_add(f->table, nodes[i], f->path), ==, 0);
	be = (struct dax_backend){ dax_table_open, NULL, f->table };
	g_assert_cmpint(dax_session_new(&cfg, &be, &f->s), ==, 0);
}

static void fx_open(struct fx *f, uint64_t cap, uint64_t max_mappings)
{
	fx_open_path(f, cap, max_mappings, NULL);
}

static void fx_close(struct fx *f)
{
	dax_session_free(f->s);
	dax_table_free(f->table);
	if (f->own_path)
		g_unlink(f->path);
	g_free(f->path);
	if (f->ro_path) {
		g_unlink(f->ro_path);
		g_free(f->ro_path);
	}
	rec_clear(&f->rec);
}

static struct dax_setup_req req(uint64_t moff, uint64_t foff, uint64_t len, uint64_t flags)
{
	return (struct dax_setup_req){ .fh = 1, .foffset = foff, .len = len, .flags = flags,
				       .moffset = moff };
}

#define R DAX_FUSE_FLAG_READ
#define W DAX_FUSE_FLAG_WRITE

static uint64_t mapped(struct fx *f)
{
	struct dax_stats st = { .size = sizeof(st) };

	g_assert_cmpint(dax_session_stats(f->s, &st), ==, 0);
	return st.mapped_bytes;
}

static uint64_t live(struct fx *f)
{
	struct dax_stats st = { .size = sizeof(st) };

	g_assert_cmpint(dax_session_stats(f->s, &st), ==, 0);
	return st.live_mappings;
}

/* The session's observable state, to compare before/after a failed call. */
static char *state(struct fx *f)
{
	g_autofree struct dax_mapping *v = NULL;
	GString *s = g_string_new(NULL);
	size_t n;

	g_assert_cmpint(dax_session_list(f->s, &v, &n), >=, 0);
	g_string_append_printf(s, "bytes=%" G_GUINT64_FORMAT ";", mapped(f));
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%" G_GINT64_MODIFIER "x+%" G_GINT64_MODIFIER "x n%"
				       G_GUINT64_FORMAT " f%" G_GINT64_MODIFIER "x p%u b%u;",
				       v[i].moffset, v[i].len, v[i].nodeid, v[i].foffset, v[i].prot,
				       v[i].flags);
	return g_string_free(s, FALSE);
}

/* ---- seed scenarios ------------------------------------------------------------------ */

static void test_setup_records(void)
{
	struct fx f;
	struct dax_setup_req q = req(0, 0, 0x4000, R);
	struct rec_call c;

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &q), ==, 0);
	g_assert_cmpuint(live(&f), ==, 1);
	g_assert_cmpuint(rec_count(&f.rec), ==, 1);
	c = rec_get(&f.rec, 0);
	g_assert_cmpint(c.op, ==, 'M');
	g_assert_cmphex(c.gpa, ==, BASE);
	g_assert_cmphex(c.len, ==, 0x4000);
	g_assert_cmpuint(c.prot, ==, DAX_PROT_READ);
	g_assert_cmpint(c.replace, ==, 0);
	fx_close(&f);
}

static void test_remove_undoes_setup(void)
{
	struct fx f;
	struct dax_setup_req q = req(0x10000, 0, 0x4000, R);
	struct dax_range e = { 0x10000, 0x4000 };
	struct rec_call c;

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &q), ==, 0);
	g_assert_cmpint(dax_session_remove(f.s, &e, 1), ==, 0);
	g_assert_cmpuint(live(&f), ==, 0);
	g_assert_cmpuint(rec_count(&f.rec), ==, 2);
	c = rec_get(&f.rec, 1);
	g_assert_cmpint(c.op, ==, 'U');
	g_assert_cmphex(c.gpa, ==, BASE + 0x10000);
	g_assert_cmphex(c.len, ==, 0x4000);
	fx_close(&f);
}

/*
 * The extensible-struct convention (libdax(3)) on dax_config (input),
 * dax_stats and dax_fault_stats (outputs); libdax 3.0's layouts are the
 * first, so an older caller is only a too-small one (common/ext.h's
 * two-layout case is in test-common). A SETUPMAPPING the session refuses
 * still counts, per errno (dax_session_rejects) and in the total.
 */
static void test_ext_structs(void)
{
	struct rec_mapper rec;
	struct dax_mapper_ops ops;
	struct dax_backend be = { dax_table_open, NULL, NULL };
	struct dax_session *s = NULL;
	union { struct dax_config c; unsigned char b[sizeof(struct dax_config) + 16]; } in;
	struct fx f;

	rec_init(&rec);
	ops = rec_ops_template;
	ops.data = &rec;
	memset(&in, 0, sizeof(in));
	in.c = (struct dax_config){ .size = sizeof(in), .base_gpa = BASE, .window_len = WLEN,
				    .mapper = DAX_MAPPER_CUSTOM, .ops = &ops };
	in.b[sizeof(struct dax_config) + 3] = 1;
	g_assert_cmpint(dax_session_new(&in.c, &be, &s), ==, -E2BIG);
	g_assert_null(s);
	in.b[sizeof(struct dax_config) + 3] = 0;
	in.c.size = sizeof(struct dax_config) - 1;
	g_assert_cmpint(dax_session_new(&in.c, &be, &s), ==, -EINVAL);
	g_assert_null(s);
	in.c.size = sizeof(in);         /* a newer caller's zero tail: fine */
	g_assert_cmpint(dax_session_new(&in.c, &be, &s), ==, 0);
	dax_session_free(s);

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 0 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 0x100 }), ==, -EINVAL);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 2 * A, R, 0 }), ==, -EEXIST);
	EXT_CHECK_OUT(struct dax_stats, dax_session_stats(f.s, x));
	EXT_CHECK_OUT(struct dax_fault_stats, dax_session_fault_stats(f.s, x));
	{
		struct dax_stats st = { .size = sizeof(st) };
		g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
		g_assert_cmpuint(st.live_mappings, ==, 1);
		g_assert_cmpuint(st.bound_mappings, ==, 1);
		g_assert_cmpuint(st.setups, ==, 1);
		g_assert_cmpuint(st.rejects, ==, 2);
	}
	g_assert_cmpint(dax_session_rejects(f.s, -EINVAL), ==, 1);
	g_assert_cmpint(dax_session_rejects(f.s, -EEXIST), ==, 1);
	g_assert_cmpint(dax_session_rejects(f.s, -ENOSPC), ==, 0);
	g_assert_cmpint(dax_session_rejects(f.s, 0), ==, 2);
	/* the bad calls of EXT_CHECK_OUT above are refused before the session: not counted */
	fx_close(&f);
}

static void test_setup_rejects(void)
{
	static const struct { struct dax_setup_req q; int err; const char *what; } cases[] = {
		{ { 1, 0, 0x4000, R, 0x100 }, -EINVAL, "unaligned moffset" },
		{ { 1, 0, 0x4100, R, 0 }, -EINVAL, "unaligned len" },
		{ { 1, 0x800, 0x4000, R, 0 }, -EINVAL, "unaligned foffset" },
		{ { 1, 0, 0, R, 0 }, -EINVAL, "zero len" },
		{ { 1, 0, 0x4000, 0, 0 }, -EINVAL, "zero perms" },
		{ { 1, 0, 0x4000, R | 0x100, 0 }, -EINVAL, "unknown flag" },
		{ { 1, 0, 0x4000, R, WLEN }, -EINVAL, "out of window (seed)" },
		{ { 1, 0, 0x8000, R, WLEN - 0x4000 }, -EINVAL, "crosses window end" },
		{ { 1, 0, 0x4000, R, UINT64_MAX - 0x3fff }, -EINVAL, "moffset+len wraps" },
		{ { 1, UINT64_MAX - 0xfff, 0x4000, R, 0 }, -EINVAL, "foffset+len wraps" },
		{ { 1, 0, UINT64_MAX - 0x3fff, R, 0 }, -EINVAL, "huge len" },
	};
	struct fx f;
	g_autofree char *before = NULL;
	struct dax_stats st = { .size = sizeof(st) };

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0x40000 }), ==, 0);
	before = state(&f);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *after = NULL;
		g_test_message("case: %s", cases[i].what);
		g_assert_cmpint(dax_session_setup(f.s, 7, &cases[i].q), ==, cases[i].err);
		after = state(&f);
		g_assert_cmpstr(before, ==, after);
	}
	g_assert_cmpuint(rec_count(&f.rec), ==, 1);
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_cmpint(dax_session_rejects(f.s, -EINVAL), ==, G_N_ELEMENTS(cases));
	g_assert_cmpuint(st.rejects, ==, G_N_ELEMENTS(cases));
	/* NULL arguments */
	g_assert_cmpint(dax_session_setup(NULL, 7, &cases[0].q), ==, -EINVAL);
	g_assert_cmpint(dax_session_setup(f.s, 7, NULL), ==, -EINVAL);
	fx_close(&f);
}

static void test_overlap_and_upgrade(void)
{
	struct fx f;
	g_autofree char *before = NULL, *after = NULL;
	g_autofree struct dax_mapping *v = NULL;
	size_t n;
	struct dax_stats st = { .size = sizeof(st) };

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x8000, R, 0x8000 }), ==, 0);
	before = state(&f);
	/* Partial overlaps on either side and containment are -EEXIST. */
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x8000, R, 0x4000 }), ==, -EEXIST);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x8000, R, 0xc000 }), ==, -EEXIST);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0xc000 }), ==, -EEXIST);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x20000, R, 0 }), ==, -EEXIST);
	after = state(&f);
	g_assert_cmpstr(before, ==, after);
	/* Adjacent is fine. */
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0x4000 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0x10000 }), ==, 0);
	/* The seed refused a re-send of the same range; Linux guests upgrade read -> write so. */
	g_assert_cmpint(dax_session_setup(f.s, 11, &(struct dax_setup_req){ 1, 0x4000, 0x8000, R | W, 0x8000 }), ==, 0);
	g_assert_cmpint(rec_get(&f.rec, rec_count(&f.rec) - 1).replace, ==, 1);
	g_assert_cmpuint(rec_get(&f.rec, rec_count(&f.rec) - 1).prot, ==, DAX_PROT_READ | DAX_PROT_WRITE);
	g_assert_cmpint(dax_session_list(f.s, &v, &n), ==, 3);
	g_assert_cmphex(v[1].moffset, ==, 0x8000);
	g_assert_cmpuint(v[1].nodeid, ==, 11);
	g_assert_cmphex(v[1].foffset, ==, 0x4000);
	g_assert_cmpuint(v[1].prot, ==, 3);
	g_assert_cmphex(mapped(&f), ==, 0x10000);
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_cmpuint(st.upgrades, ==, 1);
	g_assert_cmpint(dax_session_rejects(f.s, -EEXIST), ==, 4);
	fx_close(&f);
}

static void test_cap(void)
{
	struct fx f;
	struct dax_range e = { 0, 0x4000 };
	g_autofree char *before = NULL, *after = NULL;

	/* Seed: cap 8 KiB in its units is two slots; ours: two 16 KiB slots. */
	fx_open(&f, 0x8000, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0x4000 }), ==, 0);
	before = state(&f);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0x8000 }), ==, -ENOSPC);
	after = state(&f);
	g_assert_cmpstr(before, ==, after);
	g_assert_cmphex(mapped(&f), ==, 0x8000);
	/* A full cap still allows the in-place upgrade (no new bytes). */
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R | W, 0 }), ==, 0);
	/* remove releases the reservation (seed: remove_releases_cap_reservation) */
	g_assert_cmpint(dax_session_remove(f.s, &e, 1), ==, 0);
	g_assert_cmphex(mapped(&f), ==, 0x4000);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0x8000 }), ==, 0);
	fx_close(&f);
}

static void test_max_mappings(void)
{
	struct fx f;

	fx_open(&f, 0, 3);
	for (unsigned i = 0; i < 3; i++)
		g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, i * A }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 3 * A }), ==, -ENOSPC);
	g_assert_cmpuint(live(&f), ==, 3);
	fx_close(&f);
}

static void test_default_map_limit(void)
{
	uint64_t m = dax_default_max_mappings(2);
	g_autofree char *s = NULL;

	g_assert_true(g_file_get_contents("/proc/sys/vm/max_map_count", &s, NULL, NULL));
	g_assert_cmpuint(m, >, 0);
	g_assert_cmpuint(m * 2, <, g_ascii_strtoull(s, NULL, 10));
}

static void test_remove_errors(void)
{
	struct fx f;
	g_autofree char *before = NULL;
	struct dax_range big[300];

	fx_open(&f, 0, 0);
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, i * 2 * A }), ==, 0);
	before = state(&f);
#define CHECK_REMOVE(err, ...) do {                                                      \
		struct dax_range v_[] = { __VA_ARGS__ };                                   \
		g_autofree char *after_ = NULL;                                            \
		g_assert_cmpint(dax_session_remove(f.s, v_, G_N_ELEMENTS(v_)), ==, err);   \
		after_ = state(&f);                                                        \
		g_assert_cmpstr(before, ==, after_);                                       \
	} while (0)
	CHECK_REMOVE(-ENOENT, { A, A });                        /* nothing there */
	CHECK_REMOVE(-EINVAL, { 0, 2 * A });                     /* length mismatch */
	CHECK_REMOVE(-EINVAL, { 0x100, A });                     /* unaligned */
	CHECK_REMOVE(-EINVAL, { 0, 0 });                         /* zero length */
	CHECK_REMOVE(-EINVAL, { WLEN, A });                      /* outside */
	CHECK_REMOVE(-EINVAL, { UINT64_MAX - 0x3fff, A });       /* wraps */
	CHECK_REMOVE(-EINVAL, { 0, A }, { 0, A });               /* duplicate */
	CHECK_REMOVE(-ENOENT, { 0, A }, { 2 * A, A }, { 3 * A, A }); /* last bad: none removed */
	CHECK_REMOVE(-EINVAL, { 0, A }, { 0, DAX_LEN_ALL });     /* remove-all inside a batch */
	for (size_t i = 0; i < G_N_ELEMENTS(big); i++)
		big[i] = (struct dax_range){ 0, A };
	g_assert_cmpint(dax_session_remove(f.s, big, G_N_ELEMENTS(big)), ==, -EINVAL);  /* > 256 */
	g_assert_cmpint(dax_session_remove(f.s, NULL, 1), ==, -EINVAL);
	g_assert_cmpint(dax_session_remove(f.s, NULL, 0), ==, 0);
	g_assert_cmpuint(rec_count(&f.rec), ==, 4);
	/* A good batch removes all of its entries. */
	CHECK_REMOVE(0);
	g_assert_cmpint(dax_session_remove(f.s, (struct dax_range[]){ { 2 * A, A }, { 0, A } }, 2), ==, 0);
	g_assert_cmpuint(live(&f), ==, 2);
	/* The whole window. */
	g_assert_cmpint(dax_session_remove(f.s, &(struct dax_range){ 0, DAX_LEN_ALL }, 1), ==, 0);
	g_assert_cmpuint(live(&f), ==, 0);
	g_assert_cmpuint(mapped(&f), ==, 0);
	g_assert_cmpuint(rec_count(&f.rec), ==, 8);
	fx_close(&f);
}

/* Seed: parse_remove_payload_round_trip, with the kernel's 4-byte header. */
static void test_remove_raw(void)
{
	struct fx f;
	uint8_t buf[4 + 3 * 16];
	uint32_t count = 2;
	struct fuse_removemapping_one one[2] = { { 0x4000, 0x4000 }, { 0x8000, 0x8000 } };

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0x4000 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x8000, R, 0x8000 }), ==, 0);
	memcpy(buf, &count, 4);
	memcpy(buf + 4, one, sizeof(one));
	/* count claims more entries than the payload holds */
	count = 3;
	memcpy(buf, &count, 4);
	g_assert_cmpint(dax_session_remove_raw(f.s, buf, 4 + 2 * 16), ==, -EINVAL);
	/* too short for the header */
	g_assert_cmpint(dax_session_remove_raw(f.s, buf, 3), ==, -EINVAL);
	/* count above the kernel maximum (page size / 16) */
	count = 4096;
	memcpy(buf, &count, 4);
	g_assert_cmpint(dax_session_remove_raw(f.s, buf, sizeof(buf)), ==, -EINVAL);
	g_assert_cmpuint(live(&f), ==, 2);
	/* the real layout: entries at offset 4 (the seed read them at 8) */
	count = 2;
	memcpy(buf, &count, 4);
	g_assert_cmpint(dax_session_remove_raw(f.s, buf, 4 + 2 * 16), ==, 0);
	g_assert_cmpuint(live(&f), ==, 0);
	fx_close(&f);
}

static void test_setup_raw(void)
{
	struct fx f;
	struct fuse_setupmapping_in in = { .fh = (uint64_t)-1, .foffset = 0x4000, .len = 0x8000,
					   .flags = FUSE_SETUPMAPPING_FLAG_READ, .moffset = 0x40000 };
	uint8_t buf[sizeof(in) + 1];
	g_autofree struct dax_mapping *v = NULL;
	size_t n;

	fx_open(&f, 0, 0);
	memcpy(buf + 1, &in, sizeof(in));      /* unaligned on purpose */
	g_assert_cmpint(dax_session_setup_raw(f.s, 42, buf + 1, sizeof(in) - 1), ==, -EINVAL);
	g_assert_cmpint(dax_session_setup_raw(f.s, 42, buf + 1, sizeof(in)), ==, 0);
	g_assert_cmpint(dax_session_list(f.s, &v, &n), ==, 1);
	g_assert_cmphex(v[0].moffset, ==, 0x40000);
	g_assert_cmphex(v[0].foffset, ==, 0x4000);
	g_assert_cmpuint(v[0].nodeid, ==, 42);
	fx_close(&f);
}

static void test_mapper_and_backend_failures(void)
{
	struct fx f;
	g_autofree char *before = NULL, *after = NULL;
	g_autofree char *after2 = NULL;
	struct dax_stats st = { .size = sizeof(st) };
	int fd;

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 0 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, A }), ==, 0);
	before = state(&f);
	f.rec.fail_map = ENOMEM;
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 4 * A }), ==, -ENOMEM);
	f.rec.fail_map = 0;
	/* unknown node */
	g_assert_cmpint(dax_session_setup(f.s, 1234, &(struct dax_setup_req){ 1, 0, A, R, 4 * A }), ==, -ENOENT);
	/* write mapping of a file only readable */
	f.ro_path = dax_test_file(A);
	g_assert_cmpint(chmod(f.ro_path, 0444), ==, 0);
	fd = open(f.ro_path, O_RDWR);
	if (fd >= 0) {
		/* root ignores modes: make the table's fd read-only another way */
		close(fd);
		g_test_message("running as root: read-only file via O_RDONLY fallback not testable by mode");
	} else {
		g_assert_cmpint(dax_table_add(f.table, 77, f.ro_path), ==, 0);
		g_assert_cmpint(dax_session_setup(f.s, 77, &(struct dax_setup_req){ 1, 0, A, R | W, 4 * A }), ==, -EACCES);
	}
	after = state(&f);
	g_assert_cmpstr(before, ==, after);
	g_assert_cmphex(mapped(&f), ==, 2 * A);       /* no cap leaked */
	/* a failing unmap: the batch fails, nothing removed */
	f.rec.fail_unmap = EIO;
	g_assert_cmpint(dax_session_remove(f.s, &(struct dax_range){ 0, A }, 1), ==, -EIO);
	g_assert_cmpint(dax_session_reset(f.s), ==, -EIO);
	f.rec.fail_unmap = 0;
	g_assert_cmpuint(live(&f), ==, 2);
	after2 = state(&f);
	g_assert_cmpstr(before, ==, after2);
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_cmpint(dax_session_rejects(f.s, -ENOMEM), ==, 1);
	g_assert_cmpint(dax_session_rejects(f.s, -ENOENT), ==, 1);
	g_assert_cmpint(dax_session_rejects(f.s, -EIO), ==, 2);
	g_assert_cmpint(dax_session_rejects(f.s, 0), ==, st.rejects);
	fx_close(&f);
}

static void test_reset(void)
{
	struct fx f;
	struct dax_stats st = { .size = sizeof(st) };

	fx_open(&f, 0, 0);
	for (unsigned i = 0; i < 5; i++)
		g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, i * A }), ==, 0);
	g_assert_cmpint(dax_session_reset(f.s), ==, 0);
	g_assert_cmpuint(rec_count(&f.rec), ==, 10);
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_cmpuint(st.live_mappings, ==, 0);
	g_assert_cmpuint(st.mapped_bytes, ==, 0);
	g_assert_cmpuint(st.resets, ==, 1);
	g_assert_cmpuint(st.removes, ==, 5);
	g_assert_cmpint(dax_session_reset(NULL), ==, -EINVAL);
	fx_close(&f);
}

static void test_new_invalid(void)
{
	struct rec_mapper rec;
	struct dax_mapper_ops ops;
	struct dax_backend be = { dax_table_open, NULL, NULL };
	struct dax_session *s = NULL;
	struct dax_config good = { .size = sizeof(good), .base_gpa = BASE, .window_len = WLEN, .mapper = DAX_MAPPER_CUSTOM };
	struct dax_config c;

	rec_init(&rec);
	ops = rec_ops_template;
	ops.data = &rec;
	good.ops = &ops;
#define BAD(field, value) do {                                                  \
		c = good;                                                       \
		c.field = value;                                                \
		g_assert_cmpint(dax_session_new(&c, &be, &s), ==, -EINVAL);     \
		g_assert_null(s);                                               \
	} while (0)
	BAD(window_len, 0);
	BAD(window_len, 0x1800);
	BAD(base_gpa, 0x800);
	BAD(base_gpa, UINT64_MAX - 0xfff);
	BAD(cap, WLEN + 1);
	BAD(align_log2, 3);
	BAD(align_log2, 63);
	BAD(size, 0);                   /* below the first layout (libdax(3)) */
	BAD(size, sizeof(good) - 1);
	BAD(flags, 4);                  /* unknown DAX_SESSION_* bit */
	BAD(mapper, 9);
	BAD(ops, NULL);
	c = good;
	c.vm_fd = -1;
	c.mapper = DAX_MAPPER_KVM_WINDOW;
	g_assert_cmpint(dax_session_new(&c, &be, &s), ==, -EINVAL);
	c.mapper = DAX_MAPPER_KVM_MEMSLOT;
	g_assert_cmpint(dax_session_new(&c, &be, &s), ==, -EINVAL);
	g_assert_cmpint(dax_session_new(&good, NULL, &s), ==, -EINVAL);
	g_assert_cmpint(dax_session_new(NULL, &be, &s), ==, -EINVAL);
	g_assert_cmpint(dax_session_new(&good, &be, &s), ==, 0);
	{
		/* a custom mapper binds through exits/dax_session_fault: no fault service */
		struct dax_fault_stats fs = { .size = sizeof(fs) };
		g_assert_cmpint(dax_session_fault_stats(s, &fs), ==, 0);
		g_assert_cmpuint(fs.mode, ==, DAX_FAULT_EXIT);
		g_assert_cmpuint(fs.thread, ==, 0);
		g_assert_cmpint(dax_session_fault_fd(s), ==, -ENOTSUP);
		g_assert_cmpint(dax_session_service(s), ==, -ENOTSUP);
		g_assert_cmpint(dax_session_fault_stats(s, NULL), ==, -EINVAL);
		g_assert_cmpint(dax_session_fault_stats(NULL, &fs), ==, -EINVAL);
		g_assert_cmpint(dax_session_service(NULL), ==, -EINVAL);
		g_assert_cmpint(dax_session_fault_fd(NULL), ==, -EINVAL);
		g_assert_cmpint(dax_session_set_event_fn(NULL, NULL, NULL), ==, -EINVAL);
		g_assert_cmpint(dax_session_set_event_fn(s, NULL, NULL), ==, 0);
	}
	dax_session_free(s);
	dax_session_free(NULL);
	rec_clear(&rec);
}

/* ---- snapshots (seed scenarios and more) ------------------------------------------------ */

static void *snap(struct fx *f, unsigned v, size_t *len)
{
	void *b = NULL;

	g_assert_cmpint(dax_session_snapshot(f->s, v, &b, len), ==, 0);
	return b;
}

static void put64(GByteArray *a, uint64_t v) { g_byte_array_append(a, (uint8_t *)&v, 8); }
static void put32(GByteArray *a, uint32_t v) { g_byte_array_append(a, (uint8_t *)&v, 4); }

static void test_snapshot_v1_bytes(void)
{
	struct fx f, g;
	g_autofree uint8_t *b = NULL;
	g_autoptr(GByteArray) want = g_byte_array_new();
	g_autofree struct dax_mapping *v = NULL;
	size_t len, n;
	struct dax_stats st = { .size = sizeof(st) };

	fx_open(&f, 0, 0);
	/* seed: snapshot_restore_round_trip_preserves_entries (note the WRITE-only slot) */
	g_assert_cmpint(dax_session_setup(f.s, 13, &(struct dax_setup_req){ 1, 0x4000, 0x8000, W, 0x100000 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 11, &(struct dax_setup_req){ 1, 0x10000, 0x4000, R | W, 0x8000 }), ==, 0);
	b = snap(&f, 1, &len);
	/* The seed's writer, field by field (little-endian host). */
	g_byte_array_append(want, (const uint8_t *)"DAXS", 4);
	put32(want, 1);
	put64(want, BASE);
	put64(want, WLEN);
	put64(want, WLEN);                      /* cap defaults to the window */
	put64(want, 0x4000 + 0x4000 + 0x8000);
	put64(want, 3);
	put64(want, 0); put64(want, 0x4000); put64(want, 7); put64(want, 0); put32(want, 1); put32(want, 0);
	put64(want, 0x8000); put64(want, 0x4000); put64(want, 11); put64(want, 0x10000); put32(want, 3); put32(want, 0);
	put64(want, 0x100000); put64(want, 0x8000); put64(want, 13); put64(want, 0x4000); put32(want, 2); put32(want, 0);
	g_assert_cmpuint(len, ==, 48 + 3 * 40);
	g_assert_cmpmem(b, len, want->data, want->len);

	/* Fresh session: restore is metadata only, no mapper calls. */
	fx_open(&g, 0, 0);
	g_assert_cmpint(dax_session_restore(g.s, b, len), ==, 0);
	g_assert_cmpuint(rec_count(&g.rec), ==, 0);
	g_assert_cmpint(dax_session_stats(g.s, &st), ==, 0);
	g_assert_cmpuint(st.live_mappings, ==, 3);
	g_assert_cmpuint(st.bound_mappings, ==, 0);
	g_assert_cmphex(st.mapped_bytes, ==, 0x10000);
	g_assert_cmpint(dax_session_list(g.s, &v, &n), ==, 3);
	for (size_t i = 0; i < n; i++)
		g_assert_cmpuint(v[i].flags & DAX_MAPPING_BOUND, ==, 0);
	g_assert_cmpuint(v[2].nodeid, ==, 13);
	g_assert_cmpuint(v[2].prot, ==, DAX_PROT_WRITE);
	/* restore is idempotent (seed: restore_state_is_idempotent) */
	g_assert_cmpint(dax_session_restore(g.s, b, len), ==, 0);
	g_assert_cmpuint(live(&g), ==, 3);
	g_assert_cmphex(mapped(&g), ==, 0x10000);
	fx_close(&g);
	fx_close(&f);
}

/* Blobs written by hand as the seed's implementation would: accepted, unsorted too. */
static void test_restore_seed_blob(void)
{
	struct fx f;
	g_autoptr(GByteArray) b = g_byte_array_new();
	g_autofree struct dax_mapping *v = NULL;
	size_t n;

	fx_open(&f, 0, 0);
	g_byte_array_append(b, (const uint8_t *)"DAXS", 4);
	put32(b, 1); put64(b, BASE); put64(b, WLEN); put64(b, 0x8000); put64(b, 0x8000); put64(b, 2);
	put64(b, 0x20000); put64(b, 0x4000); put64(b, 42); put64(b, 0x1000); put32(b, 1); put32(b, 0);
	put64(b, 0x0); put64(b, 0x4000); put64(b, 7); put64(b, 0); put32(b, 3); put32(b, 0);
	g_assert_cmpint(dax_session_restore(f.s, b->data, b->len), ==, 0);
	g_assert_cmpint(dax_session_list(f.s, &v, &n), ==, 2);
	/* seed: restored_entries_have_no_host_va_until_fault */
	g_assert_cmphex(v[1].moffset, ==, 0x20000);
	g_assert_cmphex(v[1].len, ==, 0x4000);
	g_assert_cmpuint(v[1].nodeid, ==, 42);
	g_assert_cmphex(v[1].foffset, ==, 0x1000);
	g_assert_cmpuint(v[1].prot, ==, DAX_PROT_READ);
	g_assert_cmpuint(v[1].flags, ==, 0);
	fx_close(&f);
}

static void test_restore_rejects(void)
{
	struct fx f;
	g_autofree uint8_t *good1 = NULL, *good2 = NULL;
	g_autofree char *before = NULL;
	size_t len1, len2;
	uint8_t *b;

	fx_open(&f, 0x20000, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 0 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 2 * A }), ==, 0);
	good1 = snap(&f, 1, &len1);
	good2 = snap(&f, 2, &len2);
	g_assert_cmpuint(len2, ==, 56 + 2 * 80 + 4);
	before = state(&f);
	b = g_malloc(len2 + 64);
#define REJECT(err, blob, len) do {                                                      \
		g_autofree char *after_ = NULL;                                            \
		g_assert_cmpint(dax_session_restore(f.s, blob, len), ==, err);             \
		after_ = state(&f);                                                        \
		g_assert_cmpstr(before, ==, after_);                                       \
	} while (0)
	/* seed: restore_state_rejects_malformed_blobs */
	memcpy(b, "\1\2\3", 3);
	REJECT(-EINVAL, b, 3);
	REJECT(-EINVAL, "WRONG_MAGIC\1\0\0\0", 15);
	memcpy(b, good1, len1); b[4] = 0xe7; b[5] = 3;            /* version 999 */
	REJECT(-EINVAL, b, len1);
	memcpy(b, good1, len1); b[11] ^= 0x40;                    /* other base (aligned) */
	REJECT(-EBADSLT, b, len1);
	memcpy(b, good1, len1); b[19] ^= 0x40;                    /* other window length */
	REJECT(-EBADSLT, b, len1);
	memcpy(b, good1, len1); b[8] ^= 0x40;                     /* a base off the alignment */
	REJECT(-EINVAL, b, len1);
	REJECT(-EINVAL, good1, 48);                               /* claims 2 entries, has none */
	REJECT(-EINVAL, good1, len1 - 1);
	memcpy(b, good1, len1); b[len1] = 0;                      /* trailing byte */
	REJECT(-EINVAL, b, len1 + 1);
	memcpy(b, good1, len1); b[48 + 40 + 1] = 0;               /* second entry onto the first: overlap */
	REJECT(-EINVAL, b, len1);
	memcpy(b, good1, len1); b[48 + 1] = 0x10;                 /* moffset 0x1000: misaligned for us */
	REJECT(-EINVAL, b, len1);
	memcpy(b, good1, len1); b[48 + 7] = 0x80;                 /* out of the window */
	REJECT(-EINVAL, b, len1);
	memcpy(b, good1, len1); b[48 + 32] = 0;                   /* zero permissions */
	REJECT(-EINVAL, b, len1);
	memcpy(b, good1, len1); b[48 + 36] = 1;                   /* reserved field */
	REJECT(-EINVAL, b, len1);
	memcpy(b, good1, len1); b[48 + 8] = 0; b[48 + 9] = 0;     /* zero length */
	REJECT(-EINVAL, b, len1);
	memcpy(b, good1, len1); b[40] = 0xff; b[41] = 0xff; b[47] = 0x0f;   /* huge count */
	REJECT(-EINVAL, b, len1);
	/* version 2: CRC and sum */
	memcpy(b, good2, len2); b[60] ^= 1;
	REJECT(-EINVAL, b, len2);
	memcpy(b, good2, len2); b[32] ^= 0x40;                    /* mapped bytes != sum (CRC fixed) */
	{
		uint32_t crc = mk_crc32c(0, b, len2 - 4);
		memcpy(b + len2 - 4, &crc, 4);
	}
	REJECT(-EINVAL, b, len2);
	/* version 2 is sorted (daxsnap(5)): the same two entries swapped, CRC fixed, is refused */
	memcpy(b, good2, len2);
	memcpy(b + 56, good2 + 56 + 80, 80);
	memcpy(b + 56 + 80, good2 + 56, 80);
	{
		uint32_t crc = mk_crc32c(0, b, len2 - 4);
		memcpy(b + len2 - 4, &crc, 4);
	}
	REJECT(-EINVAL, b, len2);
	{
		struct dax_blob_header h;
		struct dax_mapping *v = NULL;
		const char *why = NULL;
		g_assert_cmpint(dax_blob_parse(b, len2, &h, &v, &why), ==, -EINVAL);
		g_assert_cmpstr(why, ==, "version 2 entries out of order");
		g_assert_null(v);
	}
	/* above this session's cap: a blob from a session with a larger one */
	{
		struct fx g;
		g_autofree uint8_t *big = NULL;
		size_t lb;
		fx_open(&g, 0, 0);
		for (unsigned i = 0; i < 9; i++)
			g_assert_cmpint(dax_session_setup(g.s, 7, &(struct dax_setup_req){ 1, 0, A, R, i * A }), ==, 0);
		big = snap(&g, 2, &lb);
		REJECT(-ENOSPC, big, lb);
		fx_close(&g);
	}
	REJECT(-EINVAL, NULL, 10);
	g_assert_cmpint(dax_session_restore(f.s, good2, len2), ==, 0);
	g_free(b);
	fx_close(&f);
}

/* dax_blob_parse's why for a blob cut short, one with bytes appended and
 * one damaged inside, both versions; the window alignment rule shared by
 * build and parse. */
static const char *parse_why(const void *b, size_t len)
{
	struct dax_blob_header h;
	struct dax_mapping *v = NULL;
	const char *why = NULL;

	g_assert_cmpint(dax_blob_parse(b, len, &h, &v, &why), ==, -EINVAL);
	g_assert_null(v);
	return why;
}

static void test_blob_faults(void)
{
	const struct dax_mapping e[2] = {
		{ .moffset = 0, .len = 0x200000, .nodeid = 1, .prot = DAX_PROT_READ },
		{ .moffset = 0x200000, .len = 0x200000, .nodeid = 2, .foffset = 0x200000, .prot = 3,
		  .id = { 1, 2, 3, 4, 5, 1 } },
	};
	struct dax_blob_header h = { .version = 2, .align_log2 = 21, .base_gpa = 0x40000000,
				     .window_len = 0x4000000, .cap = 0x4000000 };
	struct dax_mapping *v = NULL;
	const char *why = NULL;
	void *blob;
	size_t len;

	for (unsigned ver = 1; ver <= 2; ver++) {
		g_autofree uint8_t *b = NULL;
		size_t cuts[] = { 4, 47, 48, 60, 100, 140, 0 };

		h.version = ver;
		g_assert_cmpint(dax_blob_build(&h, e, 2, &blob, &len, NULL), ==, 0);
		g_assert_cmpuint(len, ==, ver == 1 ? 48 + 2 * 40 : 56 + 2 * 80 + 4);
		b = g_malloc(len + 1);
		memcpy(b, blob, len);
		free(blob);
		cuts[G_N_ELEMENTS(cuts) - 1] = len - 1;
		for (size_t i = 0; i < G_N_ELEMENTS(cuts); i++)
			if (cuts[i] < len)
				g_assert_cmpstr(parse_why(b, cuts[i]), ==, "truncated");
		b[len] = 0;
		g_assert_cmpstr(parse_why(b, len + 1), ==, "trailing data after the last entry");
		if (ver == 2) {
			b[100] ^= 1;
			g_assert_cmpstr(parse_why(b, len), ==, "CRC mismatch");
		}
	}
	/* the window's base and length follow the alignment: build refuses what parse would */
	h.version = 2;
	h.base_gpa = 0x40001000;
	g_assert_cmpint(dax_blob_build(&h, e, 2, &blob, &len, &why), ==, -EINVAL);
	g_assert_cmpstr(why, ==, "window base or length not aligned");
	h.base_gpa = 1;
	h.window_len = 2;
	h.align_log2 = 12;
	g_assert_cmpint(dax_blob_build(&h, NULL, 0, &blob, &len, &why), ==, -EINVAL);
	g_assert_cmpstr(why, ==, "window base or length not aligned");
	h.version = 1;
	g_assert_cmpint(dax_blob_build(&h, NULL, 0, &blob, &len, &why), ==, -EINVAL);
	/* a v1 blob written by hand with such a window does not parse either */
	{
		uint8_t b[48] = "DAXS\1";

		b[8] = 1;       /* base 1 */
		b[16] = 2;      /* window 2 */
		g_assert_cmpstr(parse_why(b, sizeof(b)), ==, "window base or length not aligned");
	}
	h.base_gpa = 0x40000000;
	h.window_len = 0x4000000;
	g_assert_cmpint(dax_blob_build(&h, NULL, 0, &blob, &len, &why), ==, 0);
	g_assert_cmpint(dax_blob_parse(blob, len, &h, &v, &why), ==, 0);
	free(v);
	free(blob);
}

static void test_restore_tears_down_live(void)
{
	struct fx f;
	g_autofree uint8_t *b = NULL;
	size_t len;

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 0 }), ==, 0);
	b = snap(&f, 2, &len);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 4 * A }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 8 * A }), ==, 0);
	g_assert_cmpuint(rec_count(&f.rec), ==, 3);
	/* A failing teardown leaves the session as it was. */
	f.rec.fail_unmap = EIO;
	g_assert_cmpint(dax_session_restore(f.s, b, len), ==, -EIO);
	g_assert_cmpuint(live(&f), ==, 3);
	f.rec.fail_unmap = 0;
	g_assert_cmpint(dax_session_restore(f.s, b, len), ==, 0);
	/* all three live ones unmapped (the seed leaked them) */
	g_assert_cmpuint(rec_count(&f.rec), ==, 6);
	for (guint i = 3; i < 6; i++)
		g_assert_cmpint(rec_get(&f.rec, i).op, ==, 'U');
	g_assert_cmpuint(live(&f), ==, 1);
	fx_close(&f);
}

static void test_fault(void)
{
	struct fx f, g;
	g_autofree uint8_t *b = NULL;
	size_t len;
	struct rec_call c;
	struct dax_stats st = { .size = sizeof(st) };

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 99, &(struct dax_setup_req){ 1, 0x5000, 0x4000, R | W, 0x40000 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 0x4000, R, 0x4000 }), ==, 0);
	/* already bound: claimed, no mapper call (seed: ..._on_already_bound_slot_is_noop) */
	g_assert_cmpint(dax_session_fault(f.s, BASE + 0x4000 + 0x1234), ==, 1);
	g_assert_cmpuint(rec_count(&f.rec), ==, 2);
	b = snap(&f, 2, &len);

	fx_open_path(&g, 0, 0, f.path);
	g_assert_cmpint(dax_session_restore(g.s, b, len), ==, 0);
	/* seed: handle_stage2_fault_out_of_window_returns_false_without_lock */
	g_assert_cmpint(dax_session_fault(g.s, 0x10000), ==, 0);
	g_assert_cmpint(dax_session_fault(g.s, BASE + WLEN + 0x1000), ==, 0);
	g_assert_cmpint(dax_session_fault(g.s, BASE - 1), ==, 0);
	/* seed: ..._in_window_but_no_slot_returns_false */
	g_assert_cmpint(dax_session_fault(g.s, BASE + 0x100000), ==, 0);
	g_assert_cmpint(dax_session_fault(g.s, BASE + 0x8000), ==, 0);
	g_assert_cmpuint(rec_count(&g.rec), ==, 0);
	/* seed: handle_stage2_fault_rehydrates_restored_slot */
	g_assert_cmpint(dax_session_fault(g.s, BASE + 0x40000 + 0x1234), ==, 1);
	g_assert_cmpuint(rec_count(&g.rec), ==, 1);
	c = rec_get(&g.rec, 0);
	g_assert_cmphex(c.gpa, ==, BASE + 0x40000);
	g_assert_cmphex(c.len, ==, 0x4000);
	g_assert_cmphex(c.foffset, ==, 0x5000);
	g_assert_cmpuint(c.prot, ==, DAX_PROT_READ | DAX_PROT_WRITE);
	g_assert_cmpint(dax_session_fault(g.s, BASE + 0x40000 + 0x3fff), ==, 1);
	g_assert_cmpuint(rec_count(&g.rec), ==, 1);
	g_assert_cmpint(dax_session_stats(g.s, &st), ==, 0);
	g_assert_cmpuint(st.faults, ==, 1);
	g_assert_cmpuint(st.bound_mappings, ==, 1);
	/* mapper failure: slot stays unbound, a later fault retries */
	g.rec.fail_map = ENOMEM;
	g_assert_cmpint(dax_session_fault(g.s, BASE + 0x4000), ==, -ENOMEM);
	g.rec.fail_map = 0;
	g_assert_cmpint(dax_session_fault(g.s, BASE + 0x4000), ==, 1);
	/* KVM_EXIT_MEMORY_FAULT (struct kvm_run built by hand: no kernel makes one on demand) */
	{
		struct kvm_run *run = g_malloc0(sizeof(*run));
		uint64_t mf[3] = { 0, BASE + 0x40000 + 0x10, 8 };
		g_assert_cmpint(dax_session_restore(g.s, b, len), ==, 0);
		run->exit_reason = KVM_EXIT_MEMORY_FAULT;
		memcpy(&run->mmio, mf, sizeof(mf));
		g_assert_cmpint(dax_session_handle_kvm_exit(g.s, run), ==, 1);
		g_assert_cmpuint(rec_count(&g.rec), ==, 5);
		/* a second one for a bound slot: re-entering cannot help */
		g_assert_cmpint(dax_session_handle_kvm_exit(g.s, run), ==, -EFAULT);
		mf[1] = BASE + 0x100000;
		memcpy(&run->mmio, mf, sizeof(mf));
		g_assert_cmpint(dax_session_handle_kvm_exit(g.s, run), ==, 0);
		run->exit_reason = KVM_EXIT_HLT;
		g_assert_cmpint(dax_session_handle_kvm_exit(g.s, run), ==, 0);
		g_free(run);
	}
	/* removing an unbound slot makes no mapper call */
	g_assert_cmpint(dax_session_restore(g.s, b, len), ==, 0);
	g_assert_cmpint(dax_session_remove(g.s, &(struct dax_range){ 0x4000, 0x4000 }, 1), ==, 0);
	g_assert_cmpuint(rec_count(&g.rec), ==, 6);   /* 2 maps, 2 unmaps, 1 map, 1 unmap: none for the remove */
	fx_close(&g);
	fx_close(&f);
}

static void test_fault_stale(void)
{
	struct fx f, g;
	g_autofree uint8_t *b = NULL, *b1 = NULL;
	size_t len, len1;
	int fd;

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 0 }), ==, 0);
	b = snap(&f, 2, &len);
	b1 = snap(&f, 1, &len1);
	/* a different file (new inode) behind the same node */
	fx_open(&g, 0, 0);
	fx_close(&f);
	g_assert_cmpint(dax_session_restore(g.s, b, len), ==, 0);
	g_assert_cmpint(dax_session_fault(g.s, BASE), ==, -ESTALE);
	g_assert_cmpuint(rec_count(&g.rec), ==, 0);
	/* v1 blobs carry no identity: accepted */
	g_assert_cmpint(dax_session_restore(g.s, b1, len1), ==, 0);
	g_assert_cmpint(dax_session_fault(g.s, BASE), ==, 1);
	/* the same file grown after the snapshot */
	g_free(b);
	b = snap(&g, 2, &len);
	g_assert_cmpint(dax_session_restore(g.s, b, len), ==, 0);
	fd = open(g.path, O_WRONLY | O_APPEND);
	g_assert_cmpint(write(fd, "x", 1), ==, 1);
	close(fd);
	g_assert_cmpint(dax_session_fault(g.s, BASE), ==, -ESTALE);
	g_assert_cmpint(dax_session_fault(g.s, BASE), ==, -ESTALE);
	{
		struct dax_stats st = { .size = sizeof(st) };
		g_assert_cmpint(dax_session_stats(g.s, &st), ==, 0);
		g_assert_cmpint(dax_session_rejects(g.s, -ESTALE), ==, 3);
		g_assert_cmpuint(st.bound_mappings, ==, 0);
	}
	/* once a node is verified, the guest's own writes do not make its other slots stale */
	g_assert_cmpint(dax_session_reset(g.s), ==, 0);
	g_assert_cmpint(dax_session_setup(g.s, 7, &(struct dax_setup_req){ 1, 0, A, R | W, 0 }), ==, 0);
	g_assert_cmpint(dax_session_setup(g.s, 7, &(struct dax_setup_req){ 1, A, A, R | W, A }), ==, 0);
	g_free(b);
	b = snap(&g, 2, &len);
	g_assert_cmpint(dax_session_restore(g.s, b, len), ==, 0);
	g_assert_cmpint(dax_session_fault(g.s, BASE), ==, 1);
	g_assert_cmpint(dax_session_handle_mmio(g.s, BASE + 8, (uint8_t *)"zz", 2, 1), ==, 1);
	{
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { 12345, 0 } };
		g_assert_cmpint(utimensat(AT_FDCWD, g.path, ts, 0), ==, 0);   /* make sure mtime moved */
	}
	g_assert_cmpint(dax_session_fault(g.s, BASE + A), ==, 1);
	fx_close(&g);
}

/*
 * A setup keeps no identity of its own (the table skips the fstat):
 * dax_session_list and a v2 snapshot give a bound slot's file as it is
 * when they run, once per node. A restored node is still checked by its
 * first open, a setup's too: once that verified it, the guest's writes
 * do not make the node's other restored slots stale.
 */
static void test_setup_identity(void)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 12345, 0 } };
	g_autofree struct dax_mapping *v = NULL;
	g_autofree uint8_t *b = NULL;
	struct fx f;
	struct stat st;
	size_t n, len;
	int fd;

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R | W, 0 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, A, A, R, 2 * A }), ==, 0);
	g_assert_cmpint(stat(f.path, &st), ==, 0);
	g_assert_cmpint(dax_session_list(f.s, &v, &n), ==, 2);
	for (size_t i = 0; i < n; i++) {
		g_assert_cmpuint(v[i].id.valid, ==, 1);
		g_assert_cmpuint(v[i].id.ino, ==, st.st_ino);
		g_assert_cmpuint(v[i].id.size, ==, (uint64_t)st.st_size);
		g_assert_cmpint(v[i].id.mtime_sec, ==, st.st_mtim.tv_sec);
	}
	g_free(g_steal_pointer(&v));
	/* the file changes: what the list says is what it is now, not what it was at setup */
	g_assert_cmpint(utimensat(AT_FDCWD, f.path, ts, 0), ==, 0);
	fd = open(f.path, O_WRONLY | O_APPEND);
	g_assert_cmpint(write(fd, "x", 1), ==, 1);
	close(fd);
	g_assert_cmpint(stat(f.path, &st), ==, 0);
	g_assert_cmpint(dax_session_list(f.s, &v, &n), ==, 2);
	g_assert_cmpuint(v[1].id.size, ==, (uint64_t)st.st_size);
	g_assert_cmpint(v[1].id.mtime_sec, ==, st.st_mtim.tv_sec);
	g_assert_cmpint(v[1].id.mtime_nsec, ==, st.st_mtim.tv_nsec);
	/* restored, unchanged: a setup of the node checks it (verified) ... */
	b = snap(&f, 2, &len);
	g_assert_cmpint(dax_session_restore(f.s, b, len), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 4 * A }), ==, 0);
	/* ... so the guest's writes since do not make the restored slots stale */
	ts[1].tv_sec = 23456;
	g_assert_cmpint(utimensat(AT_FDCWD, f.path, ts, 0), ==, 0);
	g_assert_cmpint(dax_session_fault(f.s, BASE), ==, 1);
	g_assert_cmpint(dax_session_fault(f.s, BASE + 2 * A), ==, 1);
	fx_close(&f);
}

static void test_mmio(void)
{
	struct fx f;
	uint8_t d[8];
	g_autofree uint8_t *b = NULL;
	size_t len;
	uint8_t back[4];
	int fd;

	fx_open(&f, 0, 0);
	/* RO slot at moffset 0 over file offset 0x4000; RW slot at 0x10000; a slot past EOF */
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0x4000, A, R, 0 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 11, &(struct dax_setup_req){ 1, 0x8000, A, R | W, 0x10000 }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 13, &(struct dax_setup_req){ 1, 0xfc000, 2 * A, R | W, 0x20000 }), ==, 0);
	b = snap(&f, 2, &len);
	g_assert_cmpint(dax_session_restore(f.s, b, len), ==, 0);
	/* nodes 7, 11, 13 share one file here: bind 13 before 11's write moves mtime */
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x20000, d, 1, 0), ==, 1);

	memset(d, 0xee, sizeof(d));
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x123, d, 4, 0), ==, 1);
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpuint(d[i], ==, dax_test_pattern(0x4000 + 0x123 + i));
	g_assert_cmpuint(d[4], ==, 0xee);
	/* bound now; a second MMIO (another vCPU's) is completed too */
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x200, d, 8, 0), ==, 1);
	g_assert_cmpuint(d[7], ==, dax_test_pattern(0x4000 + 0x207));
	/* write to a read-only slot */
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x10, d, 4, 1), ==, -EACCES);
	/* write lands in the file */
	memcpy(d, "WXYZ", 4);
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x10000 + 0x40, d, 4, 1), ==, 1);
	fd = open(f.path, O_RDONLY);
	g_assert_cmpint(pread(fd, back, 4, 0x8040), ==, 4);
	g_assert_cmpmem(back, 4, "WXYZ", 4);
	/* past end of file: reads zeros, writes dropped, the file does not grow */
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x20000 + 0x4000 + 8, d, 8, 0), ==, 1);
	g_assert_cmpmem(d, 8, "\0\0\0\0\0\0\0\0", 8);
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x20000 + 0x3ffe, d, 4, 0), ==, 1);
	g_assert_cmpuint(d[0], ==, dax_test_pattern(0xffffe));
	g_assert_cmpuint(d[1], ==, dax_test_pattern(0xfffff));
	g_assert_cmpuint(d[2], ==, 0);
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x20000 + 0x3ffe, (uint8_t *)"abcd", 4, 1), ==, 1);
	{
		struct stat st;
		g_assert_cmpint(fstat(fd, &st), ==, 0);
		g_assert_cmpint(st.st_size, ==, 1 << 20);
		g_assert_cmpint(pread(fd, back, 2, 0xffffe), ==, 2);
		g_assert_cmpmem(back, 2, "ab", 2);
	}
	close(fd);
	/* not ours / bad arguments */
	g_assert_cmpint(dax_session_handle_mmio(f.s, 0x1000, d, 4, 0), ==, 0);
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + 0x50000, d, 4, 0), ==, 0);
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE, d, 0, 0), ==, -EINVAL);
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE, d, 9, 0), ==, -EINVAL);
	g_assert_cmpint(dax_session_handle_mmio(f.s, BASE + A - 2, d, 4, 0), ==, -EINVAL);
	fx_close(&f);
}

static void test_translate(void)
{
	struct fx f;
	void *hva;
	uint64_t len;

	fx_open(&f, 0, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, 2 * A, R, A }), ==, 0);
	g_assert_cmpint(dax_session_translate(f.s, BASE + A + 0x10, &hva, &len), ==, 0);
	g_assert_cmphex((uintptr_t)hva, ==, 0x4000000000ull + 0x10);
	g_assert_cmphex(len, ==, 2 * A - 0x10);
	g_assert_cmpint(dax_session_translate(f.s, BASE, &hva, &len), ==, -ENOENT);
	g_assert_cmpint(dax_session_translate(f.s, 0, &hva, &len), ==, -ENOENT);
	fx_close(&f);
}

static void test_stats_histograms(void)
{
	struct fx f;
	struct dax_stats st = { .size = sizeof(st) };
	uint64_t n = 0;

	fx_open(&f, 0, 0);
	for (unsigned i = 0; i < 10; i++)
		g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, i * A }), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, 0, 0 }), ==, -EINVAL);
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpint(dax_session_remove(f.s, &(struct dax_range){ i * A, A }, 1), ==, 0);
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_cmpuint(st.setups, ==, 10);
	g_assert_cmpuint(st.removes, ==, 4);
	g_assert_cmpuint(st.live_mappings, ==, 6);
	g_assert_cmpuint(st.bound_mappings, ==, 6);
	g_assert_cmpuint(st.cap, ==, WLEN);
	for (unsigned i = 0; i < DAX_HIST_BUCKETS; i++)
		n += st.setup_ns[i];
	g_assert_cmpuint(n, ==, 11);
	n = 0;
	for (unsigned i = 0; i < DAX_HIST_BUCKETS; i++)
		n += st.remove_ns[i];
	g_assert_cmpuint(n, ==, 4);
	/* one failed call, counted under its errno and in the total */
	g_assert_cmpuint(st.rejects, ==, 1);
	g_assert_cmpint(dax_session_rejects(f.s, -EINVAL), ==, 1);
	g_assert_cmpint(dax_session_rejects(f.s, -EPERM), ==, 0);
	g_assert_cmpint(dax_session_rejects(f.s, 0), ==, 1);
	g_assert_cmpint(dax_session_rejects(f.s, EINVAL), ==, -EINVAL);
	g_assert_cmpint(dax_session_rejects(f.s, -4096), ==, -EINVAL);
	g_assert_cmpint(dax_session_rejects(NULL, 0), ==, -EINVAL);
	g_assert_cmpint(dax_session_stats(f.s, NULL), ==, -EINVAL);
	fx_close(&f);
}

/* ---- threads ------------------------------------------------------------------------ */

struct thr {
	struct fx *f;
	unsigned id;
	gint fails;
};

static gpointer worker(gpointer p)
{
	struct thr *t = p;

	for (unsigned round = 0; round < 300; round++) {
		/* each thread owns 8 slots; all threads also race on a shared one */
		uint64_t moff = ((uint64_t)t->id * 8 + round % 8) * A;
		struct dax_setup_req q = { 1, 0, A, R, moff };
		int r = dax_session_setup(t->f->s, 7, &q);
		if (r != 0 && r != -EEXIST)
			g_atomic_int_inc(&t->fails);
		if (r == 0 && dax_session_remove(t->f->s, &(struct dax_range){ moff, A }, 1) != 0)
			g_atomic_int_inc(&t->fails);
		q.moffset = 64 * A;
		r = dax_session_setup(t->f->s, 7, &q);
		if (r != 0)
			g_atomic_int_inc(&t->fails);
		r = dax_session_fault(t->f->s, BASE + 64 * A + 8);
		if (r < 0)
			g_atomic_int_inc(&t->fails);
		dax_session_remove(t->f->s, &(struct dax_range){ 64 * A, A }, 1);
	}
	return NULL;
}

static void test_threads(void)
{
	struct fx f;
	struct thr t[4];
	GThread *th[4];
	struct dax_stats st = { .size = sizeof(st) };

	fx_open(&f, 0, 0);
	for (unsigned i = 0; i < 4; i++) {
		t[i] = (struct thr){ &f, i, 0 };
		th[i] = g_thread_new("w", worker, &t[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		g_thread_join(th[i]);
		g_assert_cmpint(t[i].fails, ==, 0);
	}
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_cmpuint(st.live_mappings, ==, 0);
	g_assert_cmpuint(st.mapped_bytes, ==, 0);
	/* every map has its unmap: the recording mapper saw balanced calls */
	{
		guint maps = 0, fresh = 0, unmaps = 0;
		for (guint i = 0; i < rec_count(&f.rec); i++) {
			struct rec_call c = rec_get(&f.rec, i);
			if (c.op == 'M') {
				maps++;
				fresh += !c.replace;
			} else
				unmaps++;
		}
		g_assert_cmpuint(fresh, ==, unmaps);
		g_assert_cmpuint(maps, ==, st.setups + st.faults);
	}
	fx_close(&f);
}

/* A file we may only read (immutable, so root cannot write it either): -EACCES for write mappings. */
static void test_read_only_file(void)
{
	struct fx f;
	int fd, flags, r;

	fx_open(&f, 0, 0);
	f.ro_path = dax_test_file(A);
	fd = open(f.ro_path, O_RDONLY);
	g_assert_cmpint(fd, >=, 0);
	flags = FS_IMMUTABLE_FL;
	r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
	if (r < 0) {
		g_autofree char *why = g_strdup_printf("cannot make a file immutable here: %s", g_strerror(errno));
		close(fd);
		fx_close(&f);
		g_test_skip(why);
		return;
	}
	g_assert_cmpint(dax_table_add(f.table, 77, f.ro_path), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 77, &(struct dax_setup_req){ 1, 0, A, R | W, 0 }), ==, -EACCES);
	g_assert_cmpuint(live(&f), ==, 0);
	g_assert_cmpint(dax_session_setup(f.s, 77, &(struct dax_setup_req){ 1, 0, A, R, 0 }), ==, 0);
	/* the guest's upgrade of it fails and keeps the read mapping */
	g_assert_cmpint(dax_session_setup(f.s, 77, &(struct dax_setup_req){ 1, 0, A, R | W, 0 }), ==, -EACCES);
	g_assert_cmpuint(live(&f), ==, 1);
	g_assert_cmpuint(rec_get(&f.rec, 0).prot, ==, DAX_PROT_READ);
	flags = 0;
	g_assert_cmpint(ioctl(fd, FS_IOC_SETFLAGS, &flags), ==, 0);
	close(fd);
	fx_close(&f);
}

/* ---- slot index ------------------------------------------------------------------------ */

/* Random inserts/removes against a bitmap; find_le/get checked at every step's neighbourhood. */
static void test_slot_index(void)
{
	enum { N = 3000 };
	static bool have[N];
	struct dax_slots x;
	GRand *rnd = g_rand_new_with_seed(42);
	struct dax_mapping *v = g_new0(struct dax_mapping, N / 2);
	size_t count = 0;

	memset(have, 0, sizeof(have));
	dax_slots_init(&x);
	for (unsigned step = 0; step < 40000; step++) {
		unsigned k = (unsigned)g_rand_int_range(rnd, 0, N);
		struct dax_slot *sl = dax_slots_get(&x, (uint64_t)k * 16);

		g_assert_true((sl != NULL) == have[k]);
		if (sl) {
			dax_slots_remove(&x, sl);
			have[k] = false;
			count--;
		} else if (g_rand_boolean(rnd) || step < 5000) {
			sl = dax_slot_new();
			sl->moffset = (uint64_t)k * 16;
			g_assert_cmpint(dax_slots_insert(&x, sl), ==, 0);
			have[k] = true;
			count++;
		}
		g_assert_cmpuint(x.count, ==, count);
		/* find_le of a key between slots */
		{
			uint64_t q = (uint64_t)g_rand_int_range(rnd, 0, N) * 16 + 7;
			struct dax_slot *f = dax_slots_find_le(&x, q);
			int j = (int)(q / 16);
			while (j >= 0 && !have[j])
				j--;
			if (j < 0)
				g_assert_null(f);
			else
				g_assert_cmpuint(f->moffset, ==, (uint64_t)j * 16);
		}
	}
	/* iteration is sorted and complete */
	{
		struct dax_slot *sl;
		uint64_t prev = 0;
		size_t n = 0;
		dax_slots_foreach(&x, sl) {
			g_assert_true(n == 0 || sl->moffset > prev);
			g_assert_true(have[sl->moffset / 16]);
			prev = sl->moffset;
			n++;
		}
		g_assert_cmpuint(n, ==, count);
	}
	dax_slots_clear(&x);
	/* bulk build, then mixed inserts/removes on the arena's slots */
	for (unsigned i = 0; i < N / 2; i++)
		v[i] = (struct dax_mapping){ .moffset = (uint64_t)i * 32, .len = 16 };
	g_assert_cmpint(dax_slots_build(&x, v, N / 2), ==, 0);
	g_assert_cmpuint(x.count, ==, N / 2);
	for (unsigned i = 0; i < N / 2; i++) {
		struct dax_slot *sl = dax_slot_new();
		sl->moffset = (uint64_t)i * 32 + 16;
		g_assert_cmpint(dax_slots_insert(&x, sl), ==, 0);
	}
	for (unsigned i = 0; i < N; i++)
		g_assert_cmpuint(dax_slots_find_le(&x, (uint64_t)i * 16 + 3)->moffset, ==, (uint64_t)i * 16);
	for (unsigned i = 0; i < N; i += 2)
		dax_slots_remove(&x, dax_slots_get(&x, (uint64_t)i * 16));
	g_assert_cmpuint(x.count, ==, N / 2);
	dax_slots_clear(&x);
	g_free(v);
	g_rand_free(rnd);
}

/* ---- table backend ------------------------------------------------------------------- */

static void test_table(void)
{
	struct dax_table *t;
	struct dax_file_id id, id2;
	g_autofree char *path = dax_test_file(12345);
	struct stat st;
	int fd;

	g_assert_cmpint(dax_table_new(&t), ==, 0);
	g_assert_cmpint(dax_table_add(t, 1, path), ==, 0);
	g_assert_cmpint(dax_table_add(t, 2, "/nonexistent/x"), ==, -ENOENT);
	g_assert_cmpint(dax_table_add(t, 3, "/tmp"), ==, -EISDIR);
	g_assert_cmpint(dax_table_add(t, 3, NULL), ==, -EINVAL);
	fd = dax_table_open(t, 1, DAX_FH_NONE, DAX_PROT_READ | DAX_PROT_WRITE, &id);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	g_assert_cmpuint(id.valid, ==, 1);
	g_assert_cmpuint(id.ino, ==, st.st_ino);
	g_assert_cmpuint(id.size, ==, 12345);
	g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	g_assert_cmpint(dax_file_id_of_path(path, &id2), ==, 0);
	g_assert_true(dax_file_id_equal(&id, &id2));
	g_assert_cmpint(dax_file_id_of_path("/nonexistent", &id2), ==, -ENOENT);
	g_assert_cmpint(dax_table_open(t, 9, DAX_FH_NONE, DAX_PROT_READ, &id), ==, -ENOENT);
	g_assert_cmpint(dax_table_remove(t, 1), ==, 0);
	g_assert_cmpint(dax_table_remove(t, 1), ==, -ENOENT);
	g_assert_cmpint(dax_table_open(t, 1, DAX_FH_NONE, DAX_PROT_READ, &id), ==, -ENOENT);
	dax_table_free(t);
	dax_table_free(NULL);
	g_unlink(path);
}

/* An id as dax_file_id_of_fd/_of_path document it: fstat's fields, valid = 1. */
static void assert_id_is_stat(const struct dax_file_id *id, const struct stat *st)
{
	g_assert_cmpuint(id->valid, ==, 1);
	g_assert_cmpuint(id->dev, ==, st->st_dev);
	g_assert_cmpuint(id->ino, ==, st->st_ino);
	g_assert_cmpuint(id->size, ==, (uint64_t)st->st_size);
	g_assert_cmpint(id->mtime_sec, ==, st->st_mtim.tv_sec);
	g_assert_cmpuint(id->mtime_nsec, ==, (uint32_t)st->st_mtim.tv_nsec);
}

static void test_file_id_of_fd(void)
{
	g_autofree char *path = dax_test_file(8192);
	g_autofree char *other = dax_test_file(8192);
	g_autofree char *dir = g_dir_make_tmp("dax-id-XXXXXX", NULL);
	struct dax_file_id id, id2, before, poison;
	const struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 123456789 } };
	struct stat st;
	int fd, fd2, p[2];

	/* Same file: the fd and the path agree, field for field with fstat. */
	fd = open(path, O_RDWR | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(dax_file_id_of_fd(fd, &id), ==, 0);
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	assert_id_is_stat(&id, &st);
	g_assert_cmpint(dax_file_id_of_path(path, &id2), ==, 0);
	g_assert_true(dax_file_id_equal(&id, &id2));
	/* What the table backend records for the same file is the same id. */
	{
		struct dax_table *t;
		int tfd;

		g_assert_cmpint(dax_table_new(&t), ==, 0);
		g_assert_cmpint(dax_table_add(t, 1, path), ==, 0);
		tfd = dax_table_open(t, 1, DAX_FH_NONE, DAX_PROT_READ, &id2);
		g_assert_cmpint(tfd, >=, 0);
		g_assert_true(dax_file_id_equal(&id, &id2));
		close(tfd);
		dax_table_free(t);
	}

	/* A different file (same size, same contents) differs. */
	fd2 = open(other, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd2, >=, 0);
	g_assert_cmpint(dax_file_id_of_fd(fd2, &id2), ==, 0);
	g_assert_false(dax_file_id_equal(&id, &id2));
	g_assert_cmpuint(id.ino, !=, id2.ino);
	close(fd2);

	/* Rewritten through another descriptor: the id is fstat's now, not
	 * the one at open; a new size shows, and so does a new mtime alone. */
	before = id;
	fd2 = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	g_assert_cmpint(fd2, >=, 0);
	g_assert_cmpint(write(fd2, "rewritten", 9), ==, 9);
	close(fd2);
	g_assert_cmpint(dax_file_id_of_fd(fd, &id), ==, 0);
	g_assert_false(dax_file_id_equal(&before, &id));
	g_assert_cmpuint(id.ino, ==, before.ino);
	g_assert_cmpuint(id.size, ==, 9);
	before = id;
	g_assert_cmpint(futimens(fd, ts), ==, 0);
	g_assert_cmpint(dax_file_id_of_fd(fd, &id), ==, 0);
	g_assert_false(dax_file_id_equal(&before, &id));
	g_assert_cmpuint(id.size, ==, before.size);
	g_assert_cmpint(id.mtime_sec, ==, 1000000000);
	g_assert_cmpuint(id.mtime_nsec, ==, 123456789);
	g_assert_cmpint(dax_file_id_of_path(path, &id2), ==, 0);
	g_assert_true(dax_file_id_equal(&id, &id2));

	/* Failures leave *id untouched: a bad fd, a closed one, a NULL id. */
	memset(&poison, 0xa5, sizeof(poison));
	id = poison;
	g_assert_cmpint(dax_file_id_of_fd(-1, &id), ==, -EBADF);
	g_assert_cmpmem(&id, sizeof(id), &poison, sizeof(poison));
	close(fd);
	g_assert_cmpint(dax_file_id_of_fd(fd, &id), ==, -EBADF);
	g_assert_cmpmem(&id, sizeof(id), &poison, sizeof(poison));
	g_assert_cmpint(dax_file_id_of_fd(0, NULL), ==, -EINVAL);

	/* Not regular files: described as fstat sees them (documented), and
	 * a directory's id from its fd and from its path agree. */
	g_assert_nonnull(dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(dax_file_id_of_fd(fd, &id), ==, 0);
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	assert_id_is_stat(&id, &st);
	g_assert_cmpint(dax_file_id_of_path(dir, &id2), ==, 0);
	g_assert_true(dax_file_id_equal(&id, &id2));
	close(fd);
	g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
	g_assert_cmpint(dax_file_id_of_fd(p[0], &id), ==, 0);
	g_assert_cmpint(fstat(p[0], &st), ==, 0);
	g_assert_true(S_ISFIFO(st.st_mode));
	assert_id_is_stat(&id, &st);
	g_assert_cmpint(dax_file_id_of_fd(p[1], &id2), ==, 0);
	g_assert_true(dax_file_id_equal(&id, &id2));   /* both ends: one pipe */
	close(p[0]);
	close(p[1]);

	g_assert_cmpint(g_rmdir(dir), ==, 0);
	g_unlink(path);
	g_unlink(other);
}

/* ---- allocation failures and the log hook ----------------------------------------------- */

/* Everything a failed call must leave as it was: list, counters, snapshot bytes. */
static char *full_state(struct fx *f)
{
	g_autofree char *list = state(f);
	g_autofree char *b64 = NULL;
	struct dax_stats st = { .size = sizeof(st) };
	size_t len;
	void *b = snap(f, 2, &len);

	b64 = g_base64_encode(b, len);
	free(b);
	g_assert_cmpint(dax_session_stats(f->s, &st), ==, 0);
	return g_strdup_printf("%s live=%" G_GUINT64_FORMAT " bound=%" G_GUINT64_FORMAT
			       " setups=%" G_GUINT64_FORMAT " upgrades=%" G_GUINT64_FORMAT
			       " removes=%" G_GUINT64_FORMAT " faults=%" G_GUINT64_FORMAT
			       " restores=%" G_GUINT64_FORMAT " resets=%" G_GUINT64_FORMAT " blob=%s",
			       list, st.live_mappings, st.bound_mappings, st.setups, st.upgrades, st.removes,
			       st.faults, st.restores, st.resets, b64);
}

typedef int (*alloc_op)(struct fx *f, const void *arg);

/*
 * Run op with its 1st, 2nd, ... allocation failing until it gets through
 * without a failure (MK_FAIL_EACH_ALLOC): every failed run returns -ENOMEM
 * and leaves the session exactly as it was before the first. Returns op's
 * result of the run that passed (>= 0), *nallocs the failed runs.
 */
static int fail_each_alloc(struct fx *f, alloc_op op, const void *arg, long *nallocs)
{
	g_autofree char *before = full_state(f);
	int r;

	*nallocs = MK_FAIL_EACH_ALLOC(r, op(f, arg), {
		g_autofree char *after = full_state(f);

		g_assert_cmpstr(before, ==, after);
	});
	return r;
}

static int op_setup(struct fx *f, const void *arg)
{
	return dax_session_setup(f->s, 7, arg);
}

static int op_remove(struct fx *f, const void *arg)
{
	const GArray *a = arg;

	return dax_session_remove(f->s, (const struct dax_range *)(const void *)a->data, a->len);
}

static int op_remove_raw(struct fx *f, const void *arg)
{
	const GByteArray *a = arg;

	return dax_session_remove_raw(f->s, a->data, a->len);
}

static int op_restore(struct fx *f, const void *arg)
{
	const GBytes *b = arg;
	size_t len;
	const void *p = g_bytes_get_data((GBytes *)b, &len);

	return dax_session_restore(f->s, p, len);
}

static int op_snapshot(struct fx *f, const void *arg)
{
	void *b = NULL;
	size_t len;
	int r = dax_session_snapshot(f->s, GPOINTER_TO_UINT(arg), &b, &len);

	free(b);
	return r;
}

static int op_list(struct fx *f, const void *arg)
{
	struct dax_mapping *v = NULL;
	size_t n;
	int r = dax_session_list(f->s, &v, &n);

	free(v);
	return r;
}

static void test_alloc_failures_session(void)
{
	struct fx f;
	GArray *ranges = g_array_new(FALSE, FALSE, sizeof(struct dax_range));
	GByteArray *raw = g_byte_array_new();
	g_autofree void *blob = NULL;
	GBytes *bytes;
	size_t blen;
	uint32_t count;
	long n, total = 0;

	fx_open(&f, 0, 0);
	/* 200 slots: setups that split index chunks and grow the chunk directory */
	for (unsigned i = 0; i < 200; i++) {
		struct dax_setup_req q = req((uint64_t)(i * 7 % 200) * 2 * A, 0, A, R);
		g_assert_cmpint(fail_each_alloc(&f, op_setup, &q, &n), ==, 0);
		total += n;
	}
	g_assert_cmpint(total, >, 200);         /* each setup allocates; splits more */
	g_assert_cmpuint(live(&f), ==, 200);
	/* an upgrade in place allocates nothing */
	{
		struct dax_setup_req q = req(0, 0, A, R | W);
		g_assert_cmpint(fail_each_alloc(&f, op_setup, &q, &n), ==, 0);
		g_assert_cmpint(n, ==, 0);
	}
	/* the array, and the per-node identities of bound slots (array, hash) */
	g_assert_cmpint(fail_each_alloc(&f, op_list, NULL, &n), ==, 200);
	g_assert_cmpint(n, ==, 4);
	g_assert_cmpint(fail_each_alloc(&f, op_snapshot, GUINT_TO_POINTER(1), &n), ==, 0);
	g_assert_cmpint(fail_each_alloc(&f, op_snapshot, GUINT_TO_POINTER(2), &n), ==, 0);
	g_assert_cmpint(n, >=, 2);
	blob = snap(&f, 2, &blen);

	/* a batch remove of 20 slots (more than fit the stack), then a single one */
	for (unsigned i = 0; i < 20; i++)
		g_array_append_val(ranges, ((struct dax_range){ (uint64_t)i * 2 * A, A }));
	g_assert_cmpint(fail_each_alloc(&f, op_remove, ranges, &n), ==, 0);
	g_assert_cmpint(n, ==, 1);
	g_array_set_size(ranges, 0);
	g_array_append_val(ranges, ((struct dax_range){ 20 * 2 * A, A }));
	g_assert_cmpint(fail_each_alloc(&f, op_remove, ranges, &n), ==, 0);
	g_assert_cmpint(n, ==, 0);
	count = 12;
	g_byte_array_append(raw, (const uint8_t *)&count, 4);
	for (unsigned i = 0; i < count; i++) {
		struct dax_range e = { (uint64_t)(21 + i) * 2 * A, A };
		g_byte_array_append(raw, (const uint8_t *)&e, sizeof(e));
	}
	g_assert_cmpint(fail_each_alloc(&f, op_remove_raw, raw, &n), ==, 0);
	g_assert_cmpint(n, >=, 1);
	g_assert_cmpuint(live(&f), ==, 200 - 33);

	/* restore of the 200-slot blob: decode, index, identities */
	bytes = g_bytes_new_static(blob, blen);
	g_assert_cmpint(fail_each_alloc(&f, op_restore, bytes, &n), ==, 0);
	g_assert_cmpint(n, >=, 4);
	g_assert_cmpuint(live(&f), ==, 200);
	g_bytes_unref(bytes);
	g_array_free(ranges, TRUE);
	g_byte_array_free(raw, TRUE);
	fx_close(&f);
}

/* Lines of a file (mappings), for "nothing left behind" (open fds: mk_test_open_fds). */
static unsigned count_lines(const char *path)
{
	g_autofree char *text = NULL;
	unsigned n = 0;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	for (const char *p = text; *p; p++)
		n += *p == '\n';
	return n;
}

/* dax_session_new, dax_table_new/add, dax_blob_build/parse under failing allocations. */
static void test_alloc_failures_objects(void)
{
	struct rec_mapper rec;
	struct dax_mapper_ops ops;
	struct dax_table *t = NULL;
	struct dax_session *s = NULL;
	struct dax_config cfg = { .size = sizeof(cfg), .base_gpa = BASE, .window_len = WLEN, .mapper = DAX_MAPPER_CUSTOM };
	g_autofree char *path = dax_test_file(A);
	struct dax_mapping m[3] = {
		{ .moffset = 2 * A, .len = A, .nodeid = 7, .prot = DAX_PROT_READ },
		{ .moffset = 0, .len = A, .nodeid = 7, .prot = DAX_PROT_READ },
		{ .moffset = 8 * A, .len = 2 * A, .nodeid = 9, .prot = DAX_PROT_READ | DAX_PROT_WRITE },
	};
	struct dax_blob_header h = { .version = 2, .align_log2 = 14, .base_gpa = BASE,
				     .window_len = WLEN, .cap = WLEN };
	void *blob = NULL;
	size_t len = 0;
	struct dax_backend be;
	struct dax_blob_header h2;
	struct dax_mapping *v = NULL;
	const char *why = NULL;
	unsigned fds, maps;
	long n;
	int r;

	rec_init(&rec);
	ops = rec_ops_template;
	ops.data = &rec;
	cfg.ops = &ops;
	MK_FAIL_EACH_ALLOC(r, dax_table_new(&t), g_assert_null(t));
	g_assert_cmpint(r, ==, 0);
	for (uint64_t node = 1; node <= 40; node++) {
		struct dax_file_id id;
		int fd;

		/* not added, nothing half-made */
		MK_FAIL_EACH_ALLOC(r, dax_table_add(t, node, path),
				   g_assert_cmpint(dax_table_open(t, node, DAX_FH_NONE, DAX_PROT_READ, &id),
						   ==, -ENOENT));
		g_assert_cmpint(r, ==, 0);
		fd = dax_table_open(t, node, DAX_FH_NONE, DAX_PROT_READ, &id);
		g_assert_cmpint(fd, >=, 0);
		close(fd);
	}
	be = (struct dax_backend){ dax_table_open, NULL, t };
	MK_FAIL_EACH_ALLOC(r, dax_session_new(&cfg, &be, &s), {
		g_assert_null(s);
		g_assert_cmpuint(rec_count(&rec), ==, 0);
	});
	g_assert_cmpint(r, ==, 0);
	dax_session_free(s);
	s = NULL;
	/* the window mapper (host-only: no VM): a failed new leaves no fd and no mapping behind */
	{
		struct dax_config wc = { .size = sizeof(wc), .base_gpa = BASE, .window_len = 64 * A, .align_log2 = 14 };

		fds = mk_test_open_fds();
		maps = count_lines("/proc/self/maps");
		n = MK_FAIL_EACH_ALLOC(r, dax_session_new_host_only(&wc, &be, &s), {
			g_assert_null(s);
			g_assert_cmpuint(mk_test_open_fds(), ==, fds);
			g_assert_cmpuint(count_lines("/proc/self/maps"), ==, maps);
		});
	}
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpint(n, >=, 2);
	dax_session_free(s);
	s = NULL;
	MK_FAIL_EACH_ALLOC(r, dax_blob_build(&h, m, G_N_ELEMENTS(m), &blob, &len, NULL),
			   g_assert_null(blob));
	g_assert_cmpint(r, ==, 0);
	MK_FAIL_EACH_ALLOC(r, dax_blob_parse(blob, len, &h2, &v, &why), {
		g_assert_null(v);
		g_assert_nonnull(why);
		why = NULL;     /* each run must say why afresh */
	});
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpuint(h2.count, ==, 3);
	free(v);
	free(blob);
	dax_table_free(t);
	g_unlink(path);
	rec_clear(&rec);
}

struct log_rec {
	GPtrArray *msgs;
	int prio;
};

static void log_cb(void *userdata, int priority, const char *msg)
{
	struct log_rec *l = userdata;

	g_ptr_array_add(l->msgs, g_strdup(msg));
	l->prio = priority;
}

/* Refusals explain themselves through the callback; without one nothing is written. */
static void test_log_hook(void)
{
	struct log_rec l = { g_ptr_array_new_with_free_func(g_free), -1 };
	struct fx f;
	int saved = dax_get_log_priority();

	fx_open(&f, 0, 0);
	if (g_test_subprocess()) {
		/* no callback, no LIBDAX_LOG: a refusal prints nothing anywhere */
		dax_set_log_priority(LOG_DEBUG);
		g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 3 }),
				==, -EINVAL);
		g_assert_cmpint(dax_session_remove(f.s, &(struct dax_range){ 0, A }, 1), ==, -ENOENT);
		fx_close(&f);
		return;
	}
	g_test_trap_subprocess(NULL, 0, 0 /* G_TEST_SUBPROCESS_DEFAULT, from GLib 2.74 */);
	g_test_trap_assert_passed();
	g_test_trap_assert_stdout("");
	g_test_trap_assert_stderr("");

	dax_set_log_fn(log_cb, &l);
	dax_set_log_priority(LOG_ERR);
	g_assert_cmpint(dax_get_log_priority(), ==, LOG_ERR);
	/* below the threshold: dropped */
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 3 }), ==, -EINVAL);
	g_assert_cmpuint(l.msgs->len, ==, 0);
	dax_set_log_priority(LOG_DEBUG);
	g_assert_cmpint(dax_get_log_priority(), ==, LOG_DEBUG);
	/* the misaligned field and its value */
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 3 }), ==, -EINVAL);
	g_assert_cmpuint(l.msgs->len, ==, 1);
	g_assert_cmpint(l.prio, ==, LOG_DEBUG);
	g_assert_nonnull(strstr(g_ptr_array_index(l.msgs, 0), "moffset 0x3"));
	/* the limit that was hit */
	g_assert_cmpint(dax_session_remove(f.s, &(struct dax_range){ 0, A }, 1), ==, -ENOENT);
	g_assert_nonnull(strstr(g_ptr_array_index(l.msgs, 1), "no mapping starts at 0x0"));
	{
		struct dax_range many[300] = { { 0, 0 } };
		g_assert_cmpint(dax_session_remove(f.s, many, 300), ==, -EINVAL);
		g_assert_nonnull(strstr(g_ptr_array_index(l.msgs, 2), "300 entries, limit 256"));
	}
	g_assert_cmpint(dax_session_restore(f.s, "DAXS", 4), ==, -EINVAL);
	g_assert_nonnull(strstr(g_ptr_array_index(l.msgs, 3), "truncated"));
	/* back to silent */
	dax_set_log_fn(NULL, NULL);
	g_assert_cmpint(dax_session_setup(f.s, 7, &(struct dax_setup_req){ 1, 0, A, R, 3 }), ==, -EINVAL);
	g_assert_cmpuint(l.msgs->len, ==, 4);
	dax_set_log_priority(saved);
	g_ptr_array_free(l.msgs, TRUE);
	fx_close(&f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dax/session/new-invalid", test_new_invalid);
	g_test_add_func("/dax/session/setup-records", test_setup_records);
	g_test_add_func("/dax/session/remove-undoes-setup", test_remove_undoes_setup);
	g_test_add_func("/dax/session/setup-rejects", test_setup_rejects);
	g_test_add_func("/dax/session/ext-structs", test_ext_structs);
	g_test_add_func("/dax/session/setup-raw", test_setup_raw);
	g_test_add_func("/dax/session/overlap-and-upgrade", test_overlap_and_upgrade);
	g_test_add_func("/dax/session/cap", test_cap);
	g_test_add_func("/dax/session/max-mappings", test_max_mappings);
	g_test_add_func("/dax/session/default-map-limit", test_default_map_limit);
	g_test_add_func("/dax/session/remove-errors", test_remove_errors);
	g_test_add_func("/dax/session/remove-raw", test_remove_raw);
	g_test_add_func("/dax/session/failures", test_mapper_and_backend_failures);
	g_test_add_func("/dax/session/reset", test_reset);
	g_test_add_func("/dax/session/translate", test_translate);
	g_test_add_func("/dax/session/stats", test_stats_histograms);
	g_test_add_func("/dax/session/threads", test_threads);
	g_test_add_func("/dax/snapshot/v1-bytes-round-trip", test_snapshot_v1_bytes);
	g_test_add_func("/dax/snapshot/restore-seed-blob", test_restore_seed_blob);
	g_test_add_func("/dax/snapshot/restore-rejects", test_restore_rejects);
	g_test_add_func("/dax/blob/faults", test_blob_faults);
	g_test_add_func("/dax/snapshot/restore-tears-down-live", test_restore_tears_down_live);
	g_test_add_func("/dax/fault/rebind", test_fault);
	g_test_add_func("/dax/fault/stale", test_fault_stale);
	g_test_add_func("/dax/setup/identity", test_setup_identity);
	g_test_add_func("/dax/fault/mmio", test_mmio);
	g_test_add_func("/dax/table", test_table);
	g_test_add_func("/dax/table/read-only-file", test_read_only_file);
	g_test_add_func("/dax/file-id/of-fd", test_file_id_of_fd);
	g_test_add_func("/dax/slots/random", test_slot_index);
	g_test_add_func("/dax/alloc-failures/session", test_alloc_failures_session);
	g_test_add_func("/dax/alloc-failures/objects", test_alloc_failures_objects);
	g_test_add_func("/dax/log", test_log_hook);
	return g_test_run();
}
