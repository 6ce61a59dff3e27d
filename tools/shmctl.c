/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shmctl: inspect and clean up libshm pools in a tmpfs directory.
 *
 *   shmctl [--dir DIR] list [--json]
 *   shmctl [--dir DIR] stat POOL [--json]
 *   shmctl [--dir DIR] gc [--dry-run] [--json]
 *   shmctl [--dir DIR] rm POOL...
 *
 * Exit status: 0 success, 1 an operation failed (no such pool, a removal
 * failed, a damaged pool), 2 usage error.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "shm.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static char *opt_dir = NULL;
static gboolean opt_json, opt_dry_run, opt_version;
static const char *prog = "shmctl";

static void err(const char *what, int r)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, g_strerror(-r));
}

static const char *dir(void)
{
	return opt_dir ? opt_dir : SHMA_DIR_DEFAULT;
}

/* ---- the directory --------------------------------------------------------------------- */

struct entry {
	char *name;             /* pool name */
	gboolean has_root;
	unsigned chunk_files;
	uint64_t bytes;         /* of all its files */
};

static void entry_free(gpointer p)
{
	struct entry *e = p;
	g_free(e->name);
	g_free(e);
}

static int cmp_entry(gconstpointer a, gconstpointer b)
{
	const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
	return strcmp(x->name, y->name);
}

/* Pools (and orphan chunk files) found in the directory, sorted by name;
 * NULL (reported) if the directory cannot be read. */
static GPtrArray *scan(void)
{
	GHashTable *by = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *out = g_ptr_array_new_with_free_func(entry_free);
	size_t pl = strlen(SHMA_FILE_PREFIX);
	GError *e = NULL;
	const char *f;
	GDir *d = g_dir_open(dir(), 0, &e);

	if (!d) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir(), e->message);
		g_error_free(e);
		g_hash_table_destroy(by);
		g_ptr_array_free(out, TRUE);
		return NULL;
	}
	while ((f = g_dir_read_name(d))) {
		g_autofree char *path = NULL;
		g_autofree char *pname = NULL;
		const char *dot;
		struct entry *en;
		struct stat st;

		if (strncmp(f, SHMA_FILE_PREFIX, pl))
			continue;
		dot = strchr(f + pl, '.');
		pname = dot ? g_strndup(f + pl, (gsize)(dot - (f + pl))) : g_strdup(f + pl);
		if (!*pname)
			continue;
		en = g_hash_table_lookup(by, pname);
		if (!en) {
			en = g_new0(struct entry, 1);
			en->name = g_strdup(pname);
			g_hash_table_insert(by, en->name, en);
			g_ptr_array_add(out, en);
		}
		if (dot)
			en->chunk_files++;
		else
			en->has_root = TRUE;
		path = g_build_filename(dir(), f, NULL);
		if (lstat(path, &st) == 0)
			en->bytes += (uint64_t)st.st_blocks * 512;
	}
	g_dir_close(d);
	g_hash_table_destroy(by);
	g_ptr_array_sort(out, cmp_entry);
	return out;
}

/* ---- list ---------------------------------------------------------------------------- */

static int cmd_list(void)
{
	int status = 0;
	GPtrArray *ents = scan();

	if (!ents)
		return EXIT_FAIL;
	if (opt_json)
		printf("{\"dir\": \"%s\", \"pools\": [", dir());
	else
		printf("%-24s %6s %5s %5s %12s %12s  %s\n", "POOL", "CHUNKS", "USERS", "DEAD",
		       "SIZE", "USED", "STATE");
	for (guint i = 0; i < ents->len; i++) {
		struct entry *en = ents->pdata[i];
		struct shma_pool *p = NULL;
		struct shma_pool_stat st = { 0 };
		const char *state;
		int r = en->has_root ? shma_pool_attach(opt_dir, en->name, SHMA_ATTACH_RDONLY, &p)
				     : -ENOENT;

		if (r == 0)
			r = shma_pool_stat(p, &st);
		if (!en->has_root)
			state = "orphan";
		else if (r < 0)
			state = "damaged";
		else if (st.users)
			state = "alive";
		else if (st.users_dead)
			state = "dead";
		else
			state = "idle";
		if (opt_json) {
			printf("%s\n  {\"name\": \"%s\", \"state\": \"%s\", \"files\": %u, "
			       "\"file_bytes\": %" PRIu64 ", \"chunks\": %u, \"users\": %u, "
			       "\"users_dead\": %u, \"size\": %" PRIu64 ", \"used\": %" PRIu64
			       ", \"chunk_list\": [", i ? "," : "", en->name, state,
			       en->chunk_files + (en->has_root ? 1 : 0), en->bytes, st.chunks, st.users,
			       st.users_dead, st.mapped_bytes, st.used_bytes);
		} else {
			printf("%-24s %6u %5u %5u %12" PRIu64 " %12" PRIu64 "  %s\n", en->name,
			       r == 0 ? st.chunks : en->chunk_files, st.users, st.users_dead,
			       r == 0 ? st.mapped_bytes : en->bytes, st.used_bytes, state);
		}
		if (p) {
			unsigned n = 0;
			for (uint32_t idx = 0;; idx++) {
				struct shma_chunk_stat cs;
				int c = shma_pool_chunk_stat(p, idx, &cs);
				if (c == -ENOENT)
					break;
				if (c < 0)
					continue;
				if (opt_json)
					printf("%s\n    {\"index\": %u, \"gen\": %u, \"dedicated\": %s, "
					       "\"owner_pid\": %d, \"owner_alive\": %s, \"size\": %" PRIu64
					       ", \"used\": %" PRIu64 "}", n ? "," : "", cs.index, cs.gen,
					       cs.dedicated ? "true" : "false", cs.owner_pid,
					       cs.owner_alive ? "true" : "false", cs.size, cs.used);
				else
					printf("  chunk %-5u %-9s owner %-7d %-5s %12" PRIu64 " %12" PRIu64 "\n",
					       cs.index, cs.dedicated ? "dedicated" : "regular", cs.owner_pid,
					       cs.owner_alive ? "alive" : "dead", cs.size, cs.used);
				n++;
			}
			shma_pool_free(p);
		}
		if (opt_json)
			printf("]}");
		if (en->has_root && r < 0) {
			g_autofree char *what = g_strdup_printf("%s", en->name);
			err(what, r);
			status = EXIT_FAIL;
		}
	}
	if (opt_json)
		printf("%s]}\n", ents->len ? "\n" : "");
	g_ptr_array_free(ents, TRUE);
	return status;
}

