/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shmctl: inspect and clean up libshm pools in a tmpfs directory.
 *
 *   shmctl [--dir DIR] list [--chunks] [-o COLS] [--noheadings] [--raw] [--bytes] [-J]
 *   shmctl [--dir DIR] stat POOL [-J]
 *   shmctl [--dir DIR] gc [--dry-run] [-J]
 *   shmctl [--dir DIR] rm POOL...
 *
 * Exit status: 0 success, 1 an operation failed (no such pool, a removal
 * failed, a damaged pool), 2 usage error, 77 never (no KVM involved; the
 * code is reserved for "KVM unavailable" in every memkit tool).
 *
 * Pools of other users: libshm only attaches files owned by the caller's
 * effective uid. Run as root, shmctl takes the pool owner's effective
 * uid and gid around each library call on that pool (and back), so root
 * inspects every pool read-only, and gc acts on a dead pool as its owner
 * would. Without root, other users' pools are listed as "foreign".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <libsmartcols.h>

#include "json-out.h"
#include "shm.h"
#include "tool-util.h"

#define EXIT_FAIL 1
#define EXIT_USAGE MK_EXIT_USAGE

static char *opt_dir = NULL, *opt_output = NULL;
static gboolean opt_json, opt_dry_run, opt_version, opt_noheadings, opt_raw, opt_bytes, opt_chunks;
static const char *prog = "shmctl";

static void err(const char *what, int r)
{
	g_autofree char *w = mk_text_escape(what);

	fprintf(stderr, "%s: %s: %s\n", prog, w, g_strerror(-r));
}

static const char *dir(void)
{
	return opt_dir ? opt_dir : SHMA_DIR_DEFAULT;
}

/* ---- acting as a pool's owner ------------------------------------------------------------ */

/*
 * Become uid/gid (effective ids only) if we are root and the pool is
 * someone else's; returns whether we did. Failing to, we stay root and
 * the library refuses the pool (-EPERM), which is reported.
 */
static bool become(uid_t uid, gid_t gid)
{
	if (geteuid() != 0 || uid == 0)
		return false;
	if (setegid(gid) < 0)
		return false;
	if (seteuid(uid) < 0) {
		if (setegid(0) < 0)
			abort();
		return false;
	}
	return true;
}

static void unbecome(bool became)
{
	/* going back to root cannot fail with the saved uid 0; if it did, stop */
	if (became && (seteuid(0) < 0 || setegid(0) < 0))
		abort();
}

/* ---- the directory ----------------------------------------------------------------------- */

struct pfile {
	char *fname;            /* directory entry */
	dev_t dev;
	ino_t ino;
	uint64_t bytes;         /* allocated (st_blocks) */
};

struct entry {
	char *name;             /* pool name (may be any bytes: from the directory) */
	bool valid_name;        /* libshm could have made it */
	bool has_root;
	uid_t uid;              /* owner of the root file (else of a chunk file) */
	gid_t gid;
	GArray *files;          /* struct pfile, the root file first if any */
	uint64_t file_bytes;
	/* filled by judge() */
	int r;                  /* attach/stat result */
	const char *state;
	struct shma_pool_stat st;
	GArray *chunks;         /* struct shma_chunk_stat */
};

static void entry_free(gpointer p)
{
	struct entry *e = p;

	for (guint i = 0; e->files && i < e->files->len; i++)
		g_free(g_array_index(e->files, struct pfile, i).fname);
	if (e->files)
		g_array_free(e->files, TRUE);
	if (e->chunks)
		g_array_free(e->chunks, TRUE);
	g_free(e->name);
	g_free(e);
}

static int cmp_entry(gconstpointer a, gconstpointer b)
{
	const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
	return strcmp(x->name, y->name);
}

