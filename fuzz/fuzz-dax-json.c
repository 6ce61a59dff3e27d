/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz daxsnap's JSON reader (daxsnap create --json reads it from
 * stdin): any bytes either parse into a tree whose every node is
 * well-formed, or fail with a message.
 */
#include "config.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/seeds.h"
#include "tools/daxsnap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

static void walk(const struct jv *v, int depth)
{
	if (depth > 64)
		abort();
	switch (v->type) {
	case JV_STRING:
		if (!v->str)
			abort();
		break;
	case JV_OBJECT:
		for (size_t i = 0; i < v->n; i++)
			if (!v->keys[i] || jv_get(v, v->keys[i]) == NULL)
				abort();
		/* An object's members are also in items: walk them as an array's.
		 * The attribute, not a comment: clang's -Wimplicit-fallthrough
		 * takes only the attribute (gcc takes both). */
		__attribute__((fallthrough));
	case JV_ARRAY:
		for (size_t i = 0; i < v->n; i++)
			walk(v->items[i], depth + 1);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *err = NULL;
	struct jv *v = jv_parse((const char *)data, size, &err);

	if (!v == !err)
		abort();
	if (v)
		walk(v, 0);
	jv_free(v);
	g_free(err);
	return 0;
}

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	static const char *const seeds[] = {
		"{\"version\": 2, \"base_gpa\": 1073741824, \"window_len\": 67108864, \"cap\": 67108864,\n"
		" \"align_log2\": 21, \"entries\": [\n"
		"  {\"moffset\": 0, \"len\": 2097152, \"nodeid\": 1, \"foffset\": 0, \"prot\": \"r\"},\n"
		"  {\"moffset\": 2097152, \"len\": \"2M\", \"nodeid\": 1, \"foffset\": \"0x400000\", \"prot\": 3,\n"
		"   \"identity\": {\"dev\": 2049, \"ino\": 12, \"size\": 4096, \"mtime_sec\": 1, \"mtime_nsec\": 2}}]}",
		"[1, -2, true, false, null, \"a\\u0041\\n\\\"\", {}, [], {\"k\": [[[]]]}]",
		"18446744073709551615",
	};

	return mk_fuzz_seed_string(seeds, G_N_ELEMENTS(seeds), i, buf, cap);
}
