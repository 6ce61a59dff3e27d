/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdax's log hook (common/log.h): silent by default; LIBDAX_LOG sets the
 * default threshold when the library is loaded. Every refusal path tells
 * why through it (which field, which value, which limit).
 */
#include "config.h"

#include "common/macro.h"
#include "daxP.h"

struct mk_log dax_log = MK_LOG_INIT("libdax", "LIBDAX_LOG");

__attribute__((constructor)) static void dax_log_ctor(void)
{
	mk_log_init_env(&dax_log);
}

MK_EXPORT void dax_set_log_fn(dax_log_fn fn, void *userdata)
{
	mk_log_set_fn(&dax_log, fn, userdata);
}

MK_EXPORT void dax_set_log_priority(int priority)
{
	mk_log_set_priority(&dax_log, priority);
}

MK_EXPORT int dax_get_log_priority(void)
{
	return mk_log_get_priority(&dax_log);
}
