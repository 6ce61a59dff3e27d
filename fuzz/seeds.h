/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Seeds written as C strings, for a target's mk_fuzz_seed() (see driver.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copy seeds[i] (without its NUL) into buf: its length, or 0 past the end or when it does not fit. */
static inline size_t mk_fuzz_seed_string(const char *const *seeds, size_t nseeds, unsigned i,
					 uint8_t *buf, size_t cap)
{
	size_t n;

	if (i >= nseeds)
		return 0;
	n = strlen(seeds[i]);
	if (n > cap)
		return 0;
	memcpy(buf, seeds[i], n);
	return n;
}
