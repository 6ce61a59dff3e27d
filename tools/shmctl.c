/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shmctl: inspect and clean up libshm pools: the named pools of a tmpfs
 * directory and, found through /proc/PID/fd as util-linux's lsfd finds
 * open files, the memfd pools of the processes we may inspect
 * (shmctl-procs.c), each with the processes that hold it.
 *
 *   shmctl [--dir DIR] [--pid LIST] list [--chunks] [-o COLS] [--noheadings] [--raw] [--bytes] [-J]
 *   shmctl [--dir DIR] [--pid LIST] stat POOL [-J]
 *   shmctl [--dir DIR] [--pid LIST] gc [--dry-run] [-J]
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
#include "shmctl.h"
#include "tool-util.h"

#define EXIT_FAIL 1
#define EXIT_USAGE MK_EXIT_USAGE

static char *opt_dir = NULL, *opt_output = NULL, *opt_pid = NULL;
static gboolean opt_json, opt_dry_run, opt_version, opt_noheadings, opt_raw, opt_bytes, opt_chunks;
static const char *prog = "shmctl";
static GArray *pids;            /* --pid: int, or NULL for every process */
static struct shm_procs procs;  /* who holds what, read once */

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
	char *fname;            /* directory entry; memfd pools: the memfd name */
	dev_t dev;
	ino_t ino;
	uint64_t bytes;         /* allocated (st_blocks) */
	const struct shm_held *held;    /* a memfd pool's file: where it can be opened */
};

struct entry {
	char *name;             /* pool name (may be any bytes: from the directory) */
	bool memfd;             /* a memfd pool (from /proc), else a named one in dir() */
	bool valid_name;        /* libshm could have made it */
	bool has_root;
	uid_t uid;              /* owner of the root file (else of a chunk file) */
	gid_t gid;
	GArray *files;          /* struct pfile, the root file first if any */
	uint64_t file_bytes;
	GArray *holders;        /* struct shm_holder (comm owned by procs), by pid */
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
	if (e->holders)
		g_array_free(e->holders, TRUE);
	g_free(e->name);
	g_free(e);
}

static struct entry *entry_new(const char *name, bool memfd, uid_t uid, gid_t gid)
{
	struct entry *en = g_new0(struct entry, 1);

	en->name = g_strdup(name);
	en->memfd = memfd;
	en->uid = uid;
	en->gid = gid;
	en->files = g_array_new(FALSE, TRUE, sizeof(struct pfile));
	en->holders = g_array_new(FALSE, TRUE, sizeof(struct shm_holder));
	return en;
}

static void entry_add_file(struct entry *en, const char *fname, dev_t dev, ino_t ino, uint64_t bytes,
			   const struct shm_held *held, bool root)
{
	struct pfile pf = { g_strdup(fname), dev, ino, bytes, held };

	en->file_bytes += bytes;
	if (root) {
		en->has_root = true;
		g_array_prepend_val(en->files, pf);
	} else {
		g_array_append_val(en->files, pf);
	}
}

