/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Volatile copies between the region and the host. The guest may change
 * any byte at any time, so every access to the region is volatile (the
 * compiler may neither re-read nor invent reads), in aligned 16- or 32-byte
 * chunks unrolled four times, and each byte is read or written exactly once.
 */
#include "config.h"

#include <string.h>

#include "common/macro.h"
#include "sandboxP.h"

typedef uint64_t v16 __attribute__((vector_size(16), aligned(16)));
typedef uint64_t v16u __attribute__((vector_size(16), aligned(1)));
typedef uint64_t v32 __attribute__((vector_size(32), aligned(32)));
typedef uint64_t v32u __attribute__((vector_size(32), aligned(1)));

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

/* vcopy_out_sse2, vcopy_in_sse2, vfill_sse2 */
SBX_COPIES(sse2, v16, v16u, 16, )
#if defined(__x86_64__) && defined(__GNUC__)
#define SBX_HAVE_AVX2 1
/* vcopy_out_avx2, vcopy_in_avx2, vfill_avx2 */
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
