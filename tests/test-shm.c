/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libshm: pools, allocation, handles and every error path, against real
 * memfds, real files in /dev/shm, real processes (fork+exec of
 * tests/shm-child), real signals and a real SIGKILL.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "shm.h"
#include "common/sys.h"
#include "libshm/shmP.h"
#include "tests/ext-check.h"
#include "tests/log-seen.h"
#include "tests/test-shm-util.h"

#define CHILD MK_BUILDDIR "/tests/shm-child"

static char *unique_name(const char *tag)
{
	static unsigned n;
	return g_strdup_printf("t%d-%s-%u", (int)getpid(), tag, n++);
}

static struct shma_pool *new_pool(unsigned backend, const char *name, uint64_t chunk)
{
	struct shma_pool_opts o = { .size = sizeof(o), .backend = backend, .name = name,
				    .chunk_size = chunk };
	struct shma_pool *p = NULL;

	g_assert_cmpint(shma_pool_create(&o, &p), ==, 0);
	g_assert_nonnull(p);
	return p;
}

static void stat_of(struct shma_pool *p, struct shma_pool_stat *st)
{
	st->size = sizeof(*st);
	g_assert_cmpint(shma_pool_stat(p, st), ==, 0);
}

static bool file_exists(const char *dir, const char *fname)
{
	g_autofree char *path = g_build_filename(dir, fname, NULL);
	return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* ---- pools ---------------------------------------------------------------------- */

/*
 * Every struct libshm reads or fills follows the extensible-struct
 * convention (libshm(3)): size first, checked; outputs filled up to the
 * caller's size and no further; inputs larger than libshm's must be zero
 * past it. libshm 3.0's layouts are the first, so an older caller is only
 * a too-small one (-EINVAL); common/ext.h's two-layout case is in
 * test-common.
 */
static void test_ext_structs(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, "ext", 64u << 10);
	struct shma_pool *q = NULL;
	struct shma_handle h;
	void *ptr;
	union { struct shma_pool_opts o; unsigned char b[sizeof(struct shma_pool_opts) + 16]; } in;

	g_assert_cmpint(shma_alloc(p, 100, 0, &h, &ptr), ==, 0);
	EXT_CHECK_OUT(struct shma_pool_stat, shma_pool_stat(p, x));
	EXT_CHECK_OUT(struct shma_chunk_stat, shma_pool_chunk_stat(p, h.chunk & 0xffff, x));
	EXT_CHECK_OUT(struct shma_chunk_info, shma_block_chunk(p, &h, x));
	{
		/* the values behind the checks: the block's chunk, counted once */
		struct shma_pool_stat st = { .size = sizeof(st) };
		struct shma_chunk_info ci = { .size = sizeof(ci) };
		struct shma_chunk_stat cs = { .size = sizeof(cs) };
		g_assert_cmpint(shma_pool_stat(p, &st), ==, 0);
		g_assert_cmpuint(st.blocks_used, ==, 1);
		g_assert_cmpuint(st.chunk_size, ==, 64u << 10);
		g_assert_cmpint(shma_block_chunk(p, &h, &ci), ==, 0);
		g_assert_true((char *)ci.base + ci.offset == ptr);
		g_assert_cmpint(shma_pool_chunk_stat(p, ci.index, &cs), ==, 0);
		g_assert_cmpuint(cs.len, ==, ci.len);
		g_assert_cmpuint(cs.used, >, 0);
	}
	/* an input: too small, larger with a zero or a non-zero tail */
	memset(&in, 0, sizeof(in));
	in.o = (struct shma_pool_opts){ .size = sizeof(in.o) - 1, .chunk_size = 64u << 10 };
	g_assert_cmpint(shma_pool_create(&in.o, &q), ==, -EINVAL);
	g_assert_null(q);
	in.o.size = 0;
	g_assert_cmpint(shma_pool_create(&in.o, &q), ==, -EINVAL);
	in.o.size = sizeof(in);
	in.b[sizeof(in) - 1] = 1;
	g_assert_cmpint(shma_pool_create(&in.o, &q), ==, -E2BIG);
	g_assert_null(q);
	in.b[sizeof(in) - 1] = 0;
	g_assert_cmpint(shma_pool_create(&in.o, &q), ==, 0);
	{
		struct shma_pool_stat st = { .size = sizeof(st) };
		g_assert_cmpint(shma_pool_stat(q, &st), ==, 0);
		g_assert_cmpuint(st.chunk_size, ==, 64u << 10);   /* the known fields were read */
	}
	shma_pool_free(q);
	g_assert_cmpint(shma_free(p, ptr), ==, 0);
	shma_pool_free(p);
}


static void test_pool_memfd_basic(void)
{
	struct shma_pool *p = NULL;
	struct shma_handle h;
	struct shma_pool_stat st = { .size = sizeof(st) };
	void *d, *r;

	g_assert_cmpint(shma_pool_create(NULL, &p), ==, 0);
	g_assert_cmpstr(shma_pool_name(p), !=, "");
	g_assert_cmpint(shma_alloc(p, 100, 0, &h, &d), ==, 0);
	g_assert_cmpuint((uintptr_t)d % 16, ==, 0);
	g_assert_cmpuint(h.len, ==, 100);
	g_assert_cmpuint(h.gen & 1, ==, 1);
	memset(d, 0xab, 100);
	g_assert_cmpint(shma_resolve(p, &h, &r), ==, 0);
	g_assert_true(r == d);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 1);
	g_assert_cmpuint(st.chunks, ==, 1);
	g_assert_cmpuint(st.users, ==, 1);
	g_assert_cmpint(shma_free(p, d), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	g_assert_cmpuint(st.blocks_free, ==, 1);
	g_assert_cmpint(shma_free(p, NULL), ==, 0);
	g_assert_cmpint(shma_pool_unlink(p), ==, 0);   /* memfd: nothing to do */
	shma_pool_free(p);
	shma_pool_free(NULL);
}

static void test_pool_bad_opts(void)
{
	struct shma_pool *p = NULL;
	struct shma_pool_opts o = { .size = sizeof(o) };

	g_assert_cmpint(shma_pool_create(NULL, NULL), ==, -EINVAL);
	o.chunk_size = 12345;
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.chunk_size = 4096;
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.chunk_size = 2ull << 30;
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.chunk_size = 0;
	o.backend = 7;
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.backend = SHMA_BACKEND_SHM;
	o.name = "../etc";
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.name = "";
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.name = "a/b";
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.name = "ok";
	o.flags = 1;
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.flags = 0;
	o.max_chunks = 1u << 20;
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.max_chunks = 0;
	o.size = 4;
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -EINVAL);
	o.size = sizeof(o);
	o.dir = "/nonexistent-memkit-dir";
	g_assert_cmpint(shma_pool_create(&o, &p), ==, -ENOENT);
	g_assert_null(p);
}

static void test_pool_named(void)
{
	g_autofree char *name = unique_name("named");
	g_autofree char *root = g_strconcat(SHMA_FILE_PREFIX, name, NULL);
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 0), *q = NULL, *dup = NULL;
	struct shma_pool_opts o = { .size = sizeof(o), .backend = SHMA_BACKEND_SHM, .name = name };
	g_autofree char *path = g_build_filename("/dev/shm", root, NULL);
	struct shma_handle h;
	struct stat sb;
	void *d, *r;

	g_assert_cmpstr(shma_pool_name(p), ==, name);
	g_assert_cmpint(stat(path, &sb), ==, 0);
	g_assert_cmpuint(sb.st_mode & 0777, ==, 0600);
	g_assert_cmpint(shma_pool_create(&o, &dup), ==, -EEXIST);
	g_assert_null(dup);

	g_assert_cmpint(shma_alloc(p, 1000, 0, &h, &d), ==, 0);
	memcpy(d, "hello", 6);
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	g_assert_cmpint(shma_resolve(q, &h, &r), ==, 0);
	g_assert_true(r != d);          /* a second mapping of the same bytes */
	g_assert_cmpstr(r, ==, "hello");
	/* A block allocated through one view is freed through the other. */
	g_assert_cmpint(shma_free(q, r), ==, 0);
	g_assert_cmpint(shma_resolve(p, &h, &r), ==, -ESTALE);
	g_assert_cmpint(shma_free(p, d), ==, -EINVAL);
	shma_pool_free(q);

	g_assert_cmpint(shma_pool_unlink(p), ==, 0);
	g_assert_false(file_exists("/dev/shm", root));
	shma_pool_free(p);
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, -ENOENT);
	g_assert_cmpint(shma_pool_remove(NULL, name), ==, -ENOENT);
}

static void test_pool_generated_name(void)
{
	struct shma_pool_opts o = { .size = sizeof(o), .backend = SHMA_BACKEND_SHM };
	struct shma_pool *a = NULL, *b = NULL;

	g_assert_cmpint(shma_pool_create(&o, &a), ==, 0);
	g_assert_cmpint(shma_pool_create(&o, &b), ==, 0);
	g_assert_cmpstr(shma_pool_name(a), !=, shma_pool_name(b));
	g_assert_cmpint(shma_pool_remove(NULL, shma_pool_name(a)), ==, 0);
	g_assert_cmpint(shma_pool_remove(NULL, shma_pool_name(b)), ==, 0);
	shma_pool_free(a);
	shma_pool_free(b);
}

static void test_pool_attach_errors(void)
{
	g_autofree char *name = unique_name("bad");
	g_autofree char *fname = g_strconcat("/dev/shm/" SHMA_FILE_PREFIX, name, NULL);
	g_autofree char *lname = unique_name("link");
	g_autofree char *lpath = g_strconcat("/dev/shm/" SHMA_FILE_PREFIX, lname, NULL);
	char junk[8192];
	struct shma_pool *p = NULL;

	g_assert_cmpint(shma_pool_attach(NULL, "../../etc/passwd", 0, &p), ==, -EINVAL);
	g_assert_cmpint(shma_pool_attach(NULL, NULL, 0, &p), ==, -EINVAL);
	g_assert_cmpint(shma_pool_attach(NULL, "x", 0x80, &p), ==, -EINVAL);
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &p), ==, -ENOENT);
	g_assert_cmpint(shma_pool_attach("/nonexistent-memkit", name, 0, &p), ==, -ENOENT);
	/* A file of the right name with junk inside. */
	memset(junk, 'x', sizeof(junk));
	g_assert_true(g_file_set_contents(fname, junk, sizeof(junk), NULL));
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &p), ==, -EBADMSG);
	/* Too short. */
	g_assert_true(g_file_set_contents(fname, junk, 10, NULL));
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &p), ==, -EBADMSG);
	g_assert_cmpint(shma_pool_remove(NULL, name), ==, 0);
	/* A symlink is never followed. */
	g_assert_cmpint(symlink("/etc/passwd", lpath), ==, 0);
	g_assert_cmpint(shma_pool_attach(NULL, lname, 0, &p), ==, -ELOOP);
	unlink(lpath);
	/* attach_fds: a non-pool fd. */
	{
		int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
		g_assert_cmpint(shma_pool_attach_fds(&fd, 1, 0, &p), <, 0);
		close(fd);
		g_assert_cmpint(shma_pool_attach_fds(NULL, 1, 0, &p), ==, -EINVAL);
		g_assert_cmpint(shma_pool_attach_fds(&fd, 0, 0, &p), ==, -EINVAL);
	}
	g_assert_null(p);
}

/* Damaging a live root's geometry makes later attaches fail cleanly. */
static void test_pool_attach_damaged(void)
{
	g_autofree char *name = unique_name("dmg");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 0), *q = NULL;
	uint64_t saved = p->root->chunk_size;

	p->root->chunk_size = 3;
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, -EBADMSG);
	p->root->chunk_size = saved;
	p->root->class_size[3] ^= 16;
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, -EBADMSG);
	p->root->class_size[3] ^= 16;
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	shma_pool_free(q);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* The path of a SHM pool's file: its root, or chunk slot idx (nonce from the slot). */
static char *pool_path(struct shma_pool *p, int idx)
{
	char fname[128];

	if (idx < 0)
		return g_strconcat("/dev/shm/" SHMA_FILE_PREFIX, shma_pool_name(p), NULL);
	g_assert_cmpint(shma_chunk_name(p, (uint32_t)idx,
					shma_s_nonce(p->root->slots[idx].state), fname, sizeof(fname)), ==, 0);
	return g_build_filename("/dev/shm", fname, NULL);
}

/* Nothing named like a pool may hang an attach: FIFOs and sockets fail at once. */
static void test_pool_not_regular(void)
{
	g_autofree char *name = unique_name("fifo");
	g_autofree char *path = g_strconcat("/dev/shm/" SHMA_FILE_PREFIX, name, NULL);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct shma_pool *p = NULL;
	gint64 t0;
	int s;

	g_assert_cmpint(mkfifo(path, 0600), ==, 0);
	alarm(20);      /* a hang is a failure, not a stuck test run */
	t0 = g_get_monotonic_time();
	g_assert_cmpint(shma_pool_attach(NULL, name, SHMA_ATTACH_RDONLY, &p), ==, -EPERM);
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &p), ==, -EPERM);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, G_USEC_PER_SEC);
	alarm(0);
	g_assert_cmpint(shma_pool_remove(NULL, name), ==, 0);
	/* A unix socket cannot even be opened (ENXIO): still "not a pool file". */
	g_assert_cmpuint(strlen(path), <, sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(bind(s, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(shma_pool_attach(NULL, name, SHMA_ATTACH_RDONLY, &p), ==, -EPERM);
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &p), ==, -EPERM);
	close(s);
	g_assert_cmpint(shma_pool_remove(NULL, name), ==, 0);
	g_assert_null(p);
}

/* A pool file whose mode or owner is not what memkit made is refused (-EPERM). */
static void test_pool_file_mode(void)
{
	g_autofree char *name = unique_name("mode");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20), *q = NULL;
	g_autofree char *root = pool_path(p, -1);
	g_autofree char *chunk = NULL;
	struct shma_pool_stat st = { .size = sizeof(st) };
	struct shma_handle h;
	struct stat sb;
	mode_t old = umask(0277);
	void *d;

	/* Files get exactly 0600 whatever the umask. */
	g_assert_cmpint(shma_alloc(p, 100, 0, &h, NULL), ==, 0);
	umask(old);
	chunk = pool_path(p, 0);
	g_assert_cmpint(stat(chunk, &sb), ==, 0);
	g_assert_cmpuint(sb.st_mode & 07777, ==, 0600);

	g_assert_cmpint(chmod(root, 0666), ==, 0);
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, -EPERM);
	g_assert_cmpint(shma_pool_attach(NULL, name, SHMA_ATTACH_RDONLY, &q), ==, -EPERM);
	g_assert_cmpint(chmod(root, 0640), ==, 0);
	g_assert_cmpint(shma_pool_attach(NULL, name, SHMA_ATTACH_RDONLY, &q), ==, -EPERM);
	g_assert_cmpint(chmod(root, 0600), ==, 0);
	g_assert_null(q);

	/* A chunk made world-writable: every use of it in a fresh attacher fails. */
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	g_assert_cmpint(chmod(chunk, 0666), ==, 0);
	g_assert_cmpint(shma_resolve(q, &h, &d), ==, -EPERM);
	g_assert_cmpint(shma_pool_stat(q, &st), ==, -EPERM);
	g_assert_cmpint(shma_alloc(q, 100, 0, NULL, NULL), ==, -EPERM);
	g_assert_cmpint(chmod(chunk, 0600), ==, 0);
	g_assert_cmpint(shma_resolve(q, &h, &d), ==, 0);
	stat_of(q, &st);
	g_assert_cmpuint(st.blocks_used, ==, 1);   /* the failed alloc carved nothing */
	shma_pool_free(q);
	q = NULL;

	if (geteuid() == 0) {
		/* Root can give the file away: not ours any more. */
		g_assert_cmpint(chown(root, 65534, 65534), ==, 0);
		g_assert_cmpint(shma_pool_attach(NULL, name, SHMA_ATTACH_RDONLY, &q), ==, -EPERM);
		g_assert_cmpint(chown(root, 0, 0), ==, 0);
	} else {
		g_test_message("not root: cannot chown a pool file to another user");
	}
	g_assert_null(q);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* A chunk file replaced by a symbolic link: a documented error everywhere, never skipped. */