/* By name; a named pool before memfd pools of the same name, those by inode. */
static int cmp_entry(gconstpointer a, gconstpointer b)
{
	const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
	int c = strcmp(x->name, y->name);
	ino_t xi, yi;

	if (c || x->memfd != y->memfd)
		return c ? c : x->memfd - y->memfd;
	xi = x->files->len ? g_array_index(x->files, struct pfile, 0).ino : 0;
	yi = y->files->len ? g_array_index(y->files, struct pfile, 0).ino : 0;
	return xi < yi ? -1 : xi > yi;
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

/* The named pools (and orphan chunk files) of the directory into out;
 * false (reported) if it cannot be read. */
static bool scan_dir(GPtrArray *out)
{
	GHashTable *by = g_hash_table_new(g_str_hash, g_str_equal);
	size_t pl = strlen(SHMA_FILE_PREFIX);
	struct dirent *de;
	DIR *d = opendir(dir());

	if (!d) {
		err(dir(), -errno);
		g_hash_table_destroy(by);
		return false;
	}
	while ((de = readdir(d))) {
		const char *f = de->d_name;
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
		path = g_build_filename(dir(), f, NULL);
		if (lstat(path, &st) < 0)
			continue;       /* gone since readdir */
		en = g_hash_table_lookup(by, pname);
		if (!en) {
			en = entry_new(pname, false, st.st_uid, st.st_gid);
			en->valid_name = pool_name_ok(pname);
			g_hash_table_insert(by, en->name, en);
			g_ptr_array_add(out, en);
		}
		if (!dot) {
			en->uid = st.st_uid;
			en->gid = st.st_gid;
		}
		entry_add_file(en, f, st.st_dev, st.st_ino, (uint64_t)st.st_blocks * 512, NULL, !dot);
	}
	closedir(d);
	g_hash_table_destroy(by);
	return true;
}

/*
 * The memfd pools the processes hold: a memfd named "memkit-shm:NAME" is
 * a root, "memkit-shm:NAME.INDEX" a chunk of some pool of that name (which
 * one, judge() learns from libshm: a chunk of another pool is refused).
 */
static void scan_memfds(GPtrArray *out)
{
	for (guint i = 0; i < procs.memfds->len; i++) {
		const struct shm_held *root = procs.memfds->pdata[i];
		struct entry *en;
		size_t nl;

		if (strchr(root->memfd, '.'))
			continue;
		en = entry_new(root->memfd, true, root->uid, root->gid);
		en->valid_name = pool_name_ok(root->memfd);
		entry_add_file(en, root->memfd, root->dev, root->ino, root->bytes, root, true);
		nl = strlen(root->memfd);
		for (guint k = 0; k < procs.memfds->len; k++) {
			const struct shm_held *c = procs.memfds->pdata[k];

			if (!strncmp(c->memfd, root->memfd, nl) && c->memfd[nl] == '.')
				entry_add_file(en, c->memfd, c->dev, c->ino, c->bytes, c, false);
		}
		g_ptr_array_add(out, en);
	}
}

/*
 * Every pool: those of the directory, and without --dir the memfd pools of
 * the processes; NULL (reported) if the directory cannot be read. Says
 * once when processes could not be looked at.
 */
static GPtrArray *collect(void)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(entry_free);

	shm_procs_scan(&procs);
	if (!scan_dir(out)) {
		g_ptr_array_free(out, TRUE);
		return NULL;
	}
	if (!opt_dir)
		scan_memfds(out);
	if (procs.denied)
		fprintf(stderr, "%s: the open files of %u %s are not readable without root: "
			"pools only they hold are not shown\n", prog, procs.denied,
			mk_plural(procs.denied, "process", "processes"));
	g_ptr_array_sort(out, cmp_entry);
	return out;
}

/* The processes holding any of the pool's files (after judge(): a memfd
 * pool's own chunks only). */
static void find_holders(struct entry *en)
{
	g_array_set_size(en->holders, 0);
	for (guint i = 0; i < en->files->len; i++) {
		const struct pfile *pf = &g_array_index(en->files, struct pfile, i);
		const struct shm_held *h = pf->held ? pf->held : shm_procs_find(&procs, pf->dev, pf->ino);

		if (h)
			shm_holders_merge(en->holders, h->holders);
	}
}

/* Held by a process --pid names (always, without --pid). */
static bool wanted(const struct entry *en)
{
	if (!pids)
		return true;
	for (guint i = 0; i < pids->len; i++)
		for (guint k = 0; k < en->holders->len; k++)
			if (g_array_index(en->holders, struct shm_holder, k).pid == g_array_index(pids, int, i))
				return true;
	return false;
}

/*
 * Open a memfd pool's files through their holders: fds[0] the root, then
 * each chunk still there (index i into en->files in idx[]). 0, or -errno
 * for the root (the pool went away, or no permission).
 */
static int open_memfd_files(const struct entry *en, bool rw, GArray *fds, GArray *idx)
{
	for (guint i = 0; i < en->files->len; i++) {
		int fd = shm_held_open(g_array_index(en->files, struct pfile, i).held, rw);

		if (fd < 0) {
			if (i == 0)
				return fd;
			continue;       /* a chunk closed meanwhile */
		}
		g_array_append_val(fds, fd);
		g_array_append_val(idx, i);
	}
	return 0;
}

static void close_fds(GArray *fds)
{
	for (guint i = 0; i < fds->len; i++)
		close(g_array_index(fds, int, i));
	g_array_free(fds, TRUE);
}

/*
 * Attach a memfd pool from its opened files. Read-only: the root, then
 * each chunk imported on its own, and en->files keeps the chunks libshm
 * took (a same-named memfd of another pool is refused); read-write: all
 * at once (registering may reclaim dead users, which needs every chunk).
 */
static int attach_memfd(struct entry *en, GArray *fds, GArray *idx, unsigned flags,
			struct shma_pool **out)
{
	struct shma_pool *p = NULL;
	bool rdonly = flags & SHMA_ATTACH_RDONLY;
	int r = shma_pool_attach_fds(&g_array_index(fds, int, 0), rdonly ? 1 : fds->len, flags, &p);

