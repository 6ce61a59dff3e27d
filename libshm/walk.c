/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Walking a pool's blocks, for statistics (stat.c), reclaiming what dead
 * processes held and disowning ours (reclaim.c), and repair (repair.c).
 *
 * Regular chunks are carved front to back by the bump pointer, so their
 * blocks can be walked header to header (each header names its class,
 * hence its size). A walk racing with allocation may stop early at a
 * block whose header is not written yet; that only makes it approximate.
 */
#include "config.h"

#include <errno.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "shmP.h"

#define BLK ((uint64_t)sizeof(struct shma_blk))

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
struct shma_blk *shma_data_header(struct shma_blk *start, uint64_t w, uint64_t bytes)
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
 * The first live slot from *i on (below the high-water mark), mapped: 0 with
 * *i, *s and *base; 1 when there is none; or the error of map_live.
 */
static int next_live(struct shma_pool *p, uint32_t *i, uint64_t *s, char **base)
{
	uint32_t hwm = MK_MIN(__atomic_load_n(&p->root->hwm, __ATOMIC_ACQUIRE), p->max_chunks);

	for (; *i < hwm; (*i)++) {
		int r;

		*s = __atomic_load_n(&p->root->slots[*i].state, __ATOMIC_ACQUIRE);
		if (shma_s_st(*s) != SHMA_SLOT_LIVE)
			continue;
		r = map_live(p, *i, *s, base);
		if (r <= 0)
			return r;
	}
	return 1;
}

int shma_map_all(struct shma_pool *p)
{
	uint64_t s;
	char *base;
	int r;

	for (uint32_t i = 0; (r = next_live(p, &i, &s, &base)) == 0; i++)
		;
	return r < 0 ? r : 0;
}

/*
 * 0, or 1 if some chunk could not be walked to its end (see below), or an
 * error. A dead carver's unwritten header is passed (its size found by
 * gap_class) and, with gap, handed to it.
 */
static int walk_gaps_pinned(struct shma_pool *p, shma_walk_fn fn, shma_gap_fn gap, void *ud);

/*
 * Walks run pinned: another thread of this process may release a dedicated
 * chunk (or map a slot's next generation) while we read through its old
 * mapping, which then stays readable (zero pages) until we are done.
 */
int shma_walk(struct shma_pool *p, shma_walk_fn fn, shma_gap_fn gap, void *ud)
{
	int r;

	shma_pin(p);
	r = walk_gaps_pinned(p, fn, gap, ud);
	shma_unpin(p);
	return r;
}

static int walk_gaps_pinned(struct shma_pool *p, shma_walk_fn fn, shma_gap_fn gap, void *ud)
{
	struct shma_root *rt = p->root;
	int incomplete = 0, r;
	uint64_t s, end;
	char *base;

	for (uint32_t i = 0; (r = next_live(p, &i, &s, &base)) == 0; i++) {
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
	return r < 0 ? r : incomplete;
}
