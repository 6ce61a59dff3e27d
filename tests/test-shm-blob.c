/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libshm sealed blobs: real sealed memfds, real unsealed ones, an ordinary
 * file, and a real fs-verity file on a loop-mounted ext4 (skipped with the
 * reason when that cannot be set up).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "shm.h"
#include "tests/verityfs.h"

static const char text[] = "immutable bytes, sealed before anyone maps them";

static void test_publish_map(void)
{
	const void *addr;
	uint64_t size;
	size_t len;
	int fd = shma_blob_publish("test-blob", text, sizeof(text));
	int seals;

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(fcntl(fd, F_GETFD), ==, FD_CLOEXEC);
	seals = fcntl(fd, F_GET_SEALS);
	g_assert_cmpint(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), ==,
			F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	g_assert_cmpint(shma_blob_check(fd, &size), ==, 0);
	g_assert_cmpuint(size, ==, sizeof(text));
	g_assert_cmpint(shma_blob_map(fd, &addr, &len), ==, 0);
	g_assert_cmpuint(len, ==, sizeof(text));
	g_assert_cmpmem(addr, len, text, sizeof(text));
	/* Nobody can change it: not by write, not by truncation. */
	g_assert_cmpint(pwrite(fd, "X", 1, 0), ==, -1);
	g_assert_cmpint(errno, ==, EPERM);
	g_assert_cmpint(ftruncate(fd, 1), ==, -1);
	g_assert_cmpint(ftruncate(fd, 1 << 20), ==, -1);
	g_assert_cmpmem(addr, len, text, sizeof(text));
	g_assert_cmpint(shma_blob_unmap(addr, len), ==, 0);
	g_assert_cmpint(shma_blob_unmap(NULL, len), ==, -EINVAL);
	close(fd);
}

static void test_publish_errors(void)
{
	g_assert_cmpint(shma_blob_publish("x", NULL, 5), ==, -EINVAL);
	g_assert_cmpint(shma_blob_publish("x", text, 0), ==, -EINVAL);
}

static void test_refuse_mutable(void)
{
	const void *addr = NULL;
	uint64_t size;
	size_t len;
	int fd, p[2];

	/* Unsealed memfd. */
	fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	g_assert_cmpint(write(fd, text, sizeof(text)), ==, sizeof(text));
	g_assert_cmpint(shma_blob_check(fd, &size), ==, -EPERM);
	g_assert_cmpint(shma_blob_map(fd, &addr, &len), ==, -EPERM);
	/* Sealed against write but still resizable (could shrink: SIGBUS). */
	g_assert_cmpint(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW), ==, 0);
	g_assert_cmpint(shma_blob_check(fd, &size), ==, -EPERM);
	close(fd);
	/* Size sealed but writable. */
	fd = memfd_create("writable", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	g_assert_cmpint(write(fd, text, sizeof(text)), ==, sizeof(text));
	g_assert_cmpint(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), ==, 0);
	g_assert_cmpint(shma_blob_check(fd, &size), ==, -EPERM);
	close(fd);
	/* Empty, fully sealed: nothing to map. */
	fd = memfd_create("empty", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	g_assert_cmpint(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), ==, 0);
	g_assert_cmpint(shma_blob_check(fd, &size), ==, -EINVAL);
	close(fd);
	/* An ordinary file. */
	{
		g_autofree char *path = NULL;
		fd = g_file_open_tmp("memkit-blob-XXXXXX", &path, NULL);
		g_assert_cmpint(fd, >=, 0);
		g_assert_cmpint(write(fd, text, sizeof(text)), ==, sizeof(text));
		g_assert_cmpint(shma_blob_check(fd, &size), ==, -EPERM);
		close(fd);
		g_unlink(path);
	}
	/* Not a regular file; not an fd. */
	g_assert_cmpint(pipe(p), ==, 0);
	g_assert_cmpint(shma_blob_check(p[0], &size), ==, -EINVAL);
	close(p[0]);
	close(p[1]);
	g_assert_cmpint(shma_blob_check(-1, &size), ==, -EINVAL);
	g_assert_cmpint(shma_blob_check(0, NULL), ==, -EINVAL);
	g_assert_cmpint(shma_blob_map(-1, NULL, &len), ==, -EINVAL);
	g_assert_null(addr);
}

/* A real fs-verity file: ext4 with the verity feature on a loop device. */
static void test_verity(void)
{
	struct verityfs v;
	g_autofree char *file = NULL;
	const void *addr;
	uint64_t size;
	size_t len;
	int fd;

	if (!verityfs_mount(&v))
		return;
	file = g_build_filename(v.mnt, "blob", NULL);
	g_assert_true(g_file_set_contents(file, text, sizeof(text), NULL));
	fd = open(file, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(shma_blob_check(fd, &size), ==, -EPERM);   /* not yet */
	g_assert_cmpint(verityfs_enable(fd), ==, 0);
	g_assert_cmpint(shma_blob_check(fd, &size), ==, 0);
	g_assert_cmpuint(size, ==, sizeof(text));
	g_assert_cmpint(shma_blob_map(fd, &addr, &len), ==, 0);
	g_assert_cmpmem(addr, len, text, sizeof(text));
	shma_blob_unmap(addr, len);
	close(fd);
	verityfs_unmount(&v);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/shm/blob/publish-map", test_publish_map);
	g_test_add_func("/shm/blob/publish-errors", test_publish_errors);
	g_test_add_func("/shm/blob/refuse-mutable", test_refuse_mutable);
	verityfs_add_func("/shm/blob/verity", test_verity);
	return g_test_run();
}