	if (r == 0 && strcmp(shma_pool_name(p), en->name))
		r = -EBADMSG;   /* the memfd's name is not the pool's */
	if (r == 0 && rdonly) {
		GArray *kept = g_array_new(FALSE, TRUE, sizeof(struct pfile));

		en->file_bytes = 0;
		for (guint i = 0, k = 0; i < en->files->len; i++) {
			struct pfile *pf = &g_array_index(en->files, struct pfile, i);
			bool keep = i == 0;

			for (; !keep && k < idx->len && g_array_index(idx, guint, k) <= i; k++)
				if (g_array_index(idx, guint, k) == i)
					keep = shma_pool_import_fd(p, g_array_index(fds, int, k)) == 0;
			if (keep) {
				g_array_append_val(kept, *pf);
				en->file_bytes += pf->bytes;
			} else {
				g_free(pf->fname);
			}
		}
		g_array_free(en->files, TRUE);
		en->files = kept;
	}
	if (r < 0)
		shma_pool_free(p);
	else
		*out = p;
	return r;
}

/* Attach en (read-only, or read-write for gc): as its owner when we are root. */
static int attach_entry(struct entry *en, unsigned flags, struct shma_pool **p)
{
	GArray *fds = g_array_new(FALSE, FALSE, sizeof(int));
	GArray *idx = g_array_new(FALSE, FALSE, sizeof(guint));
	bool became;
	int r = 0;

	/* /proc/PID/fd as ourselves (root may open every process's), the library as the owner */
	if (en->memfd)
		r = open_memfd_files(en, !(flags & SHMA_ATTACH_RDONLY), fds, idx);
	became = become(en->uid, en->gid);
	if (r == 0)
		r = en->memfd ? attach_memfd(en, fds, idx, flags, p) :
				shma_pool_attach(opt_dir, en->name, flags, p);
	unbecome(became);
	close_fds(fds);
	g_array_free(idx, TRUE);
	return r;
}

/*
 * Attach read-only (as the owner when root) and decide the pool's state:
 * alive (a user runs), dead (registered users all died), idle (no user),
 * orphan (chunk files without a root file), foreign (another user's and
 * we are not root), bad-name (not a name libshm makes: never touched),
 * damaged (attach or stat failed: reported, exit 1). Then who holds it.
 */
static void judge(struct entry *en, bool want_chunks)
{
	struct shma_pool *p = NULL;
	bool became;

	en->st = (struct shma_pool_stat){ .size = sizeof(en->st) };
	en->r = 0;
	en->state = !en->valid_name ? "bad-name" : !en->has_root ? "orphan" :
		    en->uid != geteuid() && geteuid() != 0 ? "foreign" : NULL;
	if (en->state) {
		find_holders(en);
		return;
	}
	en->r = attach_entry(en, SHMA_ATTACH_RDONLY, &p);
	became = become(en->uid, en->gid);
	if (en->r == 0)
		en->r = shma_pool_stat(p, &en->st);
	if (en->r == 0 && want_chunks) {
		en->chunks = g_array_new(FALSE, TRUE, sizeof(struct shma_chunk_stat));
		for (uint32_t idx = 0;; idx++) {
			struct shma_chunk_stat cs = { .size = sizeof(cs) };
			int c = shma_pool_chunk_stat(p, idx, &cs);
			if (c == -ENOENT)
				break;
			if (c == 0)
				g_array_append_val(en->chunks, cs);
		}
	}
	shma_pool_free(p);
	unbecome(became);
	find_holders(en);
	if (en->r < 0)
		en->state = "damaged";
	else if (en->st.users)
		en->state = "alive";
	else if (en->st.users_dead)
		en->state = "dead";
	else
		en->state = "idle";
}

/* collect(), judge() each, and keep those --pid wants. */
static GPtrArray *gather(bool want_chunks)
{
	GPtrArray *ents = collect();

	if (!ents)
		return NULL;
	for (guint i = 0; i < ents->len;) {
		judge(ents->pdata[i], want_chunks);
		if (wanted(ents->pdata[i]))
			i++;
		else
			g_ptr_array_remove_index(ents, i);
	}
	return ents;
}

static char *owner_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw ? g_strdup(pw->pw_name) : g_strdup_printf("%u", (unsigned)uid);
}

/* ---- list: columns ------------------------------------------------------------------------- */

enum col_kind { C_STR, C_NUM, C_BYTES, C_HOLDERS };

struct col {
	const char *name;       /* --output name and heading */
	const char *json;       /* JSON member (memkit(7)) */
	enum col_kind kind;
	double whint;
	int flags;
	const char *help;
};

