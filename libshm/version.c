/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "common/macro.h"
#include "shm.h"

MK_EXPORT const char *shma_version(void)
{
	return LIBSHM_VERSION;
}
