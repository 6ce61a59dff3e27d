/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/fsverity.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>

#include "verityfs.h"

#define VERITY_FEATURE "/sys/fs/ext4/features/verity"

static bool run(const char *cmd, char **err)
{
	int status = -1;

	return g_spawn_command_line_sync(cmd, NULL, err, &status, NULL) && status == 0;
}

bool verityfs_mount(struct verityfs *v)
{
	g_autofree char *mkfs = NULL, *mount = NULL, *err = NULL;

	*v = (struct verityfs){ 0 };
	if (!g_file_test(VERITY_FEATURE, G_FILE_TEST_EXISTS)) {
		g_test_skip("kernel without ext4 fs-verity (no " VERITY_FEATURE ")");
		return false;
	}
	v->dir = g_dir_make_tmp("memkit-verity-XXXXXX", NULL);
	g_assert_nonnull(v->dir);
	v->img = g_build_filename(v->dir, "fs.img", NULL);
	v->mnt = g_build_filename(v->dir, "mnt", NULL);
	g_assert_cmpint(g_mkdir(v->mnt, 0700), ==, 0);
	mkfs = g_strdup_printf("mkfs.ext4 -q -F -O verity -b 4096 %s 16M", v->img);
	if (!run(mkfs, &err)) {
		g_test_skip_printf("mkfs.ext4 -O verity failed: %s", err ? g_strstrip(err) : "");
		verityfs_unmount(v);
		return false;
	}
	g_clear_pointer(&err, g_free);
	mount = g_strdup_printf("mount -o loop %s %s", v->img, v->mnt);
	if (!run(mount, &err)) {
		g_test_skip_printf("cannot loop-mount an ext4 image (root and loop devices needed): %s",
				   err ? g_strstrip(err) : "");
		verityfs_unmount(v);
		return false;
	}
	v->mounted = true;
	return true;
}

void verityfs_unmount(struct verityfs *v)
{
	if (v->mounted)
		g_assert_cmpint(umount(v->mnt), ==, 0);
	if (v->mnt)
		g_rmdir(v->mnt);
	if (v->img)
		g_unlink(v->img);
	if (v->dir)
		g_rmdir(v->dir);
	g_free(v->dir);
	g_free(v->img);
	g_free(v->mnt);
	*v = (struct verityfs){ 0 };
}

int verityfs_enable(int fd)
{
	struct fsverity_enable_arg arg = { .version = 1, .hash_algorithm = FS_VERITY_HASH_ALG_SHA256,
					   .block_size = 4096 };

	return ioctl(fd, FS_IOC_ENABLE_VERITY, &arg) < 0 ? -errno : 0;
}

void verityfs_add_func(const char *path, void (*fn)(void))
{
	static int elsewhere = -1;

	if (elsewhere < 0) {
		const char *kernels = getenv("MEMKIT_MICROVM_KERNELS");

		elsewhere = kernels && *kernels && !getenv("MEMKIT_MICROVM_GUEST") &&
			    !g_file_test(VERITY_FEATURE, G_FILE_TEST_EXISTS);
		if (elsewhere)
			g_test_message("this kernel has no ext4 fs-verity: this program's fs-verity "
				       "cases run in the microVM on kernels %s (tests/microvm-*.sh)",
				       kernels);
	}
	if (!elsewhere)
		g_test_add_func(path, fn);
}