static void test_pool_chunk_symlink(void)
{
	g_autofree char *name = unique_name("lnk");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20), *q = NULL;
	g_autofree char *chunk = NULL, *moved = NULL;
	struct shma_pool_stat st = { .size = sizeof(st) }, before = { .size = sizeof(before) };
	struct shma_handle h;
	void *d, *x;

	g_assert_cmpint(shma_alloc(p, 100, 0, &h, NULL), ==, 0);
	g_assert_cmpint(shma_alloc(p, 3000, 0, NULL, &x), ==, 0);
	g_assert_cmpint(shma_free(p, x), ==, 0);        /* a free list into chunk 0 */
	stat_of(p, &before);
	chunk = pool_path(p, 0);
	moved = g_strconcat(chunk, "-moved", NULL);
	g_assert_cmpint(rename(chunk, moved), ==, 0);
	g_assert_cmpint(symlink(moved, chunk), ==, 0);

	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	g_assert_cmpint(shma_pool_stat(q, &st), ==, -ELOOP);
	g_assert_cmpint(shma_resolve(q, &h, &d), ==, -ELOOP);
	g_assert_cmpint(shma_alloc(q, 3000, 0, NULL, NULL), ==, -ELOOP);   /* pop */
	g_assert_cmpint(shma_alloc(q, 100, 0, NULL, NULL), ==, -ELOOP);    /* carve */
	g_assert_cmpint(shma_pool_reclaim(q), ==, -ELOOP);
	/* Nothing changed, and the pool works again once the file is back. */
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, before.blocks_used);
	g_assert_cmpuint(st.blocks_free, ==, before.blocks_free);
	g_assert_cmpuint(st.free_bytes, ==, before.free_bytes);
	g_assert_cmpint(unlink(chunk), ==, 0);
	g_assert_cmpint(rename(moved, chunk), ==, 0);
	stat_of(q, &st);
	g_assert_cmpuint(st.blocks_used, ==, 1);
	g_assert_cmpint(shma_resolve(q, &h, &d), ==, 0);
	g_assert_cmpint(shma_alloc(q, 3000, 0, NULL, NULL), ==, 0);
	shma_pool_free(q);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* Every slot held by a live process: attach is -EUSERS (and RDONLY still works). */
static void test_pool_users_full(void)
{
	g_autofree char *name = unique_name("full");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20), *q = NULL;
	struct shma_pool_stat st = { .size = sizeof(st) };
	bool mine[SHMA_MAX_USERS] = { false };
	uint64_t start = 0;
	int status;
	pid_t pid;

	g_assert_cmpint(mk_proc_start_time(getpid(), &start), ==, 0);
	for (unsigned u = 0; u < SHMA_MAX_USERS; u++) {
		if (p->root->users[u].pid)
			continue;
		p->root->users[u].start = start;
		p->root->users[u].pid = getpid();
		mine[u] = true;
	}
	stat_of(p, &st);
	g_assert_cmpuint(st.users, ==, SHMA_MAX_USERS);
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, -EUSERS);
	g_assert_null(q);
	g_assert_cmpint(shma_pool_attach(NULL, name, SHMA_ATTACH_RDONLY, &q), ==, 0);
	shma_pool_free(q);
	/* A fork()ed child cannot allocate under its parent's slot either. */
	pid = fork();
	if (pid == 0)
		_exit(shma_alloc(p, 100, 0, NULL, NULL) == -EUSERS ? 0 : 1);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* One slot free again: attach works. */
	for (unsigned u = 0; u < SHMA_MAX_USERS; u++)
		if (mine[u]) {
			p->root->users[u].pid = 0;
			mine[u] = false;
			break;
		}
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	shma_pool_free(q);
	for (unsigned u = 0; u < SHMA_MAX_USERS; u++)
		if (mine[u])
			p->root->users[u].pid = 0;
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* ---- allocation ---------------------------------------------------------------------- */

static void test_alloc_sizes_aligns(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	static const size_t aligns[] = { 0, 1, 8, 16, 32, 64, 256, 1024, 4096 };
	GPtrArray *ptrs = g_ptr_array_new();
	struct shma_pool_stat st = { .size = sizeof(st) };

	for (size_t len = 1; len <= 70000; len = len < 300 ? len + 1 : len * 5 / 4) {
		for (size_t a = 0; a < G_N_ELEMENTS(aligns); a++) {
			struct shma_handle h, h2;
			uint8_t *d;
			void *r;
			size_t al = aligns[a] < 16 ? 16 : aligns[a];

			g_assert_cmpint(shma_alloc(p, len, aligns[a], &h, (void **)&d), ==, 0);
			g_assert_cmpuint((uintptr_t)d % al, ==, 0);
			shm_pattern_fill(d, len, shm_pattern_seed(&h));
			g_assert_cmpint(shma_resolve(p, &h, &r), ==, 0);
			g_assert_true(r == d);
			g_assert_cmpint(shma_handle_of(p, d, &h2), ==, 0);
			g_assert_cmpmem(&h, sizeof(h), &h2, sizeof(h2));
			g_ptr_array_add(ptrs, d);
		}
	}
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, ptrs->len);
	for (guint i = 0; i < ptrs->len; i++) {
		struct shma_handle h;
		g_assert_cmpint(shma_handle_of(p, ptrs->pdata[i], &h), ==, 0);
		g_assert_true(shm_pattern_ok(ptrs->pdata[i], h.len, shm_pattern_seed(&h)));
		g_assert_cmpint(shma_free(p, ptrs->pdata[i]), ==, 0);
	}
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	g_assert_cmpuint(st.used_bytes, ==, 0);
	g_ptr_array_free(ptrs, TRUE);
	shma_pool_free(p);
}

static void test_alloc_errors(void)
{
	g_autofree char *name = unique_name("ro");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 0), *ro = NULL;
	struct shma_handle h;
	void *d = NULL;

	g_assert_cmpint(shma_alloc(NULL, 10, 0, &h, &d), ==, -EINVAL);
	g_assert_cmpint(shma_alloc(p, 0, 0, &h, &d), ==, -EINVAL);
	g_assert_cmpint(shma_alloc(p, 10, 3, &h, &d), ==, -EINVAL);
	g_assert_cmpint(shma_alloc(p, 10, 8192, &h, &d), ==, -EINVAL);
	g_assert_cmpint(shma_alloc(p, (size_t)UINT32_MAX + 1, 0, &h, &d), ==, -EINVAL);
	g_assert_null(d);
	/* Handle only, pointer only. */
	g_assert_cmpint(shma_alloc(p, 10, 0, &h, NULL), ==, 0);
	g_assert_cmpint(shma_alloc(p, 10, 0, NULL, &d), ==, 0);

	g_assert_cmpint(shma_pool_attach(NULL, name, SHMA_ATTACH_RDONLY, &ro), ==, 0);
	g_assert_cmpint(shma_alloc(ro, 10, 0, &h, &d), ==, -EPERM);
	g_assert_cmpint(shma_free_handle(ro, &h), ==, -EPERM);
	g_assert_cmpint(shma_pool_reclaim(ro), ==, -EPERM);
	{
		void *r;
		g_assert_cmpint(shma_resolve(ro, &h, &r), ==, 0);   /* reading is fine */
	}
	shma_pool_free(ro);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

static void test_alloc_reuse_stale(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	struct shma_handle h1, h2;
	void *a, *b, *r;

	g_assert_cmpint(shma_alloc(p, 200, 0, &h1, &a), ==, 0);
	g_assert_cmpint(shma_free_handle(p, &h1), ==, 0);
	/* O(1) reuse: the same class hands the same block back, a new generation. */
	g_assert_cmpint(shma_alloc(p, 190, 0, &h2, &b), ==, 0);
	g_assert_true(a == b);
	g_assert_cmpuint(h2.gen, ==, h1.gen + 2);
	g_assert_cmpint(shma_resolve(p, &h1, &r), ==, -ESTALE);
	g_assert_cmpint(shma_free_handle(p, &h1), ==, -ESTALE);
	g_assert_cmpint(shma_resolve(p, &h2, &r), ==, 0);
	g_assert_cmpint(shma_free(p, b), ==, 0);
	g_assert_cmpint(shma_resolve(p, &h2, &r), ==, -ESTALE);
	shma_pool_free(p);
}

static void test_alloc_large(void)
{
	g_autofree char *name = unique_name("large");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20), *q = NULL;
	struct shma_chunk_info ci = { .size = sizeof(ci) };
	struct shma_chunk_stat cs = { .size = sizeof(cs) };
	struct shma_handle h;
	size_t len = 3u << 20;
	uint8_t *d, *m;
	void *r;

	g_assert_cmpint(shma_alloc(p, len, 4096, &h, (void **)&d), ==, 0);
	g_assert_cmpuint((uintptr_t)d % 4096, ==, 0);
	shm_pattern_fill(d, len, 7);
	g_assert_cmpint(shma_block_chunk(p, &h, &ci), ==, 0);
	g_assert_true((uint8_t *)ci.base + ci.offset == d);
	g_assert_cmpuint(ci.len, >=, len + ci.offset);
	g_assert_cmpuint(ci.len % 4096, ==, 0);
	g_assert_cmpint(shma_pool_chunk_stat(p, ci.index, &cs), ==, 0);
	g_assert_true(cs.dedicated);
	g_assert_true(cs.owner_alive);
	g_assert_cmpint(cs.owner_pid, ==, getpid());
	/* The fd maps the same bytes (how a VMM binds it as a memslot). */
	m = mmap(NULL, ci.len, PROT_READ, MAP_SHARED, ci.fd, 0);
	g_assert_true(m != MAP_FAILED);
	g_assert_true(shm_pattern_ok(m + ci.offset, len, 7));
	munmap(m, ci.len);

	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	g_assert_cmpint(shma_resolve(q, &h, &r), ==, 0);
	g_assert_true(shm_pattern_ok(r, len, 7));
	shma_pool_free(q);

	g_assert_cmpint(shma_free(p, d), ==, 0);
	g_assert_cmpint(shma_pool_chunk_stat(p, ci.index, &cs), ==, -ESRCH);
	g_assert_cmpint(shma_resolve(p, &h, &r), ==, -ESTALE);
	g_assert_cmpint(shma_pool_chunk_stat(p, 1u << 20, &cs), ==, -ENOENT);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

static void test_alloc_growth(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	struct shma_handle *hs = g_new(struct shma_handle, 3000);
	struct shma_pool_stat st = { .size = sizeof(st) };

	for (int i = 0; i < 3000; i++) {
		void *d;
		g_assert_cmpint(shma_alloc(p, 1000, 0, &hs[i], &d), ==, 0);
		shm_pattern_fill(d, 1000, shm_pattern_seed(&hs[i]));
	}
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, >, 40);
	g_assert_cmpuint(st.blocks_used, ==, 3000);
	for (int i = 0; i < 3000; i++) {
		void *d;
		g_assert_cmpint(shma_resolve(p, &hs[i], &d), ==, 0);
		g_assert_true(shm_pattern_ok(d, 1000, shm_pattern_seed(&hs[i])));
	}
	g_free(hs);
	shma_pool_free(p);
}

/* A pool with few chunk slots runs out with -ENOSPC, not a crash. */
static void test_alloc_slots_exhausted(void)
{
	struct shma_pool_opts o = { .size = sizeof(o), .chunk_size = 64u << 10, .max_chunks = 2 };
	struct shma_pool *p = NULL;
	int r = 0, n = 0;

	g_assert_cmpint(shma_pool_create(&o, &p), ==, 0);
	while ((r = shma_alloc(p, 4000, 0, NULL, NULL)) == 0)
		n++;
	g_assert_cmpint(r, ==, -ENOSPC);
	g_assert_cmpint(n, >, 20);
	g_assert_cmpint(shma_alloc(p, 1u << 20, 0, NULL, NULL), ==, -ENOSPC);
	shma_pool_free(p);
}

/* A full tmpfs is -ENOSPC at allocation, never SIGBUS later. */
static void test_alloc_enospc_tmpfs(void)
{
	g_autofree char *dir = g_dir_make_tmp("memkit-shm-XXXXXX", NULL);
	struct shma_pool_opts o = { .size = sizeof(o), .backend = SHMA_BACKEND_SHM,
				    .name = "full", .dir = dir, .chunk_size = 256u << 10,
				    .max_chunks = 16 };
	GPtrArray *blocks = g_ptr_array_new();
	struct shma_pool *p = NULL;
	int r;

	if (mount("memkit-test", dir, "tmpfs", 0, "size=1m") < 0) {
		g_test_skip_printf("cannot mount a small tmpfs: %s", g_strerror(errno));
		g_rmdir(dir);
		g_ptr_array_free(blocks, TRUE);
		return;
	}
	g_assert_cmpint(shma_pool_create(&o, &p), ==, 0);
	for (;;) {
		void *d;
		r = shma_alloc(p, 3000, 0, NULL, &d);
		if (r < 0)
			break;
		memset(d, 0x77, 3000);      /* every byte we got is backed */
		g_ptr_array_add(blocks, d);
	}
	g_assert_cmpint(r, ==, -ENOSPC);
	g_assert_cmpuint(blocks->len, >, 100);
	g_assert_cmpint(shma_alloc(p, 600u << 10, 0, NULL, NULL), ==, -ENOSPC);
	/* Freeing makes room again, inside the reserved chunks. */
	g_assert_cmpint(shma_free(p, blocks->pdata[0]), ==, 0);
	g_assert_cmpint(shma_alloc(p, 3000, 0, NULL, NULL), ==, 0);
	shma_pool_free(p);
	umount(dir);
	g_rmdir(dir);
	g_ptr_array_free(blocks, TRUE);
}

/* Empty regular chunks are released; the pool keeps working, in every view. */
static void test_alloc_trim(void)
{
	g_autofree char *name = unique_name("trim");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 64u << 10), *q = NULL;
	struct shma_handle *hs = g_new(struct shma_handle, 3000), keep;
	struct shma_pool_stat st = { .size = sizeof(st) };
	int released;
	void *d;

	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	for (int i = 0; i < 3000; i++)
		g_assert_cmpint(shma_alloc(p, 1000 + (size_t)(i % 7) * 64, i % 5 ? 0 : 256, &hs[i], NULL), ==, 0);
	g_assert_cmpint(shma_alloc(p, 100, 0, &keep, NULL), ==, 0);   /* pins the last chunk */
	for (int i = 0; i < 3000; i++)
		g_assert_cmpint(shma_resolve(q, &hs[i], &d), ==, 0);    /* q maps every chunk */
	for (int i = 0; i < 3000; i++)
		g_assert_cmpint(shma_free_handle(i % 2 ? p : q, &hs[i]), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, >, 45);
	released = shma_pool_trim(p);
	g_test_message("released %d of %u chunks", released, st.chunks);
	g_assert_cmpint(released, >=, (int)st.chunks - 2);
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, <=, 2);
	g_assert_cmpuint(st.blocks_used, ==, 1);
	g_assert_cmpint(shma_resolve(q, &hs[0], &d), ==, -ESTALE);
	g_assert_cmpint(shma_resolve(q, &keep, &d), ==, 0);
	g_assert_cmpint(shma_pool_trim(p), ==, 0);
	/* Both views allocate again, reusing the freed slots with new generations. */
	for (int i = 0; i < 3000; i++) {
		uint8_t *x;
		void *y;
		g_assert_cmpint(shma_alloc(i % 2 ? p : q, 1000, 0, &hs[i], (void **)&x), ==, 0);
		shm_pattern_fill(x, 1000, shm_pattern_seed(&hs[i]));
		g_assert_cmpint(shma_resolve(i % 2 ? q : p, &hs[i], &y), ==, 0);
		g_assert_true(shm_pattern_ok(y, 1000, shm_pattern_seed(&hs[i])));
	}
	g_assert_cmpint(shma_pool_trim(NULL), ==, -EINVAL);
	g_free(hs);
	shma_pool_free(q);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

static int run_child(char **argv, char **out);

/*
 * A chunk closed to carving (what trim does just before it drops one)
 * still says where its carved part ends: walks read it to that end, so a
 * reclaim running while a live trim holds a chunk closed is not put off
 * (it used to stop at the zeros past the carved part and keep the dead
 * user's slot for a later reclaim).
 */
