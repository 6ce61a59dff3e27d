/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Each library answers its runtime version query with its own version. */
#include "config.h"

#include <glib.h>

#include "dax.h"
#include "sandbox.h"
#include "shm.h"

static void test_versions(void)
{
	g_assert_cmpstr(shma_version(), ==, LIBSHM_VERSION);
	g_assert_cmpstr(dax_version(), ==, LIBDAX_VERSION);
	g_assert_cmpstr(sbx_version(), ==, LIBSANDBOX_VERSION);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/version/all", test_versions);
	return g_test_run();
}
