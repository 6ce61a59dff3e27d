/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"

/* A 64-bit finalizer (splitmix64): node ids and addresses are far from random. */
static size_t bucket(const struct mk_hash *h, uint64_t key)
{
	key ^= key >> 30;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 27;
	key *= 0x94d049bb133111ebull;
	key ^= key >> 31;
	return (size_t)key & (h->cap - 1);
}

void mk_hash_free(struct mk_hash *h)
{
	free(h->keys);
	free(h->vals);
	*h = (struct mk_hash)MK_HASH_INIT;
}

void *mk_hash_get(const struct mk_hash *h, uint64_t key)
{
	if (!h->count)
		return NULL;
	for (size_t i = bucket(h, key);; i = (i + 1) & (h->cap - 1)) {
		if (!h->vals[i])
			return NULL;
		if (h->keys[i] == key)
			return h->vals[i];
	}
}

static void insert_fresh(struct mk_hash *h, uint64_t key, void *val)
{
	size_t i = bucket(h, key);

	while (h->vals[i])
		i = (i + 1) & (h->cap - 1);
	h->keys[i] = key;
	h->vals[i] = val;
	h->count++;
}

int mk_hash_reserve(struct mk_hash *h, size_t n)
{
	struct mk_hash g = MK_HASH_INIT;
	size_t need, cap = h->cap ? h->cap : 8;

	if (__builtin_add_overflow(h->count, n, &need))
		return -ENOMEM;
	while (need > cap / 4 * 3) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	if (cap == h->cap)
		return 0;
	g.cap = cap;
	g.keys = mk_reallocarray(NULL, cap, sizeof(*g.keys));
	g.vals = g.keys ? mk_calloc(cap, sizeof(*g.vals)) : NULL;
	if (!g.vals) {
		free(g.keys);
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->cap; i++)
		if (h->vals[i])
			insert_fresh(&g, h->keys[i], h->vals[i]);
	free(h->keys);
	free(h->vals);
	*h = g;
	return 0;
}

int mk_hash_put(struct mk_hash *h, uint64_t key, void *val, void **old)
{
	int r;

	if (!val)
		return -EINVAL;
	if (h->count) {
		for (size_t i = bucket(h, key); h->vals[i]; i = (i + 1) & (h->cap - 1))
			if (h->keys[i] == key) {
				if (old)
					*old = h->vals[i];
				h->vals[i] = val;
				return 0;
			}
	}
	r = mk_hash_reserve(h, 1);
	if (r < 0)
		return r;
	insert_fresh(h, key, val);
	if (old)
		*old = NULL;
	return 0;
}

void *mk_hash_del(struct mk_hash *h, uint64_t key)
{
	size_t i, j, mask = h->cap - 1;
	void *val;

	if (!h->count)
		return NULL;
	for (i = bucket(h, key); h->vals[i]; i = (i + 1) & mask)
		if (h->keys[i] == key)
			break;
	if (!h->vals[i])
		return NULL;
	val = h->vals[i];
	h->vals[i] = NULL;
	h->count--;
	/* Backward shift: move later members of the probe run into the gap when their home allows. */
	for (j = (i + 1) & mask; h->vals[j]; j = (j + 1) & mask) {
		size_t home = bucket(h, h->keys[j]);

		/* j may move to i when home is not cyclically in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			h->keys[i] = h->keys[j];
			h->vals[i] = h->vals[j];
			h->vals[j] = NULL;
			i = j;
		}
	}
	return val;
}