static void test_alloc_closed_chunk_walk(void)
{
	g_autofree char *name = unique_name("closed");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 64u << 10);
	char *argv[] = { CHILD, "leak", "/dev/shm", name, "30", NULL };
	struct shma_pool_stat before = { .size = sizeof(before) }, after = { .size = sizeof(after) };
	struct shma_chunk_stat cs = { .size = sizeof(cs) };
	struct shma_handle h[40];
	struct shma_rec rec;
	uint64_t b;

	for (int i = 0; i < 40; i++)
		g_assert_cmpint(shma_alloc(p, 1000, 0, &h[i], NULL), ==, 0);
	for (int i = 0; i < 40; i += 2)
		g_assert_cmpint(shma_free_handle(p, &h[i]), ==, 0);
	g_assert_cmpint(run_child(argv, NULL), ==, 0);  /* dies holding 30 blocks */
	stat_of(p, &before);
	g_assert_cmpuint(before.users_dead, ==, 1);
	g_assert_cmpint(shma_pool_chunk_stat(p, 0, &cs), ==, 0);
	b = p->root->slots[0].bump;
	g_assert_cmpuint(shma_bump_off(b), <, p->chunk_size - 2000);      /* zeros past the end */
	/* Close chunk 0 as a trim would (its blocks are not all free: this is only the word). */
	g_assert_cmpint(shma_rec_claim(p, shma_own_slot(p), &rec), ==, 0);
	g_assert_true(shma_bump_close(p, 0, &b, shma_s_gen(p->root->slots[0].state), &rec));
	shma_rec_release(&rec);
	b = p->root->slots[0].bump;
	g_assert_true(shma_bump_closed(b, p->chunk_size));
	g_assert_cmpuint(shma_bump_end(b, p->chunk_size), ==, cs.used);
	stat_of(p, &after);
	g_assert_cmpuint(after.blocks_used, ==, before.blocks_used);
	g_assert_cmpuint(after.blocks_free, ==, before.blocks_free);
	g_assert_cmpint(shma_pool_chunk_stat(p, 0, &cs), ==, 0);
	g_assert_cmpuint(cs.used, ==, shma_bump_end(b, p->chunk_size));
	/* The dead user is reclaimed now, not put off. */
	g_assert_cmpint(shma_pool_reclaim(p), ==, 30);
	stat_of(p, &after);
	g_assert_cmpuint(after.users_dead, ==, 0);
	g_assert_cmpuint(after.blocks_used, ==, 20);
	/* Closed: nothing more is carved there. */
	for (int i = 0; i < 20; i++)
		g_assert_cmpint(shma_alloc(p, 3000, 0, NULL, NULL), ==, 0);
	g_assert_cmpuint(p->root->slots[0].bump, ==, b);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* Trim racing with allocating threads: nothing lost, nothing handed out twice. */
static void *trim_loop(void *arg)
{
	struct shma_pool *p = arg;
	int total = 0;

	for (int i = 0; i < 200; i++) {
		int r = shma_pool_trim(p);
		g_assert_cmpint(r, >=, 0);
		total += r;
		g_usleep(100);
	}
	return GINT_TO_POINTER(total);
}

/* Bursts: fill a few chunks, check, empty them (so trim has work mid-race). */
static void *burst_loop(void *arg)
{
	struct shma_pool *p = arg;
	struct shma_handle h[100];
	uint8_t *d[100];

	for (int round = 0; round < 300; round++) {
		for (int i = 0; i < 100; i++) {
			if (shma_alloc(p, 3000, 0, &h[i], (void **)&d[i]) < 0)
				return GINT_TO_POINTER(1);
			shm_pattern_fill(d[i], 3000, shm_pattern_seed(&h[i]));
		}
		for (int i = 0; i < 100; i++)
			if (!shm_pattern_ok(d[i], 3000, shm_pattern_seed(&h[i])) ||
			    shma_free_handle(p, &h[i]) < 0)
				return GINT_TO_POINTER(2);
	}
	return NULL;
}

struct churn;
static void *churn_thread(void *arg);
static uint64_t held_free(struct shma_pool *p);

/*
 * Every block still held cached is in pool's pool cache (the exits of the
 * threads that used it emptied their own caches): one flush, from any
 * thread, gives back exactly those.
 */
static void assert_only_pool_cache(struct shma_pool *pool, struct shma_pool *reader)
{
	uint64_t held = held_free(reader);

	g_assert_cmpuint((uint64_t)shma_flush_cache(pool), ==, held);
	g_assert_cmpuint(held_free(reader), ==, 0);
}

/* Thread caches on? tests/test-shm-nocache.sh runs everything again with LIBSHM_TCACHE=0. */
static bool caches_on(void)
{
	const char *e = getenv("LIBSHM_TCACHE");

	return !(e && !strcmp(e, "0"));
}

/* ---- free errors ---------------------------------------------------------------------- */

static void test_free_double(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	struct shma_pool_stat a = { .size = sizeof(a) }, b = { .size = sizeof(b) };
	struct shma_handle h;
	void *d;

	g_assert_cmpint(shma_alloc(p, 64, 0, &h, &d), ==, 0);
	g_assert_cmpint(shma_alloc(p, 64, 0, NULL, NULL), ==, 0);
	g_assert_cmpint(shma_free(p, d), ==, 0);
	stat_of(p, &a);
	g_assert_cmpint(shma_free(p, d), ==, -EINVAL);
	g_assert_cmpint(shma_free_handle(p, &h), ==, -ESTALE);
	stat_of(p, &b);
	g_assert_cmpmem(&a, sizeof(a), &b, sizeof(b));
	/* The free list is intact: two allocations get two blocks. */
	{
		void *x, *y;
		g_assert_cmpint(shma_alloc(p, 64, 0, NULL, &x), ==, 0);
		g_assert_cmpint(shma_alloc(p, 64, 0, NULL, &y), ==, 0);
		g_assert_true(x != y);
	}
	shma_pool_free(p);
}

static void test_free_foreign(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	struct shma_pool *q = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	struct shma_pool_stat a = { .size = sizeof(a) }, b = { .size = sizeof(b) };
	struct shma_handle h;
	char stackbuf[64];
	char *heap = g_malloc(64);
	char *d, *e;

	g_assert_cmpint(shma_alloc(p, 256, 0, &h, (void **)&d), ==, 0);
	g_assert_cmpint(shma_alloc(q, 256, 0, NULL, (void **)&e), ==, 0);
	stat_of(p, &a);
	g_assert_cmpint(shma_free(p, e), ==, -EINVAL);
	g_assert_cmpint(shma_free(p, heap), ==, -EINVAL);
	g_assert_cmpint(shma_free(p, stackbuf), ==, -EINVAL);
	g_assert_cmpint(shma_free(p, d + 16), ==, -EFAULT);  /* inside a block: no header there */
	g_assert_cmpint(shma_free(p, d + 1), ==, -EINVAL);
	g_assert_cmpint(shma_free(p, p->resv), ==, -EINVAL); /* chunk header */
	g_assert_cmpint(shma_free(p, p->resv + p->resv_len - 64), ==, -EINVAL); /* unmapped slot */
	g_assert_cmpint(shma_handle_of(p, e, &h), ==, -EINVAL);
	stat_of(p, &b);
	g_assert_cmpmem(&a, sizeof(a), &b, sizeof(b));
	g_assert_cmpint(shma_free(q, e), ==, 0);
	g_assert_cmpint(shma_free(p, d), ==, 0);
	g_free(heap);
	shma_pool_free(p);
	shma_pool_free(q);
}

static void test_free_corrupt(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	struct shma_pool_stat a = { .size = sizeof(a) }, b = { .size = sizeof(b) };
	struct shma_handle h;
	uint8_t *d, saved[16];
	void *r;

	g_assert_cmpint(shma_alloc(p, 100, 0, &h, (void **)&d), ==, 0);
	memcpy(saved, d - 16, 16);
	stat_of(p, &a);
	d[-9] ^= 0xff;                  /* magic (top byte of the word) */
	g_assert_cmpint(shma_free(p, d), ==, -EFAULT);
	g_assert_cmpint(shma_resolve(p, &h, &r), ==, -EFAULT);
	memcpy(d - 16, saved, 16);
	d[-8] ^= 1;                     /* self reference */
	g_assert_cmpint(shma_free(p, d), ==, -EFAULT);
	g_assert_cmpint(shma_resolve(p, &h, &r), ==, -EFAULT);
	memcpy(d - 16, saved, 16);
	d[-4] ^= 1;                     /* length */
	g_assert_cmpint(shma_resolve(p, &h, &r), ==, -EINVAL);
	memcpy(d - 16, saved, 16);
	d[-12] = 60;                    /* class out of range */
	g_assert_cmpint(shma_free(p, d), ==, -EFAULT);
	memcpy(d - 16, saved, 16);
	stat_of(p, &b);
	g_assert_cmpmem(&a, sizeof(a), &b, sizeof(b));
	g_assert_cmpint(shma_free(p, d), ==, 0);
	/* A corrupted free-list entry is never handed out. */
	{
		struct shma_handle h2;
		void *x;
		d[-16 + 7] ^= 0xff;     /* magic of the free block */
		g_assert_cmpint(shma_alloc(p, 100, 0, &h2, &x), ==, 0);
		g_assert_true(x != d);
	}
	shma_pool_free(p);
}

/* ---- handles ---------------------------------------------------------------------- */

static void test_handle_hostile(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	struct shma_handle good, h, big;
	char *d;
	void *r;

	g_assert_cmpint(shma_alloc(p, 100, 0, &good, (void **)&d), ==, 0);
	g_assert_cmpint(shma_alloc(p, 200, 0, &big, NULL), ==, 0);
#define EXPECT(expr, err) do { h = good; expr; g_assert_cmpint(shma_resolve(p, &h, &r), ==, err); } while (0)
	EXPECT(memset(&h, 0, sizeof(h)), -EINVAL);
	EXPECT(h.chunk = 0xffff, -EINVAL);
	EXPECT(h.chunk = (good.chunk & 0xffff0000) | 5, -ENOENT);    /* unused slot */
	EXPECT(h.chunk += 1u << 16, -ESTALE);                          /* other slot generation */
	EXPECT(h.gen += 2, -ESTALE);
	EXPECT(h.gen += 1, -EINVAL);                                   /* even: never allocated */
	EXPECT(h.offset += 1, -EINVAL);
	EXPECT(h.offset = 0, -EINVAL);
	EXPECT(h.offset = 32, -EINVAL);                                /* chunk header */
	EXPECT(h.offset = 8u << 20, -EINVAL);                          /* past the chunk */
	EXPECT(h.offset = UINT32_MAX - 15, -EINVAL);
	EXPECT(h.len = 0, -EINVAL);
	EXPECT(h.len = 101, -EINVAL);
	EXPECT(h.len = UINT32_MAX, -EINVAL);
	EXPECT(h.offset += 48, -EFAULT);                               /* inside the data */
	EXPECT(h.offset = big.offset + 4096, -EFAULT);                 /* never carved */
#undef EXPECT
	g_assert_cmpint(shma_resolve(p, NULL, &r), ==, -EINVAL);
	g_assert_cmpint(shma_resolve(p, &good, NULL), ==, -EINVAL);
	g_assert_cmpint(shma_resolve(NULL, &good, &r), ==, -EINVAL);
	g_assert_cmpint(shma_resolve(p, &good, &r), ==, 0);
	g_assert_true(r == d);
	shma_pool_free(p);
}

static void test_handle_block_chunk(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	struct shma_chunk_info ci = { .size = sizeof(ci) };
	struct shma_handle h;
	uint8_t *d, *m;

	g_assert_cmpint(shma_alloc(p, 5000, 4096, &h, (void **)&d), ==, 0);
	shm_pattern_fill(d, 5000, 3);
	g_assert_cmpint(shma_block_chunk(p, &h, &ci), ==, 0);
	g_assert_cmpuint(ci.len, ==, SHMA_CHUNK_SIZE_DEFAULT);
	g_assert_cmpuint((uintptr_t)ci.base % 4096, ==, 0);
	g_assert_true((uint8_t *)ci.base + ci.offset == d);
	g_assert_cmpuint(ci.offset, ==, h.offset);
	g_assert_cmpuint(ci.index, ==, h.chunk & 0xffff);
	m = mmap(NULL, ci.len, PROT_READ, MAP_SHARED, ci.fd, 0);
	g_assert_true(m != MAP_FAILED);
	g_assert_true(shm_pattern_ok(m + ci.offset, 5000, 3));
	munmap(m, ci.len);
	h.gen += 2;
	g_assert_cmpint(shma_block_chunk(p, &h, &ci), ==, -ESTALE);
	g_assert_cmpint(shma_block_chunk(p, &h, NULL), ==, -EINVAL);
	shma_pool_free(p);
}

/* ---- concurrency ---------------------------------------------------------------------- */

struct churn {
	struct shma_pool *p;
	unsigned id;
	long iters;
	int err;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	struct shma_handle live[512] = { 0 };
	uint64_t rng = 77 + c->id;

	for (long i = 0; i < c->iters && !c->err; i++) {
		unsigned k = (unsigned)(shm_rand(&rng) % 512);
		size_t len = 16 + shm_rand(&rng) % 4080;
		uint8_t *d;
		if (live[k].len) {
			void *r;
			if (shma_resolve(c->p, &live[k], &r) < 0 ||
			    !shm_pattern_ok(r, live[k].len, shm_pattern_seed(&live[k]) ^ (uint8_t)c->id))
				c->err = -EBADMSG;
			int f = shma_free_handle(c->p, &live[k]);

			if (f < 0)
				c->err = f;
			live[k].len = 0;
		}
		{
			int r = shma_alloc(c->p, len, 0, &live[k], (void **)&d);

			if (r < 0) {
				c->err = r;  /* the real error, for the assertion's message */
				break;
			}
		}
		shm_pattern_fill(d, len, shm_pattern_seed(&live[k]) ^ (uint8_t)c->id);
	}
	for (unsigned k = 0; k < 512; k++) {
		int f = live[k].len ? shma_free_handle(c->p, &live[k]) : 0;

		if (f < 0 && !c->err)
			c->err = f;
	}
	return NULL;
}

static void test_threads(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 1u << 20);
	struct churn c[2] = { { p, 1, 200000, 0 }, { p, 2, 200000, 0 } };
	pthread_t t[2];
	struct shma_pool_stat st = { .size = sizeof(st) };

	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn_thread, &c[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	g_assert_cmpint(c[0].err, ==, 0);
	g_assert_cmpint(c[1].err, ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	shma_pool_free(p);
}

/* Signal handler allocating and freeing while the interrupted code does too. */
static struct shma_pool *sig_pool;
static volatile sig_atomic_t sig_runs, sig_errors;

static void on_alarm(int sig)
{
	struct shma_handle h[4];
	int saved = errno;

	for (int i = 0; i < 4; i++) {
		uint8_t *d;
		if (shma_alloc(sig_pool, 24 + (size_t)i * 500, 0, &h[i], (void **)&d) < 0) {
			sig_errors++;
			continue;
		}
		memset(d, 0xee, h[i].len);
	}
	for (int i = 0; i < 4; i++)
		if (shma_free_handle(sig_pool, &h[i]) < 0)
			sig_errors++;
	sig_runs++;
	errno = saved;
}

static void test_trim_race(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	struct churn c[2] = { { p, 1, 100000, 0 }, { p, 2, 100000, 0 } };
	pthread_t t[4];
	struct shma_pool_stat st = { .size = sizeof(st) };
	void *released, *burst;

	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn_thread, &c[i]);
	pthread_create(&t[2], NULL, trim_loop, p);
	pthread_create(&t[3], NULL, burst_loop, p);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_join(t[2], &released);
	pthread_join(t[3], &burst);
	g_assert_null(burst);
	g_test_message("trim released %d chunks while churning", GPOINTER_TO_INT(released));
	g_assert_cmpint(c[0].err, ==, 0);
	g_assert_cmpint(c[1].err, ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	/*
	 * Whatever the trim thread did not release (it may have outlasted the
	 * churners, as under emulation, and released everything) goes now;
	 * then nothing is left to release.
	 */
	{
		int last = shma_pool_trim(p);

		g_assert_cmpint(last, >=, 0);
		g_assert_cmpint(GPOINTER_TO_INT(released) + last, >, 0);
		g_assert_cmpint(shma_pool_trim(p), ==, 0);
	}
	shma_pool_free(p);
}

/*
 * Walks and carving racing with trim giving regular chunks back in this
 * process: a slot leaves LIVE before its mapping here goes, so a walk (or a
 * carve trying every chunk) skips a chunk on its way out instead of taking
 * it for a chunk it cannot map (-ENXIO). Without that, about one run in
 * three fails here (trim-race: one in twenty).
 */
struct walk_race {
	struct shma_pool *p;
	int stop;
	int err;
};

static void *walk_race_stat(void *arg)
{
	struct walk_race *w = arg;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		struct shma_pool_stat st = { .size = sizeof(st) };
		int r = shma_pool_stat(w->p, &st);

		if (r < 0) {
			w->err = r;
			break;
		}
	}
	return NULL;
}

static void test_trim_walk_race(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	struct walk_race w = { p, 0, 0 };
	struct shma_pool_stat st = { .size = sizeof(st) };
	pthread_t t[4];
	void *burst[2];

	pthread_create(&t[0], NULL, trim_loop, p);
	pthread_create(&t[1], NULL, burst_loop, p);
	pthread_create(&t[2], NULL, burst_loop, p);
	pthread_create(&t[3], NULL, walk_race_stat, &w);
	pthread_join(t[0], NULL);
	pthread_join(t[1], &burst[0]);
	pthread_join(t[2], &burst[1]);
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t[3], NULL);
	g_assert_null(burst[0]);
	g_assert_null(burst[1]);
	g_assert_cmpint(w.err, ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	shma_pool_free(p);
}

/*
 * shma_pool_stat (documented thread-safe) racing with dedicated chunks
 * coming and going in this process: two threads allocate and free large
 * blocks (each free unmaps the chunk here, each allocation may reuse the
 * slot under a new generation) while a third takes statistics. A walk
 * that read a dedicated chunk's header through a mapping being released
 * crashed with SIGSEGV (about one stress run in a hundred before the
 * walkers pinned their mappings; here, a few seconds of it, every run).
 */
