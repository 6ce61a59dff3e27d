/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "size.h"
#include "sys.h"

/*
 * Run one syscall expression, turn failure into -errno and restore the
 * caller's errno so wrappers never leak state into it.
 */
#define MK_SYSCALL(expr) ({                                   \
	int _saved = errno;                                   \
	long _r = (long)(expr);                               \
	if (_r < 0)                                           \
		_r = -errno;                                  \
	errno = _saved;                                       \
	_r;                                                   \
})

/*
 * Evaluate expr (a value >= 0 or -errno, e.g. an MK_SYSCALL) again for as
 * long as it gives -EINTR; its first other value. expr is repeated exactly
 * as written, so it must be right to reissue with the same arguments.
 */
#define MK_RETRY_EINTR(expr) ({                               \
	__typeof__(expr) _eintr_r;                            \
	do                                                    \
		_eintr_r = (expr);                            \
	while (_eintr_r == -EINTR);                           \
	_eintr_r;                                             \
})

size_t mk_page_size(void)
{
	static size_t cached;
	size_t p = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	if (mk_unlikely(!p)) {
		long r = sysconf(_SC_PAGESIZE);
		p = r > 0 ? (size_t)r : 4096;
		__atomic_store_n(&cached, p, __ATOMIC_RELAXED);
	}
	return p;
}

int mk_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, void **out)
{
	int saved = errno;
	void *p = mmap(addr, len, prot, flags, fd, off);

	if (p == MAP_FAILED) {
		int r = -errno;
		errno = saved;
		return r;
	}
	*out = p;
	return 0;
}

int mk_munmap(void *addr, size_t len)
{
	return (int)MK_SYSCALL(munmap(addr, len));
}

int mk_mprotect(void *addr, size_t len, int prot)
{
	return (int)MK_SYSCALL(mprotect(addr, len, prot));
}

int mk_madvise(void *addr, size_t len, int advice)
{
	return (int)MK_SYSCALL(madvise(addr, len, advice));
}

int mk_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr, void **out)
{
	int saved = errno;
	void *p = mremap(old, old_len, new_len, flags, new_addr);

	if (p == MAP_FAILED) {
		int r = -errno;
		errno = saved;
		return r;
	}
	*out = p;
	return 0;
}

int mk_map_guarded(size_t len, size_t guard, int prot, int flags, void **out)
{
	size_t total;
	void *base = NULL;
	int r;

	if (len == 0 || !mk_is_aligned(len, mk_page_size()) ||
	    !mk_is_aligned(guard, mk_page_size()) || guard > SIZE_MAX / 2)
		return -EINVAL;
	if (mk_add_size(len, 2 * guard, &total) < 0)
		return -EINVAL;
	r = mk_mmap(NULL, total, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &base);
	if (r < 0)
		return r;
	if (prot != PROT_NONE || flags) {
		void *mid;
		r = mk_mmap((char *)base + guard, len, prot,
			    MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0, &mid);
		if (r < 0) {
			mk_munmap(base, total);
			return r;
		}
	}
	*out = (char *)base + guard;
	return 0;
}

int mk_unmap_guarded(void *p, size_t len, size_t guard)
{
	return mk_munmap((char *)p - guard, len + 2 * guard);
}

int mk_memfd_create(const char *name, unsigned flags)
{
	return (int)MK_SYSCALL(syscall(SYS_memfd_create, name, flags | MFD_CLOEXEC));
}

int mk_add_seals(int fd, int seals)
{
	return (int)MK_SYSCALL(fcntl(fd, F_ADD_SEALS, seals));
}

int mk_get_seals(int fd)
{
	return (int)MK_SYSCALL(fcntl(fd, F_GET_SEALS));
}

int mk_ftruncate(int fd, uint64_t len)
{
	if (len > INT64_MAX)
		return -EINVAL;
	return (int)MK_SYSCALL(ftruncate(fd, (off_t)len));
}

int mk_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	uint64_t end;

	if (mk_add_u64(off, len, &end) < 0 || end > INT64_MAX)
		return -EINVAL;
	/*
	 * tmpfs/memfd fallocate gives up with EINTR on any pending signal,
	 * SA_RESTART or not (shmem_fallocate). What it allocated stays, so
	 * trying again makes progress: a process under a fast timer signal
	 * (libshm allocating from signal handlers) would fail otherwise.
	 */
	return (int)MK_RETRY_EINTR(MK_SYSCALL(fallocate(fd, mode, (off_t)off, (off_t)len)));
}

int mk_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	return (int)MK_SYSCALL(openat(dirfd, path, flags | O_CLOEXEC | O_NOFOLLOW, mode));
}

int mk_unlinkat(int dirfd, const char *path, int flags)
{
	return (int)MK_SYSCALL(unlinkat(dirfd, path, flags));
}

int mk_close(int fd)
{
	return (int)MK_SYSCALL(close(fd));
}

int mk_fstat(int fd, struct stat *st)
{
	return (int)MK_SYSCALL(fstat(fd, st));
}

int mk_fchmod(int fd, mode_t mode)
{
	return (int)MK_SYSCALL(fchmod(fd, mode));
}

int mk_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
	return (int)MK_SYSCALL(syscall(SYS_statx, dirfd, path, flags, mask, stx));
}

int mk_flock(int fd, int op)
{
	return (int)MK_SYSCALL(flock(fd, op));
}

ssize_t mk_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = MK_RETRY_EINTR(MK_SYSCALL(pread(fd, (char *)buf + done, len - done,
							    (off_t)(off + done))));
		if (r < 0)
			return r;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

