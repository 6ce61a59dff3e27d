/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tools' JSON writer; see json-out.h for the escaping rules. */
#include "config.h"

#include <inttypes.h>
#include <math.h>

#include "json-out.h"
#include "tool-util.h"

void json_escape_append(GString *out, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	g_string_append_c(out, '"');
	while (i < len) {
		unsigned char c = s[i];
		long n;

		if (c == '"' || c == '\\') {
			g_string_append_c(out, '\\');
			g_string_append_c(out, (char)c);
			i++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			switch (c) {
			case '\n': g_string_append(out, "\\n"); break;
			case '\t': g_string_append(out, "\\t"); break;
			case '\r': g_string_append(out, "\\r"); break;
			case '\b': g_string_append(out, "\\b"); break;
			case '\f': g_string_append(out, "\\f"); break;
			default: g_string_append_printf(out, "\\u%04x", c); break;
			}
			i++;
			continue;
		}
		if (c < 0x80) {
			g_string_append_c(out, (char)c);
			i++;
			continue;
		}
		n = mk_utf8_seq(s + i, len - i);
		if (n > 0) {
			g_string_append_len(out, (const char *)s + i, (gssize)n);
			i += (size_t)n;
		} else {
			/* one U+FFFD per maximal ill-formed subpart (at least one byte) */
			g_string_append(out, "\xef\xbf\xbd");
			i += (size_t)-n;
		}
	}
	g_string_append_c(out, '"');
}

static void indent(struct jw *w)
{
	g_string_append_c(w->s, '\n');
	for (int i = 0; i < w->depth; i++)
		g_string_append(w->s, "  ");
}

/* Separator, indentation and "key": before a value. */
static void item(struct jw *w, const char *key)
{
	if (w->has_items[w->depth])
		g_string_append_c(w->s, ',');
	w->has_items[w->depth] = true;
	indent(w);
	if (key) {
		json_escape_append(w->s, key, strlen(key));
		g_string_append(w->s, ": ");
	}
}

static void open_(struct jw *w, const char *key, char c)
{
	item(w, key);
	g_string_append_c(w->s, c);
	g_assert(w->depth + 1 < JW_MAX_DEPTH);
	w->depth++;
	w->has_items[w->depth] = false;
}

static void close_(struct jw *w, char c)
{
	bool any = w->has_items[w->depth];

	g_assert(w->depth > 0);
	w->depth--;
	if (any)
		indent(w);
	g_string_append_c(w->s, c);
}

void jw_begin_document(struct jw *w)
{
	w->s = g_string_new("{");
	w->depth = 1;
	w->has_items[1] = false;
	jw_u64(w, "schema", MK_JSON_SCHEMA);
}

char *jw_end_document(struct jw *w)
{
	g_assert(w->depth == 1);
	close_(w, '}');
	g_string_append_c(w->s, '\n');
	return g_string_free(w->s, FALSE);
}

void jw_object_begin(struct jw *w, const char *key)
{
	open_(w, key, '{');
}

void jw_object_end(struct jw *w)
{
	close_(w, '}');
}

void jw_array_begin(struct jw *w, const char *key)
{
	open_(w, key, '[');
}

void jw_array_end(struct jw *w)
{
	close_(w, ']');
}

void jw_string_len(struct jw *w, const char *key, const char *val, size_t len)
{
	item(w, key);
	if (val)
		json_escape_append(w->s, val, len);
	else
		g_string_append(w->s, "null");
}

void jw_string(struct jw *w, const char *key, const char *val)
{
	jw_string_len(w, key, val, val ? strlen(val) : 0);
}

void jw_fixed(struct jw *w, const char *key, double val, unsigned decimals)
{
	uint64_t scale = 1, mag;
	double r;

	item(w, key);
	for (unsigned i = 0; i < decimals && i < 9; i++)
		scale *= 10;
	r = round(val * (double)scale);
	/* beyond 2^63 (or not a number) no fixed form is exact: null */
	if (!isfinite(r) || fabs(r) >= 9.2e18) {
		g_string_append(w->s, "null");
		return;
	}
	mag = (uint64_t)fabs(r);
	g_string_append_printf(w->s, "%s%" PRIu64, r < 0 ? "-" : "", mag / scale);
	if (scale > 1)
		g_string_append_printf(w->s, ".%0*" PRIu64, (int)MIN(decimals, 9u), mag % scale);
}

void jw_u64(struct jw *w, const char *key, uint64_t val)
{
	item(w, key);
	g_string_append_printf(w->s, "%" PRIu64, val);
}

void jw_i64(struct jw *w, const char *key, int64_t val)
{
	item(w, key);
	g_string_append_printf(w->s, "%" PRId64, val);
}

void jw_bool(struct jw *w, const char *key, bool val)
{
	item(w, key);
	g_string_append(w->s, val ? "true" : "false");
}

void jw_null(struct jw *w, const char *key)
{
	item(w, key);
	g_string_append(w->s, "null");
}