struct large_churn {
	struct walk_race w;     /* the pool, the stop flag, the first error; walk_race_stat takes it */
	unsigned long ops;
};

static void *large_churn_thread(void *arg)
{
	struct large_churn *c = arg;

	while (!__atomic_load_n(&c->w.stop, __ATOMIC_ACQUIRE)) {
		void *ptr[32];
		int r = 0;

		for (int i = 0; i < 32 && r == 0; i++) {
			r = shma_alloc(c->w.p, (300u << 10) + (size_t)(i % 4) * 4096, 0, NULL, &ptr[i]);
			if (r == 0)
				memset(ptr[i], 0x5a, 64);
		}
		if (r < 0) {
			c->w.err = r;
			break;
		}
		for (int i = 0; i < 32; i++)
			shma_free(c->w.p, ptr[i]);
		__atomic_add_fetch(&c->ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_stat_dedicated_race(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	struct large_churn c = { { p, 0, 0 }, 0 };
	struct shma_pool_stat st = { .size = sizeof(st) };
	uint64_t t0 = g_get_monotonic_time();
	pthread_t t[4];

	pthread_create(&t[0], NULL, large_churn_thread, &c);
	pthread_create(&t[1], NULL, large_churn_thread, &c);
	pthread_create(&t[2], NULL, walk_race_stat, &c.w);
	pthread_create(&t[3], NULL, walk_race_stat, &c.w);
	while (g_get_monotonic_time() - t0 < 2000000 && !__atomic_load_n(&c.w.err, __ATOMIC_RELAXED))
		g_usleep(10000);
	__atomic_store_n(&c.w.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	g_test_message("%lu rounds of 32 dedicated chunks under shma_pool_stat", c.ops);
	g_assert_cmpint(c.w.err, ==, 0);
	g_assert_cmpuint(c.ops, >, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	shma_pool_free(p);
}

static void test_signal_safety(void)
{
	struct itimerval it = { { 0, 50 }, { 0, 50 } };
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct churn c = { 0 };
	struct shma_pool_stat st = { .size = sizeof(st) };
	uint64_t t0 = g_get_monotonic_time();

	sig_pool = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);  /* small: growth in handlers too */
	c.p = sig_pool;
	c.id = 9;
	c.iters = 1;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	while (sig_runs < 2000 && g_get_monotonic_time() - t0 < 5 * G_USEC_PER_SEC) {
		c.iters = 2000;
		churn_thread(&c);
		g_assert_cmpint(c.err, ==, 0);
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	signal(SIGALRM, SIG_DFL);
	g_test_message("%d handler runs", (int)sig_runs);
	g_assert_cmpint(sig_runs, >, 100);
	g_assert_cmpint(sig_errors, ==, 0);
	stat_of(sig_pool, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	/* Handlers nested in our cache path left it whole: every cached block is
	 * in the cache (a flush lists them all) and every free block is on a list. */
	g_assert_cmpint(shma_flush_cache(sig_pool), >=, 0);
	g_assert_cmpuint(held_free(sig_pool), ==, 0);
	g_assert_cmpint(shma_pool_repair(sig_pool), ==, 0);
	shma_pool_free(sig_pool);
}

/* ---- cross-process ------------------------------------------------------------------- */

static int run_child(char **argv, char **out)
{
	GError *err = NULL;
	int status = 0;

	g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, NULL,
				   &status, &err));
	g_assert_no_error(err);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_xproc_resolve(void)
{
	g_autofree char *name = unique_name("xres");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
	struct shma_handle hs[40];
	uint8_t *ds[40];

	g_ptr_array_add(argv, g_strdup(CHILD));
	g_ptr_array_add(argv, g_strdup("resolve"));
	g_ptr_array_add(argv, g_strdup("/dev/shm"));
	g_ptr_array_add(argv, g_strdup(name));
	for (int i = 0; i < 40; i++) {
		char buf[64];
		size_t len = i == 39 ? (3u << 20) : 10 + (size_t)i * 97;   /* one dedicated chunk */
		g_assert_cmpint(shma_alloc(p, len, i % 3 ? 0 : 256, &hs[i], (void **)&ds[i]), ==, 0);
		shm_pattern_fill(ds[i], len, shm_pattern_seed(&hs[i]));
		shm_handle_format(&hs[i], buf, sizeof(buf));
		g_ptr_array_add(argv, g_strdup(buf));
	}
	g_ptr_array_add(argv, NULL);
	g_assert_cmpint(run_child((char **)argv->pdata, NULL), ==, 0);
	for (int i = 0; i < 40; i++)
		for (uint32_t k = 0; k < hs[i].len; k++)
			g_assert_cmpuint(ds[i][k], ==, (uint8_t)~(uint8_t)(shm_pattern_seed(&hs[i]) + k * 31));
	/* A stale handle fails in the child too. */
	{
		char buf[64];
		char *a[] = { CHILD, "resolve", "/dev/shm", name, buf, NULL };
		g_assert_cmpint(shma_free_handle(p, &hs[5]), ==, 0);
		shm_handle_format(&hs[5], buf, sizeof(buf));
		g_assert_cmpint(run_child(a, NULL), ==, 1);
	}
	g_ptr_array_free(argv, TRUE);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

static void test_xproc_memfd(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 1u << 20);
	struct shma_handle hs[16];
	uint8_t *ds[16];
	int sv[2], fds[64], n;
	char sockarg[16], ack = 0;
	GError *err = NULL;
	GPid pid;
	int status;

	for (int i = 0; i < 16; i++) {
		size_t len = i == 15 ? (2u << 20) : 100 + (size_t)i * 300;
		g_assert_cmpint(shma_alloc(p, len, 0, &hs[i], (void **)&ds[i]), ==, 0);
		shm_pattern_fill(ds[i], len, shm_pattern_seed(&hs[i]));
	}
	g_assert_cmpint(shma_pool_fds(p, fds, 1), ==, -ENOBUFS);
	n = shma_pool_fds(p, fds, 64);
	g_assert_cmpint(n, ==, 3);      /* root, a regular chunk, a dedicated chunk */
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
	fcntl(sv[0], F_SETFD, FD_CLOEXEC);
	snprintf(sockarg, sizeof(sockarg), "%d", sv[1]);
	{
		char *argv[] = { CHILD, "memfd", sockarg, NULL };
		g_assert_true(g_spawn_async(NULL, argv, NULL,
					    G_SPAWN_LEAVE_DESCRIPTORS_OPEN | G_SPAWN_DO_NOT_REAP_CHILD,
					    NULL, NULL, &pid, &err));
		g_assert_no_error(err);
	}
	close(sv[1]);
	g_assert_cmpint(shma_send_fds(sv[0], fds, (size_t)n, hs, sizeof(hs)), ==, 0);
	g_assert_cmpint(read(sv[0], &ack, 1), ==, 1);
	g_assert_cmpint(ack, ==, 'K');
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int i = 0; i < 16; i++)
		g_assert_cmpuint(ds[i][hs[i].len - 1], ==,
				 (uint8_t)~(uint8_t)(shm_pattern_seed(&hs[i]) + (hs[i].len - 1) * 31));
	close(sv[0]);
	shma_pool_free(p);
}

static void test_xproc_memfd_attacher(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10), *q = NULL;
	struct shma_handle h;
	int fds[8], n;
	void *d;

	g_assert_cmpint(shma_alloc(p, 100, 0, &h, NULL), ==, 0);
	n = shma_pool_fds(p, fds, 8);
	g_assert_cmpint(shma_pool_attach_fds(fds, 1, 0, &q), ==, 0);   /* root only */
	g_assert_cmpint(shma_resolve(q, &h, &d), ==, -ENXIO);
	{
		/* The free list leads into a chunk q cannot map: a clear error. */
		void *x;
		g_assert_cmpint(shma_alloc(p, 100, 0, NULL, &x), ==, 0);
		g_assert_cmpint(shma_free(p, x), ==, 0);
		g_assert_cmpint(shma_alloc(q, 100, 0, NULL, &x), ==, -ENXIO);
	}
	g_assert_cmpint(shma_pool_import_fd(q, fds[1]), ==, 0);
	g_assert_cmpint(shma_pool_import_fd(q, fds[1]), ==, 0);        /* again: no-op */
	g_assert_cmpint(shma_pool_import_fd(q, fds[0]), ==, -EBADMSG); /* the root is no chunk */
	g_assert_cmpint(shma_resolve(q, &h, &d), ==, 0);
	/* The attacher allocates from existing chunks but cannot grow a memfd pool. */
	g_assert_cmpint(shma_alloc(q, 1000, 0, NULL, NULL), ==, 0);
	g_assert_cmpint(shma_alloc(q, 1u << 20, 0, NULL, NULL), ==, -ENOSPC);
	g_assert_cmpint(n, ==, 2);
	shma_pool_free(q);
	shma_pool_free(p);
}

static void test_xproc_concurrent(void)
{
	g_autofree char *name = unique_name("conc");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	GPid pids[2];
	int outs[2];
	GString *text[2] = { g_string_new(NULL), g_string_new(NULL) };
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	struct shma_pool_stat st = { .size = sizeof(st) };
	unsigned total = 0;

	for (int i = 0; i < 2; i++) {
		char id[4];
		GError *err = NULL;
		snprintf(id, sizeof(id), "%d", i + 1);
		char *argv[] = { CHILD, "churn", "/dev/shm", name, id, "100000", "300", NULL };
		g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
						       NULL, NULL, &pids[i], NULL, &outs[i], NULL, &err));
		g_assert_no_error(err);
	}
	for (int i = 0; i < 2; i++) {
		char buf[4096];
		ssize_t n;
		int status;
		while ((n = read(outs[i], buf, sizeof(buf))) > 0)
			g_string_append_len(text[i], buf, n);
		close(outs[i]);
		g_assert_cmpint(waitpid(pids[i], &status, 0), ==, pids[i]);
		g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (int i = 0; i < 2; i++) {
		g_auto(GStrv) lines = g_strsplit(text[i]->str, "\n", -1);
		for (char **l = lines; *l && **l; l++) {
			struct shma_handle h;
			void *d;
			g_assert_cmpint(shm_handle_parse(*l, &h), ==, 0);
			g_assert_false(g_hash_table_contains(seen, *l));
			g_hash_table_add(seen, g_strdup(*l));
			g_assert_cmpint(shma_resolve(p, &h, &d), ==, 0);
			g_assert_true(shm_pattern_ok(d, h.len, shm_pattern_seed(&h) ^ (uint8_t)(i + 1)));
			total++;
		}
		g_string_free(text[i], TRUE);
	}
	g_assert_cmpuint(total, ==, 600);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 600);
	g_assert_cmpuint(st.users, ==, 1);           /* the children detached */
	g_hash_table_destroy(seen);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

static void test_xproc_kill9(void)
{
	g_autofree char *name = unique_name("kill");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	struct churn c = { p, 5, 20000, 0 };
	struct shma_pool_stat st = { .size = sizeof(st) };
	GError *err = NULL;
	GPid pid;
	int out, status, reclaimed;
	char ready;

	{
		char *argv[] = { CHILD, "loop", "/dev/shm", name, NULL };
		g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
						       NULL, NULL, &pid, NULL, &out, NULL, &err));
		g_assert_no_error(err);
	}
	g_assert_cmpint(read(out, &ready, 1), ==, 1);
	/* Let it run a little, racing with us, then kill it mid-loop. */
	churn_thread(&c);
	g_assert_cmpint(c.err, ==, 0);
	kill(pid, SIGKILL);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status));
	close(out);
	/* The survivors go on. */
	c.iters = 50000;
	churn_thread(&c);
	g_assert_cmpint(c.err, ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.users_dead, ==, 1);
	g_test_message("dead writer held %" G_GUINT64_FORMAT " blocks", st.blocks_used);
	g_assert_cmpuint(st.blocks_used, <=, 256);
	reclaimed = shma_pool_reclaim(p);
	g_assert_cmpint(reclaimed, >, 200);
	g_assert_cmpuint(reclaimed, <=, st.blocks_used);
	stat_of(p, &st);
	g_assert_cmpuint(st.users_dead, ==, 0);
	/* Even a block it was moving between a list and a header: its in-flight record. */
	g_assert_cmpuint(st.blocks_used, ==, 0);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	/* The pool still allocates and frees correctly. */
	c.iters = 20000;
	churn_thread(&c);
	g_assert_cmpint(c.err, ==, 0);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

static void test_reclaim_leak(void)
{
	g_autofree char *name = unique_name("leak");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	char *argv[] = { CHILD, "leak", "/dev/shm", name, "150", NULL };
	struct shma_pool_stat st = { .size = sizeof(st) };
	struct shma_handle mine;

	g_assert_cmpint(shma_alloc(p, 77, 0, &mine, NULL), ==, 0);
	g_assert_cmpint(run_child(argv, NULL), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 151);
	g_assert_cmpuint(st.users_dead, ==, 1);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 150);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 1);
	g_assert_cmpint(shma_resolve(p, &mine, &(void *){ NULL }), ==, 0);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* Detaching cleanly hands blocks to the pool: no reclaim frees them later. */
static void test_reclaim_detached(void)
{
	g_autofree char *name = unique_name("det");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	char *argv[] = { CHILD, "churn", "/dev/shm", name, "3", "1000", "50", NULL };
	struct shma_pool_stat st = { .size = sizeof(st) };
	g_autofree char *out = NULL;

	g_assert_cmpint(run_child(argv, &out), ==, 0);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 50);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* Start `shm-child crash DIR NAME` and read the handle of the block it allocated. */
static GPid spawn_crasher(const char *name, struct shma_handle *h)
{
	char *argv[] = { CHILD, "crash", "/dev/shm", (char *)name, NULL };
	GError *err = NULL;
	char line[128];
	size_t n = 0;
	GPid pid;
	int out;

	g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
					       NULL, NULL, &pid, NULL, &out, NULL, &err));
	g_assert_no_error(err);
	while (n < sizeof(line) - 1 && read(out, &line[n], 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	close(out);
	g_assert_cmpint(shm_handle_parse(line, h), ==, 0);
	return pid;
}

/*
 * 400 processes in turn attach, allocate and die by SIGKILL: more than the
 * 255 registration slots. Slots of dead processes are reclaimed when the
 * table is full, so nothing outlives the crashes: 0 blocks used after reclaim.
 */
static void test_reclaim_crash_loop(void)
{
	g_autofree char *name = unique_name("loop");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	struct shma_pool_stat st = { .size = sizeof(st) };
	struct shma_handle h;
	int reclaimed, status;

	for (int i = 0; i < 400; i++) {
		GPid pid = spawn_crasher(name, &h);
		uint8_t *d;
		/* The live crasher's block is intact before it dies. */
		g_assert_cmpint(shma_resolve(p, &h, (void **)&d), ==, 0);
		g_assert_true(shm_pattern_ok(d, h.len, shm_pattern_seed(&h)));
		kill(pid, SIGKILL);
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	}
	stat_of(p, &st);
	g_test_message("after 400 crashes: %" G_GUINT64_FORMAT " blocks used, %u dead users",
		       st.blocks_used, st.users_dead);
	g_assert_cmpuint(st.blocks_used, ==, st.users_dead);
	reclaimed = shma_pool_reclaim(p);
	g_assert_cmpint(reclaimed, ==, (int)st.users_dead);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	g_assert_cmpuint(st.users_dead, ==, 0);
	g_assert_cmpuint(st.users, ==, 1);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* The pid of a process that has exited and been reaped. */
static pid_t dead_pid(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	return pid;
}

/*
 * Processes killed at the points of chunk management no block records:
 * right after claiming a slot, half-way through giving one back, between
 * publishing a dedicated chunk and writing its block header. The states
 * are made by hand (a SIGKILL lands there too rarely to wait for), with a
 * real dead process as their owner.
 */
static void test_reclaim_dead_slot_owners(void)
{
	g_autofree char *name = unique_name("slot");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	struct shma_root *rt = p->root;
	struct shma_pool_stat st = { .size = sizeof(st) };
	struct shma_handle h;
	pid_t dead = dead_pid();
	uint32_t a = 40, b = 41, idx;
	void *d;

	/* A claim never recorded: the claimer's pid is in the state word. */
	rt->slots[a].owner_pid = getpid();      /* stale: a live process's */
	rt->slots[a].state = shma_slot_word((uint32_t)dead, 1, SHMA_SLOT_CREATING,
					    SHMA_KIND_REGULAR | SHMA_KIND_CLAIMING);
	/* A release half done: out of LIVE, owner recorded, file maybe still there. */
	rt->slots[b].owner_pid = dead;
	rt->slots[b].owner_start = 12345;
	rt->slots[b].state = shma_slot_word(0x1234, 1, SHMA_SLOT_CREATING, SHMA_KIND_DEDICATED);
	/* A live claimer's claim stays. */
	rt->slots[42].state = shma_slot_word((uint32_t)getpid(), 1, SHMA_SLOT_CREATING,
					     SHMA_KIND_CLAIMING);
	__atomic_store_n(&rt->hwm, 43, __ATOMIC_RELEASE);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 0);
	g_assert_cmpuint(shma_s_st(rt->slots[a].state), ==, SHMA_SLOT_FREE);
	g_assert_cmpuint(shma_s_st(rt->slots[b].state), ==, SHMA_SLOT_FREE);
	g_assert_cmpuint(shma_s_st(rt->slots[42].state), ==, SHMA_SLOT_CREATING);
	rt->slots[42].state = shma_slot_word(0, 1, SHMA_SLOT_FREE, 0);

	/* A dedicated chunk whose dead creator never wrote the header. */
	g_assert_cmpint(shma_alloc(p, 2u << 20, 0, &h, &d), ==, 0);
	idx = h.chunk & 0xffff;
	memset((char *)d - 16, 0, 16);
	rt->slots[idx].owner_pid = dead;
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, ==, 1);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, ==, 0);
	g_assert_cmpint(shma_resolve(p, &h, &d), ==, -ESTALE);

	/* A dedicated block freed by a process that died before giving the chunk back. */
	g_assert_cmpint(shma_alloc(p, 2u << 20, 0, &h, &d), ==, 0);
	{
		int status;
		pid_t pid = fork();
		if (pid == 0) {
			/* Register as ourselves, then free as far as the header CAS. */
			struct shma_blk *hb = (struct shma_blk *)((char *)d - 16);
			unsigned me;
			uint64_t w = hb->word;
			if (shma_owner(p, &me) < 0)
				_exit(1);
			hb->word = shma_blk_word(shma_w_gen(w) + 1, shma_w_cls(w), me);
			raise(SIGKILL);
		}
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status));
	}
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, ==, 1);
	g_assert_cmpuint(st.users_dead, ==, 1);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, ==, 0);
	g_assert_cmpuint(st.users_dead, ==, 0);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* Entries on class c's free list (nobody else is using the pool). */
