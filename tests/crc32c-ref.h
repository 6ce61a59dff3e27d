/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CRC-32C computed bit by bit: the independent reference the tests and
 * fuzzers check common/crc32c.c's table and instruction paths (and the
 * formats that use them) against.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

static inline uint32_t crc32c_ref(const uint8_t *p, size_t len)
{
	uint32_t c = ~0u;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}
