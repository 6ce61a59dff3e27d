/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshm's log hook (common/log.h): silent by default; LIBSHM_LOG sets the
 * default threshold when the library is loaded. Refusals say why through
 * it (which file, which mode or owner, which handle field). Logging is
 * async-signal-safe, like the allocator paths that may log.
 */
#include "config.h"

#include "common/macro.h"
#include "shmP.h"

struct mk_log shma_log = MK_LOG_INIT("libshm", "LIBSHM_LOG");

__attribute__((constructor)) static void shma_log_ctor(void)
{
	mk_log_init_env(&shma_log);
}

MK_EXPORT void shma_set_log_fn(shma_log_fn fn, void *userdata)
{
	mk_log_set_fn(&shma_log, fn, userdata);
}

MK_EXPORT void shma_set_log_priority(int priority)
{
	mk_log_set_priority(&shma_log, priority);
}

MK_EXPORT int shma_get_log_priority(void)
{
	return mk_log_get_priority(&shma_log);
}
