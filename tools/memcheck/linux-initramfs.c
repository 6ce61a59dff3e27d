/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest linux check: kernel selection and the initramfs (linux-initramfs.h). */
#include "config.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/memcheck/linux-initramfs.h"

#define KERNEL_DIR "/var/cache/memkit/kernels"

/* Does release r match selector s: equal, or s followed by '.' or '-'? */
static bool matches(const char *r, const char *s)
{
	size_t n = strlen(s);

	return !strcmp(r, s) || (!strncmp(r, s, n) && (r[n] == '.' || r[n] == '-'));
}

/* The release under d/lib/modules (the first directory holding modules.dep). */
static bool release_of(const char *d, char *rel, size_t len)
{
	g_autofree char *md = g_build_filename(d, "lib", "modules", NULL);
	GDir *dir = g_dir_open(md, 0, NULL);
	const char *name;
	bool found = false;

	if (!dir)
		return false;
	while (!found && (name = g_dir_read_name(dir))) {
		g_autofree char *dep = g_build_filename(md, name, "modules.dep", NULL);

		if (g_file_test(dep, G_FILE_TEST_IS_REGULAR)) {
			g_strlcpy(rel, name, len);
			found = true;
		}
	}
	g_dir_close(dir);
	return found;
}

static bool fill(struct lx_kernel *k, const char *d)
{
	g_autofree char *img = g_build_filename(d, "vmlinuz", NULL);

	if (!g_file_test(img, G_FILE_TEST_IS_REGULAR) || !release_of(d, k->release, sizeof(k->release)))
		return false;
	g_strlcpy(k->image, img, sizeof(k->image));
	g_strlcpy(k->base, d, sizeof(k->base));
	return true;
}

int lx_kernel_find(const char *sel, struct lx_kernel *k, char *why, size_t why_len)
{
	const char *root = g_getenv("MEMKIT_KERNEL_DIR");
	g_autoptr(GString) have = g_string_new("");
	struct lx_kernel cand;
	GDir *dir;
	const char *name;
	bool found = false;

	memset(k, 0, sizeof(*k));
	if (sel && strchr(sel, '/')) {
		if (fill(k, sel))
			return 0;
		snprintf(why, why_len, "%s: no vmlinuz and lib/modules/RELEASE there", sel);
		return -ENOENT;
	}
	if (!root || !*root)
		root = KERNEL_DIR;
	dir = g_dir_open(root, 0, NULL);
	while (dir && (name = g_dir_read_name(dir))) {
		g_autofree char *d = g_build_filename(root, name, NULL);

		if (!fill(&cand, d))
			continue;
		g_string_append_printf(have, " %s", cand.release);
		if (sel && !matches(cand.release, sel))
			continue;
		/* The newest match, by version order. */
		if (!found || strverscmp(cand.release, k->release) > 0) {
			*k = cand;
			found = true;
		}
	}
	if (dir)
		g_dir_close(dir);
	if (found)
		return 0;
	snprintf(why, why_len, "kernel %s not found in %s (have:%s; scripts/fetch-kernels.sh fetches them)",
		 sel ? sel : "(any)", root, have->len ? have->str : " none");
	return -ENOENT;
}

/* ---- cpio newc ------------------------------------------------------------ */

void lx_cpio_init(struct lx_cpio *c)
{
	memset(c, 0, sizeof(*c));
	c->ino = 1;
}

