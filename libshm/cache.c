/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Per-thread caches of free blocks (see "thread caches" in shmP.h): where
 * they live, how a thread finds its own, and how they are emptied back
 * into the free lists (a thread's exit, shma_pool_trim, shma_pool_free).
 *
 * The blocks' headers, not these arrays, are what crash safety rests on:
 * a cached block's header names its cacher's user slot, and reclaim gives
 * back every free block whose header names a dead user. So a cache needs
 * no shared record, and putting a block in or taking one out costs the
 * header write the operation makes anyway.
 *
 * Caches are process-wide objects, mmap()ed once and never unmapped:
 * a thread-local pointer to one stays readable after its pool object or
 * its thread is gone, and is matched against the pool by serial.
 * Claiming and binding are lock-free (a CAS on the state word), so the
 * lookup is async-signal-safe; emptying a cache is a sequence of free-list
 * pushes under one in-flight record, as shma_free's.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

#define TC_MAX 4096u                    /* caches per process: threads x pools at once */

__thread struct shma_tcache *shma_tls_tc[SHMA_TC_POOLS] __attribute__((tls_model("initial-exec")));
/* pthread_setspecific done: this thread's exit empties its caches. */
static __thread bool tls_keyed __attribute__((tls_model("initial-exec")));
/* Inside shma_tc_slow: a signal handler nested there goes to the shared lists. */
static __thread bool tls_in_slow __attribute__((tls_model("initial-exec")));

static struct shma_tcache *tc_all[TC_MAX];
static unsigned tc_count;               /* entries of tc_all ever claimed */
static uint64_t pool_serial;
static pthread_key_t tc_key;
static bool tc_on;                      /* set once, before any pool exists */

static void tc_thread_exit(void *unused);

__attribute__((constructor)) static void tc_init(void)
{
	const char *e = secure_getenv("LIBSHM_TCACHE");

	/* Without a key a thread's exit could not empty its caches: no caches. */
	tc_on = !(e && !strcmp(e, "0")) && pthread_key_create(&tc_key, tc_thread_exit) == 0;
}

/* A cache's state word: fork generation (32..63) | binding count (8..31) | state (0..7). The
 * count makes every binding's BOUND word new, so a CAS by shma_pool_free
 * cannot hit a cache its thread let go and another bound since (ABA). */
static inline uint64_t st_word(unsigned gen, unsigned seq, unsigned state)
{
	return (uint64_t)gen << 32 | (uint64_t)(seq & 0xffffff) << 8 | state;
}
static inline unsigned st_state(uint64_t st) { return (unsigned)st & 0xff; }
static inline unsigned st_seq(uint64_t st) { return (unsigned)(st >> 8) & 0xffffff; }
static inline unsigned st_gen(uint64_t st) { return (unsigned)(st >> 32); }
static inline uint64_t st_with(uint64_t st, unsigned state) { return (st & ~0xffull) | state; }
static inline unsigned cur_gen(void) { return __atomic_load_n(&shma_fork_gen, __ATOMIC_RELAXED); }

void shma_tc_pool_init(struct shma_pool *p)
{
	uint64_t len;
	void *m;

	p->serial = __atomic_add_fetch(&pool_serial, 1, __ATOMIC_RELAXED);
	memset(p->tc_cap, 0, sizeof(p->tc_cap));
	p->pc = NULL;
	p->pc_len = 0;
	if (!tc_on || p->rdonly)
		return;
	for (unsigned c = 0; c < p->nclasses && c < SHMA_NCLASSES; c++)
		p->tc_cap[c] = (uint8_t)MK_MIN(SHMA_TC_CAP, SHMA_TC_BYTES / shma_class_bytes(c));
	/* Without its pool cache (no memory for it) a pool object still caches per thread. */
	if (mk_align_up(sizeof(struct shma_pcache), mk_page_size(), &len) < 0 ||
	    mk_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &m) < 0)
		return;
	p->pc = m;
	p->pc_len = len;
}

/* ---- the pool cache ---------------------------------------------------------------------- */

/*
 * Take class c of p's pool cache: false if it has none, or another thread
 * of this fork generation (or the thread a signal handler interrupted)
 * holds it. Entries of an earlier generation are a parent's: dropped.
 */
