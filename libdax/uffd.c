/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * userfaultfd primitives for the window: open one that may serve KVM's
 * kernel-mode faults, register a range for missing pages, wake waiters,
 * install the zero page. The fault service (service.c) and the window
 * mapper (mapper-kvm.c) build on these.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>

#include "common/sys.h"
#include "daxP.h"

int dax_uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd, r;

	/*
	 * Not UFFD_USER_MODE_ONLY: KVM's accesses are kernel-mode gup, which
	 * a user-mode-only userfaultfd answers with SIGBUS (KVM_RUN: EFAULT).
	 * Allowed with CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or
	 * access to /dev/userfaultfd (mk_userfaultfd tries both ways).
	 */
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

int dax_uffd_register(int uffd, void *addr, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int r = mk_ioctl(uffd, UFFDIO_REGISTER, &reg);

	if (r < 0)
		return r;
	/* Anonymous memory offers UFFDIO_ZEROPAGE; a kernel that did not would leave holes stuck. */
	return (reg.ioctls & (1ull << _UFFDIO_ZEROPAGE)) ? 0 : -ENOTSUP;
}

void dax_uffd_wake(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_range range = { .start = start, .len = len };

	/* Fails only for a range outside the address space: nothing to wake then. */
	(void)mk_ioctl(uffd, UFFDIO_WAKE, &range);
}

/*
 * The zero page at page, without waking its waiters: the caller reports
 * the event first, then wakes (so the report comes before the guest
 * goes on). EEXIST, ENOENT, EAGAIN: nothing installed, the wake that
 * follows lets the access retry (see above).
 */
void dax_uffd_zero(int uffd, uint64_t page, uint64_t len)
{
	struct uffdio_zeropage z = {
		.range = { .start = page, .len = len }, .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};

	(void)mk_ioctl(uffd, UFFDIO_ZEROPAGE, &z);
}