void lx_cpio_free(struct lx_cpio *c)
{
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

static int put(struct lx_cpio *c, const void *p, size_t n)
{
	if (c->len + n + 4 > c->cap) {
		size_t cap = MAX(c->cap * 2, c->len + n + 4 + (1u << 20));
		uint8_t *b = realloc(c->buf, cap);

		if (!b)
			return -ENOMEM;
		c->buf = b;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	while (c->len & 3)
		c->buf[c->len++] = 0;
	return 0;
}

static int entry(struct lx_cpio *c, const char *name, unsigned mode, unsigned rmaj, unsigned rmin,
		 const void *data, size_t len)
{
	char hdr[111];
	size_t nl = strlen(name) + 1;
	int r;

	/* Header and name are padded together to 4 bytes: 110 + namesize. */
	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 c->ino++, mode, 0u, 0u, 1u, 0u, (unsigned)len, 0u, 0u, rmaj, rmin, (unsigned)nl, 0u);
	if (c->len + 110 + nl + 4 > c->cap && (r = put(c, "", 0)) < 0)
		return r;
	{
		g_autofree char *hn = g_malloc(110 + nl);

		memcpy(hn, hdr, 110);
		memcpy(hn + 110, name, nl);
		r = put(c, hn, 110 + nl);
	}
	if (r >= 0 && len)
		r = put(c, data, len);
	return r;
}

int lx_cpio_dir(struct lx_cpio *c, const char *name)
{
	return entry(c, name, S_IFDIR | 0755, 0, 0, NULL, 0);
}

int lx_cpio_file(struct lx_cpio *c, const char *name, unsigned mode, const void *data, size_t len)
{
	return entry(c, name, S_IFREG | mode, 0, 0, data, len);
}

int lx_cpio_symlink(struct lx_cpio *c, const char *name, const char *target)
{
	return entry(c, name, S_IFLNK | 0777, 0, 0, target, strlen(target));
}

int lx_cpio_chardev(struct lx_cpio *c, const char *name, unsigned major, unsigned minor)
{
	return entry(c, name, S_IFCHR | 0600, major, minor, NULL, 0);
}

int lx_cpio_finish(struct lx_cpio *c)
{
	return entry(c, "TRAILER!!!", 0, 0, 0, NULL, 0);
}

/* ---- the base guest -------------------------------------------------------- */

/* A static executable: ELF without a PT_INTERP program header. */
static bool is_static_elf(const uint8_t *p, size_t len)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)p;

	if (len < sizeof(*eh) || memcmp(p, ELFMAG, SELFMAG) || p[EI_CLASS] != ELFCLASS64)
		return false;
	if (eh->e_phoff > len || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
		return false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(p + eh->e_phoff) + i;

		if (ph->p_type == PT_INTERP)
			return false;
	}
	return true;
}

