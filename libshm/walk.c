/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Walking a pool's blocks: statistics, per-chunk records, reclaiming what
 * dead processes held, and disowning our blocks when we detach.
 *
 * Regular chunks are carved front to back by the bump pointer, so their
 * blocks can be walked header to header (each header names its class,
 * hence its size). A walk racing with allocation may stop early at a
 * block whose header is not written yet; that only makes it approximate.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

#define BLK ((uint64_t)sizeof(struct shma_blk))

/* Called for each block with its start header; returns < 0 to stop. */
typedef int (*walk_fn)(struct shma_pool *p, struct shma_blk *start, uint32_t ref,
		       uint64_t word, void *ud);

/*
 * A carved block whose header was never written (its carver died between
 * the bump and the header): at off in chunk i, carved as class c. Only
 * shma_pool_repair passes one (then no carver is alive to write it).
 */
typedef void (*gap_fn)(struct shma_pool *p, struct shma_blk *start, uint32_t ref, unsigned c,
		       void *ud);

/*
 * The class of the unwritten block at off (chunk base, carved up to end):
 * a chunk is zero-filled where nothing was carved or written, so the first
 * class whose size reaches the next block header (one that names itself)
 * or the end of the carved part is the size the dead carver took. -1 if
 * none fits (two dead carvers side by side, or damage).
 */
static int gap_class(struct shma_pool *p, char *base, uint32_t i, uint64_t off, uint64_t end)
{
	for (unsigned c = 0; c < p->nclasses; c++) {
		uint64_t next = off + shma_class_bytes(c);
		const struct shma_blk *n;
		uint64_t w;

		if (next == end)
			return (int)c;
		if (next + BLK > end)
			break;
		n = (const struct shma_blk *)(base + next);
		w = __atomic_load_n(&n->word, __ATOMIC_ACQUIRE);
		if (shma_w_magic_ok(w) && shma_w_cls(w) < p->nclasses &&
		    __atomic_load_n(&n->self, __ATOMIC_RELAXED) == shma_ref(p, i, next))
			return (int)c;
	}
	return -1;
}

/* The header that carries an allocated block's owner and length. */
static struct shma_blk *data_header(struct shma_blk *start, uint64_t w, uint64_t bytes)
{
	if (shma_w_flags(w) == SHMA_F_SHIFTED) {
		uint32_t d = __atomic_load_n(&start->aux, __ATOMIC_RELAXED);
		if (d % SHMA_GRANULE || d + BLK >= bytes)
			return NULL;
		return (struct shma_blk *)((char *)start + d);
	}
	return start;
}

/*
 * Map live slot i (state s) for a walk: 0 with *base, 1 when the slot was
 * released meanwhile (nothing to see), or the error of a chunk that cannot
 * be mapped: a file replaced, damaged or missing (-EPERM, -ELOOP, -EBADMSG)
 * or a memfd chunk this process was never sent (-ENXIO). Never skipped
 * silently: a walk that cannot see every chunk cannot count or reclaim.
 */
static int map_live(struct shma_pool *p, uint32_t i, uint64_t s, char **base)
{
	int r = shma_map_slot(p, i, s, base);

	if (r == 0)
		return 0;
	if (__atomic_load_n(&p->root->slots[i].state, __ATOMIC_ACQUIRE) != s)
		return 1;
	/* Still LIVE and its file gone: slots leave LIVE before their file does. */
	return r == -ESTALE ? -EBADMSG : r;
}

/*
 * 0, or 1 if some chunk could not be walked to its end (see below), or an
 * error. A dead carver's unwritten header is passed (its size found by
 * gap_class) and, with gap, handed to it.
 */
static int walk_gaps_pinned(struct shma_pool *p, walk_fn fn, gap_fn gap, void *ud);

/*
 * Walks run pinned: another thread of this process may release a dedicated
 * chunk (or map a slot's next generation) while we read through its old
 * mapping, which then stays readable (zero pages) until we are done.
 */
static int walk_gaps(struct shma_pool *p, walk_fn fn, gap_fn gap, void *ud)
{
	int r;

	shma_pin(p);
	r = walk_gaps_pinned(p, fn, gap, ud);
	shma_unpin(p);
	return r;
}

