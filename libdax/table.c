/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The built-in table backend: nodeid -> an fd opened at add time. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/macro.h"
#include "common/sys.h"
#include "daxP.h"

struct dax_table {
	pthread_mutex_t lock;
	struct mk_hash files;   /* nodeid -> struct table_file */
};

struct table_file {
	uint64_t nodeid;
	int fd;
	bool writable;
};

static void table_file_free(struct table_file *f)
{
	mk_close(f->fd);
	free(f);
}

MK_EXPORT int dax_table_new(struct dax_table **out)
{
	struct dax_table *t;
	int r;

	if (!out) {
		dax_refuse("table: out is NULL");
		return -EINVAL;
	}
	t = mk_calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	r = pthread_mutex_init(&t->lock, NULL);
	if (r) {
		free(t);
		return -r;
	}
	*out = t;
	return 0;
}

MK_EXPORT void dax_table_free(struct dax_table *t)
{
	if (!t)
		return;
	mk_hash_foreach(&t->files, i)
		table_file_free(t->files.vals[i]);
	mk_hash_free(&t->files);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void id_from_stat(const struct stat *st, struct dax_file_id *id)
{
	*id = (struct dax_file_id){
		.dev = st->st_dev, .ino = st->st_ino, .size = (uint64_t)st->st_size,
		.mtime_sec = st->st_mtim.tv_sec, .mtime_nsec = (uint32_t)st->st_mtim.tv_nsec,
		.valid = 1,
	};
}

/* Public; dax_table_open and the session's borrow record identities with it. */
MK_EXPORT int dax_file_id_of_fd(int fd, struct dax_file_id *id)
{
	struct stat st;
	int r;

	if (!id) {
		dax_refuse("file id: id is NULL");
		return -EINVAL;
	}
	r = mk_fstat(fd, &st);
	if (r < 0)
		return r;
	id_from_stat(&st, id);
	return 0;
}

MK_EXPORT int dax_table_add(struct dax_table *t, uint64_t nodeid, const char *path)
{
	struct table_file *f = NULL;
	struct stat st;
	void *old = NULL;
	bool writable = true;
	int fd, r;

	if (!t || !path) {
		dax_refuse("table add: %s is NULL", !t ? "table" : "path");
		return -EINVAL;
	}
	/* mk_openat adds O_NOFOLLOW: the table maps exactly the named file. */
	fd = mk_openat(AT_FDCWD, path, O_RDWR, 0);
	/* not writable for us: mode bits, read-only mount, immutable file, running binary */
	if (fd == -EACCES || fd == -EROFS || fd == -EPERM || fd == -ETXTBSY) {
		writable = false;
		fd = mk_openat(AT_FDCWD, path, O_RDONLY, 0);
	}
	if (fd < 0) {
		dax_refuse("table add: node %llu: cannot open %s: %d", (unsigned long long)nodeid,
			   path, fd);
		return fd;
	}
	r = mk_fstat(fd, &st);
	if (r == 0 && !S_ISREG(st.st_mode)) {
		dax_refuse("table add: node %llu: %s is not a regular file (mode %o)",
			   (unsigned long long)nodeid, path, (unsigned)st.st_mode);
		r = -EINVAL;
	}
	if (r == 0) {
		f = mk_calloc(1, sizeof(*f));
		if (!f)
			r = -ENOMEM;
	}
	if (r < 0 || !f) {
		mk_close(fd);
		return r;
	}
	f->nodeid = nodeid;
	f->fd = fd;
	f->writable = writable;
	pthread_mutex_lock(&t->lock);
	r = mk_hash_put(&t->files, nodeid, f, &old);
	pthread_mutex_unlock(&t->lock);
	if (r < 0) {
		table_file_free(f);
		return r;
	}
	if (old)
		table_file_free(old);
	return 0;
}

MK_EXPORT int dax_table_remove(struct dax_table *t, uint64_t nodeid)
{
	struct table_file *f;

	if (!t) {
		dax_refuse("table remove: table is NULL");
		return -EINVAL;
	}
	pthread_mutex_lock(&t->lock);
	f = mk_hash_del(&t->files, nodeid);
	pthread_mutex_unlock(&t->lock);
	if (!f) {
		dax_refuse("table remove: no node %llu", (unsigned long long)nodeid);
		return -ENOENT;
	}
	table_file_free(f);
	return 0;
}

/* The file of nodeid for prot, table locked: its fd or -errno. */
static int lookup_locked(struct dax_table *t, uint64_t nodeid, uint32_t prot)
{
	struct table_file *f = mk_hash_get(&t->files, nodeid);

	if (!f) {
		dax_refuse("table: no node %llu", (unsigned long long)nodeid);
		return -ENOENT;
	}
	if ((prot & DAX_PROT_WRITE) && !f->writable) {
		dax_refuse("table: node %llu is read-only, asked for writing", (unsigned long long)nodeid);
		return -EACCES;
	}
	return f->fd;
}

MK_EXPORT int dax_table_open(void *table, uint64_t nodeid, uint64_t fh, uint32_t prot,
			     struct dax_file_id *id)
{
	struct dax_table *t = table;
	int fd, r;

	if (!t || !id) {
		dax_refuse("table open: %s is NULL", !t ? "table" : "id");
		return -EINVAL;
	}
	pthread_mutex_lock(&t->lock);
	fd = lookup_locked(t, nodeid, prot);
	if (fd >= 0)
		fd = mk_dup_cloexec(fd);
	pthread_mutex_unlock(&t->lock);
	if (fd < 0)
		return fd;
	r = dax_file_id_of_fd(fd, id);
	if (r < 0) {
		mk_close(fd);
		return r;
	}
	return fd;
}

int dax_table_borrow(struct dax_table *t, uint64_t nodeid, uint32_t prot, struct dax_file_id *id)
{
	int fd, r;

	pthread_mutex_lock(&t->lock);
	fd = lookup_locked(t, nodeid, prot);
	if (fd < 0 || !id)
		return fd;
	r = dax_file_id_of_fd(fd, id);
	return r < 0 ? r : fd;
}

void dax_table_unborrow(struct dax_table *t)
{
	pthread_mutex_unlock(&t->lock);
}

MK_EXPORT int dax_file_id_of_path(const char *path, struct dax_file_id *id)
{
	struct stat st;
	int r;

	if (!path || !id) {
		dax_refuse("file id: %s is NULL", !path ? "path" : "id");
		return -EINVAL;
	}
	r = mk_stat(path, &st);
	if (r < 0)
		return r;
	id_from_stat(&st, id);
	return 0;
}
