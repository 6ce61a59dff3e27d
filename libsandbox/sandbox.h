/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* memkit libsandbox: micro-VM sandbox memory. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH"; thread-safe, async-signal-safe. */
const char *sbx_version(void);

#ifdef __cplusplus
}
#endif
