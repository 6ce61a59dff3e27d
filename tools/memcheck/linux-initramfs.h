/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: the guest's initramfs, built at run time
 * into memory as a cpio "newc" archive: a static busybox, the kernel's
 * own modules the check needs (with their dependencies, in load order, as
 * modprobe --show-depends lists them; decompressed), /init and files.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lx_kernel {
	char release[128];
	char image[4096];        /* vmlinuz */
	char base[4096];         /* the directory holding lib/modules/RELEASE */
};

/*
 * Pick a kernel from dir (default /var/cache/memkit/kernels or
 * $MEMKIT_KERNEL_DIR): sel is NULL (the newest), a series ("6.1"), a full
 * release, or a directory holding vmlinuz and lib/modules/RELEASE.
 * 0 or -ENOENT (why says which kernels there are).
 */
int lx_kernel_find(const char *sel, struct lx_kernel *k, char *why, size_t why_len);

/* Run argv (searched in PATH) and capture its stdout, binary-safe (also NUL-terminated; g_free). */
bool lx_run_capture(const char *const *argv, char **out, size_t *out_len, char *why, size_t why_len);
/* Remove dir and everything under it (symbolic links are removed, not followed). */
void lx_rm_tree(const char *dir);

struct lx_cpio {
	uint8_t *buf;
	size_t len, cap;
	unsigned ino;
};

void lx_cpio_init(struct lx_cpio *c);
void lx_cpio_free(struct lx_cpio *c);
int lx_cpio_dir(struct lx_cpio *c, const char *name);
int lx_cpio_file(struct lx_cpio *c, const char *name, unsigned mode, const void *data, size_t len);
int lx_cpio_symlink(struct lx_cpio *c, const char *name, const char *target);
int lx_cpio_chardev(struct lx_cpio *c, const char *name, unsigned major, unsigned minor);
int lx_cpio_finish(struct lx_cpio *c);

/*
 * The standard guest: busybox at /bin/busybox, /dev/console, the modules
 * of mods (NULL-terminated names) for kernel k in /lib/mk with their load
 * order in /lib/mk/order (built-in ones are skipped). 0 or -errno (why).
 */
int lx_initramfs_base(struct lx_cpio *c, const struct lx_kernel *k, const char *const *mods,
		      unsigned *nmods, char *why, size_t why_len);