static bool pc_lock(struct shma_pool *p, unsigned c)
{
	struct shma_pcache *pc = p->pc;
	uint32_t g = cur_gen(), v;

	if (!pc || c >= p->nclasses)
		return false;
	v = __atomic_load_n(&pc->lock[c], __ATOMIC_RELAXED);
	if ((v & 1) && v >> 1 == (g & 0x7fffffffu))
		return false;
	if (!__atomic_compare_exchange_n(&pc->lock[c], &v, (g & 0x7fffffffu) << 1 | 1, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return false;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (pc->gen[c] != g) {
		/* The byte count is the parent's too: each class resets its share once. */
		__atomic_fetch_sub(&pc->bytes, MK_MIN(__atomic_load_n(&pc->bytes, __ATOMIC_RELAXED),
						      pc->n[c] * shma_class_bytes(c)), __ATOMIC_RELAXED);
		pc->n[c] = 0;
		pc->gen[c] = g;
	}
	return true;
}

static void pc_unlock(struct shma_pool *p, unsigned c)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&p->pc->lock[c], 0, __ATOMIC_RELEASE);
}

unsigned shma_pc_put(struct shma_pool *p, unsigned c, const uint32_t *refs, unsigned k)
{
	struct shma_pcache *pc = p->pc;
	uint64_t held, bytes = shma_class_bytes(c);
	unsigned m;

	if (!k || !pc_lock(p, c))
		return 0;
	m = MK_MIN(k, SHMA_PC_CAP - pc->n[c]);
	/* Within the byte budget of all classes (a racing put elsewhere may overshoot it by one batch). */
	held = __atomic_load_n(&pc->bytes, __ATOMIC_RELAXED);
	m = held >= SHMA_PC_BYTES ? 0 : (unsigned)MK_MIN((uint64_t)m, (SHMA_PC_BYTES - held) / bytes);
	memcpy(&pc->ref[c][pc->n[c]], refs + (k - m), m * sizeof(refs[0]));
	pc->n[c] = (uint16_t)(pc->n[c] + m);
	__atomic_fetch_add(&pc->bytes, m * bytes, __ATOMIC_RELAXED);
	pc_unlock(p, c);
	return m;
}

unsigned shma_pc_refill(struct shma_pool *p, struct shma_tcache *tc, unsigned c)
{
	struct shma_pcache *pc = p->pc;
	unsigned m;

	if (!pc_lock(p, c))
		return 0;
	/* Half a thread cache and one more (the caller's), the most recently cached. */
	m = MK_MIN((unsigned)pc->n[c], p->tc_cap[c] / 2u + 1);
	m = MK_MIN(m, (unsigned)(p->tc_cap[c] - tc->n[c]));
	memcpy(&tc->ref[c][tc->n[c]], &pc->ref[c][pc->n[c] - m], m * sizeof(tc->ref[c][0]));
	pc->n[c] = (uint16_t)(pc->n[c] - m);
	__atomic_fetch_sub(&pc->bytes, m * shma_class_bytes(c), __ATOMIC_RELAXED);
	tc->n[c] = (uint8_t)(tc->n[c] + m);
	pc_unlock(p, c);
	return m;
}

/*
 * Give every block in p's pool cache back to the free lists, cached by
 * owner (this process's registration), under rec; classes another thread
 * holds stay. How many went.
 */
static unsigned pc_drain(struct shma_pool *p, struct shma_rec *rec, unsigned owner)
{
	unsigned n = 0;

	for (unsigned c = 0; c < p->nclasses; c++) {
		if (!pc_lock(p, c))
			continue;
		n += shma_tc_give(p, rec, owner, c, p->pc->ref[c], p->pc->n[c]);
		__atomic_fetch_sub(&p->pc->bytes, p->pc->n[c] * shma_class_bytes(c), __ATOMIC_RELAXED);
		p->pc->n[c] = 0;
		pc_unlock(p, c);
	}
	return n;
}

/* pc_drain under a record of its own; how many went. */
static unsigned pc_flush(struct shma_pool *p)
{
	unsigned owner = shma_own_slot(p), n;
	struct shma_rec rec;

	if (!p->pc || owner == SHMA_OWNER_NONE || shma_rec_claim(p, owner, &rec) < 0)
		return 0;       /* the blocks stay marked ours: reclaim's once we are gone */
	n = pc_drain(p, &rec, owner);
	shma_rec_release(&rec);
	return n;
}

