/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Free lists, carving's bump words and the in-flight records that make
 * both crash-safe (see "intents" in shmP.h), including trim's TAKE of a
 * whole list and its close of a chunk (shma_bump_close), which reclaim of
 * a dead trimmer finishes (hold_chain, drop_closed).
 *
 * A free list is a Treiber stack whose head is 16 bytes, changed only by
 * a 16-byte CAS: a 48-bit tag (so a CAS never suffers ABA in any
 * realistic lifetime), the record of the last change, the first ref. The
 * protocol for every change of a head (or of a bump word):
 *   1. read it; if it names a record (the last change), confirm that
 *      record (PENDING -> CONFIRMED, one CAS, only if it is still about
 *      exactly that change);
 *   2. write our own record: the change we are about to make;
 *   3. CAS, naming our record.
 * So at every instant, for every record, whether its change happened can
 * be told from the shared words alone: reclaim of a dead process reads
 * the word first, then the record (shma_resolve_user).
 *
 * Record writes are release stores: the locked CAS that follows (x86:
 * lock cmpxchg, a full barrier; in C11 terms a release operation the
 * record write is sequenced before) publishes them no later than itself.
 *
 * Lock-free (a stalled or dead process blocks nobody: confirming is a
 * single CAS by whoever comes next) and async-signal-safe (records are
 * claimed per operation, so a handler nested in its thread's operation
 * takes another). Nothing here writes into a chunk on another's behalf:
 * helpers write only root memory, so a helper that stalls cannot write
 * into a chunk that was given back and made anew meanwhile.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>

#include "common/macro.h"
#include "shmP.h"

#define BLK ((uint64_t)sizeof(struct shma_blk))

_Static_assert(offsetof(struct shma_root, heads) % 16 == 0, "16-byte CAS on list heads");
_Static_assert(SHMA_MAX_USERS * SHMA_LANES + SHMA_LANES < 0xffff, "actors fit 16 bits");

/*
 * The 16-byte CAS (x86-64: lock cmpxchg16b; lo at the lower address).
 * Written out for x86-64 only: other 64-bit CPUs have one (arm64's CASP,
 * or LDXP/STXP), but the compilers reach it through libatomic, which the
 * libraries do not link. A port adds its instruction here.
 */
#if !defined(__x86_64__)
#error "libshm's free lists need a 16-byte compare-and-swap: only x86-64's is written (libshm/list.c)"
#endif
static inline bool cas128(struct shma_head *h, uint64_t *lo, uint64_t *hi, uint64_t nlo,
			  uint64_t nhi)
{
	bool ok;

	__asm__ __volatile__("lock cmpxchg16b %1"
			     : "=@ccz"(ok), "+m"(*h), "+a"(*lo), "+d"(*hi)
			     : "b"(nlo), "c"(nhi)
			     : "memory");
	return ok;
}

/* A consistent snapshot: every change moves the tag, so an unchanged lo
 * around the read of hi means hi belongs to it. */
static inline void head_load(const struct shma_head *h, uint64_t *lo, uint64_t *hi)
{
	for (;;) {
		uint64_t a = __atomic_load_n(&h->lo, __ATOMIC_ACQUIRE);
		uint64_t b = __atomic_load_n(&h->hi, __ATOMIC_ACQUIRE);

		if (__atomic_load_n(&h->lo, __ATOMIC_ACQUIRE) == a) {
			*lo = a;
			*hi = b;
			return;
		}
	}
}

static struct shma_intent *intent_of(struct shma_pool *p, unsigned actor)
{
	unsigned a = actor - 1;

	return &p->root->intents[a / SHMA_LANES][a % SHMA_LANES];
}

