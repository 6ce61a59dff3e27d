/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Repair: give back free blocks no free list holds, once no other live
 * process is registered (after the reclaim of dead ones, reclaim.c).
 */
#include "config.h"

#include <errno.h>

#include "common/macro.h"
#include "common/sys.h"
#include "shmP.h"

struct repair_ud {
	uint64_t limit;
	int pushed;
	struct shma_rec rec;            /* ours: what we push goes under it */
};

/* A free block of a regular chunk that no list holds (repair's lists are marked). */
static int repair_fn(struct shma_pool *p, struct shma_blk *b, uint32_t ref, uint64_t w, void *ud)
{
	struct repair_ud *r = ud;
	unsigned c = shma_w_cls(w);

	if (c == SHMA_CLASS_LARGE || (shma_w_gen(w) & 1) || shma_w_flags(w) == SHMA_F_HELD ||
	    shma_w_gen(w) >= SHMA_GEN_RETIRED)
		return 0;       /* allocated, held (our lists), or retired (its generation would wrap) */
	/* (SHMA_F_HELD by another user: a dead one's went back in the reclaim
	 * before us; a live one would be a registered user, which we ruled out.) */
	if (shma_w_flags(w) == SHMA_F_SHIFTED || shma_w_flags(w) == SHMA_F_INNER)
		return 0;       /* not a free block's start header */
	if (shma_w_owner(w) != SHMA_OWNER_NONE)
		return 0;       /* in a thread cache of ours (reclaim gave back the dead's) */
	shma_rec_push_intent(&r->rec, c, ref, shma_w_gen(w));
	__atomic_store_n(&b->word, shma_blk_word(shma_w_gen(w), c, SHMA_OWNER_NONE), __ATOMIC_RELEASE);
	__atomic_store_n(&b->self, ref, __ATOMIC_RELAXED);
	shma_push(p, &r->rec, c, ref, b);
	r->pushed++;
	return 0;
}

/* Repair: a dead carver's block becomes a free block of its class. */
static void repair_gap(struct shma_pool *p, struct shma_blk *b, uint32_t ref, unsigned c, void *ud)
{
	struct repair_ud *r = ud;

	__atomic_store_n(&b->self, ref, __ATOMIC_RELAXED);
	shma_rec_push_intent(&r->rec, c, ref, 0);
	__atomic_store_n(&b->word, shma_blk_word(0, c, SHMA_OWNER_NONE), __ATOMIC_RELEASE);
	shma_push(p, &r->rec, c, ref, b);
	r->pushed++;
}

/*
 * Walk a list we took (TAKE under our record), marking its entries held by
 * us (self), or unmarking and pushing them back under a PUSH record each.
 * Killed in between, reclaim of our slot gives all of it back: the TAKE
 * record covers what we had not marked yet, the marks the rest.
 */
static void repair_list(struct shma_pool *p, struct shma_rec *rec, unsigned c, uint32_t head,
			uint64_t limit, bool mark, unsigned self)
{
	uint64_t steps = 0;

	for (uint32_t ref = head; ref && steps++ < limit;) {
		struct shma_blk *b = shma_blk_at(p, ref);
		uint64_t w;
		uint32_t next;

		if (!b)
			break;
		w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
		if (!shma_w_magic_ok(w) || shma_w_cls(w) != c || (shma_w_gen(w) & 1) ||
		    __atomic_load_n(&b->self, __ATOMIC_RELAXED) != ref ||
		    (mark ? shma_w_flags(w) || shma_w_owner(w) != SHMA_OWNER_NONE : !shma_w_held_by(w, self)))
			break;  /* a damaged entry (or a cycle): the rest of the list is lost */
		next = __atomic_load_n(&b->aux, __ATOMIC_RELAXED);
		if (mark) {
			__atomic_store_n(&b->word, shma_blk_word(shma_w_gen(w), c | SHMA_F_HELD, self),
					 __ATOMIC_RELEASE);
		} else {
			shma_rec_push_intent(rec, c, ref, shma_w_gen(w));
			__atomic_store_n(&b->word, shma_blk_word(shma_w_gen(w), c, SHMA_OWNER_NONE),
					 __ATOMIC_RELEASE);
			shma_push(p, rec, c, ref, b);
		}
		ref = next;
	}
}

/*
 * Give back free blocks that no free list holds: those of processes killed
 * between taking a block off a list and marking it allocated, or between
 * marking it free and putting it on a list. While other processes may be
 * inside shma_alloc/shma_free, such a block cannot be told from one in
 * their hands, so this runs only when no other live process is registered
 * (after giving back what dead ones held), and keeps new registrations
 * out (-EBUSY in them, waited for by shma_pool_attach) while it runs.
 */
MK_EXPORT int shma_pool_repair(struct shma_pool *p)
{
	struct shma_user *lock;
	struct repair_ud ru = { 0 };
	uint32_t heads[SHMA_NCLASSES];
	int64_t me, holder;
	unsigned self;
	int blocks, r;

	if (!p)
		return -EINVAL;
	if (p->rdonly)
		return -EPERM;
	r = shma_owner(p, &self);
	if (r < 0)
		return r;
	lock = &p->root->users[SHMA_REPAIR_SLOT];
	me = mk_getpid();
	holder = __atomic_load_n(&lock->pid, __ATOMIC_SEQ_CST);
	if (holder && (holder == me || shma_pid_alive(holder, __atomic_load_n(&lock->start,
									       __ATOMIC_ACQUIRE))))
		return -EBUSY;
	__atomic_store_n(&lock->start, 0, __ATOMIC_SEQ_CST);
	if (!__atomic_compare_exchange_n(&lock->pid, &holder, me, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_RELAXED))
		return -EBUSY;
	/* Locked first, then look: a registrant either sees the lock or we see it. */
	r = shma_reclaim_users(p, &blocks);
	for (unsigned u = 0; r >= 0 && u < SHMA_MAX_USERS; u++)
		if (u != self && __atomic_load_n(&p->root->users[u].pid, __ATOMIC_SEQ_CST))
			r = -EBUSY;
	if (r >= 0)
		r = shma_rec_claim(p, self, &ru.rec);
	if (r >= 0) {
		for (uint32_t i = 0; i < p->max_chunks; i++)
			ru.limit += __atomic_load_n(&p->root->slots[i].size, __ATOMIC_RELAXED) / 32;
		for (unsigned c = 0; c < p->nclasses; c++) {
			heads[c] = shma_take_list(p, c, &ru.rec);
			repair_list(p, &ru.rec, c, heads[c], ru.limit, true, self);
		}
		/* Every taken block is marked: the TAKE record has nothing more to say. */
		shma_rec_idle(&ru.rec);
		r = shma_walk(p, repair_fn, repair_gap, &ru);   /* > 0: a gap too odd to size */
		for (unsigned c = 0; c < p->nclasses; c++)
			repair_list(p, &ru.rec, c, heads[c], ru.limit, false, self);
		shma_rec_release(&ru.rec);
	}
	__atomic_store_n(&lock->pid, 0, __ATOMIC_SEQ_CST);
	return r < 0 ? r : ru.pushed;
}
