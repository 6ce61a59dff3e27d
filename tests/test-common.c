/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of common/: size math, formatter, syscall wrappers. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "common/ext.h"
#include "common/fmt.h"
#include "common/log.h"
#include "tests/crc32c-ref.h"
#include "tests/log-seen.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "common/uffd.h"

static void test_size_math(void)
{
	uint64_t v;
	size_t s;

	g_assert_cmpint(mk_add_u64(1, 2, &v), ==, 0);
	g_assert_cmpuint(v, ==, 3);
	g_assert_cmpint(mk_add_u64(UINT64_MAX, 1, &v), ==, -EOVERFLOW);
	g_assert_cmpint(mk_mul_size(4096, 4096, &s), ==, 0);
	g_assert_cmpuint(s, ==, 1u << 24);
	g_assert_cmpint(mk_add_size(SIZE_MAX, 1, &s), ==, -EOVERFLOW);

	g_assert_true(mk_is_pow2(1));
	g_assert_true(mk_is_pow2(4096));
	g_assert_false(mk_is_pow2(0));
	g_assert_false(mk_is_pow2(12));

	g_assert_cmpint(mk_align_up(1, 4096, &v), ==, 0);
	g_assert_cmpuint(v, ==, 4096);
	g_assert_cmpint(mk_align_up(8192, 4096, &v), ==, 0);
	g_assert_cmpuint(v, ==, 8192);
	g_assert_cmpint(mk_align_up(0, 4096, &v), ==, 0);
	g_assert_cmpuint(v, ==, 0);
	g_assert_cmpint(mk_align_up(UINT64_MAX - 10, 4096, &v), ==, -EOVERFLOW);
	g_assert_cmpint(mk_align_up(5, 3, &v), ==, -EINVAL);
	g_assert_true(mk_is_aligned(0x200000, 0x200000));
	g_assert_false(mk_is_aligned(0x201000, 0x200000));
	g_assert_false(mk_is_aligned(16, 0));

	g_assert_true(mk_range_ok(0, 10, 10));
	g_assert_true(mk_range_ok(10, 0, 10));
	g_assert_false(mk_range_ok(11, 0, 10));
	g_assert_false(mk_range_ok(5, 6, 10));
	g_assert_false(mk_range_ok(UINT64_MAX, 2, UINT64_MAX));
	g_assert_cmpuint(mk_log2(4096), ==, 12);
	g_assert_cmpuint(mk_log2(1), ==, 0);
	g_assert_cmpuint(mk_page_size(), ==, (size_t)sysconf(_SC_PAGESIZE));
}

static void test_fmt(void)
{
	char buf[64];
	int n;

	n = mk_fmt(buf, sizeof(buf), "a%sb%dc%u", "X", -12, 34u);
	g_assert_cmpstr(buf, ==, "aXb-12c34");
	g_assert_cmpint(n, ==, 9);
	mk_fmt(buf, sizeof(buf), "%x %X %016llx %lu %zu", 255u, 255u, 0x1234ull, 7ul, (size_t)9);
	g_assert_cmpstr(buf, ==, "ff FF 0000000000001234 7 9");
	mk_fmt(buf, sizeof(buf), "%lld %ld %i", LLONG_MIN, -1l, INT_MIN);
	g_assert_cmpstr(buf, ==, "-9223372036854775808 -1 -2147483648");
	const char *volatile null_str = NULL;
	mk_fmt(buf, sizeof(buf), "%5d|%s|%05d|%c|%%|%s|%3s", 42, "", -42, 'q', null_str, "ab");
	g_assert_cmpstr(buf, ==, "   42||-0042|q|%|(null)| ab");
	mk_fmt(buf, sizeof(buf), "%o %04o %lo", 0666u, 7u, 01777ul);
	g_assert_cmpstr(buf, ==, "666 0007 1777");
	mk_fmt(buf, sizeof(buf), "%p", (void *)0x1000);
	g_assert_cmpstr(buf, ==, "0x1000");

	/* Truncation: snprintf semantics, always terminated. */
	n = mk_fmt(buf, 5, "%s", "abcdefgh");
	g_assert_cmpint(n, ==, 8);
	g_assert_cmpstr(buf, ==, "abcd");
	n = mk_fmt(buf, 0, "%d", 123);
	g_assert_cmpint(n, ==, 3);

	/* Agrees with snprintf over a range of values. */
	for (long long v = -100000; v <= 100000; v += 997) {
		char ref[64];
		snprintf(ref, sizeof(ref), "%lld:%llx:%08llu", v, (unsigned long long)v,
			 (unsigned long long)(v < 0 ? -v : v));
		mk_fmt(buf, sizeof(buf), "%lld:%llx:%08llu", v, (unsigned long long)v,
		       (unsigned long long)(v < 0 ? -v : v));
		g_assert_cmpstr(buf, ==, ref);
	}
}

