/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Snapshot objects (sbx_snapshot_take(3)): immutable, reference counted.
 *
 * A snapshot is a memfd sealed with F_SEAL_WRITE|SHRINK|GROW|SEAL (F_SEAL_WRITE
 * cannot be added while a writable shared mapping exists, so nothing can
 * change it afterwards; F_SEAL_FUTURE_WRITE alone would leave old mappings
 * writable), an fs-verity file, or a file paged in on demand (a lazy
 * snapshot: lazy.c, with a read-only view that pages in like a region).
 * Taking one from a region and restoring it are mem-snapshot.c's; files
 * are snapfile.c's.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/ext.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "common/uffd.h"
#include "sandboxP.h"

#define SBX_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define SBX_SEALS_NEEDED (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

int sbx_snapshot_new_sealed(uint64_t size, int *fd_out, uint8_t **rw_out)
{
	_mk_cleanup_close_ int fd = -1;
	void *p;
	int r;

	fd = mk_memfd_create("sbx-snapshot", MFD_ALLOW_SEALING);
	if (fd < 0)
		return fd;
	r = mk_ftruncate(fd, size);
	if (r < 0)
		return r;
	r = mk_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0, &p);
	if (r < 0)
		return r;
	*rw_out = p;
	*fd_out = mk_take_fd(&fd);
	return 0;
}

/* Wrap an immutable fd of size bytes (size checked by the caller). Takes fd. */
static int wrap(int fd, uint64_t size, bool direct, struct sbx_snapshot **out)
{
	struct sbx_snapshot *s = mk_calloc(1, sizeof(*s));
	void *p;
	int r;

	if (!s) {
		mk_close(fd);
		return -ENOMEM;
	}
	r = mk_mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0, &p);
	if (r < 0) {
		free(s);
		mk_close(fd);
		return r;
	}
	s->refs = 1;
	s->fd = fd;
	s->size = size;
	s->ro = p;
	s->direct = direct;
	*out = s;
	return 0;
}

int sbx_snapshot_seal_and_wrap(int fd, uint64_t size, struct sbx_snapshot **out)
{
	int r = mk_add_seals(fd, SBX_SEALS);

	if (r < 0) {
		mk_close(fd);
		return r;
	}
	return wrap(fd, size, false, out);
}

static bool is_verity(int fd)
{
	struct statx stx;

	if (mk_statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0)
		return false;
	return (stx.stx_attributes_mask & STATX_ATTR_VERITY) &&
	       (stx.stx_attributes & STATX_ATTR_VERITY);
}

/* Take fd as it is when the kernel guarantees it never changes: 1 taken, 0 not, or an error. */
static int import_direct(int fd, uint64_t size, struct sbx_snapshot **out)
{
	struct stat st;
	int seals, dfd, r;

	if (!mk_is_aligned(size, mk_page_size()))
		return 0;
	/* Checked before mapping: the size can no longer change, so no SIGBUS. */
	seals = mk_get_seals(fd);
	if (!(seals >= 0 && (seals & SBX_SEALS_NEEDED) == SBX_SEALS_NEEDED) && !is_verity(fd))
		return 0;
	dfd = mk_dup_cloexec(fd);
	if (dfd < 0)
		return dfd;
	/* Re-check on our own fd: same file, sizes are final now. */
	r = mk_fstat(dfd, &st);
	if (r < 0 || (uint64_t)st.st_size != size) {
		mk_close(dfd);
		if (r == 0)
			sbx_refuse(LOG_DEBUG, "sbx_snapshot_import: fd %d changed size while imported", fd);
		return r < 0 ? r : -EINVAL;
	}
	r = wrap(dfd, size, true, out);
	return r < 0 ? r : 1;
}

