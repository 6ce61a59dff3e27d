/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The built-in table backend: nodeid -> an fd opened at add time. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>

#include "common/macro.h"
#include "common/sys.h"
#include "daxP.h"

struct dax_table {
	GMutex lock;
	GHashTable *files;      /* uint64_t nodeid -> struct table_file */
};

struct table_file {
	uint64_t nodeid;
	int fd;
	bool writable;
};

static void table_file_free(gpointer p)
{
	struct table_file *f = p;

	mk_close(f->fd);
	g_free(f);
}

MK_EXPORT int dax_table_new(struct dax_table **out)
{
	struct dax_table *t;

	if (!out)
		return -EINVAL;
	t = g_new0(struct dax_table, 1);
	g_mutex_init(&t->lock);
	t->files = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, table_file_free);
	*out = t;
	return 0;
}

MK_EXPORT void dax_table_free(struct dax_table *t)
{
	if (!t)
		return;
	g_hash_table_destroy(t->files);
	g_mutex_clear(&t->lock);
	g_free(t);
}

static void id_from_stat(const struct stat *st, struct dax_file_id *id)
{
	*id = (struct dax_file_id){
		.dev = st->st_dev, .ino = st->st_ino, .size = (uint64_t)st->st_size,
		.mtime_sec = st->st_mtim.tv_sec, .mtime_nsec = (uint32_t)st->st_mtim.tv_nsec,
		.valid = 1,
	};
}

MK_EXPORT int dax_table_add(struct dax_table *t, uint64_t nodeid, const char *path)
{
	struct table_file *f;
	struct stat st;
	bool writable = true;
	int fd, r;

	if (!t || !path)
		return -EINVAL;
	/* mk_openat adds O_NOFOLLOW: the table maps exactly the named file. */
	fd = mk_openat(AT_FDCWD, path, O_RDWR, 0);
	/* not writable for us: mode bits, read-only mount, immutable file, running binary */
	if (fd == -EACCES || fd == -EROFS || fd == -EPERM || fd == -ETXTBSY) {
		writable = false;
		fd = mk_openat(AT_FDCWD, path, O_RDONLY, 0);
	}
	if (fd < 0)
		return fd;
	r = mk_fstat(fd, &st);
	if (r == 0 && !S_ISREG(st.st_mode))
		r = -EINVAL;
	if (r < 0) {
		mk_close(fd);
		return r;
	}
	f = g_new0(struct table_file, 1);
	f->nodeid = nodeid;
	f->fd = fd;
	f->writable = writable;
	g_mutex_lock(&t->lock);
	g_hash_table_replace(t->files, &f->nodeid, f);
	g_mutex_unlock(&t->lock);
	return 0;
}

MK_EXPORT int dax_table_remove(struct dax_table *t, uint64_t nodeid)
{
	bool found;

	if (!t)
		return -EINVAL;
	g_mutex_lock(&t->lock);
	found = g_hash_table_remove(t->files, &nodeid);
	g_mutex_unlock(&t->lock);
	return found ? 0 : -ENOENT;
}

MK_EXPORT int dax_table_open(void *table, uint64_t nodeid, uint64_t fh, uint32_t prot,
			     struct dax_file_id *id)
{
	struct dax_table *t = table;
	struct table_file *f;
	struct stat st;
	int fd = -ENOENT, r;

	if (!t || !id)
		return -EINVAL;
	g_mutex_lock(&t->lock);
	f = g_hash_table_lookup(t->files, &nodeid);
	if (f && (prot & DAX_PROT_WRITE) && !f->writable)
		fd = -EACCES;
	else if (f) {
		int saved = errno;
		fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			fd = -errno;
		errno = saved;
	}
	g_mutex_unlock(&t->lock);
	if (fd < 0)
		return fd;
	r = mk_fstat(fd, &st);
	if (r < 0) {
		mk_close(fd);
		return r;
	}
	id_from_stat(&st, id);
	return fd;
}

MK_EXPORT int dax_file_id_of_path(const char *path, struct dax_file_id *id)
{
	struct stat st;
	int saved = errno;

	if (!path || !id)
		return -EINVAL;
	if (stat(path, &st) < 0) {
		int r = -errno;
		errno = saved;
		return r;
	}
	id_from_stat(&st, id);
	return 0;
}
