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

MK_EXPORT int sbx_mem_read(struct sbx_mem *m, uint64_t off, void *buf, size_t len)
{
	int r;

	if (!buf && len) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_read: buf is NULL for %zu bytes", len);
		return -EINVAL;
	}
	r = sbx_host_access(m, off, len, "sbx_mem_read");
	if (r < 0)
		return r;
	sbx_vcopy_out(buf, m->base + off, len);
	sbx_host_end(m);
	return 0;
}

MK_EXPORT int sbx_mem_write(struct sbx_mem *m, uint64_t off, const void *buf, size_t len)
{
	int r;

	if (!buf && len) {
		sbx_refuse(LOG_DEBUG, "sbx_mem_write: buf is NULL for %zu bytes", len);
		return -EINVAL;
	}
	r = sbx_host_access(m, off, len, "sbx_mem_write");
	if (r < 0)
		return r;
	sbx_dirty_mark(m, off, len);
	sbx_vcopy_in(m->base + off, buf, len);
	sbx_host_end(m);
	return 0;
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

/*
 * Typed accessors: one volatile access of the natural width when aligned
 * (sbx_vload/sbx_vstore). Each public one below is a line over these two.
 */
static int read_typed(struct sbx_mem *m, uint64_t off, void *out, size_t size, const char *fn)
{
	int r;

	if (!out) {
		sbx_refuse(LOG_DEBUG, "%s: out is NULL", fn);
		return -EINVAL;
	}
	r = sbx_host_access(m, off, size, fn);
	if (r < 0)
		return r;
	sbx_vload(out, m->base + off, size);
	sbx_host_end(m);
	return 0;
}

static int write_typed(struct sbx_mem *m, uint64_t off, const void *v, size_t size, const char *fn)
{
	int r = sbx_host_access(m, off, size, fn);

	if (r < 0)
		return r;
	sbx_dirty_mark(m, off, size);
	sbx_vstore(m->base + off, v, size);
	sbx_host_end(m);
	return 0;
}

MK_EXPORT int sbx_mem_read_u8(struct sbx_mem *m, uint64_t off, uint8_t *out)
{
	return read_typed(m, off, out, sizeof(*out), "sbx_mem_read_u8");
}

MK_EXPORT int sbx_mem_read_u16(struct sbx_mem *m, uint64_t off, uint16_t *out)
{
	return read_typed(m, off, out, sizeof(*out), "sbx_mem_read_u16");
}

MK_EXPORT int sbx_mem_read_u32(struct sbx_mem *m, uint64_t off, uint32_t *out)
{
	return read_typed(m, off, out, sizeof(*out), "sbx_mem_read_u32");
}

MK_EXPORT int sbx_mem_read_u64(struct sbx_mem *m, uint64_t off, uint64_t *out)
{
	return read_typed(m, off, out, sizeof(*out), "sbx_mem_read_u64");
}

MK_EXPORT int sbx_mem_write_u8(struct sbx_mem *m, uint64_t off, uint8_t v)
{
	return write_typed(m, off, &v, sizeof(v), "sbx_mem_write_u8");
}

MK_EXPORT int sbx_mem_write_u16(struct sbx_mem *m, uint64_t off, uint16_t v)
{
	return write_typed(m, off, &v, sizeof(v), "sbx_mem_write_u16");
}

MK_EXPORT int sbx_mem_write_u32(struct sbx_mem *m, uint64_t off, uint32_t v)
{
	return write_typed(m, off, &v, sizeof(v), "sbx_mem_write_u32");
}

MK_EXPORT int sbx_mem_write_u64(struct sbx_mem *m, uint64_t off, uint64_t v)
{
	return write_typed(m, off, &v, sizeof(v), "sbx_mem_write_u64");
}
