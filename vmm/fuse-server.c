/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: the passthrough FUSE server (fuse-server.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <linux/fuse.h>

#include "common/macro.h"
#include "common/sys.h"
#include "vmm/fuse-server.h"

#define DAX_RANGE (2ull << 20)   /* fs/fuse/dax.c: FUSE_DAX_SZ */

static const char *const opnames[VMM_FUSE_OPS] = {
	[FUSE_LOOKUP] = "lookup", [FUSE_FORGET] = "forget", [FUSE_GETATTR] = "getattr",
	[FUSE_SETATTR] = "setattr", [FUSE_READLINK] = "readlink", [FUSE_SYMLINK] = "symlink",
	[FUSE_MKNOD] = "mknod", [FUSE_MKDIR] = "mkdir", [FUSE_UNLINK] = "unlink",
	[FUSE_RMDIR] = "rmdir", [FUSE_RENAME] = "rename", [FUSE_LINK] = "link",
	[FUSE_OPEN] = "open", [FUSE_READ] = "read", [FUSE_WRITE] = "write",
	[FUSE_STATFS] = "statfs", [FUSE_RELEASE] = "release", [FUSE_FSYNC] = "fsync",
	[FUSE_SETXATTR] = "setxattr", [FUSE_GETXATTR] = "getxattr",
	[FUSE_LISTXATTR] = "listxattr", [FUSE_REMOVEXATTR] = "removexattr",
	[FUSE_FLUSH] = "flush", [FUSE_INIT] = "init", [FUSE_OPENDIR] = "opendir",
	[FUSE_READDIR] = "readdir", [FUSE_RELEASEDIR] = "releasedir",
	[FUSE_FSYNCDIR] = "fsyncdir", [FUSE_GETLK] = "getlk", [FUSE_SETLK] = "setlk",
	[FUSE_SETLKW] = "setlkw", [FUSE_ACCESS] = "access", [FUSE_CREATE] = "create",
	[FUSE_INTERRUPT] = "interrupt", [FUSE_BMAP] = "bmap", [FUSE_DESTROY] = "destroy",
	[FUSE_IOCTL] = "ioctl", [FUSE_POLL] = "poll", [FUSE_NOTIFY_REPLY] = "notify_reply",
	[FUSE_BATCH_FORGET] = "batch_forget", [FUSE_FALLOCATE] = "fallocate",
	[FUSE_READDIRPLUS] = "readdirplus", [FUSE_RENAME2] = "rename2", [FUSE_LSEEK] = "lseek",
	[FUSE_COPY_FILE_RANGE] = "copy_file_range", [FUSE_SETUPMAPPING] = "setupmapping",
	[FUSE_REMOVEMAPPING] = "removemapping", [FUSE_SYNCFS] = "syncfs",
	[FUSE_TMPFILE] = "tmpfile", [52] = "statx",
};

const char *vmm_fuse_opname(unsigned op)
{
	return op < VMM_FUSE_OPS && opnames[op] ? opnames[op] : NULL;
}

int vmm_fuse_init(struct vmm_fuse *f, int root_fd, struct dax_session *dax, uint64_t window_len)
{
	memset(f, 0, sizeof(*f));
	f->root_fd = root_fd;
	f->dax = dax;
	f->window_len = window_len;
	f->map_alignment_log2 = 12;     /* what virtiofsd sends: the host page size */
	f->nodes = calloc(2, sizeof(*f->nodes));
	if (!f->nodes)
		return -ENOMEM;
	f->nnodes = 2;
	f->nodes[1].path = strdup(".");
	f->nodes[1].nlookup = 1;
	return f->nodes[1].path ? 0 : -ENOMEM;
}

static void file_close(struct vmm_fuse_file *fl)
{
	if (fl->fd >= 0)
		close(fl->fd);
	for (size_t i = 0; i < fl->nnames; i++)
		free(fl->names[i]);
	free(fl->names);
	free(fl->types);
	free(fl->inos);
	memset(fl, 0, sizeof(*fl));
	fl->fd = -1;
}

void vmm_fuse_free(struct vmm_fuse *f)
{
	for (size_t i = 0; i < f->nnodes; i++)
		free(f->nodes[i].path);
	for (size_t i = 0; i < f->nfiles; i++)
		file_close(&f->files[i]);
	free(f->nodes);
	free(f->files);
	memset(f, 0, sizeof(*f));
}

static const char *node_path(struct vmm_fuse *f, uint64_t nodeid)
{
	return nodeid && nodeid < f->nnodes ? f->nodes[nodeid].path : NULL;
}

/* The node for path (existing or new); 0 on allocation failure. */
static uint64_t node_get(struct vmm_fuse *f, const char *path)
{
	struct vmm_fuse_node *n;

	for (size_t i = 1; i < f->nnodes; i++)
		if (f->nodes[i].path && !strcmp(f->nodes[i].path, path))
			return i;
	n = realloc(f->nodes, (f->nnodes + 1) * sizeof(*n));
	if (!n)
		return 0;
	f->nodes = n;
	n[f->nnodes] = (struct vmm_fuse_node){ strdup(path), 0 };
	if (!n[f->nnodes].path)
		return 0;
	return f->nnodes++;
}

/* parent's path joined with name (validated by check_name()); NULL: unknown parent or ENOMEM. */
static char *child(struct vmm_fuse *f, uint64_t parent, const char *name)
{
	const char *pp = node_path(f, parent);
	char *p;

	if (!pp)
		return NULL;
	if (!strcmp(pp, "."))
		return strdup(name);
	if (asprintf(&p, "%s/%s", pp, name) < 0)
		return NULL;
	return p;
}

static uint64_t file_new(struct vmm_fuse *f, int fd)
{
	struct vmm_fuse_file *nf;

	for (size_t i = 1; i < f->nfiles; i++)
		if (f->files[i].fd < 0 && !f->files[i].names) {
			f->files[i].fd = fd;
			return i;
		}
	if (!f->nfiles) {
		f->files = calloc(1, sizeof(*f->files));
		if (!f->files)
			return 0;
		f->files[0].fd = -1;
		f->nfiles = 1;
	}
	nf = realloc(f->files, (f->nfiles + 1) * sizeof(*nf));
	if (!nf)
		return 0;
	f->files = nf;
	memset(&nf[f->nfiles], 0, sizeof(*nf));
	nf[f->nfiles].fd = fd;
	return f->nfiles++;
}

static struct vmm_fuse_file *file_get(struct vmm_fuse *f, uint64_t fh)
{
	return fh && fh < f->nfiles && f->files[fh].fd >= 0 ? &f->files[fh] : NULL;
}

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = 0;           /* the guest's root owns everything */
	a->gid = 0;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = 4096;
}

