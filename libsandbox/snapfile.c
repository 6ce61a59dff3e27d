/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Snapshot files: a 4 KiB header then the bytes, page aligned.
 *
 *   0  magic "MKSBXSNP"      24 data size (u64 LE, page multiple)
 *   8  version (u32 LE) = 2  32 data checksum (u64 LE)
 *  12  header size (u32) 4096 40 header checksum (u64 LE)
 *  16  data offset (u64) 4096 48..4095 zero
 *
 * Version 2 (written since the reserved bytes were found unprotected): the
 * header checksum covers the whole 4096-byte header, its own field read as
 * zero, so bytes 48..4095 can carry fields later without a silent
 * corruption going unnoticed. Version 1 (still read) covers bytes 0..39
 * only. Both must have bytes 48..4095 zero and the file must end right after
 * the data (save truncates it there). Later versions are expected to keep
 * magic, version and the whole-header checksum where they are, so an
 * unknown version is told from a damaged header (EPROTONOSUPPORT vs
 * EBADMSG).
 *
 * The checksum (a 4-lane 64-bit multiply-rotate hash, xxh64's round) finds
 * corruption and truncation; it is not a signature against an attacker who
 * can rewrite the file.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

#define SNAPF_MAGIC   "MKSBXSNP"
#define SNAPF_VERSION 2u
#define SNAPF_RESERVED 48u     /* bytes 48..4095 are zero */
#define SNAPF_HDR     4096u

static const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full,
		      P3 = 0x165667B19E3779F9ull, P4 = 0x85EBCA77C2B2AE63ull;

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t round64(uint64_t acc, uint64_t v)
{
	return rotl(acc + v * P2, 31) * P1;
}
static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

uint64_t sbx_hash64(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t a = seed + P1 + P2, b = seed + P2, c = seed, d = seed - P1, h;
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		a = round64(a, rd64(p + i));
		b = round64(b, rd64(p + i + 8));
		c = round64(c, rd64(p + i + 16));
		d = round64(d, rd64(p + i + 24));
	}
	h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + (uint64_t)len;
	for (; i + 8 <= len; i += 8)
		h = rotl(h ^ round64(0, rd64(p + i)), 27) * P1 + P4;
	for (; i < len; i++)
		h = rotl(h ^ (p[i] * P3), 11) * P1;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	return h ^ (h >> 32);
}

static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }

/* Header checksum of a version-2 header whose checksum field (40..47) is zero. */
static uint64_t hdr_sum_v2(const uint8_t *hdr)
{
	return sbx_hash64(hdr, SNAPF_HDR, 0);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

MK_EXPORT int sbx_snapshot_save(const struct sbx_snapshot *s, int fd)
{
	uint8_t hdr[SNAPF_HDR] = { 0 };
	ssize_t n;
	int r;

	if (!s || fd < 0)
		return -EINVAL;
	memcpy(hdr, SNAPF_MAGIC, 8);
	put32(hdr + 8, SNAPF_VERSION);
	put32(hdr + 12, SNAPF_HDR);
	put64(hdr + 16, SNAPF_HDR);
	put64(hdr + 24, s->size);
	put64(hdr + 32, sbx_hash64(s->ro, s->size, 0));
	put64(hdr + 40, hdr_sum_v2(hdr));
	n = mk_pwrite_full(fd, hdr, sizeof(hdr), 0);
	if (n < 0)
		return (int)n;
	n = mk_pwrite_full(fd, s->ro, s->size, SNAPF_HDR);
	if (n < 0)
		return (int)n;
	r = mk_ftruncate(fd, SNAPF_HDR + s->size);
	/* Not a regular file (a pipe...): nothing to truncate. */
	return r == -EINVAL ? 0 : r;
}

MK_EXPORT int sbx_snapshot_load(int fd, struct sbx_snapshot **out)
{
	uint8_t hdr[SNAPF_HDR];
	struct stat st;
	uint64_t size, end, sum;
	uint32_t version;
	uint8_t *rw;
	ssize_t n;
	int mfd, r;

	if (fd < 0 || !out)
		return -EINVAL;
	n = mk_pread_full(fd, hdr, sizeof(hdr), 0);
	if (n < 0)
		return (int)n;
	if (n < SNAPF_RESERVED)
		return -ENODATA;
	if (memcmp(hdr, SNAPF_MAGIC, 8))
		return -EBADMSG;
	version = get32(hdr + 8);
	sum = rd64(hdr + 40);
	if (version == 1) {
		if (sum != sbx_hash64(hdr, 40, 0))
			return -EBADMSG;
	} else {
		/* Version 2 and any later one: the checksum covers the whole header. */
		if ((size_t)n < sizeof(hdr))
			return -ENODATA;
		memset(hdr + 40, 0, 8);
		if (sum != hdr_sum_v2(hdr))
			return -EBADMSG;
		if (version != SNAPF_VERSION)
			return -EPROTONOSUPPORT;
	}
	size = rd64(hdr + 24);
	if (get32(hdr + 12) != SNAPF_HDR || rd64(hdr + 16) != SNAPF_HDR ||
	    size == 0 || !mk_is_aligned(size, mk_page_size()) || size > (uint64_t)(SIZE_MAX / 2))
		return -EBADMSG;
	if ((size_t)n < sizeof(hdr))
		return -ENODATA;
	if (!all_zero(hdr + SNAPF_RESERVED, SNAPF_HDR - SNAPF_RESERVED))
		return -EBADMSG;
	r = mk_fstat(fd, &st);
	if (r < 0)
		return r;
	/* Check the length before allocating anything of that size. */
	if (mk_add_u64(SNAPF_HDR, size, &end) < 0)
		return -EBADMSG;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end)
		return -ENODATA;
	/* Bytes after the data are not ours: save truncates the file there. */
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > end)
		return -EBADMSG;
	r = sbx_snapshot_new_sealed(size, &mfd, &rw);
	if (r < 0)
		return r;
	n = mk_pread_full(fd, rw, (size_t)size, SNAPF_HDR);
	if (n >= 0 && (uint64_t)n < size)
		n = -ENODATA;
	else if (n >= 0 && sbx_hash64(rw, (size_t)size, 0) != rd64(hdr + 32))
		n = -EBADMSG;
	mk_munmap(rw, size);
	if (n < 0) {
		mk_close(mfd);
		return (int)n;
	}
	r = mk_add_seals(mfd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	if (r < 0) {
		mk_close(mfd);
		return r;
	}
	return sbx_snapshot_wrap(mfd, size, false, out);
}
