/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The slot index: slots sorted by moffset in fixed-size chunks (a
 * two-level B+tree). Lookups are two binary searches; insert/remove move
 * at most one chunk's pointers (plus, when a chunk splits or empties, the
 * small chunk directory); iteration and bulk building from sorted input
 * are sequential. A restore of 100k slots is therefore one pass, and a
 * snapshot walks memory in order instead of chasing tree links.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/alloc.h"
#include "daxP.h"

/* Slots made by dax_slots_build() share one allocation, freed with the last of them. */
struct dax_slot_arena {
	size_t live;
	struct dax_slot slots[];
};

struct dax_slot *dax_slot_new(void)
{
	return mk_calloc(1, sizeof(struct dax_slot));
}

void dax_slot_free(struct dax_slot *s)
{
	struct dax_slot_arena *a = s->arena;

	if (!a)
		free(s);
	else if (--a->live == 0)
		free(a);
}

void dax_slots_init(struct dax_slots *x)
{
	memset(x, 0, sizeof(*x));
}

void dax_slots_clear(struct dax_slots *x)
{
	for (size_t c = 0; c < x->nchunks; c++) {
		for (unsigned i = 0; i < x->chunks[c]->n; i++)
			dax_slot_free(x->chunks[c]->s[i]);
		free(x->chunks[c]);
	}
	free(x->chunks);
	free(x->firsts);
	dax_slots_init(x);
}

