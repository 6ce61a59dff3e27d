/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the libshm tests and their helper program: patterns, handle text. */
#pragma once

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "shm.h"

static inline uint64_t shm_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static inline uint8_t shm_pattern_seed(const struct shma_handle *h)
{
	return (uint8_t)(h->offset / 16 + h->gen * 7 + h->chunk * 13);
}

static inline void shm_pattern_fill(uint8_t *d, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(seed + i * 31);
}

static inline bool shm_pattern_ok(const uint8_t *d, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (d[i] != (uint8_t)(seed + i * 31))
			return false;
	return true;
}

/* "chunk:gen:offset:len" in hex. */
static inline void shm_handle_format(const struct shma_handle *h, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIx32 ":%" PRIx32 ":%" PRIx32 ":%" PRIx32,
		 h->chunk, h->gen, h->offset, h->len);
}

static inline int shm_handle_parse(const char *s, struct shma_handle *h)
{
	return sscanf(s, "%" SCNx32 ":%" SCNx32 ":%" SCNx32 ":%" SCNx32,
		      &h->chunk, &h->gen, &h->offset, &h->len) == 4 ? 0 : -1;
}
