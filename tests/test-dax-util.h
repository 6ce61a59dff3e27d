/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the libdax tests: a recording mapper and real test files. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "dax.h"

struct rec_call {
	char op;                /* 'M' map, 'U' unmap */
	uint64_t gpa;
	uint64_t len;
	uint64_t foffset;
	uint32_t prot;
	int replace;
};

/* Records every call; fail_map/fail_unmap make the next calls fail with that errno. */
struct rec_mapper {
	GMutex lock;
	GArray *calls;          /* struct rec_call */
	int fail_map;
	int fail_unmap;
	uintptr_t next_hva;
};

void rec_init(struct rec_mapper *m);
void rec_clear(struct rec_mapper *m);
guint rec_count(struct rec_mapper *m);
struct rec_call rec_get(struct rec_mapper *m, guint i);
extern const struct dax_mapper_ops rec_ops_template;

/* A temp file of len bytes, byte i = pattern(i); returns its path (g_free). */
char *dax_test_file(uint64_t len);
uint8_t dax_test_pattern(uint64_t off);