MK_EXPORT int sbx_snapshot_import(int fd, unsigned flags, struct sbx_snapshot **out)
{
	struct stat st;
	uint64_t size, asize;
	uint8_t *rw;
	int mfd, r;
	ssize_t n;

	if (fd < 0 || !out || (flags & ~SBX_IMPORT_COPY)) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_import: fd %d, out %p, flags 0x%x (known: 0x%x)",
			   fd, (void *)out, flags, SBX_IMPORT_COPY);
		return -EINVAL;
	}
	r = mk_fstat(fd, &st);
	if (r < 0)
		return r;
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_import: fd %d is not a non-empty regular file "
			   "(mode %o, %lld bytes)", fd, (unsigned)st.st_mode, (long long)st.st_size);
		return -EINVAL;
	}
	size = (uint64_t)st.st_size;
	if (size > (uint64_t)(SIZE_MAX / 2)) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_import: %" PRIu64 " bytes cannot be mapped", size);
		return -EINVAL;
	}
	if (!(flags & SBX_IMPORT_COPY)) {
		r = import_direct(fd, size, out);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	/* Not provably immutable: copy it with pread (a shrinking file cannot SIGBUS us). */
	if (mk_align_up(size, mk_page_size(), &asize) < 0)
		return -EINVAL;
	r = sbx_snapshot_new_sealed(asize, &mfd, &rw);
	if (r < 0)
		return r;
	n = mk_pread_full(fd, rw, (size_t)size, 0);
	mk_munmap(rw, asize);
	if (n < 0) {
		mk_close(mfd);
		return (int)n;
	}
	return sbx_snapshot_seal_and_wrap(mfd, asize, out);
}

