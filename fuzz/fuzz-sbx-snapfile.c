/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: sbx_snapshot_load() over arbitrary file bytes (a memfd).
 * Whatever the bytes, load either refuses them or yields a snapshot whose
 * saved form is the input's header and data again.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/sys.h"
#include "sandbox.h"

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_snapshot *s = NULL;
	int fd = mk_memfd_create("fuzz-snapfile", 0);

	if (fd < 0)
		abort();
	if (mk_pwrite_full(fd, data, size, 0) != (ssize_t)size)
		abort();
	if (sbx_snapshot_load(fd, &s) == 0) {
		uint64_t n = sbx_snapshot_size(s);
		if (size < 4096 + n || memcmp(sbx_snapshot_data(s), data + 4096, n))
			abort();
		sbx_snapshot_free(s);
	}
	close(fd);
	return 0;
}

/* A valid one-page and a valid two-page snapshot file. */
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	struct sbx_mem *m;
	struct sbx_snapshot *s;
	uint64_t pages = i + 1;
	ssize_t n;
	int fd;

	if (i >= 2 || cap < 4096 * (pages + 1))
		return 0;
	if (sbx_mem_new(pages * 4096, &m) < 0)
		abort();
	sbx_mem_fill(m, 100, (uint8_t)(0x30 + i), 3000);
	if (sbx_snapshot_take(m, &s) < 0)
		abort();
	fd = mk_memfd_create("fuzz-seed", 0);
	if (fd < 0 || sbx_snapshot_save(s, fd) < 0)
		abort();
	n = mk_pread_full(fd, buf, cap, 0);
	close(fd);
	sbx_snapshot_free(s);
	sbx_mem_free(m);
	return n > 0 ? (size_t)n : 0;
}