static int walk_gaps_pinned(struct shma_pool *p, walk_fn fn, gap_fn gap, void *ud)
{
	struct shma_root *rt = p->root;
	int incomplete = 0;
	uint32_t hwm = MK_MIN(__atomic_load_n(&rt->hwm, __ATOMIC_ACQUIRE), p->max_chunks);

	for (uint32_t i = 0; i < hwm; i++) {
		uint64_t s = __atomic_load_n(&rt->slots[i].state, __ATOMIC_ACQUIRE), end;
		char *base;
		int r;

		if (shma_s_st(s) != SHMA_SLOT_LIVE)
			continue;
		r = map_live(p, i, s, &base);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		if (shma_s_kind(s) == SHMA_KIND_DEDICATED) {
			uint64_t off = mk_page_size() - BLK;
			struct shma_blk *b = (struct shma_blk *)(base + off);
			uint64_t w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
			/* Still LIVE after the read: the header was read before its
			 * release began (slots leave LIVE before mappings go). */
			if (__atomic_load_n(&rt->slots[i].state, __ATOMIC_SEQ_CST) != s)
				continue;
			r = fn(p, b, shma_ref(p, i, off), w, ud);
			if (r < 0)
				return r;
			continue;
		}
		end = __atomic_load_n(&rt->slots[i].bump, __ATOMIC_ACQUIRE);
		if (shma_bump_gen(end) != shma_s_gen(s))
			continue;       /* made anew since we read its state */
		end = shma_bump_end(end, p->chunk_size);     /* closed by a trim: as far as carved */
		for (uint64_t off = SHMA_CHUNK_DATA, spins = 0; off + BLK <= end;) {
			struct shma_blk *b = (struct shma_blk *)(base + off);
			uint64_t w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);
			unsigned c = shma_w_cls(w);
			if (!shma_w_magic_ok(w) || c >= p->nclasses) {
				/*
				 * Carved but no header yet: its carver writes it within a
				 * few instructions unless preempted (wait a little) or
				 * killed. The rest of this chunk cannot be walked: say so.
				 */
				if (!w && spins++ < 2000) {
					mk_sched_yield();
					continue;
				}
				if (!w && (r = gap_class(p, base, i, off, end)) >= 0) {
					if (gap)
						gap(p, b, shma_ref(p, i, off), (unsigned)r, ud);
					spins = 0;
					off += shma_class_bytes((unsigned)r);
					continue;
				}
				incomplete = 1;
				break;
			}
			spins = 0;
			r = fn(p, b, shma_ref(p, i, off), w, ud);
			if (r < 0)
				return r;
			off += shma_class_bytes(c);
		}
	}
	return incomplete;
}

static int walk(struct shma_pool *p, walk_fn fn, void *ud)
{
	return walk_gaps(p, fn, NULL, ud);
}

static int stat_fn(struct shma_pool *p, struct shma_blk *b, uint32_t ref, uint64_t w, void *ud)
{
	struct shma_pool_stat *st = ud;
	unsigned c = shma_w_cls(w);
	uint64_t bytes;

	if (c == SHMA_CLASS_LARGE) {
		bytes = p->loc[(uint32_t)(((uint64_t)ref * SHMA_GRANULE) >> p->chunk_shift)].len;
		if (shma_w_gen(w) & 1) {
			st->blocks_used++;
			st->used_bytes += bytes;
		}
		return 0;
	}
	bytes = shma_class_bytes(c);
	if (shma_w_gen(w) & 1) {
		st->blocks_used++;
		st->used_bytes += bytes;
		st->class_used[c]++;
	} else {
		st->blocks_free++;
		st->free_bytes += bytes;
		st->class_free[c]++;
	}
	return 0;
}

