/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: boot a stock Linux kernel in a small VMM of
 * memcheck's own (linux-vm.c, boot.c, serial.c, pci.c) with a busybox
 * initramfs built here at run time, and let its init script report over
 * the serial console with lines starting "MC: ".
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sys.h"
#include "tools/memcheck/boot.h"
#include "tools/memcheck/check.h"
#include "tools/memcheck/linux-initramfs.h"
#include "tools/memcheck/linux-vm.h"

#define RAM_SIZE (512ull << 20)

static const char guest_init[] =
	"#!/bin/sh\n"
	"/bin/busybox --install -s /bin\n"
	"export PATH=/bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sys /sys\n"
	"mount -t devtmpfs dev /dev\n"
	"say() { echo \"MC: $*\"; }\n"
	"say release $(uname -r)\n"
	"for m in $(cat /lib/mk/order); do insmod /lib/mk/$m || say error insmod $m; done\n"
	"say end\n"
	"reboot -f\n";

struct run_state {
	const struct mc_opts *o;
	bool ended;
	char release[128];
	char error[256];
};

static bool on_line(void *data, const char *line)
{
	struct run_state *st = data;

	if (strncmp(line, "MC: ", 4))
		return false;
	line += 4;
	mc_note(st->o, "linux: guest: %s", line);
	if (!strncmp(line, "release ", 8))
		g_strlcpy(st->release, line + 8, sizeof(st->release));
	else if (!strncmp(line, "error ", 6) && !st->error[0])
		g_strlcpy(st->error, line + 6, sizeof(st->error));
	else if (!strcmp(line, "end"))
		st->ended = true;
	return st->ended;
}

void mc_check_linux(const struct mc_opts *o, struct mc_result *res)
{
	static const char *const mods[] = { "virtio_pci", "virtiofs", NULL };
	const char *sel = g_getenv("MEMCHECK_KERNEL");
	g_autofree char *bz = NULL;
	gsize bz_len = 0;
	struct lx_kernel k;
	struct lx_cpio cpio;
	struct lx_boot boot;
	struct lx_vm vm;
	struct run_state st = { .o = o };
	char why[512];
	unsigned nmods = 0;
	enum lx_run_result rr;
	uint64_t t0;
	int r;

	lx_cpio_init(&cpio);
	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = vm.vcpu_fd = -1;
	if (lx_kernel_find(sel, &k, why, sizeof(why)) < 0) {
		mc_skip(res, "%s", why);
		goto out;
	}
	if (!g_file_get_contents(k.image, &bz, &bz_len, NULL)) {
		mc_fail(res, "cannot read %s", k.image);
		goto out;
	}
	r = lx_initramfs_base(&cpio, &k, mods, &nmods, why, sizeof(why));
	if (r >= 0)
		r = lx_cpio_file(&cpio, "init", 0755, guest_init, sizeof(guest_init) - 1);
	if (r >= 0)
		r = lx_cpio_finish(&cpio);
	if (r < 0) {
		mc_fail(res, "initramfs for %s: %s", k.release, why);
		goto out;
	}
	mc_note(o, "linux: kernel %s, initramfs %zu bytes with %u modules", k.release, cpio.len, nmods);
	r = lx_vm_open(&vm, o->kvm_fd, RAM_SIZE);
	if (r < 0) {
		mc_fail(res, "VMM: %s", vm.why);
		goto out;
	}
	vm.echo = o->verbose && g_getenv("MEMCHECK_CONSOLE");
	vm.line_fn = on_line;
	vm.line_data = &st;
	r = lx_boot_load(vm.ram, vm.ram_size, (const uint8_t *)bz, bz_len, cpio.buf, cpio.len,
			 "console=ttyS0 earlyprintk=serial,ttyS0 nokaslr acpi=off pci=conf1 reboot=t panic=-1 "
			 "tsc=reliable no_timer_check i8042.noaux i8042.nokbd i8042.nopnp rdinit=/init",
			 &boot);
	if (r < 0) {
		mc_fail(res, "boot %s: %s", k.image, boot.why);
		goto out;
	}
	r = lx_boot_vcpu(o->kvm_fd, vm.vcpu_fd, why, sizeof(why));
	if (r < 0) {
		mc_fail(res, "vCPU: %s", why);
		goto out;
	}
	t0 = mk_now_ns();
	rr = lx_vm_run(&vm, o->timeout_ns * 6);
	mc_note(o, "linux: run ended after %.1f s (%d): %s", (double)(mk_now_ns() - t0) / 1e9, rr, vm.why);
	if (!st.ended) {
		mc_fail(res, "%s %s; console: %s", k.release,
			rr == LX_RUN_TIMEOUT ? "timed out" : vm.why, lx_vm_console_tail(&vm, 160));
		goto out;
	}
	mc_metric(res, "boot_s", (double)(mk_now_ns() - t0) / 1e9, "s");
	mc_pass(res, "kernel %s booted", st.release);
out:
	if (vm.console)
		lx_vm_close(&vm);
	lx_cpio_free(&cpio);
}
