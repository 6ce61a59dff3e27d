/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Host access to sandbox memory. The guest may change any byte at any time,
 * so every access to the region is volatile (the compiler may neither
 * re-read nor invent reads), in aligned 16- or 32-byte chunks unrolled four
 * times, and each byte is read or written exactly once.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "common/size.h"
#include "sandboxP.h"

typedef uint64_t v16 __attribute__((vector_size(16), aligned(16)));
typedef uint64_t v16u __attribute__((vector_size(16), aligned(1)));
typedef uint64_t v32 __attribute__((vector_size(32), aligned(32)));
typedef uint64_t v32u __attribute__((vector_size(32), aligned(1)));

bool sbx_range_ok(const struct sbx_mem *m, uint64_t off, uint64_t len)
{
	return mk_range_ok(off, len, m->size);
}

/*
 * One body, two widths: 16-byte SSE2 chunks everywhere, 32-byte AVX2 chunks
 * where the CPU has them (picked once at run time). Byte-wise head up to the
 * chunk alignment of the region side, four chunks per loop, byte-wise tail.
 */
#define SBX_COPIES(sfx, V, VU, W, ATTR)                                          \
ATTR static void vcopy_out_##sfx(void *dst, const volatile uint8_t *src, size_t len) \
{                                                                                \
	uint8_t *d = dst;                                                        \
	size_t i = 0, head = MK_MIN(len, (size_t)(-(uintptr_t)src & (W - 1)));   \
	for (; i < head; i++)                                                    \
		d[i] = src[i];                                                   \
	for (; i + 4 * W <= len; i += 4 * W) {                                   \
		const volatile V *s = (const volatile V *)(src + i);             \
		V a = s[0], b = s[1], c = s[2], e = s[3];                        \
		*(VU *)(d + i) = a;                                              \
		*(VU *)(d + i + W) = b;                                          \
		*(VU *)(d + i + 2 * W) = c;                                      \
		*(VU *)(d + i + 3 * W) = e;                                      \
	}                                                                        \
	for (; i + W <= len; i += W)                                             \
		*(VU *)(d + i) = *(const volatile V *)(src + i);                 \
	for (; i < len; i++)                                                     \
		d[i] = src[i];                                                   \
}                                                                                \
ATTR static void vcopy_in_##sfx(volatile uint8_t *dst, const void *src, size_t len) \
{                                                                                \
	const uint8_t *s = src;                                                  \
	size_t i = 0, head = MK_MIN(len, (size_t)(-(uintptr_t)dst & (W - 1)));   \
	for (; i < head; i++)                                                    \
		dst[i] = s[i];                                                   \
	for (; i + 4 * W <= len; i += 4 * W) {                                   \
		volatile V *d = (volatile V *)(dst + i);                         \
		V a = *(const VU *)(s + i), b = *(const VU *)(s + i + W);        \
		V c = *(const VU *)(s + i + 2 * W), e = *(const VU *)(s + i + 3 * W); \
		d[0] = a;                                                        \
		d[1] = b;                                                        \
		d[2] = c;                                                        \
		d[3] = e;                                                        \
	}                                                                        \
	for (; i + W <= len; i += W)                                             \
		*(volatile V *)(dst + i) = *(const VU *)(s + i);                 \
	for (; i < len; i++)                                                     \
		dst[i] = s[i];                                                   \
}                                                                                \
ATTR static void vfill_##sfx(volatile uint8_t *dst, uint8_t byte, size_t len)    \
{                                                                                \
	size_t i = 0, head = MK_MIN(len, (size_t)(-(uintptr_t)dst & (W - 1)));   \
	V v;                                                                     \
	memset(&v, byte, sizeof(v));                                             \
	for (; i < head; i++)                                                    \
		dst[i] = byte;                                                   \
	for (; i + 4 * W <= len; i += 4 * W) {                                   \
		volatile V *d = (volatile V *)(dst + i);                         \
		d[0] = v;                                                        \
		d[1] = v;                                                        \
		d[2] = v;                                                        \
		d[3] = v;                                                        \
	}                                                                        \
	for (; i + W <= len; i += W)                                             \
		*(volatile V *)(dst + i) = v;                                    \
	for (; i < len; i++)                                                     \
		dst[i] = byte;                                                   \
}

SBX_COPIES(sse2, v16, v16u, 16, )
#if defined(__x86_64__) && defined(__GNUC__)
#define SBX_HAVE_AVX2 1
SBX_COPIES(avx2, v32, v32u, 32, __attribute__((target("avx2"))))
#endif

static int use_avx2 = -1;

static bool avx2(void)
{
#ifdef SBX_HAVE_AVX2
	int u = __atomic_load_n(&use_avx2, __ATOMIC_RELAXED);

	if (mk_unlikely(u < 0)) {
		__builtin_cpu_init();
		u = __builtin_cpu_supports("avx2") ? 1 : 0;
		__atomic_store_n(&use_avx2, u, __ATOMIC_RELAXED);
	}
	return u;
#else
	return false;
#endif
}

