/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Snapshot files (memkit-snapshot(5); the format is snapfmt.c's): saving
 * version 4 (or 3), loading versions 1 to 4 into sealed memfds, every
 * byte verified before the snapshot exists; opening them (and raw memory
 * images) lazily, paged in by lazy.c (version 4: header and table index
 * at open, the table a block at a time); storing a working set in a file.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "common/le.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "sandboxP.h"

/* Reads of the data go in runs of at most this many bytes. */
#define RUN_MAX (8u << 20)

/* A refusal of the file's contents (hostile input): logged, then -err. */
#define bad_file(err, ...) \
	({ sbx_refuse(LOG_INFO, "sbx_snapshot_load: " __VA_ARGS__); -(err); })

/* ftruncate where the file can be truncated (-EINVAL: a block device, /dev/null). */
static int truncate_to(int fd, uint64_t len)
{
	int r = mk_ftruncate(fd, len);

	return r == -EINVAL ? 0 : r;
}

/*
 * The data: each chunk checksummed, the all-zero ones only marked (holes
 * in the file). A lazy snapshot's bytes come from its file, verified
 * (through buf, two chunk buffers), never through its view: the caller may
 * be the one that serves its faults.
 */
static int save_data(const struct sbx_snapshot *s, int fd, const struct sbx_snapf *f,
		     uint64_t *sums, uint64_t *zero, uint8_t *buf)
{
	for (uint64_t i = 0; i < f->nchunks; i++) {
		uint64_t off = i << f->chunk_shift;
		size_t n = (size_t)MK_MIN((uint64_t)f->chunk, f->size - off);
		const uint8_t *p = s->ro + off;
		ssize_t w;

		if (s->lazy) {
			int r = sbx_lazy_copy_out(s->lazy, off, buf, n, buf + f->chunk);

			if (r < 0)
				return r;
			p = buf;
		}
		if (sbx_all_zero(p, n)) {
			zero[i / 64] |= 1ull << (i % 64);
			continue;
		}
		sums[i] = sbx_chunk_sum(f->alg, p, n);
		w = mk_pwrite_full(fd, p, n, f->data_off + off);
		if (w < 0)
			return (int)w;
	}
	return 0;
}

int sbx_snapshot_save_version(const struct sbx_snapshot *s, int fd, uint32_t chunk_size, unsigned flags,
			      uint32_t version)
{
	uint32_t alg = (flags & SBX_SAVE_HASH64) || !mk_crc32c_hw() ? SBX_CHECKSUM_HASH64
								    : SBX_CHECKSUM_CRC32C;
	uint8_t hdr[SBX_SNAPF_HDR], *meta = NULL, *ws = NULL, *buf = NULL, *idx = NULL;
	uint64_t *sums = NULL, *zero = NULL;
	struct sbx_snapf f;
	ssize_t w;
	int r;

	chunk_size = chunk_size ?: SBX_CHUNK_DEFAULT;
	if (!s || fd < 0 || (flags & ~SBX_SAVE_HASH64) ||
	    sbx_snapf_layout(s->size, chunk_size, alg, version, &f) < 0) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_save: snapshot %p, fd %d, chunk size %" PRIu32
			   " (a power of two from %u to %u), flags 0x%x (known: 0x%x)", (void *)s, fd,
			   chunk_size, SBX_CHUNK_MIN, SBX_CHUNK_MAX, flags, SBX_SAVE_HASH64);
		return -EINVAL;
	}
	sums = mk_calloc((size_t)f.nchunks, sizeof(uint64_t));
	zero = mk_calloc((size_t)sbx_bitmap_words(f.nchunks), sizeof(uint64_t));
	meta = mk_malloc((size_t)f.meta_len);
	ws = mk_calloc(1, (size_t)f.ws_len);
	if (f.idx_len)
		idx = mk_malloc((size_t)f.idx_len);
	if (s->lazy)
		buf = mk_malloc((size_t)f.chunk + s->lazy->f.chunk);
	if (!sums || !zero || !meta || !ws || (s->lazy && !buf) || (f.idx_len && !idx)) {
		r = -ENOMEM;
		goto out;
	}
	/* From empty: zero chunks read back as zeros (holes), no old bytes stay. */
	r = truncate_to(fd, 0);
	if (r == 0)
		r = save_data(s, fd, &f, sums, zero, buf);
	if (r < 0)
		goto out;
	sbx_snapf_meta_encode(&f, sums, zero, meta);
	sbx_snapf_seal(&f, meta, idx);
	w = mk_pwrite_full(fd, meta, (size_t)f.meta_len, f.meta_off);
	if (w >= 0 && f.idx_len)
		w = mk_pwrite_full(fd, idx, (size_t)f.idx_len, f.idx_off);
	if (w >= 0)         /* no working set yet: zeros */
		w = mk_pwrite_full(fd, ws, (size_t)f.ws_len, f.ws_off);
	if (w < 0) {
		r = (int)w;
		goto out;
	}
	/* The header last: a save cut short leaves no valid file behind. */
	sbx_snapf_encode(&f, hdr);
	w = mk_pwrite_full(fd, hdr, sizeof(hdr), 0);
	/*
	 * A pipe or socket never gets here: pwrite failed with -ESPIPE. The
	 * final truncate also fixes a block device's reported end.
	 */
	r = w < 0 ? (int)w : truncate_to(fd, f.data_off + f.size);