MK_EXPORT struct sbx_snapshot *sbx_snapshot_ref(struct sbx_snapshot *s)
{
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

/* A lazy snapshot's view and file (the service thread stops first: no install after). */
static void free_lazy(struct sbx_snapshot *s)
{
	mk_uffd_thread_stop(&s->lazy->svc);
	if (s->view) {
		sbx_lazy_map_detach(s->view);
		sbx_lazy_map_free(s->view);
	}
	if (s->ro)
		mk_munmap((void *)s->ro, s->size);
	sbx_lazy_free(s->lazy);
}

MK_EXPORT void sbx_snapshot_unref(struct sbx_snapshot *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (s->lazy) {
		free_lazy(s);
	} else {
		mk_munmap((void *)s->ro, s->size);
		mk_close(s->fd);
	}
	free(s);
}

int sbx_snapshot_wrap_lazy(struct sbx_lazy *z, struct sbx_snapshot **out)
{
	struct sbx_snapshot *s = mk_calloc(1, sizeof(*s));
	void *p;
	int r = -ENOMEM;

	if (!s) {
		sbx_lazy_free(z);
		return r;
	}
	s->refs = 1;
	s->fd = -1;
	s->size = z->f.size;
	s->lazy = z;
	r = sbx_lazy_map_new(z, true, &s->view);
	if (r == 0)
		r = mk_mmap(NULL, (size_t)s->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			    -1, 0, &p);
	if (r == 0) {
		s->ro = p;
		r = sbx_lazy_map_reset(s->view, p, s->size);
	}
	if (r < 0) {
		free_lazy(s);
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

MK_EXPORT uint64_t sbx_snapshot_size(const struct sbx_snapshot *s)
{
	return s ? s->size : 0;
}

MK_EXPORT int sbx_snapshot_fd(const struct sbx_snapshot *s)
{
	if (s && s->lazy) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_fd: a lazy snapshot has no fd of verified bytes");
		return -EOPNOTSUPP;
	}
	return s ? s->fd : -EINVAL;
}

MK_EXPORT const void *sbx_snapshot_data(const struct sbx_snapshot *s)
{
	return s ? s->ro : NULL;
}

MK_EXPORT bool sbx_snapshot_is_direct(const struct sbx_snapshot *s)
{
	return s && s->direct;
}

MK_EXPORT bool sbx_snapshot_is_lazy(const struct sbx_snapshot *s)
{
	return s && s->lazy;
}

/* s's lazy state, or NULL after logging fn's refusal. */
static struct sbx_lazy *lazy_of(struct sbx_snapshot *s, const char *fn)
{
	if (!s || !s->lazy)
		sbx_refuse(LOG_DEBUG, "%s: %s", fn, s ? "the snapshot is not lazy" : "the snapshot is NULL");
	return s ? s->lazy : NULL;
}

MK_EXPORT int sbx_snapshot_fault_fd(struct sbx_snapshot *s)
{
	struct sbx_lazy *z = lazy_of(s, "sbx_snapshot_fault_fd");

	if (!s)
		return -EINVAL;
	if (!z || mk_uffd_thread_running(&z->svc)) {
		if (z)
			sbx_refuse(LOG_DEBUG, "sbx_snapshot_fault_fd: the snapshot's own thread serves "
				   "its faults (open it with SBX_OPEN_NO_THREAD)");
		return -ENOTSUP;
	}
	return z->epfd;
}

MK_EXPORT int sbx_snapshot_service(struct sbx_snapshot *s)
{
	struct sbx_lazy *z = lazy_of(s, "sbx_snapshot_service");

	if (!s)
		return -EINVAL;
	return z ? sbx_lazy_service(z) : -ENOTSUP;
}

MK_EXPORT int sbx_snapshot_lazy_stats(struct sbx_snapshot *s, struct sbx_lazy_stats *uout)
{
	struct sbx_lazy *z = lazy_of(s, "sbx_snapshot_lazy_stats");
	/* Extensible struct (common/ext.h, libsandbox(3)); first layout: 4.0's. */
	int64_t usize = mk_ext_size(uout, sizeof(struct sbx_lazy_stats));
	struct sbx_lazy_stats outbuf, *out = &outbuf;

	if (!z || usize < 0) {
		if (z)
			sbx_refuse(LOG_DEBUG, "sbx_snapshot_lazy_stats: out is NULL or its size %zu "
				   "below %zu", uout ? uout->size : 0, sizeof(struct sbx_lazy_stats));
		return -EINVAL;
	}
	/* Field by field: the counters move while the service runs. */
#define LOAD(field) out->field = __atomic_load_n(&z->st.field, __ATOMIC_RELAXED)
	memset(out, 0, sizeof(*out));
	/* First: a chunk leaves the queue after its counters moved (lazymap.c). */
	out->prefetch_queued = __atomic_load_n(&z->st.prefetch_queued, __ATOMIC_ACQUIRE);
	LOAD(data_size);
	LOAD(chunk_size);
	LOAD(checksum);
	LOAD(chunks);
	LOAD(chunks_read);
	LOAD(chunks_verified);
	LOAD(chunks_zero);
	LOAD(chunks_prefetched);
	LOAD(chunks_bad);
	LOAD(bad_offset);
	LOAD(bytes_read);
	LOAD(faults);
	LOAD(fault_ns_total);
	LOAD(fault_ns_max);
	LOAD(host_loads);
	LOAD(thread);
	LOAD(table_blocks_read);
	LOAD(table_blocks_bad);
	for (unsigned i = 0; i < SBX_HIST_BUCKETS; i++)
		LOAD(fault_ns[i]);
#undef LOAD
	mk_ext_out(uout, out, sizeof(*out), (size_t)usize);
	return 0;
}

MK_EXPORT int sbx_snapshot_set_working_set(struct sbx_snapshot *s, const uint64_t *bitmap,
					   size_t nwords)
{
	struct sbx_lazy *z = lazy_of(s, "sbx_snapshot_set_working_set");
	uint64_t *hint = NULL, words;

	if (!z)
		return -EINVAL;
	words = sbx_bitmap_words(z->f.nchunks);
	if (bitmap && nwords < words) {
		sbx_refuse(LOG_DEBUG, "sbx_snapshot_set_working_set: %zu words cannot hold %" PRIu64
			   " chunks", nwords, z->f.nchunks);
		return -EINVAL;
	}
	if (bitmap) {
		hint = mk_calloc((size_t)words, sizeof(uint64_t));
		if (!hint)
			return -ENOMEM;
		memcpy(hint, bitmap, (size_t)words * sizeof(uint64_t));
		/* Bits past the last chunk mean nothing. */
		if (z->f.nchunks % 64)
			hint[words - 1] &= (1ull << (z->f.nchunks % 64)) - 1;
	}
	pthread_mutex_lock(&z->lock);
	free(z->hint);
	z->hint = hint;
	pthread_mutex_unlock(&z->lock);
	return 0;
}
