/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "common/macro.h"
#include "dax.h"

MK_EXPORT const char *dax_version(void)
{
	return LIBDAX_VERSION;
}
