/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libraries' log hook; see log.h for the contract. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "log.h"
#include "sys.h"

/* How often a reader retries a callback change in progress before dropping its message. */
#define READ_TRIES 64

int mk_log_parse_priority(const char *s)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
	};

	if (!s || !*s)
		return -1;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	/* syslog's other spellings, as kmod accepts them */
	if (strcmp(s, "error") == 0)
		return LOG_ERR;
	if (strcmp(s, "warn") == 0)
		return LOG_WARNING;
	return -1;
}

void mk_log_init_env(struct mk_log *log)
{
	const char *v = secure_getenv(log->env);
	int prio = mk_log_parse_priority(v);

	if (prio < 0)
		return;
	atomic_store(&log->priority, prio);
	atomic_store(&log->to_stderr, 1);
}

void mk_log_set_fn(struct mk_log *log, mk_log_fn fn, void *userdata)
{
	int expected = 0;

	while (!atomic_compare_exchange_weak(&log->writer, &expected, 1))
		expected = 0;
	atomic_fetch_add_explicit(&log->seq, 1, memory_order_acq_rel);	/* odd: writing */
	atomic_store_explicit(&log->fn, fn, memory_order_relaxed);
	atomic_store_explicit(&log->userdata, userdata, memory_order_relaxed);
	atomic_fetch_add_explicit(&log->seq, 1, memory_order_release);	/* even: done */
	atomic_store_explicit(&log->writer, 0, memory_order_release);
}

void mk_log_set_priority(struct mk_log *log, int priority)
{
	if (priority < LOG_EMERG)
		priority = LOG_EMERG;
	if (priority > LOG_DEBUG)
		priority = LOG_DEBUG;
	atomic_store(&log->priority, priority);
}

int mk_log_get_priority(const struct mk_log *log)
{
	return atomic_load(&((struct mk_log *)log)->priority);
}

void mk_log_vemit(struct mk_log *log, int priority, const char *fmt, va_list ap)
{
	char line[MK_LOG_LINE_MAX];
	mk_log_fn fn = NULL;
	void *userdata = NULL;
	int got = 0;

	if (priority > atomic_load_explicit(&log->priority, memory_order_relaxed))
		return;
	for (int i = 0; i < READ_TRIES && !got; i++) {
		unsigned s = atomic_load_explicit(&log->seq, memory_order_acquire);

		if (s & 1)
			continue;
		fn = atomic_load_explicit(&log->fn, memory_order_relaxed);
		userdata = atomic_load_explicit(&log->userdata, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		got = atomic_load_explicit(&log->seq, memory_order_relaxed) == s;
	}
	if (!got)
		return;
	if (!fn && !atomic_load_explicit(&log->to_stderr, memory_order_relaxed))
		return;

	mk_vfmt(line, sizeof(line), fmt, ap);
	if (fn) {
		fn(userdata, priority, line);
		return;
	}

	/* The environment's opt-in: one write(2) per line, so concurrent lines do not interleave. */
	char out[MK_LOG_LINE_MAX + 64];
	int n = mk_fmt(out, sizeof(out), "%s: %s\n", log->name, line);

	if (n >= (int)sizeof(out)) {
		n = sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	(void)!mk_write(2, out, (size_t)n);
}

void mk_log_emit(struct mk_log *log, int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mk_log_vemit(log, priority, fmt, ap);
	va_end(ap);
}
