/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libsandbox's log hook (sbx_set_log_fn(3)): common/log.c's mechanism with
 * the library's own state, its LIBSANDBOX_LOG variable read once at load.
 */
#include "config.h"

#include "common/log.h"
#include "common/macro.h"
#include "sandboxP.h"

struct mk_log sbx_log = MK_LOG_INIT("libsandbox", "LIBSANDBOX_LOG");

__attribute__((constructor)) static void sbx_log_init(void)
{
	mk_log_init_env(&sbx_log);
}

MK_EXPORT void sbx_set_log_fn(sbx_log_fn fn, void *userdata)
{
	mk_log_set_fn(&sbx_log, fn, userdata);
}

MK_EXPORT void sbx_set_log_priority(int priority)
{
	mk_log_set_priority(&sbx_log, priority);
}

MK_EXPORT int sbx_get_log_priority(void)
{
	return mk_log_get_priority(&sbx_log);
}