static uint64_t list_len(struct shma_pool *p, unsigned c)
{
	uint64_t n = 0;

	for (uint32_t ref = (uint32_t)p->root->heads[c].hi; ref && n < (1u << 24); n++) {
		struct shma_blk *b = shma_blk_at(p, ref);
		if (!b)
			break;
		ref = b->aux;
	}
	return n;
}

/* Live regular chunks closed to carving (trim closes them just before it drops them). */
static unsigned closed_chunks(struct shma_pool *p)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < p->max_chunks; i++) {
		uint64_t s = p->root->slots[i].state;
		if (shma_s_st(s) == SHMA_SLOT_LIVE && shma_s_kind(s) == SHMA_KIND_REGULAR &&
		    shma_bump_off(p->root->slots[i].bump) > p->chunk_size)
			n++;
	}
	return n;
}

/* Free blocks on no list (every free block must be on one: nobody else is alive). */
static uint64_t unlisted(struct shma_pool *p)
{
	struct shma_pool_stat st = { .size = sizeof(st) };
	uint64_t listed = 0;

	stat_of(p, &st);
	for (unsigned c = 0; c < st.nclasses; c++) {
		uint64_t n = list_len(p, c);
		g_assert_cmpuint(n, <=, st.class_free[c]);
		listed += n;
	}
	return st.blocks_free - listed;
}

/*
 * Fork a child that runs fn(ud, fd): it writes a byte to fd once ready,
 * then loops until killed. SIGKILL it 0-3 ms after that byte.
 */
static void kill_when_ready(void (*fn)(void *ud, int fd), void *ud)
{
	int fds[2], status;
	char c;
	pid_t pid;

	g_assert_cmpint(pipe(fds), ==, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		close(fds[0]);
		fn(ud, fds[1]);
		_exit(1);
	}
	close(fds[1]);
	g_assert_cmpint(read(fds[0], &c, 1), ==, 1);
	close(fds[0]);
	g_usleep((gulong)g_random_int_range(0, 3000));
	kill(pid, SIGKILL);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* The inherited pool object: trim registers this process anew. */
static void trim_forever(void *ud, int fd)
{
	if (write(fd, "x", 1) != 1)
		return;
	for (;;)
		shma_pool_trim(ud);
}

/* Attach, fill the lists, then repair until killed. */
static void repair_forever(void *ud, int fd)
{
	struct shma_pool *q;
	void *d[1500];

	if (shma_pool_attach(NULL, ud, 0, &q) < 0)
		return;
	for (int i = 0; i < 1500; i++)
		if (shma_alloc(q, 100 + (size_t)(i % 9) * 300, 0, NULL, &d[i]) < 0)
			return;
	for (int i = 0; i < 1500; i++)
		if (shma_free(q, d[i]) < 0)
			return;
	shma_flush_cache(q);
	if (write(fd, "x", 1) != 1)
		return;
	while (shma_pool_repair(q) >= 0)
		;
}

/*
 * A process SIGKILLed inside shma_pool_trim (while it holds the lists it
 * took, or after closing chunks it has not dropped yet): reclaim alone
 * puts every taken block back on its list and drops the closed chunks.
 * Each round refills the lists over new chunks, then a child loops trims
 * until killed at a random moment.
 */
static void test_reclaim_trim_kill(void)
{
	g_autofree char *name = unique_name("tk");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 64u << 10);
	struct shma_handle *hs = g_new(struct shma_handle, 2000);
	unsigned held_rounds = 0, closed_rounds = 0;
	struct shma_pool_stat st = { .size = sizeof(st) };

	for (int round = 0; round < 50; round++) {
		uint64_t left;
		unsigned closed;

		/* Several classes over several chunks; round 0 pins a block in each chunk it makes. */
		for (int i = 0; i < 2000; i++)
			g_assert_cmpint(shma_alloc(p, 100 + (size_t)(i % 9) * 300, i % 4 ? 0 : 128, &hs[i],
						   NULL), ==, 0);
		for (int i = 0; i < 2000; i++)
			if (round || i % 61)
				g_assert_cmpint(shma_free_handle(p, &hs[i]), ==, 0);
		/* Our thread cache's blocks on the lists too: the account below is exact. */
		g_assert_cmpint(shma_flush_cache(p) > 0, ==, caches_on());
		g_assert_cmpint(shma_flush_cache(p), ==, 0);
		g_assert_cmpuint(unlisted(p), ==, 0);
		kill_when_ready(trim_forever, p);
		/* What the kill left: lists held (marked blocks on none), closed chunks. */
		left = unlisted(p);
		closed = closed_chunks(p);
		held_rounds += left > 0;
		closed_rounds += closed > 0;
		g_assert_cmpint(shma_pool_reclaim(p), >=, 0);
		g_assert_cmpuint(unlisted(p), ==, 0);
		g_assert_cmpuint(closed_chunks(p), ==, 0);
		stat_of(p, &st);
		g_assert_cmpuint(st.users_dead, ==, 0);
		g_assert_cmpuint(st.blocks_used, ==, 2000 / 61 + 1);
	}
	g_test_message("50 trims killed: %u holding taken lists, %u with closed chunks not yet dropped",
		       held_rounds, closed_rounds);
	/* The path under test was taken (a trim spends most of its time holding the lists). */
	g_assert_cmpuint(held_rounds, >, 0);
	/* Nothing left that only repair could find. */
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	/* Trim still works over what the reclaims gave back. */
	g_assert_cmpint(shma_pool_trim(p), >=, 0);
	g_assert_cmpuint(unlisted(p), ==, 0);
	g_assert_cmpuint(closed_chunks(p), ==, 0);
	g_free(hs);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/*
 * The same for shma_pool_repair, which also holds whole lists while it
 * walks the pool: a repairer SIGKILLed at a random moment loses nothing
 * to reclaim alone. Repair runs only with no other process registered, so
 * this process watches through a read-only attachment and registers only
 * to reclaim between rounds.
 */
static void test_reclaim_repair_kill(void)
{
	g_autofree char *name = unique_name("rk");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 64u << 10), *ro = NULL;
	unsigned held_rounds = 0;

	shma_pool_free(p);      /* detached: the pool stays, unregistered */
	g_assert_cmpint(shma_pool_attach(NULL, name, SHMA_ATTACH_RDONLY, &ro), ==, 0);
	for (int round = 0; round < 30; round++) {
		struct shma_pool_stat st = { .size = sizeof(st) };

		kill_when_ready(repair_forever, name);
		held_rounds += unlisted(ro) > 0;
		/* Register, reclaim, check, detach again. */
		g_assert_cmpint(shma_pool_attach(NULL, name, 0, &p), ==, 0);
		g_assert_cmpint(shma_pool_reclaim(p), >=, 0);
		stat_of(p, &st);
		g_assert_cmpuint(st.users_dead, ==, 0);
		g_assert_cmpuint(st.blocks_used, ==, 0);
		g_assert_cmpuint(unlisted(p), ==, 0);
		g_assert_cmpuint(held_free(p), ==, 0);
		shma_pool_free(p);
	}
	g_test_message("30 repairs killed, %u holding taken lists", held_rounds);
	g_assert_cmpuint(held_rounds, >, 0);
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &p), ==, 0);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	shma_pool_free(ro);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/*
 * A chain moved between a list and a thread cache with one CAS (a POPN
 * refilling the cache, a PUSHN giving half of it back): a process killed
 * at any step of either loses none of its blocks to reclaim alone. The
 * child walks the protocol by hand up to the step, then SIGKILLs itself:
 * where stop is
 *   POPN  0: named the pop, CAS not done; 1: popped, nothing marked;
 *         2: popped, 3 of 6 marked cached; 3: all marked, record not gone
 *   PUSHN 4: linked and named, all still cached; 5: 3 of 6 unmarked
 *         (owner NONE); 6: all unmarked, about to CAS; 7: pushed, record
 *         not yet IDLE.
 */
#define CHAIN_K 6u

static void chain_child(const char *name, unsigned c, int stop)
{
	struct shma_pool *q;
	struct shma_rec rec;
	struct shma_blk *blks[CHAIN_K];
	uint32_t refs[CHAIN_K], gens[CHAIN_K];
	struct shma_head *h;
	unsigned u;
	uint64_t lo;

	if (shma_pool_attach(NULL, name, 0, &q) < 0 || shma_owner(q, &u) < 0 ||
	    shma_rec_claim(q, u, &rec) < 0)
		_exit(1);
	h = &q->root->heads[c];
	lo = __atomic_load_n(&h->lo, __ATOMIC_ACQUIRE);
	if (stop == 0) {
		__atomic_store_n(&rec.in->ref, (uint32_t)h->hi, __ATOMIC_RELAXED);
		__atomic_store_n(&rec.in->word, shma_in_word(SHMA_OP_POPN, SHMA_IN_PENDING,
							     shma_in_head(c, shma_h_tag(lo) + 1) |
							     (uint64_t)CHAIN_K << SHMA_IN_COUNT_SHIFT),
				 __ATOMIC_RELEASE);
		raise(SIGKILL);
	}
	if (shma_pop_chain(q, &rec, c, CHAIN_K, refs, blks) != (int)CHAIN_K)
		_exit(2);
	for (unsigned i = 0; i < CHAIN_K; i++) {
		gens[i] = shma_w_gen(blks[i]->word);
		if ((stop == 1 || (stop == 2 && i == 3)))
			raise(SIGKILL);
		__atomic_store_n(&blks[i]->word, shma_blk_word(gens[i], c, u), __ATOMIC_RELEASE);
	}
	if (stop == 3)
		raise(SIGKILL);
	shma_rec_release(&rec);
	/* The chain is in "our cache" now: give it back, as shma_push_chain does. */
	if (shma_rec_claim(q, u, &rec) < 0)
		_exit(3);
	if (stop == 7) {
		shma_push_chain(q, &rec, c, refs, blks, gens, CHAIN_K);
		lo = __atomic_load_n(&h->lo, __ATOMIC_ACQUIRE);
		__atomic_store_n(&rec.in->word, shma_in_word(SHMA_OP_PUSHN, SHMA_IN_PENDING,
							     shma_in_head(c, shma_h_tag(lo)) |
							     (uint64_t)CHAIN_K << SHMA_IN_COUNT_SHIFT),
				 __ATOMIC_RELEASE);
		raise(SIGKILL);
	}
	for (unsigned i = 0; i + 1 < CHAIN_K; i++)
		__atomic_store_n(&blks[i]->aux, refs[i + 1], __ATOMIC_RELAXED);
	__atomic_store_n(&rec.in->ref, refs[0], __ATOMIC_RELAXED);
	__atomic_store_n(&rec.in->word, shma_in_word(SHMA_OP_PUSHN, SHMA_IN_PENDING, shma_in_head(c, 0) |
						     (uint64_t)CHAIN_K << SHMA_IN_COUNT_SHIFT),
			 __ATOMIC_RELEASE);
	for (unsigned i = 0; i < CHAIN_K; i++) {
		if (stop == 4 || (stop == 5 && i == 3))
			raise(SIGKILL);
		__atomic_store_n(&blks[i]->word, shma_blk_word(gens[i], c, SHMA_OWNER_NONE), __ATOMIC_RELEASE);
	}
	lo = __atomic_load_n(&h->lo, __ATOMIC_ACQUIRE);
	__atomic_store_n(&blks[CHAIN_K - 1]->aux, (uint32_t)h->hi, __ATOMIC_RELAXED);
	__atomic_store_n(&rec.in->word, shma_in_word(SHMA_OP_PUSHN, SHMA_IN_PENDING,
						     shma_in_head(c, shma_h_tag(lo) + 1) |
						     (uint64_t)CHAIN_K << SHMA_IN_COUNT_SHIFT),
			 __ATOMIC_RELEASE);
	raise(SIGKILL);         /* stop 6 */
}

static void test_reclaim_chain_kill(void)
{
	g_autofree char *name = unique_name("chk");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 64u << 10);
	static const unsigned held_at[] = { 0, 0, 3, 6, 6, 3, 0, 0 };   /* cached, per stop */
	unsigned c = shma_size_class(200 + sizeof(struct shma_blk));
	void *d[24];

	for (int i = 0; i < 24; i++)
		g_assert_cmpint(shma_alloc(p, 200, 0, NULL, &d[i]), ==, 0);
	for (int i = 0; i < 24; i++)
		g_assert_cmpint(shma_free(p, d[i]), ==, 0);
	shma_flush_cache(p);
	g_assert_cmpuint(list_len(p, c), ==, 24);
	for (int stop = 0; stop <= 7; stop++) {
		struct shma_pool_stat st = { .size = sizeof(st) };
		int status;
		pid_t pid = fork();

		g_assert_cmpint(pid, >=, 0);
		if (pid == 0)
			chain_child(name, c, stop);
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* What the kill left off the list: nothing before the pop, or after the push. */
		g_assert_cmpuint(list_len(p, c), ==, stop == 0 || stop == 7 ? 24 : 24 - CHAIN_K);
		g_assert_cmpuint(held_free(p), ==, held_at[stop]);
		g_assert_cmpint(shma_pool_reclaim(p), >=, 0);
		stat_of(p, &st);
		g_assert_cmpuint(st.users_dead, ==, 0);
		g_assert_cmpuint(st.blocks_used, ==, 0);
		g_assert_cmpuint(held_free(p), ==, 0);
		g_assert_cmpuint(unlisted(p), ==, 0);
		g_assert_cmpuint(list_len(p, c), ==, 24);
	}
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* Killed between freeing an over-aligned block's inner header and its start header. */
static void test_reclaim_dead_shifted_free(void)
{
	g_autofree char *name = unique_name("shf");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	struct shma_pool_stat st = { .size = sizeof(st) };
	int status;
	void *d;
	pid_t pid;

	g_assert_cmpint(shma_alloc(p, 100, 0, NULL, NULL), ==, 0);     /* map the chunk */
	pid = fork();
	if (pid == 0) {
		struct shma_blk *in;
		unsigned me;
		uint64_t w;
		if (shma_alloc(p, 1000, 256, NULL, &d) < 0 || shma_owner(p, &me) < 0)
			_exit(1);
		in = (struct shma_blk *)((char *)d - 16);
		w = in->word;
		if (shma_w_flags(w) != SHMA_F_INNER)
			_exit(2);
		/* shma_free_blk's commit on the inner header, then death. */
		in->word = shma_blk_word(shma_w_gen(w) + 1, shma_w_cls(w) | SHMA_F_INNER, me);
		raise(SIGKILL);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status));
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 2);       /* its start header still says used */
	g_assert_cmpint(shma_pool_reclaim(p), ==, 1);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 1);
	g_assert_cmpuint(st.users_dead, ==, 0);
	/* Back on its list: the next block of that class is that one. */
	g_assert_cmpint(shma_alloc(p, 1000, 256, NULL, &d), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 2);
	g_assert_cmpuint(st.blocks_free, ==, 0);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/*
 * A process killed between marking a block free and putting it on a free
 * list (made by hand in a child up to the mark, then a real SIGKILL):
 * reclaim cannot tell it from a block in live hands; repair, run when no
 * other process is attached, gives it back.
 */