enum { COL_POOL, COL_BACKEND, COL_STATE, COL_OWNER, COL_CHUNKS, COL_USERS, COL_DEAD, COL_SIZE,
       COL_USED, COL_FREE, COL_FILES, COL_DISK, COL_HOLDERS, COL_KIND, COL_PID };

static const struct col cols[] = {
	[COL_POOL] = { "POOL", "pool", C_STR, 0.2, SCOLS_FL_TREE, "pool name (chunk rows: #index)" },
	[COL_BACKEND] = { "BACKEND", "backend", C_STR, 0.1, 0, "shm (files in the directory) or memfd (held by processes)" },
	[COL_STATE] = { "STATE", "state", C_STR, 0.1, 0, "alive, idle, dead, orphan, foreign, bad-name, damaged; chunk rows: the creator alive or dead" },
	[COL_OWNER] = { "OWNER", "owner", C_STR, 0.1, 0, "user owning the pool's files" },
	[COL_CHUNKS] = { "CHUNKS", "chunks", C_NUM, 3, SCOLS_FL_RIGHT, "live chunks" },
	[COL_USERS] = { "USERS", "users", C_NUM, 3, SCOLS_FL_RIGHT, "attached processes alive" },
	[COL_DEAD] = { "DEAD", "users_dead", C_NUM, 3, SCOLS_FL_RIGHT, "registered processes that died attached" },
	[COL_SIZE] = { "SIZE", "mapped_bytes", C_BYTES, 5, SCOLS_FL_RIGHT, "bytes of live chunks (chunk rows: the chunk)" },
	[COL_USED] = { "USED", "used_bytes", C_BYTES, 5, SCOLS_FL_RIGHT, "bytes in allocated blocks (chunk rows: handed out)" },
	[COL_FREE] = { "FREE", "free_bytes", C_BYTES, 5, SCOLS_FL_RIGHT, "bytes in free blocks and unused chunk tails" },
	[COL_FILES] = { "FILES", "files", C_NUM, 3, SCOLS_FL_RIGHT, "the pool's files (memfds for a memfd pool)" },
	[COL_DISK] = { "DISK", "file_bytes", C_BYTES, 5, SCOLS_FL_RIGHT, "bytes the files occupy (allocated blocks)" },
	[COL_HOLDERS] = { "HOLDERS", "holders", C_HOLDERS, 0.2, 0, "processes holding the pool's files open: PID,COMMAND,FD each" },
	[COL_KIND] = { "KIND", "kind", C_STR, 0.1, 0, "chunk rows: regular or dedicated" },
	[COL_PID] = { "PID", "owner_pid", C_NUM, 5, SCOLS_FL_RIGHT, "chunk rows: the creating process" },
};

static const int default_cols[] = { COL_POOL, COL_BACKEND, COL_STATE, COL_OWNER, COL_CHUNKS, COL_USERS,
				    COL_DEAD, COL_SIZE, COL_USED, COL_HOLDERS };

static int sel[2 * G_N_ELEMENTS(cols)];
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

/* A cell value: str for C_STR, holders for C_HOLDERS, num otherwise; have = false for "no value". */
struct val {
	bool have;
	const char *str;
	uint64_t num;
	const GArray *holders;
};

static const char *backend_name(const struct entry *en)
{
	return en->memfd ? "memfd" : "shm";
}

static struct val pool_val(const struct entry *en, const char *owner, int c)
{
	bool st = en->r == 0 && en->has_root && en->valid_name && strcmp(en->state, "foreign");
	struct val v = { true, NULL, 0, NULL };

	switch (c) {
	case COL_POOL: v.str = en->name; break;
	case COL_BACKEND: v.str = backend_name(en); break;
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
	case COL_HOLDERS: v.holders = en->holders; break;
	default: v.have = false; break;
	}
	return v;
}

static struct val chunk_val(const struct shma_chunk_stat *cs, const char *label, int c)
{
	struct val v = { true, NULL, 0, NULL };

	switch (c) {
	case COL_POOL: v.str = label; break;
	case COL_STATE: v.str = cs->owner_alive ? "alive" : "dead"; break;
	case COL_SIZE: v.num = cs->len; break;
	case COL_USED: v.num = cs->used; break;
	case COL_KIND: v.str = cs->dedicated ? "dedicated" : "regular"; break;
	case COL_PID: v.num = (uint64_t)(int64_t)cs->owner_pid; break;
	default: v.have = false; break;
	}
	return v;
}

