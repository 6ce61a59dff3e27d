/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest: what a check gets and what it reports. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tools/memcheck/vm.h"

enum mc_status { MC_PASS, MC_FAIL, MC_SKIP };

struct mc_opts {
	uint64_t size;          /* test region bytes */
	uint64_t seed;
	unsigned iterations;
	uint64_t timeout_ns;    /* per guest command */
	bool verbose;
	const char *inject;     /* debug: corrupt this check's host-side verification */
	const char *self;       /* path of this executable (for helper processes) */
	int kvm_fd;
	const char *release;    /* the kernel the checks run on (uname -r) */
	const char *via;        /* "host" (its /dev/kvm) or "microvm" (memkit-microvm) */
};

#define MC_MAX_METRICS 96

struct mc_metric {
	const char *name;       /* snake_case, for --json */
	double value;
	const char *unit;
};

struct mc_result {
	const char *name;
	enum mc_status status;
	uint64_t ns;            /* how long the check took */
	char detail[256];       /* one line: what was measured, or why it failed/skipped */
	const char *region;     /* sandbox checks: the region kind they ran on, else NULL */
	struct mc_metric metrics[MC_MAX_METRICS];
	unsigned nmetrics;
};

typedef void (*mc_check_fn)(const struct mc_opts *o, struct mc_result *res);

struct mc_check {
	const char *name;
	const char *summary;
	mc_check_fn run;
};

extern const struct mc_check mc_checks[];
extern const unsigned mc_ncheck;

void mc_pass(struct mc_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mc_fail(struct mc_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mc_skip(struct mc_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mc_metric(struct mc_result *res, const char *name, double value, const char *unit);
/* Does the debug option ask to corrupt this check? */
bool mc_injected(const struct mc_opts *o, const char *check);
/* Verbose note on stderr. */
void mc_note(const struct mc_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Open a VM for a check; on failure marks res FAIL and returns false. */
bool mc_check_vm(const struct mc_opts *o, struct mc_vm *vm, struct mc_result *res);

/* Checks, one file each. */
void mc_check_patterns(const struct mc_opts *o, struct mc_result *res);
void mc_check_guard(const struct mc_opts *o, struct mc_result *res);
void mc_check_dirty(const struct mc_opts *o, struct mc_result *res);
void mc_check_readonly(const struct mc_opts *o, struct mc_result *res);
void mc_check_snapshot(const struct mc_opts *o, struct mc_result *res);
/* The same five on a guest_memfd region (Linux 6.18+; SKIP before). */
void mc_check_patterns_gmem(const struct mc_opts *o, struct mc_result *res);
void mc_check_guard_gmem(const struct mc_opts *o, struct mc_result *res);
void mc_check_snapshot_gmem(const struct mc_opts *o, struct mc_result *res);
void mc_check_dax(const struct mc_opts *o, struct mc_result *res);
void mc_check_shm(const struct mc_opts *o, struct mc_result *res);
void mc_check_lazy(const struct mc_opts *o, struct mc_result *res);
/* Boots a stock Linux kernel with a virtio-fs DAX mount served by libdax (linux.c). */
void mc_check_linux(const struct mc_opts *o, struct mc_result *res);

/* Hidden helper mode for the shm check's second process; returns the exit code. */
int mc_shm_helper(const char *spec);
