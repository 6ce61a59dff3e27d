/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* memkit libdax: virtio-fs DAX window session for KVM. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH"; thread-safe, async-signal-safe. */
const char *dax_version(void);

#ifdef __cplusplus
}
#endif
