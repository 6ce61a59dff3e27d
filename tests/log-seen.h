/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a library's log callback saw (the last message, how many): the log
 * hook tests. The callback may run on a library's own thread (libsandbox's
 * fault service): it records under a lock, and log_seen_read() reads so.
 */
#pragma once

#include <glib.h>

struct log_seen {
	GMutex lock;            /* zero-initialised: ready */
	int calls;
	int priority;
	char msg[512];          /* MK_LOG_LINE_MAX: the longest line a library logs */
};

/* A shma_log_fn / dax_log_fn / sbx_log_fn with userdata a struct log_seen. */
static inline void log_seen_record(void *userdata, int priority, const char *msg)
{
	struct log_seen *seen = userdata;

	g_mutex_lock(&seen->lock);
	seen->calls++;
	seen->priority = priority;
	g_strlcpy(seen->msg, msg, sizeof(seen->msg));
	g_mutex_unlock(&seen->lock);
}

/* How many calls so far, the last message into msg (cap bytes). */
static inline int log_seen_read(struct log_seen *seen, char *msg, size_t cap)
{
	int n;

	g_mutex_lock(&seen->lock);
	n = seen->calls;
	g_strlcpy(msg, seen->msg, cap);
	g_mutex_unlock(&seen->lock);
	return n;
}
