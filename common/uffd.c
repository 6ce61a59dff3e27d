/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * userfaultfd plumbing (common/uffd.h).
 *
 * UFFDIO_COPY and UFFDIO_ZEROPAGE stop at the first page already present:
 * with pages installed before it they return -EAGAIN and the bytes done in
 * the struct, otherwise -EEXIST. Both mean "skip what is there, go on":
 * such a page was installed by a racing service of the same bytes, or was
 * written since (and must keep what was written).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>

#include "macro.h"
#include "size.h"
#include "sys.h"
#include "uffd.h"

int mk_uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd, r;

	fd = mk_userfaultfd(O_NONBLOCK);
	if (fd < 0)
		return fd;
	r = mk_ioctl(fd, UFFDIO_API, &api);
	if (r < 0) {
		mk_close(fd);
		return r;
	}
	return fd;
}

int mk_uffd_register(int uffd, void *addr, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	const uint64_t need = (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE);
	int r = mk_ioctl(uffd, UFFDIO_REGISTER, &reg);

	if (r < 0)
		return r;
	/* Anonymous memory offers both; without them faults would stay blocked. */
	return (reg.ioctls & need) == need ? 0 : -ENOTSUP;
}

void mk_uffd_wake(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_range range = { .start = start, .len = len };

	/* Fails only for a range outside the address space: nothing to wake then. */
	(void)mk_ioctl(uffd, UFFDIO_WAKE, &range);
}

/*
 * One step of an install loop after an ioctl returned r with done_now
 * bytes (the struct's copy/zeropage field): how far to advance *done, or
 * r when the loop must stop. *again counts -EAGAIN without progress (the
 * mm changing under a fork or mremap: retried a bounded number of times).
 */
static int install_step(int r, int64_t done_now, uint64_t *done, unsigned *again)
{
	if (done_now > 0) {             /* partial, then stopped at a present page */
		*done += (uint64_t)done_now;
		return 0;
	}
	if (r == -EEXIST) {             /* the first page is present: leave it */
		*done += mk_page_size();
		return 0;
	}
	if (r == -EAGAIN && ++*again < 1000)
		return 0;
	return r;
}

int mk_uffd_copy(int uffd, uint64_t dst, const void *src, uint64_t len)
{
	uint64_t done = 0;
	unsigned again = 0;

	while (done < len) {
		struct uffdio_copy c = {
			.dst = dst + done, .src = (uintptr_t)src + done, .len = len - done,
			.mode = UFFDIO_COPY_MODE_DONTWAKE,
		};
		int r = mk_ioctl(uffd, UFFDIO_COPY, &c);

		if (r == 0)
			return 0;
		r = install_step(r, c.copy, &done, &again);
		if (r < 0)
			return r;
	}
	return 0;
}

int mk_uffd_zero(int uffd, uint64_t dst, uint64_t len)
{
	uint64_t done = 0;
	unsigned again = 0;

	while (done < len) {
		struct uffdio_zeropage z = {
			.range = { .start = dst + done, .len = len - done },
			.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
		};
		int r = mk_ioctl(uffd, UFFDIO_ZEROPAGE, &z);

		if (r == 0)
			return 0;
		r = install_step(r, z.zeropage, &done, &again);
		if (r < 0)
			return r;
	}
	return 0;
}

int mk_uffd_read_faults(int uffd, uint64_t *addr, unsigned max)
{
	struct uffd_msg msg[16];
	ssize_t got;
	int n = 0;

	got = mk_read(uffd, msg, MK_MIN(max, 16u) * sizeof(msg[0]));
	if (got < 0)
		return (int)got;
	for (size_t i = 0; i < (size_t)got / sizeof(msg[0]); i++) {
		/* Only page faults: no UFFD_FEATURE_EVENT_* is ever asked for. */
		if (msg[i].event == UFFD_EVENT_PAGEFAULT)
			addr[n++] = msg[i].arg.pagefault.address;
	}
	return n;
}

static void *service_thread(void *p)
{
	struct mk_uffd_thread *t = p;
	struct pollfd pfd[2] = { { t->fd, POLLIN, 0 }, { t->stop_fd, POLLIN, 0 } };

	/* Named from inside: one prctl (pthread_setname_np on another thread
	 * goes through /proc and may change the caller's errno). */
	(void)mk_set_thread_name(t->name);
	for (;;) {
		int r = mk_poll(pfd, 2, -1);

		if (r < 0)
			continue;       /* EINTR */
		if (pfd[1].revents)
			return NULL;
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			return NULL;
		if (pfd[0].revents)
			t->serve(t->data);
	}
}

int mk_uffd_thread_start(struct mk_uffd_thread *t, int fd, void (*serve)(void *data), void *data,
			 const char *name)
{
	sigset_t all, old;
	int stop, r;

	stop = mk_eventfd(0, EFD_NONBLOCK);
	if (stop < 0) {
		t->stop_fd = -1;
		return stop;
	}
	t->fd = fd;
	t->serve = serve;
	t->data = data;
	t->name = name;
	t->stop_fd = stop;
	/*
	 * The thread blocks every signal (it inherits the mask), so the
	 * process's signals keep going to the caller's threads: a VMM that
	 * kicks vCPUs out of KVM_RUN with a process-directed timer signal
	 * must not have it land here.
	 */
	sigfillset(&all);
	(void)mk_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t->thread, NULL, service_thread, t);
	(void)mk_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		mk_close(stop);
		t->stop_fd = -1;
		return -EAGAIN;
	}
	return 0;
}

void mk_uffd_thread_stop(struct mk_uffd_thread *t)
{
	uint64_t one = 1;

	if (t->stop_fd < 0)
		return;
	(void)mk_write(t->stop_fd, &one, sizeof(one));
	pthread_join(t->thread, NULL);
	mk_close(t->stop_fd);
	t->stop_fd = -1;
}
