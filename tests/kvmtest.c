/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <stdlib.h>
#include <sys/utsname.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "kvmtest.h"

bool kvmtest_native(const char **why)
{
	int fd = mk_kvm_open(), vm;

	if (fd < 0) {
		*why = mk_kvm_strerror(fd);
		return false;
	}
	vm = mk_kvm_create_vm(fd);
	mk_close(fd);
	if (vm < 0) {
		*why = "KVM_CREATE_VM failed";
		return false;
	}
	mk_close(vm);
	return true;
}

bool kvmtest_available(void)
{
	static char release[sizeof(((struct utsname *)0)->release)];
	const char *why;

	if (!kvmtest_native(&why)) {
		g_autofree char *msg = g_strdup_printf("KVM unavailable: %s", why);
		g_test_skip(msg);
		return false;
	}
	if (!*release) {
		struct utsname u;

		g_strlcpy(release, uname(&u) == 0 ? u.release : "unknown", sizeof(release));
	}
	g_test_message("kernel %s", release);
	return true;
}

/* Does the microVM run this program's cases that need what is missing here? */
static bool microvm_runs_them(void)
{
	const char *kernels = getenv("MEMKIT_MICROVM_KERNELS");

	return kernels && *kernels && !getenv("MEMKIT_MICROVM_GUEST");
}

bool kvmtest_elsewhere(void)
{
	static int elsewhere = -1;
	const char *why;

	if (elsewhere < 0) {
		elsewhere = microvm_runs_them() && !kvmtest_native(&why);
		if (elsewhere)
			g_test_message("KVM unavailable here (%s): this program's KVM cases run "
				       "in the microVM on kernels %s (tests/microvm-*.sh)", why,
				       getenv("MEMKIT_MICROVM_KERNELS"));
	}
	return elsewhere;
}

void kvmtest_add_func(const char *path, void (*fn)(void))
{
	if (!kvmtest_elsewhere())
		g_test_add_func(path, fn);
}
