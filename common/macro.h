/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small compiler helpers shared by every memkit library and tool. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

/* Public API entry points: everything else stays hidden (-fvisibility=hidden). */
#define MK_EXPORT __attribute__((visibility("default")))

#define mk_likely(x)   __builtin_expect(!!(x), 1)
#define mk_unlikely(x) __builtin_expect(!!(x), 0)

#define MK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]) + \
	0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0]))]))

#define MK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MK_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Cleanup attribute for fds (wrappers return pointers through out parameters). */
#define _mk_cleanup_(fn) __attribute__((cleanup(fn)))
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

/* Inside a spin-wait loop: tell the CPU (SMT sibling, power) we are spinning. */
static inline void mk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}
