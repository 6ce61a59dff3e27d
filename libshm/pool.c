/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pools: the lifecycle (creating, attaching, registering, freeing,
 * unlinking, removing). The top of libshm: on top of the chunk table
 * (chunk.c), the user table (users.c) and reclaim (reclaim.c), which
 * registering calls when the user table is full.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/ext.h"
#include "common/fmt.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

static bool name_ok(const char *name)
{
	size_t n = 0;

	if (!name)
		return false;
	for (; name[n]; n++) {
		char c = name[n];
		if (n >= SHMA_NAME_MAX - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

static int root_name(const char *name, char *buf, size_t len)
{
	int n = mk_fmt(buf, len, SHMA_FILE_PREFIX "%s", name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static uint64_t root_bytes(uint32_t max_chunks)
{
	uint64_t n = sizeof(struct shma_root) + (uint64_t)max_chunks * sizeof(struct shma_slot);
	uint64_t out = 0;

	mk_align_up(n, mk_page_size(), &out);
	return out;
}

static uint64_t default_max_chunks(uint64_t chunk_size)
{
	return MK_MIN(SHMA_SLOTS_MAX, SHMA_SPAN_MAX / chunk_size);
}

static unsigned classes_for(uint64_t class_max)
{
	return shma_size_class(class_max + sizeof(struct shma_blk)) + 1;
}

/* ---- the process-local part of a pool --------------------------------------- */

static void pool_unmap_all(struct shma_pool *p)
{
	if (p->defer) {
		for (uint32_t i = 0; i < p->ndefer; i++)
			mk_munmap(p->defer[i].addr, p->defer[i].len);
		mk_munmap(p->defer, p->defer_len);
	}
	if (p->loc) {
		for (uint32_t i = 0; i < p->max_chunks; i++) {
			struct shma_local *l = &p->loc[i];
			if (l->addr && (l->addr < p->resv || l->addr >= p->resv + p->resv_len))
				mk_munmap(l->addr, l->len);
			if (l->fd >= 0)
				mk_close(l->fd);
		}
		mk_munmap(p->loc, p->loc_len);
	}
	if (p->pc)
		mk_munmap(p->pc, p->pc_len);
	if (p->resv)
		mk_munmap(p->resv, p->resv_len);
	if (p->root)
		mk_munmap(p->root, p->root_len);
	if (p->root_fd >= 0)
		mk_close(p->root_fd);
	if (p->dirfd >= 0)
		mk_close(p->dirfd);
	mk_munmap(p, mk_page_size());
}

static int pool_alloc_local(struct shma_pool **out)
{
	struct shma_pool *p;
	void *m;
	int r;

	_Static_assert(sizeof(struct shma_pool) <= 4096, "pool struct fits a page");
	r = mk_mmap(NULL, mk_page_size(), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &m);
	if (r < 0)
		return r;
	p = m;
	p->root_fd = -1;
	p->dirfd = -1;
	p->reg = (uint64_t)__atomic_load_n(&shma_fork_gen, __ATOMIC_RELAXED) << 32 | SHMA_OWNER_NONE;
	*out = p;
	return 0;
}

/* Geometry from the (validated) root: reservation and local slot table. */
static int pool_setup_local(struct shma_pool *p)
{
	const struct shma_root *rt = p->root;
	void *m;
	int r;

	p->chunk_size = rt->chunk_size;
	p->chunk_shift = mk_log2(rt->chunk_size);
	p->max_chunks = rt->max_chunks;
	p->nclasses = rt->nclasses;
	p->class_max = rt->class_max;
	p->backend = rt->backend;
	p->resv_len = (uint64_t)p->max_chunks * p->chunk_size;
	r = mk_mmap(NULL, p->resv_len, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &m);
	if (r < 0)
		return r;
	p->resv = m;
	if (mk_align_up((uint64_t)p->max_chunks * sizeof(struct shma_local), mk_page_size(),
			&p->loc_len) < 0)
		return -EINVAL;
	r = mk_mmap(NULL, p->loc_len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &m);
	if (r < 0)
		return r;
	p->loc = m;
	for (uint32_t i = 0; i < p->max_chunks; i++)
		p->loc[i].fd = -1;
	if (mk_align_up((uint64_t)p->max_chunks * sizeof(struct shma_defer), mk_page_size(),
			&p->defer_len) < 0)
		return -EINVAL;
	r = mk_mmap(NULL, p->defer_len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &m);
	if (r < 0)
		return r;
	p->defer = m;
	p->defer_cap = (uint32_t)(p->defer_len / sizeof(struct shma_defer));
	return 0;
}

/*
 * Register at attach. Every block records its allocator's slot, and a
 * process must never allocate without one (nothing could give its blocks
 * back if it died). When the table is full, the slots of dead processes
 * are reclaimed (their blocks freed) and reused; only a table of live
 * processes is -EUSERS.
 */
static int register_user(struct shma_pool *p)
{
	for (int tries = 0, waits = 0; tries < 8; tries++) {
		unsigned u;
		int blocks, r = shma_claim_user(p, &u);
		if (r == -EBUSY && waits++ < 5000) {
			/* shma_pool_repair() in another process: usually milliseconds. */
			struct timespec ms = { 0, 1000000 };
			(void)mk_nanosleep(&ms);
			tries--;
			continue;
		}
		if (r == 0) {
			__atomic_store_n(&p->reg, (uint64_t)__atomic_load_n(&shma_fork_gen,
					 __ATOMIC_RELAXED) << 32 | u, __ATOMIC_RELEASE);
			return 0;
		}
		r = shma_reclaim_users(p, &blocks);
		if (r < 0)
			return r;
		if (r == 0) {
			shma_refuse("attach: all %u user slots are held by live processes: -EUSERS",
				    SHMA_MAX_USERS);
			return -EUSERS;
		}
		/* Freed some; others may take them first: try again. */
	}
	return -EUSERS;
}

/* Validate a root header read from an untrusted file of size fsize. */
static int root_check(const struct shma_root *rt, uint64_t fsize)
{
	if (memcmp(rt->magic, SHMA_ROOT_MAGIC, 8)) {
		shma_refuse("attach: the root file is not a libshm pool's: -EBADMSG");
		return -EBADMSG;
	}
	if (rt->version != SHMA_LAYOUT_VERSION) {
		/* 2: libshm 0.3; 3: 0.4 (free headers may name their holder). */
		shma_refuse("attach: pool layout %u, this libshm speaks %u: -EBADMSG",
			    (unsigned)rt->version, SHMA_LAYOUT_VERSION);
		return -EBADMSG;
	}
	if (!mk_is_pow2(rt->chunk_size) || rt->chunk_size < SHMA_CHUNK_SIZE_MIN ||
	    rt->chunk_size > SHMA_CHUNK_SIZE_MAX)
		return -EBADMSG;
	if (!rt->max_chunks || rt->max_chunks > default_max_chunks(rt->chunk_size))
		return -EBADMSG;
	if (rt->root_size != root_bytes(rt->max_chunks) || rt->root_size != fsize)
		return -EBADMSG;
	if (rt->backend > SHMA_BACKEND_SHM)
		return -EBADMSG;
	if (rt->class_max != MK_MIN((uint64_t)SHMA_CLASS_MAX, rt->chunk_size / 4) ||
	    rt->nclasses != classes_for(rt->class_max) || rt->nclasses > SHMA_NCLASSES)
		return -EBADMSG;
	for (unsigned c = 0; c < rt->nclasses; c++)
		if (rt->class_size[c] != shma_class_bytes(c))
			return -EBADMSG;
	return 0;
}

/* Map a validated root fd and finish the local part (registration is the caller's). */
static int pool_open_root(struct shma_pool *p, int fd, unsigned flags)
{
	struct shma_root hdr;
	struct stat st;
	void *m;
	int r;

	r = mk_fstat(fd, &st);
	if (r < 0)
		return r;
	if (!S_ISREG(st.st_mode) || st.st_uid != mk_geteuid()) {
		shma_refuse("pool root: not a regular file of uid %u: -EPERM", mk_geteuid());
		return -EPERM;
	}
	if ((uint64_t)st.st_size < sizeof(hdr))
		return -EBADMSG;
	r = (int)mk_pread_full(fd, &hdr, sizeof(hdr), 0);
	if (r < 0)
		return r;
	if ((size_t)r != sizeof(hdr))
		return -EBADMSG;
	r = root_check(&hdr, (uint64_t)st.st_size);
	if (r < 0)
		return r;
	r = shma_file_ok(&st, hdr.backend);
	if (r < 0)
		return r;
	p->rdonly = flags & SHMA_ATTACH_RDONLY;
	r = mk_mmap(NULL, hdr.root_size, PROT_READ | (p->rdonly ? 0 : PROT_WRITE),
		    MAP_SHARED, fd, 0, &m);
	if (r < 0)
		return r;
	p->root = m;
	p->root_len = hdr.root_size;
	p->root_fd = fd;
	/* Use the copy we validated, not the live bytes, for the geometry. */
	memcpy(p->name, hdr.name, SHMA_NAME_MAX);
	p->name[SHMA_NAME_MAX - 1] = '\0';
	r = pool_setup_local(p);
	if (r < 0)
		return r;
	if (p->chunk_size != hdr.chunk_size || p->max_chunks != hdr.max_chunks ||
	    p->nclasses != hdr.nclasses)
		return -EBADMSG;
	shma_tc_pool_init(p);
	return 0;
}

/* ---- create ------------------------------------------------------------------ */

static int create_root_file(struct shma_pool *p, const struct shma_pool_opts *o, uint64_t size)
{
	char fname[SHMA_FNAME_MAX];
	int fd, r;

	if (p->backend == SHMA_BACKEND_MEMFD) {
		mk_fmt(fname, sizeof(fname), "memkit-shm:%s", p->name);
		fd = mk_memfd_create(fname, MFD_ALLOW_SEALING);
		if (fd < 0)
			return fd;
	} else {
		const char *dir = o && o->dir ? o->dir : SHMA_DIR_DEFAULT;
		bool gen = !(o && o->name);

		p->dirfd = mk_openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, 0);
		if (p->dirfd < 0)
			return p->dirfd;
		for (int tries = 0;; tries++) {
			if (gen)
				mk_fmt(p->name, sizeof(p->name), "p%d-%08x", (int)mk_getpid(),
				       shma_make_nonce());
			r = root_name(p->name, fname, sizeof(fname));
			if (r < 0)
				return r;
			fd = mk_openat(p->dirfd, fname, O_RDWR | O_CREAT | O_EXCL, SHMA_FILE_MODE);
			if (fd >= 0)
				break;
			if (fd != -EEXIST || !gen || tries > 16)
				return fd;
		}
	}
	r = p->backend == SHMA_BACKEND_SHM ? shma_set_file_mode(fd) : 0;
	if (r == 0)
		r = mk_fallocate(fd, 0, 0, size);
	if (r == 0 && p->backend == SHMA_BACKEND_MEMFD)
		r = mk_add_seals(fd, F_SEAL_SHRINK | F_SEAL_GROW);
	if (r < 0) {
		if (p->backend == SHMA_BACKEND_SHM)
			mk_unlinkat(p->dirfd, fname, 0);
		mk_close(fd);
		return r;
	}
	return fd;
}

/* The first published layout of struct shma_pool_opts (libshm 0.1): every
 * later field is appended after flags, and this stays. */
#define SHMA_POOL_OPTS_SIZE_VER0 (offsetof(struct shma_pool_opts, flags) + sizeof(unsigned))

MK_EXPORT int shma_pool_create(const struct shma_pool_opts *uo, struct shma_pool **out)
{
	struct shma_pool_opts copy, *o = NULL;
	struct shma_pool *p;
	struct shma_root *rt;
	uint64_t cs = SHMA_CHUNK_SIZE_DEFAULT, rsize, maxc;
	void *m;
	int fd, r;

	if (!out)
		return -EINVAL;
	if (uo) {
		/* The extensible-struct convention (common/ext.h, libshm(3)). */
		r = mk_ext_in(&copy, sizeof(copy), uo, SHMA_POOL_OPTS_SIZE_VER0);
		if (r < 0)
			return r;
		o = &copy;
		if (o->backend > SHMA_BACKEND_SHM || o->flags)
			return -EINVAL;
		if (o->chunk_size)
			cs = o->chunk_size;
		if (o->name && !name_ok(o->name))
			return -EINVAL;
	}
	if (!mk_is_pow2(cs) || cs < SHMA_CHUNK_SIZE_MIN || cs > SHMA_CHUNK_SIZE_MAX)
		return -EINVAL;
	maxc = default_max_chunks(cs);
	if (o && o->max_chunks) {
		if (o->max_chunks > maxc)
			return -EINVAL;
		maxc = o->max_chunks;
	}
	rsize = root_bytes((uint32_t)maxc);

	r = pool_alloc_local(&p);
	if (r < 0)
		return r;
	p->backend = o ? o->backend : SHMA_BACKEND_MEMFD;
	p->creator = true;
	if (o && o->name)
		memcpy(p->name, o->name, strlen(o->name) + 1);
	else
		mk_fmt(p->name, sizeof(p->name), "p%d-%08x", (int)mk_getpid(), shma_make_nonce());
	fd = create_root_file(p, o, rsize);
	if (fd < 0) {
		pool_unmap_all(p);
		return fd;
	}
	r = mk_mmap(NULL, rsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0, &m);
	if (r < 0)
		goto fail;
	rt = m;
	rt->version = SHMA_LAYOUT_VERSION;
	rt->backend = p->backend;
	rt->root_size = rsize;
	rt->chunk_size = cs;
	rt->max_chunks = (uint32_t)maxc;
	rt->class_max = MK_MIN((uint64_t)SHMA_CLASS_MAX, cs / 4);
	rt->nclasses = classes_for(rt->class_max);
	for (unsigned c = 0; c < rt->nclasses; c++)
		rt->class_size[c] = (uint32_t)shma_class_bytes(c);
	rt->pool_id = (uint64_t)shma_make_nonce() << 32 | shma_make_nonce();
	memcpy(rt->name, p->name, SHMA_NAME_MAX);
	rt->cur = 0;
	__atomic_store_n(&rt->hwm, 0, __ATOMIC_RELAXED);
	/* The magic last: an attacher never sees a half-initialised root. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(rt->magic, SHMA_ROOT_MAGIC, 8);
	mk_munmap(m, rsize);

	r = pool_open_root(p, fd, 0);
	if (r == 0)
		r = register_user(p);
	if (r < 0) {
		if (p->root_fd >= 0)
			fd = -1;  /* owned by p now */
		goto fail;
	}
	*out = p;
	return 0;
fail:
	if (p->backend == SHMA_BACKEND_SHM) {
		char fname[SHMA_FNAME_MAX];
		if (root_name(p->name, fname, sizeof(fname)) == 0)
			mk_unlinkat(p->dirfd, fname, 0);
	}
	if (fd >= 0)
		mk_close(fd);
	pool_unmap_all(p);
	return r;
}

MK_EXPORT int shma_pool_attach(const char *dir, const char *name, unsigned flags,
			       struct shma_pool **out)
{
	struct shma_pool *p;
	char fname[SHMA_FNAME_MAX];
	int fd, r;

	if (!out || !name_ok(name) || (flags & ~SHMA_ATTACH_RDONLY))
		return -EINVAL;
	r = pool_alloc_local(&p);
	if (r < 0)
		return r;
	p->dirfd = mk_openat(AT_FDCWD, dir ? dir : SHMA_DIR_DEFAULT, O_RDONLY | O_DIRECTORY, 0);
	if (p->dirfd < 0) {
		r = p->dirfd;
		p->dirfd = -1;
		pool_unmap_all(p);
		return r;
	}
	root_name(name, fname, sizeof(fname));
	fd = shma_open_pool_file(p->dirfd, fname, flags & SHMA_ATTACH_RDONLY);
	if (fd < 0) {
		pool_unmap_all(p);
		return fd;
	}
	r = pool_open_root(p, fd, flags);
	if (r == 0 && (p->backend != SHMA_BACKEND_SHM || strcmp(p->name, name)))
		r = -EBADMSG;
	if (r == 0 && !p->rdonly)
		r = register_user(p);
	if (r < 0) {
		if (p->root_fd < 0)
			mk_close(fd);
		shma_pool_free(p);
		return r;
	}
	*out = p;
	return 0;
}

MK_EXPORT int shma_pool_attach_fds(const int *fds, size_t n, unsigned flags,
				   struct shma_pool **out)
{
	struct shma_pool *p;
	int fd, r;

	if (!out || !fds || !n || (flags & ~SHMA_ATTACH_RDONLY))
		return -EINVAL;
	r = pool_alloc_local(&p);
	if (r < 0)
		return r;
	fd = mk_dup_cloexec(fds[0]);
	if (fd < 0) {
		r = fd;
		pool_unmap_all(p);
		return r;
	}
	r = pool_open_root(p, fd, flags);
	if (r < 0) {
		if (p->root_fd < 0)
			mk_close(fd);
		shma_pool_free(p);
		return r;
	}
	for (size_t i = 1; i < n; i++) {
		r = shma_pool_import_fd(p, fds[i]);
		if (r < 0) {
			shma_pool_free(p);
			return r;
		}
	}
	/* Last: registering may reclaim dead users, which needs every chunk. */
	r = p->rdonly ? 0 : register_user(p);
	if (r < 0) {
		shma_pool_free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* ---- the rest of the pool API ------------------------------------------------------ */

MK_EXPORT void shma_pool_free(struct shma_pool *p)
{
	unsigned own;

	if (!p)
		return;
	/* Only a registration this process made: in a fork()ed child that never
	 * allocated, the slot is still the parent's, and stays so. */
	own = p->root && !p->rdonly ? shma_own_slot(p) : SHMA_OWNER_NONE;
	if (own != SHMA_OWNER_NONE) {
		/* Every thread's cached blocks back on the lists while we are registered. */
		shma_tc_close(p);
		shma_disown(p, own);
		shma_release_user(p, own);
	}
	pool_unmap_all(p);
}

MK_EXPORT int shma_pool_unlink(struct shma_pool *p)
{
	char fname[SHMA_FNAME_MAX];
	int r = 0;

	if (!p)
		return -EINVAL;
	if (p->backend != SHMA_BACKEND_SHM)
		return 0;
	if (p->rdonly)
		return -EPERM;
	for (uint32_t i = 0; i < p->max_chunks; i++) {
		uint64_t s = __atomic_load_n(&p->root->slots[i].state, __ATOMIC_ACQUIRE);
		if (shma_s_st(s) == SHMA_SLOT_FREE)
			continue;
		if (shma_chunk_name(p, i, shma_s_nonce(s), fname, sizeof(fname)) == 0)
			mk_unlinkat(p->dirfd, fname, 0);
	}
	root_name(p->name, fname, sizeof(fname));
	r = mk_unlinkat(p->dirfd, fname, 0);
	return r == -ENOENT ? 0 : r;
}

/* Is ent "memkit-shm.NAME" or "memkit-shm.NAME.<digits>.<8 hex>"? */
static bool file_of_pool(const char *ent, const char *name)
{
	size_t pl = strlen(SHMA_FILE_PREFIX), nl = strlen(name);
	const char *q;
	size_t nd = 0, nh = 0;

	if (strncmp(ent, SHMA_FILE_PREFIX, pl) || strncmp(ent + pl, name, nl))
		return false;
	q = ent + pl + nl;
	if (!*q)
		return true;
	if (*q++ != '.')
		return false;
	for (; *q >= '0' && *q <= '9'; q++)
		nd++;
	if (!nd || *q++ != '.')
		return false;
	for (; (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'); q++)
		nh++;
	return nh == 8 && !*q;
}

MK_EXPORT int shma_pool_remove(const char *dir, const char *name)
{
	char buf[4096];
	int dfd, found = 0, r = 0;

	if (!name_ok(name))
		return -EINVAL;
	dfd = mk_openat(AT_FDCWD, dir ? dir : SHMA_DIR_DEFAULT, O_RDONLY | O_DIRECTORY, 0);
	if (dfd < 0)
		return dfd;
	/* getdents64 directly: no opendir (malloc) in libshm. Restart the scan
	 * after each batch of unlinks so no entry is skipped. */
	for (;;) {
		ssize_t n = mk_getdents64(dfd, buf, sizeof(buf));
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type;
				 char name[]; } *d = (void *)(buf + off);
			if (file_of_pool(d->name, name)) {
				int u = mk_unlinkat(dfd, d->name, 0);
				if (u == 0)
					found++;
				else if (u != -ENOENT && !r)
					r = u;
			}
			off += d->reclen;
		}
	}
	mk_close(dfd);
	if (r < 0)
		return r;
	return found ? 0 : -ENOENT;
}

MK_EXPORT const char *shma_pool_name(const struct shma_pool *p)
{
	return p ? p->name : "";
}

MK_EXPORT int shma_pool_fds(struct shma_pool *p, int *fds, size_t cap)
{
	size_t n = 1;

	if (!p || (!fds && cap))
		return -EINVAL;
	for (uint32_t i = 0; i < p->max_chunks; i++)
		if (__atomic_load_n(&p->loc[i].fd, __ATOMIC_ACQUIRE) >= 0)
			n++;
	if (n > cap || n > INT32_MAX)
		return -ENOBUFS;
	n = 0;
	fds[n++] = p->root_fd;
	for (uint32_t i = 0; i < p->max_chunks && n < cap; i++) {
		int fd = __atomic_load_n(&p->loc[i].fd, __ATOMIC_ACQUIRE);
		if (fd >= 0)
			fds[n++] = fd;
	}
	return (int)n;
}