/* Mark actor's record CONFIRMED if it is still about exactly this change. */
static void confirm(struct shma_pool *p, unsigned actor, bool head, uint64_t payload)
{
	struct shma_intent *in;
	uint64_t w;
	unsigned op;

	if (!actor || actor > SHMA_MAX_USERS * SHMA_LANES)
		return;
	in = intent_of(p, actor);
	w = __atomic_load_n(&in->word, __ATOMIC_ACQUIRE);
	op = shma_in_op(w);
	/* A head op is about (class, tag); a chain's also names its length. */
	if (shma_in_state(w) != SHMA_IN_PENDING ||
	    (head ? shma_in_head_of(shma_in_payload(w)) : shma_in_payload(w)) != payload ||
	    (head ? op != SHMA_OP_POP && op != SHMA_OP_PUSH && op != SHMA_OP_TAKE &&
		    op != SHMA_OP_POPN && op != SHMA_OP_PUSHN : op != SHMA_OP_CARVE))
		return;
	__atomic_compare_exchange_n(&in->word, &w, shma_in_word(op, SHMA_IN_CONFIRMED, shma_in_payload(w)),
				    false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

static void confirm_head(struct shma_pool *p, unsigned c, uint64_t lo)
{
	confirm(p, shma_h_actor(lo), true, shma_in_head(c, shma_h_tag(lo)));
}

/* ---- records ----------------------------------------------------------------------------- */

/* Where a thread starts looking: its own cache line of records, usually. */
static unsigned lane_hint(void)
{
	uintptr_t t = (uintptr_t)pthread_self();

	t ^= t >> 17;
	t *= 0x9e3779b97f4a7c15ull;
	return (unsigned)(t >> 60) * 4;         /* 16 lines of 4 records */
}

int shma_rec_claim(struct shma_pool *p, unsigned user, struct shma_rec *r)
{
	struct shma_intent *lanes = p->root->intents[user];
	unsigned start = lane_hint();

	for (unsigned spins = 0; spins < (1u << 20); spins++) {
		for (unsigned k = 0; k < SHMA_LANES; k++) {
			unsigned i = (start + k) % SHMA_LANES;
			uint64_t w = 0;

			if (__atomic_load_n(&lanes[i].word, __ATOMIC_RELAXED))
				continue;
			if (__atomic_compare_exchange_n(&lanes[i].word, &w,
							shma_in_word(SHMA_OP_IDLE, 0, 0), false,
							__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
				r->in = &lanes[i];
				r->actor = shma_actor(user, i);
				return 0;
			}
		}
		/* SHMA_LANES operations of this process under way at once: wait. */
		mk_cpu_relax();
	}
	/* Every record held for ~a second: not our threads (a damaged root). */
	return -EAGAIN;
}

void shma_rec_release(struct shma_rec *r)
{
	__atomic_store_n(&r->in->word, 0, __ATOMIC_RELEASE);
}

static void rec_idle(struct shma_rec *r)
{
	__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_IDLE, 0, 0), __ATOMIC_RELEASE);
}

void shma_rec_idle(struct shma_rec *r)
{
	rec_idle(r);
}

void shma_rec_push_intent(struct shma_rec *r, unsigned c, uint32_t ref, uint32_t gen)
{
	__atomic_store_n(&r->in->ref, (uint64_t)gen << 32 | ref, __ATOMIC_RELAXED);
	__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_PUSH, SHMA_IN_PENDING, shma_in_head(c, 0)),
			 __ATOMIC_RELEASE);
}

/* ---- lists ------------------------------------------------------------------------------- */

/*
 * The header a free-list ref names, mapping its chunk if needed; NULL if
 * the ref cannot name a block of a live regular chunk (a damaged list).
 */
struct shma_blk *shma_blk_at_err(struct shma_pool *p, uint32_t ref, int *err)
{
	uint64_t pvo = (uint64_t)ref * SHMA_GRANULE;
	uint32_t idx = (uint32_t)(pvo >> p->chunk_shift);
	uint64_t off = pvo & (p->chunk_size - 1), s;
	char *base;

	*err = -EFAULT;
	if (idx >= p->max_chunks || off < SHMA_CHUNK_DATA || off > p->chunk_size - BLK)
		return NULL;
	s = __atomic_load_n(&p->root->slots[idx].state, __ATOMIC_ACQUIRE);
	if (shma_s_st(s) != SHMA_SLOT_LIVE || shma_s_kind(s) != SHMA_KIND_REGULAR)
		return NULL;
	*err = shma_map_slot(p, idx, s, &base);
	if (*err < 0)
		return NULL;
	return (struct shma_blk *)(base + off);
}

struct shma_blk *shma_blk_at(struct shma_pool *p, uint32_t ref)
{
	int err;

	return shma_blk_at_err(p, ref, &err);
}

int shma_pop(struct shma_pool *p, struct shma_rec *r, unsigned c, uint32_t *ref,
	     struct shma_blk **blk)
{
	struct shma_head *h = &p->root->heads[c];
	uint64_t lo, hi;