/* The character set libshm accepts for pool names (and its length limit). */
static bool pool_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= SHMA_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!g_ascii_isalnum(*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

/* Pools (and orphan chunk files) found in the directory, sorted by name;
 * NULL (reported) if the directory cannot be read. */
static GPtrArray *scan(void)
{
	GHashTable *by = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *out = g_ptr_array_new_with_free_func(entry_free);
	size_t pl = strlen(SHMA_FILE_PREFIX);
	struct dirent *de;
	DIR *d = opendir(dir());

	if (!d) {
		err(dir(), -errno);
		g_hash_table_destroy(by);
		g_ptr_array_free(out, TRUE);
		return NULL;
	}
	while ((de = readdir(d))) {
		const char *f = de->d_name;
		g_autofree char *path = NULL;
		g_autofree char *pname = NULL;
		const char *dot;
		struct entry *en;
		struct pfile pf = { 0 };
		struct stat st;

		if (strncmp(f, SHMA_FILE_PREFIX, pl))
			continue;
		dot = strchr(f + pl, '.');
		pname = dot ? g_strndup(f + pl, (gsize)(dot - (f + pl))) : g_strdup(f + pl);
		if (!*pname)
			continue;
		path = g_build_filename(dir(), f, NULL);
		if (lstat(path, &st) < 0)
			continue;       /* gone since readdir */
		en = g_hash_table_lookup(by, pname);
		if (!en) {
			en = g_new0(struct entry, 1);
			en->name = g_strdup(pname);
			en->valid_name = pool_name_ok(pname);
			en->files = g_array_new(FALSE, TRUE, sizeof(struct pfile));
			en->uid = st.st_uid;
			en->gid = st.st_gid;
			g_hash_table_insert(by, en->name, en);
			g_ptr_array_add(out, en);
		}
		pf.fname = g_strdup(f);
		pf.dev = st.st_dev;
		pf.ino = st.st_ino;
		pf.bytes = (uint64_t)st.st_blocks * 512;
		en->file_bytes += pf.bytes;
		if (dot) {
			g_array_append_val(en->files, pf);
		} else {
			en->has_root = true;
			en->uid = st.st_uid;
			en->gid = st.st_gid;
			g_array_prepend_val(en->files, pf);
		}
	}
	closedir(d);
	g_hash_table_destroy(by);
	g_ptr_array_sort(out, cmp_entry);
	return out;
}

/*
 * Attach read-only (as the owner when root) and decide the pool's state:
 * alive (a user runs), dead (registered users all died), idle (no user),
 * orphan (chunk files without a root file), foreign (another user's and
 * we are not root), bad-name (not a name libshm makes: never touched),
 * damaged (attach or stat failed: reported, exit 1).
 */
static void judge(struct entry *en, bool want_chunks)
{
	struct shma_pool *p = NULL;
	bool became;

	memset(&en->st, 0, sizeof(en->st));
	if (!en->valid_name) {
		en->state = "bad-name";
		return;
	}
	if (!en->has_root) {
		en->state = "orphan";
		return;
	}
	if (en->uid != geteuid() && geteuid() != 0) {
		en->state = "foreign";
		return;
	}
	became = become(en->uid, en->gid);
	en->r = shma_pool_attach(opt_dir, en->name, SHMA_ATTACH_RDONLY, &p);
	if (en->r == 0)
		en->r = shma_pool_stat(p, &en->st);
	if (en->r == 0 && want_chunks) {
		en->chunks = g_array_new(FALSE, TRUE, sizeof(struct shma_chunk_stat));
		for (uint32_t idx = 0;; idx++) {
			struct shma_chunk_stat cs;
			int c = shma_pool_chunk_stat(p, idx, &cs);
			if (c == -ENOENT)
				break;
			if (c == 0)
				g_array_append_val(en->chunks, cs);
		}
	}
	shma_pool_free(p);
	unbecome(became);
	if (en->r < 0)
		en->state = "damaged";
	else if (en->st.users)
		en->state = "alive";
	else if (en->st.users_dead)
		en->state = "dead";
	else
		en->state = "idle";
}

static char *owner_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw ? g_strdup(pw->pw_name) : g_strdup_printf("%u", (unsigned)uid);
}

/* ---- list: columns ------------------------------------------------------------------------- */

enum col_kind { C_STR, C_NUM, C_BYTES };

struct col {
	const char *name;       /* --output name and heading */
	const char *json;       /* JSON member (memkit(7)) */
	enum col_kind kind;
	double whint;
	int flags;
	const char *help;
};

