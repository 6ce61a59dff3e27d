/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libsandbox lazy snapshots (sbx_snapshot_open(3) with SBX_OPEN_LAZY), on
 * the host: each fault source but the guest (host copies, raw pointers,
 * the snapshot's view; the guest's are test-sbx-kvm's), the caller's own
 * service loop, bad chunks, truncated files and bad tables, restore, trim,
 * take and resize over lazily loaded memory, working sets and their
 * prefetch, raw images, fork, a process killed while it serves faults, and
 * failed calls that leave nothing behind. Real files in a temporary
 * directory, real userfaultfd.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "common/sys.h"
#include "common/uffd.h"
#include "sandboxP.h"
#include "tests/ext-check.h"
#include "tests/log-seen.h"
#include "tests/test-sbx-util.h"

#define PG 4096u
#define CH SBX_CHUNK_MIN                /* the tests' files: 64 KiB chunks */
#define NCH 32u                         /* 2 MiB */
#define ZERO_A 3u                       /* all-zero chunks */
#define ZERO_B 7u

/* A saved snapshot file and the bytes it holds. */
struct file {
	int fd;
	uint8_t *bytes;
	size_t size;
	struct sbx_snapf f;
};

static void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 2654435761u + seed) >> 13 ^ i / CH);
}

/*
 * An open file of its own on the disk, its name gone at once: a test that
 * fails half-way (or a child killed) leaves nothing behind in the directory.
 */
static int tmp_file(void)
{
	char *dir = g_dir_make_tmp("sbx-lazy-XXXXXX", NULL);
	char *path;
	int fd;

	g_assert_nonnull(dir);
	path = g_build_filename(dir, "snap", NULL);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(g_unlink(path), ==, 0);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
	g_free(path);
	g_free(dir);
	return fd;
}

