/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Host access to sandbox memory (sbx_mem_read(3)): bounds-checked volatile
 * copies, fills and typed loads and stores. The volatile copying itself is
 * vcopy.c's; the range check and the lock word are mem.c's.
 */
#include "config.h"

#include <errno.h>

#include "common/macro.h"
#include "common/size.h"
#include "sandboxP.h"

/*
 * Copy len bytes out of the region at off into buf, or into the region
 * from buf: typed (sbx_vload/sbx_vstore: one volatile access of the value's
 * width when aligned) or a byte range (sbx_vcopy_*). fn names the caller
 * for the log.
 */
static int copy_out(struct sbx_mem *m, uint64_t off, void *buf, size_t len, bool typed,
		    const char *fn)
{
	int r;

	if (!buf && len) {
		sbx_refuse(LOG_DEBUG, "%s: the buffer is NULL for %zu bytes", fn, len);
		return -EINVAL;
	}
	r = sbx_host_access(m, off, len, fn);
	if (r < 0)
		return r;
	if (typed)
		sbx_vload(buf, m->base + off, len);
	else
		sbx_vcopy_out(buf, m->base + off, len);
	sbx_host_end(m);
	return 0;
}

static int copy_in(struct sbx_mem *m, uint64_t off, const void *buf, size_t len, bool typed,
		   const char *fn)
{
	int r;

	if (!buf && len) {
		sbx_refuse(LOG_DEBUG, "%s: the buffer is NULL for %zu bytes", fn, len);
		return -EINVAL;
	}
	r = sbx_host_access(m, off, len, fn);
	if (r < 0)
		return r;
	sbx_dirty_mark(m, off, len);
	if (typed)
		sbx_vstore(m->base + off, buf, len);
	else
		sbx_vcopy_in(m->base + off, buf, len);
	sbx_host_end(m);
	return 0;
}

MK_EXPORT int sbx_mem_read(struct sbx_mem *m, uint64_t off, void *buf, size_t len)
{
	return copy_out(m, off, buf, len, false, "sbx_mem_read");
}

MK_EXPORT int sbx_mem_write(struct sbx_mem *m, uint64_t off, const void *buf, size_t len)
{
	return copy_in(m, off, buf, len, false, "sbx_mem_write");
}

MK_EXPORT int sbx_mem_fill(struct sbx_mem *m, uint64_t off, uint8_t byte, uint64_t len)
{
	int r = sbx_host_access(m, off, len, "sbx_mem_fill");

	if (r < 0)
		return r;
	sbx_dirty_mark(m, off, len);
	sbx_vfill(m->base + off, byte, len);
	sbx_host_end(m);
	return 0;
}

MK_EXPORT int sbx_mem_copy(struct sbx_mem *m, uint64_t dst_off, uint64_t src_off, uint64_t len)
{
	uint8_t tmp[4096];
	int r;

	r = sbx_host_access(m, dst_off, len, "sbx_mem_copy");
	if (r < 0)
		return r;
	if (!mk_range_ok(src_off, len, m->size)) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_copy: source [%" PRIu64 ", +%" PRIu64
			   ") outside the region's %" PRIu64 " bytes", src_off, len, m->size);
		sbx_host_end(m);
		return -EINVAL;
	}
	sbx_dirty_mark(m, dst_off, len);
	/* Through a private bounce buffer, in the direction that is overlap-safe. */
	if (dst_off <= src_off) {
		for (uint64_t done = 0; done < len;) {
			size_t n = (size_t)MK_MIN(len - done, sizeof(tmp));
			sbx_vcopy_out(tmp, m->base + src_off + done, n);
			sbx_vcopy_in(m->base + dst_off + done, tmp, n);
			done += n;
		}
	} else {
		for (uint64_t left = len; left;) {
			size_t n = (size_t)MK_MIN(left, sizeof(tmp));
			left -= n;
			sbx_vcopy_out(tmp, m->base + src_off + left, n);
			sbx_vcopy_in(m->base + dst_off + left, tmp, n);
		}
	}
	sbx_host_end(m);
	return 0;
}

/* Typed accessors: one volatile access of the natural width when aligned. */
MK_EXPORT int sbx_mem_read_u8(struct sbx_mem *m, uint64_t off, uint8_t *out)
{
	return copy_out(m, off, out, sizeof(*out), true, "sbx_mem_read_u8");
}

MK_EXPORT int sbx_mem_read_u16(struct sbx_mem *m, uint64_t off, uint16_t *out)
{
	return copy_out(m, off, out, sizeof(*out), true, "sbx_mem_read_u16");
}

MK_EXPORT int sbx_mem_read_u32(struct sbx_mem *m, uint64_t off, uint32_t *out)
{
	return copy_out(m, off, out, sizeof(*out), true, "sbx_mem_read_u32");
}

MK_EXPORT int sbx_mem_read_u64(struct sbx_mem *m, uint64_t off, uint64_t *out)
{
	return copy_out(m, off, out, sizeof(*out), true, "sbx_mem_read_u64");
}

MK_EXPORT int sbx_mem_write_u8(struct sbx_mem *m, uint64_t off, uint8_t v)
{
	return copy_in(m, off, &v, sizeof(v), true, "sbx_mem_write_u8");
}

MK_EXPORT int sbx_mem_write_u16(struct sbx_mem *m, uint64_t off, uint16_t v)
{
	return copy_in(m, off, &v, sizeof(v), true, "sbx_mem_write_u16");
}

MK_EXPORT int sbx_mem_write_u32(struct sbx_mem *m, uint64_t off, uint32_t v)
{
	return copy_in(m, off, &v, sizeof(v), true, "sbx_mem_write_u32");
}

MK_EXPORT int sbx_mem_write_u64(struct sbx_mem *m, uint64_t off, uint64_t v)
{
	return copy_in(m, off, &v, sizeof(v), true, "sbx_mem_write_u64");
}