static void test_reclaim_repair(void)
{
	g_autofree char *name = unique_name("rep");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	char *hold[] = { CHILD, "hold", "/dev/shm", name, "30", NULL };
	struct shma_pool_stat st = { .size = sizeof(st) };
	GError *err = NULL;
	void *d = NULL, *x, *y;
	int status;
	GPid holder;
	pid_t pid;

	g_assert_cmpint(shma_repair_running(p), ==, false);
	g_assert_cmpint(shma_alloc(p, 1000, 0, NULL, &d), ==, 0);   /* carve the chunk first */
	g_assert_cmpint(shma_free(p, d), ==, 0);
	g_assert_cmpint(shma_alloc(p, 1000, 0, NULL, &d), ==, 0);   /* d: off the list again */
	pid = fork();
	if (pid == 0) {
		struct shma_blk *b = (struct shma_blk *)((char *)d - 16);
		uint64_t w = b->word;
		/* shma_free_blk's commit, then death before the push. */
		b->word = shma_blk_word(shma_w_gen(w) + 1, shma_w_cls(w), SHMA_OWNER_NONE);
		raise(SIGKILL);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	g_assert_cmpuint(st.blocks_free, ==, 1);
	/* Not on the list: the next block of that class is carved fresh. */
	g_assert_cmpint(shma_alloc(p, 1000, 0, NULL, &x), ==, 0);
	g_assert_true(x != d);
	g_assert_cmpint(shma_free(p, x), ==, 0);

	/* Another live process attached: repair refuses. */
	g_assert_true(g_spawn_async(NULL, hold, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
				    &holder, &err));
	g_assert_no_error(err);
	for (int i = 0; i < 500; i++) {
		stat_of(p, &st);
		if (st.users == 2)
			break;
		g_usleep(10000);
	}
	g_assert_cmpuint(st.users, ==, 2);
	g_assert_cmpint(shma_pool_repair(p), ==, -EBUSY);
	kill(holder, SIGKILL);
	g_assert_cmpint(waitpid(holder, &status, 0), ==, holder);

	/* Alone (the holder's death reclaimed by repair itself): the lost block comes back. */
	g_assert_cmpint(shma_pool_repair(p), ==, 1);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.users_dead, ==, 0);
	g_assert_cmpuint(st.blocks_free, ==, 2);
	g_assert_cmpint(shma_alloc(p, 1000, 0, NULL, &x), ==, 0);
	g_assert_cmpint(shma_alloc(p, 1000, 0, NULL, &y), ==, 0);
	g_assert_true((x == d && y != d) || (y == d && x != d));
	g_assert_cmpint(p->root->users[SHMA_REPAIR_SLOT].pid, ==, 0);
	g_assert_cmpint(shma_pool_repair(NULL), ==, -EINVAL);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* ---- fork() without exec ------------------------------------------------------------- */

static void xwrite(int fd, const void *buf, size_t len)
{
	g_assert_cmpint(write(fd, buf, len), ==, (ssize_t)len);
}

/* A child allocates (attaching itself, or with the inherited pool object),
 * reports its handle, and waits for a byte; exit 0 if its block is intact. */
static pid_t fork_worker(struct shma_pool *inherited, const char *name, bool detach, int *up,
			 int *down)
{
	int u[2], d[2];
	pid_t pid;

	g_assert_cmpint(pipe2(u, O_CLOEXEC), ==, 0);
	g_assert_cmpint(pipe2(d, O_CLOEXEC), ==, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		struct shma_pool *q = inherited;
		struct shma_handle h;
		uint8_t *data;
		char c;

		if (!q && shma_pool_attach(NULL, name, 0, &q) < 0)
			_exit(10);
		if (shma_alloc(q, 300, 0, &h, (void **)&data) < 0)
			_exit(11);
		shm_pattern_fill(data, h.len, shm_pattern_seed(&h));
		if (write(u[1], &h, sizeof(h)) != sizeof(h) || read(d[0], &c, 1) != 1)
			_exit(12);
		if (!shm_pattern_ok(data, h.len, shm_pattern_seed(&h)))
			_exit(13);
		if (detach) {
			if (shma_free_handle(q, &h) < 0)
				_exit(14);
			shma_pool_free(q);
		}
		_exit(0);       /* without detach: as if it crashed */
	}
	close(u[1]);
	close(d[0]);
	*up = u[0];
	*down = d[1];
	return pid;
}

static void fork_reap(pid_t pid, int up, int down)
{
	int status;

	xwrite(down, "x", 1);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	close(up);
	close(down);
}

/*
 * A child made by fork() alone is a process of its own: while it runs it
 * is a live user (never users_dead), and reclaim leaves its block alone.
 */
/*
 * Generations never wrap: a dedicated chunk's slot whose 16-bit generation
 * wraps starts a new epoch, which its block's generation carries, so a
 * handle from before the wrap (same slot, same 16-bit generation, same
 * length) is -ESTALE, not the new block; and a class block whose
 * generation would wrap retires instead of going back on its list.
 */
static void test_generations_wrap(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	struct shma_handle h_old, h_new, stale;
	struct shma_pool_stat st = { .size = sizeof(st) };
	uint32_t idx;
	uint64_t s;
	void *d, *d2;

	g_assert_cmpint(shma_alloc(p, 300u << 10, 0, &h_old, &d), ==, 0);
	g_assert_cmpuint(h_old.gen, ==, SHMA_GEN_DEDICATED | 1);
	idx = h_old.chunk & 0xffff;
	g_assert_cmpint(shma_free_handle(p, &h_old), ==, 0);
	/* Fast-forward the slot to the end of its 16-bit generations. */
	s = p->root->slots[idx].state;
	g_assert_cmpuint(shma_s_st(s), ==, SHMA_SLOT_FREE);
	p->root->slots[idx].state = shma_slot_word(0, 0xffff, SHMA_SLOT_FREE, 0);
	g_assert_cmpint(shma_alloc(p, 300u << 10, 0, &h_new, &d2), ==, 0);
	g_assert_cmpuint(h_new.chunk & 0xffff, ==, idx);        /* wrapped slots come first */
	g_assert_cmpuint(h_new.chunk >> 16, ==, 1);
	g_assert_cmpuint(h_new.gen, ==, SHMA_GEN_DEDICATED | 2 | 1);
	/* What a handle of the first epoch with the same 16-bit generation looks like. */
	stale = h_old;
	stale.chunk = idx | 1u << 16;
	g_assert_cmpint(shma_resolve(p, &stale, &d), ==, -ESTALE);
	g_assert_cmpint(shma_free_handle(p, &stale), ==, -ESTALE);
	g_assert_cmpint(shma_resolve(p, &h_new, &d), ==, 0);
	g_assert_true(d == d2);
	/* A wrapped slot never holds a regular chunk again. */
	g_assert_cmpint(shma_free_handle(p, &h_new), ==, 0);
	for (int i = 0; i < 200; i++)
		g_assert_cmpint(shma_alloc(p, 4000, 0, NULL, NULL), ==, 0);
	g_assert_cmpuint(shma_s_st(p->root->slots[idx].state), ==, SHMA_SLOT_FREE);

	/* A class block at the last generation before the limit retires when freed. */
	{
		struct shma_handle h;
		struct shma_blk *b;
		uint64_t before;
		g_assert_cmpint(shma_alloc(p, 100, 0, &h, &d), ==, 0);
		b = (struct shma_blk *)((char *)d - sizeof(*b));
		b->word = shma_blk_word(SHMA_GEN_RETIRED - 1, shma_w_cls(b->word), shma_w_owner(b->word));
		h.gen = SHMA_GEN_RETIRED - 1;
		stat_of(p, &st);
		before = st.blocks_free;
		g_assert_cmpint(shma_free_handle(p, &h), ==, 0);
		g_assert_cmpint(shma_resolve(p, &h, &d2), ==, -ESTALE);
		for (int i = 0; i < 50; i++) {
			g_assert_cmpint(shma_alloc(p, 100, 0, NULL, &d2), ==, 0);
			g_assert_true(d2 != d);         /* never handed out again */
		}
		stat_of(p, &st);
		g_assert_cmpint(shma_pool_repair(p), ==, 0);    /* retired, not lost */
		(void)before;
	}
	shma_pool_free(p);
}

/* ---- adopt ----------------------------------------------------------------------------- */

static GPid spawn_piped(char **argv, int *out)
{
	GError *err = NULL;
	GPid pid;

	g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
					       NULL, &pid, NULL, out, NULL, &err));
	g_assert_no_error(err);
	return pid;
}

/* Lines from fd up to and including one starting with last (NULL at EOF first). */
static GPtrArray *read_lines_until(int fd, const char *last)
{
	GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
	GString *cur = g_string_new(NULL);
	char ch;

	while (read(fd, &ch, 1) == 1) {
		if (ch != '\n') {
			g_string_append_c(cur, ch);
			continue;
		}
		g_ptr_array_add(a, g_strdup(cur->str));
		if (g_str_has_prefix(cur->str, last)) {
			g_string_free(cur, TRUE);
			return a;
		}
		g_string_truncate(cur, 0);
	}
	g_string_free(cur, TRUE);
	g_ptr_array_free(a, TRUE);
	return NULL;
}

static void kill_wait(GPid pid)
{
	int status;

	kill(pid, SIGKILL);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
}

/* Every free-list entry a free block of its class, none twice; returns how many. */
static uint64_t lists_check(struct shma_pool *p)
{
	GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	uint64_t n = 0;

	for (unsigned c = 0; c < p->nclasses; c++) {
		for (uint32_t ref = (uint32_t)p->root->heads[c].hi; ref;) {
			struct shma_blk *b = shma_blk_at(p, ref);
			g_assert_nonnull(b);
			g_assert_false(g_hash_table_contains(seen, GUINT_TO_POINTER(ref)));
			g_hash_table_add(seen, GUINT_TO_POINTER(ref));
			g_assert_cmpuint(shma_w_cls(b->word), ==, c);
			g_assert_cmpuint(shma_w_gen(b->word) & 1, ==, 0);
			n++;
			ref = b->aux;
		}
	}
	g_hash_table_destroy(seen);
	return n;
}

static void test_adopt_errors(void)
{
	g_autofree char *name = unique_name("adopt-err");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20), *ro;
	struct shma_handle h, bad;
	void *d;

	g_assert_cmpint(shma_alloc(p, 100, 64, &h, &d), ==, 0);
	g_assert_cmpint(shma_adopt(p, &h), ==, 0);          /* already ours */
	g_assert_cmpint(shma_adopt(NULL, &h), ==, -EINVAL);
	g_assert_cmpint(shma_adopt(p, NULL), ==, -EINVAL);
	bad = h;
	bad.offset += 16;
	g_assert_cmpint(shma_adopt(p, &bad), <, 0);
	g_assert_cmpint(shma_pool_attach("/dev/shm", name, SHMA_ATTACH_RDONLY, &ro), ==, 0);
	g_assert_cmpint(shma_adopt(ro, &h), ==, -EPERM);
	shma_pool_free(ro);
	g_assert_cmpint(shma_free_handle(p, &h), ==, 0);
	g_assert_cmpint(shma_adopt(p, &h), ==, -ESTALE);    /* freed: nothing to own */
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/*
 * Ownership moves with the block: a sender allocates and hands 40 blocks
 * (small, over-aligned, dedicated) to a receiver, which adopts them; the
 * sender is SIGKILLed and reclaimed: the receiver's blocks stay, patterns
 * intact (before shma_adopt, reclaim freed every one under the receiver).
 * Then the receiver is killed: reclaim gives back all of them.
 */
static void test_adopt_kill(void)
{
	g_autofree char *name = unique_name("adopt");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	char *sargv[] = { CHILD, "handover", "/dev/shm", name, "40", "0", NULL };
	g_autoptr(GPtrArray) handles = NULL, done = NULL;
	g_autoptr(GPtrArray) rargv = g_ptr_array_new();
	struct shma_pool_stat st = { .size = sizeof(st) };
	int sout, rout, n;
	GPid sender, receiver;

	sender = spawn_piped(sargv, &sout);
	handles = read_lines_until(sout, "H");
	g_assert_nonnull(handles);
	g_assert_cmpuint(handles->len, ==, 41);
	g_ptr_array_add(rargv, CHILD);
	g_ptr_array_add(rargv, "adopt");
	g_ptr_array_add(rargv, "/dev/shm");
	g_ptr_array_add(rargv, name);
	for (unsigned i = 0; i < 40; i++)
		g_ptr_array_add(rargv, handles->pdata[i]);
	g_ptr_array_add(rargv, NULL);
	receiver = spawn_piped((char **)rargv->pdata, &rout);
	done = read_lines_until(rout, "A ");
	g_assert_nonnull(done);
	g_assert_cmpstr(done->pdata[done->len - 1], ==, "A 40 0");

	kill_wait(sender);
	n = shma_pool_reclaim(p);
	g_assert_cmpint(n, ==, 0);              /* the sender owned nothing any more */
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 40);
	for (unsigned i = 0; i < 40; i++) {
		struct shma_handle h;
		void *d;
		g_assert_cmpint(shm_handle_parse(handles->pdata[i], &h), ==, 0);
		g_assert_cmpint(shma_resolve(p, &h, &d), ==, 0);
		g_assert_true(shm_pattern_ok(d, h.len, shm_pattern_seed(&h)));
	}
	kill_wait(receiver);
	n = shma_pool_reclaim(p);
	g_assert_cmpint(n, ==, 40);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	g_assert_cmpuint(st.users_dead, ==, 0);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	g_assert_cmpuint(lists_check(p), ==, st.blocks_free);
	close(sout);
	close(rout);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/*
 * Adopt racing with everything: rounds of a sender handing 30 blocks over
 * and then either freeing them at once (racing the adoptions) or waiting,
 * a receiver adopting them and SIGKILLed at a random moment (before, inside
 * or after its adoptions), the sender SIGKILLed at another. After each
 * round, with both dead, reclaim must give back every block, exactly once:
 * nothing used, nothing on no list (repair finds nothing), no list entry
 * twice.
 */
static void test_adopt_race_kill(void)
{
	g_autofree char *name = unique_name("adopt-race");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	struct shma_pool_stat st = { .size = sizeof(st) };
	uint64_t rng = 0xad09 ^ (uint64_t)getpid();
	unsigned stale_rounds = 0, killed_early = 0;

	for (unsigned round = 0; round < 24; round++) {
		char *sargv[] = { CHILD, "handover", "/dev/shm", name, "30", round % 2 ? "1" : "0", NULL };
		g_autoptr(GPtrArray) handles = NULL, done = NULL;
		g_autoptr(GPtrArray) rargv = g_ptr_array_new();
		int sout, rout;
		GPid sender, receiver;

		sender = spawn_piped(sargv, &sout);
		handles = read_lines_until(sout, "H");
		g_assert_nonnull(handles);
		g_ptr_array_add(rargv, CHILD);
		g_ptr_array_add(rargv, "adopt");
		g_ptr_array_add(rargv, "/dev/shm");
		g_ptr_array_add(rargv, name);
		for (unsigned i = 0; i + 1 < handles->len; i++)
			g_ptr_array_add(rargv, handles->pdata[i]);
		g_ptr_array_add(rargv, NULL);
		receiver = spawn_piped((char **)rargv->pdata, &rout);
		if (round % 3) {
			/* Somewhere in attach or the adoptions (or just after). */
			g_usleep(shm_rand(&rng) % 3000);
			kill_wait(receiver);
			killed_early++;
		} else {
			done = read_lines_until(rout, "A ");
			g_assert_nonnull(done);
			if (!g_str_has_suffix(done->pdata[done->len - 1], " 0"))
				stale_rounds++;
			kill_wait(receiver);
		}
		if (round % 2) {
			int status;
			g_assert_cmpint(waitpid(sender, &status, 0), ==, sender);
			g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		} else {
			kill_wait(sender);
		}
		close(sout);
		close(rout);
		g_assert_cmpint(shma_pool_reclaim(p), >=, 0);
		stat_of(p, &st);
		g_assert_cmpuint(st.users_dead, ==, 0);
		g_assert_cmpuint(st.blocks_used, ==, 0);
	}
	g_test_message("%u receivers killed at random, %u rounds with adoptions that lost to the "
		       "sender's free", killed_early, stale_rounds);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(lists_check(p), ==, st.blocks_free);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

static void test_fork_attach(void)
{
	g_autofree char *name = unique_name("fork");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	struct shma_pool_stat st = { .size = sizeof(st) };
	struct shma_handle h;
	int up, down;
	uint8_t *d;
	pid_t pid = fork_worker(NULL, name, false, &up, &down);

	g_assert_cmpint(read(up, &h, sizeof(h)), ==, sizeof(h));
	stat_of(p, &st);
	g_assert_cmpuint(st.users, ==, 2);
	g_assert_cmpuint(st.users_dead, ==, 0);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 0);
	g_assert_cmpint(shma_resolve(p, &h, (void **)&d), ==, 0);
	g_assert_true(shm_pattern_ok(d, h.len, shm_pattern_seed(&h)));
	/* Allocate and free around it: its block is never handed out again. */
	for (int i = 0; i < 1000; i++) {
		void *x;
		g_assert_cmpint(shma_alloc(p, 300, 0, NULL, &x), ==, 0);
		memset(x, 0xff, 300);
		g_assert_cmpint(shma_free(p, x), ==, 0);
	}
	fork_reap(pid, up, down);   /* the child checks its pattern too */
	/* Gone without detaching: now it is dead, and its block comes back. */
	stat_of(p, &st);
	g_assert_cmpuint(st.users_dead, ==, 1);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 1);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/*
 * A child using the pool object it inherited registers as itself before it
 * allocates; detaching in the child never drops the parent's registration.
 */
