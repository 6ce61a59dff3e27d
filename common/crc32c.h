/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRC-32C (Castagnoli, the iSCSI/ext4/btrfs polynomial 0x1EDC6F41,
 * reflected), as libdax's DAXS v2 blobs and libsandbox's snapshot chunk
 * tables use it: with the SSE4.2 crc32 instruction where the CPU has it
 * (three streams in flight, about 3 bytes a cycle), else tables (slicing by
 * eight). Both give the same value for every input.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The CRC of buf continuing from crc (0 to start): mk_crc32c(0, "123456789", 9) == 0xe3069283. */
uint32_t mk_crc32c(uint32_t crc, const void *buf, size_t len);
/* Does this CPU compute it with the instruction (SSE4.2)? */
bool mk_crc32c_hw(void);
/* The table path whatever the CPU. */
uint32_t mk_crc32c_soft(uint32_t crc, const void *buf, size_t len);
/*
 * One path at most as wide as asked, where the CPU has it (tests compare
 * them all): 0 tables, 1 the crc32 instruction, 2 PCLMULQDQ folding,
 * 3 VPCLMULQDQ folding with AVX-512.
 */
uint32_t mk_crc32c_path(unsigned path, uint32_t crc, const void *buf, size_t len);