static void json_holders(struct jw *w, const char *key, const GArray *holders)
{
	jw_array_begin(w, key);
	for (guint i = 0; i < holders->len; i++) {
		const struct shm_holder *h = &g_array_index(holders, struct shm_holder, i);

		jw_object_begin(w, NULL);
		jw_i64(w, "pid", h->pid);
		jw_string(w, "command", h->comm);
		jw_i64(w, "fd", h->fd);
		jw_object_end(w);
	}
	jw_array_end(w);
}

/* "PID,COMMAND,FD" for each holder, as lsfd's ENDPOINTS; the separator between them is sep. */
static char *holders_text(const GArray *holders, const char *sep)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < holders->len; i++) {
		const struct shm_holder *h = &g_array_index(holders, struct shm_holder, i);

		g_string_append_printf(s, "%s%d,%s,%d", i ? sep : "", h->pid, h->comm, h->fd);
	}
	return g_string_free(s, FALSE);
}

static void json_val(struct jw *w, int c, struct val v)
{
	if (!v.have)
		jw_null(w, cols[c].json);
	else if (cols[c].kind == C_HOLDERS)
		json_holders(w, cols[c].json, v.holders);
	else if (cols[c].kind == C_STR)
		jw_string(w, cols[c].json, v.str);
	else
		jw_u64(w, cols[c].json, v.num);
}

static void scols_val(struct libscols_line *ln, size_t i, int c, struct val v)
{
	char *s = NULL;

	if (!v.have)
		;
	else if (cols[c].kind == C_HOLDERS)
		s = holders_text(v.holders, " ");
	else if (cols[c].kind == C_STR)
		s = g_strdup(v.str);
	else if (cols[c].kind == C_BYTES && !opt_bytes)
		s = human(v.num);
	else
		s = g_strdup_printf("%" PRIu64, v.num);
	/* raw output never leaves a cell empty (the columns would shift): "-", as util-linux */
	if ((!s || !*s) && opt_raw) {
		g_free(s);
		s = g_strdup("-");
	}
	/* scols encodes control characters and invalid multibyte sequences as \x.. */
	if (s)
		scols_line_refer_data(ln, i, s);
}

/* ---- list ---------------------------------------------------------------------------------- */

static void list_json_pool(struct jw *w, const struct entry *en, const char *owner)
{
	jw_object_begin(w, NULL);
	for (size_t k = 0; k < nsel; k++)
		json_val(w, sel[k], pool_val(en, owner, sel[k]));
	if (opt_chunks) {
		jw_array_begin(w, "chunk_list");
		for (guint k = 0; en->chunks && k < en->chunks->len; k++) {
			const struct shma_chunk_stat *cs = &g_array_index(en->chunks, struct shma_chunk_stat, k);

			jw_object_begin(w, NULL);
			jw_u64(w, "index", cs->index);
			jw_string(w, "kind", cs->dedicated ? "dedicated" : "regular");
			jw_i64(w, "owner_pid", cs->owner_pid);
			jw_bool(w, "owner_alive", cs->owner_alive);
			jw_u64(w, "size_bytes", cs->len);
			jw_u64(w, "used_bytes", cs->used);
			jw_object_end(w);
		}
		jw_array_end(w);
	}
	jw_object_end(w);
}

static void list_table_pool(struct libscols_table *tb, const struct entry *en, const char *owner)
{
	struct libscols_line *ln = scols_table_new_line(tb, NULL);

	for (size_t k = 0; ln && k < nsel; k++)
		scols_val(ln, k, sel[k], pool_val(en, owner, sel[k]));
	for (guint k = 0; ln && en->chunks && k < en->chunks->len; k++) {
		const struct shma_chunk_stat *cs = &g_array_index(en->chunks, struct shma_chunk_stat, k);
		g_autofree char *label = g_strdup_printf("#%u", cs->index);
		struct libscols_line *cl = scols_table_new_line(tb, opt_raw ? NULL : ln);

		for (size_t c = 0; cl && c < nsel; c++)
			scols_val(cl, c, sel[c], chunk_val(cs, label, sel[c]));
	}
}

static struct libscols_table *list_table_new(void)
{
	struct libscols_table *tb = scols_new_table();

	if (!tb)
		return NULL;
	scols_table_enable_noheadings(tb, opt_noheadings);
	scols_table_enable_raw(tb, opt_raw);
	for (size_t i = 0; i < nsel; i++) {
		int fl = cols[sel[i]].flags;

		if (!opt_chunks || opt_raw)
			fl &= ~SCOLS_FL_TREE;
		if (!scols_table_new_column(tb, cols[sel[i]].name, cols[sel[i]].whint, fl)) {
			scols_unref_table(tb);
			return NULL;
		}
	}
	return tb;
}

