/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reclaiming what dead processes held (their blocks, their user slots,
 * chunks their creators or releasers left half-made), and disowning our
 * blocks when we detach: walks over the pool's blocks (walk.c).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

#define BLK ((uint64_t)sizeof(struct shma_blk))

struct owner_ud {
	uint64_t set[4];        /* owners whose blocks to free (reclaim) */
	unsigned owner;         /* the owner to disown (disown) */
	int count;
};

static bool in_set(const uint64_t *set, unsigned o)
{
	return o < 256 && (set[o / 64] >> (o % 64) & 1);
}

/* Free allocated blocks of dead owners. */
static int reclaim_fn(struct shma_pool *p, struct shma_blk *b, uint32_t ref, uint64_t w, void *ud)
{
	struct owner_ud *o = ud;
	unsigned c = shma_w_cls(w);
	uint64_t bytes = c == SHMA_CLASS_LARGE ? 0 : shma_class_bytes(c), hw;
	struct shma_blk *h;

	if (c == SHMA_CLASS_LARGE && !(shma_w_gen(w) & 1) && in_set(o->set, shma_w_owner(w))) {
		/* Its (dead) freer did not get to give the chunk back: finish. */
		uint32_t idx = (uint32_t)(((uint64_t)ref * SHMA_GRANULE) >> p->chunk_shift);
		uint64_t s = __atomic_load_n(&p->root->slots[idx].state, __ATOMIC_ACQUIRE);
		if (shma_s_st(s) == SHMA_SLOT_LIVE && shma_s_kind(s) == SHMA_KIND_DEDICATED)
			shma_release_chunk(p, idx, s);
		return 0;
	}
	if (c != SHMA_CLASS_LARGE && shma_w_flags(w) == SHMA_F_SHIFTED && (shma_w_gen(w) & 1)) {
		/* Its inner header freed by a dead process that never got to mark
		 * the start header free and push it: finish that free. */
		h = shma_data_header(b, w, bytes);
		hw = h ? __atomic_load_n(&h->word, __ATOMIC_ACQUIRE) : 0;
		if (h && shma_w_magic_ok(hw) && shma_w_flags(hw) == SHMA_F_INNER &&
		    shma_w_gen(hw) == shma_w_gen(w) + 1 && in_set(o->set, shma_w_owner(hw))) {
			struct shma_rec rec;
			/* Under the dead freer's records (its slot is ours now). */
			if (shma_rec_claim(p, shma_w_owner(hw), &rec) < 0)
				return 0;
			shma_rec_push_intent(&rec, c, ref, shma_w_gen(w) + 1);
			if (__atomic_compare_exchange_n(&b->word, &w,
							shma_blk_word(shma_w_gen(w) + 1, c, SHMA_OWNER_NONE),
							false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
				shma_push(p, &rec, c, ref, b);
				o->count++;
			}
			shma_rec_release(&rec);
			return 0;
		}
	}
	if (c != SHMA_CLASS_LARGE && !(shma_w_gen(w) & 1) &&
	    (shma_w_flags(w) == SHMA_F_HELD || shma_w_flags(w) == 0) && in_set(o->set, shma_w_owner(w))) {
		/*
		 * A free block a dead user held privately: SHMA_F_HELD, on a list
		 * its shma_pool_trim had taken (shma_resolve_user marked the rest
		 * of that list, and dropped the chunks it had closed); flags 0, in
		 * its per-thread cache. Nobody else can reach it: push it, under
		 * the dead user's records (a reclaimer killed after the CAS below
		 * leaves a PUSH record the next one finishes).
		 */
		struct shma_rec rec;
		if (__atomic_load_n(&b->self, __ATOMIC_RELAXED) != ref || shma_w_gen(w) >= SHMA_GEN_RETIRED ||
		    shma_rec_claim(p, shma_w_owner(w), &rec) < 0)
			return 0;
		shma_rec_push_intent(&rec, c, ref, shma_w_gen(w));
		if (__atomic_compare_exchange_n(&b->word, &w, shma_blk_word(shma_w_gen(w), c, SHMA_OWNER_NONE),
						false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			shma_push(p, &rec, c, ref, b);
		shma_rec_release(&rec);
		return 0;
	}
	if (!(shma_w_gen(w) & 1))
		return 0;
	/* The owner is the one the data header names (shma_adopt moves it there first). */
	h = c == SHMA_CLASS_LARGE ? b : shma_data_header(b, w, bytes);
	if (!h)
		return 0;
	hw = __atomic_load_n(&h->word, __ATOMIC_ACQUIRE);
	if (!in_set(o->set, shma_w_owner(hw)))
		return 0;
	if (shma_free_blk(p, h, ref + (uint32_t)(((char *)h - (char *)b) / SHMA_GRANULE), 0, false,
			  shma_w_owner(hw), shma_w_owner(hw)) == 0)
		o->count++;
	return 0;
}

/* Mark our allocated blocks unowned (they outlive our attachment). */
static int disown_fn(struct shma_pool *p, struct shma_blk *b, uint32_t ref, uint64_t w, void *ud)
{
	struct owner_ud *o = ud;
	unsigned c = shma_w_cls(w);
	struct shma_blk *h;

	(void)p;
	(void)ref;
	if (!(shma_w_gen(w) & 1))
		return 0;
	h = c == SHMA_CLASS_LARGE ? b : shma_data_header(b, w, shma_class_bytes(c));
	/* Ours if the data header says so (shma_adopt changes it first). */
	if (!h || shma_w_owner(__atomic_load_n(&h->word, __ATOMIC_ACQUIRE)) != o->owner)
		return 0;
	for (struct shma_blk *x = b;; x = h) {
		uint64_t xw = __atomic_load_n(&x->word, __ATOMIC_ACQUIRE);
		while (shma_w_owner(xw) == o->owner && shma_w_gen(xw) == shma_w_gen(w) &&
		       !__atomic_compare_exchange_n(&x->word, &xw,
						    (xw & ~(0xffull << 40)) | (uint64_t)SHMA_OWNER_NONE << 40,
						    true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			;
		if (!h || x == h)
			break;
	}
	return 0;
}

void shma_disown(struct shma_pool *p, unsigned owner)
{
	struct owner_ud o = { .owner = owner };

	if (!p->rdonly && owner != SHMA_OWNER_NONE)
		shma_walk(p, disown_fn, NULL, &o);
}

/*
 * Give back what dead registrants held, in one walk for all of them.
 * Each dead slot is first claimed (pid -> -ourpid, one CAS), so exactly one
 * process reclaims it, and no new registrant can take it (and allocate
 * under its owner byte) until the walk is over. A claimant that dies
 * itself is judged by its pid and its claim taken over.
 */
int shma_reclaim_users(struct shma_pool *p, int *blocks)
{
	struct shma_root *rt = p->root;
	struct owner_ud o;
	int64_t me = mk_getpid(), orig[SHMA_MAX_USERS];
	unsigned self = shma_own_slot(p);
	int n = 0, r;

	*blocks = 0;
	memset(&o, 0, sizeof(o));
	r = shma_map_all(p);     /* so that a reclaim never stops half-way for want of one */
	if (r < 0)
		return r;
	for (unsigned u = 0; u < SHMA_MAX_USERS; u++) {
		int64_t pid = __atomic_load_n(&rt->users[u].pid, __ATOMIC_ACQUIRE);
		uint64_t start = __atomic_load_n(&rt->users[u].start, __ATOMIC_ACQUIRE);

		orig[u] = pid;
		if (!pid || pid == -me || u == self || shma_user_alive(pid, start))
			continue;
		if (!__atomic_compare_exchange_n(&rt->users[u].pid, &pid, -me, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		o.set[u / 64] |= 1ull << (u % 64);
		n++;
	}
	if (!n)
		return 0;
	/* Claimed first, then look: a repair either sees our claims or we see it. */
	if (shma_repair_running(p)) {
		r = -EBUSY;
	} else {
		/*
		 * Finish or roll back what they were doing (list.c; this drops the
		 * chunks a dead trim closed, so the walk never pushes their blocks),
		 * then free what they held and push the free blocks they held.
		 */
		for (unsigned u = 0; u < SHMA_MAX_USERS; u++)
			if (in_set(o.set, u))
				shma_resolve_user(p, u);
		r = shma_walk(p, reclaim_fn, NULL, &o);
	}
	/* Blocks past a header not yet written were not seen: keep the slots, retry later. */
	if (r > 0)
		r = -EBUSY;
	for (unsigned u = 0; u < SHMA_MAX_USERS; u++) {
		int64_t pid = -me;
		if (!in_set(o.set, u))
			continue;
		if (r < 0) {
			/* Could not see every chunk (or a repair runs): the slot stays the dead user's. */
			__atomic_compare_exchange_n(&rt->users[u].pid, &pid, orig[u], false,
						    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
			continue;
		}
		__atomic_store_n(&rt->users[u].start, 0, __ATOMIC_RELAXED);
		__atomic_compare_exchange_n(&rt->users[u].pid, &pid, 0, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	}
	*blocks = o.count;
	if (r == -EBUSY)
		return 0;
	return r < 0 ? r : n;
}

MK_EXPORT int shma_pool_reclaim(struct shma_pool *p)
{
	struct shma_root *rt;
	int blocks, r;

	if (!p)
		return -EINVAL;
	if (p->rdonly)
		return -EPERM;
	rt = p->root;
	r = shma_reclaim_users(p, &blocks);
	if (r < 0)
		return r;
	/* Slots whose creator died half-way (or whose releaser died): give them back. */
	for (uint32_t i = 0; i < p->max_chunks; i++) {
		struct shma_slot *sl = &rt->slots[i];
		uint64_t s = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		int64_t pid = __atomic_load_n(&sl->owner_pid, __ATOMIC_SEQ_CST);
		uint64_t start = __atomic_load_n(&sl->owner_start, __ATOMIC_SEQ_CST);
		bool claiming = shma_s_kind(s) & SHMA_KIND_CLAIMING;

		if (shma_s_st(s) != SHMA_SLOT_CREATING)
			continue;
		if (claiming) {
			/* Just claimed: the claimer's pid is the nonce; no file yet. */
			if (shma_pid_alive(shma_s_nonce(s), 0))
				continue;
		} else if (!pid || shma_pid_alive(pid, start) ||
			   __atomic_load_n(&sl->state, __ATOMIC_SEQ_CST) != s) {
			continue;
		} else if (p->backend == SHMA_BACKEND_SHM) {
			char fname[SHMA_FNAME_MAX];
			if (shma_chunk_name(p, i, shma_s_nonce(s), fname, sizeof(fname)) == 0)
				mk_unlinkat(p->dirfd, fname, 0);
		}
		__atomic_compare_exchange_n(&sl->state, &s,
					    shma_slot_word(0, shma_s_gen(s), SHMA_SLOT_FREE, 0), false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	}
	/*
	 * Dedicated chunks whose creator died between publishing the slot and
	 * writing the block's header: nobody can ever free that block.
	 */
	shma_pin(p);
	for (uint32_t i = 0; i < p->max_chunks; i++) {
		struct shma_slot *sl = &rt->slots[i];
		uint64_t s = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE), w;
		int64_t pid = __atomic_load_n(&sl->owner_pid, __ATOMIC_SEQ_CST);
		uint64_t start = __atomic_load_n(&sl->owner_start, __ATOMIC_SEQ_CST);
		char *base;

		if (shma_s_st(s) != SHMA_SLOT_LIVE || shma_s_kind(s) != SHMA_KIND_DEDICATED ||
		    shma_map_slot(p, i, s, &base) < 0)
			continue;
		w = __atomic_load_n(&((struct shma_blk *)(base + mk_page_size() - BLK))->word,
				    __ATOMIC_ACQUIRE);
		if (shma_w_magic_ok(w) || !pid || shma_pid_alive(pid, start) ||
		    __atomic_load_n(&sl->state, __ATOMIC_SEQ_CST) != s)
			continue;
		shma_release_chunk(p, i, s);
	}
	shma_unpin(p);
	return blocks;
}