unsigned shma_tc_give(struct shma_pool *p, struct shma_rec *rec, unsigned owner, unsigned c,
		      const uint32_t *refs, unsigned n)
{
	uint32_t ok[SHMA_CHAIN_MAX], gens[SHMA_CHAIN_MAX];
	struct shma_blk *blks[SHMA_CHAIN_MAX];
	unsigned given = 0, k = 0;

	for (unsigned i = 0; i <= n; i++) {
		if (i < n) {
			/* Cached here, so its (regular) chunk is mapped here, where refs say. */
			struct shma_blk *b = (struct shma_blk *)(p->resv + (uint64_t)refs[i] * SHMA_GRANULE);

			/* Ours unless the shared memory was scribbled on: then leave it. */
			if (!shma_tc_is_cached(b, refs[i], c, owner, &gens[k]))
				continue;
			ok[k] = refs[i];
			blks[k++] = b;
		}
		if (k && (k == SHMA_CHAIN_MAX || i == n)) {
			if (k == 1) {
				shma_rec_push_intent(rec, c, ok[0], gens[0]);
				__atomic_store_n(&blks[0]->word, shma_blk_word(gens[0], c, SHMA_OWNER_NONE),
						 __ATOMIC_RELEASE);
				shma_push(p, rec, c, ok[0], blks[0]);
			} else {
				shma_push_chain(p, rec, c, ok, blks, gens, k);
			}
			given += k;
			k = 0;
		}
	}
	return given;
}

/* Empty the cache into the free lists of its (bound, live) pool; how many went. */
static unsigned tc_drain(struct shma_tcache *tc)
{
	struct shma_pool *p = tc->pool;
	struct shma_rec rec;
	unsigned n = 0;

	if (shma_rec_claim(p, tc->owner, &rec) < 0)
		return 0;       /* the blocks stay marked ours: reclaim's once we are gone */
	for (unsigned c = 0; c < SHMA_NCLASSES; c++) {
		n += shma_tc_give(p, &rec, tc->owner, c, tc->ref[c], tc->n[c]);
		tc->n[c] = 0;
	}
	shma_rec_release(&rec);
	return n;
}

/*
 * Make cache tc (state word st: FREE, or of an earlier fork generation)
 * this thread's, OWNED in generation gen, by CAS; false if another thread
 * of this process took it first. Blocks it still lists are a parent's
 * cache's (fork): forgotten, never given back.
 */
