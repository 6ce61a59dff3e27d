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

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/le.h"
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

uint64_t sbx_hash64(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t a = seed + P1 + P2, b = seed + P2, c = seed, d = seed - P1, h;
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		a = round64(a, mk_get_le64(p + i));
		b = round64(b, mk_get_le64(p + i + 8));
		c = round64(c, mk_get_le64(p + i + 16));
		d = round64(d, mk_get_le64(p + i + 24));
	}
	h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + (uint64_t)len;
	for (; i + 8 <= len; i += 8)
		h = rotl(h ^ round64(0, mk_get_le64(p + i)), 27) * P1 + P4;
	for (; i < len; i++)
		h = rotl(h ^ (p[i] * P3), 11) * P1;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	return h ^ (h >> 32);
}

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

	if (!s || fd < 0) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_save: snapshot %p, fd %d", (void *)s, fd);
		return -EINVAL;
	}
	memcpy(hdr, SNAPF_MAGIC, 8);
	mk_put_le32(hdr + 8, SNAPF_VERSION);
	mk_put_le32(hdr + 12, SNAPF_HDR);
	mk_put_le64(hdr + 16, SNAPF_HDR);
	mk_put_le64(hdr + 24, s->size);
	mk_put_le64(hdr + 32, sbx_hash64(s->ro, s->size, 0));
	mk_put_le64(hdr + 40, hdr_sum_v2(hdr));
	n = mk_pwrite_full(fd, hdr, sizeof(hdr), 0);
	if (n < 0)
		return (int)n;
	n = mk_pwrite_full(fd, s->ro, s->size, SNAPF_HDR);
	if (n < 0)
		return (int)n;
	r = mk_ftruncate(fd, SNAPF_HDR + s->size);
	/*
	 * -EINVAL: not a regular file but one pwrite accepts (a block device,
	 * /dev/null): nothing to truncate. A pipe or socket never gets here:
	 * the pwrite above already failed with -ESPIPE.
	 */
	return r == -EINVAL ? 0 : r;
}

/* A refusal of the file's contents (hostile input): logged, then -err. */
#define bad_file(err, ...) \
	({ sbx_refuse(LOG_INFO, "sbx_snapshot_load: " __VA_ARGS__); -(err); })

MK_EXPORT int sbx_snapshot_load(int fd, struct sbx_snapshot **out)
{
	uint8_t hdr[SNAPF_HDR];
	struct stat st;
	uint64_t size, end, sum;
	uint32_t version;
	uint8_t *rw;
	ssize_t n;
	int mfd, r;

	if (fd < 0 || !out) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_load: fd %d, out %p", fd, (void *)out);
		return -EINVAL;
	}
	n = mk_pread_full(fd, hdr, sizeof(hdr), 0);
	if (n < 0)
		return (int)n;
	if (n < SNAPF_RESERVED)
		return bad_file(ENODATA, "%zd bytes are too short for a header", n);
	if (memcmp(hdr, SNAPF_MAGIC, 8))
		return bad_file(EBADMSG, "no " SNAPF_MAGIC " magic");
	version = mk_get_le32(hdr + 8);
	sum = mk_get_le64(hdr + 40);
	if (version == 1) {
		if (sum != sbx_hash64(hdr, 40, 0))
			return bad_file(EBADMSG, "version 1 header checksum mismatch");
	} else {
		/* Version 2 and any later one: the checksum covers the whole header. */
		if ((size_t)n < sizeof(hdr))
			return bad_file(ENODATA, "%zd bytes are too short for a header", n);
		memset(hdr + 40, 0, 8);
		if (sum != hdr_sum_v2(hdr))
			return bad_file(EBADMSG, "header checksum mismatch");
		if (version != SNAPF_VERSION)
			return bad_file(EPROTONOSUPPORT, "version %" PRIu32 " (this library reads 1..%u)",
					version, SNAPF_VERSION);
	}
	size = mk_get_le64(hdr + 24);
	if (mk_get_le32(hdr + 12) != SNAPF_HDR || mk_get_le64(hdr + 16) != SNAPF_HDR ||
	    size == 0 || !mk_is_aligned(size, mk_page_size()) || size > (uint64_t)(SIZE_MAX / 2))
		return bad_file(EBADMSG, "header size %" PRIu32 ", data offset %" PRIu64 ", data size %"
				PRIu64 " (need %u, %u, and a non-zero page multiple)",
				mk_get_le32(hdr + 12), mk_get_le64(hdr + 16), size, SNAPF_HDR, SNAPF_HDR);
	if ((size_t)n < sizeof(hdr))
		return bad_file(ENODATA, "%zd bytes are too short for a header", n);
	if (!all_zero(hdr + SNAPF_RESERVED, SNAPF_HDR - SNAPF_RESERVED))
		return bad_file(EBADMSG, "reserved header bytes are not zero");
	r = mk_fstat(fd, &st);
	if (r < 0)
		return r;
	/* Check the length before allocating anything of that size. */
	if (mk_add_u64(SNAPF_HDR, size, &end) < 0)
		return bad_file(EBADMSG, "data size %" PRIu64 " overflows", size);
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end)
		return bad_file(ENODATA, "the file has %lld bytes, the header promises %" PRIu64,
				(long long)st.st_size, end);
	/* Bytes after the data are not ours: save truncates the file there. */
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > end)
		return bad_file(EBADMSG, "the file has %lld bytes, more than the header's %" PRIu64,
				(long long)st.st_size, end);
	r = sbx_snapshot_new_sealed(size, &mfd, &rw);
	if (r < 0)
		return r;
	n = mk_pread_full(fd, rw, (size_t)size, SNAPF_HDR);
	if (n >= 0 && (uint64_t)n < size)
		n = bad_file(ENODATA, "%zd data bytes of %" PRIu64, n, size);
	else if (n >= 0 && sbx_hash64(rw, (size_t)size, 0) != mk_get_le64(hdr + 32))
		n = bad_file(EBADMSG, "data checksum mismatch");
	mk_munmap(rw, size);
	if (n < 0) {
		mk_close(mfd);
		return (int)n;
	}
	return sbx_snapshot_seal_and_wrap(mfd, size, out);
}
