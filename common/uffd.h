/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * userfaultfd plumbing shared by libdax (its DAX window's lazy binding) and
 * libsandbox (lazily loaded snapshot regions): a userfaultfd that may serve
 * KVM's kernel-mode faults, missing-page registration, installing pages
 * (UFFDIO_COPY, UFFDIO_ZEROPAGE) around pages already present, waking
 * waiters, reading fault events, and the service thread that polls for
 * them. Every function returns 0 (or a count) or -errno.
 *
 * Installs never wake: the caller reports or records what it did first,
 * then wakes (mk_uffd_wake), so a waiting access goes on after the record.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * A userfaultfd (O_NONBLOCK, close-on-exec) whose UFFDIO_API handshake is
 * done. Not UFFD_USER_MODE_ONLY: KVM's accesses are kernel-mode gup, which
 * a user-mode-only userfaultfd answers with SIGBUS (KVM_RUN: EFAULT). Needs
 * CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to
 * /dev/userfaultfd (mk_userfaultfd tries both); -EPERM otherwise.
 */
int mk_uffd_open(void);
/*
 * Register [addr, addr + len) (page aligned) for missing-page faults.
 * -ENOTSUP when the kernel offers neither UFFDIO_COPY nor UFFDIO_ZEROPAGE
 * there (they exist for anonymous memory): faults could not be served.
 */
int mk_uffd_register(int uffd, void *addr, uint64_t len);
/* Wake the accesses waiting in a range (nothing to do for a range outside the address space). */
void mk_uffd_wake(int uffd, uint64_t start, uint64_t len);
/*
 * Fill the missing pages of [dst, dst + len) from src (UFFDIO_COPY) or with
 * the zero page (UFFDIO_ZEROPAGE), without waking. Pages already present
 * (a racing access, or a part installed before) are left as they are.
 * -ENOENT: the range is not (any more) registered with uffd, e.g. it was
 * mapped over; -ESRCH: the process is exiting.
 */
int mk_uffd_copy(int uffd, uint64_t dst, const void *src, uint64_t len);
int mk_uffd_zero(int uffd, uint64_t dst, uint64_t len);
/*
 * Read pending events without blocking: the addresses of up to max page
 * faults (max <= 16) into addr. The number of faults read (0 when only
 * other events came), -EAGAIN when nothing is pending, or -errno.
 */
int mk_uffd_read_faults(int uffd, uint64_t *addr, unsigned max);

/*
 * A fault service thread: it calls serve(data) each time fd is readable
 * (POLLIN), until stopped or fd reports an error or hang-up. It runs with
 * every signal blocked (a VMM's vCPU-kick signals keep reaching the
 * caller's threads) and names itself name (at most 15 bytes kept).
 */
struct mk_uffd_thread {
	pthread_t thread;
	int fd;
	int stop_fd;            /* eventfd that stops it; -1: not running */
	void (*serve)(void *data);
	void *data;
	const char *name;
};

/* 0, or -errno (-EAGAIN: no thread could be created); t is not running on failure. */
int mk_uffd_thread_start(struct mk_uffd_thread *t, int fd, void (*serve)(void *data), void *data,
			 const char *name);
/* Stop and join it; a no-op when it does not run. Not from the thread itself. */
void mk_uffd_thread_stop(struct mk_uffd_thread *t);
static inline bool mk_uffd_thread_running(const struct mk_uffd_thread *t)
{
	return t->stop_fd >= 0;
}