static int stat_path(struct vmm_fuse *f, const char *path, struct stat *st)
{
	return fstatat(f->root_fd, path, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/*
 * A fuse_entry_out for path into out (sizeof(struct fuse_entry_out) bytes,
 * any alignment). Attributes are valid for 1 s: the guest script is short
 * and alone on the files.
 */
static int entry_reply(struct vmm_fuse *f, const char *path, uint8_t *out)
{
	struct fuse_entry_out e = { 0 };
	struct stat st;
	uint64_t id;
	int r = stat_path(f, path, &st);

	if (r < 0)
		return r;
	id = node_get(f, path);
	if (!id)
		return -ENOMEM;
	f->nodes[id].nlookup++;
	e.nodeid = id;
	e.generation = 1;
	e.entry_valid = 1;
	e.attr_valid = 1;
	fill_attr(&e.attr, &st);
	memcpy(out, &e, sizeof(e));
	return 0;
}

static int attr_reply(struct vmm_fuse *f, const char *path, uint8_t *out)
{
	struct fuse_attr_out a = { 0 };
	struct stat st;
	int r = stat_path(f, path, &st);

	if (r < 0)
		return r;
	a.attr_valid = 1;
	fill_attr(&a.attr, &st);
	memcpy(out, &a, sizeof(a));
	return 0;
}

static int open_flags(uint32_t fl)
{
	/* The guest's flags minus what must not reach the host open. */
	return (int)(fl & (O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_DIRECTORY)) | O_CLOEXEC |
	       O_NOFOLLOW;
}

static int read_dir(struct vmm_fuse_file *fl, int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		size_t n = fl->nnames;
		char **nn = realloc(fl->names, (n + 1) * sizeof(*nn));
		unsigned *nt;
		uint64_t *ni;

		if (!nn)
			break;
		fl->names = nn;
		nt = realloc(fl->types, (n + 1) * sizeof(*nt));
		if (!nt)
			break;
		fl->types = nt;
		ni = realloc(fl->inos, (n + 1) * sizeof(*ni));
		if (!ni)
			break;
		fl->inos = ni;
		fl->names[n] = strdup(de->d_name);
		fl->types[n] = de->d_type;
		fl->inos[n] = de->d_ino;
		if (!fl->names[n])
			break;
		fl->nnames++;
	}
	closedir(d);
	return 0;
}

/* Directory entries from off into out, at most size bytes (validated to fit). */
static size_t do_readdir(struct vmm_fuse_file *fl, uint64_t off, uint32_t size, uint8_t *out)
{
	size_t n = 0;

	for (uint64_t i = off; i < fl->nnames; i++) {
		size_t nl = strlen(fl->names[i]);
		size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nl);
		struct fuse_dirent de = { 0 };

		if (n + rec > size)
			break;
		de.ino = fl->inos[i];
		de.off = i + 1;
		de.namelen = (uint32_t)nl;
		de.type = fl->types[i];
		memcpy(out + n, &de, FUSE_NAME_OFFSET);
		memcpy(out + n + FUSE_NAME_OFFSET, fl->names[i], nl);
		memset(out + n + FUSE_NAME_OFFSET + nl, 0, rec - FUSE_NAME_OFFSET - nl);
		n += rec;
	}
	return n;
}

