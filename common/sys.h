/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thin syscall wrappers. Every function returns 0 (or a non-negative
 * value) on success and -errno on failure, and leaves the caller's errno
 * exactly as it found it. All are async-signal-safe (they are single
 * syscalls) unless noted.
 */
#pragma once

#include <stdint.h>
#include <stddef.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <time.h>

#include "uapi.h"

/* mmap into *out; *out untouched on failure. */
int mk_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, void **out);
int mk_munmap(void *addr, size_t len);
int mk_mprotect(void *addr, size_t len, int prot);
int mk_madvise(void *addr, size_t len, int advice);
/* mremap(old, old_len, new_len, flags[, new_addr]) into *out; *out untouched on failure. */
int mk_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr, void **out);

/* Anonymous reservation of len bytes with a PROT_NONE guard of guard bytes on
 * each side; *out is the usable start. Undo with mk_unmap_guarded(). */
int mk_map_guarded(size_t len, size_t guard, int prot, int flags, void **out);
int mk_unmap_guarded(void *p, size_t len, size_t guard);

/* memfd_create; returns the fd. flags: MFD_*; MFD_CLOEXEC is always added. */
int mk_memfd_create(const char *name, unsigned flags);
int mk_add_seals(int fd, int seals);
int mk_get_seals(int fd);

int mk_ftruncate(int fd, uint64_t len);
int mk_fallocate(int fd, int mode, uint64_t off, uint64_t len);

/* openat with O_CLOEXEC|O_NOFOLLOW always added; returns the fd. */
int mk_openat(int dirfd, const char *path, int flags, mode_t mode);
int mk_unlinkat(int dirfd, const char *path, int flags);
int mk_close(int fd);
int mk_fstat(int fd, struct stat *st);
int mk_fchmod(int fd, mode_t mode);
int mk_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx);
int mk_flock(int fd, int op);
ssize_t mk_pread_full(int fd, void *buf, size_t len, uint64_t off);
ssize_t mk_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/*
 * userfaultfd(2) with flags (O_CLOEXEC is always added); when the syscall
 * is refused (-EPERM: no CAP_SYS_PTRACE and vm.unprivileged_userfaultfd=0)
 * and flags do not ask for UFFD_USER_MODE_ONLY, falls back to
 * /dev/userfaultfd (USERFAULTFD_IOC_NEW, Linux 6.1) where it may be
 * opened. Returns the fd; the UFFDIO_API handshake is the caller's.
 */
int mk_userfaultfd(int flags);
/* ioctl(fd, req, arg), retried on EINTR; returns its value or -errno. */
int mk_ioctl(int fd, unsigned long req, void *arg);
/* read(2) once (EINTR retried): bytes read, 0 at end, -errno (-EAGAIN when non-blocking and empty). */
ssize_t mk_read(int fd, void *buf, size_t len);
/* write(2) once (EINTR retried). */
ssize_t mk_write(int fd, const void *buf, size_t len);
/* eventfd(initval, flags | EFD_CLOEXEC); returns the fd. */
int mk_eventfd(unsigned initval, int flags);
/* posix_fadvise(fd, off, len, advice) (POSIX_FADV_*): 0 or -errno. */
int mk_fadvise(int fd, uint64_t off, uint64_t len, int advice);
/* epoll_create1(EPOLL_CLOEXEC); returns the fd (readable, to poll(2), while a member is ready). */
int mk_epoll_create(void);
/* Add fd to epfd for events (EPOLLIN ...), level-triggered. */
int mk_epoll_add(int epfd, int fd, uint32_t events);

pid_t mk_getpid(void);
/* geteuid(2): the effective uid. It cannot fail (no error return exists). */
uid_t mk_geteuid(void);
/* Name the calling thread (prctl PR_SET_NAME; at most 15 bytes are kept). */
int mk_set_thread_name(const char *name);
/*
 * pthread_sigmask(how, set, old): the calling thread's signal mask. 0 or
 * -errno (-EINVAL: bad how); pthread_sigmask returns an error number
 * instead of setting errno, this says it the wrappers' way.
 */
int mk_sigmask(int how, const sigset_t *set, sigset_t *old);
/*
 * nanosleep(2) for the whole of *req: when a signal handler interrupts it
 * (EINTR), it sleeps again for the time that was left. 0, or -errno
 * (-EINVAL: tv_nsec outside [0, 999999999] or tv_sec < 0).
 */
int mk_nanosleep(const struct timespec *req);
/* sched_yield(2): give the CPU to another runnable thread. */
void mk_sched_yield(void);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t mk_now_ns(void);
int mk_clock_ns(clockid_t clk, uint64_t *out);

/*
 * Start time of a process in clock ticks since boot (field 22 of
 * /proc/PID/stat): together with the pid it names one process for the
 * life of the machine, so pid reuse cannot fool liveness checks.
 * Async-signal-safe (open/read/close and hand parsing only).
 */
int mk_proc_start_time(pid_t pid, uint64_t *out);

/* fcntl(fd, F_DUPFD_CLOEXEC, 3): a close-on-exec duplicate above the standard streams; the fd. */
int mk_dup_cloexec(int fd);
/* stat(2) of a path (symlinks followed). */
int mk_stat(const char *path, struct stat *st);
/* poll(2) once (EINTR is returned, not retried: the caller decides); the number of ready fds. */
struct pollfd;
int mk_poll(struct pollfd *fds, unsigned nfds, int timeout_ms);
/* sendmsg(2) / recvmsg(2), EINTR retried; the byte count. */
struct msghdr;
ssize_t mk_sendmsg(int sock, const struct msghdr *msg, int flags);
ssize_t mk_recvmsg(int sock, struct msghdr *msg, int flags);
/* getdents64(2): directory entries without opendir's malloc; bytes read, 0 at the end. */
ssize_t mk_getdents64(int dirfd, void *buf, size_t len);
/* getrandom(2) of exactly len bytes (flags GRND_*); 0, or -EAGAIN / -ENOSYS / ... */
int mk_getrandom(void *buf, size_t len, unsigned flags);