out:
	free(sums);
	free(zero);
	free(meta);
	free(idx);
	free(ws);
	free(buf);
	return r;
}

MK_EXPORT int sbx_snapshot_save_chunked(const struct sbx_snapshot *s, int fd, uint32_t chunk_size,
					unsigned flags)
{
	return sbx_snapshot_save_version(s, fd, chunk_size, flags, 4);
}

MK_EXPORT int sbx_snapshot_save(const struct sbx_snapshot *s, int fd)
{
	return sbx_snapshot_save_chunked(s, fd, 0, 0);
}

/* Versions 1 and 2: all the data, one checksum. */
static int load_v2(int fd, const struct sbx_snapf *f, uint8_t *rw)
{
	ssize_t n = mk_pread_full(fd, rw, (size_t)f->size, f->data_off);

	if (n < 0)
		return (int)n;
	if ((uint64_t)n < f->size)
		return bad_file(ENODATA, "%zd data bytes of %" PRIu64, n, f->size);
	if (sbx_hash64(rw, (size_t)f->size, 0) != f->data_sum)
		return bad_file(EBADMSG, "data checksum mismatch");
	return 0;
}

/* Versions 3 and 4: runs of non-zero chunks read in one pread each, every chunk checked. */
static int load_v3(int fd, const struct sbx_snapf *f, const uint64_t *sums, const uint64_t *zero,
		   uint8_t *rw)
{
	uint64_t i = 0;

	while (i < f->nchunks) {
		uint64_t first = i, off, len;
		ssize_t n;

		if (sbx_bit(zero, i)) {
			i++;            /* a hole in the memfd: zeros, never read */
			continue;
		}
		while (i < f->nchunks && !sbx_bit(zero, i) && ((i - first + 1) << f->chunk_shift) <= RUN_MAX)
			i++;
		off = first << f->chunk_shift;
		len = MK_MIN(i << f->chunk_shift, f->size) - off;
		n = mk_pread_full(fd, rw + off, (size_t)len, f->data_off + off);
		if (n < 0)
			return (int)n;
		if ((uint64_t)n < len)
			return bad_file(ENODATA, "the data ends at byte %" PRIu64 " of %" PRIu64,
					off + (uint64_t)n, f->size);
		for (uint64_t k = first; k < i; k++) {
			uint64_t o = k << f->chunk_shift;
			size_t cn = (size_t)MK_MIN((uint64_t)f->chunk, f->size - o);

			if (sbx_chunk_sum(f->alg, rw + o, cn) != sums[k])
				return bad_file(EBADMSG, "chunk %" PRIu64 " (data offset %" PRIu64
						", file offset %" PRIu64 ") checksum mismatch", k, o,
						f->data_off + o);
		}
	}
	return 0;
}

MK_EXPORT int sbx_snapshot_load(int fd, struct sbx_snapshot **out)
{
	uint64_t *sums, *zero;
	struct sbx_snapf f;
	uint8_t *rw;
	int mfd, r;

	if (fd < 0 || !out) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_load: fd %d, out %p", fd, (void *)out);
		return -EINVAL;
	}
	r = sbx_snapf_read(fd, &f, &sums, &zero, NULL, NULL, "sbx_snapshot_load");
	if (r < 0)
		return r;
	r = sbx_snapshot_new_sealed(f.size, &mfd, &rw);
	if (r == 0) {
		r = f.version < 3 ? load_v2(fd, &f, rw) : load_v3(fd, &f, sums, zero, rw);
		mk_munmap(rw, f.size);
		if (r < 0)
			mk_close(mfd);
	}
	free(sums);
	free(zero);
	return r < 0 ? r : sbx_snapshot_seal_and_wrap(mfd, f.size, out);
}

/* A raw memory image: its size rounded up to a page, in default chunks, nothing to verify. */
static int raw_layout(int fd, struct sbx_snapf *f, uint64_t *file_size)
{
	struct stat st;
	uint64_t size;
	int r = mk_fstat(fd, &st);

	if (r < 0)
		return r;
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    mk_align_up((uint64_t)st.st_size, mk_page_size(), &size) < 0 ||
	    sbx_snapf_layout(size, SBX_CHUNK_DEFAULT, SBX_CHECKSUM_CRC32C, 3, f) < 0) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_open: fd %d is not a non-empty regular file that "
			   "fits the address space (mode %o, %lld bytes)", fd, (unsigned)st.st_mode,
			   (long long)st.st_size);
		return -EINVAL;
	}
	f->alg = SBX_CHECKSUM_NONE;
	f->data_off = 0;
	*file_size = (uint64_t)st.st_size;
	return 0;
}