MK_EXPORT int shma_pool_stat(struct shma_pool *p, struct shma_pool_stat *st)
{
	struct shma_root *rt;
	int r;

	if (!p || !st)
		return -EINVAL;
	rt = p->root;
	memset(st, 0, sizeof(*st));
	st->chunk_size = p->chunk_size;
	st->max_chunks = p->max_chunks;
	st->nclasses = p->nclasses;
	for (unsigned c = 0; c < p->nclasses; c++)
		st->class_size[c] = (uint32_t)shma_class_bytes(c);
	for (uint32_t i = 0; i < p->max_chunks; i++) {
		uint64_t s = __atomic_load_n(&rt->slots[i].state, __ATOMIC_ACQUIRE);
		uint64_t size = __atomic_load_n(&rt->slots[i].size, __ATOMIC_RELAXED);
		uint64_t bump = shma_bump_off(__atomic_load_n(&rt->slots[i].bump, __ATOMIC_RELAXED));
		if (shma_s_st(s) != SHMA_SLOT_LIVE)
			continue;
		st->chunks++;
		st->mapped_bytes += size;
		if (shma_s_kind(s) == SHMA_KIND_REGULAR && bump <= size)
			st->free_bytes += size - bump;
	}
	for (unsigned u = 0; u < SHMA_MAX_USERS; u++) {
		int64_t pid = __atomic_load_n(&rt->users[u].pid, __ATOMIC_ACQUIRE);
		if (!pid)
			continue;
		/* A slot being reclaimed (pid < 0) still counts as the dead user it was. */
		if (pid > 0 && shma_pid_alive(pid, __atomic_load_n(&rt->users[u].start, __ATOMIC_ACQUIRE)))
			st->users++;
		else
			st->users_dead++;
	}
	r = walk(p, stat_fn, st);
	return r < 0 ? r : 0;      /* a block being carved: approximate, as documented */
}

MK_EXPORT int shma_pool_chunk_stat(struct shma_pool *p, uint32_t index, struct shma_chunk_stat *st)
{
	struct shma_slot *sl;
	uint64_t s;

	if (!p || !st)
		return -EINVAL;
	if (index >= p->max_chunks)
		return -ENOENT;
	sl = &p->root->slots[index];
	s = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	if (shma_s_st(s) != SHMA_SLOT_LIVE)
		return -ESRCH;
	memset(st, 0, sizeof(*st));
	st->index = index;
	st->gen = shma_s_gen(s);
	st->dedicated = shma_s_kind(s) == SHMA_KIND_DEDICATED;
	st->owner_pid = (int)__atomic_load_n(&sl->owner_pid, __ATOMIC_RELAXED);
	st->owner_start = __atomic_load_n(&sl->owner_start, __ATOMIC_RELAXED);
	st->owner_alive = shma_pid_alive(st->owner_pid, st->owner_start);
	st->size = __atomic_load_n(&sl->size, __ATOMIC_RELAXED);
	st->used = st->dedicated ? st->size
				 : shma_bump_end(__atomic_load_n(&sl->bump, __ATOMIC_RELAXED), st->size);
	return 0;
}

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
		h = data_header(b, w, bytes);
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
	h = c == SHMA_CLASS_LARGE ? b : data_header(b, w, bytes);
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
	h = c == SHMA_CLASS_LARGE ? b : data_header(b, w, shma_class_bytes(c));
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
		walk(p, disown_fn, &o);
}

/* Map every live chunk (so that a reclaim never stops half-way for want of one). */
static int map_all(struct shma_pool *p)
{
	uint32_t hwm = MK_MIN(__atomic_load_n(&p->root->hwm, __ATOMIC_ACQUIRE), p->max_chunks);

	for (uint32_t i = 0; i < hwm; i++) {
		uint64_t s = __atomic_load_n(&p->root->slots[i].state, __ATOMIC_ACQUIRE);
		char *base;
		int r;

		if (shma_s_st(s) != SHMA_SLOT_LIVE)
			continue;
		r = map_live(p, i, s, &base);
		if (r < 0)
			return r;
	}
	return 0;
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
	r = map_all(p);
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
		r = walk(p, reclaim_fn, &o);
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

/* ---- repair ----------------------------------------------------------------------------- */

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
		r = walk_gaps(p, repair_fn, repair_gap, &ru);   /* > 0: a gap too odd to size */
		for (unsigned c = 0; c < p->nclasses; c++)
			repair_list(p, &ru.rec, c, heads[c], ru.limit, false, self);
		shma_rec_release(&ru.rec);
	}
	__atomic_store_n(&lock->pid, 0, __ATOMIC_SEQ_CST);
	return r < 0 ? r : ru.pushed;
}