static bool tc_take(struct shma_tcache *tc, uint64_t st, unsigned gen)
{
	if (!__atomic_compare_exchange_n(&tc->st, &st, st_word(gen, st_seq(st), SHMA_TC_OWNED),
					 false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	memset(tc->n, 0, sizeof(tc->n));
	__atomic_store_n(&tc->serial, 0, __ATOMIC_RELAXED);
	tc->pool = NULL;
	tc->busy = 0;
	return true;
}

/* Take a cache for this thread: a FREE one, one left by a fork()ed-away parent, or a new one. */
static struct shma_tcache *tc_claim(unsigned gen)
{
	unsigned n = MK_MIN(__atomic_load_n(&tc_count, __ATOMIC_ACQUIRE), TC_MAX), i;
	struct shma_tcache *tc;
	uint64_t len;
	void *m;

	for (i = 0; i < n; i++) {
		uint64_t st;

		tc = __atomic_load_n(&tc_all[i], __ATOMIC_ACQUIRE);
		if (!tc)
			continue;
		st = __atomic_load_n(&tc->st, __ATOMIC_ACQUIRE);
		if ((st_gen(st) != gen || st_state(st) == SHMA_TC_FREE) && tc_take(tc, st, gen))
			return tc;
	}
	i = __atomic_fetch_add(&tc_count, 1, __ATOMIC_ACQ_REL);
	if (i >= TC_MAX)
		return NULL;
	if (mk_align_up(sizeof(*tc), mk_page_size(), &len) < 0 ||
	    mk_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &m) < 0)
		return NULL;    /* entry i stays empty */
	tc = m;
	tc->st = st_word(gen, 0, SHMA_TC_OWNED);
	__atomic_store_n(&tc_all[i], tc, __ATOMIC_RELEASE);
	return tc;
}

/* Move this thread's entry i to the front (most recently used). */
static struct shma_tcache *tls_front(unsigned i)
{
	struct shma_tcache *tc = shma_tls_tc[i];

	for (; i > 0; i--)
		shma_tls_tc[i] = shma_tls_tc[i - 1];
	shma_tls_tc[0] = tc;
	return tc;
}

static struct shma_tcache *tc_slow(struct shma_pool *p);

struct shma_tcache *shma_tc_slow(struct shma_pool *p)
{
	struct shma_tcache *tc;

	if (!p->tc_cap[0] || p->rdonly || tls_in_slow)
		return NULL;
	tls_in_slow = true;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	tc = tc_slow(p);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	tls_in_slow = false;
	return tc;
}

static struct shma_tcache *tc_slow(struct shma_pool *p)
{
	unsigned gen = cur_gen(), owner, slot = SHMA_TC_POOLS;
	struct shma_tcache *tc;

	for (unsigned i = 0; i < SHMA_TC_POOLS; i++) {
		uint64_t st;

		tc = shma_tls_tc[i];
		if (!tc) {
			slot = MK_MIN(slot, i);
			continue;
		}
		st = __atomic_load_n(&tc->st, __ATOMIC_ACQUIRE);
		if (st_gen(st) != gen) {
			/* Inherited across fork(): the blocks are the parent's. Ours,
			 * empty, if no other thread of this process took it first. */
			if (!tc_take(tc, st, gen)) {
				shma_tls_tc[i] = NULL;
				slot = MK_MIN(slot, i);
				continue;
			}
			st = st_word(gen, st_seq(st), SHMA_TC_OWNED);
		}
		if (st_state(st) == SHMA_TC_BOUND && tc->pool == p &&
		    __atomic_load_n(&tc->serial, __ATOMIC_RELAXED) == p->serial)
			return tls_front(i);
		if (st_state(st) == SHMA_TC_OWNED)
			slot = MK_MIN(slot, i);     /* its pool was freed: reusable */
	}
	if (slot == SHMA_TC_POOLS || shma_owner(p, &owner) < 0)
		return NULL;
	tc = shma_tls_tc[slot];
	if (!tc) {
		tc = tc_claim(gen);
		if (!tc)
			return NULL;
		shma_tls_tc[slot] = tc;
		if (!tls_keyed) {
			/*
			 * The key's value only makes the thread's exit call
			 * tc_thread_exit. (glibc stores keys below 32 in the
			 * thread descriptor: no allocation, safe in a handler.)
			 */
			tls_keyed = pthread_setspecific(tc_key, &tls_keyed) == 0;
		}
	}
	tc->pool = p;
	tc->owner = owner;
	tc->mark = shma_blk_word(0, 0, owner);
	tc->carve = SHMA_SLOTS_MAX;
	tc->busy = 0;
	memset(tc->n, 0, sizeof(tc->n));
	__atomic_store_n(&tc->serial, p->serial, __ATOMIC_RELAXED);
	__atomic_store_n(&tc->st, st_word(gen, st_seq(__atomic_load_n(&tc->st, __ATOMIC_RELAXED)) + 1,
					  SHMA_TC_BOUND), __ATOMIC_RELEASE);
	return tls_front(slot);
}

/* Drain a cache we moved from BOUND (word st) to CLOSING; then state `after`. */
static void tc_finish_close(struct shma_tcache *tc, uint64_t st, unsigned after)
{
	tc_drain(tc);
	__atomic_store_n(&tc->serial, 0, __ATOMIC_RELAXED);
	tc->pool = NULL;
	__atomic_store_n(&tc->st, st_with(st, after), __ATOMIC_RELEASE);
}

unsigned shma_tc_flush_self(struct shma_pool *p)
{
	uint64_t id = __atomic_load_n(&p->root->pool_id, __ATOMIC_RELAXED);
	unsigned n = 0;

	for (unsigned i = 0; i < SHMA_TC_POOLS; i++) {
		struct shma_tcache *tc = shma_tls_tc[i];
		uint64_t st = tc ? __atomic_load_n(&tc->st, __ATOMIC_ACQUIRE) : 0;

		/*
		 * CLOSING while we look: another thread's shma_pool_free of the
		 * cache's pool object (another attachment of the same pool,
		 * perhaps) waits for us, so tc->pool stays readable.
		 */
		if (!tc || st_gen(st) != cur_gen() || st_state(st) != SHMA_TC_BOUND ||
		    !__atomic_compare_exchange_n(&tc->st, &st, st_with(st, SHMA_TC_CLOSING), false,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		/* Every attachment of this pool in this thread (not a handler nested in our cache path). */
		if ((tc->pool == p || __atomic_load_n(&tc->pool->root->pool_id, __ATOMIC_RELAXED) == id) &&
		    shma_tc_enter(tc)) {
			n += tc_drain(tc);
			/* And that attachment's pool cache (p's: below). */
			if (tc->pool != p)
				n += pc_flush(tc->pool);
			shma_tc_leave(tc);
		}
		__atomic_store_n(&tc->st, st, __ATOMIC_RELEASE);
	}
	/* This pool object's cache; another attachment's stays with it. */
	return n + pc_flush(p);
}

MK_EXPORT int shma_flush_cache(struct shma_pool *p)
{
	if (!p)
		return -EINVAL;
	if (p->rdonly)
		return 0;       /* a read-only attachment caches nothing */
	return (int)shma_tc_flush_self(p);
}

unsigned shma_tc_made(void)
{
	return MK_MIN(__atomic_load_n(&tc_count, __ATOMIC_ACQUIRE), TC_MAX);
}

void shma_tc_close(struct shma_pool *p)
{
	unsigned n = MK_MIN(__atomic_load_n(&tc_count, __ATOMIC_ACQUIRE), TC_MAX), gen = cur_gen();

	for (unsigned i = 0; i < n; i++) {
		struct shma_tcache *tc = __atomic_load_n(&tc_all[i], __ATOMIC_ACQUIRE);

		while (tc) {
			uint64_t st = __atomic_load_n(&tc->st, __ATOMIC_ACQUIRE);

			/* Read the word first: a binding to p is what that word's count names. */
			if (st_gen(st) != gen || tc->pool != p ||
			    __atomic_load_n(&tc->serial, __ATOMIC_ACQUIRE) != p->serial)
				break;
			if (st_state(st) == SHMA_TC_CLOSING) {
				/* Its thread is exiting, emptying it into p: wait. */
				mk_sched_yield();
				continue;
			}
			if (st_state(st) != SHMA_TC_BOUND)
				break;
			if (__atomic_compare_exchange_n(&tc->st, &st, st_with(st, SHMA_TC_CLOSING), false,
							__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
				tc_finish_close(tc, st, SHMA_TC_OWNED);   /* its thread may bind it anew */
				break;
			}
		}
	}
	pc_flush(p);
}

/* A thread exits: its caches' blocks go back to their pools, the caches to anyone. */
static void tc_thread_exit(void *unused)
{
	(void)unused;
	tls_keyed = false;
	for (unsigned i = 0; i < SHMA_TC_POOLS; i++) {
		struct shma_tcache *tc = shma_tls_tc[i];

		shma_tls_tc[i] = NULL;
		while (tc) {
			uint64_t st = __atomic_load_n(&tc->st, __ATOMIC_ACQUIRE);

			if (st_gen(st) != cur_gen())
				break;  /* a parent's (fork): another thread may have it */
			if (st_state(st) == SHMA_TC_CLOSING) {
				mk_sched_yield();       /* shma_pool_free emptying it */
				continue;
			}
			/*
			 * BOUND: its pool is alive until shma_pool_free has moved it
			 * out of BOUND, which our CAS excludes: drain into it.
			 * OWNED (its pool freed): just let it go.
			 */
			if (__atomic_compare_exchange_n(&tc->st, &st,
							st_with(st, st_state(st) == SHMA_TC_BOUND ?
								SHMA_TC_CLOSING : SHMA_TC_FREE),
							false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
				if (st_state(st) == SHMA_TC_BOUND)
					tc_finish_close(tc, st, SHMA_TC_FREE);
				break;
			}
		}
	}
}