/* ---- stat ----------------------------------------------------------------------------- */

static int cmd_stat(const char *name)
{
	struct shma_pool *p = NULL;
	struct shma_pool_stat st;
	int r = shma_pool_attach(opt_dir, name, SHMA_ATTACH_RDONLY, &p);

	if (r == 0)
		r = shma_pool_stat(p, &st);
	if (r < 0) {
		err(name, r);
		shma_pool_free(p);
		return EXIT_FAIL;
	}
	if (opt_json) {
		printf("{\"name\": \"%s\", \"chunk_size\": %" PRIu64 ", \"chunks\": %u, "
		       "\"max_chunks\": %u, \"mapped\": %" PRIu64 ", \"used\": %" PRIu64
		       ", \"free\": %" PRIu64 ", \"blocks_used\": %" PRIu64 ", \"blocks_free\": %" PRIu64
		       ", \"users\": %u, \"users_dead\": %u, \"classes\": [",
		       name, st.chunk_size, st.chunks, st.max_chunks, st.mapped_bytes, st.used_bytes,
		       st.free_bytes, st.blocks_used, st.blocks_free, st.users, st.users_dead);
		for (unsigned c = 0, n = 0; c < st.nclasses; c++) {
			if (!st.class_used[c] && !st.class_free[c])
				continue;
			printf("%s\n  {\"size\": %u, \"used\": %" PRIu64 ", \"free\": %" PRIu64 "}",
			       n++ ? "," : "", st.class_size[c], st.class_used[c], st.class_free[c]);
		}
		printf("]}\n");
	} else {
		printf("pool        %s\n", name);
		printf("chunk size  %" PRIu64 "\n", st.chunk_size);
		printf("chunks      %u of %u\n", st.chunks, st.max_chunks);
		printf("mapped      %" PRIu64 " bytes\n", st.mapped_bytes);
		printf("in use      %" PRIu64 " bytes in %" PRIu64 " blocks\n", st.used_bytes,
		       st.blocks_used);
		printf("free        %" PRIu64 " bytes (%" PRIu64 " free blocks)\n", st.free_bytes,
		       st.blocks_free);
		printf("users       %u alive, %u dead\n", st.users, st.users_dead);
		printf("%10s %10s %10s\n", "CLASS", "USED", "FREE");
		for (unsigned c = 0; c < st.nclasses; c++)
			if (st.class_used[c] || st.class_free[c])
				printf("%10u %10" PRIu64 " %10" PRIu64 "\n", st.class_size[c],
				       st.class_used[c], st.class_free[c]);
	}
	shma_pool_free(p);
	return 0;
}

/* ---- gc -------------------------------------------------------------------------------- */

