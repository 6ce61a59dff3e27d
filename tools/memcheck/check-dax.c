/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"
#include "tools/memcheck/check.h"
void mc_check_dax(const struct mc_opts *o, struct mc_result *res) { mc_skip(res, "todo"); }
