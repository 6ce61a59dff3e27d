/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libsandbox regions: sizes, guard pages, bounds, host/guest lifecycle, zeroing. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "common/kvm.h"
#include "tests/ext-check.h"
#include "tests/kvmtest.h"
#include "tests/log-seen.h"
#include "tests/test-sbx-util.h"
#include "sandbox.h"

#define PG 4096u

static void test_sizes(void)
{
	struct sbx_mem *m = NULL;

	g_assert_cmpint(sbx_mem_new(0, &m), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_new(100, &m), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_new(PG + 1, &m), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_new(UINT64_MAX & ~(uint64_t)(PG - 1), &m), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_new((uint64_t)SIZE_MAX - PG + 1, &m), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_new(PG, NULL), ==, -EINVAL);
	g_assert_null(m);
	g_assert_cmpint(sbx_mem_new(16 * PG, &m), ==, 0);
	g_assert_cmpuint(sbx_mem_size(m), ==, 16 * PG);
	sbx_mem_free(m);
	sbx_mem_free(NULL);
	g_assert_cmpint(sbx_guest_free(NULL), ==, 0);
	sbx_snapshot_unref(NULL);
	sbx_vm_free(NULL);
}

/* A forked child reading p[off] must die of SIGSEGV. */
static void expect_segv(const volatile uint8_t *p, ptrdiff_t off)
{
	int status = 0;
	pid_t pid = fork();

	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		(void)p[off];
		_exit(0);       /* not reached if the guard works */
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGSEGV);
}

/* A forked child touching the page before/after the region must die of SIGSEGV. */
static void test_guard(void)
{
	struct sbx_mem *m;
	volatile uint8_t *p;

	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	p = sbx_mem_host_ptr(m, true);
	p[0] = 1;                       /* the first and last bytes are fine */
	p[4 * PG - 1] = 1;
	expect_segv(p, -1);
	expect_segv(p, 4 * PG);
	sbx_mem_free(m);
}

static void test_bounds(void)
{
	struct sbx_mem *m;
	uint8_t buf[320] = { 0 }, back[320];
	uint64_t v;
	uint32_t v32;

	g_assert_cmpint(sbx_mem_new(2 * PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_write(m, 2 * PG - 64, buf, 64), ==, 0);
	g_assert_cmpint(sbx_mem_write(m, 2 * PG - 63, buf, 64), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_read(m, UINT64_MAX, buf, 1), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_read(m, UINT64_MAX - 7, buf, 16), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_read(m, 8, buf, SIZE_MAX), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_read(m, 2 * PG, buf, 0), ==, 0);
	g_assert_cmpint(sbx_mem_read(m, 2 * PG + 1, buf, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_read(m, 0, NULL, 1), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_fill(m, 1, 0xaa, UINT64_MAX), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_copy(m, 0, 2 * PG - 8, 16), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_copy(m, 2 * PG - 8, 0, 16), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_read_u64(m, 2 * PG - 7, &v), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_write_u64(m, 2 * PG - 4, 1), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_read_u64(NULL, 0, &v), ==, -EINVAL);

	/* Values land where they should, aligned or not, and nothing else moves. */
	g_assert_cmpint(sbx_mem_write_u64(m, 8, 0x1122334455667788ull), ==, 0);
	g_assert_cmpint(sbx_mem_write_u64(m, 19, 0xa1a2a3a4a5a6a7a8ull), ==, 0);
	g_assert_cmpint(sbx_mem_read_u64(m, 8, &v), ==, 0);
	g_assert_cmphex(v, ==, 0x1122334455667788ull);
	g_assert_cmpint(sbx_mem_read_u64(m, 19, &v), ==, 0);
	g_assert_cmphex(v, ==, 0xa1a2a3a4a5a6a7a8ull);
	g_assert_cmpint(sbx_mem_read_u32(m, 8, &v32), ==, 0);
	g_assert_cmphex(v32, ==, 0x55667788u);
	g_assert_cmpint(sbx_mem_read_u64(m, 27, &v), ==, 0);
	g_assert_cmphex(v, ==, 0);

	/* Unaligned copies of every length up to 320 (both chunk widths) round-trip exactly. */
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	for (unsigned off = 0; off < 33; off++)
		for (unsigned len = 0; len <= sizeof(buf); len++) {
			g_assert_cmpint(sbx_mem_fill(m, 1000, 0xee, 400), ==, 0);
			g_assert_cmpint(sbx_mem_write(m, 1024 + off, buf, len), ==, 0);
			memset(back, 0, sizeof(back));
			g_assert_cmpint(sbx_mem_read(m, 1024 + off, back, len), ==, 0);
			g_assert_cmpmem(back, len, buf, len);
			g_assert_cmpint(sbx_mem_read_u8(m, 1024 + off + len, &back[0]), ==, 0);
			g_assert_cmpint(back[0], ==, 0xee);
			g_assert_cmpint(sbx_mem_read_u8(m, 1023 + off, &back[0]), ==, 0);
			g_assert_cmpint(back[0], ==, 0xee);
		}
	/* Overlapping copies behave like memmove. */
	{
		uint8_t ref[PG], got[PG];
		for (unsigned i = 0; i < PG; i++)
			ref[i] = (uint8_t)(i ^ (i >> 8));
		g_assert_cmpint(sbx_mem_write(m, 0, ref, PG), ==, 0);
		memmove(ref + 3, ref, 3000);
		g_assert_cmpint(sbx_mem_copy(m, 3, 0, 3000), ==, 0);
		memmove(ref + 100, ref + 1000, 2500);
		g_assert_cmpint(sbx_mem_copy(m, 100, 1000, 2500), ==, 0);
		g_assert_cmpint(sbx_mem_read(m, 0, got, PG), ==, 0);
		g_assert_cmpmem(got, PG, ref, PG);
	}
	sbx_mem_free(m);
}

static void test_lifecycle(void)
{
	struct sbx_mem *m;
	struct sbx_guest *g, *g2;
	struct sbx_snapshot *s;
	uint64_t v = 0;

	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_split(m, &g), ==, 0);
	g_assert_cmpint(sbx_mem_split(m, &g2), ==, -EBUSY);
	g_assert_true(sbx_guest_mem(g) == m);
	g_assert_cmpint(sbx_guest_exit(g), ==, -EINVAL);

	g_assert_cmpint(sbx_guest_enter(g), ==, 0);
	g_assert_cmpint(sbx_guest_enter(g), ==, 0);   /* a second vCPU */
	/* Host copies work while the guest runs... */
	g_assert_cmpint(sbx_mem_write_u64(m, 0, 42), ==, 0);
	g_assert_cmpint(sbx_mem_read_u64(m, 0, &v), ==, 0);
	g_assert_cmpuint(v, ==, 42);
	/* ...exclusive operations do not, and change nothing. */
	s = NULL;
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, -EBUSY);
	g_assert_null(s);
	g_assert_cmpint(sbx_mem_zero(m), ==, -EBUSY);
	g_assert_cmpint(sbx_mem_trim(m), ==, -EBUSY);
	g_assert_cmpint(sbx_guest_free(g), ==, -EBUSY);
	g_assert_cmpint(sbx_mem_read_u64(m, 0, &v), ==, 0);
	g_assert_cmpuint(v, ==, 42);
	g_assert_cmpint(sbx_guest_exit(g), ==, 0);
	g_assert_cmpint(sbx_mem_zero(m), ==, -EBUSY);  /* one vCPU still in */
	g_assert_cmpint(sbx_guest_exit(g), ==, 0);

	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	g_assert_cmpint(sbx_guest_enter(g), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, -EBUSY);
	g_assert_cmpint(sbx_guest_exit(g), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), >=, 0);

	/* The guest view keeps the memory alive after the host handle is gone. */
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
	g_assert_cmpint(sbx_guest_enter(g), ==, 0);
	g_assert_cmpint(sbx_guest_exit(g), ==, 0);
	g_assert_cmpint(sbx_guest_free(g), ==, 0);
}

