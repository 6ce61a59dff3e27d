/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool's statistics (one walk over its blocks) and a chunk's record. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/ext.h"
#include "common/macro.h"
#include "shmP.h"

#define BLK ((uint64_t)sizeof(struct shma_blk))

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

/*
 * The first published layouts (libshm 3.0) of the structs libshm fills: the
 * extensible-struct convention (common/ext.h, libshm(3)) accepts any size
 * from these up. Fields are appended; these stay.
 */
#define SHMA_POOL_STAT_SIZE_VER0  sizeof(struct shma_pool_stat)
#define SHMA_CHUNK_STAT_SIZE_VER0 sizeof(struct shma_chunk_stat)

static int pool_stat(struct shma_pool *p, struct shma_pool_stat *st);

MK_EXPORT int shma_pool_stat(struct shma_pool *p, struct shma_pool_stat *ust)
{
	struct shma_pool_stat st;
	int64_t usize = mk_ext_size(ust, SHMA_POOL_STAT_SIZE_VER0);
	int r;

	if (!p || usize < 0)
		return -EINVAL;
	r = pool_stat(p, &st);
	if (r < 0)
		return r;
	mk_ext_out(ust, &st, sizeof(st), (size_t)usize);
	return 0;
}

static int pool_stat(struct shma_pool *p, struct shma_pool_stat *st)
{
	struct shma_root *rt;
	int r;

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
	r = shma_walk(p, stat_fn, NULL, st);
	return r < 0 ? r : 0;      /* a block being carved: approximate, as documented */
}

MK_EXPORT int shma_pool_chunk_stat(struct shma_pool *p, uint32_t index, struct shma_chunk_stat *ust)
{
	struct shma_chunk_stat stbuf, *st = &stbuf;
	int64_t usize = mk_ext_size(ust, SHMA_CHUNK_STAT_SIZE_VER0);
	struct shma_slot *sl;
	uint64_t s;

	if (!p || usize < 0)
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
	st->len = __atomic_load_n(&sl->size, __ATOMIC_RELAXED);
	st->used = st->dedicated ? st->len
				 : shma_bump_end(__atomic_load_n(&sl->bump, __ATOMIC_RELAXED), st->len);
	mk_ext_out(ust, st, sizeof(*st), (size_t)usize);
	return 0;
}
