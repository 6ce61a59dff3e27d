/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running a tool again inside memkit's microVM (scripts/memkit-microvm,
 * memkit-microvm(1)): memcheck-guest with --kernel or without a usable
 * /dev/kvm, daxsnap replay without one.
 */
#pragma once

#include <stdbool.h>

/* Set in the microVM's environment for the re-run program: it never nests another. */
#define MK_MICROVM_ENV "MEMKIT_MICROVM_GUEST"

/* True when this process runs inside the microVM a memkit tool started. */
bool mk_in_microvm(void);

/*
 * Run this program again inside the microVM on kernel (a series, release
 * or path; NULL for the runner's default) with args (its arguments after
 * argv[0], NULL-terminated); opts (NULL-terminated, may be NULL) go to
 * the runner first (e.g. "--rw", DIR). The program's own directory and
 * $LD_LIBRARY_PATH's are shared read-only; the runner shares the current
 * directory. If why is not NULL, "PROG: WHY; DOING in a microVM on kernel
 * RELEASE" is said on stderr first. Returns the exit status to leave with:
 * the program's when it is 0, 1, 2 or 77 (77 also when no microVM can run
 * here, the runner's reason on stderr), else 1 with the reason (a timeout,
 * a guest that did not boot).
 */
int mk_microvm_run(const char *prog, const char *kernel, const char *const *opts, char **args,
		   const char *why, const char *doing);
