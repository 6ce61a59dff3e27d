/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Output files by the rules in outfile.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* A regular file or a new path: temp file + rename; old (if any) is its stat. */
static int replace(const char *path, const struct stat *old, const void *data, size_t len,
		   const char **what)
{
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *base = g_path_get_basename(path);
	g_autofree char *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, base);
	int fd, r = 0;

	fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (old) {
		/* keep the owner (root replacing another user's file), then the mode:
		 * chown clears set-id bits, so chmod comes second */
		if ((old->st_uid != geteuid() || old->st_gid != getegid()) &&
		    fchown(fd, old->st_uid, old->st_gid) < 0) {
			r = -errno;
			*what = "cannot give the new file the old one's owner; left unchanged";
		}
		if (r == 0 && fchmod(fd, old->st_mode & 07777) < 0)
			r = -errno;
	} else {
		mode_t mask = umask(0);
		umask(mask);
		if (fchmod(fd, 0666 & ~mask) < 0)
			r = -errno;
	}
	if (r == 0)
		r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		g_unlink(tmp);
		return r;
	}
	/* the rename is durable once the directory is */
	return fsync_dir(dir);
}

/* A device or FIFO: write where it is. */
static int in_place(const char *path, const struct stat *st, const void *data, size_t len,
		    const char **what)
{
	struct stat now;
	int fd, r;

	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* what we opened is still what we looked at */
	if (fstat(fd, &now) < 0 || (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT) ||
	    now.st_rdev != st->st_rdev || now.st_ino != st->st_ino) {
		close(fd);
		*what = "changed while being opened";
		return -EAGAIN;
	}
	r = write_all(fd, data, len);
	if (r == 0 && S_ISBLK(now.st_mode) && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

int mk_write_output(const char *path, const void *data, size_t len, const char **what)
{
	g_autofree char *target = NULL;
	struct stat st;

	*what = NULL;
	if (!path || !strcmp(path, "-"))
		return write_all(STDOUT_FILENO, data, len);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? replace(path, NULL, data, len, what) : -errno;
	if (S_ISLNK(st.st_mode)) {
		target = realpath(path, NULL);
		if (!target) {
			if (errno == ENOENT)
				*what = "symbolic link to a missing file";
			return -errno;
		}
		if (stat(target, &st) < 0)
			return -errno;
		path = target;
	}
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		return replace(path, &st, data, len, what);
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
		return in_place(path, &st, data, len, what);
	case S_IFDIR:
		*what = "is a directory (not replaced)";
		return -EISDIR;
	default:
		*what = "is a socket or other special file (not replaced)";
		return -EINVAL;
	}
}
