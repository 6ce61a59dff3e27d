/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one JSON writer of memkit's tools (shmctl, daxsnap): builds a
 * document in a GString, two-space indented, every string escaped.
 *
 * Strings: '"' and '\' are escaped, control bytes (below 0x20, and DEL)
 * become \u00XX (\n, \t ... keep their short forms), valid UTF-8 is
 * copied, and every maximal ill-formed UTF-8 subsequence (Unicode's
 * "substitution of maximal subparts", what Python's errors='replace'
 * does) becomes one U+FFFD. The output is therefore always valid UTF-8
 * JSON (RFC 8259), whatever bytes a file name holds. See memkit(7).
 *
 * Every tool document is an object whose first member is
 * "schema": MK_JSON_SCHEMA (jw_begin_document writes it).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bumped when a field changes meaning or disappears (new fields do not bump it). */
#define MK_JSON_SCHEMA 1

#define JW_MAX_DEPTH 16

struct jw {
	GString *s;
	int depth;
	bool has_items[JW_MAX_DEPTH];
};

/* Append s (len bytes, NUL bytes included) as a quoted JSON string. */
void json_escape_append(GString *out, const char *s, size_t len);

/* Start a document: "{" and the "schema" member. */
void jw_begin_document(struct jw *w);
/* Close the document's object; returns the text with a final newline (g_free). */
char *jw_end_document(struct jw *w);

/* key is the member name inside an object, NULL inside an array. */
void jw_object_begin(struct jw *w, const char *key);
void jw_object_end(struct jw *w);
void jw_array_begin(struct jw *w, const char *key);
void jw_array_end(struct jw *w);
/* val NULL writes null. */
void jw_string(struct jw *w, const char *key, const char *val);
void jw_string_len(struct jw *w, const char *key, const char *val, size_t len);
void jw_u64(struct jw *w, const char *key, uint64_t val);
void jw_i64(struct jw *w, const char *key, int64_t val);
void jw_bool(struct jw *w, const char *key, bool val);
/*
 * val rounded to exactly decimals (0..9) digits after the point, e.g.
 * 892.456 for (892.45567100000005, 3): no binary noise, a width the
 * reader can rely on. NaN, infinities and magnitudes past 2^63 units
 * of the last digit are null.
 */
void jw_fixed(struct jw *w, const char *key, double val, unsigned decimals);
void jw_null(struct jw *w, const char *key);
