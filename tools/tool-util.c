/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tool-util.h"

void mk_tool_init(const char *prog)
{
	setlocale(LC_ALL, "");
	/* JSON and tables print numbers with printf: keep '.' whatever the locale */
	setlocale(LC_NUMERIC, "C");
	g_set_prgname(prog);
}

int mk_usage_error(const char *prog, const char *help, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	/* one write: the line never mixes with other output */
	fprintf(stderr, "%s: %s (see '%s --help')\n", prog, msg, help);
	return MK_EXIT_USAGE;
}

void mk_print_version(const char *prog, const char *libs, const char *extra)
{
	printf("%s (memkit) %s\n", prog, PACKAGE_VERSION);
	printf("%s, GLib %u.%u.%u%s%s\n", libs, glib_major_version, glib_minor_version,
	       glib_micro_version, extra ? ", " : "", extra ? extra : "");
	printf("License GPL-2.0-or-later: GNU GPL version 2 or later <https://gnu.org/licenses/gpl.html>\n"
	       "(the memkit libraries: LGPL-2.1-or-later).\n"
	       "This is free software: you are free to change and redistribute it.\n"
	       "There is NO WARRANTY, to the extent permitted by law.\n");
}

bool mk_parse_u64(const char *s, uint64_t *out)
{
	static const char suffixes[] = "KMGT";
	const char *sfx;
	uint64_t v = 0, mul = 1;
	const char *p;
	bool hex;

	if (!s || !*s)
		return false;
	hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	p = hex ? s + 2 : s;
	if (!g_ascii_isxdigit(*p) || (!hex && !g_ascii_isdigit(*p)))
		return false;
	for (; hex ? g_ascii_isxdigit(*p) : g_ascii_isdigit(*p); p++) {
		unsigned d = (unsigned)g_ascii_xdigit_value(*p);
		unsigned base = hex ? 16 : 10;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (*p) {
		sfx = strchr(suffixes, g_ascii_toupper(*p));
		if (!sfx || p[1])
			return false;
		mul = 1ull << (10 * (sfx - suffixes + 1));
	}
	if (v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

long mk_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3;
	else
		return -1;
	/* Unicode Table 3-7: the second byte's range depends on the first */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (i = 1; i <= need; i++) {
		if (i >= len || s[i] < lo || s[i] > hi)
			return -(long)i;
		lo = 0x80;
		hi = 0xbf;
	}
	return (long)(need + 1);
}

char *mk_text_escape(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len = strlen(str), i = 0;
	GString *out = g_string_sized_new(len);

	while (i < len) {
		long n;

		if (s[i] == '\\') {
			g_string_append(out, "\\\\");
			i++;
			continue;
		}
		if (s[i] < 0x20 || s[i] == 0x7f) {
			g_string_append_printf(out, "\\x%02x", s[i]);
			i++;
			continue;
		}
		n = mk_utf8_seq(s + i, len - i);
		/* C1 controls (U+0080..U+009F) are escapes to some terminals too */
		if (n < 0 || (n == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0)) {
			size_t k = n < 0 ? (size_t)-n : 2;
			for (size_t j = 0; j < k; j++)
				g_string_append_printf(out, "\\x%02x", s[i + j]);
			i += k;
		} else {
			g_string_append_len(out, (const char *)s + i, n);
			i += (size_t)n;
		}
	}
	return g_string_free(out, FALSE);
}
