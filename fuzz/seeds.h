/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Seeds written as C strings, for a target's mk_fuzz_seed() (see driver.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * The file an input stands for, in targets behind a checksum (README.md):
 * an odd first byte has build() make it from the rest into file (mending
 * what the mode bits ask for), an even one is the rest as it is. *f and
 * the length; *structured counts the built ones.
 */
static inline size_t mk_fuzz_file(const uint8_t *data, size_t size,
				  size_t (*build)(unsigned mode, const uint8_t *in, size_t n, uint8_t *f),
				  uint8_t *file, const uint8_t **f, unsigned long *structured)
{
	if (data[0] & 1) {
		*f = file;
		++*structured;
		return build(data[0], data + 1, size - 1, file);
	}
	*f = data + 1;
	return size - 1;
}

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
