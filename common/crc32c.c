/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRC-32C. Two instruction paths, chosen once by CPUID:
 *  - PCLMULQDQ folding (carry-less multiply, with SSE4.2 for the last 16
 *    bytes): four 128-bit accumulators advance 64 bytes a step, each folded
 *    forward by multiplying its halves with x^(512+32) and x^(512-32) mod P
 *    (bit-reflected, shifted by one, as in Intel's "Fast CRC Computation
 *    for Generic Polynomials Using PCLMULQDQ"); then the four are folded
 *    into one by 128 bits, and that one is summed by the crc32 instruction
 *    (its CRC from a zero register is the CRC of everything it replaced).
 *    With AVX-512 and VPCLMULQDQ the same folding runs four lanes a
 *    register, 256 bytes a step. On a Zen 4, whose crc32 retires one every
 *    three cycles however many are in flight, folding is several times the
 *    instruction alone;
 *  - the crc32 instruction alone (SSE4.2 without PCLMULQDQ), also for
 *    inputs under 64 bytes and the tail after the folding;
 * and tables (slicing by eight) everywhere else. Each constant is x^e mod P
 * (P = 0x11EDC6F41, by repeated doubling), its 32 bits reversed, shifted
 * left by one; /common/crc32c (tests/test-common.c) checks the three paths
 * against a bit-by-bit reference at every length and alignment class.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"
#include "macro.h"

#define POLY 0x82f63b78u          /* 0x1EDC6F41 reflected */

static uint32_t slice[8][256];
static pthread_once_t soft_once = PTHREAD_ONCE_INIT;

static void soft_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		slice[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			slice[t][i] = (slice[t - 1][i] >> 8) ^ slice[0][slice[t - 1][i] & 0xff];
}

uint32_t mk_crc32c_soft(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	pthread_once(&soft_once, soft_init);
	for (; len >= 8; len -= 8, p += 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= c;        /* little-endian hosts only (x86, arm64 as built here) */
		c = slice[7][lo & 0xff] ^ slice[6][(lo >> 8) & 0xff] ^ slice[5][(lo >> 16) & 0xff] ^
		    slice[4][lo >> 24] ^ slice[3][hi & 0xff] ^ slice[2][(hi >> 8) & 0xff] ^
		    slice[1][(hi >> 16) & 0xff] ^ slice[0][hi >> 24];
	}
	while (len--)
		c = slice[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

#if defined(__x86_64__)

#include <immintrin.h>

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

__attribute__((target("sse4.2")))
static uint64_t crc_words(uint64_t c, const uint8_t *p, size_t len)
{
	for (; len >= 8; len -= 8, p += 8)
		c = __builtin_ia32_crc32di(c, load64(p));
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return c;
}

/* x^e mod P, reflected, shifted left by one: the folding constants. */
#define K_512_HI 0x9e4addf8ull      /* e = 512 - 32 */
#define K_512_LO 0x740eef02ull      /* e = 512 + 32 */
#define K_128_HI 0x14cd00bd6ull     /* e = 128 - 32 */
#define K_128_LO 0xf20c0dfeull      /* e = 128 + 32 */
#define K_2048_HI 0xb9e02b86ull     /* e = 2048 - 32 */
#define K_2048_LO 0xdcb17aa4ull     /* e = 2048 + 32 */

__attribute__((target("pclmul,sse4.2")))
static inline __m128i fold(__m128i x, __m128i k, __m128i next)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
					   _mm_clmulepi64_si128(x, k, 0x11)), next);
}

/* len >= 64; c is the running (inverted) register. */
__attribute__((target("pclmul,sse4.2")))
static uint64_t crc_fold(uint64_t c, const uint8_t *p, size_t len)
{
	const __m128i k512 = _mm_set_epi64x((long long)K_512_HI, (long long)K_512_LO);
	const __m128i k128 = _mm_set_epi64x((long long)K_128_HI, (long long)K_128_LO);
	__m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16));
	__m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));

	/* The register enters as the first four bytes' XOR. */
	x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)(uint32_t)c));
	for (p += 64, len -= 64; len >= 64; p += 64, len -= 64) {
		x0 = fold(x0, k512, _mm_loadu_si128((const __m128i *)p));
		x1 = fold(x1, k512, _mm_loadu_si128((const __m128i *)(p + 16)));
		x2 = fold(x2, k512, _mm_loadu_si128((const __m128i *)(p + 32)));
		x3 = fold(x3, k512, _mm_loadu_si128((const __m128i *)(p + 48)));
	}
	x0 = fold(fold(fold(x0, k128, x1), k128, x2), k128, x3);
	for (; len >= 16; p += 16, len -= 16)
		x0 = fold(x0, k128, _mm_loadu_si128((const __m128i *)p));
	c = __builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(x0));
	c = __builtin_ia32_crc32di(c, (uint64_t)_mm_extract_epi64(x0, 1));
	return crc_words(c, p, len);
}