/* Run argv (searched in PATH), capture its stdout (binary-safe; NUL-terminated too). */
void lx_rm_tree(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *n;

	while (d && (n = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, n, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			lx_rm_tree(p);
		else
			unlink(p);
	}
	if (d)
		g_dir_close(d);
	rmdir(dir);
}

bool lx_run_capture(const char *const *argv, char **out, size_t *out_len, char *why,
			size_t why_len)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GByteArray) buf = g_byte_array_new();
	GPid pid;
	gint fd = -1, status = 0;
	uint8_t chunk[65536];
	ssize_t n;

	if (!g_spawn_async_with_pipes(NULL, (gchar **)argv, NULL,
				      G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL |
				      G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL, &fd, NULL,
				      &err)) {
		snprintf(why, why_len, "%s: %s", argv[0], err->message);
		return false;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			g_byte_array_append(buf, chunk, (guint)n);
	close(fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	g_spawn_close_pid(pid);
	if (!g_spawn_check_wait_status(status, &err)) {
		snprintf(why, why_len, "%s %s: %s", argv[0], argv[1] ? argv[1] : "",
			 err->message);
		return false;
	}
	*out_len = buf->len;
	g_byte_array_append(buf, (const guint8 *)"", 1);
	*out = (char *)g_byte_array_free(g_steal_pointer(&buf), FALSE);
	return true;
}

int lx_initramfs_base(struct lx_cpio *c, const struct lx_kernel *k, const char *const *mods,
		      unsigned *nmods, char *why, size_t why_len)
{
	static const char *const busyboxes[] = { "/bin/busybox", "/usr/bin/busybox" };
	g_autoptr(GString) order = g_string_new("");
	g_autofree char *bb = NULL;
	gsize bb_len = 0;
	int r;

	*nmods = 0;
	for (unsigned i = 0; i < G_N_ELEMENTS(busyboxes) && !bb; i++) {
		if (g_file_get_contents(busyboxes[i], &bb, &bb_len, NULL) &&
		    !is_static_elf((const uint8_t *)bb, bb_len)) {
			g_free(bb);
			bb = NULL;
		}
	}
	if (!bb) {
		snprintf(why, why_len, "no static busybox (install busybox-static)");
		return -ENOENT;
	}
	r = lx_cpio_dir(c, "bin");
	if (r >= 0) r = lx_cpio_dir(c, "dev");
	if (r >= 0) r = lx_cpio_dir(c, "proc");
	if (r >= 0) r = lx_cpio_dir(c, "sys");
	if (r >= 0) r = lx_cpio_dir(c, "mnt");
	if (r >= 0) r = lx_cpio_dir(c, "etc");
	if (r >= 0) r = lx_cpio_dir(c, "tmp");
	if (r >= 0) r = lx_cpio_dir(c, "lib");
	if (r >= 0) r = lx_cpio_dir(c, "lib/mk");
	/* The kernel opens /dev/console for init before anything is mounted. */
	if (r >= 0) r = lx_cpio_chardev(c, "dev/console", 5, 1);
	if (r >= 0) r = lx_cpio_file(c, "bin/busybox", 0755, bb, bb_len);
	if (r >= 0) r = lx_cpio_symlink(c, "bin/sh", "busybox");
	if (r < 0)
		goto nomem;

	for (const char *const *m = mods; *m; m++) {
		g_autofree char *deps = NULL;
		g_auto(GStrv) lines = NULL;
		size_t dlen;
		const char *argv[] = { "modprobe", "-d", k->base, "-S", k->release, "--show-depends",
				       *m, NULL };

		if (!lx_run_capture(argv, &deps, &dlen, why, why_len))
			return -ENOENT;
		lines = g_strsplit(deps, "\n", -1);
		for (char **l = lines; *l; l++) {
			g_auto(GStrv) w = g_strsplit_set(*l, " \t", -1);
			g_autofree char *data = NULL, *base = NULL, *key = NULL;
			size_t len = 0;
			gsize glen = 0;

			if (!w[0] || strcmp(w[0], "insmod") || !w[1])
				continue;        /* "builtin NAME" or blank */
			base = g_path_get_basename(w[1]);
			if (g_str_has_suffix(base, ".xz") || g_str_has_suffix(base, ".zst") ||
			    g_str_has_suffix(base, ".gz")) {
				const char *tool = g_str_has_suffix(base, ".xz") ? "xz" :
						   g_str_has_suffix(base, ".zst") ? "zstd" : "gzip";
				const char *dargv[] = { tool, "-dc", w[1], NULL };

				*strrchr(base, '.') = '\0';
				if (!lx_run_capture(dargv, &data, &len, why, why_len))
					return -EIO;
			} else if (g_file_get_contents(w[1], &data, &glen, NULL)) {
				len = glen;
			} else {
				snprintf(why, why_len, "cannot read module %s", w[1]);
				return -EIO;
			}
			key = g_strdup_printf("\n%s\n", base);
			{
				g_autofree char *hay = g_strdup_printf("\n%s", order->str);

				if (strstr(hay, key))
					continue;  /* already there (shared dependency) */
			}
			{
				g_autofree char *path = g_strdup_printf("lib/mk/%s", base);

				r = lx_cpio_file(c, path, 0644, data, len);
			}
			if (r < 0)
				goto nomem;
			g_string_append_printf(order, "%s\n", base);
			(*nmods)++;
		}
	}
	r = lx_cpio_file(c, "lib/mk/order", 0644, order->str, order->len);
	if (r < 0)
		goto nomem;
	return 0;
nomem:
	snprintf(why, why_len, "initramfs: %s", strerror(-r));
	return r;
}