enum { COL_POOL, COL_STATE, COL_OWNER, COL_CHUNKS, COL_USERS, COL_DEAD, COL_SIZE, COL_USED,
       COL_FREE, COL_FILES, COL_DISK, COL_KIND, COL_PID };

static const struct col cols[] = {
	[COL_POOL] = { "POOL", "pool", C_STR, 0.2, SCOLS_FL_TREE, "pool name (chunk rows: #index)" },
	[COL_STATE] = { "STATE", "state", C_STR, 0.1, 0, "alive, idle, dead, orphan, foreign, bad-name, damaged; chunk rows: the creator alive or dead" },
	[COL_OWNER] = { "OWNER", "owner", C_STR, 0.1, 0, "user owning the pool's files" },
	[COL_CHUNKS] = { "CHUNKS", "chunks", C_NUM, 3, SCOLS_FL_RIGHT, "live chunks" },
	[COL_USERS] = { "USERS", "users", C_NUM, 3, SCOLS_FL_RIGHT, "attached processes alive" },
	[COL_DEAD] = { "DEAD", "users_dead", C_NUM, 3, SCOLS_FL_RIGHT, "registered processes that died attached" },
	[COL_SIZE] = { "SIZE", "mapped_bytes", C_BYTES, 5, SCOLS_FL_RIGHT, "bytes of live chunks (chunk rows: the chunk)" },
	[COL_USED] = { "USED", "used_bytes", C_BYTES, 5, SCOLS_FL_RIGHT, "bytes in allocated blocks (chunk rows: handed out)" },
	[COL_FREE] = { "FREE", "free_bytes", C_BYTES, 5, SCOLS_FL_RIGHT, "bytes in free blocks and unused chunk tails" },
	[COL_FILES] = { "FILES", "files", C_NUM, 3, SCOLS_FL_RIGHT, "files in the directory" },
	[COL_DISK] = { "DISK", "file_bytes", C_BYTES, 5, SCOLS_FL_RIGHT, "bytes the files occupy (allocated blocks)" },
	[COL_KIND] = { "KIND", "kind", C_STR, 0.1, 0, "chunk rows: regular or dedicated" },
	[COL_PID] = { "PID", "owner_pid", C_NUM, 5, SCOLS_FL_RIGHT, "chunk rows: the creating process" },
};

static const int default_cols[] = { COL_POOL, COL_STATE, COL_OWNER, COL_CHUNKS, COL_USERS, COL_DEAD,
				    COL_SIZE, COL_USED };

static int sel[G_N_ELEMENTS(cols)];
static size_t nsel;

static int parse_columns(const char *list)
{
	g_auto(GStrv) names = NULL;
	const char *l = list;

	nsel = 0;
	if (!l) {
		for (size_t i = 0; i < G_N_ELEMENTS(default_cols); i++)
			sel[nsel++] = default_cols[i];
		return 0;
	}
	/* "+LIST" appends to the defaults, as in util-linux */
	if (*l == '+') {
		for (size_t i = 0; i < G_N_ELEMENTS(default_cols); i++)
			sel[nsel++] = default_cols[i];
		l++;
	}
	names = g_strsplit(l, ",", 0);
	for (size_t i = 0; names[i]; i++) {
		size_t c;
		for (c = 0; c < G_N_ELEMENTS(cols) && g_ascii_strcasecmp(names[i], cols[c].name); c++)
			;
		if (c == G_N_ELEMENTS(cols)) {
			g_autofree char *e = mk_text_escape(names[i]);
			mk_usage_error(prog, prog, "--output: unknown column '%s'", e);
			return -1;
		}
		if (nsel == G_N_ELEMENTS(sel)) {
			mk_usage_error(prog, prog, "--output: too many columns");
			return -1;
		}
		sel[nsel++] = (int)c;
	}
	return 0;
}

/* Human sizes as util-linux prints them: 1023B, 1K, 1.5M ... (binary). */
static char *human(uint64_t b)
{
	static const char units[] = "BKMGTPE";
	unsigned u = 0;
	uint64_t whole = b, frac = 0;

	while (whole >= 1024 && u < sizeof(units) - 2) {
		frac = whole % 1024;
		whole /= 1024;
		u++;
	}
	/* one decimal, rounded, dropped when 0 */
	frac = (frac * 10 + 512) / 1024;
	if (frac == 10) {
		whole++;
		frac = 0;
	}
	if (!u)
		return g_strdup_printf("%" PRIu64 "B", whole);
	if (frac)
		return g_strdup_printf("%" PRIu64 ".%" PRIu64 "%c", whole, frac, units[u]);
	return g_strdup_printf("%" PRIu64 "%c", whole, units[u]);
}