static void test_zero(void)
{
	struct sbx_mem *m;
	struct sbx_snapshot *s;
	uint8_t buf[PG];
	static const uint8_t zero[PG];

	g_assert_cmpint(sbx_mem_new(8 * PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_fill(m, 0, 0x5a, 8 * PG), ==, 0);
	g_assert_cmpint(sbx_mem_zero(m), ==, 0);
	for (unsigned i = 0; i < 8; i++) {
		g_assert_cmpint(sbx_mem_read(m, i * PG, buf, PG), ==, 0);
		g_assert_cmpmem(buf, PG, zero, PG);
	}
	/* Snapshot-based: zero must not bring the snapshot's bytes back. */
	g_assert_cmpint(sbx_mem_fill(m, 0, 0x77, 8 * PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	g_assert_cmpint(sbx_mem_fill(m, PG, 0x11, PG), ==, 0);
	g_assert_cmpint(sbx_mem_zero(m), ==, 0);
	for (unsigned i = 0; i < 8; i++) {
		g_assert_cmpint(sbx_mem_read(m, i * PG, buf, PG), ==, 0);
		g_assert_cmpmem(buf, PG, zero, PG);
	}
	/* And restoring still works (a full remap now). */
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, 8);
	g_assert_cmpint(sbx_mem_read(m, 3 * PG, buf, PG), ==, 0);
	g_assert_cmpint(buf[0], ==, 0x77);
	g_assert_cmpint(buf[PG - 1], ==, 0x77);
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
}

struct worker {
	struct sbx_mem *m;
	struct sbx_guest *g;
	unsigned id;
	unsigned ok, busy;
	unsigned intact;    /* reads that found the page as the writer left it */
	volatile int *stop;
	/*
	 * Microseconds to rest between calls, raised by the racing thread when
	 * it is starved: a worker preempted inside a call keeps the region busy
	 * for its whole time off the CPU, and on a loaded machine that can be
	 * most of the time, so exclusive calls would meet -EBUSY for ever.
	 */
	unsigned *rest_us;
};

static void rest(const struct worker *w, unsigned min_us)
{
	unsigned us = __atomic_load_n(w->rest_us, __ATOMIC_RELAXED);

	g_usleep(MK_MAX(us, min_us));
}

/* The racing thread's side: after 1 s without enough progress the workers
 * rest 100 us between calls, after 5 s 1 ms. */
static void calm_workers(unsigned *rest_us, gint64 elapsed_us)
{
	unsigned us = elapsed_us > 5 * G_USEC_PER_SEC ? 1000 : elapsed_us > G_USEC_PER_SEC ? 100 : 0;

	__atomic_store_n(rest_us, us, __ATOMIC_RELAXED);
}

static gpointer writer(gpointer data)
{
	struct worker *w = data;
	uint8_t buf[PG], back[PG];

	memset(buf, (int)w->id + 1, sizeof(buf));
	while (!*w->stop) {
		int r = sbx_mem_write(w->m, (uint64_t)w->id * PG, buf, PG);
		if (r == -EBUSY) {
			__atomic_fetch_add(&w->busy, 1, __ATOMIC_RELAXED);
			continue;
		}
		g_assert_cmpint(r, ==, 0);
		r = sbx_mem_read(w->m, (uint64_t)w->id * PG, back, PG);
		g_assert_true(r == 0 || r == -EBUSY);
		if (r == 0) {
			/*
			 * The page is this writer's alone; a restore or zeroing
			 * may have run between the write and the read, but
			 * never during either: all its own byte, or all zero.
			 */
			g_assert_true(back[0] == buf[0] || back[0] == 0);
			for (size_t i = 1; i < PG; i++)
				if (back[i] != back[0])
					g_error("writer %u: byte %zu is 0x%02x, byte 0 0x%02x", w->id, i,
						back[i], back[0]);
			if (back[0] == buf[0])
				__atomic_fetch_add(&w->intact, 1, __ATOMIC_RELAXED);
		}
		__atomic_fetch_add(&w->ok, 1, __ATOMIC_RELAXED);
		rest(w, 5);
	}
	return NULL;
}

static gpointer vcpu(gpointer data)
{
	struct worker *w = data;

	while (!*w->stop) {
		int r = sbx_guest_enter(w->g);
		if (r == -EBUSY) {
			__atomic_fetch_add(&w->busy, 1, __ATOMIC_RELAXED);
			continue;
		}
		g_assert_cmpint(r, ==, 0);
		g_usleep(10);
		g_assert_cmpint(sbx_guest_exit(w->g), ==, 0);
		__atomic_fetch_add(&w->ok, 1, __ATOMIC_RELAXED);
		rest(w, 10);
	}
	return NULL;
}

/* Host copies and guest enters on other threads race exclusive operations: each
 * side either works or gets -EBUSY, never both at once, and nothing breaks. */
static void test_threads(void)
{
	struct sbx_mem *m;
	struct sbx_guest *g;
	struct sbx_snapshot *s;
	struct worker w[3];
	GThread *t[3];
	volatile int stop = 0;
	unsigned done = 0, busy = 0, rest_us = 0;

	g_assert_cmpint(sbx_mem_new(8 * PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_split(m, &g), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	for (unsigned i = 0; i < 3; i++) {
		w[i] = (struct worker){ .m = m, .g = g, .id = i, .stop = &stop, .rest_us = &rest_us };
		t[i] = g_thread_new("w", i < 2 ? writer : vcpu, &w[i]);
	}
	/*
	 * Run for at least 300 ms and until every thread has made progress and
	 * restores both succeeded and met -EBUSY: on a loaded machine the other
	 * threads may not be scheduled for a while, so time alone proves nothing.
	 * The deadline only bounds a real livelock.
	 */
	gint64 start = g_get_monotonic_time();
	for (;;) {
		gint64 now = g_get_monotonic_time();
		bool progressed = done > 0 && busy > 0;

		for (unsigned i = 0; i < 3; i++)
			progressed = progressed && __atomic_load_n(&w[i].ok, __ATOMIC_RELAXED) >= 20;
		if (progressed && now - start >= 300000)
			break;
		if (!progressed)
			calm_workers(&rest_us, now - start);
		if (now - start > 30 * G_USEC_PER_SEC)
			g_error("no progress in 30 s: restores %u done, %u busy; ok %u/%u/%u",
				done, busy, w[0].ok, w[1].ok, w[2].ok);
		int64_t r = sbx_snapshot_restore(m, s, (done + busy) % 2 ? SBX_RESTORE_COPY
								    : SBX_RESTORE_REMAP);
		g_assert_true(r >= 0 || r == -EBUSY);
		if (r >= 0)
			done++;
		else
			busy++;
		r = sbx_mem_zero(m);
		g_assert_true(r == 0 || r == -EBUSY);
		if (!progressed)
			g_thread_yield();
	}
	stop = 1;
	for (unsigned i = 0; i < 3; i++)
		g_thread_join(t[i]);
	g_test_message("restores %u done, %u busy; writers %u/%u (%u/%u read back intact), vcpu %u enters",
		       done, busy, w[0].ok, w[1].ok, w[0].intact, w[1].intact, w[2].ok);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), >=, 0);
	g_assert_cmpuint(w[2].ok, >, 0);
	g_assert_cmpuint(done, >, 0);
	g_assert_cmpuint(busy, >, 0);
	sbx_snapshot_unref(s);
	g_assert_cmpint(sbx_guest_free(g), ==, 0);
	sbx_mem_free(m);
}

/* ---- sbx_mem_resize ---- */

/* Page i of a patterned region holds bytes i * 16 + 1 + (byte index % 7). */
static uint8_t pat(uint64_t off, unsigned salt)
{
	return (uint8_t)((off / PG) * 16 + 1 + (off % PG) % 7 + salt);
}

static void fill_pattern(struct sbx_mem *m, uint64_t from, uint64_t to, unsigned salt)
{
	uint8_t buf[PG];

	for (uint64_t off = from; off < to; off += PG) {
		for (unsigned i = 0; i < PG; i++)
			buf[i] = pat(off + i, salt);
		g_assert_cmpint(sbx_mem_write(m, off, buf, PG), ==, 0);
	}
}

static void check_pattern(struct sbx_mem *m, uint64_t from, uint64_t to, unsigned salt)
{
	uint8_t buf[PG], want[PG];

	for (uint64_t off = from; off < to; off += PG) {
		for (unsigned i = 0; i < PG; i++)
			want[i] = pat(off + i, salt);
		g_assert_cmpint(sbx_mem_read(m, off, buf, PG), ==, 0);
		g_assert_cmpmem(buf, PG, want, PG);
	}
}

static void check_zero(struct sbx_mem *m, uint64_t from, uint64_t to)
{
	static const uint8_t zero[PG];
	uint8_t buf[PG];

	for (uint64_t off = from; off < to; off += PG) {
		g_assert_cmpint(sbx_mem_read(m, off, buf, PG), ==, 0);
		g_assert_cmpmem(buf, PG, zero, PG);
	}
}

/* Both guards of m are in place, the first and last bytes are not guards. */
static void check_guards(struct sbx_mem *m)
{
	volatile uint8_t *p = sbx_mem_host_ptr(m, true);
	uint64_t size = sbx_mem_size(m);

	(void)p[0];
	(void)p[size - 1];
	expect_segv(p, -1);
	expect_segv(p, (ptrdiff_t)size);
}

/*
 * struct sbx_mem_stats follows the extensible-struct convention
 * (libsandbox(3)): size first, checked, filled up to the caller's size and
 * no further. libsandbox 4.0's layout is the first, so an older caller is
 * only a too-small one (common/ext.h's two-layout case is in test-common).
 */
static void test_ext_stats(void)
{
	struct sbx_mem *m;
	struct sbx_mem_stats st = { .size = sizeof(st) };

	g_assert_cmpint(sbx_mem_new(3 * PG, &m), ==, 0);
	fill_pattern(m, 0, PG, 0);
	EXT_CHECK_OUT(struct sbx_mem_stats, sbx_mem_stats(m, x));
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.size, ==, sizeof(st));
	g_assert_cmpuint(st.mem_size, ==, 3 * PG);
	g_assert_cmpuint(st.dirty_pages, ==, 1);
	g_assert_cmpint(sbx_mem_stats(m, NULL), ==, -EINVAL);
	sbx_mem_free(m);
}

static void test_resize(void)
{
	struct sbx_mem *m;
	struct sbx_mem_stats st = { .size = sizeof(st) };

	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	fill_pattern(m, 0, 4 * PG, 0);
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG), ==, 0);        /* same size: no-op */
	g_assert_cmpuint(sbx_mem_size(m), ==, 4 * PG);

	/* Grow: contents kept, the new tail reads zero and is writable. */
	g_assert_cmpint(sbx_mem_resize(m, 9 * PG), ==, 0);
	g_assert_cmpuint(sbx_mem_size(m), ==, 9 * PG);
	check_pattern(m, 0, 4 * PG, 0);
	check_zero(m, 4 * PG, 9 * PG);
	check_guards(m);
	fill_pattern(m, 4 * PG, 9 * PG, 0);
	check_pattern(m, 0, 9 * PG, 0);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.mem_size, ==, 9 * PG);

	/* Shrink: the head is kept, the rest is out of bounds. */
	g_assert_cmpint(sbx_mem_resize(m, 2 * PG), ==, 0);
	g_assert_cmpuint(sbx_mem_size(m), ==, 2 * PG);
	check_pattern(m, 0, 2 * PG, 0);
	g_assert_cmpint(sbx_mem_write_u8(m, 2 * PG, 1), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_mark_dirty(m, 2 * PG, 1), ==, -EINVAL);
	check_guards(m);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.mem_size, ==, 2 * PG);
	g_assert_cmpuint(st.dirty_pages, ==, 2);

	/* Grow again: what was cut off does not come back. */
	g_assert_cmpint(sbx_mem_resize(m, 6 * PG), ==, 0);
	check_pattern(m, 0, 2 * PG, 0);
	check_zero(m, 2 * PG, 6 * PG);
	check_guards(m);
	/* Down to one page and back up to a large size. */
	g_assert_cmpint(sbx_mem_resize(m, PG), ==, 0);
	check_guards(m);
	g_assert_cmpint(sbx_mem_resize(m, 1024 * PG), ==, 0);
	check_pattern(m, 0, PG, 0);
	check_zero(m, PG, 1024 * PG);
	check_guards(m);
	sbx_mem_free(m);
}

