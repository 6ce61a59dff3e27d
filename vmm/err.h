/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: memkit's small VMM (a library inside the tree, never installed),
 * which memcheck-guest, daxsnap replay, the KVM tests and the benchmarks
 * build their VMs with. libc, the kernel's KVM API, and libsandbox/libdax
 * where a device needs them; no GLib. Every file's names start with vmm_.
 *
 * Why a step failed, in one form everywhere in vmm/: a fallible function
 * returns 0 (or a count) or -errno, and where the errno alone does not say
 * what failed it also fills the caller's struct vmm_err with that errno
 * and one line ("KVM_CREATE_VM: Permission denied"). A device keeps one as
 * a member for the first thing its guest did wrong. The first failure
 * recorded is kept (what follows it is usually its consequence) until
 * vmm_err_clear().
 */
#pragma once

#include <stdbool.h>

struct vmm_err {
	int err;                /* -errno of the first failure; 0: none */
	char msg[256];          /* what failed and why, one line */
};

/*
 * Record err (< 0) with a message, unless e already holds a failure (or is
 * NULL: a caller that wants only the errno); returns err.
 */
int vmm_fail(struct vmm_err *e, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with "what: strerror(-err)". */
int vmm_fail_sys(struct vmm_err *e, int err, const char *what);

static inline void vmm_err_clear(struct vmm_err *e)
{
	e->err = 0;
	e->msg[0] = '\0';
}

static inline bool vmm_err_set(const struct vmm_err *e)
{
	return e->err != 0;
}