static void test_fork_inherited(void)
{
	g_autofree char *name = unique_name("inh");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	unsigned self = shma_own_slot(p);
	struct shma_pool_stat st = { .size = sizeof(st) };
	struct shma_handle mine, h;
	int up, down, status;
	uint8_t *d;
	pid_t pid;

	g_assert_cmpuint(self, !=, SHMA_OWNER_NONE);
	g_assert_cmpint(shma_alloc(p, 500, 0, &mine, (void **)&d), ==, 0);
	shm_pattern_fill(d, mine.len, shm_pattern_seed(&mine));

	/* A child that detaches cleanly. */
	pid = fork_worker(p, NULL, true, &up, &down);
	g_assert_cmpint(read(up, &h, sizeof(h)), ==, sizeof(h));
	stat_of(p, &st);
	g_assert_cmpuint(st.users, ==, 2);
	g_assert_cmpuint(st.users_dead, ==, 0);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 0);
	fork_reap(pid, up, down);
	stat_of(p, &st);
	g_assert_cmpuint(st.users, ==, 1);
	g_assert_cmpint(p->root->users[self].pid, ==, getpid());

	/* A child that frees the inherited object without allocating. */
	pid = fork();
	if (pid == 0) {
		shma_pool_free(p);
		_exit(0);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_cmpint(p->root->users[self].pid, ==, getpid());

	/* A child that dies holding a block: exactly that block is reclaimed. */
	pid = fork_worker(p, NULL, false, &up, &down);
	g_assert_cmpint(read(up, &h, sizeof(h)), ==, sizeof(h));
	fork_reap(pid, up, down);
	stat_of(p, &st);
	g_assert_cmpuint(st.users_dead, ==, 1);
	g_assert_cmpuint(st.blocks_used, ==, 2);
	g_assert_cmpint(shma_pool_reclaim(p), ==, 1);
	g_assert_cmpint(shma_resolve(p, &h, (void **)&d), ==, -ESTALE);
	g_assert_cmpint(shma_resolve(p, &mine, (void **)&d), ==, 0);
	g_assert_true(shm_pattern_ok(d, mine.len, shm_pattern_seed(&mine)));
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* ---- thread caches --------------------------------------------------------------- */

/* Free blocks whose header names a holder (a thread cache), walked chunk by chunk. */
static uint64_t held_free(struct shma_pool *p)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < p->max_chunks; i++) {
		uint64_t s = p->root->slots[i].state, end, off;
		char *base;

		if (shma_s_st(s) != SHMA_SLOT_LIVE || shma_s_kind(s) != SHMA_KIND_REGULAR ||
		    shma_map_slot(p, i, s, &base) < 0)
			continue;
		end = MIN(shma_bump_off(p->root->slots[i].bump), p->chunk_size);
		for (off = SHMA_CHUNK_DATA; off + sizeof(struct shma_blk) <= end;) {
			uint64_t w = ((struct shma_blk *)(base + off))->word;
			if (!shma_w_magic_ok(w) || shma_w_cls(w) >= p->nclasses)
				break;
			if (!(shma_w_gen(w) & 1) && shma_w_owner(w) != SHMA_OWNER_NONE)
				n++;
			off += shma_class_bytes(shma_w_cls(w));
		}
	}
	return n;
}

/* A thread that allocates and frees n blocks, then waits (its cache full) until told to exit. */
struct cached_thread {
	struct shma_pool *p;
	int n;
	int err;
	int phase;              /* 1: freed everything; 2: may exit */
	pthread_mutex_t lock;          /* pthread's, which ThreadSanitizer sees (GLib's it does not) */
	pthread_cond_t cond;
};

static void cached_set(struct cached_thread *t, int phase)
{
	pthread_mutex_lock(&t->lock);
	t->phase = phase;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void cached_wait(struct cached_thread *t, int phase)
{
	pthread_mutex_lock(&t->lock);
	while (t->phase < phase)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

static void *cached_run(void *arg)
{
	struct cached_thread *t = arg;
	void **d = g_new0(void *, t->n);

	for (int i = 0; i < t->n && !t->err; i++)
		t->err = shma_alloc(t->p, 100 + (size_t)(i % 20) * 100, 0, NULL, &d[i]);
	for (int i = 0; i < t->n && !t->err; i++)
		t->err = shma_free(t->p, d[i]);
	g_free(d);
	cached_set(t, 1);
	cached_wait(t, 2);
	return NULL;
}

/* What a live thread caches keeps its chunks; its exit gives the blocks back. */
static void test_cache_thread_exit(void)
{
	g_autofree char *name = unique_name("tce");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 64u << 10);
	struct cached_thread t = { .p = p, .n = 3000 };
	struct shma_pool_stat st = { .size = sizeof(st) };
	uint64_t held;
	GThread *th;
	int released;

	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cond, NULL);
	th = g_thread_new("cached", cached_run, &t);
	cached_wait(&t, 1);
	g_assert_cmpint(t.err, ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	g_assert_cmpuint(st.chunks, >, 20);
	held = held_free(p);
	g_test_message("%" G_GUINT64_FORMAT " blocks in the idle thread's cache and the pool cache", held);
	if (caches_on()) {
		/* 150 blocks in each of 20 classes: what the thread cache could not hold went to
		 * the pool cache, which any thread's flush gives back... */
		uint64_t flushed = (uint64_t)shma_flush_cache(p);

		g_assert_cmpuint(flushed, >, 0);
		g_assert_cmpuint(held_free(p), ==, held - flushed);
		held -= flushed;
		g_assert_cmpuint(held, >, 100);
		g_assert_cmpuint(held, <=, 20 * SHMA_TC_CAP);
	} else {
		g_assert_cmpuint(held, ==, 0);
	}
	/* ... but another thread's trim and flush leave its own cache alone: those chunks stay. */
	g_assert_cmpint(shma_flush_cache(p), ==, 0);
	released = shma_pool_trim(p);
	g_assert_cmpint(released, >, 0);
	if (caches_on())
		g_assert_cmpint(released, <, (int)st.chunks - 1);
	else
		g_assert_cmpint(released, >=, (int)st.chunks - 1);
	g_assert_cmpuint(held_free(p), ==, held);
	cached_set(&t, 2);
	g_thread_join(th);
	/* The exit put them back on the lists: every chunk but the one being carved goes now. */
	g_assert_cmpuint(held_free(p), ==, 0);
	g_assert_cmpint(shma_pool_trim(p) > 0, ==, caches_on());
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, <=, 1);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	pthread_mutex_destroy(&t.lock);
	pthread_cond_destroy(&t.cond);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* shma_pool_free of an attachment empties every thread's cache for it. */
static void test_cache_pool_free(void)
{
	g_autofree char *name = unique_name("tcf");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 64u << 10), *q = NULL;
	struct cached_thread t = { .n = 2000 };
	struct shma_pool_stat st = { .size = sizeof(st) };
	GThread *th;

	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	t.p = q;
	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cond, NULL);
	th = g_thread_new("cached", cached_run, &t);
	cached_wait(&t, 1);
	g_assert_cmpint(t.err, ==, 0);
	g_assert_cmpint(held_free(p) > 100, ==, caches_on());
	shma_pool_free(q);      /* the thread is idle, not using q */
	g_assert_cmpuint(held_free(p), ==, 0);
	g_assert_cmpint(shma_pool_trim(p), >, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, <=, 1);
	g_assert_cmpuint(st.users, ==, 1);
	/* Its exit finds its cache unbound (q is gone) and must not touch q. */
	cached_set(&t, 2);
	g_thread_join(th);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	/* A new attachment at perhaps the same address gets caches of its own. */
	g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
	t = (struct cached_thread){ .p = q, .n = 500 };
	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cond, NULL);
	th = g_thread_new("cached2", cached_run, &t);
	cached_wait(&t, 1);
	g_assert_cmpint(t.err, ==, 0);
	g_assert_cmpint(held_free(p) > 0, ==, caches_on());
	cached_set(&t, 2);
	g_thread_join(th);
	assert_only_pool_cache(q, p);
	pthread_mutex_destroy(&t.lock);
	pthread_cond_destroy(&t.cond);
	shma_pool_free(q);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/*
 * A full thread cache moves its overflow to the pool cache, not to the
 * shared list; an empty one refills from there (nothing carved, nothing
 * popped). A class of the pool cache that is taken (as a signal handler
 * finds it when it interrupts the holder) sends both to the list instead.
 */
static void test_cache_pool_level(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 256u << 10);
	unsigned c = shma_size_class(200 + sizeof(struct shma_blk)), n;
	g_autoptr(GHashTable) mine = g_hash_table_new(NULL, NULL);
	struct shma_tcache *tc;
	struct shma_pool_stat a, b;
	uint64_t held;
	uint16_t pcn;
	void **d;

	if (!caches_on()) {
		g_assert_null(p->pc);
		shma_pool_free(p);
		return;
	}
	g_assert_nonnull(p->pc);
	n = 3u * p->tc_cap[c];
	g_assert_cmpuint(n, <=, p->tc_cap[c] + SHMA_PC_CAP);
	d = g_new(void *, n);
	for (unsigned i = 0; i < n; i++)
		g_assert_cmpint(shma_alloc(p, 200, 0, NULL, &d[i]), ==, 0);
	for (unsigned i = 0; i < n; i++) {
		g_assert_cmpint(shma_free(p, d[i]), ==, 0);
		g_hash_table_add(mine, d[i]);
	}
	tc = shma_tc_get(p);
	g_assert_nonnull(tc);
	g_assert_cmpuint(held_free(p), ==, n);
	g_assert_cmpuint(p->pc->n[c], >, 0);
	g_assert_cmpuint(p->pc->n[c] + tc->n[c], ==, n);
	g_assert_cmpuint(shma_list_first(p, c), ==, 0);
	/* All of them again: the same blocks, the list untouched, nothing carved. */
	stat_of(p, &a);
	for (unsigned i = 0; i < n; i++) {
		g_assert_cmpint(shma_alloc(p, 200, 0, NULL, &d[i]), ==, 0);
		g_assert_true(g_hash_table_contains(mine, d[i]));
	}
	stat_of(p, &b);
	g_assert_cmpuint(b.chunks, ==, a.chunks);
	g_assert_cmpuint(held_free(p), ==, 0);
	g_assert_cmpuint(p->pc->n[c], ==, 0);
	/* The class taken: the overflow goes to the list, the pool cache stays as it was. */
	g_assert_cmpuint(p->pc->lock[c], ==, 0);
	p->pc->lock[c] = (shma_fork_gen & 0x7fffffffu) << 1 | 1;
	pcn = p->pc->n[c];
	for (unsigned i = 0; i < n; i++)
		g_assert_cmpint(shma_free(p, d[i]), ==, 0);
	g_assert_cmpuint(p->pc->n[c], ==, pcn);
	g_assert_cmpuint(shma_list_first(p, c), !=, 0);
	held = held_free(p);
	g_assert_cmpuint(held, <=, p->tc_cap[c]);
	g_assert_cmpint(shma_flush_cache(p), ==, (int)held);
	p->pc->lock[c] = 0;
	g_assert_cmpuint(held_free(p), ==, 0);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	g_free(d);
	shma_pool_free(p);
}