/* Region m must still be 4 pages of pattern salt 0 with the given host pointer and dirty count. */
static void check_unchanged(struct sbx_mem *m, void *ptr, uint64_t dirty)
{
	struct sbx_mem_stats st = { .size = sizeof(st) };

	g_assert_cmpuint(sbx_mem_size(m), ==, 4 * PG);
	g_assert_true(sbx_mem_host_ptr(m, true) == ptr);
	check_pattern(m, 0, 4 * PG, 0);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.dirty_pages, ==, dirty);
	g_assert_cmpint(sbx_mem_write_u8(m, 4 * PG, 1), ==, -EINVAL);
	check_guards(m);
}

static void test_resize_einval(void)
{
	struct sbx_mem *m;
	void *ptr;

	g_assert_cmpint(sbx_mem_resize(NULL, PG), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	fill_pattern(m, 0, 4 * PG, 0);
	ptr = sbx_mem_host_ptr(m, true);
	g_assert_cmpint(sbx_mem_resize(m, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_resize(m, 100), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG + 1), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_resize(m, 8 * PG - 1), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_resize(m, UINT64_MAX & ~(uint64_t)(PG - 1)), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_resize(m, (uint64_t)SIZE_MAX - PG + 1), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_resize(m, (uint64_t)SIZE_MAX / 2), ==, -EINVAL);
	check_unchanged(m, ptr, 4);
	sbx_mem_free(m);
}

static void test_resize_busy(void)
{
	struct sbx_mem *m;
	struct sbx_guest *g;
	void *ptr;

	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	fill_pattern(m, 0, 4 * PG, 0);
	ptr = sbx_mem_host_ptr(m, true);
	g_assert_cmpint(sbx_mem_split(m, &g), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 8 * PG), ==, 0);         /* split but not entered: fine */
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG), ==, 0);
	ptr = sbx_mem_host_ptr(m, true);
	g_assert_cmpint(sbx_guest_enter(g), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 8 * PG), ==, -EBUSY);
	g_assert_cmpint(sbx_mem_resize(m, 2 * PG), ==, -EBUSY);
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG), ==, -EBUSY);    /* even the no-op */
	g_assert_cmpint(sbx_guest_exit(g), ==, 0);
	check_unchanged(m, ptr, 4);
	g_assert_cmpint(sbx_guest_free(g), ==, 0);
	sbx_mem_free(m);
}

