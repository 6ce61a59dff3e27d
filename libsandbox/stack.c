/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The buffer stack protocol of guest-shared buffers (Hyperlight's
 * push_buffer/try_pop_buffer_*): u64 stack pointer at offset 0, elements
 * each followed by a u64 back-pointer to their own start. The guest owns
 * the bytes, so each value is read once into a local, validated with
 * overflow-safe arithmetic, and only then used; nothing is written until
 * every check has passed.
 */
#include "config.h"

#include <errno.h>

#include "common/macro.h"
#include "common/size.h"
#include "sandboxP.h"

static uint64_t vload64(const volatile uint8_t *p)
{
	uint64_t v;

	sbx_vload(&v, p, sizeof(v));
	return v;
}

static void vstore64(volatile uint8_t *p, uint64_t v)
{
	sbx_vstore(p, &v, sizeof(v));
}

static int stack_begin(struct sbx_mem *m, uint64_t off, uint64_t size, const char *fn)
{
	if (size < 8) {
		sbx_refuse(LOG_DEBUG, "%s: a %" PRIu64 "-byte buffer cannot hold the stack pointer",
			   fn, size);
		return -EINVAL;
	}
	return sbx_host_access(m, off, size, fn);
}

/* The guest owns the stack's bytes: a value it broke is worth telling. */
#define corrupt(fn, what, v, lo, hi) \
	sbx_refuse(LOG_INFO, "%s: corrupt buffer stack: %s %" PRIu64 " outside [%" PRIu64 \
		   ", %" PRIu64 "]", (fn), (what), (uint64_t)(v), (uint64_t)(lo), (uint64_t)(hi))

MK_EXPORT int sbx_stack_init(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size)
{
	int r = stack_begin(m, buf_off, buf_size, "sbx_stack_init");

	if (r < 0)
		return r;
	sbx_dirty_mark(m, buf_off, buf_size);
	vstore64(m->base + buf_off, 8);
	sbx_vfill(m->base + buf_off + 8, 0, buf_size - 8);
	sbx_host_end(m);
	return 0;
}

MK_EXPORT int sbx_stack_push(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size,
			     const void *data, size_t len)
{
	uint8_t *b;
	uint64_t sp, avail;
	int r;

	if (!data && len) {
		sbx_refuse(LOG_DEBUG, "sbx_stack_push: data is NULL for %zu bytes", len);
		return -EINVAL;
	}
	r = stack_begin(m, buf_off, buf_size, "sbx_stack_push");
	if (r < 0)
		return r;
	b = m->base + buf_off;
	sp = vload64(b);
	if (sp < 8 || sp > buf_size) {
		corrupt("sbx_stack_push", "stack pointer", sp, 8, buf_size);
		r = -EBADMSG;
		goto out;
	}
	avail = buf_size - sp;
	if (len > avail || avail - len < 8) {
		sbx_refuse(LOG_DEBUG, "sbx_stack_push: %zu bytes and the back-pointer do not fit "
			   "the %" PRIu64 " bytes left", len, avail);
		r = -ENOSPC;
		goto out;
	}
	sbx_dirty_mark(m, buf_off, 8);
	sbx_dirty_mark(m, buf_off + sp, len + 8);
	sbx_vcopy_in(b + sp, data, len);
	vstore64(b + sp + len, sp);
	vstore64(b, sp + len + 8);
out:
	sbx_host_end(m);
	return r;
}

static int pop(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size,
	       void *out, size_t cap, size_t *len, bool sized)
{
	const char *fn = sized ? "sbx_stack_pop_sized" : "sbx_stack_pop";
	uint8_t *b;
	uint64_t sp, bp, slot, n;
	uint32_t prefix = 0;
	int r;

	if ((!out && cap) || !len) {
		sbx_refuse(LOG_DEBUG, "%s: out %p with capacity %zu, len %p", fn, out, cap,
			   (void *)len);
		return -EINVAL;
	}
	r = stack_begin(m, buf_off, buf_size, fn);
	if (r < 0)
		return r;
	b = m->base + buf_off;
	sp = vload64(b);
	if (sp == 8) {
		r = -ENODATA;
		goto out;
	}
	if (sp < 16 || sp > buf_size) {
		corrupt(fn, "stack pointer", sp, 16, buf_size);
		r = -EBADMSG;
		goto out;
	}
	bp = vload64(b + sp - 8);
	if (bp < 8 || bp > sp - 8) {
		corrupt(fn, "back-pointer", bp, 8, sp - 8);
		r = -EBADMSG;
		goto out;
	}
	slot = sp - 8 - bp;             /* bytes between element start and back-pointer */
	n = slot;
	if (sized) {
		/* 4-byte prefix + at least 4 bytes of payload, as the seed demands. */
		if (slot < 8) {
			corrupt(fn, "sized element's length", slot, 8, buf_size);
			r = -EBADMSG;
			goto out;
		}
		sbx_vcopy_out(&prefix, b + bp, sizeof(prefix));
		n = (uint64_t)prefix + 4;   /* cannot overflow a u64 */
		if (n > slot) {
			corrupt(fn, "size prefix + 4", n, 8, slot);
			r = -EBADMSG;
			goto out;
		}
	}
	*len = (size_t)n;
	if (n > cap) {
		sbx_refuse(LOG_DEBUG, "%s: the %" PRIu64 "-byte element does not fit %zu bytes",
			   fn, n, cap);
		r = -ENOBUFS;
		goto out;
	}
	if (sized) {
		/* The prefix we validated, not a second read of it. */
		__builtin_memcpy(out, &prefix, sizeof(prefix));
		sbx_vcopy_out((uint8_t *)out + 4, b + bp + 4, (size_t)n - 4);
	} else {
		sbx_vcopy_out(out, b + bp, (size_t)n);
	}
	sbx_dirty_mark(m, buf_off, 8);
	sbx_dirty_mark(m, buf_off + bp, sp - bp);
	vstore64(b, bp);
	sbx_vfill(b + bp, 0, sp - bp);
out:
	sbx_host_end(m);
	return r;
}

MK_EXPORT int sbx_stack_pop(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size,
			    void *out, size_t cap, size_t *len)
{
	return pop(m, buf_off, buf_size, out, cap, len, false);
}

MK_EXPORT int sbx_stack_pop_sized(struct sbx_mem *m, uint64_t buf_off, uint64_t buf_size,
				  void *out, size_t cap, size_t *len)
{
	return pop(m, buf_off, buf_size, out, cap, len, true);
}