/* libsmartcols prints nothing for a table without lines: the heading, as it would. */
static void list_print_table(struct libscols_table *tb)
{
	if (scols_table_get_nlines(tb) || opt_noheadings) {
		scols_print_table(tb);
		return;
	}
	for (size_t i = 0; i < nsel; i++)
		printf("%s%s", i ? " " : "", cols[sel[i]].name);
	putchar('\n');
}

static int cmd_list(void)
{
	struct libscols_table *tb = NULL;
	int status = 0;
	GPtrArray *ents = gather(opt_chunks);
	struct jw w;

	if (!ents)
		return EXIT_FAIL;
	if (opt_json) {
		jw_begin_document(&w);
		jw_string(&w, "dir", dir());
		jw_array_begin(&w, "pools");
	} else if (!(tb = list_table_new())) {
		err("libsmartcols", -ENOMEM);
		g_ptr_array_free(ents, TRUE);
		return EXIT_FAIL;
	}
	for (guint i = 0; i < ents->len; i++) {
		struct entry *en = ents->pdata[i];
		g_autofree char *owner = owner_name(en->uid);

		if (opt_json)
			list_json_pool(&w, en, owner);
		else
			list_table_pool(tb, en, owner);
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
		list_print_table(tb);
		scols_unref_table(tb);
	}
	g_ptr_array_free(ents, TRUE);
	return status;
}

/* ---- stat ----------------------------------------------------------------------------------- */

