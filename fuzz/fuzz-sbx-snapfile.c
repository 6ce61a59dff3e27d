/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: sbx_snapshot_load() over snapshot files of versions 1
 * and 2 (in a memfd); version 3 is fuzz-sbx-snapv3's.
 *
 * Input: [mode byte][rest]. An even mode feeds rest as the file's bytes,
 * unchanged. Random bytes almost never carry a right 64-bit checksum, so an
 * odd mode builds the file from rest instead and mends what the mode bits
 * ask for, letting the mutations reach the checks behind the checksums:
 *
 *   rest = header bytes 0..47 | [u16 LE offset, u8 value if MEND_RESERVED]
 *          | data bytes
 *   0x02 magic made right        0x04 data size := data length up to a page
 *   0x08 data checksum made right   0x10 header checksum made right (the way
 *   its version field says)      0x20 one reserved byte set (offset, value)
 *   0x40 the file stops at the end of the given data (no padding to the size)
 *   0x80 one trailing byte after the data
 *
 * Oracle, whatever the mode: an independent reading of the format in
 * sbx_snapshot_take(3) (valid_file() below) says whether the file is valid;
 * load must succeed exactly then, with the file's data, and otherwise fail
 * with a documented error.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/sys.h"
#include "sandboxP.h"         /* sbx_hash64(): libsandbox's checksum */
#include "fuzz/seeds.h"

#define HDR 4096u
#define MEND_MAGIC    0x02
#define MEND_SIZE     0x04
#define MEND_DATASUM  0x08
#define MEND_HDRSUM   0x10
#define MEND_RESERVED 0x20
#define NO_PAD        0x40
#define TRAILING      0x80
#define MAXFILE       (HDR + 16 * 4096u)

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
const char *mk_fuzz_summary(void);
int mk_fuzz_reached(void);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long n_loaded, n_structured, n_loaded_built;

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* Header checksum as its version defines it (v1: bytes 0..39; else all, field as zero). */
static uint64_t header_sum(const uint8_t *hdr)
{
	uint8_t copy[HDR];

	if (le32(hdr + 8) == 1)
		return sbx_hash64(hdr, 40, 0);
	memcpy(copy, hdr, HDR);
	memset(copy + 40, 0, 8);
	return sbx_hash64(copy, HDR, 0);
}

/* The format, read from the man page, not from snapfile.c. */
static bool valid_file(const uint8_t *f, size_t len)
{
	uint64_t size;
	uint32_t version;

	if (len < HDR || memcmp(f, "MKSBXSNP", 8))
		return false;
	version = le32(f + 8);
	if ((version != 1 && version != 2) || le64(f + 40) != header_sum(f))
		return false;
	size = le64(f + 24);
	if (le32(f + 12) != HDR || le64(f + 16) != HDR || !size || size % (uint64_t)getpagesize())
		return false;
	for (size_t i = 48; i < HDR; i++)
		if (f[i])
			return false;
	if (size != len - HDR)
		return false;
	return le64(f + 32) == sbx_hash64(f + HDR, (size_t)size, 0);
}

/* Build the file of an odd-mode input; returns its length. */
static size_t build(unsigned mode, const uint8_t *in, size_t n, uint8_t *f)
{
	size_t hlen = n < 48 ? n : 48, dlen, padded, len;
	const uint8_t *d;

	memset(f, 0, HDR);
	memcpy(f, in, hlen);
	in += hlen;
	n -= hlen;
	if ((mode & MEND_RESERVED) && n >= 3) {
		f[48 + (in[0] | in[1] << 8) % (HDR - 48)] = in[2];
		in += 3;
		n -= 3;
	}
	d = in;
	dlen = n < MAXFILE - HDR - 4096 ? n : MAXFILE - HDR - 4096;
	padded = (dlen + 4095) / 4096 * 4096;
	memcpy(f + HDR, d, dlen);
	memset(f + HDR + dlen, 0, padded - dlen);
	if (mode & MEND_MAGIC)
		memcpy(f, "MKSBXSNP", 8);
	if (mode & MEND_SIZE)
		put64(f + 24, padded);
	len = HDR + ((mode & NO_PAD) ? dlen : padded);
	if (mode & MEND_DATASUM)
		put64(f + 32, sbx_hash64(f + HDR, len - HDR, 0));
	if (mode & MEND_HDRSUM)
		put64(f + 40, header_sum(f));
	if (mode & TRAILING)
		f[len++] = 0;
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t file[MAXFILE + 1];
	struct sbx_snapshot *s = NULL;
	const uint8_t *f;
	size_t len;
	bool valid;
	int fd, r;

	if (!size)
		return 0;
	len = mk_fuzz_file(data, size, build, file, &f, &n_structured);
	valid = valid_file(f, len);
	fd = mk_memfd_create("fuzz-snapfile", 0);
	if (fd < 0)
		abort();
	if (mk_pwrite_full(fd, f, len, 0) != (ssize_t)len)
		abort();
	r = sbx_snapshot_load(fd, &s);
	close(fd);
	if (r == 0) {
		uint64_t n = sbx_snapshot_size(s);
		if (!valid || len != HDR + n || memcmp(sbx_snapshot_data(s), f + HDR, n))
			abort();
		sbx_snapshot_unref(s);
		n_loaded++;
		n_loaded_built += f == file;
		return 0;
	}
	if (s)
		abort();
	if (r == -ENOMEM)
		return 0;
	if (valid || (r != -EBADMSG && r != -ENODATA && r != -EPROTONOSUPPORT))
		abort();
	return 0;
}

/*
 * Seeds: valid version-2 files as releases before 0.3 saved them (raw
 * mode, one and two pages; version 3 is fuzz-sbx-snapv3's), and
 * structured inputs with every mend bit for versions 2 and 1.
 */
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	uint64_t pages = i + 1;
	uint8_t *f = buf + 1;

	if (i >= 4 || cap < 1 + 4096 * (pages + 1))
		return 0;
	if (i >= 2) {
		/* mode, header fields (the mends fill magic, size and sums), data */
		buf[0] = 1 | MEND_MAGIC | MEND_SIZE | MEND_DATASUM | MEND_HDRSUM;
		memset(buf + 1, 0, 48);
		buf[1 + 8] = (uint8_t)(i == 2 ? 2 : 1);
		buf[1 + 13] = HDR >> 8;         /* header size 4096, LE */
		buf[1 + 17] = HDR >> 8;         /* data offset 4096, LE */
		memset(buf + 49, 0x5a, 100);
		return 149;
	}
	buf[0] = 0;
	memset(f, 0, HDR + pages * 4096);
	memcpy(f, "MKSBXSNP", 8);
	f[8] = 2;
	f[13] = HDR >> 8;
	f[17] = HDR >> 8;
	put64(f + 24, pages * 4096);
	memset(f + HDR + 100, 0x30 + (int)i, 3000);
	put64(f + 32, sbx_hash64(f + HDR, pages * 4096, 0));
	put64(f + 40, header_sum(f));
	return 1 + HDR + pages * 4096;
}

/* For the make check driver's line: how many inputs reached a loaded snapshot. */
const char *mk_fuzz_summary(void)
{
	static char msg[128];

	snprintf(msg, sizeof(msg), "%lu loaded, %lu built by structure, %lu of them loaded", n_loaded,
		 n_structured, n_loaded_built);
	return msg;
}

/* make check fails if no generated input got that far. */
int mk_fuzz_reached(void)
{
	return n_loaded_built > 0;
}