/* A file of nch 64 KiB chunks (chunks ZERO_A and ZERO_B all zero), saved by libsandbox. */
static void file_make(struct file *t, unsigned nch, uint32_t seed)
{
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	uint8_t hdr[4096];

	t->size = (size_t)nch * CH;
	t->bytes = g_malloc(t->size);
	fill_pattern(t->bytes, t->size, seed);
	memset(t->bytes + (size_t)ZERO_A * CH, 0, CH);
	memset(t->bytes + (size_t)ZERO_B * CH, 0, CH);
	t->fd = tmp_file();
	g_assert_cmpint(sbx_mem_new(t->size, &m), ==, 0);
	g_assert_cmpint(sbx_mem_write(m, 0, t->bytes, t->size), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	g_assert_cmpint(sbx_snapshot_save_chunked(s, t->fd, CH, 0), ==, 0);
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
	g_assert_cmpint(mk_pread_full(t->fd, hdr, sizeof(hdr), 0), ==, 4096);
	g_assert_cmpint(sbx_snapf_parse(hdr, sizeof(hdr), &t->f, "test"), ==, 0);
}

static void file_free(struct file *t)
{
	close(t->fd);
	g_free(t->bytes);
}

/* Flip one byte of chunk k's data in the file. */
static void file_corrupt(struct file *t, unsigned k, size_t at)
{
	uint8_t b;
	uint64_t off = t->f.data_off + (uint64_t)k * CH + at;

	g_assert_cmpint(mk_pread_full(t->fd, &b, 1, off), ==, 1);
	b ^= 0x20;
	g_assert_cmpint(mk_pwrite_full(t->fd, &b, 1, off), ==, 1);
}

static struct sbx_snapshot *open_lazy(int fd, unsigned flags)
{
	struct sbx_snapshot *s = NULL;
	int r = sbx_snapshot_open(fd, SBX_OPEN_LAZY | flags, &s);

	if (r == -EPERM)
		g_error("userfaultfd not allowed (the tests need CAP_SYS_PTRACE or /dev/userfaultfd)");
	g_assert_cmpint(r, ==, 0);
	g_assert_true(sbx_snapshot_is_lazy(s));
	return s;
}

/* A lazy snapshot of t's file (flags added), a region made from it: its raw pointer. */
static const volatile uint8_t *lazy_region(const struct file *t, unsigned flags, struct sbx_snapshot **s,
					   struct sbx_mem **m)
{
	*s = open_lazy(t->fd, flags);
	g_assert_cmpint(sbx_mem_new_from_snapshot(*s, m), ==, 0);
	return sbx_mem_host_ptr(*m, true);
}

static struct sbx_lazy_stats stats(struct sbx_snapshot *s)
{
	struct sbx_lazy_stats st = { .size = sizeof(st) };

	g_assert_cmpint(sbx_snapshot_lazy_stats(s, &st), ==, 0);
	return st;
}

/*
 * The mappings a lazy snapshot of size bytes or a region of it could leave
 * behind, for "a failed call leaves none": its memfd's (the cache, the
 * view, a region's) and its reservations (PROT_NONE, of the snapshot's
 * size, or with a guard page each side). Not the allocator's: a
 * sanitizer's maps and keeps memory as it likes.
 */
static unsigned count_maps(uint64_t size)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	unsigned n = 0;

	g_assert_true(g_file_get_contents("/proc/self/maps", &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		unsigned long long lo, hi;

		if (strstr(*l, "memfd:sbx"))
			n++;
		else if (strstr(*l, " ---p ") && sscanf(*l, "%llx-%llx", &lo, &hi) == 2 &&
			 (hi - lo == size || hi - lo == size + 2 * PG))
			n++;
	}
	return n;
}

/* ---- opening ------------------------------------------------------------- */

/*
 * struct sbx_lazy_stats follows the extensible-struct convention
 * (libsandbox(3)); libsandbox 4.0's layout is the first (the two-layout
 * case of common/ext.h is in test-common).
 */
static void test_ext_stats(void)
{
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_lazy_stats st;

	file_make(&t, NCH, 3);
	s = open_lazy(t.fd, 0);
	EXT_CHECK_OUT(struct sbx_lazy_stats, sbx_snapshot_lazy_stats(s, x));
	st = stats(s);
	g_assert_cmpuint(st.size, ==, sizeof(st));
	g_assert_cmpuint(st.data_size, ==, t.size);
	g_assert_cmpuint(st.chunks, ==, NCH);
	g_assert_cmpint(sbx_snapshot_lazy_stats(s, NULL), ==, -EINVAL);
	sbx_snapshot_unref(s);
	file_free(&t);
}


/* Open and map read nothing but header and table; the bytes come in as touched. */
static void test_open(void)
{
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	struct sbx_lazy_stats st = { .size = sizeof(st) };
	uint8_t *buf;

	file_make(&t, NCH, 1);
	s = open_lazy(t.fd, 0);
	g_assert_cmpuint(sbx_snapshot_size(s), ==, t.size);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	st = stats(s);
	g_assert_cmpuint(st.chunks, ==, NCH);
	g_assert_cmpuint(st.chunk_size, ==, CH);
	g_assert_cmpuint(st.chunks_read, ==, 0);
	g_assert_cmpuint(st.bytes_read, ==, 0);
	g_assert_cmpuint(st.thread, ==, 1);
	g_assert_cmpuint(st.bad_offset, ==, UINT64_MAX);
	g_assert_cmpuint(st.table_blocks_read, ==, 0);          /* header and index only */
	g_assert_cmpint(sbx_snapshot_fd(s), ==, -EOPNOTSUPP);
	g_assert_false(sbx_snapshot_is_direct(s));
	/* Host copies: every byte right; the zero chunks never read. */
	buf = g_malloc(t.size);
	g_assert_cmpint(sbx_mem_read(m, 0, buf, t.size), ==, 0);
	g_assert_cmpmem(buf, t.size, t.bytes, t.size);
	st = stats(s);
	g_assert_cmpuint(st.chunks_read, ==, NCH - 2);
	g_assert_cmpuint(st.chunks_verified, ==, NCH - 2);
	g_assert_cmpuint(st.chunks_zero, ==, 2);
	g_assert_cmpuint(st.host_loads, ==, NCH - 2);
	g_assert_cmpuint(st.bytes_read, ==, (uint64_t)(NCH - 2) * CH);
	g_assert_cmpuint(st.faults, ==, 0);
	g_assert_cmpuint(st.table_blocks_read, ==, 1);          /* 32 chunks: one table block */
	/* Reading again reads nothing more. */
	g_assert_cmpint(sbx_mem_read(m, 5 * CH + 7, buf, 3 * CH), ==, 0);
	g_assert_cmpmem(buf, 3 * CH, t.bytes + 5 * CH + 7, 3 * CH);
	g_assert_cmpuint(stats(s).chunks_read, ==, NCH - 2);
	g_free(buf);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

/* Raw pointers: a first touch faults, the service thread installs the whole chunk once. */
static void test_raw_pointer(void)
{
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	struct sbx_lazy_stats st = { .size = sizeof(st) };
	const volatile uint8_t *p;

	file_make(&t, NCH, 2);
	p = lazy_region(&t, 0, &s, &m);
	for (size_t off = 0; off < t.size; off += PG)
		if (p[off + 17] != t.bytes[off + 17])
			g_error("byte %zu: 0x%x, the snapshot has 0x%x", off + 17, p[off + 17], t.bytes[off + 17]);
	st = stats(s);
	g_assert_cmpuint(st.faults, ==, NCH);   /* one a chunk: the rest of it was installed */
	g_assert_cmpuint(st.chunks_read, ==, NCH - 2);
	g_assert_cmpuint(st.chunks_zero, ==, 2);
	g_assert_cmpuint(st.fault_ns_max, >, 0);
	g_assert_cmpuint(st.fault_ns_total, >=, st.fault_ns_max);
	{
		uint64_t hist = 0;
		for (unsigned i = 0; i < SBX_HIST_BUCKETS; i++)
			hist += st.fault_ns[i];
		g_assert_cmpuint(hist, ==, st.faults);
	}
	g_assert_cmpmem((const void *)p, t.size, t.bytes, t.size);
	/*
	 * The snapshot's own view is the cache: what the region brought in is
	 * there already (no fault, no read), its zero chunks fault for the zero page.
	 */
	g_assert_cmpmem(sbx_snapshot_data(s), t.size, t.bytes, t.size);
	g_assert_cmpuint(stats(s).faults, ==, NCH + 2);
	g_assert_cmpuint(stats(s).chunks_read, ==, NCH - 2);
	g_test_message("%u chunks faulted in: mean %.1f us, max %.1f us", NCH,
		       (double)stats(s).fault_ns_total / 1e3 / (NCH + 2), (double)stats(s).fault_ns_max / 1e3);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

struct toucher {
	const volatile uint8_t *p;
	size_t off;
	uint8_t got;
	int done;               /* atomic */
};

static void *touch_thread(void *data)
{
	struct toucher *th = data;

	th->got = th->p[th->off];
	__atomic_store_n(&th->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* SBX_OPEN_NO_THREAD: the fd is readable while a fault waits; service() serves it. */
static void test_caller_loop(void)
{
	struct file t;
	struct sbx_snapshot *s, *threaded;
	struct sbx_mem *m;
	struct toucher th = { 0 };
	struct pollfd pfd;
	pthread_t tid;

	file_make(&t, NCH, 3);
	threaded = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_snapshot_fault_fd(threaded), ==, -ENOTSUP);
	sbx_snapshot_unref(threaded);
	s = open_lazy(t.fd, SBX_OPEN_NO_THREAD);
	g_assert_cmpuint(stats(s).thread, ==, 0);
	pfd = (struct pollfd){ sbx_snapshot_fault_fd(s), POLLIN, 0 };
	g_assert_cmpint(pfd.fd, >=, 0);
	g_assert_cmpint(sbx_snapshot_service(s), ==, 0);
	g_assert_cmpint(poll(&pfd, 1, 0), ==, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	th.p = sbx_mem_host_ptr(m, true);
	th.off = 9 * CH + 4321;
	g_assert_cmpint(pthread_create(&tid, NULL, touch_thread, &th), ==, 0);
	/* The touch waits until served. */
	g_assert_cmpint(poll(&pfd, 1, 10000), ==, 1);
	g_usleep(20000);
	g_assert_cmpint(__atomic_load_n(&th.done, __ATOMIC_ACQUIRE), ==, 0);
	g_assert_cmpint(sbx_snapshot_service(s), ==, 1);
	g_assert_cmpint(pthread_join(tid, NULL), ==, 0);
	g_assert_cmpuint(th.got, ==, t.bytes[th.off]);
	g_assert_cmpuint(stats(s).faults, ==, 1);
	/* Host copies never wait for the service: this thread serves nobody meanwhile. */
	{
		uint8_t b;
		g_assert_cmpint(sbx_mem_read_u8(m, 20 * CH, &b), ==, 0);
		g_assert_cmpuint(b, ==, t.bytes[20 * CH]);
	}
	g_assert_cmpint(poll(&pfd, 1, 0), ==, 0);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

/* ---- bad chunks, truncated files, bad tables ------------------------------- */

/* A chunk whose bytes changed: -EBADMSG for host reads, SIGSEGV for raw pointers, logged. */
static void test_bad_chunk(void)
{
	struct log_seen log = { 0 };
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	struct sbx_lazy_stats st = { .size = sizeof(st) };
	g_autofree char *want = NULL;
	char last[512];
	uint8_t *buf;

	file_make(&t, NCH, 4);
	file_corrupt(&t, 12, 999);
	sbx_set_log_fn(log_seen_record, &log);
	s = open_lazy(t.fd, 0);         /* the table is fine: nothing read yet */
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	buf = g_malloc(t.size);
	g_assert_cmpint(sbx_mem_read(m, 0, buf, t.size), ==, -EBADMSG);
	g_assert_cmpint(sbx_mem_read(m, 12 * CH + 5000, buf, 1), ==, -EBADMSG);
	g_assert_cmpint(sbx_mem_write_u8(m, 12 * CH, 1), ==, -EBADMSG);
	/* Every other chunk reads right. */
	g_assert_cmpint(sbx_mem_read(m, 0, buf, 12 * CH), ==, 0);
	g_assert_cmpmem(buf, 12 * CH, t.bytes, 12 * CH);
	g_assert_cmpint(sbx_mem_read(m, 13 * CH, buf, t.size - 13 * CH), ==, 0);
	g_assert_cmpmem(buf, t.size - 13 * CH, t.bytes + 13 * CH, t.size - 13 * CH);
	st = stats(s);
	g_assert_cmpuint(st.chunks_bad, ==, 1);
	g_assert_cmpuint(st.bad_offset, ==, 12 * CH);
	g_assert_cmpint(log_seen_read(&log, last, sizeof(last)), ==, 1);
	g_assert_cmpint(log.priority, ==, LOG_ERR);
	want = g_strdup_printf("chunk 12 (data offset %u, file offset %" PRIu64 ", %u bytes): checksum "
			       "mismatch", 12 * CH, t.f.data_off + 12 * CH, CH);
	if (!strstr(last, want))
		g_error("log: '%s' lacks '%s'", last, want);
	sbx_set_log_fn(NULL, NULL);
	g_free(buf);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

/*
 * In a child process with a lazy snapshot of its own, a raw pointer reads
 * every step-th chunk of t's, those in [bad, bad_end) skipped, right, then
 * touches chunk at (in that range): it must die of SIGSEGV there, never
 * read wrong bytes (exit 0: it read the bad chunk; 1, 2: setup failed, a
 * chunk wrong or bad; under a sanitizer its report for a fault too early).
 */
static void expect_raw_fault(const struct file *t, unsigned bad, unsigned bad_end, unsigned at,
			     unsigned step)
{
	int status;
	pid_t pid = fork();

	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		struct sbx_snapshot *s;
		struct sbx_mem *m;
		const volatile uint8_t *p;

		if (sbx_snapshot_open(t->fd, SBX_OPEN_LAZY, &s) < 0 || sbx_mem_new_from_snapshot(s, &m) < 0)
			_exit(1);
		p = sbx_mem_host_ptr(m, true);
		for (size_t k = 0; k < t->size / CH; k += step)
			for (size_t off = k * CH; (k < bad || k >= bad_end) && off < (k + 1) * CH; off += PG)
				if (p[off + 1] != t->bytes[off + 1])
					_exit(2);
		/* The kernel's SIGSEGV, not a sanitizer's report and exit status. */
		signal(SIGSEGV, SIG_DFL);
		(void)p[(size_t)at * CH + 5];   /* SIGSEGV here */
		_exit(0);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	if (!WIFSIGNALED(status))
		g_error("the child exited %d instead of dying of SIGSEGV", WEXITSTATUS(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGSEGV);
}

/* A raw pointer's access to a bad chunk fails (SIGSEGV) after every other chunk read right. */
static void test_bad_chunk_raw(void)
{
	struct file t;

	file_make(&t, NCH, 5);
	file_corrupt(&t, 12, 3);
	expect_raw_fault(&t, 12, 13, 12, 1);
	file_free(&t);
}

/* Cut after opening: chunks past the new end are bad (the file ends in them), earlier ones fine. */
static void test_truncated(void)
{
	struct log_seen log = { 0 };
	struct file t;
	struct sbx_snapshot *s = NULL;
	struct sbx_mem *m;
	char last[512];
	uint8_t *buf;

	file_make(&t, NCH, 6);
	s = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	g_assert_cmpint(mk_ftruncate(t.fd, t.f.data_off + 20 * CH + 100), ==, 0);
	sbx_set_log_fn(log_seen_record, &log);
	buf = g_malloc(t.size);
	g_assert_cmpint(sbx_mem_read(m, 0, buf, 20 * CH), ==, 0);
	g_assert_cmpmem(buf, 20 * CH, t.bytes, 20 * CH);
	g_assert_cmpint(sbx_mem_read(m, 20 * CH, buf, 1), ==, -EBADMSG);
	g_assert_cmpint(sbx_mem_read(m, 25 * CH, buf, 1), ==, -EBADMSG);
	g_assert_cmpint(log_seen_read(&log, last, sizeof(last)), ==, 2);
	g_assert_nonnull(strstr(last, "the file ends"));
	g_assert_cmpuint(stats(s).chunks_bad, ==, 2);
	sbx_set_log_fn(NULL, NULL);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	/* Truncated before opening: refused at once. */
	s = NULL;
	g_assert_cmpint(sbx_snapshot_open(t.fd, SBX_OPEN_LAZY, &s), ==, -ENODATA);
	g_free(buf);
	file_free(&t);

	/* Cut in the table after opening (version 4: read when first needed): every chunk fails. */
	file_make(&t, NCH, 6);
	s = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	g_assert_cmpint(mk_ftruncate(t.fd, t.f.meta_off + 10), ==, 0);
	sbx_set_log_fn(log_seen_record, &log);
	buf = g_malloc(t.size);
	g_assert_cmpint(sbx_mem_read(m, 0, buf, 1), ==, -EBADMSG);
	g_assert_cmpint(sbx_mem_read(m, 9 * CH, buf, CH), ==, -EBADMSG);
	g_assert_cmpint(log_seen_read(&log, last, sizeof(last)), >=, 2);
	g_assert_nonnull(strstr(last, "its table block 0 is bad"));
	g_assert_cmpuint(stats(s).table_blocks_bad, ==, 1);
	g_assert_cmpuint(stats(s).chunks_read, ==, 0);
	g_assert_cmpuint(stats(s).chunks_bad, ==, 2);
	sbx_set_log_fn(NULL, NULL);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	s = NULL;
	g_assert_cmpint(mk_ftruncate(t.fd, t.f.meta_off + 10), ==, 0);
	g_assert_cmpint(sbx_snapshot_open(t.fd, SBX_OPEN_LAZY, &s), ==, -ENODATA);
	g_assert_null(s);
	g_free(buf);
	file_free(&t);
}

/* Flip bit 0 of the byte at off of fd's file. */
static void flip(int fd, uint64_t off)
{
	uint8_t b;

	g_assert_cmpint(mk_pread_full(fd, &b, 1, off), ==, 1);
	b ^= 0x01;
	g_assert_cmpint(mk_pwrite_full(fd, &b, 1, off), ==, 1);
}

/*
 * A damaged header or index (version 4), or header or table (version 3,
 * read whole at open): refused, nothing left (fds, mappings). A damaged
 * version-4 table block opens lazily (its chunks fail, test_bad_table_block)
 * and is refused by an eager load.
 */
static void test_bad_table(void)
{
	struct file t;
	struct sbx_snapshot *s = NULL, *l = NULL;
	unsigned fds, maps;

	file_make(&t, NCH, 7);
	g_assert_cmpuint(t.f.version, ==, 4);
	fds = mk_test_open_fds();
	maps = count_maps(t.size);
	for (uint64_t at = 0; at < t.f.meta_off; at += at >= t.f.idx_off && at < t.f.idx_off + 8 ? 1 : 97) {
		flip(t.fd, at);
		g_assert_cmpint(sbx_snapshot_open(t.fd, SBX_OPEN_LAZY, &s), ==, -EBADMSG);
		g_assert_null(s);
		flip(t.fd, at);
	}
	for (uint64_t at = t.f.meta_off; at < t.f.ws_off; at += 97) {
		flip(t.fd, at);
		g_assert_cmpint(sbx_snapshot_load(t.fd, &l), ==, -EBADMSG);
		g_assert_null(l);
		s = open_lazy(t.fd, 0);
		sbx_snapshot_unref(s);
		s = NULL;
		flip(t.fd, at);
	}
	g_assert_cmpuint(mk_test_open_fds(), ==, fds);
	g_assert_cmpuint(count_maps(t.size), ==, maps);
	/* Version 3 (what 0.3 wrote): its table is read at open, a flip in it refused there. */
	{
		struct sbx_snapshot *from;
		uint8_t hdr[4096];

		g_assert_cmpint(sbx_snapshot_load(t.fd, &from), ==, 0);
		g_assert_cmpint(sbx_snapshot_save_version(from, t.fd, CH, 0, 3), ==, 0);
		sbx_snapshot_unref(from);
		g_assert_cmpint(mk_pread_full(t.fd, hdr, sizeof(hdr), 0), ==, 4096);
		g_assert_cmpint(sbx_snapf_parse(hdr, sizeof(hdr), &t.f, "test"), ==, 0);
		g_assert_cmpuint(t.f.version, ==, 3);
	}
	for (uint64_t at = 0; at < t.f.ws_off; at += 97) {
		flip(t.fd, at);
		g_assert_cmpint(sbx_snapshot_open(t.fd, SBX_OPEN_LAZY, &s), ==, -EBADMSG);
		g_assert_null(s);
		flip(t.fd, at);
	}
	g_assert_cmpuint(mk_test_open_fds(), ==, fds);
	g_assert_cmpuint(count_maps(t.size), ==, maps);
	{
		struct sbx_mem *m;
		uint8_t *buf = g_malloc(t.size);

		s = open_lazy(t.fd, 0);
		g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
		g_assert_cmpint(sbx_mem_read(m, 0, buf, t.size), ==, 0);
		g_assert_cmpmem(buf, t.size, t.bytes, t.size);
		g_assert_cmpuint(stats(s).table_blocks_read, ==, 0);    /* version 3: none later */
		sbx_mem_free(m);
		sbx_snapshot_unref(s);
		g_free(buf);
	}
	file_free(&t);
}

/*
 * Version 4: open reads header and index only; a table block is read when
 * a chunk it describes is first needed. A bad one fails exactly those
 * chunks (host reads -EBADMSG, raw pointers SIGSEGV), counted and logged;
 * every other chunk reads right. 1030 chunks: three table blocks (chunks
 * 0..511, 512..1023, and 1024..1029 with the zero bitmap, which every
 * chunk needs).
 */
static void test_bad_table_block(void)
{
	enum { N = 1030 };
	struct log_seen log = { 0 };
	struct file t;
	struct sbx_snapshot *s, *l = NULL;
	struct sbx_mem *m;
	struct sbx_lazy_stats st = { .size = sizeof(st) };
	char last[512];
	uint8_t *buf = g_malloc(CH);

	file_make(&t, N, 21);
	g_assert_cmpuint(t.f.nblocks, ==, 3);
	s = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	g_assert_cmpuint(stats(s).table_blocks_read, ==, 0);
	/* Chunk 600: table block 1 and the bitmap's block 2. */
	g_assert_cmpint(sbx_mem_read(m, 600 * CH, buf, CH), ==, 0);
	g_assert_cmpmem(buf, CH, t.bytes + 600 * CH, CH);
	g_assert_cmpuint(stats(s).table_blocks_read, ==, 2);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);

	flip(t.fd, t.f.meta_off + SBX_SNAPF_BLOCK + 8 * (700 - 512) + 2);    /* chunk 700's entry */
	g_assert_cmpint(sbx_snapshot_load(t.fd, &l), ==, -EBADMSG);            /* eager: at once */
	g_assert_null(l);
	sbx_set_log_fn(log_seen_record, &log);
	s = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	for (unsigned k = 0; k < N; k += 37) {
		int r = sbx_mem_read(m, (uint64_t)k * CH, buf, CH);

		if (k >= 512 && k < 1024) {
			g_assert_cmpint(r, ==, -EBADMSG);
		} else {
			g_assert_cmpint(r, ==, 0);
			g_assert_cmpmem(buf, CH, t.bytes + (size_t)k * CH, CH);
		}
	}
	g_assert_cmpint(sbx_mem_read(m, 511 * CH, buf, CH), ==, 0);
	g_assert_cmpint(sbx_mem_read(m, 1024 * CH, buf, CH), ==, 0);
	g_assert_cmpint(sbx_mem_read(m, 512 * CH + 77, buf, 1), ==, -EBADMSG);
	g_assert_cmpint(sbx_mem_write_u8(m, 1023 * CH, 1), ==, -EBADMSG);
	st = stats(s);
	g_assert_cmpuint(st.table_blocks_bad, ==, 1);
	g_assert_cmpuint(st.table_blocks_read, ==, 3);
	g_assert_cmpuint(st.chunks_bad, ==, 14 + 2);     /* 518, 555, ..., 999 (step 37); 512, 1023 */
	g_assert_cmpint(log_seen_read(&log, last, sizeof(last)), >=, 2);
	g_assert_nonnull(strstr(last, "its table block 1 is bad; never mapped, accesses to it fail"));
	sbx_set_log_fn(NULL, NULL);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	/* A raw pointer: chunks in other blocks read right, one in the bad block faults. */
	expect_raw_fault(&t, 512, 1024, 700, 29);
	expect_raw_fault(&t, 512, 1024, 1023, 97);
	g_free(buf);
	file_free(&t);
}

/* ---- restore, trim, take, resize ------------------------------------------ */

static void assert_bytes(struct sbx_mem *m, const uint8_t *want, size_t len)
{
	uint8_t *buf = g_malloc(len);

	g_assert_cmpint(sbx_mem_read(m, 0, buf, len), ==, 0);
	g_assert_cmpmem(buf, len, want, len);
	g_free(buf);
}

static void test_restore(void)
{
	static const unsigned modes[] = { SBX_RESTORE_AUTO, SBX_RESTORE_COPY, SBX_RESTORE_TRIM,
					  SBX_RESTORE_REMAP };
	const uint64_t npages = NCH * CH / PG;
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	struct sbx_mem_stats ms = { .size = sizeof(ms) };

	file_make(&t, NCH, 8);
	s = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	assert_bytes(m, t.bytes, t.size);       /* all loaded */
	for (unsigned k = 0; k < G_N_ELEMENTS(modes); k++) {
		uint64_t before, by_restore, by_reading;
		/* Two chunks written to (and a zero one). */
		g_assert_cmpint(sbx_mem_write_u32(m, 2 * CH + 8, 0xdeadbeef), ==, 0);
		g_assert_cmpint(sbx_mem_fill(m, 10 * CH + PG, 0x5a, 3 * PG), ==, 0);
		g_assert_cmpint(sbx_mem_write_u8(m, (uint64_t)ZERO_A * CH + 100, 1), ==, 0);
		g_assert_cmpint(sbx_mem_stats(m, &ms), ==, 0);
		g_assert_cmpuint(ms.dirty_pages, ==, 5);
		/* Only the written pages are private: the rest is the cache's, shared. */
		g_assert_cmpuint(ms.private_bytes, ==, 5 * PG);
		g_assert_cmpuint(ms.shared_bytes, ==, t.size - 5 * PG);
		before = stats(s).chunks_read;
		g_assert_cmpint(sbx_snapshot_restore(m, s, modes[k]), ==,
				modes[k] == SBX_RESTORE_REMAP ? (int64_t)npages : 5);
		by_restore = stats(s).chunks_read - before;
		assert_bytes(m, t.bytes, t.size);
		by_reading = stats(s).chunks_read - before - by_restore;
		/*
		 * Nothing is read from the file again: copy-back copies from the
		 * cache of verified chunks, dropped and remapped pages map it again.
		 */
		g_assert_cmpuint(by_restore, ==, 0);
		g_assert_cmpuint(by_reading, ==, 0);
	}
	/* Trim gives back clean pages; they page in again, right, when read. */
	g_assert_cmpint(sbx_mem_write_u8(m, 30 * CH, 9), ==, 0);
	g_assert_cmpint(sbx_mem_trim(m), ==, (int64_t)npages - 1);
	g_assert_cmpint(sbx_mem_stats(m, &ms), ==, 0);
	g_assert_cmpuint(ms.private_bytes, ==, PG);
	{
		uint8_t v;
		g_assert_cmpint(sbx_mem_read_u8(m, 30 * CH, &v), ==, 0);
		g_assert_cmpuint(v, ==, 9);
	}
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, 1);
	assert_bytes(m, t.bytes, t.size);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

/* Take from lazy memory (all of it loaded first), restore it onto and off a lazy snapshot, resize. */
static void test_take_resize(void)
{
	struct file t;
	struct sbx_snapshot *s, *taken;
	struct sbx_mem *m, *c;
	uint8_t *grown;

	file_make(&t, NCH, 9);
	s = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	g_assert_cmpint(sbx_mem_write_u64(m, 4 * CH, 77), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &taken), ==, 0);
	g_assert_false(sbx_snapshot_is_lazy(taken));
	g_assert_cmpmem((const uint8_t *)sbx_snapshot_data(taken) + 8 * CH, 8 * CH, t.bytes + 8 * CH, 8 * CH);
	g_assert_cmpint(sbx_snapshot_restore(m, s, 0), ==, NCH * CH / PG);    /* onto the lazy one again */
	assert_bytes(m, t.bytes, t.size);
	g_assert_cmpint(sbx_snapshot_restore(m, taken, 0), ==, NCH * CH / PG);
	assert_bytes(m, sbx_snapshot_data(taken), t.size);
	/* A classic region restored onto the lazy snapshot pages it in. */
	g_assert_cmpint(sbx_mem_new_from_snapshot(taken, &c), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(c, s, 0), ==, NCH * CH / PG);
	assert_bytes(c, t.bytes, t.size);
	sbx_mem_free(c);
	/* Resize: shrink keeps the lazy head, grow moves it (registered again) and adds zeros. */
	g_assert_cmpint(sbx_snapshot_restore(m, s, 0), ==, NCH * CH / PG);
	g_assert_cmpint(sbx_mem_resize(m, 20 * CH), ==, 0);
	assert_bytes(m, t.bytes, 20 * CH);
	g_assert_cmpint(sbx_mem_resize(m, 40 * CH), ==, 0);
	grown = g_malloc0(40 * CH);
	memcpy(grown, t.bytes, 20 * CH);
	assert_bytes(m, grown, 40 * CH);
	g_assert_cmpint(sbx_mem_resize(m, NCH * CH), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, 0), ==, NCH * CH / PG);
	assert_bytes(m, t.bytes, t.size);
	/* Unloaded pages of a moved region still page in (through a raw pointer too). */
	g_assert_cmpint(sbx_mem_resize(m, 2 * NCH * CH), ==, 0);
	{
		const volatile uint8_t *p = sbx_mem_host_ptr(m, true);
		g_assert_cmpuint(p[31 * CH + 1], ==, t.bytes[31 * CH + 1]);
		g_assert_cmpuint(p[33 * CH + 1], ==, 0);
	}
	g_assert_cmpint(sbx_mem_zero(m), ==, 0);
	g_assert_cmpint(sbx_mem_read_u8(m, 31 * CH, grown), ==, 0);
	g_assert_cmpuint(grown[0], ==, 0);
	g_free(grown);
	sbx_mem_free(m);
	sbx_snapshot_unref(taken);
	sbx_snapshot_unref(s);
	file_free(&t);
}

/* ---- working sets ----------------------------------------------------------- */

static void wait_prefetched(struct sbx_snapshot *s)
{
	for (int i = 0; i < 2000 && stats(s).prefetch_queued; i++)
		g_usleep(5000);
	g_assert_cmpuint(stats(s).prefetch_queued, ==, 0);
}

static void test_working_set(void)
{
	static const unsigned touch[] = { 1, 2, 5, 6, 7, 11, 20, 21, 22, 23, 31 };
	uint64_t ws[1], again[1], want = 0;
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	struct sbx_lazy_stats st = { .size = sizeof(st) };
	const volatile uint8_t *p;

	file_make(&t, NCH, 10);
	p = lazy_region(&t, 0, &s, &m);
	for (unsigned i = 0; i < G_N_ELEMENTS(touch); i++) {
		g_assert_cmpuint(p[touch[i] * CH + 99], ==, t.bytes[touch[i] * CH + 99]);
		want |= 1ull << touch[i];
	}
	g_assert_cmpint(sbx_mem_working_set(m, ws, 0), ==, -ENOBUFS);
	g_assert_cmpint(sbx_mem_working_set(m, ws, 1), ==, G_N_ELEMENTS(touch));
	g_assert_cmphex(ws[0], ==, want);
	/* Inside the file: later opens prefetch it, on the service thread. */
	g_assert_cmpint(sbx_snapshot_write_working_set(t.fd, ws, 1), ==, 0);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	s = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	wait_prefetched(s);
	st = stats(s);
	g_assert_cmpuint(st.chunks_prefetched, ==, G_N_ELEMENTS(touch) - 1);
	g_assert_cmpuint(st.chunks_zero, ==, 1);        /* chunk 7: the zero page, not read */
	g_assert_cmpuint(st.chunks_read, ==, G_N_ELEMENTS(touch) - 1);
	p = sbx_mem_host_ptr(m, true);
	for (unsigned i = 0; i < G_N_ELEMENTS(touch); i++)
		g_assert_cmpuint(p[touch[i] * CH + 5], ==, t.bytes[touch[i] * CH + 5]);
	g_assert_cmpuint(stats(s).faults, ==, 0);       /* all there before the touch */
	g_assert_cmpint(sbx_mem_working_set(m, again, 1), ==, G_N_ELEMENTS(touch));
	g_assert_cmphex(again[0], ==, want);
	/* A second region prefetches too; SBX_OPEN_NO_PREFETCH does not. */
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	s = open_lazy(t.fd, SBX_OPEN_NO_PREFETCH);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	g_usleep(20000);
	g_assert_cmpuint(stats(s).chunks_prefetched, ==, 0);
	/* Beside the file: set by the caller. */
	g_assert_cmpint(sbx_snapshot_set_working_set(s, ws, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_set_working_set(s, ws, 1), ==, 0);
	{
		struct sbx_mem *m2;
		g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m2), ==, 0);
		wait_prefetched(s);
		g_assert_cmpuint(stats(s).chunks_prefetched, ==, G_N_ELEMENTS(touch) - 1);
		sbx_mem_free(m2);
	}
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	/* Erased; a damaged one is ignored (the data still loads). */
	g_assert_cmpint(sbx_snapshot_write_working_set(t.fd, NULL, 0), ==, 0);
	s = open_lazy(t.fd, 0);
	g_assert_cmpuint(stats(s).prefetch_queued, ==, 0);
	sbx_snapshot_unref(s);
	g_assert_cmpint(sbx_snapshot_write_working_set(t.fd, ws, 1), ==, 0);
	{
		uint8_t b = 0xff;
		g_assert_cmpint(mk_pwrite_full(t.fd, &b, 1, t.f.ws_off + 32), ==, 1);
	}
	s = open_lazy(t.fd, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	g_usleep(20000);
	g_assert_cmpuint(stats(s).chunks_prefetched, ==, 0);
	assert_bytes(m, t.bytes, t.size);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

/* Faults on chunks not prefetched yet are served before the prefetch goes on. */
static void test_prefetch_priority(void)
{
	enum { N = 256 };               /* 16 MiB */
	uint64_t ws[N / 64];
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	struct toucher th = { 0 };
	pthread_t tid;

	file_make(&t, N, 11);
	memset(ws, 0xff, sizeof(ws));
	g_assert_cmpint(sbx_snapshot_write_working_set(t.fd, ws, N / 64), ==, 0);
	s = open_lazy(t.fd, SBX_OPEN_NO_THREAD);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	g_assert_cmpuint(stats(s).prefetch_queued, ==, N);
	th.p = sbx_mem_host_ptr(m, true);
	th.off = (N - 3) * (size_t)CH + 11;     /* last in the prefetch's order */
	g_assert_cmpint(pthread_create(&tid, NULL, touch_thread, &th), ==, 0);
	{
		/*
		 * Its fault event, on the userfaultfd itself (the fd the caller
		 * polls is also readable for the queued prefetch): before it, no
		 * service call, so the prefetch has not moved.
		 */
		struct pollfd pfd = { s->lazy->uffd, POLLIN, 0 };

		g_assert_cmpint(poll(&pfd, 1, 30000), ==, 1);
	}
	/* One call: the fault first, then at most one chunk of prefetch. */
	g_assert_cmpint(sbx_snapshot_service(s), >=, 1);
	g_assert_cmpint(pthread_join(tid, NULL), ==, 0);
	g_assert_cmpuint(th.got, ==, t.bytes[th.off]);
	g_assert_cmpuint(stats(s).faults, ==, 1);
	g_assert_cmpuint(stats(s).chunks_prefetched, <=, 1);
	g_assert_cmpuint(stats(s).prefetch_queued, >=, N - 2);
	while (stats(s).prefetch_queued)
		g_assert_cmpint(sbx_snapshot_service(s), >, 0);
	g_assert_cmpint(sbx_snapshot_service(s), ==, 0);
	assert_bytes(m, t.bytes, t.size);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

/* ---- raw images, old versions -------------------------------------------- */

static void test_raw_image(void)
{
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	const size_t big = SBX_CHUNK_DEFAULT;  /* a raw image's chunks */
	const size_t len = 3 * big + 1000;     /* not a page multiple: rounded up with zeros */
	const size_t size = 3 * big + PG;
	uint8_t *want = g_malloc0(size);
	int fd;

	file_make(&t, NCH, 12);
	fd = mk_memfd_create("raw-image", 0);
	g_assert_cmpint(fd, >=, 0);
	memcpy(want, t.bytes, len);
	memset(want + big, 0, big);             /* chunk 1 all zero: the zero page, no memory */
	g_assert_cmpint(mk_pwrite_full(fd, want, len, 0), ==, (ssize_t)len);
	s = open_lazy(fd, SBX_OPEN_RAW);
	g_assert_cmpuint(sbx_snapshot_size(s), ==, size);
	g_assert_cmpuint(stats(s).checksum, ==, SBX_CHECKSUM_NONE);
	g_assert_cmpuint(stats(s).chunk_size, ==, big);
	g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
	assert_bytes(m, want, size);
	g_assert_cmpmem(sbx_snapshot_data(s), size, want, size);
	g_assert_cmpuint(stats(s).chunks_verified, ==, 0);
	g_assert_cmpuint(stats(s).chunks_read, ==, 4);  /* once each: the view is the cache */
	g_assert_cmpuint(stats(s).chunks_zero, ==, 2);  /* chunk 1 in region and view */
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	/* Without LAZY: a sealed copy. Errors: empty, unknown flags, NO_THREAD without LAZY. */
	g_assert_cmpint(sbx_snapshot_open(fd, SBX_OPEN_RAW, &s), ==, 0);
	g_assert_false(sbx_snapshot_is_lazy(s));
	g_assert_cmpmem(sbx_snapshot_data(s), size, want, size);
	sbx_snapshot_unref(s);
	g_assert_cmpint(mk_ftruncate(fd, 0), ==, 0);
	g_assert_cmpint(sbx_snapshot_open(fd, SBX_OPEN_LAZY | SBX_OPEN_RAW, &s), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_open(fd, SBX_OPEN_NO_THREAD, &s), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_open(fd, 0x100, &s), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_open(-1, SBX_OPEN_LAZY, &s), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_open(fd, SBX_OPEN_LAZY, NULL), ==, -EINVAL);
	close(fd);
	g_free(want);
	file_free(&t);
}

/* Versions 1 and 2 have no chunk table: a lazy open loads them whole. */
static void test_old_versions(void)
{
	struct file t;
	struct sbx_snapshot *s, *l;
	uint8_t hdr[4096] = { 0 };
	uint64_t v64;
	uint32_t v32;
	int fd = mk_memfd_create("v2", 0);

	file_make(&t, 4, 13);
	memcpy(hdr, "MKSBXSNP", 8);
	v32 = 2;
	memcpy(hdr + 8, &v32, 4);
	v32 = 4096;
	memcpy(hdr + 12, &v32, 4);
	v64 = 4096;
	memcpy(hdr + 16, &v64, 8);
	v64 = t.size;
	memcpy(hdr + 24, &v64, 8);
	v64 = sbx_hash64(t.bytes, t.size, 0);
	memcpy(hdr + 32, &v64, 8);
	v64 = sbx_snapf_hdr_sum(hdr);
	memcpy(hdr + 40, &v64, 8);
	g_assert_cmpint(mk_pwrite_full(fd, hdr, 4096, 0), ==, 4096);
	g_assert_cmpint(mk_pwrite_full(fd, t.bytes, t.size, 4096), ==, (ssize_t)t.size);
	g_assert_cmpint(sbx_snapshot_open(fd, SBX_OPEN_LAZY, &s), ==, 0);
	g_assert_false(sbx_snapshot_is_lazy(s));
	g_assert_cmpmem(sbx_snapshot_data(s), t.size, t.bytes, t.size);
	g_assert_cmpint(sbx_snapshot_lazy_stats(s, &(struct sbx_lazy_stats){ 0 }), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_service(s), ==, -ENOTSUP);
	g_assert_cmpint(sbx_snapshot_fault_fd(s), ==, -ENOTSUP);
	g_assert_cmpint(sbx_snapshot_write_working_set(fd, (uint64_t[1]){ 1 }, 1), ==, -EOPNOTSUPP);
	g_assert_cmpint(sbx_snapshot_open(fd, 0, &l), ==, 0);
	sbx_snapshot_unref(l);
	sbx_snapshot_unref(s);
	close(fd);
	file_free(&t);
}

/* ---- processes ------------------------------------------------------------- */

/* A fork()ed child has no lazy mapping (MADV_DONTFORK): its access faults, never reads zeros. */
static void test_fork(void)
{
	struct file t;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	const volatile uint8_t *p;
	pid_t pid;
	int status;

	file_make(&t, NCH, 14);
	p = lazy_region(&t, 0, &s, &m);
	g_assert_cmpuint(p[PG], ==, t.bytes[PG]);       /* loaded in the parent */
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		/* Neither loaded nor unloaded pages are there: the kernel's SIGSEGV. */
		signal(SIGSEGV, SIG_DFL);
		_exit(p[PG] == t.bytes[PG] && p[20 * CH] == 0 ? 3 : 4);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGSEGV);
	assert_bytes(m, t.bytes, t.size);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

/*
 * A process killed while it serves faults (its service thread inside a
 * read, an install, or writing a working set into the file): nothing
 * hangs, and the file opens and loads right afterwards (a working set
 * torn by the kill is ignored, never half used).
 */
static void kill_child_loop(int fd)
{
	GRand *rng = g_rand_new();

	for (;;) {
		struct sbx_snapshot *s = open_lazy(fd, 0);
		struct sbx_mem *m;
		const volatile uint8_t *p;
		uint64_t ws[4];
		unsigned sum = 0;

		g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
		p = sbx_mem_host_ptr(m, true);
		for (unsigned i = 0; i < 40; i++)
			sum += p[(size_t)g_rand_int_range(rng, 0, 4 * NCH) * (CH / 4)];
		g_assert_cmpint(sbx_mem_working_set(m, ws, 4), >=, 0);
		g_assert_cmpint(sbx_snapshot_write_working_set(fd, ws, 4), ==, 0);
		sbx_mem_free(m);
		sbx_snapshot_unref(s);
		(void)sum;
	}
}

static void test_killed_while_serving(void)
{
	struct file t;
	GRand *rng = g_rand_new_with_seed(16);
	unsigned kills = 0;

	file_make(&t, 4 * NCH, 15);
	for (unsigned i = 0; i < 30; i++) {
		struct sbx_snapshot *s, *l;
		struct sbx_mem *m;
		int status;
		pid_t pid = fork();

		g_assert_cmpint(pid, >=, 0);
		if (pid == 0)
			kill_child_loop(t.fd);        /* never returns */
		g_usleep((gulong)g_rand_int_range(rng, 2000, 30000));
		g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		kills++;
		g_assert_cmpint(sbx_snapshot_load(t.fd, &l), ==, 0);
		g_assert_cmpmem(sbx_snapshot_data(l), t.size, t.bytes, t.size);
		sbx_snapshot_unref(l);
		s = open_lazy(t.fd, 0);
		g_assert_cmpint(sbx_mem_new_from_snapshot(s, &m), ==, 0);
		assert_bytes(m, t.bytes, t.size);
		g_assert_cmpuint(stats(s).chunks_bad, ==, 0);
		sbx_mem_free(m);
		sbx_snapshot_unref(s);
	}
	g_test_message("%u children killed while serving faults; the file loaded right after each", kills);
	g_rand_free(rng);
	file_free(&t);
}

/* ---- failed calls -------------------------------------------------------- */

/* Each allocation of the lazy calls failed in turn: -ENOMEM, nothing left behind, nothing changed. */
static void test_alloc_failures(void)
{
	struct file t;
	struct sbx_snapshot *s = NULL;
	struct sbx_mem *m = NULL;
	struct sbx_mem_image im;
	unsigned fds, maps;
	uint64_t ws[1] = { 0x6 };
	long fails;
	int r;

	file_make(&t, NCH, 17);
	g_assert_cmpint(sbx_snapshot_write_working_set(t.fd, ws, 1), ==, 0);
	fds = mk_test_open_fds();
	maps = count_maps(t.size);
	fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_open(t.fd, SBX_OPEN_LAZY, &s), {
		g_assert_null(s);
		g_assert_cmpuint(mk_test_open_fds(), ==, fds);
		g_assert_cmpuint(count_maps(t.size), ==, maps);
	});
	g_test_message("sbx_snapshot_open (lazy): %ld allocations", fails);
	g_assert_cmpint(fails, >=, 8);
	fds = mk_test_open_fds();
	maps = count_maps(t.size);
	fails = MK_FAIL_EACH_ALLOC(r, sbx_mem_new_from_snapshot(s, &m), {
		g_assert_null(m);
		g_assert_cmpuint(mk_test_open_fds(), ==, fds);
		g_assert_cmpuint(count_maps(t.size), ==, maps);
	});
	g_assert_cmpint(fails, >=, 4);
	/* A host copy's chunk buffer (a chunk not in the cache yet); a restore's copy-back buffer. */
	{
		uint8_t b;
		uint64_t read_before = stats(s).chunks_read;

		fails = MK_FAIL_EACH_ALLOC(r, sbx_mem_read_u8(m, 17 * CH, &b),
					   g_assert_cmpuint(stats(s).chunks_read, ==, read_before));
		g_assert_cmpint(fails, ==, 1);
		g_assert_cmpuint(b, ==, t.bytes[17 * CH]);
	}
	g_assert_cmpint(sbx_mem_write_u8(m, 9 * CH, 3), ==, 0);
	sbx_mem_image_take(m, &im);
	fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_restore(m, s, SBX_RESTORE_COPY),
				   sbx_mem_image_check(m, &im));
	g_assert_cmpint(fails, ==, 1);
	g_assert_cmpint(r, ==, 1);
	sbx_mem_image_free(&im);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_REMAP), >, 0);
	{
		struct sbx_snapshot *taken = NULL;
		fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_take(m, &taken), g_assert_null(taken));
		g_assert_cmpint(fails, >=, 1);
		g_assert_cmpmem(sbx_snapshot_data(taken), t.size, t.bytes, t.size);
		sbx_snapshot_unref(taken);
	}
	fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_set_working_set(s, ws, 1), (void)0);
	g_assert_cmpint(fails, ==, 1);
	fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_write_working_set(t.fd, ws, 1), (void)0);
	g_assert_cmpint(fails, >=, 2);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	file_free(&t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sbx/lazy/open", test_open);
	g_test_add_func("/sbx/lazy/ext-stats", test_ext_stats);
	g_test_add_func("/sbx/lazy/raw-pointer", test_raw_pointer);
	g_test_add_func("/sbx/lazy/caller-loop", test_caller_loop);
	g_test_add_func("/sbx/lazy/bad-chunk", test_bad_chunk);
	g_test_add_func("/sbx/lazy/bad-chunk-raw-pointer", test_bad_chunk_raw);
	g_test_add_func("/sbx/lazy/truncated", test_truncated);
	g_test_add_func("/sbx/lazy/bad-table", test_bad_table);
	g_test_add_func("/sbx/lazy/bad-table-block", test_bad_table_block);
	g_test_add_func("/sbx/lazy/restore", test_restore);
	g_test_add_func("/sbx/lazy/take-resize", test_take_resize);
	g_test_add_func("/sbx/lazy/working-set", test_working_set);
	g_test_add_func("/sbx/lazy/prefetch-priority", test_prefetch_priority);
	g_test_add_func("/sbx/lazy/raw-image", test_raw_image);
	g_test_add_func("/sbx/lazy/old-versions", test_old_versions);
	g_test_add_func("/sbx/lazy/fork", test_fork);
	g_test_add_func("/sbx/lazy/killed-while-serving", test_killed_while_serving);
	g_test_add_func("/sbx/lazy/alloc-failures", test_alloc_failures);
	return g_test_run();
}