/* Bound into a VM: the memslot pins size and address. */
static void test_resize_bound(void)
{
	struct sbx_mem *m;
	struct sbx_vm *vm;
	void *ptr;

	if (!kvmtest_available())
		return;
	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	fill_pattern(m, 0, 4 * PG, 0);
	ptr = sbx_mem_host_ptr(m, true);
	g_assert_cmpint(sbx_vm_new(&vm), ==, 0);
	g_assert_cmpint(sbx_vm_bind(vm, m, 0, 0, SBX_BIND_DIRTY_LOG), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 8 * PG), ==, -EBUSY);
	g_assert_cmpint(sbx_mem_resize(m, 2 * PG), ==, -EBUSY);
	check_unchanged(m, ptr, 4);
	g_assert_cmpint(sbx_vm_unbind(vm, 0), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 8 * PG), ==, 0);
	check_pattern(m, 0, 4 * PG, 0);
	check_zero(m, 4 * PG, 8 * PG);
	g_assert_cmpint(sbx_vm_bind(vm, m, 0, 0, SBX_BIND_READONLY), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG), ==, -EBUSY);
	g_assert_cmpuint(sbx_mem_size(m), ==, 8 * PG);
	sbx_vm_free(vm);
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG), ==, 0);
	check_unchanged(m, sbx_mem_host_ptr(m, true), 4);
	sbx_mem_free(m);
}