void sbx_vcopy_out(void *dst, const volatile uint8_t *src, size_t len)
{
#ifdef SBX_HAVE_AVX2
	if (len >= 128 && avx2()) {
		vcopy_out_avx2(dst, src, len);
		return;
	}
#endif
	vcopy_out_sse2(dst, src, len);
}

void sbx_vcopy_in(volatile uint8_t *dst, const void *src, size_t len)
{
#ifdef SBX_HAVE_AVX2
	if (len >= 128 && avx2()) {
		vcopy_in_avx2(dst, src, len);
		return;
	}
#endif
	vcopy_in_sse2(dst, src, len);
}

void sbx_vfill(volatile uint8_t *dst, uint8_t byte, size_t len)
{
#ifdef SBX_HAVE_AVX2
	if (len >= 128 && avx2()) {
		vfill_avx2(dst, byte, len);
		return;
	}
#endif
	vfill_sse2(dst, byte, len);
}

/*
 * Enter a host access and validate the range; on success the caller must
 * sbx_host_end(). The range is checked inside: sbx_mem_resize() may change
 * the size until the access has begun.
 */
int sbx_host_access(struct sbx_mem *m, uint64_t off, uint64_t len)
{
	int r;

	if (!m || !m->host_alive)
		return -EINVAL;
	r = sbx_host_begin(m);
	if (r < 0)
		return r;
	if (!sbx_range_ok(m, off, len)) {
		sbx_host_end(m);
		return -EINVAL;
	}
	return 0;
}

MK_EXPORT int sbx_mem_read(struct sbx_mem *m, uint64_t off, void *buf, size_t len)
{
	int r;

	if (!buf && len)
		return -EINVAL;
	r = sbx_host_access(m, off, len);
	if (r < 0)
		return r;
	sbx_vcopy_out(buf, m->base + off, len);
	sbx_host_end(m);
	return 0;
}

MK_EXPORT int sbx_mem_write(struct sbx_mem *m, uint64_t off, const void *buf, size_t len)
{
	int r;

	if (!buf && len)
		return -EINVAL;
	r = sbx_host_access(m, off, len);
	if (r < 0)
		return r;
	sbx_mark_dirty(m, off, len);
	sbx_vcopy_in(m->base + off, buf, len);
	sbx_host_end(m);
	return 0;
}

MK_EXPORT int sbx_mem_fill(struct sbx_mem *m, uint64_t off, uint8_t byte, uint64_t len)
{
	int r = sbx_host_access(m, off, len);

	if (r < 0)
		return r;
	sbx_mark_dirty(m, off, len);
	sbx_vfill(m->base + off, byte, len);
	sbx_host_end(m);
	return 0;
}

MK_EXPORT int sbx_mem_copy(struct sbx_mem *m, uint64_t dst_off, uint64_t src_off, uint64_t len)
{
	uint8_t tmp[4096];
	int r;

	r = sbx_host_access(m, dst_off, len);
	if (r < 0)
		return r;
	if (!sbx_range_ok(m, src_off, len)) {
		sbx_host_end(m);
		return -EINVAL;
	}
	sbx_mark_dirty(m, dst_off, len);
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
#define SBX_TYPED(bits)                                                            \
MK_EXPORT int sbx_mem_read_u##bits(struct sbx_mem *m, uint64_t off, uint##bits##_t *out) \
{                                                                                  \
	int r;                                                                     \
	if (!out)                                                                  \
		return -EINVAL;                                                    \
	r = sbx_host_access(m, off, sizeof(*out));                                     \
	if (r < 0)                                                                 \
		return r;                                                          \
	if (((uintptr_t)(m->base + off) & (sizeof(*out) - 1)) == 0)                \
		*out = *(const volatile uint##bits##_t *)(m->base + off);          \
	else                                                                       \
		sbx_vcopy_out(out, m->base + off, sizeof(*out));                   \
	sbx_host_end(m);                                                           \
	return 0;                                                                  \
}                                                                                  \
MK_EXPORT int sbx_mem_write_u##bits(struct sbx_mem *m, uint64_t off, uint##bits##_t v)  \
{                                                                                  \
	int r = sbx_host_access(m, off, sizeof(v));                                    \
	if (r < 0)                                                                 \
		return r;                                                          \
	sbx_mark_dirty(m, off, sizeof(v));                                         \
	if (((uintptr_t)(m->base + off) & (sizeof(v) - 1)) == 0)                   \
		*(volatile uint##bits##_t *)(m->base + off) = v;                   \
	else                                                                       \
		sbx_vcopy_in(m->base + off, &v, sizeof(v));                        \
	sbx_host_end(m);                                                           \
	return 0;                                                                  \
}

SBX_TYPED(8)
SBX_TYPED(16)
SBX_TYPED(32)
SBX_TYPED(64)
