/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The chunk table: chunk files (naming, creating, checking), mapping slots
 * on demand, pins, adding, releasing and dropping chunks. Calls only
 * users.c below it. Nothing here allocates with malloc: per-process tables
 * are mmap()ed, so the chunk-growing path called from shma_alloc() stays
 * async-signal-safe.
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
#include <time.h>
#include <unistd.h>

#include "common/fmt.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

#define CHUNK_HDR_PAGE 4096u

/* Files get exactly SHMA_FILE_MODE whatever the umask. */
int shma_set_file_mode(int fd)
{
	return mk_fchmod(fd, SHMA_FILE_MODE);
}

/*
 * Open a file of a SHM pool by its fixed name: never blocking (a FIFO
 * planted under a pool's name would hang a read-only open), never
 * following a link (-ELOOP), never acquiring a controlling terminal.
 * A socket cannot be opened (ENXIO): like every non-regular file, -EPERM.
 */
int shma_open_pool_file(int dirfd, const char *fname, bool rdonly)
{
	int fd = mk_openat(dirfd, fname, (rdonly ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_NOCTTY, 0);

	if (fd == -ELOOP)
		shma_refuse("%s: a symbolic link: -ELOOP", fname);
	if (fd == -ENXIO)
		shma_refuse("%s: a socket or device, not a pool file: -EPERM", fname);
	return fd == -ENXIO ? -EPERM : fd;
}

/* A pool file must be a regular file of ours, and (SHM) of our mode. */
int shma_file_ok(const struct stat *st, unsigned backend)
{
	if (!S_ISREG(st->st_mode)) {
		shma_refuse("pool file: not a regular file (mode %o): -EPERM", st->st_mode);
		return -EPERM;
	}
	if (st->st_uid != mk_geteuid()) {
		shma_refuse("pool file: owner uid %u, not ours (%u): -EPERM", st->st_uid, mk_geteuid());
		return -EPERM;
	}
	if (backend == SHMA_BACKEND_SHM && (st->st_mode & 07777) != SHMA_FILE_MODE) {
		shma_refuse("pool file: mode %04o, not %04o: -EPERM", st->st_mode & 07777,
			    SHMA_FILE_MODE);
		return -EPERM;
	}
	return 0;
}

/* A process-local spinlock for the slow paths (mapping, growing). Signals
 * are blocked while it is held, so a handler on this thread can never spin
 * on a lock its own thread holds. */
void shma_lock(struct shma_pool *p, void *oldmask)
{
	sigset_t all;

	sigfillset(&all);
	(void)mk_sigmask(SIG_BLOCK, &all, oldmask);
	while (__atomic_exchange_n(&p->lock, 1, __ATOMIC_ACQUIRE))
		mk_cpu_relax();
}

void shma_unlock(struct shma_pool *p, const void *oldmask)
{
	__atomic_store_n(&p->lock, 0, __ATOMIC_RELEASE);
	(void)mk_sigmask(SIG_SETMASK, oldmask, NULL);
}

int shma_chunk_name(const struct shma_pool *p, uint32_t idx, uint32_t nonce, char *buf, size_t len)
{
	int n = mk_fmt(buf, len, SHMA_FILE_PREFIX "%s.%u.%08x", p->name, idx, nonce);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

uint32_t shma_make_nonce(void)
{
	uint32_t v = 0;

	if (mk_getrandom(&v, sizeof(v), 0x1 /* GRND_NONBLOCK */) < 0)
		v = (uint32_t)(mk_now_ns() * 0x9e3779b97f4a7c15ull >> 32) ^ (uint32_t)mk_getpid();
	return v;
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

/* ---- chunks ------------------------------------------------------------------- */

/* Check an opened chunk file against its slot: size and header. */
static int chunk_check(struct shma_pool *p, int fd, uint32_t idx, unsigned gen, uint64_t size)
{
	struct shma_chunk_hdr h;
	struct stat st;
	int r = mk_fstat(fd, &st);

	if (r < 0)
		return r;
	r = shma_file_ok(&st, p->backend);
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
		char fname[SHMA_FNAME_MAX];
		r = shma_chunk_name(p, idx, shma_s_nonce(state), fname, sizeof(fname));
		if (r == 0) {
			fd = shma_open_pool_file(p->dirfd, fname, p->rdonly);
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
	if (mk_pread_full(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		shma_refuse("import: fd %d has no whole chunk header: -EBADMSG", fd);
		return -EBADMSG;
	}
	if (h.index >= p->max_chunks) {
		shma_refuse("import: chunk index %u, the pool has %u slots: -EBADMSG",
			    (unsigned)h.index, p->max_chunks);
		return -EBADMSG;
	}
	state = __atomic_load_n(&p->root->slots[h.index].state, __ATOMIC_ACQUIRE);
	if (shma_s_st(state) != SHMA_SLOT_LIVE || shma_s_gen(state) != h.gen) {
		shma_refuse("import: chunk %u generation %u is not the live one: -ESTALE",
			    (unsigned)h.index, (unsigned)h.gen);
		return -ESTALE;
	}
	r = chunk_check(p, fd, h.index, h.gen, __atomic_load_n(&p->root->slots[h.index].size, __ATOMIC_RELAXED));
	if (r < 0)
		return r;
	nfd = mk_dup_cloexec(fd);
	if (nfd < 0)
		return nfd;
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
	char fname[SHMA_FNAME_MAX];
	uint64_t state = 0, newstate = 0, start;
	pid_t pid;
	uint32_t idx;
	sigset_t old;
	int fd = -1, r;

	if (p->rdonly)
		return -EPERM;
	if (p->backend == SHMA_BACKEND_MEMFD && !p->creator)
		return -ENOSPC;
	start = shma_self_start();
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
	newstate = shma_slot_word(shma_make_nonce(), shma_s_gen(newstate), SHMA_SLOT_CREATING, kind);
	__atomic_store_n(&rt->slots[idx].state, newstate, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rt->slots[idx].size, size, __ATOMIC_RELAXED);
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
			newstate = shma_slot_word(shma_make_nonce(), shma_s_gen(prev), SHMA_SLOT_CREATING, kind);
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
	r = p->backend == SHMA_BACKEND_SHM ? shma_set_file_mode(fd) : 0;
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
	set_slot_owner(sl, shma_self_start());
	return __atomic_compare_exchange_n(&sl->state, &state,
					   shma_slot_word(shma_s_nonce(state), shma_s_gen(state),
							  SHMA_SLOT_CREATING, shma_s_kind(state)),
					   false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

/* The end of giving a slot back (out of LIVE already): its file goes, then the slot is FREE. */
static void slot_give_back(struct shma_pool *p, uint32_t idx, uint64_t state)
{
	struct shma_slot *sl = &p->root->slots[idx];
	char fname[SHMA_FNAME_MAX];

	if (p->backend == SHMA_BACKEND_SHM &&
	    shma_chunk_name(p, idx, shma_s_nonce(state), fname, sizeof(fname)) == 0)
		mk_unlinkat(p->dirfd, fname, 0);
	/* Publish last: once FREE the slot (and a new file name) may be reused.
	 * owner_pid stays: the next claimer marks its claim in the state word. */
	__atomic_store_n(&sl->state, shma_slot_word(0, shma_s_gen(state), SHMA_SLOT_FREE, 0),
			 __ATOMIC_RELEASE);
}

/*
 * Give chunk idx back: out of LIVE, this process's mapping of it (this
 * generation's only: never a mapping of the chunk made anew since) and
 * its fd let go, then the file and the slot.
 */
static void release_slot(struct shma_pool *p, uint32_t idx, uint64_t state, bool regular)
{
	struct shma_local *l = &p->loc[idx];
	bool mine = slot_leave_live(p, idx, state);
	sigset_t old;
	void *m;

	shma_lock(p, &old);
	if (l->gen == shma_s_gen(state) && (regular || l->addr)) {
		if (regular && l->addr) {
			/* Zero pages, not a hole: a pop racing in this process may still
			 * read a stale header here (its CAS then fails on the tag). */
			mk_mmap(l->addr, p->chunk_size, PROT_READ,
				MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &m);
			__atomic_store_n(&l->addr, NULL, __ATOMIC_RELEASE);
		} else if (!regular) {
			char *a = l->addr;
			__atomic_store_n(&l->addr, NULL, __ATOMIC_SEQ_CST);
			unmap_dedicated(p, a, l->len);
		}
		if (l->fd >= 0)
			mk_close(l->fd);
		l->fd = -1;
	}
	shma_unlock(p, &old);
	if (mine)
		slot_give_back(p, idx, state);
}

/* Give a dedicated chunk back (its block was just freed by us). */
void shma_release_chunk(struct shma_pool *p, uint32_t idx, uint64_t state)
{
	release_slot(p, idx, state, false);
}

/* Give a regular chunk back (shma_pool_trim took all its blocks off the lists). */
void shma_drop_regular(struct shma_pool *p, uint32_t idx, uint64_t state)
{
	release_slot(p, idx, state, true);
}