/*
 * A resize that fails for want of address space (RLIMIT_AS, in a child)
 * leaves the region exactly as it was.
 */
static void test_resize_enomem(void)
{
	int status = 0;
	pid_t pid = fork();

	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		struct sbx_mem *m;
		struct rlimit rl;
		unsigned long vsz = 0;
		FILE *f;
		void *ptr;
		int r;

		if (sbx_mem_new(4 * PG, &m) < 0)
			_exit(10);
		fill_pattern(m, 0, 4 * PG, 0);
		ptr = sbx_mem_host_ptr(m, true);
		f = fopen("/proc/self/statm", "re");
		if (!f || fscanf(f, "%lu", &vsz) != 1)
			_exit(11);
		fclose(f);
		/* Room for small allocations, not for a 1 GiB reservation. */
		rl.rlim_cur = rl.rlim_max = vsz * (unsigned long)PG + (64ul << 20);
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(12);
		r = sbx_mem_resize(m, 1ull << 30);
		if (r != -ENOMEM)
			_exit(13);
		check_unchanged(m, ptr, 4);
		g_assert_cmpint(sbx_mem_resize(m, 8 * PG), ==, 0);   /* small growth still fits */
		check_pattern(m, 0, 4 * PG, 0);
		check_zero(m, 4 * PG, 8 * PG);
		sbx_mem_free(m);
		_exit(0);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

/* Snapshot-based regions: the grown tail is anonymous zeros, restore wants the snapshot's size. */
static void test_resize_snapshot(void)
{
	struct sbx_mem *m, *m2;
	struct sbx_snapshot *s;
	const volatile uint8_t *p;
	uint8_t b;

	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	fill_pattern(m, 0, 4 * PG, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	fill_pattern(m, PG, 2 * PG, 5);                        /* one dirty page */

	/* Grow: the tail past the snapshot's end reads zero (a SIGBUS would kill us). */
	g_assert_cmpint(sbx_mem_resize(m, 8 * PG), ==, 0);
	p = sbx_mem_host_ptr(m, true);
	for (uint64_t off = 4 * PG; off < 8 * PG; off += 512)
		g_assert_cmpint(p[off], ==, 0);
	check_zero(m, 4 * PG, 8 * PG);
	check_pattern(m, 0, PG, 0);
	check_pattern(m, PG, 2 * PG, 5);
	check_pattern(m, 2 * PG, 4 * PG, 0);
	check_guards(m);
	fill_pattern(m, 6 * PG, 7 * PG, 9);

	/* A snapshot restores only into a region of its own size; nothing changes. */
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, -EINVAL);
	g_assert_cmpuint(sbx_mem_size(m), ==, 8 * PG);
	check_pattern(m, PG, 2 * PG, 5);
	check_pattern(m, 6 * PG, 7 * PG, 9);
	/* Trim drops only pages equal to the snapshot (or never-written tail pages). */
	g_assert_cmpint(sbx_mem_trim(m), >=, 0);
	check_pattern(m, 0, PG, 0);
	check_pattern(m, PG, 2 * PG, 5);
	check_pattern(m, 6 * PG, 7 * PG, 9);
	check_zero(m, 7 * PG, 8 * PG);

	/* Back to the snapshot's size: restore is still O(dirty) (the one page). */
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, 1);
	check_pattern(m, 0, 4 * PG, 0);
	check_guards(m);

	/* Shrink then grow back: the regrown pages hold none of the snapshot's
	 * bytes, so restore must put them back (a full remap). */
	g_assert_cmpint(sbx_mem_resize(m, 2 * PG), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG), ==, 0);
	check_zero(m, 2 * PG, 4 * PG);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 4);
	check_pattern(m, 0, 4 * PG, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, 0);

	/* A region made from the snapshot grows the same way; the snapshot is untouched. */
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m2), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m2, 5 * PG), ==, 0);
	check_pattern(m2, 0, 4 * PG, 0);
	check_zero(m2, 4 * PG, 5 * PG);
	g_assert_cmpint(sbx_mem_read_u8(m2, 5 * PG - 1, &b), ==, 0);
	g_assert_cmpint(b, ==, 0);
	fill_pattern(m2, 0, 5 * PG, 3);
	check_guards(m2);
	g_assert_cmpint(sbx_mem_resize(m2, 3 * PG), ==, 0);
	check_pattern(m2, 0, 3 * PG, 3);
	check_guards(m2);
	g_assert_cmpint(((const uint8_t *)sbx_snapshot_data(s))[0], ==, pat(0, 0));
	sbx_mem_free(m2);
	check_pattern(m, 0, 4 * PG, 0);
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
}

