/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers every memkit tool shares: start-up, --version, numbers, escaping. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit status every tool uses for "KVM unavailable" (as automake's SKIP). */
#define MK_EXIT_NOKVM 77
/* ... and for a usage error. */
#define MK_EXIT_USAGE 2

/*
 * A usage error, one line on standard error as memkit(7) has every error:
 * "PROG: MESSAGE (see 'HELP --help')", HELP being PROG or "PROG COMMAND".
 * The caller escapes what it puts in MESSAGE. Returns MK_EXIT_USAGE.
 */
int mk_usage_error(const char *prog, const char *help, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* one for a count of 1, else many: "1 check", "0 checks", "2 checks". */
static inline const char *mk_plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* setlocale(LC_ALL, "") and the program name GLib's --help prints. */
void mk_tool_init(const char *prog);

/*
 * --version: "PROG (memkit) VERSION", then "libs" (e.g. "libdax 0.1.0"),
 * GLib's version and extra (NULL or e.g. "libsmartcols 2.38.1"), then
 * the licence lines.
 */
void mk_print_version(const char *prog, const char *libs, const char *extra);

/*
 * The one number grammar of the tools' options and JSON input: decimal,
 * or hexadecimal after 0x; then optionally one binary multiplier K, M,
 * G or T (case-insensitive, 2^10 .. 2^40). No sign, no spaces, no
 * overflow. Returns false (errno untouched) if s is not such a number.
 */
bool mk_parse_u64(const char *s, uint64_t *out);

/*
 * The length of the well-formed UTF-8 sequence at s (n > 0), or minus
 * the length of its maximal ill-formed subpart (at least one byte).
 * len > 0.
 */
long mk_utf8_seq(const unsigned char *s, size_t len);

/*
 * A name from the filesystem (or any outside string) made safe for a
 * terminal: backslash becomes "\\", control characters (C0, DEL, C1)
 * and the bytes of ill-formed UTF-8 become "\xHH"; printable UTF-8 is
 * kept. g_free the result.
 */
char *mk_text_escape(const char *s);
