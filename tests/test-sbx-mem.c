/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libsandbox regions: sizes, guard pages, bounds, host/guest lifecycle, zeroing. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
	sbx_snapshot_free(NULL);
	sbx_vm_free(NULL);
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
	for (int which = 0; which < 2; which++) {
		int status = 0;
		pid_t pid = fork();

		g_assert_cmpint(pid, >=, 0);
		if (pid == 0) {
			signal(SIGSEGV, SIG_DFL);
			if (which == 0)
				(void)p[-1];
			else
				(void)p[4 * PG];
			_exit(0);       /* not reached if the guard works */
		}
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status));
		g_assert_cmpint(WTERMSIG(status), ==, SIGSEGV);
	}
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
	sbx_snapshot_free(s);
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
	sbx_snapshot_free(s);
	sbx_mem_free(m);
}

struct worker {
	struct sbx_mem *m;
	struct sbx_guest *g;
	unsigned id;
	unsigned ok, busy;
	volatile int *stop;
};

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
		__atomic_fetch_add(&w->ok, 1, __ATOMIC_RELAXED);
		g_usleep(5);
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
		g_usleep(10);
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
	unsigned done = 0, busy = 0;

	g_assert_cmpint(sbx_mem_new(8 * PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_split(m, &g), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	for (unsigned i = 0; i < 3; i++) {
		w[i] = (struct worker){ .m = m, .g = g, .id = i, .stop = &stop };
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
	g_test_message("restores %u done, %u busy; writers %u/%u, vcpu %u enters",
		       done, busy, w[0].ok, w[1].ok, w[2].ok);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), >=, 0);
	g_assert_cmpuint(w[2].ok, >, 0);
	g_assert_cmpuint(done, >, 0);
	g_assert_cmpuint(busy, >, 0);
	sbx_snapshot_free(s);
	g_assert_cmpint(sbx_guest_free(g), ==, 0);
	sbx_mem_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sbx/mem/sizes", test_sizes);
	g_test_add_func("/sbx/mem/guard", test_guard);
	g_test_add_func("/sbx/mem/bounds", test_bounds);
	g_test_add_func("/sbx/mem/lifecycle", test_lifecycle);
	g_test_add_func("/sbx/mem/zero", test_zero);
	g_test_add_func("/sbx/mem/threads", test_threads);
	return g_test_run();
}
