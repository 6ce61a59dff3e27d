/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small compiler helpers shared by every memkit library and tool. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Public API entry points: everything else stays hidden (-fvisibility=hidden). */
#define MK_EXPORT __attribute__((visibility("default")))

#define mk_likely(x)   __builtin_expect(!!(x), 1)
#define mk_unlikely(x) __builtin_expect(!!(x), 0)

#define MK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]) + \
	0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0]))]))

#define mk_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define MK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MK_MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * ERR_PTR convention for wrappers that return pointers: errors are encoded
 * as the top 4095 addresses, which no mapping can start at.
 */
#define MK_MAX_ERRNO 4095
static inline void *mk_err_ptr(long err) { return (void *)err; }
static inline long mk_ptr_err(const void *p) { return (long)p; }
static inline int mk_is_err(const void *p)
{
	return (uintptr_t)p >= (uintptr_t)-MK_MAX_ERRNO;
}

/* Cleanup attributes (not for async-signal-safe paths: they may call free). */
#define _mk_cleanup_(fn) __attribute__((cleanup(fn)))
static inline void mk_freep(void *p) { free(*(void **)p); }
#define _mk_cleanup_free_ _mk_cleanup_(mk_freep)
static inline void mk_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _mk_cleanup_close_ _mk_cleanup_(mk_closep)

/* Hand an fd out of a _mk_cleanup_close_ variable. */
static inline int mk_take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}
