/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host-side twins of the guest's pattern generators (memcheck-guest.S):
 * the same word sequence for each MC_PAT_* kind, the same checksum and
 * the same random page choice, so each side can check the other.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/memcheck/proto.h"

struct mc_pat {
	unsigned kind;
	uint64_t v;     /* generator state */
	uint64_t gpa;   /* guest-physical address of the next word (MC_PAT_ADDR) */
};

static inline uint64_t mc_xorshift(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static inline uint64_t mc_xs_seed(uint64_t seed)
{
	return seed ? seed : MC_XS_DEFAULT;
}

void mc_pat_init(struct mc_pat *p, unsigned kind, uint64_t seed, uint64_t gpa);

/* The next word of the stream. */
static inline uint64_t mc_pat_next(struct mc_pat *p)
{
	uint64_t w;

	switch (p->kind) {
	case MC_PAT_WALK1:
	case MC_PAT_WALK0:
		w = p->v;
		p->v = (p->v << 1) | (p->v >> 63);
		return w;
	case MC_PAT_ADDR:
		w = p->gpa;
		p->gpa += 8;
		return w;
	default:
		p->v = mc_xorshift(p->v);
		return p->v;
	}
}

/* Fill words (host buffer) with the next n words of the stream. */
void mc_pat_fill(struct mc_pat *p, uint64_t *words, size_t n);

const char *mc_pat_name(unsigned kind);

/* The guest's checksum (MC_OP_CHECKSUM), continued from h (start: MC_FNV_OFFSET). */
uint64_t mc_checksum(uint64_t h, const void *buf, size_t len);

/* The page MC_OP_WRITE_PAGES writes at step i: advances *state. */
struct mc_page_write {
	uint64_t page;    /* index into the region */
	uint64_t off;     /* byte offset in the page */
	uint64_t value;
};
void mc_page_next(uint64_t *state, uint64_t npages, struct mc_page_write *w);
