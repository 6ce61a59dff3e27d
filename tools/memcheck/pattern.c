/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <string.h>

#include "tools/memcheck/pattern.h"

void mc_pat_init(struct mc_pat *p, unsigned kind, uint64_t seed, uint64_t gpa)
{
	unsigned s = seed & 63;

	p->kind = kind;
	p->gpa = gpa;
	switch (kind) {
	case MC_PAT_WALK1:
		p->v = s ? (1ull << s) : 1;
		break;
	case MC_PAT_WALK0:
		p->v = ~(1ull << s);
		break;
	case MC_PAT_ADDR:
		p->v = 0;
		break;
	default:
		p->v = mc_xs_seed(seed);
		break;
	}
}

void mc_pat_fill(struct mc_pat *p, uint64_t *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		words[i] = mc_pat_next(p);
}

const char *mc_pat_name(unsigned kind)
{
	static const char *const names[MC_PAT_COUNT] = {
		[MC_PAT_WALK1] = "walking-ones",
		[MC_PAT_WALK0] = "walking-zeros",
		[MC_PAT_ADDR] = "address",
		[MC_PAT_RANDOM] = "random",
	};
	return kind < MC_PAT_COUNT ? names[kind] : "?";
}

uint64_t mc_checksum(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * MC_FNV_PRIME;
	}
	return h;
}

void mc_page_next(uint64_t *state, uint64_t npages, struct mc_page_write *w)
{
	*state = mc_xorshift(*state);
	w->page = *state % npages;
	w->off = (*state >> 32) & 0xff8;
	w->value = *state;
}
