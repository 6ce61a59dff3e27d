/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The debug log hook every memkit library offers (kmod's log_fn and
 * KMOD_LOG, made async-signal-safe): a callback with its userdata and a
 * priority threshold (syslog's LOG_ERR .. LOG_DEBUG).
 *
 * Silent by default: with no callback set, nothing is written anywhere.
 * The library's environment variable (LIBSHM_LOG, LIBDAX_LOG,
 * LIBSANDBOX_LOG), read once when the library is loaded, sets the default
 * threshold (a name: err, warning, notice, info, debug, or a number 0-7)
 * and, for as long as no callback is installed, sends messages to
 * standard error as "libNAME: message" -- an explicit opt-in for
 * debugging a program that has no hook of its own.
 *
 * mk_log() formats with mk_vfmt() into a stack buffer (messages longer than
 * MK_LOG_LINE_MAX - 1 bytes are cut) and calls the callback; it takes no
 * lock and allocates nothing, so it is async-signal-safe and may be called
 * from libshm's signal-safe paths. The callback is the caller's code:
 * whatever it does is its own business, but it must not call back into the
 * library that is logging.
 *
 * Each library owns one `struct mk_log` (MK_LOG_INIT) and exports three thin
 * functions over mk_log_set_fn(), mk_log_set_priority() and
 * mk_log_get_priority().
 */
#pragma once

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <syslog.h>

#define MK_LOG_LINE_MAX 512

/* The public callback shape of every library (shma_log_fn, dax_log_fn, sbx_log_fn). */
typedef void (*mk_log_fn)(void *userdata, int priority, const char *msg);

struct mk_log {
	const char *name;	/* "libshm": the prefix on standard error */
	const char *env;	/* "LIBSHM_LOG" */
	/*
	 * fn and userdata change together under a sequence count (odd while a
	 * writer is inside); readers retry a few times and drop the message if
	 * a writer never finishes -- the writer may be the very code a signal
	 * handler interrupted, so a reader must never wait for it.
	 */
	atomic_uint seq;
	atomic_int writer;		/* spinlock between writers (set_fn is not signal-safe) */
	_Atomic(mk_log_fn) fn;
	_Atomic(void *) userdata;
	atomic_int priority;		/* messages above this are dropped */
	atomic_int to_stderr;		/* the environment asked for standard error */
};

#define MK_LOG_INIT(libname, envname) { \
	.name = (libname), .env = (envname), .priority = LOG_ERR, }

/* Read the environment variable (call once, from the library's constructor). */
void mk_log_init_env(struct mk_log *log);

/* Install fn (NULL: back to silent, or to standard error if the environment asked). */
void mk_log_set_fn(struct mk_log *log, mk_log_fn fn, void *userdata);
/* Set the threshold; priorities outside LOG_EMERG..LOG_DEBUG are clamped. */
void mk_log_set_priority(struct mk_log *log, int priority);
int mk_log_get_priority(const struct mk_log *log);

/* Whether a message of this priority would go anywhere (cheap; test before costly arguments). */
static inline int mk_log_enabled(struct mk_log *log, int priority)
{
	if (priority > atomic_load_explicit(&log->priority, memory_order_relaxed))
		return 0;
	return atomic_load_explicit(&log->fn, memory_order_relaxed) != NULL ||
	       atomic_load_explicit(&log->to_stderr, memory_order_relaxed);
}

void mk_log_emit(struct mk_log *log, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void mk_log_vemit(struct mk_log *log, int priority, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Parse "err", "debug", "7", ... into a priority; -1 when it is neither. */
int mk_log_parse_priority(const char *s);

/* The call every refusal path uses: costs one load and a compare when logging is off. */
#define mk_log(log, priority, ...) do {						\
		if (mk_log_enabled((log), (priority)))				\
			mk_log_emit((log), (priority), __VA_ARGS__);		\
	} while (0)