MK_EXPORT int sbx_snapshot_open(int fd, unsigned flags, struct sbx_snapshot **out)
{
	const unsigned known = SBX_OPEN_LAZY | SBX_OPEN_RAW | SBX_OPEN_NO_THREAD | SBX_OPEN_NO_PREFETCH;
	uint64_t *sums = NULL, *zero = NULL, *idx = NULL, *hint = NULL, file_size = 0;
	struct sbx_snapshot *s;
	struct sbx_lazy *z;
	struct sbx_snapf f;
	int r;

	if (fd < 0 || !out || (flags & ~known) ||
	    (!(flags & SBX_OPEN_LAZY) && (flags & (SBX_OPEN_NO_THREAD | SBX_OPEN_NO_PREFETCH)))) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_open: fd %d, out %p, flags 0x%x (known: 0x%x; "
			   "NO_THREAD and NO_PREFETCH only with LAZY)", fd, (void *)out, flags, known);
		return -EINVAL;
	}
	if (!(flags & SBX_OPEN_LAZY))
		return flags & SBX_OPEN_RAW ? sbx_snapshot_import(fd, SBX_IMPORT_COPY, out)
					    : sbx_snapshot_load(fd, out);
	if (flags & SBX_OPEN_RAW) {
		r = raw_layout(fd, &f, &file_size);
	} else {
		/*
		 * The working set the file holds is prefetched, unless told not
		 * to. Version 4: header and index only (O(1) of the file's size),
		 * the table read a block at a time when first needed.
		 */
		r = sbx_snapf_read(fd, &f, &sums, &zero, flags & SBX_OPEN_NO_PREFETCH ? NULL : &hint,
				   &idx, "sbx_snapshot_open");
		/* Versions 1 and 2 have no chunks to verify one by one: read whole. */
		if (r == 0 && f.version < 3)
			return sbx_snapshot_load(fd, out);
	}
	if (r < 0) {
		free(sums);
		free(zero);
		return r;
	}
	r = sbx_lazy_new(fd, &f, file_size, sums, zero, idx, hint, &z);
	if (r == 0)
		r = sbx_snapshot_wrap_lazy(z, &s);
	if (r == 0 && !(flags & SBX_OPEN_NO_THREAD)) {
		r = sbx_lazy_start(z);
		if (r < 0)
			sbx_snapshot_unref(s);
	}
	if (r == 0)
		*out = s;
	return r;
}

MK_EXPORT int sbx_snapshot_write_working_set(int fd, const uint64_t *bitmap, size_t nwords)
{
	uint64_t *sums, *zero, *idx, *bits = NULL;
	struct sbx_snapf f;
	uint8_t *ws = NULL;
	ssize_t w;
	int r;

	if (fd < 0 || (!bitmap && nwords)) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_write_working_set: fd %d, bitmap %p", fd,
			   (const void *)bitmap);
		return -EINVAL;
	}
	/* Version 4: the index only (the working set is seeded with the header's checksum). */
	r = sbx_snapf_read(fd, &f, &sums, &zero, NULL, &idx, "sbx_snapshot_write_working_set");
	if (r < 0)
		return r;
	free(sums);
	free(zero);
	free(idx);
	if (f.version < 3) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_write_working_set: a version %" PRIu32 " file has no "
			   "working-set section", f.version);
		return -EOPNOTSUPP;
	}
	if (bitmap && nwords < sbx_bitmap_words(f.nchunks)) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_write_working_set: %zu words cannot hold %" PRIu64
			   " chunks", nwords, f.nchunks);
		return -EINVAL;
	}
	ws = mk_calloc(1, (size_t)f.ws_len);
	bits = mk_calloc((size_t)sbx_bitmap_words(f.nchunks), sizeof(uint64_t));
	if (!ws || !bits) {
		r = -ENOMEM;
		goto out;
	}
	/* NULL: erase it (all zero: none saved). */
	if (bitmap) {
		memcpy(bits, bitmap, (size_t)sbx_bitmap_words(f.nchunks) * sizeof(uint64_t));
		sbx_snapf_ws_encode(&f, bits, ws);
	}
	/* One write: a torn one fails its checksum and is ignored, as none. */
	w = mk_pwrite_full(fd, ws, (size_t)f.ws_len, f.ws_off);
	r = w < 0 ? (int)w : 0;
out:
	free(ws);
	free(bits);
	return r;
}
