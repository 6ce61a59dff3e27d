/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shmctl: which processes hold which pool files, read from /proc/PID/fd
 * as util-linux's lsfd reads it. A memfd pool has no file in any
 * directory: this is the only place it shows.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm.h"
#include "shmctl.h"

/* What libshm names its memfds (libshm/pool.c, chunk.c): "memkit-shm:NAME[.INDEX]". */
#define MEMFD_LINK_PREFIX "/memfd:memkit-shm:"

struct file_key {
	dev_t dev;
	ino_t ino;
};

static guint key_hash(gconstpointer p)
{
	const struct file_key *k = p;

	return g_int64_hash(&(gint64){ (gint64)k->ino }) ^ (guint)k->dev;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
	const struct file_key *x = a, *y = b;

	return x->dev == y->dev && x->ino == y->ino;
}

static void held_free(gpointer p)
{
	struct shm_held *h = p;

	for (guint i = 0; i < h->holders->len; i++)
		g_free(g_array_index(h->holders, struct shm_holder, i).comm);
	g_array_free(h->holders, TRUE);
	g_free(h->memfd);
	g_free(h);
}

/* The memfd name after the prefix in a /proc/PID/fd link ("... (deleted)" cut), or NULL. */
static char *memfd_name(const char *target)
{
	const char *n;

	if (!g_str_has_prefix(target, MEMFD_LINK_PREFIX))
		return NULL;
	n = target + strlen(MEMFD_LINK_PREFIX);
	/* pool names are [A-Za-z0-9_-] and a dot before a chunk's index: a blank ends it */
	return g_strndup(n, strcspn(n, " "));
}

static char *read_comm(int pid)
{
	char path[64], *text = NULL;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_strdup("?");
	text[strcspn(text, "\n")] = '\0';
	return text;
}

/* Put h into the array (by pid): a new pid is inserted (returns its index),
 * a known one keeps its lowest fd (returns -1). */
static int holder_put(GArray *a, const struct shm_holder *h)
{
	guint i;

	for (i = 0; i < a->len; i++) {
		struct shm_holder *x = &g_array_index(a, struct shm_holder, i);

		if (x->pid == h->pid) {
			x->fd = MIN(x->fd, h->fd);
			return -1;
		}
		if (x->pid > h->pid)
			break;
	}
	g_array_insert_val(a, i, *h);
	return (int)i;
}

static void add_holder(GArray *holders, int pid, int fd, const char *comm)
{
	int i = holder_put(holders, &(struct shm_holder){ pid, fd, NULL });

	if (i >= 0)
		g_array_index(holders, struct shm_holder, i).comm = g_strdup(comm);
}

static void note_file(struct shm_procs *ps, const struct stat *st, char *memfd, int pid, int fd,
		      const char *comm)
{
	struct file_key k = { st->st_dev, st->st_ino };
	struct shm_held *h = g_hash_table_lookup(ps->by_file, &k);

	if (!h) {
		struct file_key *key = g_new(struct file_key, 1);

		*key = k;
		h = g_new0(struct shm_held, 1);
		h->dev = st->st_dev;
		h->ino = st->st_ino;
		h->uid = st->st_uid;
		h->gid = st->st_gid;
		h->bytes = (uint64_t)st->st_blocks * 512;
		h->memfd = memfd;
		memfd = NULL;
		h->holders = g_array_new(FALSE, TRUE, sizeof(struct shm_holder));
		g_hash_table_insert(ps->by_file, key, h);
		if (h->memfd)
			g_ptr_array_add(ps->memfds, h);
	}
	g_free(memfd);
	add_holder(h->holders, pid, fd, comm);
}

static void scan_process(struct shm_procs *ps, int pid)
{
	char path[64];
	g_autofree char *comm = NULL;
	struct dirent *de;
	int dfd;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == EACCES || errno == EPERM)
			ps->denied++;
		return;         /* else gone meanwhile, or a kernel thread's */
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		char target[PATH_MAX];
		char *memfd, *end;
		const char *base;
		struct stat st;
		ssize_t n;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || end == de->d_name || fd < 0 || fd > INT_MAX)
			continue;
		n = readlinkat(dfd, de->d_name, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		memfd = memfd_name(target);
		base = strrchr(target, '/');
		if (!memfd && !(base && g_str_has_prefix(base + 1, SHMA_FILE_PREFIX)))
			continue;
		/* through the link: the open file itself, wherever its name went */
		if (fstatat(dfd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode)) {
			g_free(memfd);
			continue;
		}
		if (!comm)
			comm = read_comm(pid);
		note_file(ps, &st, memfd, pid, (int)fd, comm);
	}
	closedir(d);
}

void shm_procs_scan(struct shm_procs *ps)
{
	struct dirent *de;
	DIR *proc;

	ps->by_file = g_hash_table_new_full(key_hash, key_equal, g_free, held_free);
	ps->memfds = g_ptr_array_new();
	ps->denied = 0;
	proc = opendir("/proc");
	if (!proc)
		return;
	while ((de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || end == de->d_name || pid <= 0 || pid > INT_MAX || pid == getpid())
			continue;
		scan_process(ps, (int)pid);
	}
	closedir(proc);
}

void shm_procs_free(struct shm_procs *ps)
{
	if (ps->memfds)
		g_ptr_array_free(ps->memfds, TRUE);
	if (ps->by_file)
		g_hash_table_destroy(ps->by_file);
	ps->memfds = NULL;
	ps->by_file = NULL;
}

const struct shm_held *shm_procs_find(const struct shm_procs *ps, dev_t dev, ino_t ino)
{
	struct file_key k = { dev, ino };

	return ps->by_file ? g_hash_table_lookup(ps->by_file, &k) : NULL;
}

int shm_held_open(const struct shm_held *h, bool rw)
{
	int r = -ENOENT;

	for (guint i = 0; i < h->holders->len; i++) {
		const struct shm_holder *ho = &g_array_index(h->holders, struct shm_holder, i);
		char path[64];
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", ho->pid, ho->fd);
		fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		if (fstat(fd, &st) < 0 || st.st_dev != h->dev || st.st_ino != h->ino) {
			close(fd);
			r = -ESTALE;
			continue;
		}
		return fd;
	}
	return r;
}

void shm_holders_merge(GArray *dst, const GArray *src)
{
	for (guint i = 0; i < src->len; i++)
		holder_put(dst, &g_array_index(src, struct shm_holder, i));
}