/* A cell value: str for C_STR, num otherwise; have = false for "no value". */
struct val {
	bool have;
	const char *str;
	uint64_t num;
};

static struct val pool_val(const struct entry *en, const char *owner, int c)
{
	bool st = en->r == 0 && en->has_root && en->valid_name && strcmp(en->state, "foreign");
	struct val v = { true, NULL, 0 };

	switch (c) {
	case COL_POOL: v.str = en->name; break;
	case COL_STATE: v.str = en->state; break;
	case COL_OWNER: v.str = owner; break;
	case COL_CHUNKS: v.num = en->st.chunks; v.have = st; break;
	case COL_USERS: v.num = en->st.users; v.have = st; break;
	case COL_DEAD: v.num = en->st.users_dead; v.have = st; break;
	case COL_SIZE: v.num = en->st.mapped_bytes; v.have = st; break;
	case COL_USED: v.num = en->st.used_bytes; v.have = st; break;
	case COL_FREE: v.num = en->st.free_bytes; v.have = st; break;
	case COL_FILES: v.num = en->files->len; break;
	case COL_DISK: v.num = en->file_bytes; break;
	default: v.have = false; break;
	}
	return v;
}

static struct val chunk_val(const struct shma_chunk_stat *cs, const char *label, int c)
{
	struct val v = { true, NULL, 0 };

	switch (c) {
	case COL_POOL: v.str = label; break;
	case COL_STATE: v.str = cs->owner_alive ? "alive" : "dead"; break;
	case COL_SIZE: v.num = cs->size; break;
	case COL_USED: v.num = cs->used; break;
	case COL_KIND: v.str = cs->dedicated ? "dedicated" : "regular"; break;
	case COL_PID: v.num = (uint64_t)(int64_t)cs->owner_pid; break;
	default: v.have = false; break;
	}
	return v;
}

static void json_val(struct jw *w, int c, struct val v)
{
	if (!v.have)
		jw_null(w, cols[c].json);
	else if (cols[c].kind == C_STR)
		jw_string(w, cols[c].json, v.str);
	else
		jw_u64(w, cols[c].json, v.num);
}

static void scols_val(struct libscols_line *ln, size_t i, int c, struct val v)
{
	char *s;

	if (!v.have)
		return;
	if (cols[c].kind == C_STR)
		s = g_strdup(v.str);
	else if (cols[c].kind == C_BYTES && !opt_bytes)
		s = human(v.num);
	else
		s = g_strdup_printf("%" PRIu64, v.num);
	/* scols encodes control characters and invalid multibyte sequences as \x.. */
	scols_line_refer_data(ln, i, s);
}

/* ---- list ---------------------------------------------------------------------------------- */