static void test_errno_untouched(void)
{
	void *p;

	errno = 1234;
	g_assert_cmpint(mk_mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &p), ==, -EINVAL);
	g_assert_cmpint(errno, ==, 1234);
	g_assert_cmpint(mk_close(-1), ==, -EBADF);
	g_assert_cmpint(errno, ==, 1234);
	g_assert_cmpint(mk_openat(AT_FDCWD, "/nonexistent/memkit", O_RDONLY, 0), ==, -ENOENT);
	g_assert_cmpint(errno, ==, 1234);
}

static void test_guarded(void)
{
	size_t ps = mk_page_size();
	void *p;

	g_assert_cmpint(mk_map_guarded(0, ps, PROT_READ | PROT_WRITE, 0, &p), ==, -EINVAL);
	g_assert_cmpint(mk_map_guarded(ps + 1, ps, PROT_READ | PROT_WRITE, 0, &p), ==, -EINVAL);
	g_assert_cmpint(mk_map_guarded(4 * ps, ps, PROT_READ | PROT_WRITE, 0, &p), ==, 0);
	memset(p, 0xa5, 4 * ps);
	if (g_test_subprocess()) {
		((volatile char *)p)[4 * ps] = 1;  /* the guard page after */
		return;
	}
	g_test_trap_subprocess(NULL, 0, 0 /* G_TEST_SUBPROCESS_DEFAULT, from GLib 2.74 */);
	g_test_trap_assert_failed();
	g_assert_cmpint(mk_unmap_guarded(p, 4 * ps, ps), ==, 0);
}

