/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest linux check: the passthrough FUSE server (fuse-server.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <linux/fuse.h>

#include "common/macro.h"
#include "common/sys.h"
#include "tools/memcheck/fuse-server.h"

#define DAX_RANGE (2ull << 20)   /* fs/fuse/dax.c: FUSE_DAX_SZ */
#define MAX_WRITE (128u << 10)

static const char *const opnames[LX_FUSE_OPS] = {
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

const char *lx_fuse_opname(unsigned op)
{
	return op < LX_FUSE_OPS && opnames[op] ? opnames[op] : NULL;
}

int lx_fuse_init(struct lx_fuse *f, int root_fd, struct dax_session *dax, uint64_t window_len)
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

static void file_close(struct lx_fuse_file *fl)
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

void lx_fuse_free(struct lx_fuse *f)
{
	for (size_t i = 0; i < f->nnodes; i++)
		free(f->nodes[i].path);
	for (size_t i = 0; i < f->nfiles; i++)
		file_close(&f->files[i]);
	free(f->nodes);
	free(f->files);
	memset(f, 0, sizeof(*f));
}

static const char *node_path(struct lx_fuse *f, uint64_t nodeid)
{
	return nodeid && nodeid < f->nnodes ? f->nodes[nodeid].path : NULL;
}

/* The node for path (existing or new); 0 on allocation failure. */
static uint64_t node_get(struct lx_fuse *f, const char *path)
{
	struct lx_fuse_node *n;

	for (size_t i = 1; i < f->nnodes; i++)
		if (f->nodes[i].path && !strcmp(f->nodes[i].path, path))
			return i;
	n = realloc(f->nodes, (f->nnodes + 1) * sizeof(*n));
	if (!n)
		return 0;
	f->nodes = n;
	n[f->nnodes] = (struct lx_fuse_node){ strdup(path), 0 };
	if (!n[f->nnodes].path)
		return 0;
	return f->nnodes++;
}

static char *child(struct lx_fuse *f, uint64_t parent, const char *name)
{
	const char *pp = node_path(f, parent);
	char *p;

	if (!pp || !*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
		return NULL;
	if (!strcmp(pp, "."))
		return strdup(name);
	if (asprintf(&p, "%s/%s", pp, name) < 0)
		return NULL;
	return p;
}

static uint64_t file_new(struct lx_fuse *f, int fd)
{
	struct lx_fuse_file *nf;

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

static struct lx_fuse_file *file_get(struct lx_fuse *f, uint64_t fh)
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

static int stat_path(struct lx_fuse *f, const char *path, struct stat *st)
{
	return fstatat(f->root_fd, path, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Attributes are valid for 1 s: the guest script is short and alone on the files. */
static size_t entry_reply(struct lx_fuse *f, const char *path, void *out, int *err)
{
	struct fuse_entry_out *e = out;
	struct stat st;
	uint64_t id;
	int r = stat_path(f, path, &st);

	if (r < 0) {
		*err = r;
		return 0;
	}
	id = node_get(f, path);
	if (!id) {
		*err = -ENOMEM;
		return 0;
	}
	f->nodes[id].nlookup++;
	memset(e, 0, sizeof(*e));
	e->nodeid = id;
	e->generation = 1;
	e->entry_valid = 1;
	e->attr_valid = 1;
	fill_attr(&e->attr, &st);
	return sizeof(*e);
}

static size_t attr_reply(struct lx_fuse *f, const char *path, void *out, int *err)
{
	struct fuse_attr_out *a = out;
	struct stat st;
	int r = stat_path(f, path, &st);

	if (r < 0) {
		*err = r;
		return 0;
	}
	memset(a, 0, sizeof(*a));
	a->attr_valid = 1;
	fill_attr(&a->attr, &st);
	return sizeof(*a);
}

static int open_flags(uint32_t fl)
{
	/* The guest's flags minus what must not reach the host open. */
	return (int)(fl & (O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_DIRECTORY)) | O_CLOEXEC |
	       O_NOFOLLOW;
}

static int read_dir(struct lx_fuse_file *fl, int fd)
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

static size_t do_readdir(struct lx_fuse_file *fl, uint64_t off, uint32_t size, uint8_t *out,
			 size_t cap)
{
	size_t n = 0;

	if (size > cap)
		size = (uint32_t)cap;
	for (uint64_t i = off; i < fl->nnames; i++) {
		size_t nl = strlen(fl->names[i]);
		size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nl);
		struct fuse_dirent *de = (struct fuse_dirent *)(out + n);

		if (n + rec > size)
			break;
		memset(de, 0, rec);
		de->ino = fl->inos[i];
		de->off = i + 1;
		de->namelen = (uint32_t)nl;
		de->type = fl->types[i];
		memcpy(de->name, fl->names[i], nl);
		n += rec;
	}
	return n;
}

int lx_fuse_dax_open(void *data, uint64_t nodeid, uint64_t fh, uint32_t prot,
		     struct dax_file_id *id)
{
	struct lx_fuse *f = data;
	const char *path = node_path(f, nodeid);
	struct stat st;
	int fd;

	(void)fh;
	if (!path)
		return -ENOENT;
	fd = mk_openat(f->root_fd, path, (prot & DAX_PROT_WRITE) ? O_RDWR : O_RDONLY, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*id = (struct dax_file_id){
		.dev = st.st_dev, .ino = st.st_ino, .size = (uint64_t)st.st_size,
		.mtime_sec = st.st_mtim.tv_sec, .mtime_nsec = (uint32_t)st.st_mtim.tv_nsec,
		.valid = 1,
	};
	return fd;
}

static void note_error(struct lx_fuse *f, const char *what, int err)
{
	if (!f->error[0])
		snprintf(f->error, sizeof(f->error), "%s: %s", what, strerror(-err));
}

static int do_setupmapping(struct lx_fuse *f, uint64_t nodeid, const void *arg, size_t len)
{
	struct fuse_setupmapping_in in;
	int r;

	if (len < sizeof(in))
		return -EINVAL;
	memcpy(&in, arg, sizeof(in));
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
		fprintf(f->trace, "fuse: setupmapping %s foffset 0x%llx moffset 0x%llx len 0x%llx %s fh %lld: %d\n",
			node_path(f, nodeid) ? node_path(f, nodeid) : "?",
			(unsigned long long)in.foffset, (unsigned long long)in.moffset,
			(unsigned long long)in.len, (in.flags & FUSE_SETUPMAPPING_FLAG_WRITE) ? "rw" : "r",
			(long long)in.fh, r);
	if (r < 0) {
		f->st.setup_failed++;
		note_error(f, "libdax setup", r);
	}
	return r < 0 ? r : 0;
}

static int do_removemapping(struct lx_fuse *f, const uint8_t *arg, size_t len)
{
	struct fuse_removemapping_in in;
	int r;

	if (len < sizeof(in))
		return -EINVAL;
	memcpy(&in, arg, sizeof(in));
	f->st.remove_entries += in.count;
	if (in.count > f->st.remove_max_batch)
		f->st.remove_max_batch = in.count;
	if (in.count > 1)
		f->st.remove_batches_gt1++;
	if (!f->dax)
		return -ENOSYS;
	r = dax_session_remove_raw(f->dax, arg, len);
	if (f->trace) {
		fprintf(f->trace, "fuse: removemapping count %u:", in.count);
		for (uint32_t i = 0; i < in.count && sizeof(in) + 16ull * (i + 1) <= len; i++) {
			struct fuse_removemapping_one one;

			memcpy(&one, arg + sizeof(in) + 16ull * i, sizeof(one));
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

size_t lx_fuse_handle(struct lx_fuse *f, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap)
{
	struct fuse_in_header ih;
	struct fuse_out_header *oh = (struct fuse_out_header *)out;
	uint8_t *ob = out + sizeof(*oh);
	size_t ocap = cap - sizeof(*oh), olen = 0, alen;
	const uint8_t *arg;
	const char *path;
	int err = 0;

	if (in_len < sizeof(ih) || cap < sizeof(*oh))
		return 0;
	memcpy(&ih, in, sizeof(ih));
	arg = in + sizeof(ih);
	alen = in_len - sizeof(ih);
	if (ih.opcode < LX_FUSE_OPS)
		f->st.ops[ih.opcode]++;
	else
		f->st.unknown_ops++;
	path = node_path(f, ih.nodeid);

	switch (ih.opcode) {
	case FUSE_INIT: {
		struct fuse_init_in ii = { 0 };
		struct fuse_init_out io = { 0 };

		memcpy(&ii, arg, MK_MIN(alen, sizeof(ii)));
		f->st.init_minor = ii.minor;
		f->st.init_flags = ii.flags;
		f->st.init_flags2 = ii.flags2;
		if (ii.major != FUSE_KERNEL_VERSION) {
			err = -EPROTO;
			break;
		}
		io.major = FUSE_KERNEL_VERSION;
		io.minor = MK_MIN(ii.minor, (uint32_t)FUSE_KERNEL_MINOR_VERSION);
		io.max_readahead = ii.max_readahead;
		/* Only what the kernel offered; MAP_ALIGNMENT makes it read map_alignment. */
		io.flags = ii.flags & (FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAP_ALIGNMENT);
		io.max_background = 16;
		io.congestion_threshold = 12;
		io.max_write = MAX_WRITE;
		io.time_gran = 1;
		io.map_alignment = (uint16_t)f->map_alignment_log2;
		if (f->dax)
			dax_session_reset(f->dax);
		memcpy(ob, &io, sizeof(io));
		olen = sizeof(io);
		break;
	}
	case FUSE_DESTROY:
		if (f->dax)
			dax_session_reset(f->dax);
		break;
	case FUSE_LOOKUP: {
		char *p = alen ? child(f, ih.nodeid, (const char *)arg) : NULL;

		if (!p || !memchr(arg, 0, alen)) {
			err = -ENOENT;
			free(p);
			break;
		}
		olen = entry_reply(f, p, ob, &err);
		free(p);
		break;
	}
	case FUSE_FORGET: {
		struct fuse_forget_in fi = { 0 };

		memcpy(&fi, arg, MK_MIN(alen, sizeof(fi)));
		if (path && ih.nodeid > 1)
			f->nodes[ih.nodeid].nlookup -= MK_MIN(fi.nlookup, f->nodes[ih.nodeid].nlookup);
		return 0;
	}
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		return 0;
	case FUSE_GETATTR:
		if (!path) {
			err = -ENOENT;
			break;
		}
		olen = attr_reply(f, path, ob, &err);
		break;
	case FUSE_SETATTR: {
		struct fuse_setattr_in sa = { 0 };

		memcpy(&sa, arg, MK_MIN(alen, sizeof(sa)));
		if (!path) {
			err = -ENOENT;
			break;
		}
		if (sa.valid & FATTR_SIZE) {
			int fd = mk_openat(f->root_fd, path, O_WRONLY, 0);

			if (fd < 0 || ftruncate(fd, (off_t)sa.size) < 0)
				err = fd < 0 ? fd : -errno;
			if (fd >= 0)
				close(fd);
		}
		if (!err && (sa.valid & FATTR_MODE) && fchmodat(f->root_fd, path, sa.mode & 07777, 0) < 0)
			err = -errno;
		if (!err && (sa.valid & (FATTR_ATIME | FATTR_MTIME))) {
			struct timespec ts[2] = {
				{ (time_t)sa.atime, sa.atimensec }, { (time_t)sa.mtime, sa.mtimensec } };

			if (!(sa.valid & FATTR_ATIME))
				ts[0].tv_nsec = UTIME_OMIT;
			else if (sa.valid & FATTR_ATIME_NOW)
				ts[0].tv_nsec = UTIME_NOW;
			if (!(sa.valid & FATTR_MTIME))
				ts[1].tv_nsec = UTIME_OMIT;
			else if (sa.valid & FATTR_MTIME_NOW)
				ts[1].tv_nsec = UTIME_NOW;
			if (utimensat(f->root_fd, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
				err = -errno;
		}
		if (!err)
			olen = attr_reply(f, path, ob, &err);
		break;
	}
	case FUSE_OPEN:
	case FUSE_OPENDIR: {
		struct fuse_open_in oi = { 0 };
		struct fuse_open_out oo = { 0 };
		int fd;

		memcpy(&oi, arg, MK_MIN(alen, sizeof(oi)));
		if (!path) {
			err = -ENOENT;
			break;
		}
		fd = mk_openat(f->root_fd, path, ih.opcode == FUSE_OPENDIR ?
			       O_RDONLY | O_DIRECTORY : open_flags(oi.flags), 0);
		if (fd < 0) {
			err = fd;
			break;
		}
		oo.fh = file_new(f, fd);
		if (!oo.fh) {
			close(fd);
			err = -ENOMEM;
			break;
		}
		if (ih.opcode == FUSE_OPENDIR) {
			int dfd = dup(fd);

			err = dfd < 0 ? -errno : read_dir(&f->files[oo.fh], dfd);
			if (err) {
				file_close(&f->files[oo.fh]);
				break;
			}
		}
		memcpy(ob, &oo, sizeof(oo));
		olen = sizeof(oo);
		break;
	}
	case FUSE_CREATE: {
		struct fuse_create_in ci = { 0 };
		struct fuse_open_out oo = { 0 };
		const char *name = (const char *)arg + sizeof(ci);
		char *p;
		int fd;

		if (alen <= sizeof(ci) || !memchr(name, 0, alen - sizeof(ci))) {
			err = -EINVAL;
			break;
		}
		memcpy(&ci, arg, sizeof(ci));
		p = child(f, ih.nodeid, name);
		if (!p) {
			err = -ENOENT;
			break;
		}
		fd = mk_openat(f->root_fd, p, open_flags(ci.flags) | O_CREAT | (int)(ci.flags & O_EXCL),
			       ci.mode & 07777 & ~ci.umask);
		if (fd < 0) {
			err = fd;
			free(p);
			break;
		}
		olen = entry_reply(f, p, ob, &err);
		free(p);
		if (err) {
			close(fd);
			break;
		}
		oo.fh = file_new(f, fd);
		if (!oo.fh) {
			close(fd);
			err = -ENOMEM;
			olen = 0;
			break;
		}
		memcpy(ob + olen, &oo, sizeof(oo));
		olen += sizeof(oo);
		break;
	}
	case FUSE_MKDIR: {
		struct fuse_mkdir_in mi = { 0 };
		char *p;

		if (alen <= sizeof(mi)) {
			err = -EINVAL;
			break;
		}
		memcpy(&mi, arg, sizeof(mi));
		p = child(f, ih.nodeid, (const char *)arg + sizeof(mi));
		if (!p) {
			err = -ENOENT;
			break;
		}
		if (mkdirat(f->root_fd, p, mi.mode & 07777 & ~mi.umask) < 0)
			err = -errno;
		else
			olen = entry_reply(f, p, ob, &err);
		free(p);
		break;
	}
	case FUSE_UNLINK:
	case FUSE_RMDIR: {
		char *p = alen ? child(f, ih.nodeid, (const char *)arg) : NULL;

		if (!p) {
			err = -ENOENT;
			break;
		}
		if (unlinkat(f->root_fd, p, ih.opcode == FUSE_RMDIR ? AT_REMOVEDIR : 0) < 0)
			err = -errno;
		free(p);
		break;
	}
	case FUSE_READ: {
		struct fuse_read_in ri = { 0 };
		struct lx_fuse_file *fl;
		ssize_t n;

		memcpy(&ri, arg, MK_MIN(alen, sizeof(ri)));
		fl = file_get(f, ri.fh);
		if (!fl) {
			err = -EBADF;
			break;
		}
		n = pread(fl->fd, ob, MK_MIN((size_t)ri.size, ocap), (off_t)ri.offset);
		if (n < 0) {
			err = -errno;
			break;
		}
		f->st.bytes_read += (uint64_t)n;
		olen = (size_t)n;
		break;
	}
	case FUSE_WRITE: {
		struct fuse_write_in wi = { 0 };
		struct fuse_write_out wo = { 0 };
		struct lx_fuse_file *fl;
		ssize_t n;

		if (alen < sizeof(wi)) {
			err = -EINVAL;
			break;
		}
		memcpy(&wi, arg, sizeof(wi));
		fl = file_get(f, wi.fh);
		if (!fl || wi.size > alen - sizeof(wi)) {
			err = fl ? -EINVAL : -EBADF;
			break;
		}
		n = mk_pwrite_full(fl->fd, arg + sizeof(wi), wi.size, wi.offset);
		if (n < 0) {
			err = (int)n;
			break;
		}
		f->st.bytes_written += wi.size;
		if (wi.size > f->st.max_write_seen)
			f->st.max_write_seen = wi.size;
		wo.size = wi.size;
		memcpy(ob, &wo, sizeof(wo));
		olen = sizeof(wo);
		break;
	}
	case FUSE_READDIR: {
		struct fuse_read_in ri = { 0 };

		memcpy(&ri, arg, MK_MIN(alen, sizeof(ri)));
		if (!file_get(f, ri.fh)) {
			err = -EBADF;
			break;
		}
		olen = do_readdir(&f->files[ri.fh], ri.offset, ri.size, ob, ocap);
		break;
	}
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR: {
		struct fuse_release_in rl = { 0 };

		memcpy(&rl, arg, MK_MIN(alen, sizeof(rl)));
		if (file_get(f, rl.fh))
			file_close(&f->files[rl.fh]);
		break;
	}
	case FUSE_FLUSH:
		break;
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR: {
		struct fuse_fsync_in fs = { 0 };

		memcpy(&fs, arg, MK_MIN(alen, sizeof(fs)));
		if (file_get(f, fs.fh) && fsync(f->files[fs.fh].fd) < 0)
			err = -errno;
		break;
	}
	case FUSE_STATFS: {
		struct fuse_statfs_out so = { 0 };
		struct statvfs sv;

		if (fstatvfs(f->root_fd, &sv) < 0) {
			err = -errno;
			break;
		}
		so.st.blocks = sv.f_blocks;
		so.st.bfree = sv.f_bfree;
		so.st.bavail = sv.f_bavail;
		so.st.files = sv.f_files;
		so.st.ffree = sv.f_ffree;
		so.st.bsize = (uint32_t)sv.f_bsize;
		so.st.namelen = (uint32_t)sv.f_namemax;
		so.st.frsize = (uint32_t)sv.f_frsize;
		memcpy(ob, &so, sizeof(so));
		olen = sizeof(so);
		break;
	}
	case FUSE_SETUPMAPPING:
		err = do_setupmapping(f, ih.nodeid, arg, alen);
		break;
	case FUSE_REMOVEMAPPING:
		err = do_removemapping(f, arg, alen);
		break;
	default:
		/* ACCESS, xattrs, LSEEK, FALLOCATE, SYNCFS...: "not implemented" makes
		 * Linux stop asking (or fall back) for the rest of the mount. */
		err = -ENOSYS;
		break;
	}
	if (err)
		f->st.errors++;
	oh->len = (uint32_t)(sizeof(*oh) + (err ? 0 : olen));
	oh->error = err;
	oh->unique = ih.unique;
	return oh->len;
}
