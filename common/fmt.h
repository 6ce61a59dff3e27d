/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Async-signal-safe formatting: no malloc, no stdio, no locale.
 * Supports %s %c %d %i %u %o %x %X %p %% with the l, ll, z length modifiers,
 * a '0' flag and a field width (e.g. "%016llx").
 *
 * mk_fmt() always NUL-terminates (when size > 0) and returns the length the
 * full output would have, like snprintf; a result >= size means truncation.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

int mk_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int mk_vfmt(char *buf, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