static void test_memfd_seals(void)
{
	int fd = mk_memfd_create("memkit-test", MFD_ALLOW_SEALING);
	int seals;

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(fcntl(fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
	g_assert_cmpint(mk_ftruncate(fd, 8192), ==, 0);
	g_assert_cmpint(mk_pwrite_full(fd, "hello", 5, 4096), ==, 5);
	g_assert_cmpint(mk_add_seals(fd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), ==, 0);
	seals = mk_get_seals(fd);
	g_assert_cmpint(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), ==,
			F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	g_assert_cmpint(mk_ftruncate(fd, 4096), ==, -EPERM);
	g_assert_cmpint(mk_pwrite_full(fd, "x", 1, 0), ==, -EPERM);
	g_assert_cmpint(mk_add_seals(fd, F_SEAL_FUTURE_WRITE), ==, -EPERM);
	g_assert_cmpint(mk_ftruncate(fd, UINT64_MAX), ==, -EINVAL);
	mk_close(fd);
}

static void test_files(void)
{
	g_autofree char *dir = g_dir_make_tmp("memkit-common-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "f", NULL);
	g_autofree char *link = g_build_filename(dir, "l", NULL);
	struct statx stx;
	struct stat st;
	char buf[8];
	int fd, fd2;

	fd = mk_openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_EXCL, 0600);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(mk_openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_EXCL, 0600), ==, -EEXIST);
	g_assert_cmpint(mk_fallocate(fd, 0, 0, 65536), ==, 0);
	g_assert_cmpint(mk_fstat(fd, &st), ==, 0);
	g_assert_cmpint(st.st_size, ==, 65536);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(mk_fallocate(fd, 0, UINT64_MAX, 2), ==, -EINVAL);
	g_assert_cmpint(mk_statx(AT_FDCWD, path, 0, STATX_SIZE | STATX_INO, &stx), ==, 0);
	g_assert_cmpuint(stx.stx_size, ==, 65536);
	g_assert_cmpuint(stx.stx_ino, ==, st.st_ino);
	g_assert_cmpint(mk_pwrite_full(fd, "abc", 3, 100), ==, 3);
	g_assert_cmpint(mk_pread_full(fd, buf, 3, 100), ==, 3);
	g_assert_cmpmem(buf, 3, "abc", 3);
	g_assert_cmpint(mk_pread_full(fd, buf, 8, 65536), ==, 0);
	g_assert_cmpint(mk_fchmod(fd, 0640), ==, 0);
	g_assert_cmpint(mk_fstat(fd, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0640);
	errno = 1234;
	g_assert_cmpint(mk_fchmod(-1, 0600), ==, -EBADF);
	g_assert_cmpint(errno, ==, 1234);

	/* flock: a second open file description cannot take the lock. */
	g_assert_cmpint(mk_flock(fd, LOCK_EX | LOCK_NB), ==, 0);
	fd2 = mk_openat(AT_FDCWD, path, O_RDWR, 0);
	g_assert_cmpint(fd2, >=, 0);
	g_assert_cmpint(mk_flock(fd2, LOCK_EX | LOCK_NB), ==, -EWOULDBLOCK);
	mk_close(fd2);

	/* O_NOFOLLOW is always on. */
	g_assert_cmpint(symlink(path, link), ==, 0);
	g_assert_cmpint(mk_openat(AT_FDCWD, link, O_RDONLY, 0), ==, -ELOOP);

	g_assert_cmpint(mk_unlinkat(AT_FDCWD, link, 0), ==, 0);
	g_assert_cmpint(mk_unlinkat(AT_FDCWD, path, 0), ==, 0);
	g_assert_cmpint(mk_unlinkat(AT_FDCWD, path, 0), ==, -ENOENT);
	mk_close(fd);
	g_rmdir(dir);
}

static void test_proc_start_time(void)
{
	uint64_t a, b, c;
	pid_t child;
	int status;

	g_assert_cmpint(mk_getpid(), ==, getpid());
	g_assert_cmpint(mk_proc_start_time(mk_getpid(), &a), ==, 0);
	g_assert_cmpint(mk_proc_start_time(mk_getpid(), &b), ==, 0);
	g_assert_cmpuint(a, ==, b);
	g_assert_cmpuint(a, >, 0);
	g_assert_cmpint(mk_proc_start_time(0, &a), ==, -EINVAL);

	child = fork();
	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	g_assert_cmpint(mk_proc_start_time(child, &c), ==, 0);
	g_assert_cmpuint(c, >=, a);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	g_assert_cmpint(mk_proc_start_time(child, &c), ==, -ENOENT);
}

static void test_clock(void)
{
	uint64_t a = mk_now_ns(), b;

	g_assert_cmpint(mk_clock_ns(CLOCK_MONOTONIC, &b), ==, 0);
	g_assert_cmpuint(b, >=, a);
	g_assert_cmpint(mk_clock_ns((clockid_t)-100, &b), ==, -EINVAL);
}

static void *name_self(void *arg)
{
	g_autofree char *comm = NULL;
	int r;

	errno = 4321;
	r = mk_set_thread_name(arg);
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpint(errno, ==, 4321);
	g_assert_true(g_file_get_contents("/proc/thread-self/comm", &comm, NULL, NULL));
	g_assert_cmpstr(g_strchomp(comm), ==, "mk-named-thread");  /* 15 bytes kept */
	return NULL;
}

static void test_thread_name(void)
{
	pthread_t t;

	g_assert_cmpint(pthread_create(&t, NULL, name_self, (void *)"mk-named-thread-longer"), ==, 0);
	g_assert_cmpint(pthread_join(t, NULL), ==, 0);
	/* (No NULL case: sanitizers' prctl interceptors read the name first.) */
}

static void test_ids_and_sigmask(void)
{
	sigset_t usr1, old, now;

	errno = 1234;
	g_assert_cmpuint(mk_geteuid(), ==, geteuid());
	g_assert_cmpint(errno, ==, 1234);

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	g_assert_cmpint(mk_sigmask(SIG_SETMASK, NULL, &old), ==, 0);
	g_assert_false(sigismember(&old, SIGUSR1));
	g_assert_cmpint(mk_sigmask(SIG_BLOCK, &usr1, NULL), ==, 0);
	g_assert_cmpint(mk_sigmask(SIG_BLOCK, NULL, &now), ==, 0);
	g_assert_true(sigismember(&now, SIGUSR1));
	g_assert_cmpint(errno, ==, 1234);
	/* an error number returned, not errno set: still -errno here */
	g_assert_cmpint(mk_sigmask(12345, &usr1, NULL), ==, -EINVAL);
	g_assert_cmpint(errno, ==, 1234);
	g_assert_cmpint(mk_sigmask(SIG_SETMASK, &old, NULL), ==, 0);
	g_assert_cmpint(mk_sigmask(SIG_SETMASK, NULL, &now), ==, 0);
	g_assert_false(sigismember(&now, SIGUSR1));
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void test_nanosleep(void)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old_sa;
	/* every 10 ms from 10 ms on: several interruptions of a 50 ms sleep */
	struct itimerval it = { { 0, 10000 }, { 0, 10000 } }, off = { { 0, 0 }, { 0, 0 } };
	struct timespec bad = { 0, 1000000000 }, neg = { -1, 0 }, zero = { 0, 0 };
	struct timespec ms50 = { 0, 50000000 };
	uint64_t t0, t1;

	errno = 1234;
	g_assert_cmpint(mk_nanosleep(&bad), ==, -EINVAL);
	g_assert_cmpint(errno, ==, 1234);
	g_assert_cmpint(mk_nanosleep(&neg), ==, -EINVAL);
	g_assert_cmpint(errno, ==, 1234);
	g_assert_cmpint(mk_nanosleep(&zero), ==, 0);

	/* no SA_RESTART (nanosleep is never restarted anyway): EINTR reaches the wrapper */
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	g_assert_cmpint(sigaction(SIGALRM, &sa, &old_sa), ==, 0);
	alarms = 0;
	g_assert_cmpint(setitimer(ITIMER_REAL, &it, NULL), ==, 0);
	t0 = mk_now_ns();
	g_assert_cmpint(mk_nanosleep(&ms50), ==, 0);
	t1 = mk_now_ns();
	g_assert_cmpint(setitimer(ITIMER_REAL, &off, NULL), ==, 0);
	g_assert_cmpint(sigaction(SIGALRM, &old_sa, NULL), ==, 0);
	g_assert_cmpint(errno, ==, 1234);
	g_assert_cmpint(alarms, >=, 1);
	g_assert_cmpuint(t1 - t0, >=, 50000000);
}

static void test_log_priority_names(void)
{
	g_assert_cmpint(mk_log_parse_priority("err"), ==, LOG_ERR);
	g_assert_cmpint(mk_log_parse_priority("error"), ==, LOG_ERR);
	g_assert_cmpint(mk_log_parse_priority("warning"), ==, LOG_WARNING);
	g_assert_cmpint(mk_log_parse_priority("warn"), ==, LOG_WARNING);
	g_assert_cmpint(mk_log_parse_priority("info"), ==, LOG_INFO);
	g_assert_cmpint(mk_log_parse_priority("debug"), ==, LOG_DEBUG);
	g_assert_cmpint(mk_log_parse_priority("7"), ==, 7);
	g_assert_cmpint(mk_log_parse_priority("0"), ==, 0);
	g_assert_cmpint(mk_log_parse_priority("8"), ==, -1);
	g_assert_cmpint(mk_log_parse_priority("77"), ==, -1);
	g_assert_cmpint(mk_log_parse_priority(""), ==, -1);
	g_assert_cmpint(mk_log_parse_priority(NULL), ==, -1);
	g_assert_cmpint(mk_log_parse_priority("DEBUG"), ==, -1);
}

static void test_log_callback(void)
{
	struct mk_log log = MK_LOG_INIT("libtest", "MEMKIT_TEST_LOG_UNSET");
	struct log_seen seen = { 0 };
	char big[2 * MK_LOG_LINE_MAX];

	/* silent by default: nothing enabled, nothing called */
	g_assert_false(mk_log_enabled(&log, LOG_ERR));
	mk_log(&log, LOG_ERR, "dropped %d", 1);

	mk_log_set_fn(&log, log_seen_record, &seen);
	g_assert_cmpint(mk_log_get_priority(&log), ==, LOG_ERR);
	mk_log(&log, LOG_DEBUG, "below the threshold");
	g_assert_cmpint(seen.calls, ==, 0);
	mk_log(&log, LOG_ERR, "pool %s: mode %o", "x", 0666);
	g_assert_cmpint(seen.calls, ==, 1);
	g_assert_cmpint(seen.priority, ==, LOG_ERR);
	g_assert_cmpstr(seen.msg, ==, "pool x: mode 666");

	mk_log_set_priority(&log, 99);
	g_assert_cmpint(mk_log_get_priority(&log), ==, LOG_DEBUG);
	mk_log_set_priority(&log, -3);
	g_assert_cmpint(mk_log_get_priority(&log), ==, LOG_EMERG);
	mk_log_set_priority(&log, LOG_DEBUG);
	mk_log(&log, LOG_DEBUG, "now %s", "through");
	g_assert_cmpint(seen.calls, ==, 2);
	g_assert_cmpstr(seen.msg, ==, "now through");

	/* long lines are cut, never overflow */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mk_log(&log, LOG_INFO, "%s", big);
	g_assert_cmpuint(strlen(seen.msg), ==, MK_LOG_LINE_MAX - 1);

	mk_log_set_fn(&log, NULL, NULL);
	g_assert_false(mk_log_enabled(&log, LOG_ERR));
	mk_log(&log, LOG_ERR, "silent again");
	g_assert_cmpint(seen.calls, ==, 3);
}

/* Run fn with fd 2 redirected into a pipe; returns what it wrote (g_free it). */
static char *capture_stderr(void (*fn)(struct mk_log *), struct mk_log *log)
{
	int p[2], saved;
	char buf[4096];
	ssize_t n;

	g_assert_cmpint(pipe2(p, O_CLOEXEC | O_NONBLOCK), ==, 0);
	saved = dup(2);
	g_assert_cmpint(saved, >=, 0);
	g_assert_cmpint(dup2(p[1], 2), ==, 2);
	fn(log);
	g_assert_cmpint(dup2(saved, 2), ==, 2);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return g_strdup(buf);
}

static void emit_two(struct mk_log *log)
{
	mk_log(log, LOG_DEBUG, "chunk %d refused", 3);
	mk_log(log, LOG_ERR, "second");
}

static void test_log_env(void)
{
	struct mk_log quiet = MK_LOG_INIT("libtest", "MEMKIT_TEST_LOG");
	struct mk_log loud = MK_LOG_INIT("libtest", "MEMKIT_TEST_LOG");
	struct log_seen seen = { 0 };
	char *out;

	/* a value that is not a priority changes nothing */
	g_setenv("MEMKIT_TEST_LOG", "verbose", TRUE);
	mk_log_init_env(&quiet);
	g_assert_cmpint(mk_log_get_priority(&quiet), ==, LOG_ERR);
	out = capture_stderr(emit_two, &quiet);
	g_assert_cmpstr(out, ==, "");
	g_free(out);

	g_setenv("MEMKIT_TEST_LOG", "debug", TRUE);
	mk_log_init_env(&loud);
	g_unsetenv("MEMKIT_TEST_LOG");
	g_assert_cmpint(mk_log_get_priority(&loud), ==, LOG_DEBUG);
	out = capture_stderr(emit_two, &loud);
	g_assert_cmpstr(out, ==, "libtest: chunk 3 refused\nlibtest: second\n");
	g_free(out);

	/* a callback takes the messages over from standard error, and gives them back */
	mk_log_set_fn(&loud, log_seen_record, &seen);
	out = capture_stderr(emit_two, &loud);
	g_assert_cmpstr(out, ==, "");
	g_assert_cmpint(seen.calls, ==, 2);
	g_free(out);
	mk_log_set_fn(&loud, NULL, NULL);
	out = capture_stderr(emit_two, &loud);
	g_assert_cmpstr(out, ==, "libtest: chunk 3 refused\nlibtest: second\n");
	g_free(out);
}

/* Callbacks that check they were handed their own userdata. */
static atomic_int log_mismatch, log_calls;
static void log_fn_a(void *userdata, int priority, const char *msg)
{
	(void)priority, (void)msg;
	atomic_fetch_add(&log_calls, 1);
	if (userdata != (void *)log_fn_a)
		atomic_fetch_add(&log_mismatch, 1);
}
static void log_fn_b(void *userdata, int priority, const char *msg)
{
	(void)priority, (void)msg;
	atomic_fetch_add(&log_calls, 1);
	if (userdata != (void *)log_fn_b)
		atomic_fetch_add(&log_mismatch, 1);
}

static atomic_int log_stop;
static void *log_flipper(void *arg)
{
	struct mk_log *log = arg;

	for (unsigned i = 0; !atomic_load(&log_stop); i++) {
		if (i & 1)
			mk_log_set_fn(log, log_fn_a, (void *)log_fn_a);
		else
			mk_log_set_fn(log, log_fn_b, (void *)log_fn_b);
	}
	return NULL;
}

static void test_log_fn_change_race(void)
{
	struct mk_log log = MK_LOG_INIT("libtest", "MEMKIT_TEST_LOG_UNSET");
	pthread_t t;

	mk_log_set_fn(&log, log_fn_a, (void *)log_fn_a);
	g_assert_cmpint(pthread_create(&t, NULL, log_flipper, &log), ==, 0);
	for (int i = 0; i < 200000; i++)
		mk_log(&log, LOG_ERR, "m%d", i);
	atomic_store(&log_stop, 1);
	pthread_join(t, NULL);
	/* a pair is never torn; a message may be dropped only while a writer is mid-change */
	g_assert_cmpint(atomic_load(&log_mismatch), ==, 0);
	g_assert_cmpint(atomic_load(&log_calls), >, 0);
}

static void test_alloc_fail_injection(void)
{
	void *p, *q;
	char *s;

	p = mk_malloc(16);
	g_assert_nonnull(p);
	free(p);

	/* two succeed, the third fails, then it is disarmed */
	mk_alloc_fail_after(2);
	p = mk_malloc(8);
	s = mk_strdup("abc");
	g_assert_nonnull(p);
	g_assert_cmpstr(s, ==, "abc");
	errno = 0;
	g_assert_null(mk_calloc(4, 4));
	g_assert_cmpint(errno, ==, ENOMEM);
	g_assert_true(mk_alloc_fail_fired());
	g_assert_false(mk_alloc_fail_fired());
	q = mk_malloc(8);
	g_assert_nonnull(q);
	free(q);

	/* a failed realloc leaves the block in place */
	mk_alloc_fail_after(0);
	g_assert_null(mk_realloc(s, 4096));
	g_assert_cmpstr(s, ==, "abc");
	g_assert_true(mk_alloc_fail_fired());
	q = mk_reallocarray(s, SIZE_MAX / 2, 4);
	g_assert_null(q);
	g_assert_false(mk_alloc_fail_fired());
	free(s);

	/* disarm before it fires */
	mk_alloc_fail_after(0);
	mk_alloc_fail_after(-1);
	g_assert_nonnull(q = mk_memdup("xy", 3));
	g_assert_cmpstr(q, ==, "xy");
	g_assert_false(mk_alloc_fail_fired());
	free(q);
	free(p);
}

/* CRC-32C: the standard check value, RFC 3720's vectors, every path equal to the bit-by-bit one. */
static void test_crc32c(void)
{
	static const struct { uint8_t fill; bool ramp; uint32_t want; } rfc3720[] = {
		{ 0x00, false, 0x8a9136aa }, { 0xff, false, 0x62a8ab43 }, { 0, true, 0x46dd794e },
	};
	const size_t big = 3 * 8192 * 2 + 3 * 256 * 3 + 277;
	uint8_t *buf = g_malloc(big + 16), v[32];
	GRand *rng = g_rand_new_with_seed(32);

	g_assert_cmphex(mk_crc32c(0, "123456789", 9), ==, 0xe3069283);
	g_assert_cmphex(mk_crc32c_soft(0, "123456789", 9), ==, 0xe3069283);
	g_assert_cmphex(mk_crc32c(0, "", 0), ==, 0);
	for (unsigned i = 0; i < G_N_ELEMENTS(rfc3720); i++) {
		for (unsigned k = 0; k < 32; k++)
			v[k] = rfc3720[i].ramp ? (uint8_t)k : rfc3720[i].fill;
		g_assert_cmphex(mk_crc32c(0, v, 32), ==, rfc3720[i].want);
		g_assert_cmphex(mk_crc32c_soft(0, v, 32), ==, rfc3720[i].want);
		g_assert_cmphex(mk_crc32c_path(1, 0, v, 32), ==, rfc3720[i].want);
	}
	for (size_t i = 0; i < big + 16; i++)
		buf[i] = (uint8_t)g_rand_int(rng);
	/* Every path (under 64 bytes, folding, the 16-byte and byte tails) at each alignment. */
	for (unsigned k = 0; k < 400; k++) {
		size_t off = k % 16, len = k < 300 ? k : k < 380 ? (size_t)g_rand_int_range(rng, 0, 3 * 8192 + 1000) : big - k;
		uint32_t want = crc32c_ref(buf + off, len);

		g_assert_cmphex(mk_crc32c(0, buf + off, len), ==, want);
		g_assert_cmphex(mk_crc32c_soft(0, buf + off, len), ==, want);
		for (unsigned path = 0; path <= 3; path++)
			g_assert_cmphex(mk_crc32c_path(path, 0, buf + off, len), ==, want);
		/* Continuing a CRC gives the CRC of the concatenation. */
		g_assert_cmphex(mk_crc32c(mk_crc32c(0, buf + off, len / 3), buf + off + len / 3,
					  len - len / 3), ==, want);
	}
	g_test_message("CRC-32C with %s", mk_crc32c_hw() ? "the SSE4.2 instruction" : "tables only");
	g_rand_free(rng);
	g_free(buf);
}

/* ---- userfaultfd plumbing (common/uffd.c) ---- */

struct uffd_case {
	int uffd;
	uint8_t *base;
	uint8_t src[4096];
	unsigned served;
};

/* The service: each fault gets its page filled with its page number. */
static void uffd_serve(void *p)
{
	struct uffd_case *c = p;
	uint64_t addr[16];
	int n;

	while ((n = mk_uffd_read_faults(c->uffd, addr, 16)) != -EAGAIN) {
		g_assert_cmpint(n, >=, 0);
		for (int i = 0; i < n; i++) {
			uint64_t page = addr[i] & ~4095ull;

			memset(c->src, (int)((page - (uintptr_t)c->base) / 4096), 4096);
			g_assert_cmpint(mk_uffd_copy(c->uffd, page, c->src, 4096), ==, 0);
			/* Counted before the wake: the woken access may look at once. */
			__atomic_add_fetch(&c->served, 1, __ATOMIC_RELAXED);
			mk_uffd_wake(c->uffd, page, 4096);
		}
	}
}

static void test_uffd(void)
{
	struct uffd_case c = { 0 };
	struct mk_uffd_thread t = { .stop_fd = -1 };
	uint8_t *src = g_malloc(16 * 4096);
	uint64_t addr[4];
	void *p;

	c.uffd = mk_uffd_open();
	if (c.uffd < 0) {
		g_test_skip("userfaultfd not allowed here (needs CAP_SYS_PTRACE or /dev/userfaultfd)");
		g_free(src);
		return;
	}
	g_assert_cmpint(mk_mmap(NULL, 32 * 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &p), ==, 0);
	c.base = p;
	g_assert_cmpint(mk_uffd_register(c.uffd, c.base, 16 * 4096), ==, 0);
	g_assert_cmpint(mk_uffd_read_faults(c.uffd, addr, 4), ==, -EAGAIN);
	/* Copies and zero pages go around pages already present. */
	memset(src, 0x11, 4096);
	g_assert_cmpint(mk_uffd_copy(c.uffd, (uintptr_t)c.base + 3 * 4096, src, 4096), ==, 0);
	g_assert_cmpint(mk_uffd_copy(c.uffd, (uintptr_t)c.base + 9 * 4096, src, 4096), ==, 0);
	memset(src, 0x22, 8 * 4096);
	g_assert_cmpint(mk_uffd_copy(c.uffd, (uintptr_t)c.base, src, 8 * 4096), ==, 0);
	g_assert_cmpint(mk_uffd_zero(c.uffd, (uintptr_t)c.base + 8 * 4096, 4 * 4096), ==, 0);
	for (unsigned i = 0; i < 12; i++)
		g_assert_cmpint(c.base[i * 4096 + 17], ==, i == 3 || i == 9 ? 0x11 : i < 8 ? 0x22 : 0);
	/* Outside the registration: nothing installed, -ENOENT. */
	g_assert_cmpint(mk_uffd_copy(c.uffd, (uintptr_t)c.base + 20 * 4096, src, 4096), ==, -ENOENT);
	/* Faults of this thread on pages 12..15, served by the service thread. */
	g_assert_cmpint(mk_uffd_thread_start(&t, c.uffd, uffd_serve, &c, "test-uffd"), ==, 0);
	g_assert_true(mk_uffd_thread_running(&t));
	for (unsigned i = 12; i < 16; i++)
		g_assert_cmpint(c.base[i * 4096 + 4095], ==, i);
	g_assert_cmpuint(__atomic_load_n(&c.served, __ATOMIC_RELAXED), ==, 4);
	mk_uffd_thread_stop(&t);
	g_assert_false(mk_uffd_thread_running(&t));
	mk_uffd_thread_stop(&t);        /* a no-op now */
	mk_munmap(c.base, 32 * 4096);
	mk_close(c.uffd);
	g_free(src);
}

/*
 * The extensible-struct helpers with two layouts of one struct, as a
 * library of the newer layout meets a caller of the older one and the
 * reverse (the libraries' own structs have one published layout so far).
 */
struct ext_v0 { size_t size; uint64_t a; uint32_t b; uint32_t c; };
struct ext_v1 { size_t size; uint64_t a; uint32_t b; uint32_t c; uint64_t d; uint64_t e; };
#define EXT_V0_SIZE sizeof(struct ext_v0)

static void test_ext_in(void)
{
	struct ext_v1 lib;
	union { struct ext_v1 v1; struct ext_v0 v0; unsigned char b[64]; } u;

	/* an older caller: its fields read, the newer ones zero */
	memset(&u, 0xa5, sizeof(u));
	u.v0 = (struct ext_v0){ .size = sizeof(struct ext_v0), .a = 1, .b = 2, .c = 3 };
	memset(&lib, 0x5a, sizeof(lib));
	g_assert_cmpint(mk_ext_in(&lib, sizeof(lib), &u, EXT_V0_SIZE), ==, 0);
	g_assert_cmpuint(lib.a, ==, 1);
	g_assert_cmpuint(lib.b, ==, 2);
	g_assert_cmpuint(lib.c, ==, 3);
	g_assert_cmpuint(lib.d, ==, 0);
	g_assert_cmpuint(lib.e, ==, 0);
	/* too small for the first layout */
	u.v0.size = EXT_V0_SIZE - 1;
	g_assert_cmpint(mk_ext_in(&lib, sizeof(lib), &u, EXT_V0_SIZE), ==, -EINVAL);
	u.v0.size = 0;
	g_assert_cmpint(mk_ext_in(&lib, sizeof(lib), &u, EXT_V0_SIZE), ==, -EINVAL);
	g_assert_cmpint(mk_ext_in(&lib, sizeof(lib), NULL, EXT_V0_SIZE), ==, -EINVAL);
	/* a newer caller meets the older library: zero tail fine, else -E2BIG */
	u.v1 = (struct ext_v1){ .size = sizeof(struct ext_v1), .a = 7 };
	struct ext_v0 old;
	g_assert_cmpint(mk_ext_in(&old, sizeof(old), &u, EXT_V0_SIZE), ==, 0);
	g_assert_cmpuint(old.a, ==, 7);
	u.v1.e = 1;
	g_assert_cmpint(mk_ext_in(&old, sizeof(old), &u, EXT_V0_SIZE), ==, -E2BIG);
	u.v1.e = 0;
	u.v1.d = 1ull << 63;
	g_assert_cmpint(mk_ext_in(&old, sizeof(old), &u, EXT_V0_SIZE), ==, -E2BIG);
}

static void test_ext_out(void)
{
	struct ext_v1 lib = { .size = 999, .a = 1, .b = 2, .c = 3, .d = 4, .e = 5 };
	union { struct ext_v1 v1; struct ext_v0 v0; unsigned char b[64]; } u;
	int64_t n;

	/* an older caller: its fields filled, nothing written past its size */
	memset(&u, 0xa5, sizeof(u));
	u.v0.size = sizeof(struct ext_v0);
	n = mk_ext_size(&u, EXT_V0_SIZE);
	g_assert_cmpint(n, ==, sizeof(struct ext_v0));
	mk_ext_out(&u, &lib, sizeof(lib), (size_t)n);
	g_assert_cmpuint(u.v0.size, ==, sizeof(struct ext_v0));
	g_assert_cmpuint(u.v0.a, ==, 1);
	g_assert_cmpuint(u.v0.b, ==, 2);
	g_assert_cmpuint(u.v0.c, ==, 3);
	for (size_t i = sizeof(struct ext_v0); i < sizeof(u); i++)
		g_assert_cmphex(u.b[i], ==, 0xa5);
	/* too small */
	u.v0.size = EXT_V0_SIZE - 1;
	g_assert_cmpint(mk_ext_size(&u, EXT_V0_SIZE), ==, -EINVAL);
	g_assert_cmpint(mk_ext_size(NULL, EXT_V0_SIZE), ==, -EINVAL);
	/* a newer caller, the older library: the tail zeroed, size = filled */
	struct ext_v0 old = { .size = 1, .a = 9, .b = 8, .c = 7 };
	memset(&u, 0xa5, sizeof(u));
	u.v1.size = sizeof(struct ext_v1);
	n = mk_ext_size(&u, EXT_V0_SIZE);
	mk_ext_out(&u, &old, sizeof(old), (size_t)n);
	g_assert_cmpuint(u.v1.size, ==, sizeof(struct ext_v0));
	g_assert_cmpuint(u.v1.a, ==, 9);
	g_assert_cmpuint(u.v1.c, ==, 7);
	g_assert_cmpuint(u.v1.d, ==, 0);
	g_assert_cmpuint(u.v1.e, ==, 0);
	for (size_t i = sizeof(struct ext_v1); i < sizeof(u); i++)
		g_assert_cmphex(u.b[i], ==, 0xa5);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/common/size-math", test_size_math);
	g_test_add_func("/common/fmt", test_fmt);
	g_test_add_func("/common/crc32c", test_crc32c);
	g_test_add_func("/common/uffd", test_uffd);
	g_test_add_func("/common/errno-untouched", test_errno_untouched);
	g_test_add_func("/common/guarded-map", test_guarded);
	g_test_add_func("/common/memfd-seals", test_memfd_seals);
	g_test_add_func("/common/files", test_files);
	g_test_add_func("/common/proc-start-time", test_proc_start_time);
	g_test_add_func("/common/clock", test_clock);
	g_test_add_func("/common/thread-name", test_thread_name);
	g_test_add_func("/common/geteuid-sigmask", test_ids_and_sigmask);
	g_test_add_func("/common/nanosleep", test_nanosleep);
	g_test_add_func("/common/alloc/fail-injection", test_alloc_fail_injection);
	g_test_add_func("/common/log/priority-names", test_log_priority_names);
	g_test_add_func("/common/ext/in", test_ext_in);
	g_test_add_func("/common/ext/out", test_ext_out);
	g_test_add_func("/common/log/callback", test_log_callback);
	g_test_add_func("/common/log/env", test_log_env);
	g_test_add_func("/common/log/fn-change-race", test_log_fn_change_race);
	return g_test_run();
}