	for (;;) {
		uint32_t top, next;
		uint64_t tag, w;
		struct shma_blk *b;
		int err;

		head_load(h, &lo, &hi);
		top = (uint32_t)hi;
		if (!top)
			return -ENOENT;
		b = shma_blk_at_err(p, top, &err);
		if (!b) {
			/* A stale head (its chunk was just trimmed), a damaged list, or
			 * (-ENXIO) a memfd chunk this process was never sent. */
			uint64_t lo2, hi2;
			head_load(h, &lo2, &hi2);
			if (lo2 != lo)
				continue;
			return err;
		}
		confirm_head(p, c, lo);
		/* May read a block someone else just popped: the tag makes our CAS fail then. */
		next = __atomic_load_n(&b->aux, __ATOMIC_RELAXED);
		w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
		tag = shma_h_tag(lo) + 1;
		__atomic_store_n(&r->in->ref, (uint64_t)shma_w_gen(w) << 32 | top, __ATOMIC_RELAXED);
		__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_POP, SHMA_IN_PENDING,
							    shma_in_head(c, tag)), __ATOMIC_RELEASE);
		if (cas128(h, &lo, &hi, shma_h_lo(tag, r->actor), next)) {
			*ref = top;
			*blk = b;
			return 0;
		}
	}
}

void shma_push(struct shma_pool *p, struct shma_rec *r, unsigned c, uint32_t ref,
	       struct shma_blk *b)
{
	struct shma_head *h = &p->root->heads[c];
	uint64_t lo, hi;

	head_load(h, &lo, &hi);
	for (;;) {
		uint64_t tag = shma_h_tag(lo) + 1;

		confirm_head(p, c, lo);
		__atomic_store_n(&b->aux, (uint32_t)hi, __ATOMIC_RELAXED);
		__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_PUSH, SHMA_IN_PENDING,
							    shma_in_head(c, tag)), __ATOMIC_RELEASE);
		if (cas128(h, &lo, &hi, shma_h_lo(tag, r->actor), ref))
			break;
	}
	rec_idle(r);
}

int shma_pop_chain(struct shma_pool *p, struct shma_rec *r, unsigned c, unsigned max,
		   uint32_t *refs, struct shma_blk **blks)
{
	struct shma_head *h = &p->root->heads[c];
	uint64_t lo, hi;

	for (;;) {
		uint32_t ref;
		uint64_t tag;
		unsigned n = 0;
		int err = 0;

		head_load(h, &lo, &hi);
		/*
		 * Walk max entries. The links may be read while others pop and
		 * reuse those blocks: then the head moved, and our CAS fails.
		 */
		for (ref = (uint32_t)hi; ref && n < max; n++) {
			struct shma_blk *b = shma_blk_at_err(p, ref, &err);

			if (!b)
				break;
			refs[n] = ref;
			blks[n] = b;
			ref = __atomic_load_n(&b->aux, __ATOMIC_RELAXED);
		}
		if (n < 2) {
			uint64_t lo2, hi2;

			if (n == 1) {
				int e = shma_pop(p, r, c, &refs[0], &blks[0]);

				return e < 0 ? e : 1;
			}
			/* Empty, or a head we cannot follow (see shma_pop). */
			head_load(h, &lo2, &hi2);
			if (lo2 != lo)
				continue;
			return hi ? err : -ENOENT;
		}
		confirm_head(p, c, lo);
		tag = shma_h_tag(lo) + 1;
		__atomic_store_n(&r->in->ref, refs[0], __ATOMIC_RELAXED);
		__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_POPN, SHMA_IN_PENDING,
							    shma_in_head(c, tag) |
							    (uint64_t)n << SHMA_IN_COUNT_SHIFT),
				 __ATOMIC_RELEASE);
		if (cas128(h, &lo, &hi, shma_h_lo(tag, r->actor), ref))
			return (int)n;
	}
}

void shma_push_chain(struct shma_pool *p, struct shma_rec *r, unsigned c, const uint32_t *refs,
		     struct shma_blk *const *blks, const uint32_t *gens, unsigned n)
{
	struct shma_head *h = &p->root->heads[c];
	uint64_t lo, hi, count = (uint64_t)n << SHMA_IN_COUNT_SHIFT;

