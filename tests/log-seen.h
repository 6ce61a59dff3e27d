/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a library's log callback saw (the last message, how many): the log hook tests. */
#pragma once

#include <glib.h>

struct log_seen {
	int calls;
	int priority;
	char msg[512];          /* MK_LOG_LINE_MAX: the longest line a library logs */
};

/* A shma_log_fn / dax_log_fn / sbx_log_fn with userdata a struct log_seen. */
static inline void log_seen_record(void *userdata, int priority, const char *msg)
{
	struct log_seen *seen = userdata;

	seen->calls++;
	seen->priority = priority;
	g_strlcpy(seen->msg, msg, sizeof(seen->msg));
}