/* Write, snapshot, restore round trips on resized regions (the record was resized too). */
static void test_resize_roundtrip(void)
{
	struct sbx_mem *m;
	struct sbx_snapshot *s, *s2;
	struct sbx_mem_stats st = { .size = sizeof(st) };

	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	fill_pattern(m, 0, 4 * PG, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 200 * PG), ==, 0);  /* past a bitmap word */
	fill_pattern(m, 100 * PG, 200 * PG, 1);
	g_assert_cmpint(sbx_snapshot_take(m, &s2), ==, 0);
	g_assert_cmpuint(sbx_snapshot_size(s2), ==, 200 * PG);
	/* Dirty three pages, one in each bitmap word, and restore just those. */
	fill_pattern(m, 3 * PG, 4 * PG, 7);
	fill_pattern(m, 70 * PG, 71 * PG, 7);
	fill_pattern(m, 199 * PG, 200 * PG, 7);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.dirty_pages, ==, 3);
	g_assert_cmpint(sbx_snapshot_restore(m, s2, SBX_RESTORE_COPY), ==, 3);
	check_pattern(m, 0, 4 * PG, 0);
	check_zero(m, 4 * PG, 100 * PG);
	check_pattern(m, 100 * PG, 200 * PG, 1);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.dirty_pages, ==, 0);
	/* Trim path too. */
	fill_pattern(m, 150 * PG, 152 * PG, 2);
	g_assert_cmpint(sbx_snapshot_restore(m, s2, SBX_RESTORE_TRIM), ==, 2);
	check_pattern(m, 150 * PG, 152 * PG, 1);

	/* Shrink to the old snapshot's size: the first snapshot restores again. */
	g_assert_cmpint(sbx_mem_resize(m, 4 * PG), ==, 0);
	fill_pattern(m, 0, PG, 4);
	g_assert_cmpint(sbx_snapshot_restore(m, s2, SBX_RESTORE_AUTO), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, 4);   /* other snapshot: remap */
	check_pattern(m, 0, 4 * PG, 0);
	/* And zero still works on a resized region. */
	g_assert_cmpint(sbx_mem_resize(m, 6 * PG), ==, 0);
	g_assert_cmpint(sbx_mem_zero(m), ==, 0);
	check_zero(m, 0, 6 * PG);
	check_guards(m);
	sbx_snapshot_unref(s2);
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
}