static int cmd_list(void)
{
	struct libscols_table *tb = NULL;
	int status = 0;
	GPtrArray *ents = scan();
	struct jw w;

	if (!ents)
		return EXIT_FAIL;
	if (opt_json) {
		jw_begin_document(&w);
		jw_string(&w, "dir", dir());
		jw_array_begin(&w, "pools");
	} else {
		tb = scols_new_table();
		if (!tb) {
			err("libsmartcols", -ENOMEM);
			g_ptr_array_free(ents, TRUE);
			return EXIT_FAIL;
		}
		scols_table_enable_noheadings(tb, opt_noheadings);
		scols_table_enable_raw(tb, opt_raw);
		for (size_t i = 0; i < nsel; i++) {
			int fl = cols[sel[i]].flags;
			if (!opt_chunks || opt_raw)
				fl &= ~SCOLS_FL_TREE;
			if (!scols_table_new_column(tb, cols[sel[i]].name, cols[sel[i]].whint, fl)) {
				err("libsmartcols", -ENOMEM);
				scols_unref_table(tb);
				g_ptr_array_free(ents, TRUE);
				return EXIT_FAIL;
			}
		}
	}
	for (guint i = 0; i < ents->len; i++) {
		struct entry *en = ents->pdata[i];
		g_autofree char *owner = NULL;
		struct libscols_line *ln = NULL;

		judge(en, opt_chunks);
		owner = owner_name(en->uid);
		if (opt_json) {
			jw_object_begin(&w, NULL);
			for (size_t k = 0; k < nsel; k++)
				json_val(&w, sel[k], pool_val(en, owner, sel[k]));
			if (opt_chunks) {
				jw_array_begin(&w, "chunk_list");
				for (guint k = 0; en->chunks && k < en->chunks->len; k++) {
					const struct shma_chunk_stat *cs =
						&g_array_index(en->chunks, struct shma_chunk_stat, k);
					jw_object_begin(&w, NULL);
					jw_u64(&w, "index", cs->index);
					jw_string(&w, "kind", cs->dedicated ? "dedicated" : "regular");
					jw_i64(&w, "owner_pid", cs->owner_pid);
					jw_bool(&w, "owner_alive", cs->owner_alive);
					jw_u64(&w, "size_bytes", cs->size);
					jw_u64(&w, "used_bytes", cs->used);
					jw_object_end(&w);
				}
				jw_array_end(&w);
			}
			jw_object_end(&w);
		} else {
			ln = scols_table_new_line(tb, NULL);
			for (size_t k = 0; ln && k < nsel; k++)
				scols_val(ln, k, sel[k], pool_val(en, owner, sel[k]));
			for (guint k = 0; ln && en->chunks && k < en->chunks->len; k++) {
				const struct shma_chunk_stat *cs =
					&g_array_index(en->chunks, struct shma_chunk_stat, k);
				g_autofree char *label = g_strdup_printf("#%u", cs->index);
				struct libscols_line *cl = scols_table_new_line(tb, opt_raw ? NULL : ln);
				for (size_t c = 0; cl && c < nsel; c++)
					scols_val(cl, c, sel[c], chunk_val(cs, label, sel[c]));
			}
		}
		if (en->r < 0) {
			err(en->name, en->r);
			status = EXIT_FAIL;
		}
	}
	if (opt_json) {
		g_autofree char *text = NULL;
		jw_array_end(&w);
		text = jw_end_document(&w);
		fputs(text, stdout);
	} else {
		scols_print_table(tb);
		scols_unref_table(tb);
	}
	g_ptr_array_free(ents, TRUE);
	return status;
}

/* ---- stat ----------------------------------------------------------------------------------- */

