/* SPDX-License-Identifier: GPL-2.0-or-later */
/* common/hash.h and common/le.h against GLib's GHashTable and byte arrays written by hand. */
#include "config.h"

#include <errno.h>
#include <glib.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/le.h"

/* Random puts, replaces and deletes, checked against a GHashTable after every step. */
static void test_hash_model(void)
{
	struct mk_hash h = MK_HASH_INIT;
	GHashTable *model = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	GRand *rand = g_rand_new_with_seed(42);

	for (int step = 0; step < 200000; step++) {
		/* few distinct keys, clustered, so probe runs wrap and shift */
		uint64_t key = (uint64_t)g_rand_int_range(rand, 0, 700) * (step & 1 ? 1 : 4096);
		uintptr_t val = (uintptr_t)g_rand_int_range(rand, 1, 1 << 30);
		void *old = (void *)1;

		if (g_rand_int_range(rand, 0, 3)) {
			void *want = g_hash_table_lookup(model, &key);
			g_assert_cmpint(mk_hash_put(&h, key, (void *)val, &old), ==, 0);
			g_assert_true(old == want);
			g_hash_table_insert(model, g_memdup2(&key, sizeof(key)), (void *)val);
		} else {
			void *want = g_hash_table_lookup(model, &key);
			g_assert_true(mk_hash_del(&h, key) == want);
			g_hash_table_remove(model, &key);
		}
		g_assert_cmpuint(h.count, ==, g_hash_table_size(model));
		if (step % 997 == 0) {
			GHashTableIter it;
			gpointer k, v;
			size_t seen = 0;

			g_hash_table_iter_init(&it, model);
			while (g_hash_table_iter_next(&it, &k, &v))
				g_assert_true(mk_hash_get(&h, *(uint64_t *)k) == v);
			mk_hash_foreach(&h, i)
				seen++;
			g_assert_cmpuint(seen, ==, h.count);
		}
	}
	g_assert_null(mk_hash_get(&h, 1ull << 63));
	g_assert_cmpint(mk_hash_put(&h, 5, NULL, NULL), ==, -EINVAL);
	mk_hash_free(&h);
	g_assert_cmpuint(h.count, ==, 0);
	g_assert_null(mk_hash_get(&h, 0));
	g_rand_free(rand);
	g_hash_table_destroy(model);
}

/* A failed growth leaves the table as it was; a reserve makes the next puts infallible. */
static void test_hash_enomem(void)
{
	struct mk_hash h = MK_HASH_INIT;
	uint64_t k;

	for (k = 0; k < 6; k++)
		g_assert_cmpint(mk_hash_put(&h, k, (void *)(uintptr_t)(k + 1), NULL), ==, 0);
	g_assert_cmpuint(h.cap, ==, 8);
	mk_alloc_fail_after(0);
	g_assert_cmpint(mk_hash_put(&h, 6, (void *)7, NULL), ==, -ENOMEM);
	g_assert_true(mk_alloc_fail_fired());
	g_assert_cmpuint(h.count, ==, 6);
	g_assert_null(mk_hash_get(&h, 6));
	for (k = 0; k < 6; k++)
		g_assert_true(mk_hash_get(&h, k) == (void *)(uintptr_t)(k + 1));
	mk_alloc_fail_after(1);         /* the key array succeeds, the value array fails */
	g_assert_cmpint(mk_hash_reserve(&h, 100), ==, -ENOMEM);
	g_assert_true(mk_alloc_fail_fired());
	g_assert_cmpuint(h.cap, ==, 8);
	g_assert_cmpint(mk_hash_reserve(&h, 100), ==, 0);
	mk_alloc_fail_after(0);
	for (k = 6; k < 106; k++)
		g_assert_cmpint(mk_hash_put(&h, k, (void *)(uintptr_t)(k + 1), NULL), ==, 0);
	g_assert_false(mk_alloc_fail_fired());
	mk_alloc_fail_after(-1);
	mk_hash_free(&h);
}

static void test_le(void)
{
	uint8_t b[8];

	mk_put_le64(b, 0x0102030405060708ull);
	g_assert_cmpmem(b, 8, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	g_assert_cmphex(mk_get_le64(b), ==, 0x0102030405060708ull);
	mk_put_le32(b + 1, 0xa1b2c3d4u);
	g_assert_cmpmem(b + 1, 4, "\xd4\xc3\xb2\xa1", 4);
	g_assert_cmphex(mk_get_le32(b + 1), ==, 0xa1b2c3d4u);
	mk_put_le16(b + 3, 0xbeef);
	g_assert_cmpmem(b + 3, 2, "\xef\xbe", 2);
	g_assert_cmphex(mk_get_le16(b + 3), ==, 0xbeef);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/common/hash/model", test_hash_model);
	g_test_add_func("/common/hash/enomem", test_hash_enomem);
	g_test_add_func("/common/le", test_le);
	return g_test_run();
}
