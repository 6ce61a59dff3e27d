/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: failure reasons (err.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/err.h"

int vmm_fail(struct vmm_err *e, int err, const char *fmt, ...)
{
	va_list ap;

	if (!e || e->err)
		return err;
	e->err = err < 0 ? err : -EIO;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return err;
}

int vmm_fail_sys(struct vmm_err *e, int err, const char *what)
{
	return vmm_fail(e, err, "%s: %s", what, strerror(err < 0 ? -err : err));
}
