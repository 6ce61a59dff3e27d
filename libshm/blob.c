/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sealed blobs: bytes published so that a consumer can map them knowing
 * they can never change and the file can never shrink under the mapping
 * (no SIGBUS). Two kinds of fd qualify: a memfd sealed against write,
 * shrink and grow, and a regular file with fs-verity enabled.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/macro.h"
#include "common/sys.h"
#include "shm.h"

#define NEEDED_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

MK_EXPORT int shma_blob_publish(const char *name, const void *data, size_t len)
{
	int fd, r;

	if (!data || !len)
		return -EINVAL;
	fd = mk_memfd_create(name ? name : "memkit-blob", MFD_ALLOW_SEALING);
	if (fd < 0)
		return fd;
	r = mk_fallocate(fd, 0, 0, len);
	if (r == 0)
		r = (int)mk_pwrite_full(fd, data, len, 0);
	if (r >= 0)
		r = mk_add_seals(fd, NEEDED_SEALS | F_SEAL_SEAL);
	if (r < 0) {
		mk_close(fd);
		return r;
	}
	return fd;
}

MK_EXPORT int shma_blob_check(int fd, uint64_t *size)
{
	struct statx stx;
	int seals, r;

	if (fd < 0 || !size)
		return -EINVAL;
	r = mk_statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &stx);
	if (r < 0)
		return r;
	if (!S_ISREG(stx.stx_mode) || !stx.stx_size)
		return -EINVAL;
	seals = mk_get_seals(fd);
	if (seals >= 0 && (seals & NEEDED_SEALS) == NEEDED_SEALS) {
		/* Re-read the size now that it can no longer change. */
		r = mk_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &stx);
		if (r < 0)
			return r;
		*size = stx.stx_size;
		return 0;
	}
	if ((stx.stx_attributes_mask & STATX_ATTR_VERITY) &&
	    (stx.stx_attributes & STATX_ATTR_VERITY)) {
		*size = stx.stx_size;
		return 0;
	}
	return -EPERM;
}

MK_EXPORT int shma_blob_map(int fd, const void **addr, size_t *len)
{
	uint64_t size;
	void *m;
	int r;

	if (!addr || !len)
		return -EINVAL;
	r = shma_blob_check(fd, &size);
	if (r < 0)
		return r;
	if (size > SIZE_MAX)
		return -EFBIG;
	r = mk_mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0, &m);
	if (r < 0)
		return r;
	*addr = m;
	*len = (size_t)size;
	return 0;
}

MK_EXPORT int shma_blob_unmap(const void *addr, size_t len)
{
	if (!addr || !len)
		return -EINVAL;
	return mk_munmap((void *)addr, len);
}
