/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A real fs-verity file system for tests: a fresh ext4 image made with
 * "-O verity", loop-mounted on a temporary directory. Needs root, loop
 * devices and a kernel with ext4 fs-verity; where this kernel lacks it the
 * cases run in memkit's microVM (tests/microvm-batch.sh) instead.
 */
#pragma once

#include <stdbool.h>

struct verityfs {
	char *dir;      /* temporary directory holding the image and the mount point */
	char *img;
	char *mnt;      /* the mounted ext4: create files here */
	bool mounted;
};

/* Make and mount it; false with g_test_skip(reason) where this machine cannot. */
bool verityfs_mount(struct verityfs *v);
/* Unmount and remove everything (files under mnt go with the image). */
void verityfs_unmount(struct verityfs *v);
/* Turn on fs-verity for an open read-only fd of a file in it: 0 or -errno. */
int verityfs_enable(int fd);

/*
 * g_test_add_func() for a case that needs it: where this kernel lacks ext4
 * fs-verity and the microVM is configured ($MEMKIT_MICROVM_KERNELS), the
 * case runs there only, and this says so once.
 */
void verityfs_add_func(const char *path, void (*fn)(void));