/* A fork()ed child never gets what its parent's pool cache holds: those blocks stay the parent's. */
static void test_cache_pool_fork(void)
{
	g_autofree char *name = unique_name("pcfork");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	unsigned c = shma_size_class(100 + sizeof(struct shma_blk)), n = 400;
	void **old = g_new(void *, n), *e;
	uint64_t held;
	int status;
	pid_t pid;

	for (unsigned i = 0; i < n; i++)
		g_assert_cmpint(shma_alloc(p, 100, 0, NULL, &old[i]), ==, 0);
	for (unsigned i = 0; i < n; i++)
		g_assert_cmpint(shma_free(p, old[i]), ==, 0);
	held = held_free(p);
	g_assert_cmpint(held == n, ==, caches_on());
	if (caches_on())
		g_assert_cmpuint(p->pc->n[c], >, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		/* Twice as many as the parent holds, freed and taken again through our caches. */
		for (int round = 0; round < 2; round++) {
			void **mine = calloc(2 * n, sizeof(void *));

			if (!mine)
				_exit(9);
			for (unsigned i = 0; i < 2 * n; i++) {
				if (shma_alloc(p, 100, 0, NULL, &mine[i]) < 0)
					_exit(10);
				/* (Without caches the parent's frees went to the list: anyone's.) */
				for (unsigned k = 0; k < n && caches_on(); k++)
					if (mine[i] == old[k])
						_exit(11);
			}
			for (unsigned i = 0; i < 2 * n; i++)
				if (shma_free(p, mine[i]) < 0)
					_exit(12);
			free(mine);
		}
		shma_pool_free(p);
		_exit(0);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	g_assert_cmpuint(held_free(p), ==, held);
	g_assert_cmpint(shma_flush_cache(p), ==, (int)held);
	for (unsigned i = 0; i < n; i++) {
		g_assert_cmpint(shma_alloc(p, 100, 0, NULL, &e), ==, 0);
		g_assert_cmpint(shma_free(p, e), ==, 0);
	}
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	g_free(old);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* Two threads each with its own cache, racing on one pool: nothing handed out twice. */
static void test_cache_threads_handles(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 256u << 10);
	struct churn c[2] = { { p, 11, 100000, 0 }, { p, 12, 100000, 0 } };
	struct shma_pool_stat st = { .size = sizeof(st) };
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn_thread, &c[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	g_assert_cmpint(c[0].err, ==, 0);
	g_assert_cmpint(c[1].err, ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	assert_only_pool_cache(p, p);     /* both exits emptied their caches */
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	shma_pool_free(p);
}

/*
 * A signal handler that interrupts its thread inside the cache path
 * (deterministically here: the cache entered by hand, as shma_alloc and
 * shma_free do) allocates and frees through the shared lists and leaves
 * the interrupted cache exactly as it was; a flush there flushes nothing.
 */
static void test_cache_nested(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	struct shma_tcache *tc, before;
	struct shma_handle h[100];
	uint64_t held;
	void *d[16];

	if (!caches_on()) {
		g_assert_null(shma_tc_get(p));
		shma_pool_free(p);
		return;
	}
	for (int i = 0; i < 16; i++)
		g_assert_cmpint(shma_alloc(p, 200, 0, NULL, &d[i]), ==, 0);
	for (int i = 0; i < 16; i++)
		g_assert_cmpint(shma_free(p, d[i]), ==, 0);
	tc = shma_tc_get(p);
	g_assert_nonnull(tc);
	held = held_free(p);
	g_assert_cmpuint(held, ==, 16);
	g_assert_true(shma_tc_enter(tc));               /* the thread is inside its cache ... */
	memcpy(&before, tc, sizeof(before));
	for (int i = 0; i < 100; i++)                   /* ... and a handler runs */
		g_assert_cmpint(shma_alloc(p, 200, 0, &h[i], NULL), ==, 0);
	for (int i = 0; i < 100; i++)
		g_assert_cmpint(shma_free_handle(p, &h[i]), ==, 0);
	g_assert_cmpint(shma_flush_cache(p), ==, 0);
	g_assert_cmpmem(tc, sizeof(*tc), &before, sizeof(before));
	g_assert_cmpuint(held_free(p), ==, held);
	shma_tc_leave(tc);
	g_assert_cmpint(shma_flush_cache(p), ==, 16);
	g_assert_cmpuint(held_free(p), ==, 0);
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	shma_pool_free(p);
}

/* One short-lived thread after another: their caches are given back at exit and reused. */
static void *churn_once(void *arg)
{
	struct shma_pool *p = arg;
	void *d[8];

	for (int i = 0; i < 8; i++)
		if (shma_alloc(p, 64 + (size_t)i * 100, 0, NULL, &d[i]) < 0)
			return GINT_TO_POINTER(1);
	for (int i = 0; i < 8; i++)
		if (shma_free(p, d[i]) < 0)
			return GINT_TO_POINTER(2);
	return NULL;
}

static void test_cache_thread_churn(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	unsigned made = shma_tc_made();
	struct shma_pool_stat st = { .size = sizeof(st) };

	for (int i = 0; i < 5000; i++) {
		pthread_t t;
		void *r;
		g_assert_cmpint(pthread_create(&t, NULL, churn_once, p), ==, 0);
		g_assert_cmpint(pthread_join(t, &r), ==, 0);
		g_assert_null(r);
	}
	/* 5000 threads (past the 4096 caches a process can make) shared a handful. */
	g_assert_cmpuint(shma_tc_made() - made, <=, 2);
	g_assert_cmpuint(held_free(p), ==, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.blocks_used, ==, 0);
	g_assert_cmpuint(st.chunks, ==, 1);
	shma_pool_free(p);
}

/*
 * A thread using more pool objects than it keeps caches for (SHMA_TC_POOLS)
 * goes to the shared lists for the others; freeing some lets the others
 * take their cache slots; everything is given back in the end.
 */
static void *many_pools_run(void *arg)
{
	struct shma_pool **ps = arg;
	void *d[6][50];

	for (int round = 0; round < 20; round++) {
		for (int k = 0; k < 6; k++)
			for (int i = 0; i < 50; i++)
				if (shma_alloc(ps[k], 100 + (size_t)i * 10, 0, NULL, &d[k][i]) < 0)
					return GINT_TO_POINTER(1);
		for (int k = 0; k < 6; k++)
			for (int i = 0; i < 50; i++)
				if (shma_free(ps[k], d[k][i]) < 0)
					return GINT_TO_POINTER(2);
	}
	return NULL;
}

static void test_cache_many_pools(void)
{
	struct shma_pool *ps[6];
	unsigned cached = 0;
	pthread_t t;
	void *r;

	for (int k = 0; k < 6; k++)
		ps[k] = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	g_assert_null(many_pools_run(ps));
	for (int k = 0; k < 6; k++)
		cached += held_free(ps[k]) > 0;
	/* This thread caches for at most SHMA_TC_POOLS of them. */
	g_assert_cmpuint(cached, ==, caches_on() ? SHMA_TC_POOLS : 0);
	for (int k = 0; k < 6; k++)
		g_assert_cmpint(shma_flush_cache(ps[k]), >=, 0);
	for (int k = 0; k < 6; k++)
		g_assert_cmpuint(held_free(ps[k]), ==, 0);
	/* Free two: their cache slots go to the next pools this thread uses. */
	shma_pool_free(ps[0]);
	shma_pool_free(ps[1]);
	ps[0] = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	ps[1] = new_pool(SHMA_BACKEND_MEMFD, NULL, 64u << 10);
	g_assert_null(many_pools_run(ps));
	/* And another thread, which exits: its caches go back. */
	g_assert_cmpint(pthread_create(&t, NULL, many_pools_run, ps), ==, 0);
	g_assert_cmpint(pthread_join(t, &r), ==, 0);
	g_assert_null(r);
	for (int k = 0; k < 6; k++) {
		struct shma_pool_stat st = { .size = sizeof(st) };
		g_assert_cmpint(shma_flush_cache(ps[k]), >=, 0);
		g_assert_cmpuint(held_free(ps[k]), ==, 0);
		stat_of(ps[k], &st);
		g_assert_cmpuint(st.blocks_used, ==, 0);
		g_assert_cmpint(shma_pool_repair(ps[k]), ==, 0);
		shma_pool_free(ps[k]);
	}
}

/*
 * fork(): the child inherits its parent's cache arrays, but those blocks
 * are the parent's. With both holding 64 blocks of one class at once,
 * none may be the same block.
 */
static void test_cache_fork(void)
{
	g_autofree char *name = unique_name("tcfork");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 1u << 20);
	struct shma_handle mine[64], theirs[64];
	void *old[64], *d;
	int up[2], down[2], status, reused = 0;
	char c;
	pid_t pid;

	for (int i = 0; i < 64; i++)
		g_assert_cmpint(shma_alloc(p, 100, 0, NULL, &old[i]), ==, 0);
	for (int i = 0; i < 64; i++)
		g_assert_cmpint(shma_free(p, old[i]), ==, 0);
	g_assert_cmpint(held_free(p) >= 16, ==, caches_on());     /* cached, not on the list */
	g_assert_cmpint(pipe(up), ==, 0);
	g_assert_cmpint(pipe(down), ==, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		for (int i = 0; i < 64; i++)
			if (shma_alloc(p, 100, 0, &theirs[i], NULL) < 0)
				_exit(10);
		if (write(up[1], theirs, sizeof(theirs)) != sizeof(theirs) || read(down[0], &c, 1) != 1)
			_exit(11);
		for (int i = 0; i < 64; i++)
			if (shma_free_handle(p, &theirs[i]) < 0)
				_exit(12);
		shma_pool_free(p);
		_exit(0);
	}
	g_assert_cmpint(read(up[0], theirs, sizeof(theirs)), ==, sizeof(theirs));
	for (int i = 0; i < 64; i++) {
		g_assert_cmpint(shma_alloc(p, 100, 0, &mine[i], &d), ==, 0);
		for (int k = 0; k < 64; k++)
			reused += d == old[k];
		for (int k = 0; k < 64; k++)
			g_assert_false(mine[i].chunk == theirs[k].chunk && mine[i].offset == theirs[k].offset);
	}
	if (caches_on())
		g_assert_cmpint(reused, >=, 16);        /* our cache served us */
	xwrite(down[1], "x", 1);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	for (int i = 0; i < 2; i++) {
		close(up[i]);
		close(down[i]);
	}
	for (int i = 0; i < 64; i++)
		g_assert_cmpint(shma_free_handle(p, &mine[i]), ==, 0);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* A process SIGKILLed with two threads' caches full: reclaim alone gives back every block. */
static void test_cache_kill(void)
{
	g_autofree char *name = unique_name("tck");
	struct shma_pool *p = new_pool(SHMA_BACKEND_SHM, name, 64u << 10);
	struct shma_pool_stat st = { .size = sizeof(st) };
	uint64_t held_total = 0;

	for (int round = 0; round < 8; round++) {
		char *argv[] = { CHILD, "threads", "/dev/shm", name, NULL };
		GError *err = NULL;
		int out, status;
		uint64_t held;
		GPid pid;
		char ready;

		g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
						       NULL, NULL, &pid, NULL, &out, NULL, &err));
		g_assert_no_error(err);
		g_assert_cmpint(read(out, &ready, 1), ==, 1);
		g_usleep((gulong)g_random_int_range(0, 5000));
		kill(pid, SIGKILL);
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		close(out);
		held = held_free(p);
		held_total += held;
		stat_of(p, &st);
		g_assert_cmpuint(st.users_dead, ==, 1);
		g_assert_cmpint(shma_pool_reclaim(p), >, 0);
		stat_of(p, &st);
		g_assert_cmpuint(st.users_dead, ==, 0);
		g_assert_cmpuint(st.blocks_used, ==, 0);
		g_assert_cmpuint(held_free(p), ==, 0);
	}
	g_test_message("%" G_GUINT64_FORMAT " cached blocks of killed processes given back", held_total);
	g_assert_cmpint(held_total > 8 * 10, ==, caches_on());
	/* Every free block is on a list: trim can release every chunk but the current. */
	g_assert_cmpint(shma_pool_repair(p), ==, 0);
	g_assert_cmpint(shma_pool_trim(p), >, 0);
	stat_of(p, &st);
	g_assert_cmpuint(st.chunks, <=, 1);
	shma_pool_unlink(p);
	shma_pool_free(p);
}

/* ---- fd passing -------------------------------------------------------------------- */

static void test_fdpass_errors(void)
{
	int sv[2], fds[4], fd = memfd_create("x", MFD_CLOEXEC);
	char data[8];
	size_t got;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	g_assert_cmpint(shma_send_fds(-1, &fd, 1, NULL, 0), ==, -EINVAL);
	g_assert_cmpint(shma_send_fds(sv[0], &fd, 0, NULL, 0), ==, -EINVAL);
	g_assert_cmpint(shma_send_fds(sv[0], &fd, 300, NULL, 0), ==, -EINVAL);
	{
		int two[2] = { fd, fd };
		g_assert_cmpint(shma_send_fds(sv[0], two, 2, "ab", 2), ==, 0);
		g_assert_cmpint(shma_recv_fds(sv[1], fds, 1, data, sizeof(data), &got), ==, -EMSGSIZE);
	}
	g_assert_cmpint(shma_send_fds(sv[0], &fd, 1, "abc", 3), ==, 0);
	g_assert_cmpint(shma_recv_fds(sv[1], fds, 4, data, sizeof(data), &got), ==, 1);
	g_assert_cmpuint(got, ==, 3);
	g_assert_cmpint(fcntl(fds[0], F_GETFD), ==, FD_CLOEXEC);
	close(fds[0]);
	close(sv[0]);
	g_assert_cmpint(shma_recv_fds(sv[1], fds, 4, data, sizeof(data), &got), ==, -ECONNRESET);
	close(sv[1]);
	close(fd);
}

/* A refusal says why through the callback, at LOG_DEBUG; nothing reaches a
 * callback above its threshold or after it is removed. */
static void test_log_refusal(void)
{
	struct shma_pool *p = new_pool(SHMA_BACKEND_MEMFD, NULL, 0);
	struct shma_handle bad = { .chunk = 0xffff, .gen = 1, .offset = 4096, .len = 16 };
	struct log_seen seen = { 0 };
	struct shma_handle h;
	void *ptr = NULL, *blk = NULL;

	g_assert_cmpint(shma_get_log_priority(), ==, LOG_ERR);
	shma_set_log_fn(log_seen_record, &seen);
	g_assert_cmpint(shma_resolve(p, &bad, &ptr), ==, -EINVAL);
	g_assert_cmpint(seen.calls, ==, 0);             /* LOG_DEBUG is above LOG_ERR */

	shma_set_log_priority(LOG_DEBUG);
	g_assert_cmpint(shma_get_log_priority(), ==, LOG_DEBUG);
	g_assert_cmpint(shma_resolve(p, &bad, &ptr), ==, -EINVAL);
	g_assert_cmpint(seen.calls, ==, 1);
	g_assert_cmpint(seen.priority, ==, LOG_DEBUG);
	g_assert_cmpstr(seen.msg, ==,
			"handle: chunk 65535 offset 4096 len 16 gen 1 is not a block's: -EINVAL");

	/* a double free names the block */
	g_assert_cmpint(shma_alloc(p, 64, 0, &h, &blk), ==, 0);
	g_assert_cmpint(shma_free(p, blk), ==, 0);
	g_assert_cmpint(shma_free(p, blk), ==, -EINVAL);
	g_assert_cmpint(seen.calls, ==, 2);
	g_assert_nonnull(strstr(seen.msg, "is already free: -EINVAL"));

	/* a pool of another layout (libshm 0.4's) says which */
	{
		g_autofree char *name = unique_name("layout");
		struct shma_pool *sp = new_pool(SHMA_BACKEND_SHM, name, 0), *q = NULL;

		sp->root->version = 3;
		g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, -EBADMSG);
		g_assert_cmpint(seen.calls, ==, 3);
		g_assert_cmpstr(seen.msg, ==, "attach: pool layout 3, this libshm speaks 4: -EBADMSG");
		sp->root->version = SHMA_LAYOUT_VERSION;
		g_assert_cmpint(shma_pool_attach(NULL, name, 0, &q), ==, 0);
		shma_pool_free(q);
		shma_pool_unlink(sp);
		shma_pool_free(sp);
	}

	shma_set_log_fn(NULL, NULL);
	g_assert_cmpint(shma_resolve(p, &bad, &ptr), ==, -EINVAL);
	g_assert_cmpint(seen.calls, ==, 3);
	shma_set_log_priority(LOG_ERR);
	shma_pool_free(p);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/shm/pool/memfd-basic", test_pool_memfd_basic);
	g_test_add_func("/shm/pool/bad-opts", test_pool_bad_opts);
	g_test_add_func("/shm/pool/ext-structs", test_ext_structs);
	g_test_add_func("/shm/pool/named", test_pool_named);
	g_test_add_func("/shm/pool/generated-name", test_pool_generated_name);
	g_test_add_func("/shm/pool/attach-errors", test_pool_attach_errors);
	g_test_add_func("/shm/pool/attach-damaged", test_pool_attach_damaged);
	g_test_add_func("/shm/pool/not-regular", test_pool_not_regular);
	g_test_add_func("/shm/pool/file-mode", test_pool_file_mode);
	g_test_add_func("/shm/pool/chunk-symlink", test_pool_chunk_symlink);
	g_test_add_func("/shm/pool/users-full", test_pool_users_full);
	g_test_add_func("/shm/alloc/sizes-aligns", test_alloc_sizes_aligns);
	g_test_add_func("/shm/alloc/errors", test_alloc_errors);
	g_test_add_func("/shm/alloc/reuse-stale", test_alloc_reuse_stale);
	g_test_add_func("/shm/alloc/large", test_alloc_large);
	g_test_add_func("/shm/alloc/growth", test_alloc_growth);
	g_test_add_func("/shm/alloc/slots-exhausted", test_alloc_slots_exhausted);
	g_test_add_func("/shm/alloc/enospc-tmpfs", test_alloc_enospc_tmpfs);
	g_test_add_func("/shm/alloc/trim", test_alloc_trim);
	g_test_add_func("/shm/alloc/closed-chunk-walk", test_alloc_closed_chunk_walk);
	g_test_add_func("/shm/free/double", test_free_double);
	g_test_add_func("/shm/free/foreign", test_free_foreign);
	g_test_add_func("/shm/free/corrupt", test_free_corrupt);
	g_test_add_func("/shm/handle/hostile", test_handle_hostile);
	g_test_add_func("/shm/handle/block-chunk", test_handle_block_chunk);
	g_test_add_func("/shm/concurrency/threads", test_threads);
	g_test_add_func("/shm/concurrency/trim-race", test_trim_race);
	g_test_add_func("/shm/concurrency/trim-walk-race", test_trim_walk_race);
	g_test_add_func("/shm/concurrency/stat-dedicated-race", test_stat_dedicated_race);
	g_test_add_func("/shm/concurrency/signal-handler", test_signal_safety);
	g_test_add_func("/shm/xproc/resolve", test_xproc_resolve);
	g_test_add_func("/shm/xproc/memfd", test_xproc_memfd);
	g_test_add_func("/shm/xproc/memfd-attacher", test_xproc_memfd_attacher);
	g_test_add_func("/shm/xproc/concurrent", test_xproc_concurrent);
	g_test_add_func("/shm/xproc/kill9", test_xproc_kill9);
	g_test_add_func("/shm/reclaim/leak", test_reclaim_leak);
	g_test_add_func("/shm/reclaim/detached", test_reclaim_detached);
	g_test_add_func("/shm/reclaim/crash-loop", test_reclaim_crash_loop);
	g_test_add_func("/shm/reclaim/dead-slot-owners", test_reclaim_dead_slot_owners);
	g_test_add_func("/shm/reclaim/repair", test_reclaim_repair);
	g_test_add_func("/shm/reclaim/dead-shifted-free", test_reclaim_dead_shifted_free);
	g_test_add_func("/shm/reclaim/trim-kill", test_reclaim_trim_kill);
	g_test_add_func("/shm/reclaim/chain-kill", test_reclaim_chain_kill);
	g_test_add_func("/shm/reclaim/repair-kill", test_reclaim_repair_kill);
	g_test_add_func("/shm/alloc/generations-wrap", test_generations_wrap);
	g_test_add_func("/shm/adopt/errors", test_adopt_errors);
	g_test_add_func("/shm/adopt/kill", test_adopt_kill);
	g_test_add_func("/shm/adopt/race-kill", test_adopt_race_kill);
	g_test_add_func("/shm/fork/attach", test_fork_attach);
	g_test_add_func("/shm/fork/inherited", test_fork_inherited);
	g_test_add_func("/shm/cache/thread-exit", test_cache_thread_exit);
	g_test_add_func("/shm/cache/pool-free", test_cache_pool_free);
	g_test_add_func("/shm/cache/threads", test_cache_threads_handles);
	g_test_add_func("/shm/cache/nested", test_cache_nested);
	g_test_add_func("/shm/cache/thread-churn", test_cache_thread_churn);
	g_test_add_func("/shm/cache/many-pools", test_cache_many_pools);
	g_test_add_func("/shm/cache/fork", test_cache_fork);
	g_test_add_func("/shm/cache/pool-level", test_cache_pool_level);
	g_test_add_func("/shm/cache/pool-fork", test_cache_pool_fork);
	g_test_add_func("/shm/cache/kill", test_cache_kill);
	g_test_add_func("/shm/fdpass/errors", test_fdpass_errors);
	g_test_add_func("/shm/log/refusal", test_log_refusal);
	return g_test_run();
}
