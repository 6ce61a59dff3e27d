/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Each library's three version records agree: what its version function
 * answers at run time, the Version of the pkg-config file that make install
 * puts beside it (generated from configure's LIBxxx_VERSION), and the
 * soname and file name of the shared object actually loaded, which libtool
 * derives from LIBxxx_LT_VERSION_INFO (current:revision:age gives
 * libxxx.so.C-A, file libxxx.so.C-A.A.R). The soname's major is the
 * version's major: an ABI break bumps both.
 */
#include "config.h"

#include <elf.h>
#include <glib.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dax.h"
#include "sandbox.h"
#include "shm.h"

struct lib {
	const char *name;
	const char *(*version)(void);
	const char *lt_info;       /* current:revision:age, as configure has it */
};

static const struct lib libs[] = {
	{ "libshm", shma_version, LIBSHM_LT_VERSION_INFO },
	{ "libdax", dax_version, LIBDAX_LT_VERSION_INFO },
	{ "libsandbox", sbx_version, LIBSANDBOX_LT_VERSION_INFO },
};

/* The Version: line of the build tree's NAME/NAME.pc (what make install installs). */
static char *pc_version(const char *name)
{
	g_autofree char *path = g_strdup_printf("%s/%s/%s.pc", MK_BUILDDIR, name, name);
	g_autofree char *text = NULL;
	g_autoptr(GError) err = NULL;

	if (!g_file_get_contents(path, &text, NULL, &err))
		g_error("%s: %s", path, err->message);
	for (char **l = g_strsplit(text, "\n", -1), **p = l; *p; p++)
		if (g_str_has_prefix(*p, "Version:")) {
			char *v = g_strdup(g_strstrip(*p + strlen("Version:")));
			g_strfreev(l);
			return v;
		}
	g_error("%s has no Version: line", path);
}

struct find {
	const char *name;   /* libshm */
	char *path;         /* where the loaded libshm.so... is */
	char *soname;
};

/*
 * DT_SONAME of the loaded object named NAME.so... (by its file name: an
 * address from dladdr() could be the executable's PLT entry).
 */
static int find_soname(struct dl_phdr_info *info, size_t size, void *data)
{
	struct find *f = data;
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t strtab = 0, soname = 0;
	bool have_soname = false;

	const char *base = strrchr(info->dlpi_name, '/');

	(void)size;
	base = base ? base + 1 : info->dlpi_name;
	if (!g_str_has_prefix(base, f->name) || !g_str_has_prefix(base + strlen(f->name), ".so"))
		return 0;
	f->path = g_strdup(info->dlpi_name);
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	g_assert_nonnull(dyn);
	for (; dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_STRTAB)
			strtab = dyn->d_un.d_ptr;
		else if (dyn->d_tag == DT_SONAME) {
			soname = dyn->d_un.d_val;
			have_soname = true;
		}
	}
	g_assert_true(have_soname);
	/* ld.so relocates DT_STRTAB in place on most targets, not on all. */
	if (strtab < info->dlpi_addr)
		strtab += info->dlpi_addr;
	f->soname = g_strdup((const char *)strtab + soname);
	return 1;
}

static void test_lib(gconstpointer data)
{
	const struct lib *l = data;
	const char *v = l->version();
	g_autofree char *pc = pc_version(l->name);
	g_autofree char *real = NULL, *want_soname = NULL, *want_file = NULL;
	unsigned cur, rev, age, vmajor;
	struct find f = { .name = l->name };

	g_assert_cmpstr(v, ==, pc);
	g_assert_cmpint(sscanf(l->lt_info, "%u:%u:%u", &cur, &rev, &age), ==, 3);
	g_assert_cmpuint(age, <=, cur);
	g_assert_cmpint(sscanf(v, "%u.", &vmajor), ==, 1);

	g_assert_cmpint(dl_iterate_phdr(find_soname, &f), ==, 1);
	want_soname = g_strdup_printf("%s.so.%u", l->name, cur - age);
	g_assert_cmpstr(f.soname, ==, want_soname);
	g_assert_cmpuint(cur - age, ==, vmajor);
	real = realpath(f.path, NULL);
	g_assert_nonnull(real);
	want_file = g_strdup_printf("%s.so.%u.%u.%u", l->name, cur - age, age, rev);
	g_assert_cmpstr(strrchr(real, '/') + 1, ==, want_file);
	g_test_message("%s %s: %s, %s", l->name, v, f.soname, want_file);
	g_free(f.soname);
	g_free(f.path);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(libs); i++) {
		g_autofree char *path = g_strdup_printf("/version/%s", libs[i].name);
		g_test_add_data_func(path, &libs[i], test_lib);
	}
	return g_test_run();
}