int vmm_fuse_dax_open(void *data, uint64_t nodeid, uint64_t fh, uint32_t prot,
		      struct dax_file_id *id)
{
	struct vmm_fuse *f = data;
	const char *path = node_path(f, nodeid);
	int fd, r;

	(void)fh;
	if (!path)
		return -ENOENT;
	fd = mk_openat(f->root_fd, path, (prot & DAX_PROT_WRITE) ? O_RDWR : O_RDONLY, 0);
	if (fd < 0)
		return fd;
	r = dax_file_id_of_fd(fd, id);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static void note_error(struct vmm_fuse *f, const char *what, int err)
{
	vmm_fail_sys(&f->error, err, what);
}

/* ---- requests ---------------------------------------------------------------- */

/*
 * One request after check_request(): the header and the fixed argument
 * copied out of the guest's bytes, the names checked, the bytes after them
 * (WRITE's data, REMOVEMAPPING's entries) counted, and room for the reply.
 * Handlers read only these.
 */
struct req {
	struct fuse_in_header ih;
	union {
		struct fuse_init_in init;
		struct fuse_forget_in forget;
		struct fuse_batch_forget_in batch_forget;
		struct fuse_getattr_in getattr;
		struct fuse_setattr_in setattr;
		struct fuse_open_in open;
		struct fuse_create_in create;
		struct fuse_mkdir_in mkdir;
		struct fuse_read_in read;
		struct fuse_write_in write;
		struct fuse_release_in release;
		struct fuse_flush_in flush;
		struct fuse_fsync_in fsync;
		struct fuse_interrupt_in interrupt;
		struct fuse_setupmapping_in setup;
		struct fuse_removemapping_in remove;
	} a;
	const uint8_t *arg;         /* the argument as sent, arg_len bytes */
	size_t arg_len;
	const char *name;           /* the name after the argument (op->names) */
	const uint8_t *tail;        /* what follows, tail_len bytes */
	size_t tail_len;
	const char *path;           /* the node's path; op->flags & OP_NODE: never NULL */
	uint8_t *ob;                /* reply body, ocap bytes (>= what the op may write) */
	size_t ocap;
};

/* A handler: 0 or -errno (the error reply); the reply body's length in *olen. */
typedef int (*op_fn)(struct vmm_fuse *f, const struct req *r, size_t *olen);

static int op_init(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	const struct fuse_init_in *ii = &r->a.init;
	struct fuse_init_out io = { 0 };

	f->st.init_minor = ii->minor;
	f->st.init_flags = ii->flags;
	f->st.init_flags2 = ii->flags2;
	/*
	 * virtio-fs came with protocol 7.31 (Linux 5.4); the older minors'
	 * shorter structures (FUSE_COMPAT_*_SIZE) are not spoken here, as
	 * QEMU's virtiofsd does not speak them either.
	 */
	if (ii->major != FUSE_KERNEL_VERSION || ii->minor < 31)
		return -EPROTO;
	io.major = FUSE_KERNEL_VERSION;
	io.minor = MK_MIN(ii->minor, (uint32_t)FUSE_KERNEL_MINOR_VERSION);
	io.max_readahead = ii->max_readahead;
	/* Only what the kernel offered; MAP_ALIGNMENT makes it read map_alignment. */
	io.flags = ii->flags & (FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAP_ALIGNMENT);
	io.max_background = 16;
	io.congestion_threshold = 12;
	io.max_write = VMM_FUSE_MAX_WRITE;
	io.time_gran = 1;
	io.map_alignment = (uint16_t)f->map_alignment_log2;
	if (f->dax)
		dax_session_reset(f->dax);
	memcpy(r->ob, &io, sizeof(io));
	*olen = sizeof(io);
	return 0;
}

static int op_destroy(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	(void)r;
	(void)olen;
	if (f->dax)
		dax_session_reset(f->dax);
	return 0;
}

static int op_nothing(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	(void)f;
	(void)r;
	(void)olen;
	return 0;
}

static void forget(struct vmm_fuse *f, uint64_t nodeid, uint64_t nlookup)
{
	if (node_path(f, nodeid) && nodeid > 1)
		f->nodes[nodeid].nlookup -= MK_MIN(nlookup, f->nodes[nodeid].nlookup);
}

static int op_forget(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	(void)olen;
	forget(f, r->ih.nodeid, r->a.forget.nlookup);
	return 0;
}

static int op_batch_forget(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	(void)olen;
	for (uint32_t i = 0; i < r->a.batch_forget.count; i++) {
		struct fuse_forget_one one;

		memcpy(&one, r->tail + i * sizeof(one), sizeof(one));
		forget(f, one.nodeid, one.nlookup);
	}
	return 0;
}

static int op_lookup(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	char *p = child(f, r->ih.nodeid, r->name);
	int err;

	if (!p)
		return -ENOMEM;
	err = entry_reply(f, p, r->ob);
	free(p);
	*olen = err ? 0 : sizeof(struct fuse_entry_out);
	return err;
}

static int op_getattr(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	int err = attr_reply(f, r->path, r->ob);

	*olen = err ? 0 : sizeof(struct fuse_attr_out);
	return err;
}

static int set_times(struct vmm_fuse *f, const char *path, const struct fuse_setattr_in *sa)
{
	struct timespec ts[2] = {
		{ (time_t)sa->atime, sa->atimensec }, { (time_t)sa->mtime, sa->mtimensec } };

	if (!(sa->valid & FATTR_ATIME))
		ts[0].tv_nsec = UTIME_OMIT;
	else if (sa->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	if (!(sa->valid & FATTR_MTIME))
		ts[1].tv_nsec = UTIME_OMIT;
	else if (sa->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	return utimensat(f->root_fd, path, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int op_setattr(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	const struct fuse_setattr_in *sa = &r->a.setattr;
	int err = 0;

	if (sa->valid & FATTR_SIZE) {
		int fd = mk_openat(f->root_fd, r->path, O_WRONLY, 0);

		if (fd < 0 || ftruncate(fd, (off_t)sa->size) < 0)
			err = fd < 0 ? fd : -errno;
		if (fd >= 0)
			close(fd);
	}
	if (!err && (sa->valid & FATTR_MODE) && fchmodat(f->root_fd, r->path, sa->mode & 07777, 0) < 0)
		err = -errno;
	if (!err && (sa->valid & (FATTR_ATIME | FATTR_MTIME)))
		err = set_times(f, r->path, sa);
	if (!err)
		err = op_getattr(f, r, olen);
	return err;
}

static int op_open(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	bool dir = r->ih.opcode == FUSE_OPENDIR;
	struct fuse_open_out oo = { 0 };
	int fd, err;

	fd = mk_openat(f->root_fd, r->path, dir ? O_RDONLY | O_DIRECTORY : open_flags(r->a.open.flags), 0);
	if (fd < 0)
		return fd;
	oo.fh = file_new(f, fd);
	if (!oo.fh) {
		close(fd);
		return -ENOMEM;
	}
	if (dir) {
		int dfd = dup(fd);

		err = dfd < 0 ? -errno : read_dir(&f->files[oo.fh], dfd);
		if (err) {
			file_close(&f->files[oo.fh]);
			return err;
		}
	}
	memcpy(r->ob, &oo, sizeof(oo));
	*olen = sizeof(oo);
	return 0;
}

static int op_create(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	const struct fuse_create_in *ci = &r->a.create;
	struct fuse_open_out oo = { 0 };
	char *p = child(f, r->ih.nodeid, r->name);
	int fd, err;

	if (!p)
		return -ENOMEM;
	fd = mk_openat(f->root_fd, p, open_flags(ci->flags) | O_CREAT | (int)(ci->flags & O_EXCL),
		       ci->mode & 07777 & ~ci->umask);
	err = fd < 0 ? fd : entry_reply(f, p, r->ob);
	free(p);
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	oo.fh = file_new(f, fd);
	if (!oo.fh) {
		close(fd);
		return -ENOMEM;
	}
	memcpy(r->ob + sizeof(struct fuse_entry_out), &oo, sizeof(oo));
	*olen = sizeof(struct fuse_entry_out) + sizeof(oo);
	return 0;
}

static int op_mkdir(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	char *p = child(f, r->ih.nodeid, r->name);
	int err;

	if (!p)
		return -ENOMEM;
	err = mkdirat(f->root_fd, p, r->a.mkdir.mode & 07777 & ~r->a.mkdir.umask) < 0 ? -errno : 0;
	if (!err)
		err = entry_reply(f, p, r->ob);
	free(p);
	*olen = err ? 0 : sizeof(struct fuse_entry_out);
	return err;
}

static int op_unlink(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	char *p = child(f, r->ih.nodeid, r->name);
	int err;

	(void)olen;
	if (!p)
		return -ENOMEM;
	err = unlinkat(f->root_fd, p, r->ih.opcode == FUSE_RMDIR ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
	free(p);
	return err;
}

static int op_read(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	struct vmm_fuse_file *fl = file_get(f, r->a.read.fh);
	ssize_t n;

	if (!fl)
		return -EBADF;
	n = pread(fl->fd, r->ob, r->a.read.size, (off_t)r->a.read.offset);
	if (n < 0)
		return -errno;
	f->st.bytes_read += (uint64_t)n;
	*olen = (size_t)n;
	return 0;
}

static int op_write(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	const struct fuse_write_in *wi = &r->a.write;
	struct fuse_write_out wo = { 0 };
	struct vmm_fuse_file *fl = file_get(f, wi->fh);
	ssize_t n;

	if (!fl)
		return -EBADF;
	/* wi->size == tail_len <= VMM_FUSE_MAX_WRITE: check_request(). */
	n = mk_pwrite_full(fl->fd, r->tail, wi->size, wi->offset);
	if (n < 0)
		return (int)n;
	f->st.bytes_written += wi->size;
	if (wi->size > f->st.max_write_seen)
		f->st.max_write_seen = wi->size;
	wo.size = wi->size;
	memcpy(r->ob, &wo, sizeof(wo));
	*olen = sizeof(wo);
	return 0;
}

static int op_readdir(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	struct vmm_fuse_file *fl = file_get(f, r->a.read.fh);

	if (!fl)
		return -EBADF;
	*olen = do_readdir(fl, r->a.read.offset, r->a.read.size, r->ob);
	return 0;
}

static int op_release(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	struct vmm_fuse_file *fl = file_get(f, r->a.release.fh);

	(void)olen;
	if (fl)
		file_close(fl);
	return 0;
}

static int op_fsync(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	struct vmm_fuse_file *fl = file_get(f, r->a.fsync.fh);

	(void)olen;
	return fl && fsync(fl->fd) < 0 ? -errno : 0;
}

static int op_statfs(struct vmm_fuse *f, const struct req *r, size_t *olen)
{
	struct fuse_statfs_out so = { 0 };
	struct statvfs sv;

	if (fstatvfs(f->root_fd, &sv) < 0)
		return -errno;
	so.st.blocks = sv.f_blocks;
	so.st.bfree = sv.f_bfree;
	so.st.bavail = sv.f_bavail;
	so.st.files = sv.f_files;
	so.st.ffree = sv.f_ffree;
	so.st.bsize = (uint32_t)sv.f_bsize;
	so.st.namelen = (uint32_t)sv.f_namemax;
	so.st.frsize = (uint32_t)sv.f_frsize;
	memcpy(r->ob, &so, sizeof(so));
	*olen = sizeof(so);
	return 0;
}

static void trace_setup(struct vmm_fuse *f, uint64_t nodeid, const struct fuse_setupmapping_in *in, int r)
{
	const char *path = node_path(f, nodeid);

	fprintf(f->trace, "fuse: setupmapping %s foffset 0x%llx moffset 0x%llx len 0x%llx %s fh %lld: %d\n",
		path ? path : "?", (unsigned long long)in->foffset, (unsigned long long)in->moffset,
		(unsigned long long)in->len, (in->flags & FUSE_SETUPMAPPING_FLAG_WRITE) ? "rw" : "r",
		(long long)in->fh, r);
}

static int op_setupmapping(struct vmm_fuse *f, const struct req *rq, size_t *olen)
{
	struct fuse_setupmapping_in in = rq->a.setup;
	uint64_t nodeid = rq->ih.nodeid;
	int r;

	(void)olen;
	if (in.flags & FUSE_SETUPMAPPING_FLAG_WRITE)
		f->st.setup_write++;
	else
		f->st.setup_read++;
	if (in.fh == UINT64_MAX)
		f->st.setup_fh_none++;
	if (in.len == DAX_RANGE)
		f->st.setup_len_2m++;
	if ((in.foffset | in.moffset) & (DAX_RANGE - 1))
		f->st.setup_unaligned++;
	if (!f->dax)
		return -ENOSYS;
	if (f->inject_wrong_range && !(in.flags & FUSE_SETUPMAPPING_FLAG_WRITE)) {
		struct stat st;
		const char *path = node_path(f, nodeid);

		/* The next range instead, where the file has one: wrong bytes, no
		 * pages past its end (a guest touching those hangs in KVM's fault loop). */
		if (path && stat_path(f, path, &st) == 0 &&
		    in.foffset + 2 * DAX_RANGE <= (uint64_t)st.st_size)
			in.foffset += DAX_RANGE;
	}
	r = dax_session_setup(f->dax, nodeid, (const struct dax_setup_req *)&in);
	if (f->trace)
		trace_setup(f, nodeid, &in, r);
	if (r < 0) {
		f->st.setup_failed++;
		note_error(f, "libdax setup", r);
	}
	return r < 0 ? r : 0;
}

static int op_removemapping(struct vmm_fuse *f, const struct req *rq, size_t *olen)
{
	uint32_t count = rq->a.remove.count;
	int r;

	(void)olen;
	f->st.remove_entries += count;
	if (count > f->st.remove_max_batch)
		f->st.remove_max_batch = count;
	if (count > 1)
		f->st.remove_batches_gt1++;
	if (count) {
		unsigned b = 0;

		while (b + 1 < VMM_FUSE_BATCH_BUCKETS && count >> (b + 1))
			b++;
		f->st.remove_batch[b]++;
	}
	if (!f->dax)
		return -ENOSYS;
	/* The payload as sent (count + entries, tail_len == 16 * count): libdax copies and checks it. */
	r = dax_session_remove_raw(f->dax, rq->arg, rq->arg_len + rq->tail_len);
	if (f->trace) {
		fprintf(f->trace, "fuse: removemapping count %u:", count);
		for (uint32_t i = 0; i < count; i++) {
			struct fuse_removemapping_one one;

			memcpy(&one, rq->tail + sizeof(one) * i, sizeof(one));
			fprintf(f->trace, " 0x%llx+0x%llx", (unsigned long long)one.moffset,
				(unsigned long long)one.len);
		}
		fprintf(f->trace, ": %d\n", r);
	}
	if (r < 0) {
		f->st.remove_failed++;
		note_error(f, "libdax remove", r);
	}
	return r < 0 ? r : 0;
}

/* ---- what each opcode may send and receive ---------------------------------- */

enum {
	OP_NODE = 1,        /* ih.nodeid must name a node (-ENOENT) */
	OP_NOREPLY = 2,     /* no reply at all (FORGET, BATCH_FORGET, INTERRUPT) */
	OP_READ_REPLY = 4,  /* the reply body is up to fuse_read_in.size bytes */
	OP_TAIL_ANY = 8,    /* bytes after the argument are allowed and ignored */
};

struct op {
	uint16_t arg_size;   /* the argument struct the handler reads */
	/*
	 * The one shorter argument the FUSE protocol defines (0: none), accepted
	 * when it is all the request holds and zero-filled to arg_size; any
	 * other short argument is refused.
	 */
	uint16_t arg_compat;
	uint8_t names;       /* NUL-terminated file names after the argument (0 or 1) */
	uint8_t flags;
	/*
	 * Counted tail after the argument: tail_unit bytes times the u32 at
	 * tail_count_off in the argument, exactly, and at most tail_max units
	 * (0: what the request holds). tail_unit 0: no tail (unless OP_TAIL_ANY).
	 */
	uint8_t tail_unit;
	uint16_t tail_count_off;
	uint32_t tail_max;
	uint32_t reply;      /* reply body size (OP_READ_REPLY: fuse_read_in.size) */
	op_fn fn;
};

#define ARG(type) .arg_size = sizeof(struct type)
#define REPLY(type) .reply = sizeof(struct type)
#define TAIL(type, field, unit, max) \
	.tail_unit = (unit), .tail_count_off = offsetof(struct type, field), .tail_max = (max)

static const struct op ops[] = {
	/* Kernels before protocol 7.36 (Linux 5.17) send fuse_init_in up to flags
	 * only; newer minors may grow it (what we do not know we do not read). */
	[FUSE_INIT] = { ARG(fuse_init_in), .arg_compat = offsetof(struct fuse_init_in, flags2),
			.flags = OP_TAIL_ANY, REPLY(fuse_init_out), .fn = op_init },
	[FUSE_DESTROY] = { .fn = op_destroy },
	[FUSE_LOOKUP] = { .names = 1, .flags = OP_NODE, REPLY(fuse_entry_out), .fn = op_lookup },
	[FUSE_FORGET] = { ARG(fuse_forget_in), .flags = OP_NOREPLY, .fn = op_forget },
	[FUSE_BATCH_FORGET] = { ARG(fuse_batch_forget_in), .flags = OP_NOREPLY,
				TAIL(fuse_batch_forget_in, count, sizeof(struct fuse_forget_one), 0),
				.fn = op_batch_forget },
	[FUSE_INTERRUPT] = { ARG(fuse_interrupt_in), .flags = OP_NOREPLY, .fn = op_nothing },
	[FUSE_GETATTR] = { ARG(fuse_getattr_in), .flags = OP_NODE, REPLY(fuse_attr_out),
			   .fn = op_getattr },
	[FUSE_SETATTR] = { ARG(fuse_setattr_in), .flags = OP_NODE, REPLY(fuse_attr_out),
			   .fn = op_setattr },
	[FUSE_OPEN] = { ARG(fuse_open_in), .flags = OP_NODE, REPLY(fuse_open_out), .fn = op_open },
	[FUSE_OPENDIR] = { ARG(fuse_open_in), .flags = OP_NODE, REPLY(fuse_open_out), .fn = op_open },
	[FUSE_CREATE] = { ARG(fuse_create_in), .names = 1, .flags = OP_NODE,
			  .reply = sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out),
			  .fn = op_create },
	[FUSE_MKDIR] = { ARG(fuse_mkdir_in), .names = 1, .flags = OP_NODE, REPLY(fuse_entry_out),
			 .fn = op_mkdir },
	[FUSE_UNLINK] = { .names = 1, .flags = OP_NODE, .fn = op_unlink },
	[FUSE_RMDIR] = { .names = 1, .flags = OP_NODE, .fn = op_unlink },
	[FUSE_READ] = { ARG(fuse_read_in), .flags = OP_READ_REPLY, .fn = op_read },
	[FUSE_WRITE] = { ARG(fuse_write_in), TAIL(fuse_write_in, size, 1, VMM_FUSE_MAX_WRITE),
			 REPLY(fuse_write_out), .fn = op_write },
	[FUSE_READDIR] = { ARG(fuse_read_in), .flags = OP_READ_REPLY, .fn = op_readdir },
	[FUSE_RELEASE] = { ARG(fuse_release_in), .fn = op_release },
	[FUSE_RELEASEDIR] = { ARG(fuse_release_in), .fn = op_release },
	[FUSE_FLUSH] = { ARG(fuse_flush_in), .fn = op_nothing },
	[FUSE_FSYNC] = { ARG(fuse_fsync_in), .fn = op_fsync },
	[FUSE_FSYNCDIR] = { ARG(fuse_fsync_in), .fn = op_fsync },
	[FUSE_STATFS] = { REPLY(fuse_statfs_out), .fn = op_statfs },
	[FUSE_SETUPMAPPING] = { ARG(fuse_setupmapping_in), .fn = op_setupmapping },
	[FUSE_REMOVEMAPPING] = { ARG(fuse_removemapping_in),
				 TAIL(fuse_removemapping_in, count,
				      sizeof(struct fuse_removemapping_one), 0),
				 .fn = op_removemapping },
	/* Everything else (ACCESS, xattrs, LSEEK, FALLOCATE, SYNCFS...) gets
	 * ENOSYS, which makes Linux stop asking (or fall back) for the mount. */
};

/* A request refused before any handler ran: counted, the first one reported. */
static int refuse(struct vmm_fuse *f, const struct fuse_in_header *ih, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(struct vmm_fuse *f, const struct fuse_in_header *ih, int err, const char *fmt, ...)
{
	const char *op = ih ? vmm_fuse_opname(ih->opcode) : NULL;
	char why[96];
	va_list ap;

	f->st.refused++;
	if (vmm_err_set(&f->error))
		return err;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (ih)
		vmm_fail(&f->error, err ? err : -EINVAL, "guest request %s (opcode %u): %s",
			 op ? op : "?", ih->opcode, why);
	else
		vmm_fail(&f->error, err ? err : -EINVAL, "guest request: %s", why);
	return err;
}

/*
 * The one name after the argument: NUL-terminated inside the request,
 * 1..NAME_MAX bytes, no '/', not "." or "..". A name the kernel sent never
 * fails this (its VFS resolves "." and ".." itself).
 */
static int check_name(struct vmm_fuse *f, struct req *r, const uint8_t *p, size_t len, size_t *used)
{
	const uint8_t *nul = memchr(p, 0, MK_MIN(len, (size_t)NAME_MAX + 1));
	size_t n;

	if (!nul)
		return len > NAME_MAX ?
		       refuse(f, &r->ih, -ENAMETOOLONG, "name longer than %u bytes", NAME_MAX) :
		       refuse(f, &r->ih, -EINVAL, "name of %zu bytes without NUL", len);
	n = (size_t)(nul - p);
	r->name = (const char *)p;
	*used = n + 1;
	if (!n)
		return refuse(f, &r->ih, -EINVAL, "empty name");
	if (memchr(p, '/', n))
		return refuse(f, &r->ih, -EINVAL, "name with '/'");
	if (!strcmp(r->name, ".") || !strcmp(r->name, ".."))
		return refuse(f, &r->ih, -EINVAL, "name \"%s\"", r->name);
	return 0;
}

/* After the argument and names: exactly the tail the op defines. */
static int check_tail(struct vmm_fuse *f, const struct op *op, struct req *r)
{
	uint32_t count;

	if (!op->tail_unit) {
		if (r->tail_len && !(op->flags & OP_TAIL_ANY))
			return refuse(f, &r->ih, -EINVAL, "%zu bytes after the arguments", r->tail_len);
		return 0;
	}
	memcpy(&count, (const uint8_t *)&r->a + op->tail_count_off, sizeof(count));
	if (op->tail_max && count > op->tail_max)
		return refuse(f, &r->ih, -EINVAL, "%u units of data, at most %u", count, op->tail_max);
	if ((uint64_t)count * op->tail_unit != r->tail_len)
		return refuse(f, &r->ih, -EINVAL, "says %u units of %u bytes, sends %zu bytes", count,
			      op->tail_unit, r->tail_len);
	return 0;
}

/*
 * Everything checked once, before the handler: the length the header
 * states, the fixed argument (copied), the names, the tail, and that the
 * reply the op may write fits in cap. 0, or -errno for the error reply.
 */
static int check_request(struct vmm_fuse *f, const struct op *op, const uint8_t *in, size_t in_len,
			 uint8_t *out, size_t cap, struct req *r)
{
	size_t alen = in_len - sizeof(r->ih), used, need;
	const uint8_t *p = in + sizeof(r->ih);
	int err;

	if (r->ih.len != in_len)
		return refuse(f, &r->ih, -EINVAL, "header says %u bytes, %zu sent", r->ih.len, in_len);
	if (r->ih.total_extlen)
		return refuse(f, &r->ih, -EINVAL, "extensions (never negotiated)");
	if (alen >= op->arg_size)
		used = op->arg_size;
	else if (op->arg_compat && alen == op->arg_compat)
		used = op->arg_compat;          /* the rest stays zero */
	else
		return refuse(f, &r->ih, -EINVAL, "argument of %zu bytes, needs %u", alen,
			      op->arg_size);
	memcpy(&r->a, p, used);
	r->arg = p;
	r->arg_len = used;
	p += used;
	alen -= used;
	if (op->names) {
		err = check_name(f, r, p, alen, &used);
		if (err)
			return err;
		p += used;
		alen -= used;
	}
	r->tail = p;
	r->tail_len = alen;
	err = check_tail(f, op, r);
	if (err)
		return err;
	if (op->flags & OP_NOREPLY)
		return 0;
	need = (op->flags & OP_READ_REPLY) ? r->a.read.size : op->reply;
	r->ob = out + sizeof(struct fuse_out_header);
	r->ocap = cap - sizeof(struct fuse_out_header);
	if (need > r->ocap)
		return refuse(f, &r->ih, -EINVAL, "reply of %zu bytes, room for %zu", need, r->ocap);
	return 0;
}

size_t vmm_fuse_handle(struct vmm_fuse *f, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap)
{
	const struct op *op = NULL;
	struct fuse_out_header oh;
	struct req r = { 0 };
	size_t olen = 0;
	int err;

	if (in_len < sizeof(r.ih)) {
		refuse(f, NULL, 0, "%zu bytes, shorter than the header", in_len);
		return 0;
	}
	memcpy(&r.ih, in, sizeof(r.ih));
	if (r.ih.opcode < VMM_FUSE_OPS)
		f->st.ops[r.ih.opcode]++;
	else
		f->st.unknown_ops++;
	if (r.ih.opcode < MK_ARRAY_SIZE(ops) && ops[r.ih.opcode].fn)
		op = &ops[r.ih.opcode];
	if (!(op && (op->flags & OP_NOREPLY)) && cap < sizeof(oh)) {
		refuse(f, &r.ih, 0, "room for a reply of %zu bytes", cap);
		return 0;
	}
	err = op ? check_request(f, op, in, in_len, out, cap, &r) : -ENOSYS;
	if (!err && (op->flags & OP_NODE)) {
		r.path = node_path(f, r.ih.nodeid);
		if (!r.path)
			err = -ENOENT;
	}
	if (!err)
		err = op->fn(f, &r, &olen);
	if (op && (op->flags & OP_NOREPLY))
		return 0;
	if (err) {
		f->st.errors++;
		olen = 0;
	}
	oh = (struct fuse_out_header){
		.len = (uint32_t)(sizeof(oh) + olen), .error = err, .unique = r.ih.unique };
	memcpy(out, &oh, sizeof(oh));
	return oh.len;
}