static gpointer stats_reader(gpointer data)
{
	struct worker *w = data;
	struct sbx_mem_stats st = { .size = sizeof(st) };

	while (!*w->stop) {
		uint64_t size = sbx_mem_size(w->m);
		int r = sbx_mem_mark_dirty(w->m, 0, PG);

		g_assert_true(size == 8 * PG || size == 16 * PG);
		g_assert_true(r == 0 || r == -EBUSY);
		g_assert_cmpint(sbx_mem_stats(w->m, &st), ==, 0);
		g_assert_true(st.mem_size == 8 * PG || st.mem_size == 16 * PG);
		__atomic_fetch_add(&w->ok, 1, __ATOMIC_RELAXED);
		if (__atomic_load_n(w->rest_us, __ATOMIC_RELAXED))
			rest(w, 0);
	}
	return NULL;
}

/* Resizes race host copies, guest enters, marking and stats on other threads. */
static void test_resize_threads(void)
{
	struct sbx_mem *m;
	struct sbx_guest *g;
	struct worker w[4];
	GThread *t[4];
	volatile int stop = 0;
	unsigned done = 0, busy = 0, rest_us = 0;
	gint64 start;

	g_assert_cmpint(sbx_mem_new(8 * PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_split(m, &g), ==, 0);
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){ .m = m, .g = g, .id = i, .stop = &stop, .rest_us = &rest_us };
		t[i] = g_thread_new("w", i < 2 ? writer : i == 2 ? vcpu : stats_reader, &w[i]);
	}
	start = g_get_monotonic_time();
	for (;;) {
		gint64 now = g_get_monotonic_time();
		bool progressed = done >= 20 && busy > 0;

		for (unsigned i = 0; i < 4; i++)
			progressed = progressed && __atomic_load_n(&w[i].ok, __ATOMIC_RELAXED) >= 20;
		if (progressed && now - start >= 200000)
			break;
		if (!progressed)
			calm_workers(&rest_us, now - start);
		if (now - start > 30 * G_USEC_PER_SEC)
			g_error("no progress in 30 s: resizes %u done, %u busy; ok %u/%u/%u/%u",
				done, busy, w[0].ok, w[1].ok, w[2].ok, w[3].ok);
		int r = sbx_mem_resize(m, sbx_mem_size(m) == 8 * PG ? 16 * PG : 8 * PG);
		g_assert_true(r == 0 || r == -EBUSY);
		if (r == 0)
			done++;
		else
			busy++;
		if (!progressed)
			g_thread_yield();
	}
	stop = 1;
	for (unsigned i = 0; i < 4; i++)
		g_thread_join(t[i]);
	g_test_message("resizes %u done, %u busy; writers %u/%u, vcpu %u, stats %u",
		       done, busy, w[0].ok, w[1].ok, w[2].ok, w[3].ok);
	/* Each writer's page holds its last full write. */
	for (unsigned i = 0; i < 2; i++) {
		uint8_t buf[PG], want[PG];
		memset(want, (int)i + 1, sizeof(want));
		g_assert_cmpint(sbx_mem_read(m, (uint64_t)i * PG, buf, PG), ==, 0);
		g_assert_cmpmem(buf, PG, want, PG);
	}
	check_guards(m);
	g_assert_cmpint(sbx_guest_free(g), ==, 0);
	sbx_mem_free(m);
}

/* Each allocation of sbx_mem_new, _split and _resize failed in turn: -ENOMEM, nothing changed. */
static void test_alloc_failures(void)
{
	struct sbx_mem *m = NULL;
	struct sbx_guest *g = NULL;
	struct sbx_mem_image im;
	long fails;
	int r;

	fails = MK_FAIL_EACH_ALLOC(r, sbx_mem_new(16 * PG, &m), g_assert_null(m));
	g_assert_cmpint(fails, ==, 2);          /* the handle, the dirty record */
	fill_pattern(m, 0, 16 * PG, 3);
	g_assert_cmpint(sbx_mem_fill(m, 5 * PG, 0x5a, 100), ==, 0);
	sbx_mem_image_take(m, &im);

	fails = MK_FAIL_EACH_ALLOC(r, sbx_mem_split(m, &g), {
		g_assert_null(g);
		sbx_mem_image_check(m, &im);
	});
	g_assert_cmpint(fails, ==, 1);
	g_assert_nonnull(g);
	g_assert_cmpint(sbx_guest_free(g), ==, 0);

	/* Growing and shrinking each allocate a new dirty record. */
	fails = MK_FAIL_EACH_ALLOC(r, sbx_mem_resize(m, 64 * PG), sbx_mem_image_check(m, &im));
	g_assert_cmpint(fails, ==, 1);
	check_pattern(m, 0, 5 * PG, 3);
	check_zero(m, 16 * PG, 64 * PG);
	fails = MK_FAIL_EACH_ALLOC(r, sbx_mem_resize(m, 16 * PG), {
		g_assert_cmpuint(sbx_mem_size(m), ==, 64 * PG);
		check_zero(m, 16 * PG, 64 * PG);
	});
	g_assert_cmpint(fails, ==, 1);
	sbx_mem_image_check(m, &im);
	sbx_mem_image_free(&im);
	sbx_mem_free(m);
}

