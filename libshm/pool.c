/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pools: creating and attaching, chunk files, mapping chunks on demand.
 * Nothing here allocates with malloc: per-process tables are mmap()ed, so
 * the chunk-growing path called from shma_alloc() stays async-signal-safe.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/fmt.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

#define CHUNK_HDR_PAGE 4096u

/* The mode of every file of a SHM pool; anything else is not ours (-EPERM). */
#define SHMA_FILE_MODE 0600

unsigned shma_fork_gen;

static void fork_child(void)
{
	__atomic_add_fetch(&shma_fork_gen, 1, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void shma_init(void)
{
	/* Cannot fail but for ENOMEM; a fork()ed child then keeps using its
	 * parent's registration, as before this handler existed. */
	pthread_atfork(NULL, NULL, fork_child);
}

/*
 * This process's start time, read afresh on every call (attach, a new
 * chunk, re-registration after fork: never a hot path). A cached value
 * would be the parent's in a fork()ed child, which would then register
 * under a start time that is not its own and be judged dead at once.
 * Async-signal-safe. 0 if /proc cannot tell (then the pid alone counts).
 */
static uint64_t self_start(void)
{
	uint64_t t = 0;

	if (mk_proc_start_time(mk_getpid(), &t) < 0)
		t = 0;
	return t;
}

bool shma_pid_alive(int64_t pid, uint64_t start)
{
	uint64_t t;

	if (pid <= 0 || pid > INT32_MAX)
		return false;
	if (mk_proc_start_time((pid_t)pid, &t) < 0)
		return false;
	/* start 0: the process is still registering; its pid is all we know. */
	return !start || t == start;
}

/* Is the holder of a user slot alive (a registrant, or a reclaimer: pid < 0)? */
bool shma_user_alive(int64_t pid, uint64_t start)
{
	if (pid < 0)
		return pid > -(int64_t)INT32_MAX && shma_pid_alive(-pid, 0);
	return shma_pid_alive(pid, start);
}

/* fchmod, errno untouched: files get exactly SHMA_FILE_MODE whatever the umask. */
static int set_file_mode(int fd)
{
	int saved = errno, r = fchmod(fd, SHMA_FILE_MODE) < 0 ? -errno : 0;

	errno = saved;
	return r;
}

/*
 * Open a file of a SHM pool by its fixed name: never blocking (a FIFO
 * planted under a pool's name would hang a read-only open), never
 * following a link (-ELOOP), never acquiring a controlling terminal.
 * A socket cannot be opened (ENXIO): like every non-regular file, -EPERM.
 */
static int open_pool_file(int dirfd, const char *fname, bool rdonly)
{
	int fd = mk_openat(dirfd, fname, (rdonly ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_NOCTTY, 0);

	return fd == -ENXIO ? -EPERM : fd;
}

/* A pool file must be a regular file of ours, and (SHM) of our mode. */
static int file_ok(const struct stat *st, unsigned backend)
{
	if (!S_ISREG(st->st_mode) || st->st_uid != geteuid())
		return -EPERM;
	if (backend == SHMA_BACKEND_SHM && (st->st_mode & 07777) != SHMA_FILE_MODE)
		return -EPERM;
	return 0;
}

/* A process-local spinlock for the slow paths (mapping, growing). Signals
 * are blocked while it is held, so a handler on this thread can never spin
 * on a lock its own thread holds. */
void shma_lock(struct shma_pool *p, void *oldmask)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, oldmask);
	while (__atomic_exchange_n(&p->lock, 1, __ATOMIC_ACQUIRE))
		mk_cpu_relax();
}

void shma_unlock(struct shma_pool *p, const void *oldmask)
{
	__atomic_store_n(&p->lock, 0, __ATOMIC_RELEASE);
	pthread_sigmask(SIG_SETMASK, oldmask, NULL);
}

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

int shma_chunk_name(const struct shma_pool *p, uint32_t idx, uint32_t nonce, char *buf, size_t len)
{
	int n = mk_fmt(buf, len, SHMA_FILE_PREFIX "%s.%u.%08x", p->name, idx, nonce);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int root_name(const char *name, char *buf, size_t len)
{
	int n = mk_fmt(buf, len, SHMA_FILE_PREFIX "%s", name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static uint32_t make_nonce(void)
{
	uint32_t v = 0;

	if (syscall(SYS_getrandom, &v, sizeof(v), 0x1 /* GRND_NONBLOCK */) != sizeof(v))
		v = (uint32_t)(mk_now_ns() * 0x9e3779b97f4a7c15ull >> 32) ^ (uint32_t)mk_getpid();
	return v;
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

/* ---- pins: dedicated mappings outlive the walks that read them ------------------- */

/* Unmap what waited for the pins, if none is left (lock held). */
static void drain_locked(struct shma_pool *p)
{
	if (__atomic_load_n(&p->pins, __ATOMIC_SEQ_CST))
		return;
	for (uint32_t i = 0; i < p->ndefer; i++)
		mk_munmap(p->defer[i].addr, p->defer[i].len);
	__atomic_store_n(&p->ndefer, 0, __ATOMIC_RELEASE);
}

void shma_pin(struct shma_pool *p)
{
	__atomic_add_fetch(&p->pins, 1, __ATOMIC_SEQ_CST);
}

void shma_unpin(struct shma_pool *p)
{
	sigset_t old;

	if (__atomic_sub_fetch(&p->pins, 1, __ATOMIC_SEQ_CST) ||
	    !__atomic_load_n(&p->ndefer, __ATOMIC_ACQUIRE))
		return;
	shma_lock(p, &old);
	drain_locked(p);
	shma_unlock(p, &old);
}

/*
 * Unmap a dedicated chunk's old mapping (lock held), which no loc[] entry
 * names any more (stored NULL, seq_cst, before this). A walker pins before
 * it reads loc[].addr, so either it saw the NULL or we see its pin: then
 * zero pages take the mapping's place (the chunk's file is let go now, and
 * a read there cannot fault) and the range is unmapped with the last pin.
 * With the table full the range stays reserved (address space only).
 */
static void unmap_dedicated(struct shma_pool *p, char *addr, uint64_t len)
{
	void *m;

	if (!__atomic_load_n(&p->pins, __ATOMIC_SEQ_CST)) {
		mk_munmap(addr, len);
		drain_locked(p);
		return;
	}
	if (mk_mmap(addr, len, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0, &m) < 0) {
		mk_munmap(addr, len);   /* cannot happen (same range); never keep the file */
		return;
	}
	if (p->ndefer < p->defer_cap) {
		p->defer[p->ndefer].addr = addr;
		p->defer[p->ndefer].len = len;
		__atomic_store_n(&p->ndefer, p->ndefer + 1, __ATOMIC_RELEASE);
	}
}

static bool is_dedicated_addr(const struct shma_pool *p, const char *a)
{
	return a && (a < p->resv || a >= p->resv + p->resv_len);
}

/* Claim a free user slot for this process (lock-free, async-signal-safe). */
static int claim_user(struct shma_pool *p, unsigned *out)
{
	int64_t pid = mk_getpid();
	uint64_t start = self_start();

	for (unsigned i = 0; i < SHMA_MAX_USERS; i++) {
		struct shma_user *u = &p->root->users[i];
		int64_t zero = 0;
		if (__atomic_load_n(&u->pid, __ATOMIC_RELAXED))
			continue;
		if (__atomic_compare_exchange_n(&u->pid, &zero, pid, false,
						__ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
			__atomic_store_n(&u->start, start, __ATOMIC_RELEASE);
			/* Registered first, then look: a repair either sees us or we see it. */
			if (shma_repair_running(p)) {
				__atomic_store_n(&u->start, 0, __ATOMIC_RELAXED);
				__atomic_store_n(&u->pid, 0, __ATOMIC_RELEASE);
				return -EBUSY;
			}
			*out = i;
			return 0;
		}
	}
	return -EUSERS;
}

bool shma_repair_running(const struct shma_pool *p)
{
	const struct shma_user *r = &p->root->users[SHMA_REPAIR_SLOT];
	int64_t pid = __atomic_load_n(&r->pid, __ATOMIC_SEQ_CST);

	return pid && pid != mk_getpid() &&
	       shma_pid_alive(pid, __atomic_load_n(&r->start, __ATOMIC_ACQUIRE));
}

static void release_user(struct shma_pool *p, unsigned i)
{
	__atomic_store_n(&p->root->users[i].start, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->root->users[i].pid, 0, __ATOMIC_RELEASE);
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
		int blocks, r = claim_user(p, &u);
		if (r == -EBUSY && waits++ < 5000) {
			/* shma_pool_repair() in another process: usually milliseconds. */
			struct timespec ms = { 0, 1000000 };
			nanosleep(&ms, NULL);
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
		if (r == 0)
			return -EUSERS;
		/* Freed some; others may take them first: try again. */
	}
	return -EUSERS;
}

/*
 * A fork()ed child's first allocation with a pool it inherited: register
 * this process (no reclaim here: this runs inside shma_alloc, perhaps in a
 * signal handler). Racing threads of the child agree on one registration.
 */
int shma_reregister(struct shma_pool *p, uint64_t old, unsigned *owner)
{
	for (;;) {
		uint32_t gen = __atomic_load_n(&shma_fork_gen, __ATOMIC_RELAXED);
		unsigned u;
		int r;

		if ((uint32_t)(old >> 32) == gen) {
			*owner = (unsigned)old & 0xff;
			return 0;
		}
		r = claim_user(p, &u);
		if (r < 0)
			return r;
		if (__atomic_compare_exchange_n(&p->reg, &old, (uint64_t)gen << 32 | u, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			*owner = u;
			return 0;
		}
		release_user(p, u);     /* another thread won; old is its value now */
	}
}

/* Validate a root header read from an untrusted file of size fsize. */
static int root_check(const struct shma_root *rt, uint64_t fsize)
{
	if (memcmp(rt->magic, SHMA_ROOT_MAGIC, 8) || rt->version != SHMA_LAYOUT_VERSION)
		return -EBADMSG;
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
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
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
	r = file_ok(&st, hdr.backend);
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
	return 0;
}

/* ---- create ------------------------------------------------------------------ */

static int create_root_file(struct shma_pool *p, const struct shma_pool_opts *o, uint64_t size)
{
	char fname[128];
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
				       make_nonce());
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
	r = p->backend == SHMA_BACKEND_SHM ? set_file_mode(fd) : 0;
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

MK_EXPORT int shma_pool_create(const struct shma_pool_opts *o, struct shma_pool **out)
{
	struct shma_pool *p;
	struct shma_root *rt;
	uint64_t cs = SHMA_CHUNK_SIZE_DEFAULT, rsize, maxc;
	void *m;
	int fd, r;

	if (!out)
		return -EINVAL;
	if (o) {
		if (o->size < sizeof(*o) || o->backend > SHMA_BACKEND_SHM || o->flags)
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
		mk_fmt(p->name, sizeof(p->name), "p%d-%08x", (int)mk_getpid(), make_nonce());
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
	rt->pool_id = (uint64_t)make_nonce() << 32 | make_nonce();
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
		char fname[128];
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
	char fname[128];
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
	fd = open_pool_file(p->dirfd, fname, flags & SHMA_ATTACH_RDONLY);
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
	fd = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		r = -errno;
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

/* ---- chunks ------------------------------------------------------------------- */

/* Check an opened chunk file against its slot: size and header. */
static int chunk_check(struct shma_pool *p, int fd, uint32_t idx, unsigned gen, uint64_t size)
{
	struct shma_chunk_hdr h;
	struct stat st;
	int r = mk_fstat(fd, &st);

	if (r < 0)
		return r;
	r = file_ok(&st, p->backend);
	if (r < 0)
		return r;
	if ((uint64_t)st.st_size != size)
		return -EBADMSG;
	if (mk_pread_full(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -EBADMSG;
	if (memcmp(h.magic, SHMA_CHUNK_MAGIC, 8) || h.pool_id != p->root->pool_id ||
	    h.index != idx || h.gen != gen || h.size != size)
		return -EBADMSG;
	return 0;
}

static bool chunk_size_ok(const struct shma_pool *p, unsigned kind, uint64_t size)
{
	if (kind == SHMA_KIND_REGULAR)
		return size == p->chunk_size;
	return size > CHUNK_HDR_PAGE && size <= (1ull << 32) + CHUNK_HDR_PAGE &&
	       mk_is_aligned(size, mk_page_size());
}

/* Map fd as slot idx (caller holds the lock). */
static int map_locked(struct shma_pool *p, uint32_t idx, unsigned gen, unsigned kind,
		      uint64_t size, int fd)
{
	struct shma_local *l = &p->loc[idx];
	int prot = PROT_READ | (p->rdonly ? 0 : PROT_WRITE);
	uint64_t old_len;
	char *old;
	void *m;
	int r;

	if (kind == SHMA_KIND_REGULAR)
		r = mk_mmap(p->resv + ((uint64_t)idx << p->chunk_shift), size, prot,
			    MAP_SHARED | MAP_FIXED, fd, 0, &m);
	else
		r = mk_mmap(NULL, size, prot, MAP_SHARED, fd, 0, &m);
	if (r < 0)
		return r;
	/* addr NULL while gen changes: shma_map_slot never pairs an old addr
	 * with the new gen (it reads addr, gen, addr). */
	old = l->addr;
	old_len = l->len;
	__atomic_store_n(&l->addr, NULL, __ATOMIC_SEQ_CST);
	if (l->fd >= 0 && l->fd != fd)
		mk_close(l->fd);
	l->fd = fd;
	l->len = size;
	__atomic_store_n(&l->gen, gen, __ATOMIC_RELEASE);
	__atomic_store_n(&l->addr, (char *)m, __ATOMIC_RELEASE);
	if (is_dedicated_addr(p, old) && old != (char *)m)
		unmap_dedicated(p, old, old_len);
	return 0;
}

/* The slow path of shma_map_slot: open (SHM) and map a live slot. */
static int map_slow(struct shma_pool *p, uint32_t idx, uint64_t state, char **base)
{
	struct shma_slot *s = &p->root->slots[idx];
	struct shma_local *l = &p->loc[idx];
	unsigned gen = shma_s_gen(state), kind = shma_s_kind(state);
	uint64_t size = __atomic_load_n(&s->size, __ATOMIC_ACQUIRE);
	sigset_t old;
	int fd = -1, r;

	if (kind > SHMA_KIND_DEDICATED || !chunk_size_ok(p, kind, size))
		return -EBADMSG;
	shma_lock(p, &old);
	if (l->addr && l->gen == gen) {
		*base = l->addr;
		shma_unlock(p, &old);
		return 0;
	}
	if (l->fd >= 0 && l->gen == gen && !l->addr) {
		fd = l->fd;                 /* imported, not yet mapped */
	} else if (p->backend == SHMA_BACKEND_SHM) {
		char fname[128];
		r = shma_chunk_name(p, idx, shma_s_nonce(state), fname, sizeof(fname));
		if (r == 0) {
			fd = open_pool_file(p->dirfd, fname, p->rdonly);
			r = fd < 0 ? fd : chunk_check(p, fd, idx, gen, size);
		}
		if (r < 0) {
			if (fd >= 0)
				mk_close(fd);
			shma_unlock(p, &old);
			return r == -ENOENT ? -ESTALE : r;
		}
	} else {
		shma_unlock(p, &old);
		return -ENXIO;              /* a memfd chunk nobody sent us */
	}
	r = map_locked(p, idx, gen, kind, size, fd);
	if (r < 0) {
		if (fd != l->fd)
			mk_close(fd);
	} else {
		*base = l->addr;
	}
	shma_unlock(p, &old);
	return r;
}

int shma_map_slot(struct shma_pool *p, uint32_t idx, uint64_t state, char **base)
{
	struct shma_local *l = &p->loc[idx];
	char *a = __atomic_load_n(&l->addr, __ATOMIC_ACQUIRE);

	if (mk_likely(a && __atomic_load_n(&l->gen, __ATOMIC_ACQUIRE) == shma_s_gen(state) &&
		      __atomic_load_n(&l->addr, __ATOMIC_RELAXED) == a)) {
		*base = a;
		return 0;
	}
	return map_slow(p, idx, state, base);
}

MK_EXPORT int shma_pool_import_fd(struct shma_pool *p, int fd)
{
	struct shma_chunk_hdr h;
	uint64_t state;
	sigset_t old;
	int nfd, r;

	if (!p || fd < 0)
		return -EINVAL;
	if (mk_pread_full(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -EBADMSG;
	if (h.index >= p->max_chunks)
		return -EBADMSG;
	state = __atomic_load_n(&p->root->slots[h.index].state, __ATOMIC_ACQUIRE);
	if (shma_s_st(state) != SHMA_SLOT_LIVE || shma_s_gen(state) != h.gen)
		return -ESTALE;
	r = chunk_check(p, fd, h.index, h.gen, p->root->slots[h.index].size);
	if (r < 0)
		return r;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -errno;
	shma_lock(p, &old);
	if (p->loc[h.index].fd >= 0 && p->loc[h.index].gen == h.gen) {
		mk_close(nfd);              /* already have it */
	} else {
		struct shma_local *l = &p->loc[h.index];
		char *a = l->addr;
		__atomic_store_n(&l->addr, NULL, __ATOMIC_SEQ_CST);
		if (is_dedicated_addr(p, a))
			unmap_dedicated(p, a, l->len);
		if (l->fd >= 0)
			mk_close(l->fd);
		l->fd = nfd;
		l->gen = h.gen;
	}
	shma_unlock(p, &old);
	return 0;
}

/*
 * Record us as the owner of a slot we just moved to CREATING: pid 0 first
 * ("not recorded yet", which reclaim leaves alone), then our start time,
 * then our pid. Never a moment where a dead process's pid, or our pid with
 * someone else's start time, would let reclaim free the slot under us.
 */
static void set_slot_owner(struct shma_slot *sl, uint64_t start)
{
	__atomic_store_n(&sl->owner_pid, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&sl->owner_start, start, __ATOMIC_SEQ_CST);
	__atomic_store_n(&sl->owner_pid, (int64_t)mk_getpid(), __ATOMIC_SEQ_CST);
}

/* Claim a free slot, create and reserve its file, map it, publish it. */
int shma_add_chunk(struct shma_pool *p, unsigned kind, uint64_t size, uint32_t *out)
{
	struct shma_root *rt = p->root;
	struct shma_chunk_hdr h;
	char fname[128];
	uint64_t state = 0, newstate = 0, start;
	pid_t pid;
	uint32_t idx;
	sigset_t old;
	int fd = -1, r;

	if (p->rdonly)
		return -EPERM;
	if (p->backend == SHMA_BACKEND_MEMFD && !p->creator)
		return -ENOSPC;
	start = self_start();
	pid = mk_getpid();
	/*
	 * The claim names its claimer in the state word itself (nonce = our pid,
	 * kind flagged CLAIMING) until the owner fields are written: a claimer
	 * killed at any point is recognised by reclaim, and a stale owner_pid
	 * left from the slot's last use is never taken for ours.
	 */
	/* Dedicated chunks go to slots that wrapped first (see shma_dedicated_gen). */
	for (int pass = kind == SHMA_KIND_DEDICATED ? 0 : 1; pass < 2; pass++) {
		for (idx = 0; idx < p->max_chunks; idx++) {
			struct shma_slot *sl = &rt->slots[idx];
			uint64_t ep;
			unsigned gen;

			state = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
			if (shma_s_st(state) != SHMA_SLOT_FREE)
				continue;
			ep = __atomic_load_n(&sl->epoch, __ATOMIC_ACQUIRE);
			gen = shma_s_gen(state);
			if (pass == 0 && !ep && gen != 0xffff)
				continue;
			if (kind == SHMA_KIND_REGULAR && (ep || gen == 0xffff))
				continue;       /* wrapped: dedicated chunks only */
			if (gen == 0xffff) {
				/* Wrap: a new epoch first (a claimer that dies here only
				 * makes the next one skip an epoch). */
				if (ep >= SHMA_EPOCH_MAX)
					continue;       /* retired for good */
				__atomic_compare_exchange_n(&sl->epoch, &ep, ep + 1, false,
							    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
				gen = 0;
			}
			newstate = shma_slot_word((uint32_t)pid, gen + 1, SHMA_SLOT_CREATING,
						  kind | SHMA_KIND_CLAIMING);
			if (__atomic_compare_exchange_n(&sl->state, &state, newstate, false,
							__ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
				goto claimed;
		}
	}
	return -ENOSPC;
claimed:
	{
		uint32_t hwm = __atomic_load_n(&rt->hwm, __ATOMIC_RELAXED);
		while (hwm <= idx && !__atomic_compare_exchange_n(&rt->hwm, &hwm, idx + 1, true,
								  __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			;
	}
	set_slot_owner(&rt->slots[idx], start);
	newstate = shma_slot_word(make_nonce(), shma_s_gen(newstate), SHMA_SLOT_CREATING, kind);
	__atomic_store_n(&rt->slots[idx].state, newstate, __ATOMIC_SEQ_CST);
	rt->slots[idx].size = size;
	__atomic_store_n(&rt->slots[idx].bump, shma_bump_word(shma_s_gen(newstate), SHMA_CHUNK_DATA, 0),
			 __ATOMIC_RELEASE);

	if (p->backend == SHMA_BACKEND_SHM) {
		for (int tries = 0;; tries++) {
			uint64_t prev = newstate;
			r = shma_chunk_name(p, idx, shma_s_nonce(newstate), fname, sizeof(fname));
			if (r < 0)
				goto undo;
			fd = mk_openat(p->dirfd, fname, O_RDWR | O_CREAT | O_EXCL, SHMA_FILE_MODE);
			if (fd >= 0)
				break;
			if (fd != -EEXIST || tries > 16) {
				r = fd;
				goto undo;
			}
			/* A stale file of that name: pick another nonce. */
			newstate = shma_slot_word(make_nonce(), shma_s_gen(prev), SHMA_SLOT_CREATING, kind);
			__atomic_store_n(&rt->slots[idx].state, newstate, __ATOMIC_RELEASE);
		}
	} else {
		mk_fmt(fname, sizeof(fname), "memkit-shm:%s.%u", p->name, idx);
		fd = mk_memfd_create(fname, MFD_ALLOW_SEALING);
		if (fd < 0) {
			r = fd;
			goto undo;
		}
	}
	/* Reserve every byte now: a full tmpfs fails here, not as SIGBUS later. */
	r = p->backend == SHMA_BACKEND_SHM ? set_file_mode(fd) : 0;
	if (r == 0)
		r = mk_fallocate(fd, 0, 0, size);
	if (r == 0 && p->backend == SHMA_BACKEND_MEMFD)
		r = mk_add_seals(fd, F_SEAL_SHRINK | F_SEAL_GROW);
	if (r < 0)
		goto undo_file;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SHMA_CHUNK_MAGIC, 8);
	h.pool_id = rt->pool_id;
	h.index = idx;
	h.gen = shma_s_gen(newstate);
	h.size = size;
	r = (int)mk_pwrite_full(fd, &h, sizeof(h), 0);
	if (r < 0)
		goto undo_file;
	shma_lock(p, &old);
	r = map_locked(p, idx, shma_s_gen(newstate), kind, size, fd);
	shma_unlock(p, &old);
	if (r < 0)
		goto undo_file;
	__atomic_store_n(&rt->slots[idx].state,
			 shma_slot_word(shma_s_nonce(newstate), shma_s_gen(newstate),
					SHMA_SLOT_LIVE, kind), __ATOMIC_RELEASE);
	*out = idx;
	return 0;
undo_file:
	if (p->backend == SHMA_BACKEND_SHM)
		mk_unlinkat(p->dirfd, fname, 0);
	mk_close(fd);
undo:
	__atomic_store_n(&rt->slots[idx].state,
			 shma_slot_word(0, shma_s_gen(newstate), SHMA_SLOT_FREE, 0),
			 __ATOMIC_RELEASE);
	return r == -ENOMEM || r == -EFBIG || r == -EDQUOT ? -ENOSPC : r;
}

/*
 * Giving a slot back, first step: out of LIVE (CREATING, with us as its
 * owner), before its mapping here and its file go. A mapper that finds a
 * slot still LIVE yet cannot map it (bump_in, a walk's map_live) takes it
 * for a damaged chunk, never for a release it raced with. If we die after
 * this, shma_pool_reclaim() finishes (a CREATING slot of a dead process).
 * A CAS: of two processes finishing the same release, one does it (true).
 */
static bool slot_leave_live(struct shma_pool *p, uint32_t idx, uint64_t state)
{
	struct shma_slot *sl = &p->root->slots[idx];

	/* Still LIVE here, so reclaim does not look at the owner yet. */
	set_slot_owner(sl, self_start());
	return __atomic_compare_exchange_n(&sl->state, &state,
					   shma_slot_word(shma_s_nonce(state), shma_s_gen(state),
							  SHMA_SLOT_CREATING, shma_s_kind(state)),
					   false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

/* The end of giving a slot back (out of LIVE already): its file goes, then the slot is FREE. */
static void slot_give_back(struct shma_pool *p, uint32_t idx, uint64_t state)
{
	struct shma_slot *sl = &p->root->slots[idx];
	char fname[128];

	if (p->backend == SHMA_BACKEND_SHM &&
	    shma_chunk_name(p, idx, shma_s_nonce(state), fname, sizeof(fname)) == 0)
		mk_unlinkat(p->dirfd, fname, 0);
	/* Publish last: once FREE the slot (and a new file name) may be reused.
	 * owner_pid stays: the next claimer marks its claim in the state word. */
	__atomic_store_n(&sl->state, shma_slot_word(0, shma_s_gen(state), SHMA_SLOT_FREE, 0),
			 __ATOMIC_RELEASE);
}

/* Give a dedicated chunk back (its block was just freed by us). */
void shma_release_chunk(struct shma_pool *p, uint32_t idx, uint64_t state)
{
	struct shma_local *l = &p->loc[idx];
	bool mine = slot_leave_live(p, idx, state);
	sigset_t old;

	shma_lock(p, &old);
	if (l->addr && l->gen == shma_s_gen(state)) {
		char *a = l->addr;
		__atomic_store_n(&l->addr, NULL, __ATOMIC_SEQ_CST);
		unmap_dedicated(p, a, l->len);
		if (l->fd >= 0)
			mk_close(l->fd);
		l->fd = -1;
	}
	shma_unlock(p, &old);
	if (mine)
		slot_give_back(p, idx, state);
}

/* Give a regular chunk back (shma_pool_trim took all its blocks off the lists). */
void shma_drop_regular(struct shma_pool *p, uint32_t idx, uint64_t state)
{
	struct shma_local *l = &p->loc[idx];
	bool mine = slot_leave_live(p, idx, state);
	sigset_t old;
	void *m;

	shma_lock(p, &old);
	/* Only this generation's: never a mapping of the chunk made anew since. */
	if (l->gen == shma_s_gen(state)) {
		if (l->addr) {
			/* Zero pages, not a hole: a pop racing in this process may still
			 * read a stale header here (its CAS then fails on the tag). */
			mk_mmap(l->addr, p->chunk_size, PROT_READ,
				MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &m);
			__atomic_store_n(&l->addr, NULL, __ATOMIC_RELEASE);
		}
		if (l->fd >= 0)
			mk_close(l->fd);
		l->fd = -1;
	}
	shma_unlock(p, &old);
	if (mine)
		slot_give_back(p, idx, state);
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
		shma_disown(p, own);
		release_user(p, own);
	}
	pool_unmap_all(p);
}

MK_EXPORT int shma_pool_unlink(struct shma_pool *p)
{
	char fname[128];
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
		long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
		if (n < 0) {
			r = -errno;
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