	/* Links first: once the record names the chain, reclaim may walk it. */
	for (unsigned i = 0; i + 1 < n; i++)
		__atomic_store_n(&blks[i]->aux, refs[i + 1], __ATOMIC_RELAXED);
	__atomic_store_n(&r->in->ref, refs[0], __ATOMIC_RELAXED);
	__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_PUSHN, SHMA_IN_PENDING,
						    shma_in_head(c, 0) | count), __ATOMIC_RELEASE);
	for (unsigned i = 0; i < n; i++)
		__atomic_store_n(&blks[i]->word, shma_blk_word(gens[i], c, SHMA_OWNER_NONE),
				 __ATOMIC_RELEASE);
	head_load(h, &lo, &hi);
	for (;;) {
		uint64_t tag = shma_h_tag(lo) + 1;

		confirm_head(p, c, lo);
		__atomic_store_n(&blks[n - 1]->aux, (uint32_t)hi, __ATOMIC_RELAXED);
		__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_PUSHN, SHMA_IN_PENDING,
							    shma_in_head(c, tag) | count), __ATOMIC_RELEASE);
		if (cas128(h, &lo, &hi, shma_h_lo(tag, r->actor), refs[0]))
			break;
	}
	rec_idle(r);
}

uint32_t shma_take_list(struct shma_pool *p, unsigned c, struct shma_rec *r)
{
	struct shma_head *h = &p->root->heads[c];
	uint64_t lo, hi;

	head_load(h, &lo, &hi);
	for (;;) {
		uint64_t tag = shma_h_tag(lo) + 1;

		if (r && !(uint32_t)hi)
			return 0;       /* nothing to take: no record, no change */
		confirm_head(p, c, lo);
		if (r) {
			/*
			 * The record may still be about the list taken before
			 * (trim reuses it): idle first, so that it never pairs
			 * that list's TAKE with this list's first ref.
			 */
			rec_idle(r);
			__atomic_store_n(&r->in->ref, (uint32_t)hi, __ATOMIC_RELEASE);
			__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_TAKE, SHMA_IN_PENDING,
								    shma_in_head(c, tag)), __ATOMIC_RELEASE);
		}
		if (cas128(h, &lo, &hi, shma_h_lo(tag, r ? r->actor : 0), 0))
			return (uint32_t)hi;
	}
}

uint32_t shma_list_first(struct shma_pool *p, unsigned c)
{
	uint64_t lo, hi;

	head_load(&p->root->heads[c], &lo, &hi);
	return (uint32_t)hi;
}

/* ---- bump words ------------------------------------------------------------------------- */

static void confirm_bump(struct shma_pool *p, uint32_t idx, uint64_t b)
{
	confirm(p, shma_bump_actor(b), false, shma_in_carve(idx, shma_bump_gen(b), shma_bump_off(b)));
}

bool shma_bump_cas(struct shma_pool *p, uint32_t idx, uint64_t *old, unsigned gen, uint64_t off,
		   struct shma_rec *r)
{
	struct shma_slot *s = &p->root->slots[idx];

