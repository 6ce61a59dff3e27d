/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "common/macro.h"
#include "sandbox.h"

MK_EXPORT const char *sbx_version(void)
{
	return LIBSANDBOX_VERSION;
}