static void stat_json(const struct entry *en)
{
	const struct shma_pool_stat *st = &en->st;
	g_autofree char *text = NULL;
	struct jw w;

	jw_begin_document(&w);
	jw_string(&w, "dir", dir());
	jw_string(&w, "pool", en->name);
	jw_string(&w, "backend", backend_name(en));
	jw_u64(&w, "chunk_bytes", st->chunk_size);
	jw_u64(&w, "chunks", st->chunks);
	jw_u64(&w, "max_chunks", st->max_chunks);
	jw_u64(&w, "mapped_bytes", st->mapped_bytes);
	jw_u64(&w, "used_bytes", st->used_bytes);
	jw_u64(&w, "free_bytes", st->free_bytes);
	jw_u64(&w, "blocks_used", st->blocks_used);
	jw_u64(&w, "blocks_free", st->blocks_free);
	jw_u64(&w, "users", st->users);
	jw_u64(&w, "users_dead", st->users_dead);
	json_holders(&w, "holders", en->holders);
	jw_array_begin(&w, "classes");
	for (unsigned c = 0; c < st->nclasses; c++) {
		if (!st->class_used[c] && !st->class_free[c])
			continue;
		jw_object_begin(&w, NULL);
		jw_u64(&w, "block_bytes", st->class_size[c]);
		jw_u64(&w, "blocks_used", st->class_used[c]);
		jw_u64(&w, "blocks_free", st->class_free[c]);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	text = jw_end_document(&w);
	fputs(text, stdout);
}

static void stat_text(const struct entry *en)
{
	const struct shma_pool_stat *st = &en->st;
	g_autofree char *ename = mk_text_escape(en->name);
	g_autofree char *holders = holders_text(en->holders, ", ");
	g_autofree char *eholders = mk_text_escape(holders);

	printf("pool        %s\n", ename);
	printf("backend     %s\n", backend_name(en));
	printf("chunk size  %" PRIu64 "\n", st->chunk_size);
	printf("chunks      %u of %u\n", st->chunks, st->max_chunks);
	printf("mapped      %" PRIu64 " bytes\n", st->mapped_bytes);
	printf("in use      %" PRIu64 " bytes in %" PRIu64 " %s\n", st->used_bytes, st->blocks_used,
	       mk_plural(st->blocks_used, "block", "blocks"));
	printf("free        %" PRIu64 " bytes (%" PRIu64 " free %s)\n", st->free_bytes, st->blocks_free,
	       mk_plural(st->blocks_free, "block", "blocks"));
	printf("users       %u alive, %u dead\n", st->users, st->users_dead);
	printf("holders     %s\n", *eholders ? eholders : "-");
	printf("%10s %10s %10s\n", "CLASS", "USED", "FREE");
	for (unsigned c = 0; c < st->nclasses; c++)
		if (st->class_used[c] || st->class_free[c])
			printf("%10u %10" PRIu64 " %10" PRIu64 "\n", st->class_size[c], st->class_used[c],
			       st->class_free[c]);
}

/* Why a pool judge() could not stat, as an error number. */
static int stat_error(const struct entry *en)
{
	if (en->r < 0)
		return en->r;
	if (!strcmp(en->state, "foreign"))
		return -EPERM;          /* libshm would refuse it: not ours */
	return !strcmp(en->state, "bad-name") ? -EINVAL : 0;
}

static int cmd_stat(const char *name)
{
	GPtrArray *ents = collect();
	struct entry *en = NULL;
	g_autofree char *ename = mk_text_escape(name);
	unsigned found = 0;
	int r;

	if (!ents)
		return EXIT_FAIL;
	for (guint i = 0; i < ents->len; i++) {
		struct entry *e = ents->pdata[i];

		/* chunk files without a root are no pool to stat */
		if (strcmp(e->name, name) || !e->has_root)
			continue;
		judge(e, false);
		if (!wanted(e))
			continue;
		if (!found++)
			en = e;
	}
	if (!found) {
		fprintf(stderr, "%s: %s: no such pool\n", prog, ename);
		r = EXIT_FAIL;
	} else if (found > 1) {
		fprintf(stderr, "%s: %s: %u pools have that name; choose with --pid or --dir (see 'shmctl list')\n",
			prog, ename, found);
		r = EXIT_FAIL;
	} else if ((r = stat_error(en)) < 0) {
		err(name, r);
		r = EXIT_FAIL;
	} else {
		opt_json ? stat_json(en) : stat_text(en);
	}
	g_ptr_array_free(ents, TRUE);
	return r;
}

/* ---- gc ---------------------------------------------------------------------------------------- */

/*
 * Remove exactly the files scan_dir() found for en, each only if the name
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

/* Is the root file still the one scan_dir() saw? */
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

/* What gc does to one pool, and how it went. */
struct gc_act {
	const char *action;     /* "remove", "reclaim" or NULL (nothing) */
	const char *why;
	const char *result;     /* planned, done, skipped, failed */
	uint64_t bytes;
	unsigned files;
	int64_t blocks;         /* reclaimed; -1 unknown */
	int r;
};

/* Decide by the state judge() found. A memfd pool has no files to remove:
 * its memory goes when the last process holding it closes it. */
static void gc_plan(const struct entry *en, struct gc_act *a)
{
	*a = (struct gc_act){ NULL, NULL, opt_dry_run ? "planned" : "done", 0, 0, -1, 0 };
	if (!strcmp(en->state, "orphan")) {
		a->action = "remove";
		a->why = "chunk files without a pool";
	} else if (!strcmp(en->state, "dead") && !en->memfd) {
		a->action = "remove";
		a->why = "every process that used it is dead";
	} else if (!strcmp(en->state, "alive") && en->st.users_dead) {
		a->action = "reclaim";
		a->why = "some processes died attached";
	}
	if (a->action && !strcmp(a->action, "remove")) {
		for (guint k = 0; k < en->files->len; k++)
			a->bytes += g_array_index(en->files, struct pfile, k).bytes;
		a->files = en->files->len;
	}
}

/* Judged again right before removal: same root file, still dead (or, for
 * orphans, still without a root file); then only the files scan_dir() saw. */
static void gc_remove(struct entry *en, struct gc_act *a)
{
	struct entry again = *en;
	bool became;

	pause_for_tests();
	if (en->has_root) {
		again.chunks = NULL;
		judge(&again, false);
		if (!same_root(en) || strcmp(again.state, "dead")) {
			a->result = "skipped";
			a->why = "changed since it was judged";
		}
	} else {
		g_autofree char *rp = g_strdup_printf("%s/%s%s", dir(), SHMA_FILE_PREFIX, en->name);
		struct stat st;

		if (lstat(rp, &st) == 0) {
			a->result = "skipped";
			a->why = "a pool of that name appeared";
		}
	}
	if (!strcmp(a->result, "done")) {
		became = become(en->uid, en->gid);
		a->r = remove_scanned(en, &a->bytes, &a->files);
		unbecome(became);
	} else {
		a->bytes = 0;
		a->files = 0;
	}
}

static void gc_reclaim(struct entry *en, struct gc_act *a)
{
	struct shma_pool *p = NULL;
	struct shma_pool_stat before = { .size = sizeof(before) }, after = { .size = sizeof(after) };
	bool became;
	int r = attach_entry(en, 0, &p);

	became = become(en->uid, en->gid);
	if (r == 0)
		r = shma_pool_stat(p, &before);
	if (r == 0)
		r = shma_pool_reclaim(p);
	if (r >= 0) {
		a->blocks = r;
		r = shma_pool_stat(p, &after);
	}
	shma_pool_free(p);
	unbecome(became);
	/* bytes the dead processes' blocks held (others may allocate meanwhile) */
	a->bytes = before.used_bytes > after.used_bytes ? before.used_bytes - after.used_bytes : 0;
	a->r = r < 0 ? r : 0;
}

static void gc_report(struct jw *w, const struct entry *en, const struct gc_act *a)
{
	g_autofree char *ename = mk_text_escape(en->name);
	bool remove = !strcmp(a->action, "remove");

	if (w) {
		jw_object_begin(w, NULL);
		jw_string(w, "pool", en->name);
		jw_string(w, "action", a->action);
		jw_string(w, "result", a->result);
		jw_string(w, "reason", a->why);
		if (remove) {
			jw_u64(w, "files", a->files);
			jw_u64(w, "file_bytes", a->bytes);
		} else {
			jw_u64(w, "users_dead", en->st.users_dead);
			if (a->blocks >= 0) {
				jw_u64(w, "blocks_freed", (uint64_t)a->blocks);
				jw_u64(w, "freed_bytes", a->bytes);
			} else {
				jw_null(w, "blocks_freed");
				jw_null(w, "freed_bytes");
			}
		}
		jw_object_end(w);
	} else if (!strcmp(a->result, "skipped")) {
		printf("skipped %s (%s)\n", ename, a->why);
	} else if (remove) {
		printf("%s %s (%s, %u %s, %" PRIu64 " bytes)\n",
		       opt_dry_run ? "would remove" : a->r < 0 ? "failed to remove" : "removed", ename,
		       a->why, a->files, mk_plural(a->files, "file", "files"), a->bytes);
	} else if (opt_dry_run) {
		printf("would reclaim in %s (%s: %u dead)\n", ename, a->why, en->st.users_dead);
	} else if (a->r >= 0) {
		printf("reclaimed %" PRId64 " %s (%" PRIu64 " bytes) in %s (%s)\n", a->blocks,
		       mk_plural((uint64_t)a->blocks, "block", "blocks"), a->bytes, ename, a->why);
	}
}

static int cmd_gc(void)
{
	int status = 0;
	GPtrArray *ents = gather(false);
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
		struct gc_act a;

		if (!strcmp(en->state, "damaged")) {
			err(en->name, en->r);
			status = EXIT_FAIL;
		}
		gc_plan(en, &a);
		if (!a.action)
			continue;
		if (!opt_dry_run)
			(!strcmp(a.action, "remove") ? gc_remove : gc_reclaim)(en, &a);
		if (a.r < 0) {
			err(en->name, a.r);
			status = EXIT_FAIL;
			a.result = "failed";
		}
		gc_report(opt_json ? &w : NULL, en, &a);
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

		if (r == -ENOENT) {
			g_autofree char *e = mk_text_escape(argv[i]);
			fprintf(stderr, "%s: %s: no such pool\n", prog, e);
			status = EXIT_FAIL;
		} else if (r < 0) {
			err(argv[i], r);
			status = EXIT_FAIL;
		}
	}
	return status;
}