static int cmd_stat(const char *name)
{
	struct shma_pool *p = NULL;
	struct shma_pool_stat st;
	g_autofree char *root = g_strdup_printf("%s/%s%s", dir(), SHMA_FILE_PREFIX, name);
	g_autofree char *ename = mk_text_escape(name);
	struct stat fst;
	bool became = false;
	int r;

	/* as root, stat another user's pool as that user (read-only) */
	if (pool_name_ok(name) && lstat(root, &fst) == 0)
		became = become(fst.st_uid, fst.st_gid);
	r = shma_pool_attach(opt_dir, name, SHMA_ATTACH_RDONLY, &p);
	if (r == 0)
		r = shma_pool_stat(p, &st);
	shma_pool_free(p);
	unbecome(became);
	if (r < 0) {
		err(name, r);
		return EXIT_FAIL;
	}
	if (opt_json) {
		struct jw w;
		g_autofree char *text = NULL;

		jw_begin_document(&w);
		jw_string(&w, "dir", dir());
		jw_string(&w, "pool", name);
		jw_u64(&w, "chunk_bytes", st.chunk_size);
		jw_u64(&w, "chunks", st.chunks);
		jw_u64(&w, "max_chunks", st.max_chunks);
		jw_u64(&w, "mapped_bytes", st.mapped_bytes);
		jw_u64(&w, "used_bytes", st.used_bytes);
		jw_u64(&w, "free_bytes", st.free_bytes);
		jw_u64(&w, "blocks_used", st.blocks_used);
		jw_u64(&w, "blocks_free", st.blocks_free);
		jw_u64(&w, "users", st.users);
		jw_u64(&w, "users_dead", st.users_dead);
		jw_array_begin(&w, "classes");
		for (unsigned c = 0; c < st.nclasses; c++) {
			if (!st.class_used[c] && !st.class_free[c])
				continue;
			jw_object_begin(&w, NULL);
			jw_u64(&w, "block_bytes", st.class_size[c]);
			jw_u64(&w, "blocks_used", st.class_used[c]);
			jw_u64(&w, "blocks_free", st.class_free[c]);
			jw_object_end(&w);
		}
		jw_array_end(&w);
		text = jw_end_document(&w);
		fputs(text, stdout);
	} else {
		printf("pool        %s\n", ename);
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
	return 0;
}

/* ---- gc ---------------------------------------------------------------------------------------- */

/*
 * Remove exactly the files scan() found for en, each only if the name
 * still holds the same file (dev/ino): a file created since (a newer
 * pool or chunk under the same name) stays. The root file goes first so
 * no process attaches to the dead pool while its chunks go. Returns 0 or
 * the first error; *bytes and *files count what was removed.
 */
static int remove_scanned(const struct entry *en, uint64_t *bytes, unsigned *files)
{
	int dfd = open(dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	*bytes = 0;
	*files = 0;
	if (dfd < 0)
		return -errno;
	for (guint i = 0; i < en->files->len; i++) {
		const struct pfile *pf = &g_array_index(en->files, struct pfile, i);
		struct stat st;

		if (fstatat(dfd, pf->fname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && !r)
				r = -errno;
			continue;
		}
		if (st.st_dev != pf->dev || st.st_ino != pf->ino)
			continue;
		if (unlinkat(dfd, pf->fname, 0) < 0) {
			if (errno != ENOENT && !r)
				r = -errno;
			continue;
		}
		*bytes += pf->bytes;
		(*files)++;
	}
	close(dfd);
	return r;
}

/* Is the root file still the one scan() saw? */
static bool same_root(const struct entry *en)
{
	const struct pfile *pf = &g_array_index(en->files, struct pfile, 0);
	g_autofree char *path = g_build_filename(dir(), pf->fname, NULL);
	struct stat st;

	return lstat(path, &st) == 0 && st.st_dev == pf->dev && st.st_ino == pf->ino;
}

/*
 * MEMKIT_SHMCTL_GC_PAUSE=MS: wait between judging a pool dead and judging
 * it again for removal, so tests/shmctl.sh can replace or revive the pool
 * in that window and see gc leave it alone (shmctl(1), ENVIRONMENT).
 */
static void pause_for_tests(void)
{
	const char *e = getenv("MEMKIT_SHMCTL_GC_PAUSE");
	uint64_t ms;

	if (e && mk_parse_u64(e, &ms) && ms <= 60000)
		g_usleep((gulong)(ms * 1000));
}

static int cmd_gc(void)
{
	int status = 0;
	GPtrArray *ents = scan();
	struct jw w;

	if (!ents)
		return EXIT_FAIL;
	if (opt_json) {
		jw_begin_document(&w);
		jw_string(&w, "dir", dir());
		jw_bool(&w, "dry_run", opt_dry_run);
		jw_array_begin(&w, "actions");
	}
	for (guint i = 0; i < ents->len; i++) {
		struct entry *en = ents->pdata[i];
		g_autofree char *ename = NULL;
		const char *action = NULL, *why = NULL, *result = opt_dry_run ? "planned" : "done";
		uint64_t bytes = 0;
		unsigned files = 0;
		int64_t blocks = -1;
		bool became;
		int r = 0;

		judge(en, false);
		if (!strcmp(en->state, "orphan")) {
			action = "remove";
			why = "chunk files without a pool";
		} else if (!strcmp(en->state, "dead")) {
			action = "remove";
			why = "every process that used it is dead";
		} else if (!strcmp(en->state, "alive") && en->st.users_dead) {
			action = "reclaim";
			why = "some processes died attached";
		} else if (!strcmp(en->state, "damaged")) {
			err(en->name, en->r);
			status = EXIT_FAIL;
		}
		if (!action)
			continue;
		ename = mk_text_escape(en->name);
		if (!strcmp(action, "remove")) {
			for (guint k = 0; k < en->files->len; k++)
				bytes += g_array_index(en->files, struct pfile, k).bytes;
			files = en->files->len;
		}
		if (!opt_dry_run && !strcmp(action, "remove")) {
			/* judged again right before removal: same root file, still dead
			 * (or, for orphans, still without a root file) */
			struct entry again = *en;

			pause_for_tests();
			if (en->has_root) {
				again.chunks = NULL;
				judge(&again, false);
				if (!same_root(en) || strcmp(again.state, "dead")) {
					result = "skipped";
					why = "changed since it was judged";
				}
			} else {
				g_autofree char *rp = g_strdup_printf("%s/%s%s", dir(), SHMA_FILE_PREFIX, en->name);
				struct stat st;
				if (lstat(rp, &st) == 0) {
					result = "skipped";
					why = "a pool of that name appeared";
				}
			}
			if (!strcmp(result, "done")) {
				became = become(en->uid, en->gid);
				r = remove_scanned(en, &bytes, &files);
				unbecome(became);
			} else {
				bytes = 0;
				files = 0;
			}
		} else if (!opt_dry_run) {
			struct shma_pool *p = NULL;
			struct shma_pool_stat before = { 0 }, after = { 0 };

			became = become(en->uid, en->gid);
			r = shma_pool_attach(opt_dir, en->name, 0, &p);
			if (r == 0)
				r = shma_pool_stat(p, &before);
			if (r == 0)
				r = shma_pool_reclaim(p);
			if (r >= 0) {
				blocks = r;
				r = shma_pool_stat(p, &after);
			}
			shma_pool_free(p);
			unbecome(became);
			/* bytes the dead processes' blocks held (others may allocate meanwhile) */
			bytes = before.used_bytes > after.used_bytes ? before.used_bytes - after.used_bytes : 0;
		}
		if (r < 0) {
			err(en->name, r);
			status = EXIT_FAIL;
			result = "failed";
		}
		if (opt_json) {
			jw_object_begin(&w, NULL);
			jw_string(&w, "pool", en->name);
			jw_string(&w, "action", action);
			jw_string(&w, "result", result);
			jw_string(&w, "reason", why);
			if (!strcmp(action, "remove")) {
				jw_u64(&w, "files", files);
				jw_u64(&w, "file_bytes", bytes);
			} else {
				jw_u64(&w, "users_dead", en->st.users_dead);
				if (blocks >= 0) {
					jw_u64(&w, "blocks_freed", (uint64_t)blocks);
					jw_u64(&w, "freed_bytes", bytes);
				} else {
					jw_null(&w, "blocks_freed");
					jw_null(&w, "freed_bytes");
				}
			}
			jw_object_end(&w);
		} else if (!strcmp(result, "skipped")) {
			printf("skipped %s (%s)\n", ename, why);
		} else if (!strcmp(action, "remove")) {
			printf("%s %s (%s, %u files, %" PRIu64 " bytes)\n",
			       opt_dry_run ? "would remove" : r < 0 ? "failed to remove" : "removed", ename,
			       why, files, bytes);
		} else if (opt_dry_run) {
			printf("would reclaim in %s (%s: %u dead)\n", ename, why, en->st.users_dead);
		} else if (r >= 0) {
			printf("reclaimed %" PRId64 " blocks (%" PRIu64 " bytes) in %s (%s)\n", blocks, bytes,
			       ename, why);
		}
	}
	if (opt_json) {
		g_autofree char *text = NULL;
		jw_array_end(&w);
		text = jw_end_document(&w);
		fputs(text, stdout);
	}
	g_ptr_array_free(ents, TRUE);
	return status;
}

/* ---- rm ----------------------------------------------------------------------------------------- */

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

/* ---- main ----------------------------------------------------------------------------------------- */

static int usage_error(GOptionContext *ctx, const char *msg)
{
	g_autofree char *m = mk_text_escape(msg);

	g_option_context_free(ctx);
	return mk_usage_error(prog, prog, "%s", m);
}

int main(int argc, char **argv)
{
	g_auto(GStrv) args = NULL;
	GOptionEntry entries[] = {
		{ "dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt_dir,
		  "Pool directory (default " SHMA_DIR_DEFAULT ")", "DIR" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON (list, stat, gc)", NULL },
		{ "dry-run", 'n', 0, G_OPTION_ARG_NONE, &opt_dry_run,
		  "gc: only say what would be done", NULL },
		{ "output", 'o', 0, G_OPTION_ARG_STRING, &opt_output,
		  "list: columns to print (+LIST adds to the default)", "LIST" },
		{ "noheadings", 0, 0, G_OPTION_ARG_NONE, &opt_noheadings, "list: no heading line", NULL },
		{ "raw", 'r', 0, G_OPTION_ARG_NONE, &opt_raw, "list: raw output (no alignment)", NULL },
		{ "bytes", 'b', 0, G_OPTION_ARG_NONE, &opt_bytes, "list: sizes in bytes, not 1.5M", NULL },
		{ "chunks", 'c', 0, G_OPTION_ARG_NONE, &opt_chunks, "list: a row per chunk under its pool", NULL },
		{ "version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
		{ G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &args, NULL, NULL },
		{ NULL }
	};
	GOptionContext *ctx;
	GError *e = NULL;
	GString *desc;
	const char *cmd;
	int n, r;

	mk_tool_init(prog);
	ctx = g_option_context_new("COMMAND [ARGS] - manage libshm pools");
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_summary(ctx,
		"Commands:\n"
		"  list          pools (and with --chunks their chunks): state, owner, users, sizes\n"
		"  stat POOL     bytes in use and free, per-class counts, chunks\n"
		"  gc            remove pools whose processes all died and orphan chunk files,\n"
		"                reclaim blocks of dead processes in live pools\n"
		"  rm POOL...    remove pools' files");
	desc = g_string_new("Columns for list --output:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(cols); i++)
		g_string_append_printf(desc, "  %-7s %s\n", cols[i].name, cols[i].help);
	g_string_append(desc, "\nExit status: 0 success, 1 an operation failed, 2 usage error. See shmctl(1).");
	g_option_context_set_description(ctx, desc->str);
	g_string_free(desc, TRUE);
	if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
		g_autofree char *m = g_strdup(e->message);
		g_error_free(e);
		return usage_error(ctx, m);
	}
	if (opt_version) {
		g_autofree char *libs = g_strdup_printf("libshm %s", shma_version());
		g_autofree char *sc = NULL;
		const char *v = NULL;
		scols_get_library_version(&v);
		sc = g_strdup_printf("libsmartcols %s", v ? v : "?");
		mk_print_version(prog, libs, sc);
		g_option_context_free(ctx);
		return 0;
	}
	n = args ? (int)g_strv_length(args) : 0;
	if (n < 1)
		return usage_error(ctx, "missing command");
	cmd = args[0];
	if (opt_dry_run && strcmp(cmd, "gc"))
		return usage_error(ctx, "--dry-run only applies to gc");
	if (opt_json && !strcmp(cmd, "rm"))
		return usage_error(ctx, "--json does not apply to rm (it prints nothing)");
	if ((opt_output || opt_noheadings || opt_raw || opt_bytes || opt_chunks) && strcmp(cmd, "list"))
		return usage_error(ctx, "--output, --noheadings, --raw, --bytes and --chunks only apply to list");
	if (parse_columns(opt_output) < 0) {
		g_option_context_free(ctx);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "list")) {
		if (n != 1)
			return usage_error(ctx, "list takes no arguments");
		r = cmd_list();
	} else if (!strcmp(cmd, "stat")) {
		if (n != 2)
			return usage_error(ctx, "stat needs exactly one POOL");
		r = cmd_stat(args[1]);
	} else if (!strcmp(cmd, "gc")) {
		if (n != 1)
			return usage_error(ctx, "gc takes no arguments");
		r = cmd_gc();
	} else if (!strcmp(cmd, "rm")) {
		if (n < 2)
			return usage_error(ctx, "rm needs at least one POOL");
		r = cmd_rm(n - 1, args + 1);
	} else {
		g_autofree char *m = g_strdup_printf("unknown command '%s'", cmd);
		return usage_error(ctx, m);
	}
	g_option_context_free(ctx);
	return r;
}