/* Index of the last chunk whose first key is <= key, or -1. */
static ptrdiff_t chunk_le(const struct dax_slots *x, uint64_t key)
{
	size_t lo = 0, hi = x->nchunks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (x->firsts[mid] <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

/* Index in chunk c of the last slot with moffset <= key (-1 if none). */
static int pos_le(const struct dax_slot_chunk *c, uint64_t key)
{
	int lo = 0, hi = (int)c->n;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (c->s[mid]->moffset <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

struct dax_slot *dax_slots_find_le(const struct dax_slots *x, uint64_t key)
{
	ptrdiff_t c = chunk_le(x, key);
	int i;

	if (c < 0)
		return NULL;
	i = pos_le(x->chunks[c], key);
	return i < 0 ? NULL : x->chunks[c]->s[i];
}

struct dax_slot *dax_slots_get(const struct dax_slots *x, uint64_t key)
{
	struct dax_slot *s = dax_slots_find_le(x, key);

	return s && s->moffset == key ? s : NULL;
}

/* Room for one more chunk in the directory: 0 or -ENOMEM (x unchanged but maybe roomier). */
static int dir_reserve(struct dax_slots *x)
{
	size_t cap = x->cap ? 2 * x->cap : 16;
	void *p;

	if (x->nchunks < x->cap)
		return 0;
	/* Grow both arrays before changing cap: a failure leaves x consistent. */
	p = mk_reallocarray(x->chunks, cap, sizeof(*x->chunks));
	if (!p)
		return -ENOMEM;
	x->chunks = p;
	p = mk_reallocarray(x->firsts, cap, sizeof(*x->firsts));
	if (!p)
		return -ENOMEM;
	x->firsts = p;
	x->cap = cap;
	return 0;
}

/* The directory has room (dir_reserve). */
static void dir_insert(struct dax_slots *x, size_t at, struct dax_slot_chunk *c)
{
	memmove(&x->chunks[at + 1], &x->chunks[at], (x->nchunks - at) * sizeof(*x->chunks));
	memmove(&x->firsts[at + 1], &x->firsts[at], (x->nchunks - at) * sizeof(*x->firsts));
	x->chunks[at] = c;
	x->firsts[at] = c->s[0]->moffset;
	x->nchunks++;
}

static void dir_remove(struct dax_slots *x, size_t at)
{
	free(x->chunks[at]);
	memmove(&x->chunks[at], &x->chunks[at + 1], (x->nchunks - at - 1) * sizeof(*x->chunks));
	memmove(&x->firsts[at], &x->firsts[at + 1], (x->nchunks - at - 1) * sizeof(*x->firsts));
	x->nchunks--;
}

int dax_slots_insert(struct dax_slots *x, struct dax_slot *s)
{
	ptrdiff_t ci = chunk_le(x, s->moffset);
	struct dax_slot_chunk *c;
	int at;

	if (x->nchunks == 0) {
		if (dir_reserve(x) < 0 || !(c = mk_calloc(1, sizeof(*c))))
			return -ENOMEM;
		c->s[c->n++] = s;
		dir_insert(x, 0, c);
		x->count++;
		return 0;
	}
	if (ci < 0)
		ci = 0;         /* before every key: goes to the front of chunk 0 */
	c = x->chunks[ci];
	if (c->n == DAX_SLOT_CHUNK) {
		/* split in halves; the new half follows */
		struct dax_slot_chunk *d;

		if (dir_reserve(x) < 0 || !(d = mk_calloc(1, sizeof(*d))))
			return -ENOMEM;
		d->n = c->n / 2;
		c->n -= d->n;
		memcpy(d->s, &c->s[c->n], d->n * sizeof(d->s[0]));
		dir_insert(x, (size_t)ci + 1, d);
		if (s->moffset >= d->s[0]->moffset)
			c = d, ci++;
	}
	at = pos_le(c, s->moffset) + 1;
	memmove(&c->s[at + 1], &c->s[at], (c->n - (unsigned)at) * sizeof(c->s[0]));
	c->s[at] = s;
	c->n++;
	x->firsts[ci] = c->s[0]->moffset;
	x->count++;
	return 0;
}

void dax_slots_remove(struct dax_slots *x, struct dax_slot *s)
{
	ptrdiff_t ci = chunk_le(x, s->moffset);
	struct dax_slot_chunk *c;
	int at;

	if (ci < 0)
		return;
	c = x->chunks[ci];
	at = pos_le(c, s->moffset);
	if (at < 0 || c->s[at] != s)
		return;
	memmove(&c->s[at], &c->s[at + 1], (c->n - (unsigned)at - 1) * sizeof(c->s[0]));
	c->n--;
	if (c->n == 0)
		dir_remove(x, (size_t)ci);
	else
		x->firsts[ci] = c->s[0]->moffset;
	x->count--;
	dax_slot_free(s);
}

int dax_slots_build(struct dax_slots *x, const struct dax_mapping *v, size_t n)
{
	/* chunks three quarters full leave room for later inserts without splits */
	const unsigned fill = DAX_SLOT_CHUNK * 3 / 4;
	struct dax_slot_arena *a;
	size_t nch = (n + fill - 1) / fill;

	dax_slots_init(x);
	if (!n)
		return 0;
	if (n > (SIZE_MAX - sizeof(*a)) / sizeof(a->slots[0]))
		return -ENOMEM;
	a = mk_malloc(sizeof(*a) + n * sizeof(a->slots[0]));
	x->chunks = mk_reallocarray(NULL, nch, sizeof(*x->chunks));
	x->firsts = mk_reallocarray(NULL, nch, sizeof(*x->firsts));
	if (!a || !x->chunks || !x->firsts)
		goto nomem;
	/* every chunk first, so a failure frees what it made and nothing else */
	for (; x->nchunks < nch; x->nchunks++) {
		x->chunks[x->nchunks] = mk_malloc(sizeof(struct dax_slot_chunk));
		if (!x->chunks[x->nchunks])
			goto nomem;
		x->chunks[x->nchunks]->n = 0;
	}
	a->live = n;
	x->cap = nch;
	for (size_t i = 0; i < n; i++) {
		struct dax_slot *s = &a->slots[i];
		struct dax_slot_chunk *c;

		*s = (struct dax_slot){
			.moffset = v[i].moffset, .len = v[i].len, .nodeid = v[i].nodeid,
			.foffset = v[i].foffset, .prot = v[i].prot, .id = v[i].id, .arena = a,
		};
		if (i % fill == 0)
			x->firsts[i / fill] = s->moffset;
		c = x->chunks[i / fill];
		c->s[c->n++] = s;
	}
	x->count = n;
	return 0;
nomem:
	for (size_t c = 0; c < x->nchunks; c++)
		free(x->chunks[c]);
	free(x->chunks);
	free(x->firsts);
	free(a);
	dax_slots_init(x);
	return -ENOMEM;
}
