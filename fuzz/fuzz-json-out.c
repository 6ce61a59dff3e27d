/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the tools' JSON writer (tools/json-out.c): any bytes as a string
 * (and as a member name) give valid UTF-8 JSON without raw control
 * bytes, which daxsnap's strict reader parses back to the input when the
 * input is valid UTF-8, and otherwise to the input's well-formed pieces
 * with U+FFFD between them.
 */
#include "config.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/seeds.h"
#include "tools/daxsnap.h"
#include "tools/json-out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

/* s without its U+FFFD characters */
static char *drop_fffd(const char *s)
{
	GString *o = g_string_new(NULL);
	const char *p;

	while ((p = strstr(s, "\xef\xbf\xbd"))) {
		g_string_append_len(o, s, p - s);
		s = p + 3;
	}
	g_string_append(o, s);
	return g_string_free(o, FALSE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	GString *out = g_string_new(NULL);
	bool has_nul = memchr(data, 0, size) != NULL;
	char *err = NULL;
	struct jv *v;

	json_escape_append(out, in, size);
	if (out->len < 2 || out->str[0] != '"' || out->str[out->len - 1] != '"')
		abort();
	if (!g_utf8_validate(out->str, (gssize)out->len, NULL))
		abort();
	for (size_t i = 0; i < out->len; i++)
		if ((unsigned char)out->str[i] < 0x20 || out->str[i] == 0x7f)
			abort();
	if (!has_nul) {
		/* daxsnap's reader refuses \u0000, so only NUL-free strings go back */
		g_autofree char *z = g_strndup(in, size);
		v = jv_parse(out->str, out->len, &err);
		if (!v || v->type != JV_STRING)
			abort();
		if (g_utf8_validate(z, -1, NULL)) {
			if (strcmp(v->str, z))
				abort();
		} else {
			g_autofree char *valid = g_utf8_make_valid(z, -1);
			g_autofree char *a = drop_fffd(valid), *b = drop_fffd(v->str);
			if (!g_utf8_validate(v->str, -1, NULL) || strcmp(a, b))
				abort();
		}
		jv_free(v);

		/* the same string as a member name and value in a document */
		struct jw w;
		g_autofree char *doc = NULL;
		jw_begin_document(&w);
		jw_array_begin(&w, "list");
		jw_object_begin(&w, NULL);
		jw_string(&w, z, z);
		jw_u64(&w, "n", size);
		jw_object_end(&w);
		jw_array_end(&w);
		doc = jw_end_document(&w);
		v = jv_parse(doc, strlen(doc), &err);
		if (!v || v->type != JV_OBJECT || !jv_get(v, "schema") ||
		    jv_get(v, "schema")->u != MK_JSON_SCHEMA || !jv_get(v, "list") ||
		    jv_get(v, "list")->n != 1)
			abort();
		jv_free(v);
	}
	g_free(err);
	g_string_free(out, TRUE);
	return 0;
}

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	static const char *const seeds[] = {
		"plain",
		"quote\" backslash\\ newline\n tab\t",
		"\xe2\x82\xac \xf0\x9f\x98\x80 \xed\x9f\xbf \xf4\x8f\xbf\xbf",
		"\xe2\x82 \xf4\x90\x80\x80 \xed\xa0\x80 \xc0\xaf \xff",
	};

	return mk_fuzz_seed_string(seeds, G_N_ELEMENTS(seeds), i, buf, cap);
}
