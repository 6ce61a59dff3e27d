/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running memcheck's checks in memkit's microVM (scripts/memkit-microvm):
 * with --kernel, or by itself where this host has no usable /dev/kvm.
 */
#pragma once

#include <stdbool.h>

/* Set in the microVM's environment for the re-run program. */
#define MC_MICROVM_ENV "MEMKIT_MICROVM_GUEST"

/* True when this process runs inside the microVM that memcheck started. */
bool mc_in_microvm(void);

/*
 * Run this program again inside the microVM on kernel (a series, release
 * or path; NULL for the runner's default), with argv (the original
 * arguments; --kernel is dropped). why, if not NULL, is said on stderr
 * first. Returns the exit status to exit with: the inner program's, or 77
 * where no microVM can run (the runner's reason on stderr).
 */
int mc_microvm_run(const char *kernel, char **argv, const char *why);