	confirm_bump(p, idx, *old);
	if (r)
		__atomic_store_n(&r->in->word, shma_in_word(SHMA_OP_CARVE, SHMA_IN_PENDING,
							    shma_in_carve(idx, gen, off)), __ATOMIC_RELEASE);
	return __atomic_compare_exchange_n(&s->bump, old, shma_bump_word(gen, off, r ? r->actor : 0),
					   false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

bool shma_bump_close(struct shma_pool *p, uint32_t idx, uint64_t *old, unsigned gen,
		     struct shma_rec *r)
{
	struct shma_slot *s = &p->root->slots[idx];

	/* A dead carver's record is judged against the word we replace: confirm it first. */
	confirm_bump(p, idx, *old);
	return __atomic_compare_exchange_n(&s->bump, old,
					   shma_bump_word(gen, p->chunk_size + 1 + shma_bump_off(*old), r->actor),
					   false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

/* ---- reclaim: what dead records were doing ---------------------------------------------- */

/* Did the change this (head) record is about happen? Word first, then record. */
static bool head_done(struct shma_pool *p, unsigned c, uint64_t tag, unsigned actor,
		      struct shma_intent *in)
{
	uint64_t lo, hi, w;

	if (!tag)
		return false;
	head_load(&p->root->heads[c], &lo, &hi);
	if (shma_h_tag(lo) == tag)
		return shma_h_actor(lo) == actor;
	if (shma_h_tag(lo) < tag)
		return false;
	w = __atomic_load_n(&in->word, __ATOMIC_SEQ_CST);
	return shma_in_state(w) == SHMA_IN_CONFIRMED &&
	       shma_in_head_of(shma_in_payload(w)) == shma_in_head(c, tag);
}

/* Did this carve happen? The bump word first, then the record. */
static bool carve_done(struct shma_pool *p, uint32_t idx, unsigned gen, uint64_t off,
		       unsigned actor, struct shma_intent *in)
{
	uint64_t b = __atomic_load_n(&p->root->slots[idx].bump, __ATOMIC_SEQ_CST), w;

	if (shma_bump_gen(b) != gen || shma_bump_off(b) < off)
		return false;
	if (shma_bump_off(b) == off)
		return shma_bump_actor(b) == actor;
	w = __atomic_load_n(&in->word, __ATOMIC_SEQ_CST);
	return shma_in_state(w) == SHMA_IN_CONFIRMED && shma_in_payload(w) == shma_in_carve(idx, gen, off);
}

/* Push block ref back if its header is still exactly free block (c, gen): nobody else holds it. */
static void give_back(struct shma_pool *p, struct shma_rec *r, unsigned c, uint32_t ref, uint32_t gen)
{
	struct shma_blk *b = shma_blk_at(p, ref);
	uint64_t w;

	if (!b)
		return;
	w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
	if (!shma_w_magic_ok(w) || shma_w_cls(w) != c || shma_w_flags(w) || shma_w_gen(w) != gen ||
	    (gen & 1) || gen >= SHMA_GEN_RETIRED || __atomic_load_n(&b->self, __ATOMIC_RELAXED) != ref)
		return;
	shma_rec_push_intent(r, c, ref, gen);
	__atomic_store_n(&b->word, shma_blk_word(gen, c, SHMA_OWNER_NONE), __ATOMIC_RELEASE);
	shma_push(p, r, c, ref, b);
}

/* A carve that happened and whose header was never written: a free block now. */
static void finish_carve(struct shma_pool *p, struct shma_rec *r, uint32_t idx, unsigned gen,
			 uint64_t end, unsigned c)
{
	uint64_t s = __atomic_load_n(&p->root->slots[idx].state, __ATOMIC_ACQUIRE), off, w = 0;
	struct shma_blk *b;
	char *base;

	if (c >= p->nclasses || shma_s_st(s) != SHMA_SLOT_LIVE || shma_s_gen(s) != gen ||
	    shma_s_kind(s) != SHMA_KIND_REGULAR || end > p->chunk_size ||
	    end < SHMA_CHUNK_DATA + shma_class_bytes(c) || shma_map_slot(p, idx, s, &base) < 0)
		return;
	off = end - shma_class_bytes(c);
	b = (struct shma_blk *)(base + off);
	/* Nobody else writes it (its carver is dead); a reclaimer before us
	 * may have written it as free (generation 0) and died. */
	if (__atomic_load_n(&b->word, __ATOMIC_ACQUIRE) == 0) {
		__atomic_store_n(&b->self, shma_ref(p, idx, off), __ATOMIC_RELAXED);
		__atomic_compare_exchange_n(&b->word, &w, shma_blk_word(0, c, SHMA_OWNER_NONE), false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	}
	give_back(p, r, c, shma_ref(p, idx, off), 0);
}

/*
 * A chain only dead user u could reach: a TAKE by its trim that happened
 * (flags SHMA_F_HELD, the whole list: count 0), a POPN that happened or a
 * PUSHN that did not (flags 0, the cached mark: count entries). Its
 * entries are free, marked (flags, owner u) as far as u got, owner NONE
 * after that. Mark the rest, so that the reclaim walk (which pushes every
 * block a dead user held) gives back the whole chain. Marking, not
 * pushing, keeps the chain intact: a reclaimer killed half-way leaves the
 * record, and the next one walks the same chain again.
 */
static void hold_chain(struct shma_pool *p, unsigned u, unsigned c, uint32_t first, unsigned flags,
		       unsigned count)
{
	uint64_t limit = 0, steps = 0;

	for (uint32_t i = 0; i < p->max_chunks; i++)
		limit += __atomic_load_n(&p->root->slots[i].size, __ATOMIC_RELAXED) / 32;
	if (count)
		limit = MK_MIN(limit, count);
	for (uint32_t ref = first; ref && steps++ < limit;) {
		struct shma_blk *b = shma_blk_at(p, ref);
		uint64_t w;
		uint32_t next;

		if (!b)
			return;
		w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
		if (!shma_w_magic_ok(w) || shma_w_cls(w) != c || (shma_w_gen(w) & 1) ||
		    __atomic_load_n(&b->self, __ATOMIC_RELAXED) != ref)
			return;         /* a damaged entry: the rest is lost, as for trim */
		if (shma_w_flags(w) == 0 && shma_w_owner(w) == SHMA_OWNER_NONE)
			__atomic_store_n(&b->word, shma_blk_word(shma_w_gen(w), c | flags, u),
					 __ATOMIC_RELEASE);
		else if (w != shma_blk_word(shma_w_gen(w), c | flags, u))
			return;
		next = __atomic_load_n(&b->aux, __ATOMIC_RELAXED);
		ref = next;
	}
}

/*
 * Regular chunks dead user u's trim closed (the bump word names one of
 * its records): it had found every carved block SHMA_F_HELD by itself,
 * and died before dropping them. Finish: drop them.
 */
static void drop_closed(struct shma_pool *p, unsigned u)
{
	struct shma_root *rt = p->root;
	uint32_t hwm = __atomic_load_n(&rt->hwm, __ATOMIC_ACQUIRE);

	if (hwm > p->max_chunks)
		hwm = p->max_chunks;
	for (uint32_t i = 0; i < hwm; i++) {
		uint64_t s = __atomic_load_n(&rt->slots[i].state, __ATOMIC_ACQUIRE);
		uint64_t b = __atomic_load_n(&rt->slots[i].bump, __ATOMIC_ACQUIRE);
		unsigned a = shma_bump_actor(b);

		if (shma_s_st(s) != SHMA_SLOT_LIVE || shma_s_kind(s) != SHMA_KIND_REGULAR ||
		    shma_bump_gen(b) != shma_s_gen(s) || !shma_bump_closed(b, p->chunk_size) ||
		    !a || (a - 1) / SHMA_LANES != u)
			continue;
		shma_drop_regular(p, i, s);
	}
}

void shma_resolve_user(struct shma_pool *p, unsigned u)
{
	for (unsigned lane = 0; lane < SHMA_LANES; lane++) {
		struct shma_intent *in = &p->root->intents[u][lane];
		struct shma_rec r = { in, shma_actor(u, lane) };
		uint64_t w = __atomic_load_n(&in->word, __ATOMIC_SEQ_CST);
		uint64_t ref = __atomic_load_n(&in->ref, __ATOMIC_RELAXED), pl = shma_in_payload(w);
		unsigned c = (unsigned)(pl >> 48) & 0x3f;
		uint64_t tag = pl & SHMA_TAG_MASK;

		switch (shma_in_op(w)) {
		case SHMA_OP_POP:
			/* Popped and the header never written: back on the list. */
			if (c < p->nclasses && head_done(p, c, tag, r.actor, in))
				give_back(p, &r, c, (uint32_t)ref, (uint32_t)(ref >> 32));
			break;
		case SHMA_OP_PUSH:
			/* Freed (header free) but never pushed: push it. */
			if (c < p->nclasses && !head_done(p, c, tag, r.actor, in))
				give_back(p, &r, c, (uint32_t)ref, (uint32_t)(ref >> 32));
			break;
		case SHMA_OP_CARVE: {
			uint32_t idx = (uint32_t)(pl >> 43) & 0xffff;
			unsigned gen = (unsigned)(pl >> 27) & 0xffff;
			uint64_t end = (pl & 0x7ffffff) * SHMA_GRANULE;
			if (idx < p->max_chunks && carve_done(p, idx, gen, end, r.actor, in))
				finish_carve(p, &r, idx, gen, end, (unsigned)ref);
			break;
		}
		case SHMA_OP_TAKE:
			/* A trim's list taken whole: hold all of it for the walk. */
			if (c < p->nclasses && head_done(p, c, tag, r.actor, in))
				hold_chain(p, u, c, (uint32_t)ref, SHMA_F_HELD, 0);
			break;
		case SHMA_OP_POPN:
			/* A chain popped into its cache: cached, for the walk. */
			if (c < p->nclasses && shma_in_count(pl) >= 2 && head_done(p, c, tag, r.actor, in))
				hold_chain(p, u, c, (uint32_t)ref, 0, shma_in_count(pl));
			break;
		case SHMA_OP_PUSHN:
			/* A chain from its cache never pushed: cached again, for the walk. */
			if (c < p->nclasses && shma_in_count(pl) >= 2 && !head_done(p, c, tag, r.actor, in))
				hold_chain(p, u, c, (uint32_t)ref, 0, shma_in_count(pl));
			break;
		default:
			break;
		}
		__atomic_store_n(&in->word, 0, __ATOMIC_SEQ_CST);
	}
	/* After the records (a TAKE's chain is walked while its chunks are live). */
	drop_closed(p, u);
}