ssize_t mk_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = MK_RETRY_EINTR(MK_SYSCALL(pwrite(fd, (const char *)buf + done, len - done,
							     (off_t)(off + done))));
		if (r < 0)
			return r;
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int mk_userfaultfd(int flags)
{
	int r = (int)MK_SYSCALL(syscall(SYS_userfaultfd, flags | O_CLOEXEC));
	int dev;

	if (r != -EPERM || (flags & UFFD_USER_MODE_ONLY))
		return r;
	/* Access to the device node is the other way to handle kernel-mode faults. */
	dev = mk_openat(AT_FDCWD, "/dev/userfaultfd", O_RDWR, 0);
	if (dev < 0)
		return r;
	r = (int)MK_SYSCALL(ioctl(dev, USERFAULTFD_IOC_NEW, flags | O_CLOEXEC));
	mk_close(dev);
	return r;
}

int mk_ioctl(int fd, unsigned long req, void *arg)
{
	return (int)MK_RETRY_EINTR(MK_SYSCALL(ioctl(fd, req, arg)));
}

ssize_t mk_read(int fd, void *buf, size_t len)
{
	return MK_RETRY_EINTR(MK_SYSCALL(read(fd, buf, len)));
}

ssize_t mk_write(int fd, const void *buf, size_t len)
{
	return MK_RETRY_EINTR(MK_SYSCALL(write(fd, buf, len)));
}

int mk_eventfd(unsigned initval, int flags)
{
	return (int)MK_SYSCALL(eventfd(initval, flags | EFD_CLOEXEC));
}

int mk_fadvise(int fd, uint64_t off, uint64_t len, int advice)
{
	/* posix_fadvise returns the error number; errno stays as it was. */
	return -posix_fadvise(fd, (off_t)off, (off_t)len, advice);
}

int mk_epoll_create(void)
{
	return (int)MK_SYSCALL(epoll_create1(EPOLL_CLOEXEC));
}

int mk_epoll_add(int epfd, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	return (int)MK_SYSCALL(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev));
}

void mk_sched_yield(void)
{
	int saved = errno;

	(void)sched_yield();
	errno = saved;
}

pid_t mk_getpid(void)
{
	/* The raw syscall: glibc no longer caches, but be explicit about safety. */
	return (pid_t)syscall(SYS_getpid);
}

int mk_set_thread_name(const char *name)
{
	return MK_SYSCALL(prctl(PR_SET_NAME, (unsigned long)name, 0ul, 0ul, 0ul));
}

uid_t mk_geteuid(void)
{
	return geteuid();
}

int mk_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	int saved = errno, r = pthread_sigmask(how, set, old);

	errno = saved;
	return -r;
}

int mk_nanosleep(const struct timespec *req)
{
	struct timespec left;

	for (;;) {
		/* left is written only on EINTR; the kernel has read req by then. */
		int r = (int)MK_SYSCALL(nanosleep(req, &left));

		if (r != -EINTR)
			return r;
		req = &left;
	}
}

int mk_clock_ns(clockid_t clk, uint64_t *out)
{
	struct timespec ts;
	int r = (int)MK_SYSCALL(clock_gettime(clk, &ts));

	if (r < 0)
		return r;
	*out = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return 0;
}

uint64_t mk_now_ns(void)
{
	uint64_t ns = 0;

	(void)mk_clock_ns(CLOCK_MONOTONIC, &ns);
	return ns;
}

int mk_proc_start_time(pid_t pid, uint64_t *out)
{
	char path[32], buf[1024];
	const char *p, *end;
	uint64_t v = 0;
	ssize_t n;
	int fd, field;

	if (pid <= 0)
		return -EINVAL;
	/* Hand-formatted: snprintf is not async-signal-safe. */
	{
		char digits[16];
		int nd = 0;
		unsigned u = (unsigned)pid;
		do {
			digits[nd++] = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		memcpy(path, "/proc/", 6);
		for (int i = 0; i < nd; i++)
			path[6 + i] = digits[nd - 1 - i];
		memcpy(path + 6 + nd, "/stat", 6);
	}
	fd = mk_openat(AT_FDCWD, path, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	n = mk_pread_full(fd, buf, sizeof(buf) - 1, 0);
	mk_close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and ')': fields restart after the last ')'. */
	end = buf + n;
	p = NULL;
	for (const char *q = buf; q < end; q++)
		if (*q == ')')
			p = q;
	if (!p)
		return -EIO;
	p++;
	for (field = 2; p < end && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field != 22 || p >= end || *p < '0' || *p > '9')
		return -EIO;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	*out = v;
	return 0;
}

int mk_dup_cloexec(int fd)
{
	return (int)MK_SYSCALL(fcntl(fd, F_DUPFD_CLOEXEC, 3));
}

int mk_stat(const char *path, struct stat *st)
{
	return (int)MK_SYSCALL(stat(path, st));
}

int mk_poll(struct pollfd *fds, unsigned nfds, int timeout_ms)
{
	return (int)MK_SYSCALL(poll(fds, nfds, timeout_ms));
}

ssize_t mk_sendmsg(int sock, const struct msghdr *msg, int flags)
{
	return MK_RETRY_EINTR(MK_SYSCALL(sendmsg(sock, msg, flags)));
}

ssize_t mk_recvmsg(int sock, struct msghdr *msg, int flags)
{
	return MK_RETRY_EINTR(MK_SYSCALL(recvmsg(sock, msg, flags)));
}

ssize_t mk_getdents64(int dirfd, void *buf, size_t len)
{
	return MK_SYSCALL(syscall(SYS_getdents64, dirfd, buf, len));
}

int mk_getrandom(void *buf, size_t len, unsigned flags)
{
	long r = MK_SYSCALL(syscall(SYS_getrandom, buf, len, flags));

	if (r < 0)
		return (int)r;
	return (size_t)r == len ? 0 : -EAGAIN;
}