#define AVX512 __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))

AVX512 static inline __m512i fold4(__m512i z, __m512i k, __m512i next)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z, k, 0x00),
					 _mm512_clmulepi64_epi128(z, k, 0x11), next, 0x96);
}

/*
 * The same folding 512 bits wide (VPCLMULQDQ, four 128-bit lanes a
 * register): four registers advance 256 bytes a step; then folded into
 * one by 512 bits, its lanes into one by 128. len >= 256.
 */
AVX512 static uint64_t crc_fold512(uint64_t c, const uint8_t *p, size_t len)
{
	const __m512i k2048 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K_2048_HI,
								    (long long)K_2048_LO));
	const __m512i k512 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K_512_HI,
								   (long long)K_512_LO));
	const __m128i k128 = _mm_set_epi64x((long long)K_128_HI, (long long)K_128_LO);
	__m512i z0 = _mm512_loadu_si512(p), z1 = _mm512_loadu_si512(p + 64);
	__m512i z2 = _mm512_loadu_si512(p + 128), z3 = _mm512_loadu_si512(p + 192);
	__m128i x;

	z0 = _mm512_xor_si512(z0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)(uint32_t)c)));
	for (p += 256, len -= 256; len >= 256; p += 256, len -= 256) {
		z0 = fold4(z0, k2048, _mm512_loadu_si512(p));
		z1 = fold4(z1, k2048, _mm512_loadu_si512(p + 64));
		z2 = fold4(z2, k2048, _mm512_loadu_si512(p + 128));
		z3 = fold4(z3, k2048, _mm512_loadu_si512(p + 192));
	}
	z0 = fold4(fold4(fold4(z0, k512, z1), k512, z2), k512, z3);
	for (; len >= 64; p += 64, len -= 64)
		z0 = fold4(z0, k512, _mm512_loadu_si512(p));
	x = fold(_mm512_extracti32x4_epi32(z0, 0), k128, _mm512_extracti32x4_epi32(z0, 1));
	x = fold(x, k128, _mm512_extracti32x4_epi32(z0, 2));
	x = fold(x, k128, _mm512_extracti32x4_epi32(z0, 3));
	for (; len >= 16; p += 16, len -= 16)
		x = fold(x, k128, _mm_loadu_si128((const __m128i *)p));
	c = __builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(x));
	c = __builtin_ia32_crc32di(c, (uint64_t)_mm_extract_epi64(x, 1));
	return crc_words(c, p, len);
}

/* 0 none, 1 crc32 only, 2 PCLMULQDQ folding too, 3 and VPCLMULQDQ with AVX-512. */
static int hw_kind = -1;

static int kind(void)
{
	int k = __atomic_load_n(&hw_kind, __ATOMIC_RELAXED);

	if (k < 0) {
		k = !__builtin_cpu_supports("sse4.2") ? 0 : !__builtin_cpu_supports("pclmul") ? 1 :
		    __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq") ? 3 : 2;
		__atomic_store_n(&hw_kind, k, __ATOMIC_RELAXED);
	}
	return k;
}

/* The register through the widest path k allows (k >= 1). */
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len, int k)
{
	uint64_t c = ~crc;

	if (k >= 3 && len >= 256)
		c = crc_fold512(c, p, len);
	else if (k >= 2 && len >= 64)
		c = crc_fold(c, p, len);
	else
		c = crc_words(c, p, len);
	return ~(uint32_t)c;
}

bool mk_crc32c_hw(void)
{
	return kind() > 0;
}

uint32_t mk_crc32c(uint32_t crc, const void *buf, size_t len)
{
	int k = kind();

	return k ? crc_hw(crc, buf, len, k) : mk_crc32c_soft(crc, buf, len);
}

uint32_t mk_crc32c_path(unsigned path, uint32_t crc, const void *buf, size_t len)
{
	int k = kind();

	if (path == 0 || k == 0)
		return mk_crc32c_soft(crc, buf, len);
	return crc_hw(crc, buf, len, (int)MK_MIN(path, (unsigned)k));
}

#else

bool mk_crc32c_hw(void)
{
	return false;
}

uint32_t mk_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return mk_crc32c_soft(crc, buf, len);
}

uint32_t mk_crc32c_path(unsigned path, uint32_t crc, const void *buf, size_t len)
{
	(void)path;
	return mk_crc32c_soft(crc, buf, len);
}

#endif
