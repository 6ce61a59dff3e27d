/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest: host-side fill/verify/checksum of a test region (check.c). */
#pragma once

#include <stdint.h>

#include "common/macro.h"
#include "tools/memcheck/mem.h"

struct mc_mismatch {
	uint64_t count;
	uint64_t first_gpa;
	uint64_t expected;
	uint64_t actual;
};

/* Compare the region (mapped at gpa) with pattern kind/seed. */
int mc_host_verify(struct mc_mem *m, uint64_t gpa, unsigned kind, uint64_t seed,
		   struct mc_mismatch *mm);
int mc_host_fill(struct mc_mem *m, uint64_t gpa, unsigned kind, uint64_t seed);
/* The guest's checksum (MC_OP_CHECKSUM) of the whole region. */
int mc_host_checksum(struct mc_mem *m, uint64_t *out);
int mc_host_corrupt(struct mc_mem *m, uint64_t off);