static int cmd_gc(void)
{
	int status = 0, n = 0;
	GPtrArray *ents = scan();

	if (!ents)
		return EXIT_FAIL;
	if (opt_json)
		printf("{\"dry_run\": %s, \"actions\": [", opt_dry_run ? "true" : "false");
	for (guint i = 0; i < ents->len; i++) {
		struct entry *en = ents->pdata[i];
		struct shma_pool *p = NULL;
		struct shma_pool_stat st = { 0 };
		const char *action = NULL, *why = NULL;
		int reclaimed = 0, r = 0;

		if (!en->has_root) {
			action = "remove";
			why = "orphan chunk files";
		} else {
			r = shma_pool_attach(opt_dir, en->name, SHMA_ATTACH_RDONLY, &p);
			if (r == 0)
				r = shma_pool_stat(p, &st);
			shma_pool_free(p);
			p = NULL;
			if (r < 0) {
				err(en->name, r);
				status = EXIT_FAIL;
				continue;
			}
			if (!st.users && st.users_dead) {
				action = "remove";
				why = "every process that used it is dead";
			} else if (st.users && st.users_dead) {
				action = "reclaim";
				why = "some processes died";
			}
		}
		if (!action)
			continue;
		if (!opt_dry_run) {
			if (!strcmp(action, "remove")) {
				r = shma_pool_remove(opt_dir, en->name);
			} else {
				r = shma_pool_attach(opt_dir, en->name, 0, &p);
				if (r == 0) {
					r = reclaimed = shma_pool_reclaim(p);
					shma_pool_free(p);
				}
			}
			if (r < 0) {
				err(en->name, r);
				status = EXIT_FAIL;
				continue;
			}
		}
		if (opt_json)
			printf("%s\n  {\"pool\": \"%s\", \"action\": \"%s\", \"reason\": \"%s\", "
			       "\"bytes\": %" PRIu64 ", \"blocks_reclaimed\": %d}", n ? "," : "",
			       en->name, action, why, en->bytes, reclaimed);
		else if (!strcmp(action, "remove"))
			printf("%s %s (%s, %" PRIu64 " bytes)\n",
			       opt_dry_run ? "would remove" : "removed", en->name, why, en->bytes);
		else if (opt_dry_run)
			printf("would reclaim in %s (%s)\n", en->name, why);
		else
			printf("reclaimed %d blocks in %s (%s)\n", reclaimed, en->name, why);
		n++;
	}
	if (opt_json)
		printf("%s]}\n", n ? "\n" : "");
	g_ptr_array_free(ents, TRUE);
	return status;
}

/* ---- rm -------------------------------------------------------------------------------- */

static int cmd_rm(int argc, char **argv)
{
	int status = 0;

	for (int i = 0; i < argc; i++) {
		int r = shma_pool_remove(opt_dir, argv[i]);
		if (r < 0) {
			err(argv[i], r);
			status = EXIT_FAIL;
		}
	}
	return status;
}

/* ---- main ------------------------------------------------------------------------------ */

static int usage_error(GOptionContext *ctx, const char *msg)
{
	fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", prog, msg, prog);
	g_option_context_free(ctx);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	GOptionEntry entries[] = {
		{ "dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt_dir,
		  "Pool directory (default " SHMA_DIR_DEFAULT ")", "DIR" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON (list, stat, gc)", NULL },
		{ "dry-run", 'n', 0, G_OPTION_ARG_NONE, &opt_dry_run,
		  "gc: only say what would be done", NULL },
		{ "version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
		{ NULL }
	};
	GOptionContext *ctx = g_option_context_new("COMMAND [ARGS] - manage libshm pools");
	GError *e = NULL;
	const char *cmd;
	int r;

	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_summary(ctx,
		"Commands:\n"
		"  list          pools and their chunks: owner, alive?, size, used\n"
		"  stat POOL     bytes in use and free, per-class counts, chunks\n"
		"  gc            remove pools whose processes all died and orphan chunk files,\n"
		"                reclaim blocks of dead processes in live pools\n"
		"  rm POOL...    remove pools' files");
	g_option_context_set_description(ctx,
		"Exit status: 0 success, 1 an operation failed, 2 usage error.");
	if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
		fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", prog, e->message, prog);
		g_error_free(e);
		g_option_context_free(ctx);
		return EXIT_USAGE;
	}
	if (opt_version) {
		printf("shmctl (memkit) %s, libshm %s\n", PACKAGE_VERSION, shma_version());
		g_option_context_free(ctx);
		return 0;
	}
	if (argc < 2)
		return usage_error(ctx, "missing command");
	cmd = argv[1];
	if (opt_dry_run && strcmp(cmd, "gc"))
		return usage_error(ctx, "--dry-run only applies to gc");
	if (opt_json && !strcmp(cmd, "rm"))
		return usage_error(ctx, "--json does not apply to rm (it prints nothing)");
	if (!strcmp(cmd, "list")) {
		if (argc != 2)
			return usage_error(ctx, "list takes no arguments");
		r = cmd_list();
	} else if (!strcmp(cmd, "stat")) {
		if (argc != 3)
			return usage_error(ctx, "stat needs exactly one POOL");
		r = cmd_stat(argv[2]);
	} else if (!strcmp(cmd, "gc")) {
		if (argc != 2)
			return usage_error(ctx, "gc takes no arguments");
		r = cmd_gc();
	} else if (!strcmp(cmd, "rm")) {
		if (argc < 3)
			return usage_error(ctx, "rm needs at least one POOL");
		r = cmd_rm(argc - 2, argv + 2);
	} else {
		g_autofree char *m = g_strdup_printf("unknown command '%s'", cmd);
		return usage_error(ctx, m);
	}
	g_option_context_free(ctx);
	return r;
}