/* The log hook: a refusal tells the callback why, at LOG_DEBUG only when asked for. */
static void test_log(void)
{
	struct log_seen l = { 0 };
	struct sbx_mem *m = NULL;
	uint8_t b;
	int old = sbx_get_log_priority();

	sbx_set_log_fn(log_seen_record, &l);
	/* Default threshold LOG_ERR (the test runs without LIBSANDBOX_LOG): argument refusals are debug. */
	sbx_set_log_priority(LOG_ERR);
	g_assert_cmpint(sbx_get_log_priority(), ==, LOG_ERR);
	g_assert_cmpint(sbx_mem_new(100, &m), ==, -EINVAL);
	g_assert_cmpint(l.calls, ==, 0);

	sbx_set_log_priority(LOG_DEBUG);
	g_assert_cmpint(sbx_mem_new(100, &m), ==, -EINVAL);
	g_assert_cmpint(l.calls, ==, 1);
	g_assert_cmpint(l.priority, ==, LOG_DEBUG);
	g_assert_nonnull(strstr(l.msg, "sbx_mem_new"));
	g_assert_nonnull(strstr(l.msg, "size 100"));

	g_assert_cmpint(sbx_mem_new(4 * PG, &m), ==, 0);
	g_assert_cmpint(l.calls, ==, 1);            /* success says nothing */
	g_assert_cmpint(sbx_mem_read(m, 4 * PG, &b, 1), ==, -EINVAL);
	g_assert_cmpint(l.calls, ==, 2);
	g_assert_nonnull(strstr(l.msg, "sbx_mem_read"));
	g_assert_nonnull(strstr(l.msg, "16384"));
	g_assert_cmpint(sbx_mem_resize(m, 3), ==, -EINVAL);
	g_assert_nonnull(strstr(l.msg, "sbx_mem_resize: size 3"));
	g_assert_cmpint(l.calls, ==, 3);

	/* Back to silent. */
	sbx_set_log_fn(NULL, NULL);
	g_assert_cmpint(sbx_mem_new(100, &m), ==, -EINVAL);
	g_assert_cmpint(l.calls, ==, 3);
	sbx_set_log_priority(old);
	sbx_mem_free(m);
}

/* The child of test_log_env: refuses a few calls, then exits 0. */
static int log_child(void)
{
	struct sbx_mem *m = NULL;
	uint8_t b;

	if (sbx_mem_new(100, &m) != -EINVAL || sbx_mem_new(PG, &m) != 0 ||
	    sbx_mem_read(m, PG, &b, 1) != -EINVAL)
		return 1;
	sbx_mem_free(m);
	return 0;
}

/* Run this program as the log child (fork+exec) with LIBSANDBOX_LOG set to value or unset. */
static void run_log_child(const char *self, const char *value, char **out, char **err)
{
	char **envp = g_get_environ();
	char *argv[] = { (char *)self, (char *)"--log-child", NULL };
	int status = -1;
	GError *e = NULL;

	envp = value ? g_environ_setenv(envp, "LIBSANDBOX_LOG", value, TRUE)
		     : g_environ_unsetenv(envp, "LIBSANDBOX_LOG");
	g_assert_true(g_spawn_sync(NULL, argv, envp, G_SPAWN_DEFAULT, NULL, NULL, out, err,
				   &status, &e));
	g_assert_no_error(e);
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_strfreev(envp);
}

static const char *self_path;

/* Nothing is printed without a callback; LIBSANDBOX_LOG=debug opts into standard error. */
static void test_log_env(void)
{
	char *out, *err;

	run_log_child(self_path, NULL, &out, &err);
	g_assert_cmpstr(out, ==, "");
	g_assert_cmpstr(err, ==, "");
	g_free(out);
	g_free(err);
	run_log_child(self_path, "err", &out, &err);
	g_assert_cmpstr(out, ==, "");
	g_assert_cmpstr(err, ==, "");
	g_free(out);
	g_free(err);
	run_log_child(self_path, "debug", &out, &err);
	g_assert_cmpstr(out, ==, "");
	g_assert_nonnull(strstr(err, "libsandbox: sbx_mem_new: size 100 "));
	g_assert_nonnull(strstr(err, "libsandbox: sbx_mem_read: "));
	g_free(out);
	g_free(err);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--log-child") == 0)
		return log_child();
	self_path = argv[0];
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sbx/mem/sizes", test_sizes);
	g_test_add_func("/sbx/mem/ext-stats", test_ext_stats);
	g_test_add_func("/sbx/mem/alloc-failures", test_alloc_failures);
	g_test_add_func("/sbx/mem/log", test_log);
	g_test_add_func("/sbx/mem/log/env", test_log_env);
	g_test_add_func("/sbx/mem/guard", test_guard);
	g_test_add_func("/sbx/mem/bounds", test_bounds);
	g_test_add_func("/sbx/mem/lifecycle", test_lifecycle);
	g_test_add_func("/sbx/mem/zero", test_zero);
	g_test_add_func("/sbx/mem/threads", test_threads);
	g_test_add_func("/sbx/mem/resize", test_resize);
	g_test_add_func("/sbx/mem/resize/einval", test_resize_einval);
	g_test_add_func("/sbx/mem/resize/busy", test_resize_busy);
	kvmtest_add_func("/sbx/mem/resize/bound", test_resize_bound);
	g_test_add_func("/sbx/mem/resize/enomem", test_resize_enomem);
	g_test_add_func("/sbx/mem/resize/snapshot", test_resize_snapshot);
	g_test_add_func("/sbx/mem/resize/roundtrip", test_resize_roundtrip);
	g_test_add_func("/sbx/mem/resize/threads", test_resize_threads);
	return g_test_run();
}
