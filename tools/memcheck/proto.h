/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest: the host <-> guest protocol and the guest-physical
 * layout. Shared by the guest program (memcheck-guest.S, through cpp) and
 * the host, so only preprocessor constants unless !__ASSEMBLER__.
 *
 * The host writes a command block at MC_CMD, runs the vCPU; the guest
 * executes it, stores its results in the same block and writes its status
 * byte to MC_PORT_DONE (an OUT, i.e. KVM_EXIT_IO), then waits for the next
 * command. Its very first instruction is an OUT to MC_PORT_HELLO.
 */
#pragma once

/* Guest-physical layout. Low RAM (slot 0) holds everything but test memory. */
#define MC_LOW_SIZE     0x200000          /* 2 MiB of control RAM at gpa 0 */
#define MC_GDT          0x0000
#define MC_CMD          0x1000            /* command block (one page) */
#define MC_PML4         0x2000
#define MC_PDPT         0x3000
#define MC_PD           0x4000            /* MC_PD_COUNT pages of 2 MiB entries */
#define MC_PD_COUNT     8                 /* identity map of 0 .. 8 GiB */
#define MC_CODE         0x10000           /* guest program, at most 64 KiB */
#define MC_CODE_MAX     0x10000
#define MC_STACK_TOP    0x100000
#define MC_LIST         0x100000          /* page list written by MC_OP_WRITE_PAGES */
#define MC_LIST_MAX     0x20000           /* entries (u64) that fit below 2 MiB */

/* Where each check's memory sits (each check has a VM of its own). */
#define MC_GPA_TEST     0x40000000ull     /* 1 GiB: test region, at most 1 GiB */
#define MC_GPA_RO       0x40000000ull     /* readonly check: its region */
#define MC_GPA_DAX      0x100000000ull    /* 4 GiB: DAX window */
#define MC_GPA_SHM      0x140000000ull    /* 5 GiB: libshm chunk */
#define MC_GPA_MAPPED   0x200000000ull    /* end of the identity map (8 GiB) */
#define MC_SIZE_MAX     0x40000000ull

/* I/O ports. */
#define MC_PORT_HELLO   0x11
#define MC_PORT_DONE    0x10

/* Command block: u64 fields at these offsets. */
#define MC_C_OP         0
#define MC_C_ADDR       8
#define MC_C_LEN        16
#define MC_C_SEED       24
#define MC_C_ARG        32
#define MC_C_RES0       40
#define MC_C_RES1       48
#define MC_C_RES2       56
#define MC_C_RES3       64
#define MC_C_SIZE       72

/* Operations. */
#define MC_OP_PING        1   /* no-op */
#define MC_OP_FILL        2   /* addr, len, arg = kind, seed */
#define MC_OP_VERIFY      3   /* same; res0 mismatches, res1 first bad gpa, res2 expected, res3 actual */
#define MC_OP_READ64      4   /* res0 = *(u64 *)addr */
#define MC_OP_WRITE64     5   /* *(u64 *)addr = arg */
#define MC_OP_WRITE_PAGES 6   /* addr/len region, arg pages, seed: see pattern.h; list at MC_LIST */
#define MC_OP_CHECKSUM    7   /* res0 = checksum of addr .. addr + len */
#define MC_OP_HANG        8   /* spin forever (tests the host's timeout) */

/* Pattern kinds for FILL/VERIFY. */
#define MC_PAT_WALK1    0     /* word i = rotl(1, (seed + i) % 64) */
#define MC_PAT_WALK0    1     /* ~walking ones */
#define MC_PAT_ADDR     2     /* word = its own guest-physical address */
#define MC_PAT_RANDOM   3     /* xorshift64 stream from seed (0 -> MC_XS_DEFAULT) */
#define MC_PAT_COUNT    4

#define MC_XS_DEFAULT   0x9e3779b97f4a7c15

/* Checksum: h = FNV offset; per u64 word: h = (h ^ w) * FNV prime. */
#define MC_FNV_OFFSET   0xcbf29ce484222325
#define MC_FNV_PRIME    0x100000001b3

/* Status bytes written to MC_PORT_DONE. */
#define MC_ST_OK        0
#define MC_ST_BADOP     1
#define MC_ST_BADARG    2
