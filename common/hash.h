/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hash table from uint64_t keys to non-NULL pointers: open addressing
 * with linear probing, deletion by backward shift (no tombstones), the
 * capacity a power of two kept at most 3/4 full.
 *
 * Every allocation goes through common/alloc.h. The only operations that
 * may allocate are mk_hash_reserve() and mk_hash_put(); both fail with
 * -ENOMEM leaving the table exactly as it was. A caller that must not
 * fail half-way reserves first, then puts (a put after a successful
 * reserve for that many new keys never allocates, so never fails).
 *
 * Not thread-safe: the owner locks.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mk_hash {
	uint64_t *keys;
	void **vals;            /* NULL: empty bucket */
	size_t cap;             /* 0 or a power of two */
	size_t count;
};

#define MK_HASH_INIT { 0 }

/* Free the buckets (not the values); the table is empty and usable again. */
void mk_hash_free(struct mk_hash *h);
/* The value of key, or NULL. */
void *mk_hash_get(const struct mk_hash *h, uint64_t key);
/* Make room for n more keys without allocating: 0 or -ENOMEM (table unchanged). */
int mk_hash_reserve(struct mk_hash *h, size_t n);
/*
 * Set key to val (non-NULL). *old (when old is not NULL) gets the value it
 * replaced, or NULL. 0 or -ENOMEM (table unchanged), -EINVAL for a NULL val.
 */
int mk_hash_put(struct mk_hash *h, uint64_t key, void *val, void **old);
/* Remove key; returns its value, or NULL when it was not there. */
void *mk_hash_del(struct mk_hash *h, uint64_t key);

/* Visit every value: for (size_t i = 0; i < h->cap; i++) if (h->vals[i]) ... */
#define mk_hash_foreach(h, i) \
	for (size_t i = 0; i < (h)->cap; i++) if ((h)->vals[i])
