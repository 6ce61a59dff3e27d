/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small strict JSON reader for daxsnap create: objects, arrays,
 * strings (with \uXXXX limited to ASCII), integers (no fractions or
 * exponents: every field daxsnap reads is an integer), true/false/null.
 * Depth and size are bounded; errors carry the byte offset.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "daxsnap.h"

#define MAX_DEPTH 32

struct parser {
	const char *p;
	const char *start;
	const char *end;
	GString *err;
};

static void fail(struct parser *ps, const char *what)
{
	if (!ps->err->len)
		g_string_printf(ps->err, "%s at byte %td", what, ps->p - ps->start);
}

static void ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static struct jv *parse_value(struct parser *ps, int depth);

void jv_free(struct jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		g_free(v->keys ? v->keys[i] : NULL);
		jv_free(v->items[i]);
	}
	g_free(v->keys);
	g_free(v->items);
	g_free(v->str);
	g_free(v);
}

static char *parse_string(struct parser *ps)
{
	GString *s = g_string_new(NULL);

	ps->p++;        /* opening quote */
	while (ps->p < ps->end && *ps->p != '"') {
		char c = *ps->p++;
		if ((unsigned char)c < 0x20) {
			fail(ps, "control character in string");
			goto bad;
		}
		if (c != '\\') {
			g_string_append_c(s, c);
			continue;
		}
		if (ps->p >= ps->end)
			break;
		c = *ps->p++;
		switch (c) {
		case '"': case '\\': case '/': g_string_append_c(s, c); break;
		case 'n': g_string_append_c(s, '\n'); break;
		case 't': g_string_append_c(s, '\t'); break;
		case 'r': g_string_append_c(s, '\r'); break;
		case 'b': g_string_append_c(s, '\b'); break;
		case 'f': g_string_append_c(s, '\f'); break;
		case 'u': {
			char hex[5] = { 0 };
			unsigned long u;
			if (ps->end - ps->p < 4) {
				fail(ps, "short \\u escape");
				goto bad;
			}
			memcpy(hex, ps->p, 4);
			if (!g_ascii_isxdigit(hex[0]) || !g_ascii_isxdigit(hex[1]) ||
			    !g_ascii_isxdigit(hex[2]) || !g_ascii_isxdigit(hex[3])) {
				fail(ps, "bad \\u escape");
				goto bad;
			}
			u = strtoul(hex, NULL, 16);
			if (u == 0 || u > 0x7f) {
				fail(ps, "non-ASCII \\u escape");
				goto bad;
			}
			g_string_append_c(s, (char)u);
			ps->p += 4;
			break;
		}
		default:
			fail(ps, "bad escape");
			goto bad;
		}
	}
	if (ps->p >= ps->end) {
		fail(ps, "unterminated string");
		goto bad;
	}
	ps->p++;
	return g_string_free(s, FALSE);
bad:
	g_string_free(s, TRUE);
	return NULL;
}

static struct jv *parse_number(struct parser *ps)
{
	struct jv *v = g_new0(struct jv, 1);
	bool neg = false;
	uint64_t x = 0;
	const char *d;

	v->type = JV_INT;
	if (*ps->p == '-') {
		neg = true;
		ps->p++;
	}
	d = ps->p;
	while (ps->p < ps->end && g_ascii_isdigit(*ps->p)) {
		unsigned dig = (unsigned)(*ps->p - '0');
		if (x > (UINT64_MAX - dig) / 10) {
			fail(ps, "number out of range");
			goto bad;
		}
		x = x * 10 + dig;
		ps->p++;
	}
	if (ps->p == d || (ps->p - d > 1 && *d == '0')) {
		fail(ps, "bad number");
		goto bad;
	}
	if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')) {
		fail(ps, "only integers are allowed");
		goto bad;
	}
	if (neg && x > (uint64_t)INT64_MAX + 1) {
		fail(ps, "number out of range");
		goto bad;
	}
	v->neg = neg && x;
	v->u = x;
	return v;
bad:
	jv_free(v);
	return NULL;
}

static bool lit(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, word, n)) {
		ps->p += n;
		return true;
	}
	return false;
}

static struct jv *parse_container(struct parser *ps, int depth, bool object)
{
	struct jv *v = g_new0(struct jv, 1);
	GPtrArray *items = g_ptr_array_new();
	GPtrArray *keys = g_ptr_array_new();
	char close = object ? '}' : ']';

	v->type = object ? JV_OBJECT : JV_ARRAY;
	ps->p++;
	ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		goto done;
	}
	for (;;) {
		struct jv *item;
		ws(ps);
		if (object) {
			char *k;
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a key");
				goto bad;
			}
			k = parse_string(ps);
			if (!k)
				goto bad;
			g_ptr_array_add(keys, k);
			ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				fail(ps, "expected ':'");
				goto bad;
			}
			ps->p++;
		}
		item = parse_value(ps, depth + 1);
		if (!item)
			goto bad;
		g_ptr_array_add(items, item);
		ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			break;
		}
		fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
		goto bad;
	}
done:
	v->n = items->len;
	v->items = (struct jv **)g_ptr_array_free(items, FALSE);
	v->keys = object ? (char **)g_ptr_array_free(keys, FALSE) : (g_ptr_array_free(keys, TRUE), NULL);
	return v;
bad:
	/* keys may be one longer than items (a key whose value failed) */
	for (guint i = 0; i < keys->len; i++)
		g_free(keys->pdata[i]);
	for (guint i = 0; i < items->len; i++)
		jv_free(items->pdata[i]);
	g_ptr_array_free(keys, TRUE);
	g_ptr_array_free(items, TRUE);
	g_free(v);
	return NULL;
}

static struct jv *parse_value(struct parser *ps, int depth)
{
	struct jv *v;

	if (depth > MAX_DEPTH) {
		fail(ps, "nested too deeply");
		return NULL;
	}
	ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end of input");
		return NULL;
	}
	switch (*ps->p) {
	case '{':
		return parse_container(ps, depth, true);
	case '[':
		return parse_container(ps, depth, false);
	case '"': {
		char *s = parse_string(ps);
		if (!s)
			return NULL;
		v = g_new0(struct jv, 1);
		v->type = JV_STRING;
		v->str = s;
		return v;
	}
	default:
		if (*ps->p == '-' || g_ascii_isdigit(*ps->p))
			return parse_number(ps);
		v = g_new0(struct jv, 1);
		if (lit(ps, "true")) {
			v->type = JV_BOOL;
			v->u = 1;
		} else if (lit(ps, "false"))
			v->type = JV_BOOL;
		else if (lit(ps, "null"))
			v->type = JV_NULL;
		else {
			g_free(v);
			fail(ps, "unexpected character");
			return NULL;
		}
		return v;
	}
}

struct jv *jv_parse(const char *text, size_t len, char **err)
{
	struct parser ps = { text, text, text + len, g_string_new(NULL) };
	struct jv *v = parse_value(&ps, 0);

	if (v) {
		ws(&ps);
		if (ps.p != ps.end) {
			fail(&ps, "trailing data");
			jv_free(v);
			v = NULL;
		}
	}
	*err = v ? NULL : g_strdup(ps.err->str);
	g_string_free(ps.err, TRUE);
	return v;
}

const struct jv *jv_get(const struct jv *obj, const char *key)
{
	if (!obj || obj->type != JV_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (!strcmp(obj->keys[i], key))
			return obj->items[i];
	return NULL;
}
