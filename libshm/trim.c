/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Trim: take every class list whole (one exchange per head), count the
 * free blocks each chunk has in them, release the chunks whose every
 * carved block is among them, and push the rest back. Blocks freed while
 * we work land on the (new) lists, so their chunk simply does not qualify.
 *
 * Crash-safe without repair: each take is a TAKE under our record, and
 * every block taken is marked SHMA_F_HELD by us (same generation, aux
 * untouched) before anything else happens to it; the close of a chunk
 * names our record in its bump word. Killed anywhere, reclaim of our
 * user slot marks what we had not yet marked (the TAKE record names the
 * chain), drops the chunks we had closed (all their blocks were ours)
 * and pushes every other block we held (shma_resolve_user, reclaim_fn).
 */
#include "config.h"

#include <errno.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

/*
 * Is ref an entry of a taken class-c list, as this pass expects it
 * (unmarked when taking, SHMA_F_HELD by us when pushing back)? 0 at a
 * damaged entry (the rest of that list is lost, as before).
 */
static bool list_next(struct shma_pool *p, unsigned c, uint32_t ref, unsigned held_by,
		      struct shma_blk **out, uint64_t *wp)
{
	struct shma_blk *b = shma_blk_at(p, ref);
	uint64_t w;

	if (!b)
		return false;
	w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
	if (!shma_w_magic_ok(w) || shma_w_cls(w) != c || (shma_w_gen(w) & 1) ||
	    __atomic_load_n(&b->self, __ATOMIC_RELAXED) != ref)
		return false;
	if (held_by == SHMA_OWNER_NONE ? shma_w_flags(w) || shma_w_owner(w) != SHMA_OWNER_NONE
				       : !shma_w_held_by(w, held_by))
		return false;
	*out = b;
	*wp = w;
	return true;
}

/*
 * Is every block carved from chunk i free and held by us (SHMA_F_HELD,
 * owner self), and exactly `count` of them (the ones on our own taken
 * lists: another trim thread of this process marks with the same owner)?
 * A free block marked otherwise (unmarked: freed since we took the lists;
 * flags 0 with an owner: a thread cache's) is not ours to give away.
 */
static bool chunk_all_free(struct shma_pool *p, uint32_t i, uint64_t bump, uint32_t count,
			   unsigned self)
{
	char *base = __atomic_load_n(&p->loc[i].addr, __ATOMIC_ACQUIRE);
	uint32_t n = 0;

	if (!base)
		return false;
	for (uint64_t off = SHMA_CHUNK_DATA; off < bump;) {
		struct shma_blk *b = (struct shma_blk *)(base + off);
		uint64_t w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
		if (shma_w_cls(w) >= p->nclasses || !shma_w_held_by(w, self))
			return false;
		off += shma_class_bytes(shma_w_cls(w));
		n++;
	}
	return n == count;
}

MK_EXPORT int shma_pool_trim(struct shma_pool *p)
{
	struct shma_root *rt;
	uint32_t heads[SHMA_NCLASSES], *count;
	uint64_t count_len, limit = 0;
	struct shma_rec rec;
	uint8_t *drop;
	unsigned self;
	void *m;
	int released = 0, r;

	if (!p)
		return -EINVAL;
	if (p->rdonly)
		return -EPERM;
	rt = p->root;
	if (mk_align_up((uint64_t)p->max_chunks * 5, mk_page_size(), &count_len) < 0)
		return -EINVAL;
	r = shma_owner(p, &self);     /* what we hold is marked with our slot */
	if (r < 0)
		return r;
	/* Our thread's cached blocks count as free for trim; other threads' stay theirs. */
	shma_tc_flush_self(p);
	r = shma_rec_claim(p, self, &rec);
	if (r < 0)
		return r;
	r = mk_mmap(NULL, count_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &m);
	if (r < 0) {
		shma_rec_release(&rec);
		return r;
	}
	count = m;
	drop = (uint8_t *)(count + p->max_chunks);
	for (uint32_t i = 0; i < p->max_chunks; i++)
		limit += __atomic_load_n(&rt->slots[i].size, __ATOMIC_RELAXED) / 32;

	/* Take each list (a TAKE under our record), marking every entry held by us. */
	for (unsigned c = 0; c < p->nclasses; c++) {
		uint64_t steps = 0;
		heads[c] = shma_take_list(p, c, &rec);
		for (uint32_t ref = heads[c]; ref && steps++ < limit;) {
			struct shma_blk *b;
			uint64_t w;
			if (!list_next(p, c, ref, SHMA_OWNER_NONE, &b, &w))
				break;
			__atomic_store_n(&b->word, shma_blk_word(shma_w_gen(w), c | SHMA_F_HELD, self),
					 __ATOMIC_RELEASE);
			count[((uint64_t)ref * SHMA_GRANULE) >> p->chunk_shift]++;
			ref = __atomic_load_n(&b->aux, __ATOMIC_RELAXED);
		}
	}
	/* Every taken block is marked: the TAKE record has nothing more to say. */
	shma_rec_idle(&rec);
	for (uint32_t i = 0; i < p->max_chunks; i++) {
		struct shma_slot *sl = &rt->slots[i];
		uint64_t s = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE), b;
		char *base;

		if (shma_s_st(s) != SHMA_SLOT_LIVE || shma_s_kind(s) != SHMA_KIND_REGULAR ||
		    i == __atomic_load_n(&rt->cur, __ATOMIC_ACQUIRE))
			continue;
		if (shma_map_slot(p, i, s, &base) < 0)
			continue;
		b = __atomic_load_n(&sl->bump, __ATOMIC_ACQUIRE);
		if (shma_bump_gen(b) != shma_s_gen(s) || shma_bump_off(b) > p->chunk_size ||
		    !chunk_all_free(p, i, shma_bump_off(b), count[i], self))
			continue;
		/*
		 * Close the chunk to carving, naming our record (reclaim drops
		 * it should we die before we do); lose the race and it stays.
		 */
		if (!shma_bump_close(p, i, &b, shma_s_gen(s), &rec))
			continue;
		drop[i] = 1;
	}
	/*
	 * Push back what stays (before any chunk goes: list entries point
	 * into them): named by a PUSH record first, unmarked, then pushed.
	 */
	for (unsigned c = 0; c < p->nclasses; c++) {
		uint64_t steps = 0;
		for (uint32_t ref = heads[c]; ref && steps++ < limit;) {
			struct shma_blk *b;
			uint32_t next;
			uint64_t w;
			if (!list_next(p, c, ref, self, &b, &w))
				break;
			next = __atomic_load_n(&b->aux, __ATOMIC_RELAXED);
			if (!drop[((uint64_t)ref * SHMA_GRANULE) >> p->chunk_shift]) {
				shma_rec_push_intent(&rec, c, ref, shma_w_gen(w));
				__atomic_store_n(&b->word, shma_blk_word(shma_w_gen(w), c, SHMA_OWNER_NONE),
						 __ATOMIC_RELEASE);
				shma_push(p, &rec, c, ref, b);
			}
			ref = next;
		}
	}
	for (uint32_t i = 0; i < p->max_chunks; i++) {
		if (!drop[i])
			continue;
		shma_drop_regular(p, i, __atomic_load_n(&rt->slots[i].state, __ATOMIC_ACQUIRE));
		released++;
	}
	shma_rec_release(&rec);
	mk_munmap(m, count_len);
	return released;
}