/* ---- main ----------------------------------------------------------------------------------------- */

/* --pid LIST: comma-separated process IDs; false if one is not a number. */
static bool parse_pids(const char *list)
{
	g_auto(GStrv) items = g_strsplit(list, ",", 0);

	pids = g_array_new(FALSE, FALSE, sizeof(int));
	for (size_t i = 0; items[i]; i++) {
		uint64_t v;
		int pid;

		if (!mk_parse_u64(items[i], &v) || v < 1 || v > INT32_MAX)
			return false;
		pid = (int)v;
		g_array_append_val(pids, pid);
	}
	return pids->len > 0;
}

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
		  "Only the pools of this directory (default: " SHMA_DIR_DEFAULT " and memfd pools)", "DIR" },
		{ "pid", 'p', 0, G_OPTION_ARG_STRING, &opt_pid,
		  "Only pools these processes hold open (list, stat, gc)", "PID,..." },
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
		"  list          pools (and with --chunks their chunks): state, owner, users, sizes,\n"
		"                the processes holding them\n"
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
	if (opt_pid && !strcmp(cmd, "rm"))
		return usage_error(ctx, "--pid does not apply to rm (it removes named pools' files)");
	if (opt_pid && !parse_pids(opt_pid)) {
		g_autofree char *m = g_strdup_printf("--pid: '%s' is not a comma-separated list of process IDs",
						     opt_pid);
		return usage_error(ctx, m);
	}
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
	shm_procs_free(&procs);
	if (pids)
		g_array_free(pids, TRUE);
	return r;
}
