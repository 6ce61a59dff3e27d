/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Allocation, free and handle resolution. Every path here is lock-free
 * on the shared state and async-signal-safe: the only blocking is the
 * process-local slow path that maps or creates a chunk (chunk.c), taken
 * with signals blocked.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/ext.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

#define BLK ((uint64_t)sizeof(struct shma_blk))
/* Corrupt entries popped in a row before alloc gives up with -EFAULT. */
#define MAX_BAD_POPS 64

static inline uint64_t slot_state(const struct shma_pool *p, uint32_t idx)
{
	return __atomic_load_n(&p->root->slots[idx].state, __ATOMIC_ACQUIRE);
}

/* Try to bump bytes off regular chunk idx. */
static int bump_in(struct shma_pool *p, struct shma_rec *rec, uint32_t idx, uint64_t bytes,
		   uint32_t *ref, struct shma_blk **blk)
{
	uint64_t st = slot_state(p, idx), b, off;
	char *base;
	int r;

	if (shma_s_st(st) != SHMA_SLOT_LIVE || shma_s_kind(st) != SHMA_KIND_REGULAR)
		return -ENOENT;
	/* Map before carving: a chunk we cannot map (its file replaced or
	 * damaged, a memfd chunk never sent) fails with nothing carved. */
	r = shma_map_slot(p, idx, st, &base);
	if (r < 0)
		return slot_state(p, idx) != st ? -ENOENT : r;
	/* The generation in the bump word: see shma_bump_word(). */
	b = __atomic_load_n(&p->root->slots[idx].bump, __ATOMIC_RELAXED);
	do {
		off = shma_bump_off(b);
		if (shma_bump_gen(b) != shma_s_gen(st) || off < SHMA_CHUNK_DATA || off > p->chunk_size ||
		    bytes > p->chunk_size - off || off % SHMA_GRANULE)
			return -ENOENT;
		/* Our record names this carve before the CAS does (see list.c). */
	} while (!shma_bump_cas(p, idx, &b, shma_s_gen(st), off + bytes, rec));
	*blk = (struct shma_blk *)(base + off);
	*ref = shma_ref(p, idx, off);
	__atomic_store_n(&(*blk)->self, *ref, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Carve for this thread's cache tc (entered): from its chunk (at first
 * the pool's current one), and once that is full from a new chunk that
 * becomes its own; -ENOENT if none (the pool is full: the shared chunks
 * then). Each thread carving in a chunk of its own keeps its blocks, and
 * so the pages and cache lines it touches, apart from other threads' and
 * processes': interleaved, every thread's live set spreads over every
 * page of the pool (bench-shm, 2 processes at 100k live: ~2x the time
 * of the same two with a pool each).
 */
static int carve_own(struct shma_pool *p, struct shma_rec *rec, struct shma_tcache *tc,
		     uint64_t bytes, uint32_t *ref, struct shma_blk **blk)
{
	uint32_t idx = tc->carve;
	int r;

	if (idx >= p->max_chunks)
		idx = __atomic_load_n(&p->root->cur, __ATOMIC_ACQUIRE);
	if (idx < p->max_chunks) {
		r = bump_in(p, rec, idx, bytes, ref, blk);
		if (r == 0)
			tc->carve = idx;
		if (r != -ENOENT)
			return r;
	}
	r = shma_add_chunk(p, SHMA_KIND_REGULAR, p->chunk_size, &idx);
	if (r < 0)
		return -ENOENT;
	tc->carve = idx;
	return bump_in(p, rec, idx, bytes, ref, blk);
}

/*
 * Carve a fresh block of class c: the chunk of this thread's cache tc (if
 * any) or a new one of its own, else the current chunk, any chunk with
 * room, a new chunk.
 */
static int carve(struct shma_pool *p, struct shma_rec *rec, struct shma_tcache *tc, unsigned c,
		 uint32_t *ref, struct shma_blk **blk)
{
	struct shma_root *rt = p->root;
	uint64_t bytes = shma_class_bytes(c);

	/* The class, for reclaim to size the block should we die carving it. */
	__atomic_store_n(&rec->in->ref, c, __ATOMIC_RELAXED);
	if (tc) {
		int r = carve_own(p, rec, tc, bytes, ref, blk);

		if (r != -ENOENT)
			return r;
	}

	for (int tries = 0; tries < 8; tries++) {
		uint32_t cur = __atomic_load_n(&rt->cur, __ATOMIC_ACQUIRE), hwm, idx;
		int r;

		if (cur < p->max_chunks) {
			r = bump_in(p, rec, cur, bytes, ref, blk);
			if (r != -ENOENT)
				return r;
		}
		hwm = MK_MIN(__atomic_load_n(&rt->hwm, __ATOMIC_ACQUIRE), p->max_chunks);
		for (idx = 0; idx < hwm; idx++) {
			if (idx == cur)
				continue;
			r = bump_in(p, rec, idx, bytes, ref, blk);
			if (r == 0) {
				__atomic_compare_exchange_n(&rt->cur, &cur, idx, false,
							    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
				return 0;
			}
			if (r != -ENOENT)
				return r;
		}
		r = shma_add_chunk(p, SHMA_KIND_REGULAR, p->chunk_size, &idx);
		if (r < 0)
			return r;
		__atomic_compare_exchange_n(&rt->cur, &cur, idx, false,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
		r = bump_in(p, rec, idx, bytes, ref, blk);
		if (r != -ENOENT)
			return r;
	}
	return -ENOSPC;
}

static void fill_handle(struct shma_handle *h, uint32_t idx, uint64_t state, uint32_t gen,
			uint64_t off, uint64_t len)
{
	h->chunk = idx | (uint32_t)shma_s_gen(state) << 16;
	h->gen = gen;
	h->offset = (uint32_t)off;
	h->len = (uint32_t)len;
}

static int alloc_large(struct shma_pool *p, size_t len, unsigned owner, struct shma_handle *h,
		       void **ptr)
{
	uint64_t page = mk_page_size(), size, st;
	struct shma_blk *b;
	uint32_t idx, gen;
	char *base;
	int r;

	if (mk_align_up(page + len, page, &size) < 0)
		return -ENOMEM;
	r = shma_add_chunk(p, SHMA_KIND_DEDICATED, size, &idx);
	if (r < 0)
		return r;
	st = slot_state(p, idx);
	gen = shma_dedicated_gen(__atomic_load_n(&p->root->slots[idx].epoch, __ATOMIC_ACQUIRE));
	base = p->loc[idx].addr;
	b = (struct shma_blk *)(base + page - BLK);
	__atomic_store_n(&b->self, shma_ref(p, idx, page - BLK), __ATOMIC_RELAXED);
	__atomic_store_n(&b->aux, (uint32_t)len, __ATOMIC_RELAXED);
	__atomic_store_n(&b->word, shma_blk_word(gen, SHMA_CLASS_LARGE, owner), __ATOMIC_RELEASE);
	if (h)
		fill_handle(h, idx, st, gen, page, len);
	if (ptr)
		*ptr = base + page;
	return 0;
}

/* Is b (at ref), just taken off class c's list, a free block of that class? */
static bool listed_ok(const struct shma_blk *b, uint32_t ref, unsigned c, uint32_t *gen)
{
	uint64_t w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);

	*gen = shma_w_gen(w);
	return shma_w_magic_ok(w) && shma_w_cls(w) == c && !shma_w_flags(w) && !(*gen & 1) &&
	       __atomic_load_n(&b->self, __ATOMIC_RELAXED) == ref;
}

/*
 * Refill tc's empty class c from its list: half a cache and one more (the
 * caller's) in one pop, a chain (POPN under rec), each block marked cached
 * by tc's owner and put in the cache, the list's first on top. Until rec
 * goes, the chain is reclaim's through it, after that through the marks
 * (see intents). Returns how many were popped (a damaged one is dropped,
 * as shma_alloc does), or shma_pop()'s error.
 */
static int refill(struct shma_pool *p, struct shma_rec *rec, struct shma_tcache *tc, unsigned c)
{
	uint32_t refs[SHMA_CHAIN_MAX];
	struct shma_blk *blks[SHMA_CHAIN_MAX];
	unsigned want = MK_MIN(p->tc_cap[c] / 2u + 1, SHMA_CHAIN_MAX);
	int n = want > 1 ? shma_pop_chain(p, rec, c, want, refs, blks)
			 : shma_pop(p, rec, c, &refs[0], &blks[0]) < 0 ? -ENOENT : 1;

	for (int i = n - 1; i >= 0; i--) {
		uint32_t gen;

		if (!listed_ok(blks[i], refs[i], c, &gen))
			continue;
		__atomic_store_n(&blks[i]->word, shma_blk_word(gen, c, tc->owner), __ATOMIC_RELEASE);
		tc->ref[c][tc->n[c]++] = refs[i];
	}
	return n;
}

/*
 * Take the top block of tc's class c (tc entered): its header, *refp and
 * *wp its (free, cached) header word; NULL when the class is empty. An
 * entry whose header no longer names it cached by tc's owner was
 * scribbled on in shared memory: dropped (its block leaked, never handed
 * out). Cached here, so its (regular) chunk is mapped here, where refs say.
 */
static inline struct shma_blk *cache_pop(struct shma_pool *p, struct shma_tcache *tc, unsigned c,
					 uint32_t *refp, uint64_t *wp)
{
	unsigned n = tc->n[c];

	while (n) {
		uint32_t ref = tc->ref[c][--n];
		struct shma_blk *b = (struct shma_blk *)(p->resv + (uint64_t)ref * SHMA_GRANULE);
		uint32_t gen;

		tc->n[c] = (uint8_t)n;
		if (mk_likely(shma_tc_is_cached(b, ref, c, tc->owner, &gen))) {
			*refp = ref;
			*wp = shma_blk_word(gen, c, tc->owner);
			return b;
		}
	}
	return NULL;
}

/*
 * A block of class c for an allocation, its header not yet written: from
 * the thread cache tc (entered; NULL: none), else the list (refilling
 * tc), else carved. *rec: claimed here when the cache could not serve
 * (rec->in NULL otherwise); the caller releases it after writing the header.
 */
static int take_block(struct shma_pool *p, struct shma_tcache *tc, unsigned c, unsigned owner,
		      struct shma_rec *rec, uint32_t *refp, struct shma_blk **bp, uint32_t *genp)
{
	int r, bad = 0;
	uint64_t w;

	if (tc && ((*bp = cache_pop(p, tc, c, refp, &w)) != NULL ||
		   (shma_pc_refill(p, tc, c) && (*bp = cache_pop(p, tc, c, refp, &w)) != NULL))) {
		*genp = shma_w_gen(w) + 1;
		return 0;
	}
	r = shma_rec_claim(p, owner, rec);
	if (r < 0)
		return r;
	if (tc && refill(p, rec, tc, c) > 0 && (*bp = cache_pop(p, tc, c, refp, &w)) != NULL) {
		/* Every popped block is marked cached: the record has done its job. */
		shma_rec_release(rec);
		rec->in = NULL;
		*genp = shma_w_gen(w) + 1;
		return 0;
	}
	/* An empty list (carve), an error, or nothing but damage: one block at a time. */
	for (;;) {
		uint32_t gen;

		r = shma_pop(p, rec, c, refp, bp);
		if (r == -ENOENT) {
			r = carve(p, rec, tc, c, refp, bp);
			*genp = 1;
			break;
		}
		if (r < 0)
			break;
		/* A block from the list must look free and of this class; a damaged
		 * one is dropped (leaked), never handed out. */
		if (listed_ok(*bp, *refp, c, &gen)) {
			*genp = gen + 1;
			break;
		}
		if (++bad >= MAX_BAD_POPS) {
			r = -EFAULT;
			break;
		}
	}
	if (r < 0) {
		shma_rec_release(rec);
		rec->in = NULL;
	}
	return r;
}

/* The handle of the block whose data is at data (allocated: generation gen). */
static void handle_out(struct shma_pool *p, const char *data, uint32_t gen, size_t len,
		       struct shma_handle *h)
{
	uint64_t pvo = (uint64_t)(data - p->resv);
	uint32_t idx = (uint32_t)(pvo >> p->chunk_shift);

	fill_handle(h, idx, slot_state(p, idx), gen, pvo & (p->chunk_size - 1), len);
}

/* The fast path's end when a handle is asked for (out of line: the fast path stays a leaf). */
static __attribute__((noinline)) int alloc_out(struct shma_pool *p, char *data, uint32_t gen,
					       size_t len, struct shma_handle *h, void **ptr)
{
	handle_out(p, data, gen, len, h);
	if (ptr)
		*ptr = data;
	return 0;
}

/* shma_alloc beyond the fast path: any size and alignment, binding the
 * thread's cache, the lists, carving. */
static __attribute__((noinline)) int alloc_slow(struct shma_pool *p, size_t len, size_t align,
						struct shma_handle *h, void **ptr)
{
	uint64_t total;
	struct shma_rec rec = { NULL, 0 };
	struct shma_tcache *tc = NULL;
	struct shma_blk *b;
	uint32_t ref = 0, gen;
	unsigned c, owner;
	char *data;
	int r;

	if (!p || !len || len > UINT32_MAX - 2 * mk_page_size())
		return -EINVAL;
	if (!align)
		align = SHMA_GRANULE;
	if (!mk_is_pow2(align) || align > mk_page_size())
		return -EINVAL;
	if (align < SHMA_GRANULE)
		align = SHMA_GRANULE;
	if (p->rdonly)
		return -EPERM;
	r = shma_owner(p, &owner);
	if (r < 0)
		return r;
	total = len + BLK + (align - SHMA_GRANULE);
	c = total <= p->class_max + BLK + mk_page_size() ? shma_size_class(total) : SHMA_NCLASSES;
	if (c >= p->nclasses)
		return alloc_large(p, len, owner, h, ptr);

	/* Over-aligned blocks (two headers) bypass the cache. */
	if (align == SHMA_GRANULE && p->tc_cap[c]) {
		tc = shma_tc_get(p);
		if (tc && (tc->owner != owner || !shma_tc_enter(tc)))
			tc = NULL;
	}
	/* Our in-flight record (if the cache could not serve): from the pop or
	 * carve until the header is written. */
	r = take_block(p, tc, c, owner, &rec, &ref, &b, &gen);
	if (r < 0) {
		if (tc)
			shma_tc_leave(tc);
		return r;
	}

	data = (char *)b + BLK;
	if (align > SHMA_GRANULE)
		data = (char *)(((uintptr_t)data + align - 1) & ~(uintptr_t)(align - 1));
	if (data == (char *)b + BLK) {
		/* Relaxed: a pop elsewhere may still read it, speculatively (its CAS then fails). */
		__atomic_store_n(&b->aux, (uint32_t)len, __ATOMIC_RELAXED);
		__atomic_store_n(&b->word, shma_blk_word(gen, c, owner), __ATOMIC_RELEASE);
	} else {
		struct shma_blk *in = (struct shma_blk *)(data - BLK);
		__atomic_store_n(&in->self, ref, __ATOMIC_RELAXED);
		__atomic_store_n(&in->aux, (uint32_t)len, __ATOMIC_RELAXED);
		__atomic_store_n(&in->word, shma_blk_word(gen, c | SHMA_F_INNER, owner),
				 __ATOMIC_RELEASE);
		__atomic_store_n(&b->aux, (uint32_t)((char *)in - (char *)b), __ATOMIC_RELAXED);
		__atomic_store_n(&b->word, shma_blk_word(gen, c | SHMA_F_SHIFTED, owner),
				 __ATOMIC_RELEASE);
	}
	if (rec.in)
		shma_rec_release(&rec);
	if (tc)
		shma_tc_leave(tc);
	if (h)
		handle_out(p, data, gen, len, h);
	if (ptr)
		*ptr = data;
	return 0;
}

/* Lengths the fast path serves: up to the smallest class_max any pool has
 * (chunk_size / 4), where alloc_slow picks the same class. */
#define FAST_LEN_MAX (SHMA_CHUNK_SIZE_MIN / 4)

/*
 * The common case first, in as few instructions as it takes: a plain
 * block (alignment at most 16) of a class this thread's cache for p holds
 * blocks of. Checks are those of alloc_slow: len 1 .. FAST_LEN_MAX and a
 * power-of-two align fit every limit there; a bound cache means a
 * writable pool, our registration in this fork generation (tc->owner),
 * and a cached class (below p->nclasses). Anything else, alloc_slow.
 */
MK_EXPORT int shma_alloc(struct shma_pool *p, size_t len, size_t align,
			 struct shma_handle *h, void **ptr)
{
	struct shma_tcache *tc;

	if (mk_likely(p && len - 1 < FAST_LEN_MAX && align <= SHMA_GRANULE && !(align & (align - 1))) &&
	    (tc = shma_tc_current(p)) != NULL) {
		unsigned c = shma_size_class(len + BLK), n;

		/* n again once entered: a signal handler may have taken some before. */
		if (tc->n[c] && shma_tc_enter(tc) && mk_likely((n = tc->n[c]) != 0)) {
			/* The top entry, if its header still says cached by us (else
			 * alloc_slow drops it: see cache_pop). */
			uint32_t ref = tc->ref[c][n - 1];
			struct shma_blk *b = (struct shma_blk *)(p->resv + (uint64_t)ref * SHMA_GRANULE);
			uint64_t w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);

			/* The word of a free block of class c cached by tc's owner (even generation). */
			if (mk_likely((w & ~0xfffffffeull) == (tc->mark | (uint64_t)c << 32) &&
				      __atomic_load_n(&b->self, __ATOMIC_RELAXED) == ref)) {
				tc->n[c] = (uint8_t)(n - 1);
				/* Relaxed: a pop elsewhere may still read it, speculatively (its CAS then fails). */
				__atomic_store_n(&b->aux, (uint32_t)len, __ATOMIC_RELAXED);
				__atomic_store_n(&b->word, w + 1, __ATOMIC_RELEASE);   /* even -> odd */
				shma_tc_leave(tc);
				if (h)
					return alloc_out(p, (char *)(b + 1), shma_w_gen(w) + 1, len, h, ptr);
				if (ptr)
					*ptr = b + 1;
				return 0;
			}
			shma_tc_leave(tc);
		}
	}
	return alloc_slow(p, len, align, h, ptr);
}

static int free_commit(struct shma_pool *p, struct shma_blk *h, uint32_t ref, uint32_t want_gen,
		       bool by_handle, unsigned only_owner, unsigned actor_user, struct shma_rec *rec,
		       uint64_t *wp, struct shma_blk **startp, uint32_t *start_refp);

/*
 * Validate the header h (at ref) and free its block: the CAS that moves
 * the generation from odd to even is the commit point, so every error
 * return leaves the pool untouched. want_gen: the handle's generation
 * (by_handle); only_owner: free only blocks of that owner (SHMA_ANY_OWNER: any).
 */
int shma_free_blk(struct shma_pool *p, struct shma_blk *h, uint32_t ref, uint32_t want_gen,
		  bool by_handle, unsigned only_owner, unsigned actor_user)
{
	uint64_t w = __atomic_load_n(&h->word, __ATOMIC_ACQUIRE);
	struct shma_blk *start = h;
	uint32_t start_ref = ref;
	struct shma_rec rec = { NULL, 0 };
	unsigned c;
	int r;

	/*
	 * A class block gets our record before the commit: from the CAS that
	 * frees it until it is on its list, it names the block (so reclaim
	 * pushes it should we die in between). Dropped on every error return.
	 */
	if (shma_w_cls(w) != SHMA_CLASS_LARGE && (r = shma_rec_claim(p, actor_user, &rec)) < 0)
		return r;
	r = free_commit(p, h, ref, want_gen, by_handle, only_owner, actor_user, &rec, &w, &start,
			&start_ref);
	if (r < 0) {
		if (rec.in)
			shma_rec_release(&rec);
		return r;
	}
	c = shma_w_cls(w);
	if (c == SHMA_CLASS_LARGE) {
		uint32_t idx = (uint32_t)(((uint64_t)ref * SHMA_GRANULE) >> p->chunk_shift);
		if (rec.in)
			shma_rec_release(&rec);
		shma_release_chunk(p, idx, slot_state(p, idx));
		return 0;
	}
	__atomic_store_n(&start->word, shma_blk_word(shma_w_gen(w) + 1, c, SHMA_OWNER_NONE),
			 __ATOMIC_RELEASE);
	/* A generation about to wrap: the block retires (free, on no list). */
	if (shma_w_gen(w) + 1 < SHMA_GEN_RETIRED)
		shma_push(p, &rec, c, start_ref, start);
	shma_rec_release(&rec);
	return 0;
}

/* Validate and commit a free (the CAS); *w: the committed header's old word. */
static int free_commit(struct shma_pool *p, struct shma_blk *h, uint32_t ref, uint32_t want_gen,
		       bool by_handle, unsigned only_owner, unsigned actor_user, struct shma_rec *rec,
		       uint64_t *wp, struct shma_blk **startp, uint32_t *start_refp)
{
	uint64_t w = *wp, nw;
	struct shma_blk *start = h;
	uint32_t start_ref = ref;
	unsigned c;

	for (;;) {
		c = shma_w_cls(w);
		if (!shma_w_magic_ok(w) || (c != SHMA_CLASS_LARGE && c >= p->nclasses))
			return -EFAULT;
		if (shma_w_flags(w) == SHMA_F_SHIFTED)
			return -EINVAL;     /* not where the data starts */
		if (shma_w_flags(w) == SHMA_F_INNER) {
			uint32_t s = __atomic_load_n(&h->self, __ATOMIC_RELAXED);
			uint64_t sw;
			if (c == SHMA_CLASS_LARGE || s >= ref ||
			    (uint64_t)(ref - s) * SHMA_GRANULE >= shma_class_bytes(c))
				return -EFAULT;
			start = shma_blk_at(p, s);
			if (!start)
				return -EFAULT;
			start_ref = s;
			sw = __atomic_load_n(&start->word, __ATOMIC_ACQUIRE);
			if (!shma_w_magic_ok(sw) || shma_w_flags(sw) != SHMA_F_SHIFTED ||
			    shma_w_cls(sw) != c || shma_w_gen(sw) != shma_w_gen(w) ||
			    __atomic_load_n(&start->self, __ATOMIC_RELAXED) != s ||
			    __atomic_load_n(&start->aux, __ATOMIC_RELAXED) != (uint64_t)(ref - s) * SHMA_GRANULE)
				return -EFAULT;
		} else if (shma_w_flags(w) || __atomic_load_n(&h->self, __ATOMIC_RELAXED) != ref) {
			return -EFAULT;
		}
		if (by_handle && shma_w_gen(w) != want_gen) {
			shma_refuse("free: block %u has generation %u, the handle %u: -ESTALE", ref,
				    (unsigned)shma_w_gen(w), want_gen);
			return -ESTALE;
		}
		if (!(shma_w_gen(w) & 1)) {
			shma_refuse("free: block %u is already free: -EINVAL", ref);
			return -EINVAL;
		}
		if (only_owner <= 0xff && shma_w_owner(w) != only_owner)
			return -EPERM;
		nw = shma_blk_word(shma_w_gen(w) + 1, c, SHMA_OWNER_NONE);     /* see shmP.h's header word */
		if (c == SHMA_CLASS_LARGE || start != h) {
			/*
			 * The freed header names us (the freer) until the free is
			 * complete: if we die before a dedicated chunk's slot leaves
			 * LIVE, or before an over-aligned block's start header is
			 * marked free, reclaim finds a header freed by a dead owner
			 * and finishes the job.
			 */
			nw = shma_blk_word(shma_w_gen(w) + 1, shma_w_cls(w) | shma_w_flags(w), actor_user);
		}
		if (c != SHMA_CLASS_LARGE) {
			if (!rec->in)
				return -EFAULT;     /* the class changed under us: damage */
			shma_rec_push_intent(rec, c, start_ref, shma_w_gen(w) + 1);
		}
		if (__atomic_compare_exchange_n(&h->word, &w, nw, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			break;
		/* Someone changed it under us (a racing free): judge again. */
	}
	*wp = w;
	*startp = start;
	*start_refp = start_ref;
	return 0;
}

/* Is pvo (an offset into the reservation) in a live regular chunk mapped here? */
static inline bool regular_mapped(const struct shma_pool *p, uint64_t pvo)
{
	uint32_t i = (uint32_t)(pvo >> p->chunk_shift);
	uint64_t s = slot_state(p, i);

	return shma_s_st(s) == SHMA_SLOT_LIVE && shma_s_kind(s) == SHMA_KIND_REGULAR &&
	       __atomic_load_n(&p->loc[i].addr, __ATOMIC_ACQUIRE) == p->resv + (pvo & ~(p->chunk_size - 1));
}

/*
 * Find the chunk a data pointer of this process lies in: regular chunks by
 * arithmetic, dedicated ones by a scan of our mappings.
 */
static int locate(struct shma_pool *p, const void *ptr, uint32_t *idx, uint64_t *off)
{
	const char *c = ptr;

	if (c >= p->resv && c < p->resv + p->resv_len) {
		uint64_t pvo = (uint64_t)(c - p->resv);
		if (!regular_mapped(p, pvo))
			return -EINVAL;
		*idx = (uint32_t)(pvo >> p->chunk_shift);
		*off = pvo & (p->chunk_size - 1);
		return 0;
	}
	for (uint32_t i = 0; i < p->max_chunks; i++) {
		const char *a = __atomic_load_n(&p->loc[i].addr, __ATOMIC_ACQUIRE);
		if (a && (a < p->resv || a >= p->resv + p->resv_len) &&
		    c >= a && c < a + p->loc[i].len) {
			*idx = i;
			*off = (uint64_t)(c - a);
			return 0;
		}
	}
	return -EINVAL;
}

/* The header before ptr, if ptr can be the data of a block in this pool. */
static int header_of(struct shma_pool *p, const void *ptr, uint32_t *idx, uint64_t *off,
		     struct shma_blk **h)
{
	uint64_t s;
	int r = locate(p, ptr, idx, off);

	if (r < 0)
		return r;
	s = slot_state(p, *idx);
	if (*off % SHMA_GRANULE)
		return -EINVAL;
	if (shma_s_kind(s) == SHMA_KIND_DEDICATED ? *off != mk_page_size()
						   : *off < SHMA_CHUNK_DATA + BLK)
		return -EINVAL;
	*h = (struct shma_blk *)((char *)ptr - BLK);
	return 0;
}

/*
 * Free a plain class block (header h at ref) into the thread cache tc
 * (entered): the CAS that frees it writes the cached mark (owner: tc's),
 * the only shared write. A full class gives its older half back first
 * (may_flush; the fast path leaves that to free_slow, staying a leaf).
 * false if the cache does not take it (a class not cached, a block that
 * is not plain and allocated, a racing change: shma_free_blk judges those
 * and says why).
 */
/*
 * tc's class c is full (tc entered): give its older half back to the list
 * as one chain (the newer blocks, likelier in our CPU cache, stay); false
 * if no record could be had.
 */
static __attribute__((noinline)) bool cache_flush(struct shma_pool *p, struct shma_tcache *tc,
						  unsigned c)
{
	unsigned n = tc->n[c], k = n / 2, m, given = 0, kept;
	struct shma_rec rec;

	/* The pool cache takes what it can (the newer end of the half), the list the rest. */
	m = shma_pc_put(p, c, tc->ref[c], k);
	if (m < k && shma_rec_claim(p, tc->owner, &rec) == 0) {
		/* Entries whose header was scribbled on are dropped, as given. */
		shma_tc_give(p, &rec, tc->owner, c, tc->ref[c], k - m);
		shma_rec_release(&rec);
		given = k - m;
	}
	if (!m && !given)
		return false;
	/* Left: refs[given, k - m) (when no record could be had), then refs[k, n). */
	kept = k - m - given;
	memmove(tc->ref[c], tc->ref[c] + given, kept * sizeof(tc->ref[c][0]));
	memmove(tc->ref[c] + kept, tc->ref[c] + k, (n - k) * sizeof(tc->ref[c][0]));
	tc->n[c] = (uint8_t)(kept + n - k);
	return true;
}

static inline bool cache_put(struct shma_pool *p, struct shma_tcache *tc, struct shma_blk *h,
			     uint32_t ref, uint32_t want_gen, bool by_handle, bool may_flush)
{
	uint64_t w = __atomic_load_n(&h->word, __ATOMIC_ACQUIRE);
	unsigned c = shma_w_cls(w), n;
	uint32_t gen = shma_w_gen(w);

	/* tc_cap is 0 past p->nclasses (SHMA_CLASS_LARGE included): not cached. */
	if (!shma_w_magic_ok(w) || shma_w_flags(w) || !p->tc_cap[c] ||
	    !(gen & 1) || gen + 1 >= SHMA_GEN_RETIRED || (by_handle && gen != want_gen) ||
	    __atomic_load_n(&h->self, __ATOMIC_RELAXED) != ref)
		return false;
	if (mk_unlikely((n = tc->n[c]) >= p->tc_cap[c])) {
		if (!may_flush || !cache_flush(p, tc, c))
			return false;
		n = tc->n[c];
	}
	if (!__atomic_compare_exchange_n(&h->word, &w, tc->mark | (uint64_t)c << 32 | (gen + 1), false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	tc->ref[c][n] = ref;
	tc->n[c] = (uint8_t)(n + 1);
	return true;
}

/* cache_put into this thread's cache for p, bound here if need be. */
static bool free_to_cache(struct shma_pool *p, struct shma_blk *h, uint32_t ref, uint32_t want_gen,
			  bool by_handle, unsigned me)
{
	struct shma_tcache *tc = shma_tc_get(p);
	bool done;

	if (!tc || tc->owner != me || !shma_tc_enter(tc))
		return false;
	done = cache_put(p, tc, h, ref, want_gen, by_handle, true);
	shma_tc_leave(tc);
	return done;
}

/* shma_free beyond the fast path: every check, and the shared lists. */
static __attribute__((noinline)) int free_slow(struct shma_pool *p, void *ptr)
{
	unsigned me;
	struct shma_blk *h;
	uint32_t idx;
	uint64_t off;
	int r;

	if (!ptr)
		return 0;
	if (!p)
		return -EINVAL;
	if (p->rdonly)
		return -EPERM;
	r = header_of(p, ptr, &idx, &off, &h);
	if (r < 0)
		return r;
	r = shma_owner(p, &me);
	if (r < 0)
		return r;
	if (free_to_cache(p, h, shma_ref(p, idx, off - BLK), 0, false, me))
		return 0;
	return shma_free_blk(p, h, shma_ref(p, idx, off - BLK), 0, false, SHMA_ANY_OWNER, me);
}

/*
 * The common case first: a plain class block of a regular chunk mapped
 * here, freed into this thread's cache for p (bound: see shma_alloc).
 * The checks are header_of()'s for a regular chunk but for the slot's
 * state, a line other processes write when they carve: what we have
 * mapped there is the chunk we last mapped (one released since, by
 * another process, stays mapped here with every block free; we let go of
 * our own releases at once), and the header it shows must pass
 * cache_put()'s checks. Whatever fails them, free_slow judges again.
 */
MK_EXPORT int shma_free(struct shma_pool *p, void *ptr)
{
	struct shma_tcache *tc;

	if (mk_likely(p && ptr) && (tc = shma_tc_current(p)) != NULL) {
		uint64_t pvo = (uint64_t)((uintptr_t)ptr - (uintptr_t)p->resv);
		uint64_t off = pvo & (p->chunk_size - 1);

		if (pvo < p->resv_len && !(off % SHMA_GRANULE) && off >= SHMA_CHUNK_DATA + BLK &&
		    __atomic_load_n(&p->loc[pvo >> p->chunk_shift].addr, __ATOMIC_ACQUIRE) ==
		    p->resv + (pvo - off) && shma_tc_enter(tc)) {
			bool done = cache_put(p, tc, (struct shma_blk *)ptr - 1,
					      (uint32_t)((pvo - BLK) / SHMA_GRANULE), 0, false, false);

			shma_tc_leave(tc);
			if (done)
				return 0;
		}
	}
	return free_slow(p, ptr);
}

/*
 * Everything shma_resolve checks; on success *hdr is the block header and
 * *base the chunk mapping.
 */
static int check_handle(struct shma_pool *p, const struct shma_handle *h,
			struct shma_blk **hdr, char **base)
{
	uint32_t idx, off, len, sgen;
	uint64_t s, w;
	struct shma_blk *b;
	int r;

	if (!p || !h)
		return -EINVAL;
	idx = h->chunk & 0xffff;
	sgen = h->chunk >> 16;
	off = h->offset;
	len = h->len;
	if (idx >= p->max_chunks || !len || off % SHMA_GRANULE ||
	    off < SHMA_CHUNK_DATA + BLK || !(h->gen & 1)) {
		shma_refuse("handle: chunk %u offset %u len %u gen %u is not a block's: -EINVAL",
			    idx, off, len, (unsigned)h->gen);
		return -EINVAL;
	}
	s = slot_state(p, idx);
	if (shma_s_gen(s) != sgen || shma_s_st(s) != SHMA_SLOT_LIVE) {
		shma_refuse("handle: chunk %u generation %u, the slot holds %u: %s", idx, sgen,
			    (unsigned)shma_s_gen(s), !shma_s_gen(s) || !sgen ? "-ENOENT" : "-ESTALE");
		return !shma_s_gen(s) || !sgen ? -ENOENT : -ESTALE;
	}
	if (shma_s_kind(s) == SHMA_KIND_DEDICATED && off != mk_page_size())
		return -EINVAL;
	r = shma_map_slot(p, idx, s, base);
	if (r < 0)
		return r;
	if (!mk_range_ok(off, len, p->loc[idx].len))
		return -EINVAL;
	b = (struct shma_blk *)(*base + off - BLK);
	w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
	if (!shma_w_magic_ok(w))
		return -EFAULT;
	if (shma_w_flags(w) == SHMA_F_SHIFTED || shma_w_flags(w) == (SHMA_F_SHIFTED | SHMA_F_INNER))
		return -EINVAL;
	if ((shma_w_cls(w) == SHMA_CLASS_LARGE) != (shma_s_kind(s) == SHMA_KIND_DEDICATED) ||
	    (shma_w_cls(w) != SHMA_CLASS_LARGE && shma_w_cls(w) >= p->nclasses))
		return -EFAULT;
	if (!(shma_w_flags(w) & SHMA_F_INNER) &&
	    __atomic_load_n(&b->self, __ATOMIC_RELAXED) != shma_ref(p, idx, off - BLK))
		return -EFAULT;
	if (shma_w_gen(w) != h->gen)
		return -ESTALE;
	if (__atomic_load_n(&b->aux, __ATOMIC_RELAXED) != len)
		return -EINVAL;
	*hdr = b;
	return 0;
}

MK_EXPORT int shma_resolve(struct shma_pool *p, const struct shma_handle *h, void **ptr)
{
	struct shma_blk *b;
	char *base;
	int r;

	if (!ptr)
		return -EINVAL;
	r = check_handle(p, h, &b, &base);
	if (r < 0)
		return r;
	*ptr = base + h->offset;
	return 0;
}

/* What shma_free_handle and shma_adopt check first: a writable pool, a
 * valid handle (*b its block header), and our registration (*me). */
static int handle_for_change(struct shma_pool *p, const struct shma_handle *h,
			     struct shma_blk **b, unsigned *me)
{
	char *base;
	int r;

	if (p && p->rdonly)
		return -EPERM;
	r = check_handle(p, h, b, &base);
	if (r < 0)
		return r;
	return shma_owner(p, me);
}

MK_EXPORT int shma_free_handle(struct shma_pool *p, const struct shma_handle *h)
{
	unsigned me;
	struct shma_blk *b;
	int r;

	r = handle_for_change(p, h, &b, &me);
	if (r < 0)
		return r;
	if (free_to_cache(p, b, shma_ref(p, h->chunk & 0xffff, h->offset - BLK), h->gen, true, me))
		return 0;
	return shma_free_blk(p, b, shma_ref(p, h->chunk & 0xffff, h->offset - BLK), h->gen,
			     true, SHMA_ANY_OWNER, me);
}

MK_EXPORT int shma_handle_of(struct shma_pool *p, const void *ptr, struct shma_handle *out)
{
	struct shma_blk *b;
	struct shma_handle h;
	uint32_t idx;
	uint64_t off, w;
	int r;

	if (!p || !ptr || !out)
		return -EINVAL;
	r = header_of(p, ptr, &idx, &off, &b);
	if (r < 0)
		return r;
	w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
	if (!shma_w_magic_ok(w))
		return -EFAULT;
	if (!(shma_w_gen(w) & 1))
		return -EINVAL;
	fill_handle(&h, idx, slot_state(p, idx), shma_w_gen(w), off, __atomic_load_n(&b->aux, __ATOMIC_RELAXED));
	/* Full validation (self-reference, class, length) as a resolve would. */
	r = check_handle(p, &h, &b, &(char *){ NULL });
	if (r < 0)
		return r;
	*out = h;
	return 0;
}

MK_EXPORT int shma_block_chunk(struct shma_pool *p, const struct shma_handle *h,
			       struct shma_chunk_info *uinfo)
{
	/* Extensible struct (common/ext.h); the first layout is libshm 3.0's. */
	int64_t usize = mk_ext_size(uinfo, sizeof(struct shma_chunk_info));
	struct shma_chunk_info info;
	struct shma_blk *b;
	char *base;
	uint32_t idx;
	int r;

	if (usize < 0)
		return -EINVAL;
	r = check_handle(p, h, &b, &base);
	if (r < 0)
		return r;
	idx = h->chunk & 0xffff;
	info = (struct shma_chunk_info){
		.base = base, .len = p->loc[idx].len, .fd = p->loc[idx].fd,
		.index = idx, .offset = h->offset,
	};
	mk_ext_out(uinfo, &info, sizeof(info), (size_t)usize);
	return 0;
}

/*
 * Take ownership of a block handed to us: the owner byte of the header
 * that carries the block's length (the inner header of an over-aligned
 * block, the only one otherwise) is the block's one owner at every
 * instant, changed by one CAS that also checks the generation. Reclaim
 * decides by that byte with a CAS on the same word, so exactly one of an
 * adopt and a reclaim of the sender (or a free) wins; the loser sees the
 * other's change (-ESTALE here). The start header of an over-aligned
 * block follows (it only informs walks).
 */
MK_EXPORT int shma_adopt(struct shma_pool *p, const struct shma_handle *h)
{
	struct shma_blk *b, *start;
	uint64_t w;
	unsigned me;
	int r;

	r = handle_for_change(p, h, &b, &me);
	if (r < 0)
		return r;
	w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
	do {
		if (shma_w_gen(w) != h->gen || !shma_w_magic_ok(w))
			return -ESTALE;        /* freed (or reclaimed) since the check */
		if (shma_w_owner(w) == me)
			break;
	} while (!__atomic_compare_exchange_n(&b->word, &w,
					      (w & ~(0xffull << 40)) | (uint64_t)me << 40, false,
					      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	if (shma_w_flags(w) == SHMA_F_INNER &&
	    (start = shma_blk_at(p, __atomic_load_n(&b->self, __ATOMIC_RELAXED))) != NULL) {
		uint64_t sw = __atomic_load_n(&start->word, __ATOMIC_ACQUIRE);
		while (shma_w_magic_ok(sw) && shma_w_flags(sw) == SHMA_F_SHIFTED &&
		       shma_w_gen(sw) == h->gen && shma_w_owner(sw) != me &&
		       !__atomic_compare_exchange_n(&start->word, &sw,
						    (sw & ~(0xffull << 40)) | (uint64_t)me << 40, false,
						    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			;
	}
	return 0;
}
