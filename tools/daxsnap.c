/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daxsnap: inspect, check, edit and replay libdax DAXS snapshot blobs.
 * Exit status: 0 success (valid, same), 1 invalid / different / changed
 * files / failed replay, 2 usage or I/O trouble. See daxsnap(1).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "dax.h"
#include "daxsnap.h"
#include "tools/microvm-run.h"
#include "vmm/cpu.h"
#include "json-out.h"
#include "outfile.h"
#include "tool-util.h"

#define EXIT_BAD 1
#define EXIT_USAGE MK_EXIT_USAGE
#define EXIT_NOKVM MK_EXIT_NOKVM

static const char *prog = "daxsnap";
static const char *cur_cmd;     /* the subcommand running, for "see 'daxsnap show --help'" */

/*
 * Under -J (show, verify, diff, check-files) every error is also one JSON
 * document on stdout, unless the command printed its own: {"schema",
 * "what", "error"} as the stderr line has them; verify's has its verdict
 * fields too (file, valid false, reason). daxsnap(1), JSON ERRORS.
 */
static struct {
	bool on;
	bool done;              /* a document went out */
	const char *verify;     /* verify's FILE operand */
} jerr;

/* Print a finished JSON document. */
static void put_json(struct jw *w)
{
	g_autofree char *text = jw_end_document(w);

	fputs(text, stdout);
	jerr.done = true;
}

static void json_error(const char *what, const char *why)
{
	struct jw w;

	if (!jerr.on || jerr.done)
		return;
	jw_begin_document(&w);
	if (jerr.verify) {
		jw_string(&w, "file", jerr.verify);
		jw_bool(&w, "valid", false);
		jw_string(&w, "reason", why);
	}
	jw_string(&w, "what", what);
	jw_string(&w, "error", why);
	put_json(&w);
}

static int G_GNUC_PRINTF(1, 2) usage_error(const char *fmt, ...)
{
	g_autofree char *help = g_strdup_printf("%s%s%s", prog, cur_cmd ? " " : "", cur_cmd ? cur_cmd : "");
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	json_error(cur_cmd ? cur_cmd : prog, msg);
	return mk_usage_error(prog, help, "%s", msg);
}

/* "daxsnap: what: why" and the exit status; what (often a file name) escaped. */
static int complain(int status, const char *what, const char *why)
{
	g_autofree char *w = mk_text_escape(what);

	json_error(what, why);
	fprintf(stderr, "%s: %s: %s\n", prog, w, why);
	return status;
}

/* ---- input / output -------------------------------------------------------------------- */

/*
 * Input limits (daxsnap(1), LIMITS). A blob's size follows from its
 * header: 48 + 40 x count bytes (v1), 60 + 80 x count (v2), and its
 * entries are at least 4 KiB each, do not overlap and lie in the window,
 * so count <= window_len / 4096; and no blob is read past 1 GiB. A reader
 * stops after the size the header announces (plus one byte, to tell a
 * longer file). JSON input (create --json) is at most 64 MiB.
 */
#define DAXSNAP_MAX_BLOB (1ull << 30)
#define DAXSNAP_MAX_JSON (64ull << 20)
#define DAXS_HDR_LEN 48

/* Read up to want bytes from fd into s; stops early at end of file. */
static int read_upto(int fd, GString *s, size_t want)
{
	char buf[65536];

	while (s->len < want) {
		size_t n = MIN(sizeof(buf), want - s->len);
		ssize_t got = read(fd, buf, n);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			break;
		g_string_append_len(s, buf, got);
	}
	return 0;
}

static uint64_t le64(const char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return GUINT64_FROM_LE(v);
}

/*
 * The size a DAXS v1/v2 header announces (LIMITS in daxsnap(1)): false
 * when the bytes do not start with one. *size is then the whole blob's
 * size, or, before the count is there, the header's (*whole false).
 */
static bool blob_announced(const char *b, size_t len, uint64_t *size, bool *whole)
{
	uint32_t version;
	uint64_t fixed, per, count;

	if (len < 8) {
		/* the start of a magic: cut short before its version */
		*size = DAXS_HDR_LEN;
		*whole = false;
		return !memcmp(b, "DAXS", MIN(len, 4));
	}
	if (memcmp(b, "DAXS", 4))
		return false;
	memcpy(&version, b + 4, 4);
	version = GUINT32_FROM_LE(version);
	if (version != 1 && version != 2)
		return false;
	fixed = version == 1 ? 48 : 60;
	per = version == 1 ? 40 : 80;
	*whole = len >= DAXS_HDR_LEN;
	if (!*whole) {
		*size = fixed;
		return true;
	}
	count = le64(b + 40);
	*size = count > (UINT64_MAX - fixed) / per ? UINT64_MAX : fixed + per * count;
	return true;
}

/*
 * Read path ("-": stdin). blob: a DAXS blob, bounded by its header;
 * otherwise (JSON) at most DAXSNAP_MAX_JSON bytes.
 */
static int read_input_kind(const char *path, bool blob, char **data, size_t *len)
{
	bool in = !strcmp(path, "-");
	const char *name = in ? "stdin" : path;
	int fd = in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	GString *s = g_string_new(NULL);
	int r;

	if (fd < 0) {
		g_string_free(s, TRUE);
		return complain(EXIT_USAGE, path, g_strerror(errno));
	}
	if (!blob) {
		r = read_upto(fd, s, DAXSNAP_MAX_JSON + 1);
		if (r == 0 && s->len > DAXSNAP_MAX_JSON) {
			complain(EXIT_BAD, name, "JSON input above the 64 MiB limit");
			r = 1;
		}
	} else {
		uint64_t want;
		bool whole;

		r = read_upto(fd, s, DAXS_HDR_LEN);
		/* a header that is not a DAXS v1/v2 one goes to the parser as it is, for its reason */
		if (r == 0 && blob_announced(s->str, s->len, &want, &whole) && whole) {
			uint64_t window = le64(s->str + 16), count = le64(s->str + 40);

			if (count > window / 4096 || want > DAXSNAP_MAX_BLOB) {
				g_autofree char *why = g_strdup_printf(
					"header claims %" PRIu64 " entries: more than the window holds "
					"or above the 1 GiB limit", count);
				complain(EXIT_BAD, name, why);
				r = 1;
			} else {
				r = read_upto(fd, s, want + 1);
			}
		}
	}
	if (r < 0)
		r = complain(EXIT_USAGE, name, g_strerror(-r));
	if (!in)
		close(fd);
	if (r) {
		g_string_free(s, TRUE);
		return r;
	}
	*len = s->len;
	*data = g_string_free(s, FALSE);
	return 0;
}

static int read_input(const char *path, char **data, size_t *len)
{
	return read_input_kind(path, true, data, len);
}

/* Write to path by the rules of outfile.h, or to stdout. */
static int write_output(const char *path, const void *data, size_t len)
{
	const char *what;
	int r = mk_write_output(path, data, len, &what);

	if (r < 0)
		return complain(EXIT_USAGE, !path || !strcmp(path, "-") ? "stdout" : path,
				what ?: g_strerror(-r));
	return 0;
}

/*
 * Parse a blob read by read_input(); on error *why (g_free) says what was
 * wrong, with the sizes for a blob cut short or running on.
 */
static int parse_blob(const char *data, size_t len, struct dax_blob_header *h,
		      struct dax_mapping **v, char **why)
{
	const char *w = NULL;
	uint64_t want;
	bool whole;
	int r;

	if (blob_announced(data, len, &want, &whole) && len != want) {
		if (len < want)
			*why = g_strdup_printf("truncated (%zu of %s%" PRIu64 " bytes)", len,
					       whole ? "" : "at least ", want);
		else
			*why = g_strdup_printf("trailing data after the last entry (at byte %" PRIu64 ")",
					       want);
		return -EINVAL;
	}
	r = dax_blob_parse(data, len, h, v, &w);
	if (r < 0)
		*why = g_strdup(w ?: g_strerror(-r));
	return r;
}

/* Parse and validate a blob file; prints the reason and returns the exit status on error. */
static int load_blob(const char *path, int bad_status, struct dax_blob_header *h,
		     struct dax_mapping **v)
{
	g_autofree char *data = NULL;
	g_autofree char *why = NULL;
	size_t len;
	int r;

	r = read_input(path, &data, &len);
	if (r)
		return r;
	if (parse_blob(data, len, h, v, &why) < 0)
		return complain(bad_status, path, why);
	return 0;
}

/* ---- numbers ----------------------------------------------------------------------------- */

static bool parse_num(const char *s, uint64_t *out)
{
	return mk_parse_u64(s, out);
}

static bool parse_prot(const char *s, uint32_t *out)
{
	if (!strcmp(s, "r"))
		*out = DAX_PROT_READ;
	else if (!strcmp(s, "w"))
		*out = DAX_PROT_WRITE;
	else if (!strcmp(s, "rw"))
		*out = DAX_PROT_READ | DAX_PROT_WRITE;
	else
		return false;
	return true;
}

static const char *prot_str(uint32_t p)
{
	switch (p) {
	case DAX_PROT_READ: return "r";
	case DAX_PROT_WRITE: return "w";
	case DAX_PROT_READ | DAX_PROT_WRITE: return "rw";
	default: return "?";
	}
}

/* ---- option helpers ---------------------------------------------------------------------- */

/* The subcommand's name and its operands after parse_opts (argv[0] is the name). */
static GPtrArray *operands;

/*
 * Parse a subcommand's options; returns 0, or the exit status to leave
 * with. Operands are collected through G_OPTION_REMAINING, so "--" ends
 * the options and is dropped ("show -- -" reads stdin); *argc and *argv
 * become the subcommand's name followed by the operands.
 */
static int parse_opts(const char *cmd, const char *params, const char *summary,
		      const GOptionEntry *entries, int *argc, char ***argv)
{
	g_autoptr(GOptionContext) ctx = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *pname = g_strdup_printf("%s %s", prog, cmd);
	g_auto(GStrv) rest = NULL;
	const GOptionEntry remaining[] = {
		{ G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &rest, NULL, NULL },
		{ NULL }
	};

	/* --help says "Usage: daxsnap show [OPTION…] FILE|-" */
	g_set_prgname(pname);
	ctx = g_option_context_new(params);
	g_option_context_set_summary(ctx, summary);
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_add_main_entries(ctx, remaining, NULL);
	if (!g_option_context_parse(ctx, argc, argv, &err)) {
		/* GLib quotes the offending argument as given: escape it */
		g_autofree char *m = mk_text_escape(err->message);
		return usage_error("%s: %s", cmd, m);
	}
	if (operands)
		g_ptr_array_free(operands, TRUE);
	operands = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(operands, g_strdup(cmd));
	for (size_t i = 0; rest && rest[i]; i++)
		g_ptr_array_add(operands, g_strdup(rest[i]));
	*argc = (int)operands->len;
	g_ptr_array_add(operands, NULL);
	*argv = (char **)operands->pdata;
	return 0;
}

static int want_args(const char *cmd, int argc, int min, int max)
{
	/* argv[0] is the subcommand */
	if (argc - 1 < min)
		return usage_error("%s: missing argument", cmd);
	if (argc - 1 > max)
		return usage_error("%s: too many arguments", cmd);
	return 0;
}

static int num_opt(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
	if (!parse_num(s, out)) {
		g_autofree char *e = mk_text_escape(s);
		return usage_error("%s: --%s: not a number: '%s'", cmd, opt, e);
	}
	return 0;
}

/* A small number option (--align, --format) in [lo, hi]; NULL keeps *out. */
static int small_opt(const char *cmd, const char *opt, const char *s, uint64_t lo, uint64_t hi,
		     uint32_t *out)
{
	uint64_t v;
	int r;

	if (!s)
		return 0;
	if ((r = num_opt(cmd, opt, s, &v)))
		return r;
	if (v < lo || v > hi)
		return usage_error("%s: --%s must be %" PRIu64 "..%" PRIu64, cmd, opt, lo, hi);
	*out = (uint32_t)v;
	return 0;
}

/* ---- show --------------------------------------------------------------------------------- */

/*
 * The header fields, each in one unit in every command (show's line, diff's
 * "! field a -> b"): addresses and sizes in hex, counts and log2 in decimal.
 */
enum hdr_field { HF_VERSION, HF_BASE, HF_WINDOW, HF_CAP, HF_MAPPED, HF_COUNT, HF_ALIGN, HF_N };

static const struct {
	const char *text;       /* show and diff */
	const char *json;       /* show -J, verify -J, diff -J "field" */
	bool hex;
	bool diff;              /* compared by diff (mapped and count follow from the entries) */
} hdr_fields[HF_N] = {
	[HF_VERSION] = { "version", "version", false, true },
	[HF_BASE] = { "base", "base_gpa", true, true },
	[HF_WINDOW] = { "window", "window_len", true, true },
	[HF_CAP] = { "cap", "cap", true, true },
	[HF_MAPPED] = { "mapped", "mapped_bytes", true, false },
	[HF_COUNT] = { "entries", "count", false, false },
	[HF_ALIGN] = { "align", "align_log2", false, true },
};

/* Field f of h; false when h has none (alignment in version 1). */
static bool hdr_get(const struct dax_blob_header *h, enum hdr_field f, uint64_t *v)
{
	switch (f) {
	case HF_VERSION: *v = h->version; break;
	case HF_BASE: *v = h->base_gpa; break;
	case HF_WINDOW: *v = h->window_len; break;
	case HF_CAP: *v = h->cap; break;
	case HF_MAPPED: *v = h->mapped_bytes; break;
	case HF_COUNT: *v = h->count; break;
	case HF_ALIGN: *v = h->align_log2; return h->version >= 2;
	default: return false;
	}
	return true;
}

/* A header value as text output has it ("-" for none). */
static char *hdr_text(const struct dax_blob_header *h, enum hdr_field f)
{
	uint64_t v;

	if (!hdr_get(h, f, &v))
		return g_strdup("-");
	return hdr_fields[f].hex ? g_strdup_printf("0x%" PRIx64, v) : g_strdup_printf("%" PRIu64, v);
}

/* An entry's fields the same way: show's columns, diff's changed fields. */
enum ent_field { EF_LEN, EF_NODEID, EF_FOFFSET, EF_PROT, EF_IDENTITY, EF_N };

static const char *const ent_fields[EF_N] = { "len", "nodeid", "foffset", "prot", "identity" };

static char *ent_text(const struct dax_mapping *m, enum ent_field f)
{
	switch (f) {
	case EF_LEN: return g_strdup_printf("0x%" PRIx64, m->len);
	case EF_NODEID: return g_strdup_printf("%" PRIu64, m->nodeid);
	case EF_FOFFSET: return g_strdup_printf("0x%" PRIx64, m->foffset);
	case EF_PROT: return g_strdup(prot_str(m->prot));
	case EF_IDENTITY:
		if (!m->id.valid)
			return g_strdup("-");
		return g_strdup_printf("dev=%" PRIu64 " ino=%" PRIu64 " size=%" PRIu64 " mtime=%" PRId64 ".%09u",
				       m->id.dev, m->id.ino, m->id.size, m->id.mtime_sec, m->id.mtime_nsec);
	default: return g_strdup("?");
	}
}

static void show_table(const struct dax_blob_header *h, const struct dax_mapping *v)
{
	const char *sep = "";

	for (enum hdr_field f = 0; f < HF_N; f++) {
		g_autofree char *t = NULL;
		uint64_t x;

		if (!hdr_get(h, f, &x))
			continue;
		t = hdr_text(h, f);
		printf("%s%s %s", sep, hdr_fields[f].text, t);
		sep = "  ";
	}
	printf("\n%-18s %-12s %-10s %-14s %-4s %s\n", "MOFFSET", "LEN", "NODEID", "FOFFSET", "PROT",
	       "IDENTITY");
	for (uint64_t i = 0; i < h->count; i++) {
		g_autofree char *len = ent_text(&v[i], EF_LEN), *node = ent_text(&v[i], EF_NODEID);
		g_autofree char *foff = ent_text(&v[i], EF_FOFFSET), *id = ent_text(&v[i], EF_IDENTITY);

		printf("0x%-16" PRIx64 " %-12s %-10s %-14s %-4s %s\n", v[i].moffset, len, node, foff,
		       prot_str(v[i].prot), id);
	}
}

static void json_identity(struct jw *w, const char *key, const struct dax_file_id *id)
{
	jw_object_begin(w, key);
	jw_u64(w, "dev", id->dev);
	jw_u64(w, "ino", id->ino);
	jw_u64(w, "size", id->size);
	jw_i64(w, "mtime_sec", id->mtime_sec);
	jw_u64(w, "mtime_nsec", id->mtime_nsec);
	jw_object_end(w);
}

/* One entry as show --json (and create --json) has it. */
static void json_entry(struct jw *w, const char *key, const struct dax_mapping *m)
{
	jw_object_begin(w, key);
	jw_u64(w, "moffset", m->moffset);
	jw_u64(w, "len", m->len);
	jw_u64(w, "nodeid", m->nodeid);
	jw_u64(w, "foffset", m->foffset);
	jw_string(w, "prot", prot_str(m->prot));
	if (m->id.valid)
		json_identity(w, "identity", &m->id);
	jw_object_end(w);
}

static void json_header(struct jw *w, const struct dax_blob_header *h)
{
	for (enum hdr_field f = 0; f < HF_N; f++) {
		uint64_t x;

		if (hdr_get(h, f, &x))
			jw_u64(w, hdr_fields[f].json, x);
	}
}

static void show_json(const char *file, const struct dax_blob_header *h, const struct dax_mapping *v)
{
	struct jw w;

	jw_begin_document(&w);
	jw_string(&w, "file", file);
	json_header(&w, h);
	jw_array_begin(&w, "entries");
	for (uint64_t i = 0; i < h->count; i++)
		json_entry(&w, NULL, &v[i]);
	jw_array_end(&w);
	put_json(&w);
}

static int cmd_show(int argc, char **argv)
{
	gboolean json = FALSE;
	const GOptionEntry opts[] = {
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
		{ NULL }
	};
	g_autofree struct dax_mapping *v = NULL;
	struct dax_blob_header h;
	int r;

	if ((r = parse_opts("show", "FILE|-", "Print a snapshot blob as a table or JSON.", opts, &argc, &argv)) ||
	    (r = want_args("show", argc, 1, 1)) || (r = load_blob(argv[1], EXIT_BAD, &h, &v)))
		return r;
	json ? show_json(argv[1], &h, v) : show_table(&h, v);
	return fflush(stdout) ? complain(EXIT_USAGE, "stdout", g_strerror(errno)) : 0;
}

/* ---- verify ------------------------------------------------------------------------------ */

static int cmd_verify(int argc, char **argv)
{
	g_autofree char *base = NULL, *len = NULL, *cap = NULL;
	gboolean json = FALSE;
	const GOptionEntry opts[] = {
		{ "base", 0, 0, G_OPTION_ARG_STRING, &base, "Expected window base GPA", "GPA" },
		{ "len", 0, 0, G_OPTION_ARG_STRING, &len, "Expected window length", "BYTES" },
		{ "cap", 0, 0, G_OPTION_ARG_STRING, &cap, "Cap the entries must fit in", "BYTES" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &json, "Print the verdict as JSON", NULL },
		{ NULL }
	};
	g_autofree struct dax_mapping *v = NULL;
	g_autofree char *data = NULL, *perr = NULL;
	struct dax_blob_header h;
	const char *why = NULL;
	uint64_t x;
	size_t dlen;
	int r;

	if ((r = parse_opts("verify", "FILE|-", "Check a blob; exit 0 valid, 1 invalid.", opts, &argc, &argv)) ||
	    (r = want_args("verify", argc, 1, 1)))
		return r;
	jerr.verify = argv[1];
	if ((base && (r = num_opt("verify", "base", base, &x))) ||
	    (len && (r = num_opt("verify", "len", len, &x))) ||
	    (cap && (r = num_opt("verify", "cap", cap, &x))))
		return r;
	if ((r = read_input(argv[1], &data, &dlen)))
		return r;
	r = parse_blob(data, dlen, &h, &v, &perr);
	if (r < 0)
		why = perr;
	else if (base && parse_num(base, &x) && x != h.base_gpa)
		why = "window base does not match --base";
	else if (len && parse_num(len, &x) && x != h.window_len)
		why = "window length does not match --len";
	else if (cap && parse_num(cap, &x) && h.mapped_bytes > x)
		why = "mapped bytes above --cap";
	if (json) {
		struct jw w;

		jw_begin_document(&w);
		jw_string(&w, "file", argv[1]);
		jw_bool(&w, "valid", !why);
		jw_string(&w, "reason", why);
		if (r >= 0)
			json_header(&w, &h);
		put_json(&w);
	}
	return why ? complain(EXIT_BAD, argv[1], why) : 0;
}

/* ---- diff -------------------------------------------------------------------------------- */

static void print_entry(char tag, const struct dax_mapping *m)
{
	g_autofree char *id = ent_text(m, EF_IDENTITY);

	printf("%c 0x%" PRIx64 " len 0x%" PRIx64 " node %" PRIu64 " foffset 0x%" PRIx64 " %s%s%s\n", tag,
	       m->moffset, m->len, m->nodeid, m->foffset, prot_str(m->prot),
	       m->id.valid ? " " : "", m->id.valid ? id : "");
}

/* The same file, unchanged: device, inode, size and modification time. */
static bool same_identity(const struct dax_file_id *a, const struct dax_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

/* Which fields of two entries at the same offset differ (a bit per enum ent_field). */
static unsigned entry_diff(const struct dax_mapping *a, const struct dax_mapping *b)
{
	unsigned d = 0;

	d |= (a->len != b->len) << EF_LEN;
	d |= (a->nodeid != b->nodeid) << EF_NODEID;
	d |= (a->foffset != b->foffset) << EF_FOFFSET;
	d |= (a->prot != b->prot) << EF_PROT;
	d |= (a->id.valid != b->id.valid || (a->id.valid && !same_identity(&a->id, &b->id))) << EF_IDENTITY;
	return d;
}

/* One difference, as text or into the JSON "entries" array: an entry only
 * in a ("-"), only in b ("+"), or each field that differs ("! moffset field a -> b"). */
static void diff_entry(struct jw *w, const char *change, const struct dax_mapping *a,
		       const struct dax_mapping *b, unsigned fields)
{
	if (!w) {
		if (!b || !a) {
			print_entry(a ? '-' : '+', a ? a : b);
			return;
		}
		for (enum ent_field f = 0; f < EF_N; f++) {
			g_autofree char *ta = NULL, *tb = NULL;

			if (!(fields & 1u << f))
				continue;
			ta = ent_text(a, f);
			tb = ent_text(b, f);
			printf("! 0x%" PRIx64 " %s %s -> %s\n", a->moffset, ent_fields[f], ta, tb);
		}
		return;
	}
	jw_object_begin(w, NULL);
	jw_string(w, "change", change);
	jw_u64(w, "moffset", a ? a->moffset : b->moffset);
	if (a && b) {
		jw_array_begin(w, "fields");
		for (enum ent_field f = 0; f < EF_N; f++)
			if (fields & 1u << f)
				jw_string(w, NULL, ent_fields[f]);
		jw_array_end(w);
	}
	if (a)
		json_entry(w, "a", a);
	if (b)
		json_entry(w, "b", b);
	jw_object_end(w);
}

/* Header fields that differ: text "! field a -> b" in show's units; JSON {field, a, b}. */
static bool diff_header(struct jw *w, const struct dax_blob_header *ha, const struct dax_blob_header *hb)
{
	bool differ = false;

	for (enum hdr_field f = 0; f < HF_N; f++) {
		uint64_t a = 0, b = 0;
		bool has_a = hdr_get(ha, f, &a), has_b = hdr_get(hb, f, &b);

		if (!hdr_fields[f].diff || (has_a == has_b && a == b))
			continue;
		differ = true;
		if (w) {
			jw_object_begin(w, NULL);
			jw_string(w, "field", hdr_fields[f].json);
			has_a ? jw_u64(w, "a", a) : jw_null(w, "a");
			has_b ? jw_u64(w, "b", b) : jw_null(w, "b");
			jw_object_end(w);
		} else {
			g_autofree char *ta = hdr_text(ha, f), *tb = hdr_text(hb, f);

			printf("! %s %s -> %s\n", hdr_fields[f].text, ta, tb);
		}
	}
	return differ;
}

static int cmd_diff(int argc, char **argv)
{
	gboolean json = FALSE;
	const GOptionEntry opts[] = {
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &json, "Print the differences as JSON", NULL },
		{ NULL }
	};
	g_autofree struct dax_mapping *a = NULL, *b = NULL;
	struct dax_blob_header ha, hb;
	struct jw jw, *w = NULL;
	uint64_t i = 0, j = 0;
	bool differ;
	int r;

	/* like diff(1): trouble (including an invalid blob) is 2 */
	if ((r = parse_opts("diff", "A B", "Compare two blobs; exit 1 when they differ.", opts, &argc, &argv)) ||
	    (r = want_args("diff", argc, 2, 2)) || (r = load_blob(argv[1], EXIT_USAGE, &ha, &a)) ||
	    (r = load_blob(argv[2], EXIT_USAGE, &hb, &b)))
		return r;
	if (json) {
		w = &jw;
		jw_begin_document(w);
		jw_string(w, "a", argv[1]);
		jw_string(w, "b", argv[2]);
		jw_array_begin(w, "header");
	}
	differ = diff_header(w, &ha, &hb);
	if (w) {
		jw_array_end(w);
		jw_array_begin(w, "entries");
	}
	while (i < ha.count || j < hb.count) {
		if (j >= hb.count || (i < ha.count && a[i].moffset < b[j].moffset)) {
			diff_entry(w, "removed", &a[i++], NULL, 0);
			differ = true;
		} else if (i >= ha.count || b[j].moffset < a[i].moffset) {
			diff_entry(w, "added", NULL, &b[j++], 0);
			differ = true;
		} else {
			unsigned fields = entry_diff(&a[i], &b[j]);

			if (fields) {
				diff_entry(w, "changed", &a[i], &b[j], fields);
				differ = true;
			}
			i++;
			j++;
		}
	}
	if (w) {
		jw_array_end(w);
		jw_bool(w, "same", !differ);
		put_json(w);
	}
	return differ ? EXIT_BAD : 0;
}

/* --map NODEID=PATH into a node -> path table. */
static int parse_maps(const char *cmd, char **maps, GHashTable *paths)
{
	for (size_t i = 0; maps && maps[i]; i++) {
		const char *eq = strchr(maps[i], '=');
		g_autofree char *num = eq ? g_strndup(maps[i], (size_t)(eq - maps[i])) : NULL;
		uint64_t *node = g_new(uint64_t, 1);

		if (!eq || !eq[1] || !parse_num(num, node)) {
			g_autofree char *e = mk_text_escape(maps[i]);
			g_free(node);
			return usage_error("%s: --map '%s': want NODEID=PATH", cmd, e);
		}
		g_hash_table_replace(paths, node, g_strdup(eq + 1));
	}
	return 0;
}

/* ---- create ------------------------------------------------------------------------------- */

static bool jnum(const struct jv *v, uint64_t *out)
{
	if (!v)
		return false;
	if (v->type == JV_INT && !v->neg) {
		*out = v->u;
		return true;
	}
	return v->type == JV_STRING && parse_num(v->str, out);
}

/* Fill h and the entries from JSON (the schema of show --json). */
static int from_json(const char *text, size_t len, struct dax_blob_header *h, GArray *ents)
{
	g_autofree char *err = NULL;
	struct jv *root = jv_parse(text, len, &err);
	const struct jv *e;
	uint64_t x;
	int r = EXIT_BAD;

	if (!root)
		return complain(EXIT_BAD, "stdin", err);
	if (root->type != JV_OBJECT) {
		complain(EXIT_BAD, "stdin", "JSON input is not an object");
		goto out;
	}
	if (jv_get(root, "schema") && (!jnum(jv_get(root, "schema"), &x) || x > MK_JSON_SCHEMA)) {
		complain(EXIT_BAD, "stdin", "unknown \"schema\" (newer than this daxsnap)");
		goto out;
	}
	if (jv_get(root, "version")) {
		if (!jnum(jv_get(root, "version"), &x) || x < 1 || x > 2) {
			complain(EXIT_BAD, "stdin", "bad \"version\"");
			goto out;
		}
		/* h->version: --format's, 0 without it */
		if (h->version && h->version != x) {
			complain(EXIT_BAD, "stdin", "\"version\" is not the one --format asks for");
			goto out;
		}
		h->version = (uint32_t)x;
	}
	if (!h->version)
		h->version = 2;
	if (!jnum(jv_get(root, "base_gpa"), &h->base_gpa) ||
	    !jnum(jv_get(root, "window_len"), &h->window_len)) {
		complain(EXIT_BAD, "stdin", "\"base_gpa\" and \"window_len\" are required numbers");
		goto out;
	}
	if (jv_get(root, "cap") && !jnum(jv_get(root, "cap"), &h->cap)) {
		complain(EXIT_BAD, "stdin", "bad \"cap\"");
		goto out;
	}
	if (jv_get(root, "align_log2")) {
		if (!jnum(jv_get(root, "align_log2"), &x) || x > 63) {
			complain(EXIT_BAD, "stdin", "bad \"align_log2\"");
			goto out;
		}
		if (h->version == 1) {
			complain(EXIT_BAD, "stdin", "version 1 records no alignment (\"align_log2\")");
			goto out;
		}
		h->align_log2 = (uint32_t)x;
	}
	e = jv_get(root, "entries");
	if (e && e->type != JV_ARRAY) {
		complain(EXIT_BAD, "stdin", "\"entries\" is not an array");
		goto out;
	}
	for (size_t i = 0; e && i < e->n; i++) {
		const struct jv *o = e->items[i], *p = jv_get(o, "prot"), *id = jv_get(o, "identity");
		struct dax_mapping m = { 0 };
		g_autofree char *what = g_strdup_printf("stdin: entry %zu", i);

		if (!o || o->type != JV_OBJECT || !jnum(jv_get(o, "moffset"), &m.moffset) ||
		    !jnum(jv_get(o, "len"), &m.len) || !jnum(jv_get(o, "nodeid"), &m.nodeid) ||
		    !jnum(jv_get(o, "foffset"), &m.foffset) || !p) {
			complain(EXIT_BAD, what, "needs moffset, len, nodeid, foffset, prot");
			goto out;
		}
		if (p->type == JV_STRING ? !parse_prot(p->str, &m.prot) :
		    !(jnum(p, &x) && x <= 3 && (m.prot = (uint32_t)x))) {
			complain(EXIT_BAD, what, "bad prot (r, w, rw or 1..3)");
			goto out;
		}
		if (id && h->version == 1) {
			complain(EXIT_BAD, what, "version 1 records no file identity");
			goto out;
		}
		if (id) {
			uint64_t sec, nsec;
			if (id->type != JV_OBJECT || !jnum(jv_get(id, "dev"), &m.id.dev) ||
			    !jnum(jv_get(id, "ino"), &m.id.ino) || !jnum(jv_get(id, "size"), &m.id.size) ||
			    !jnum(jv_get(id, "mtime_sec"), &sec) || !jnum(jv_get(id, "mtime_nsec"), &nsec) ||
			    sec > INT64_MAX || nsec > UINT32_MAX) {
				complain(EXIT_BAD, what, "bad identity");
				goto out;
			}
			m.id.mtime_sec = (int64_t)sec;
			m.id.mtime_nsec = (uint32_t)nsec;
			m.id.valid = 1;
		}
		g_array_append_val(ents, m);
	}
	r = 0;
out:
	jv_free(root);
	return r;
}

static int emit_blob(const char *what, const struct dax_blob_header *h, const struct dax_mapping *v,
		     size_t n, const char *out)
{
	g_autofree void *blob = NULL;
	const char *why;
	size_t len;
	int r;

	r = dax_blob_build(h, v, n, &blob, &len, &why);
	if (r < 0)
		return complain(EXIT_BAD, what, why ?: g_strerror(-r));
	if ((!out || !strcmp(out, "-")) && isatty(STDOUT_FILENO))
		return usage_error("%s: refusing to write a binary blob to a terminal (use -o FILE)", what);
	return write_output(out, blob, len);
}

static int cmd_create(int argc, char **argv)
{
	g_autofree char *base = NULL, *len = NULL, *cap = NULL, *out = NULL;
	g_autofree char *format_s = NULL, *align_s = NULL;
	g_auto(GStrv) entries = NULL, maps = NULL;
	uint32_t format = 2, align = 12;
	gboolean json = FALSE;
	const GOptionEntry opts[] = {
		{ "format", 'f', 0, G_OPTION_ARG_STRING, &format_s, "Blob version, 1 or 2 (default 2)", "N" },
		{ "base", 0, 0, G_OPTION_ARG_STRING, &base, "Window base GPA", "GPA" },
		{ "len", 0, 0, G_OPTION_ARG_STRING, &len, "Window length", "BYTES" },
		{ "cap", 0, 0, G_OPTION_ARG_STRING, &cap, "Cap on mapped bytes (default: the window)", "BYTES" },
		{ "align", 0, 0, G_OPTION_ARG_STRING, &align_s, "log2 of the alignment (v2, default 12)", "LOG2" },
		{ "entry", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &entries, "A mapping", "MOFF:LEN:NODE:FOFF:PROT" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &json, "Read the blob as JSON from stdin", NULL },
		{ "map", 'm', 0, G_OPTION_ARG_FILENAME_ARRAY, &maps, "Record this node's file identity (v2)", "NODEID=PATH" },
		{ "output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write here (see OUTPUT FILES in daxsnap(1)), else stdout", "FILE" },
		{ NULL }
	};
	g_autoptr(GHashTable) paths = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	struct dax_blob_header h = { 0 };
	g_autoptr(GArray) ents = g_array_new(FALSE, TRUE, sizeof(struct dax_mapping));
	int r;

	if ((r = parse_opts("create", "", "Write a new blob from options or JSON on stdin.", opts, &argc, &argv)) ||
	    (r = want_args("create", argc, 0, 0)))
		return r;
	if ((r = small_opt("create", "format", format_s, 1, 2, &format)) ||
	    (r = parse_maps("create", maps, paths)) ||
	    (r = small_opt("create", "align", align_s, 12, 40, &align)))
		return r;
	/* what version 1 cannot hold is refused, not dropped */
	if (format == 1 && align_s)
		return usage_error("create: --align needs --format 2 (version 1 records no alignment)");
	if (format == 1 && maps)
		return usage_error("create: --map needs --format 2 (version 1 records no file identity)");
	h.version = format_s ? format : 0;
	h.align_log2 = align;
	if (json) {
		g_autofree char *text = NULL;
		size_t tl;
		if (base || len || cap || entries)
			return usage_error("create: --json excludes --base, --len, --cap, --entry");
		if ((r = read_input_kind("-", false, &text, &tl)) || (r = from_json(text, tl, &h, ents)))
			return r;
		if (!h.cap)
			h.cap = h.window_len;
	} else {
		if (!base || !len)
			return usage_error("create: --base and --len are required (or --json)");
		if ((r = num_opt("create", "base", base, &h.base_gpa)) ||
		    (r = num_opt("create", "len", len, &h.window_len)) ||
		    (cap && (r = num_opt("create", "cap", cap, &h.cap))))
			return r;
		if (!cap)
			h.cap = h.window_len;
		h.version = format;
		for (size_t i = 0; entries && entries[i]; i++) {
			g_auto(GStrv) f = g_strsplit(entries[i], ":", 0);
			struct dax_mapping m = { 0 };
			if (g_strv_length(f) != 5 || !parse_num(f[0], &m.moffset) ||
			    !parse_num(f[1], &m.len) || !parse_num(f[2], &m.nodeid) ||
			    !parse_num(f[3], &m.foffset) || !parse_prot(f[4], &m.prot)) {
				g_autofree char *e = mk_text_escape(entries[i]);
				return usage_error("create: --entry '%s': want MOFF:LEN:NODE:FOFF:r|w|rw", e);
			}
			g_array_append_val(ents, m);
		}
	}
	for (guint i = 0; i < ents->len; i++) {
		struct dax_mapping *m = &g_array_index(ents, struct dax_mapping, i);
		const char *path = g_hash_table_lookup(paths, &m->nodeid);
		/* a --map file that cannot be read is I/O trouble (2), as daxsnap(1) says */
		if (path && (r = dax_file_id_of_path(path, &m->id)) < 0)
			return complain(EXIT_USAGE, path, g_strerror(-r));
	}
	return emit_blob("create", &h, (struct dax_mapping *)(void *)ents->data, ents->len, out);
}

/* ---- convert / rebase ---------------------------------------------------------------------- */

static int cmd_convert(int argc, char **argv)
{
	g_autofree char *to = NULL, *out = NULL, *align_s = NULL;
	uint32_t align = 12;
	const GOptionEntry opts[] = {
		{ "to", 't', 0, G_OPTION_ARG_STRING, &to, "Target version: v1 or v2", "v1|v2" },
		{ "align", 0, 0, G_OPTION_ARG_STRING, &align_s, "log2 alignment to record going to v2 (default 12)", "LOG2" },
		{ "output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write here (see OUTPUT FILES in daxsnap(1)), else stdout", "FILE" },
		{ NULL }
	};
	g_autofree struct dax_mapping *v = NULL;
	struct dax_blob_header h;
	int r;

	if ((r = parse_opts("convert", "FILE|-", "Rewrite a blob as version 1 or 2 (v1 drops file identities).",
			    opts, &argc, &argv)) || (r = want_args("convert", argc, 1, 1)))
		return r;
	if (!to || (strcmp(to, "v1") && strcmp(to, "v2")))
		return usage_error("convert: --to v1 or --to v2 is required");
	if (to[1] == '1' && align_s)
		return usage_error("convert: --align goes with --to v2 (version 1 records no alignment)");
	if ((r = small_opt("convert", "align", align_s, 12, 40, &align)))
		return r;
	if ((r = load_blob(argv[1], EXIT_BAD, &h, &v)))
		return r;
	if (to[1] == '1') {
		h.version = 1;
		for (uint64_t i = 0; i < h.count; i++)
			v[i].id.valid = 0;
	} else {
		/* --align applies to a version 2 blob too: the layout is checked against it */
		if (h.version == 1 || align_s)
			h.align_log2 = align;
		h.version = 2;
	}
	return emit_blob(argv[1], &h, v, h.count, out);
}

static int cmd_rebase(int argc, char **argv)
{
	g_autofree char *base = NULL, *out = NULL;
	const GOptionEntry opts[] = {
		{ "base", 'b', 0, G_OPTION_ARG_STRING, &base, "New window base GPA", "GPA" },
		{ "output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write here (see OUTPUT FILES in daxsnap(1)), else stdout", "FILE" },
		{ NULL }
	};
	g_autofree struct dax_mapping *v = NULL;
	struct dax_blob_header h;
	uint64_t nb;
	int r;

	if ((r = parse_opts("rebase", "FILE|-", "Move a blob's window to another guest-physical base.",
			    opts, &argc, &argv)) || (r = want_args("rebase", argc, 1, 1)))
		return r;
	if (!base)
		return usage_error("rebase: --base is required");
	if ((r = num_opt("rebase", "base", base, &nb)) || (r = load_blob(argv[1], EXIT_BAD, &h, &v)))
		return r;
	/* the alignment rule is libdax's, the same for create, verify and rebase */
	h.base_gpa = nb;
	return emit_blob(argv[1], &h, v, h.count, out);
}

/* ---- check-files / replay ------------------------------------------------------------------ */

static int cmd_check_files(int argc, char **argv)
{
	g_auto(GStrv) maps = NULL;
	gboolean json = FALSE;
	const GOptionEntry opts[] = {
		{ "map", 'm', 0, G_OPTION_ARG_FILENAME_ARRAY, &maps, "Node's file", "NODEID=PATH" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &json, "Print every entry's state as JSON", NULL },
		{ NULL }
	};
	g_autoptr(GHashTable) paths = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	g_autofree struct dax_mapping *v = NULL;
	struct dax_blob_header h;
	struct jw w;
	unsigned bad = 0;
	int r;

	if ((r = parse_opts("check-files", "FILE|- --map NODEID=PATH...",
			    "List entries whose file changed since the snapshot; exit 1 if any.",
			    opts, &argc, &argv)) || (r = want_args("check-files", argc, 1, 1)) ||
	    (r = parse_maps("check-files", maps, paths)) || (r = load_blob(argv[1], EXIT_USAGE, &h, &v)))
		return r;
	if (h.version < 2)
		return complain(EXIT_BAD, argv[1], "version 1 blobs record no file identity");
	if (json) {
		jw_begin_document(&w);
		jw_string(&w, "file", argv[1]);
		jw_array_begin(&w, "entries");
	}
	for (uint64_t i = 0; i < h.count; i++) {
		const struct dax_mapping *m = &v[i];
		const char *path = g_hash_table_lookup(paths, &m->nodeid);
		g_autofree char *epath = path ? mk_text_escape(path) : NULL;
		g_autofree char *text = NULL;
		const char *state = "unchanged";
		struct dax_file_id now = { 0 };
		int e = 0;

		/* state names are the JSON "state" values (daxsnap(1)) */
		if (!path) {
			state = "unmapped";
			text = g_strdup("no --map for this node");
		} else if (!m->id.valid) {
			state = "no-identity";
			text = g_strdup("no identity recorded");
		} else if ((e = dax_file_id_of_path(path, &now)) < 0) {
			state = "error";
			text = g_strdup(g_strerror(-e));
		} else if (now.dev != m->id.dev || now.ino != m->id.ino) {
			state = "replaced";
			text = g_strdup_printf("another file (inode %" PRIu64 " -> %" PRIu64 ")", m->id.ino, now.ino);
		} else if (now.size != m->id.size || now.mtime_sec != m->id.mtime_sec ||
			   now.mtime_nsec != m->id.mtime_nsec) {
			state = "changed";
			text = g_strdup_printf("changed (size %" PRIu64 " -> %" PRIu64 ", mtime %" PRId64
					       ".%09u -> %" PRId64 ".%09u)", m->id.size, now.size,
					       m->id.mtime_sec, m->id.mtime_nsec, now.mtime_sec, now.mtime_nsec);
		}
		if (text)
			bad++;
		if (json) {
			jw_object_begin(&w, NULL);
			jw_u64(&w, "moffset", m->moffset);
			jw_u64(&w, "nodeid", m->nodeid);
			jw_string(&w, "path", path);
			jw_string(&w, "state", state);
			if (e < 0)
				jw_string(&w, "reason", text);
			if (m->id.valid)
				json_identity(&w, "identity", &m->id);
			if (path && e == 0 && m->id.valid)
				json_identity(&w, "current", &now);
			jw_object_end(&w);
		} else if (text) {
			printf("0x%" PRIx64 " node %" PRIu64 "%s%s: %s\n", m->moffset, m->nodeid,
			       path ? " " : "", path ? epath : "", text);
		}
	}
	if (json) {
		jw_array_end(&w);
		jw_u64(&w, "changed", bad);
		put_json(&w);
	}
	return bad ? EXIT_BAD : 0;
}

#define REPLAY_CODE 0x1000u
#define REPLAY_TABLE 0x2000u

/* The --map files' directories for the microVM: read-write where a slot of
 * that node is writable (the root is read-only there), else read-only. */
static void replay_shares(const struct dax_blob_header *h, const struct dax_mapping *v,
			  GHashTable *paths, GPtrArray *opts, GPtrArray *args)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter it;
	gpointer k, p;

	g_hash_table_iter_init(&it, paths);
	while (g_hash_table_iter_next(&it, &k, &p)) {
		g_autofree char *abs = g_canonicalize_filename(p, NULL);
		char *dir = g_path_get_dirname(abs);
		bool rw = false;

		for (uint64_t i = 0; i < h->count; i++)
			rw |= v[i].nodeid == *(uint64_t *)k && (v[i].prot & DAX_PROT_WRITE);
		if (strcmp(dir, "/") && !g_hash_table_contains(seen, dir)) {
			g_ptr_array_add(opts, g_strdup(rw ? "--rw" : "--ro"));
			g_ptr_array_add(opts, g_strdup(dir));
			g_hash_table_add(seen, dir);
		} else {
			g_free(dir);
		}
		g_ptr_array_add(args, g_strdup("--map"));
		g_ptr_array_add(args, g_strdup_printf("%" PRIu64 "=%s", *(uint64_t *)k, abs));
	}
}

/*
 * No KVM here: replay inside memkit's microVM, as memcheck-guest runs its
 * checks there. The blob goes in as a file of its own (standard input too).
 * Files whose identity is still the one recorded lose it in that copy: it
 * was checked here, where it was taken, while inside 9p shows the files
 * with other device and inode numbers. A changed file keeps the recorded
 * one, and its slots fail inside as they would here.
 */
static int replay_in_microvm(const char *why, struct dax_blob_header *h, struct dax_mapping *v,
			     GHashTable *paths, bool quiet)
{
	g_autoptr(GPtrArray) opts = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *tmp = NULL, *path = NULL;
	g_autoptr(GError) err = NULL;
	void *blob = NULL;
	const char *bwhy = NULL;
	size_t len;
	int r;

	for (uint64_t i = 0; i < h->count; i++) {
		const char *file = g_hash_table_lookup(paths, &v[i].nodeid);
		struct dax_file_id now;

		if (v[i].id.valid && file && dax_file_id_of_path(file, &now) == 0 && same_identity(&now, &v[i].id))
			v[i].id.valid = 0;
	}
	r = dax_blob_build(h, v, h->count, &blob, &len, &bwhy);
	if (r < 0)
		return complain(EXIT_BAD, "replay", bwhy ?: g_strerror(-r));
	tmp = g_dir_make_tmp("daxsnap-replay-XXXXXX", &err);
	path = tmp ? g_build_filename(tmp, "blob", NULL) : NULL;
	if (!tmp || !g_file_set_contents(path, blob, (gssize)len, &err)) {
		free(blob);
		if (tmp)
			rmdir(tmp);
		return complain(EXIT_USAGE, "replay: a copy of the blob for the microVM", err->message);
	}
	free(blob);
	g_ptr_array_add(opts, g_strdup("--ro"));
	g_ptr_array_add(opts, g_strdup(tmp));
	g_ptr_array_add(args, g_strdup("replay"));
	g_ptr_array_add(args, g_strdup(path));
	if (quiet)
		g_ptr_array_add(args, g_strdup("--quiet"));
	replay_shares(h, v, paths, opts, args);
	g_ptr_array_add(opts, NULL);
	g_ptr_array_add(args, NULL);
	r = mk_microvm_run(prog, NULL, (const char *const *)opts->pdata, (char **)args->pdata, why,
			   "replaying");
	unlink(path);
	rmdir(tmp);
	return r;
}

static int cmd_replay(int argc, char **argv)
{
	g_auto(GStrv) maps = NULL;
	gboolean quiet = FALSE;
	const GOptionEntry opts[] = {
		{ "map", 'm', 0, G_OPTION_ARG_FILENAME_ARRAY, &maps, "Node's file", "NODEID=PATH" },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Print only errors", NULL },
		{ NULL }
	};
	g_autoptr(GHashTable) paths = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	g_autofree struct dax_mapping *v = NULL;
	g_autofree char *data = NULL;
	struct dax_blob_header h;
	struct dax_table *table = NULL;
	struct dax_session *s = NULL;
	struct dax_stats st = { .size = sizeof(st) };
	struct vmm_vm tv = { .kvm_fd = -1, .vm_fd = -1, .vcpu_fd = -1 };
	GHashTableIter it;
	gpointer k, p;
	int kvm = -1, r, status = EXIT_BAD;
	size_t mem_size, dlen;
	uint8_t code[64];
	struct vmm_err err = { 0 };
	struct daxsnap_replay rp;
	uint64_t t0, t1;

	if ((r = parse_opts("replay", "FILE|- --map NODEID=PATH...",
			    "Restore into a real KVM VM (window mapper) and touch every mapping.",
			    opts, &argc, &argv)) || (r = want_args("replay", argc, 1, 1)) ||
	    (r = parse_maps("replay", maps, paths)) || (r = read_input(argv[1], &data, &dlen)))
		return r;
	{
		g_autofree char *perr = NULL;

		if (parse_blob(data, dlen, &h, &v, &perr) < 0)
			return complain(EXIT_BAD, argv[1], perr);
	}
	mem_size = (REPLAY_TABLE + 4 * (size_t)h.count + 0x10000 + 0xfffff) & ~(size_t)0xfffff;
	if (h.base_gpa < mem_size || h.base_gpa + h.window_len > (1ull << 32))
		return complain(EXIT_BAD, argv[1], "replay needs the window between the guest's RAM and 4 GiB "
				"(the replay guest is 32-bit; see rebase)");

	dax_table_new(&table);
	g_hash_table_iter_init(&it, paths);
	while (g_hash_table_iter_next(&it, &k, &p)) {
		r = dax_table_add(table, *(uint64_t *)k, p);
		if (r < 0) {
			complain(EXIT_BAD, p, g_strerror(-r));
			goto out;
		}
	}
	kvm = mk_kvm_open();
	if (kvm < 0 && !mk_in_microvm()) {
		g_autofree char *kwhy = g_strdup_printf("KVM unavailable here: %s", mk_kvm_strerror(kvm));

		status = replay_in_microvm(kwhy, &h, v, paths, quiet);
		goto out;
	}
	if (kvm < 0) {
		/* 77 in every memkit tool: no KVM, not a failed replay */
		fprintf(stderr, "%s: KVM unavailable: %s\n", prog, mk_kvm_strerror(kvm));
		status = EXIT_NOKVM;
		goto out;
	}
	if (vmm_vm_open(&tv, kvm, mem_size, 0, &err) < 0) {
		complain(EXIT_BAD, "replay: cannot create the KVM VM", err.msg);
		goto out;
	}
	{
		struct dax_config cfg = {
			.size = sizeof(cfg),
			.base_gpa = h.base_gpa, .window_len = h.window_len, .cap = h.cap,
			.align_log2 = h.version == 2 ? h.align_log2 : 12,
			.mapper = DAX_MAPPER_KVM_WINDOW, .vm_fd = tv.vm_fd, .memslot = 1,
		};
		struct dax_backend be = { dax_table_open, NULL, table };
		if (cfg.cap > cfg.window_len)
			cfg.cap = cfg.window_len;
		r = dax_session_new(&cfg, &be, &s);
		if (r < 0) {
			complain(EXIT_BAD, "replay: session", g_strerror(-r));
			goto out;
		}
	}
	daxsnap_replay_watch(s, &rp);      /* before restore: eager mode reports there */
	r = dax_session_restore(s, data, dlen);
	if (r < 0) {
		complain(EXIT_BAD, "replay: restore", g_strerror(-r));
		goto out;
	}
	/* guest: slot address table, code, flat 32-bit segments */
	for (uint64_t i = 0; i < h.count; i++) {
		uint32_t a = (uint32_t)(h.base_gpa + v[i].moffset);
		memcpy((uint8_t *)tv.ram + REPLAY_TABLE + 4 * i, &a, 4);
	}
	if (vmm_cpu_flat32(&tv, REPLAY_CODE, code,
			   daxsnap_touch_code(code, REPLAY_TABLE, (uint32_t)h.count), &err) < 0)
		goto kvm_fail;

	/* libdax binds each slot on its first touch (or bound all at restore) */
	t0 = mk_now_ns();
	r = daxsnap_replay_run(s, tv.vcpu_fd, tv.run, &rp);
	t1 = mk_now_ns();
	if (r == -EPROTO) {
		if (!rp.outside)
			fprintf(stderr, "%s: replay: unexpected KVM exit %u\n", prog, tv.run->exit_reason);
		goto out;
	}
	if (r < 0)
		goto kvm_fail;
	dax_session_stats(s, &st);
	if (!quiet)
		printf("replayed %" PRIu64 " mappings: %" PRIu64 " rebound, %u failed, %u exits, %.1f us per mapping\n",
		       h.count, st.faults, rp.failed, rp.exits,
		       h.count ? (double)(t1 - t0) / 1e3 / (double)h.count : 0.0);
	if (rp.outside || st.faults + rp.failed != h.count) {
		fprintf(stderr, "%s: replay: %" PRIu64 " mappings bound for %" PRIu64 "\n", prog, st.faults,
			h.count);
		goto out;
	}
	status = rp.failed ? EXIT_BAD : 0;
	goto out;
kvm_fail:
	complain(EXIT_BAD, "replay", err.err ? err.msg : "KVM vCPU setup or run failed");
out:
	dax_session_free(s);
	dax_table_free(table);
	vmm_vm_close(&tv);
	if (kvm >= 0)
		mk_close(kvm);
	return status;
}

/* ---- main ------------------------------------------------------------------------------------ */

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
	{ "show", cmd_show, "print a blob (table or --json)" },
	{ "verify", cmd_verify, "check a blob [--base --len --cap --json]; exit 1 if invalid" },
	{ "diff", cmd_diff, "compare two blobs [--json]; exit 1 if they differ" },
	{ "create", cmd_create, "write a blob from options or JSON (--json) on stdin" },
	{ "convert", cmd_convert, "rewrite as --to v1|v2" },
	{ "rebase", cmd_rebase, "move the window to --base GPA" },
	{ "check-files", cmd_check_files, "list entries whose file changed (--map NODEID=PATH) [--json]" },
	{ "replay", cmd_replay, "restore into a KVM VM and touch every mapping (--map NODEID=PATH)" },
};

static void help(void)
{
	printf("Usage: %s COMMAND [OPTION...] [ARG...]\n\n"
	       "Inspect, check, edit and replay libdax DAX snapshot blobs.\n\nCommands:\n", prog);
	for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++)
		printf("  %-12s %s\n", cmds[i].name, cmds[i].help);
	printf("\nOptions:\n  -h, --help     show this help\n  -V, --version  print the versions and exit\n"
	       "\n'%s COMMAND --help' describes a command's options.\n"
	       "Exit status: 0 ok, 1 invalid/different/changed/failed, 2 usage or I/O error,\n"
	       "77 KVM unavailable (replay). See daxsnap(1).\n", prog);
}

/* -J or --json among a command's options (before "--"): its errors are JSON too. */
static bool wants_json(int argc, char **argv)
{
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-J") || !strcmp(argv[i], "--json"))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	int r;

	mk_tool_init(prog);
	if (argc < 2)
		return usage_error("missing command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help();
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		g_autofree char *libs = g_strdup_printf("libdax %s", dax_version());
		mk_print_version(prog, libs, NULL);
		return 0;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++)
		if (!strcmp(argv[1], cmds[i].name)) {
			cur_cmd = cmds[i].name;
			/* create's -J is its input; the others' is what they print */
			jerr.on = cmds[i].fn != cmd_create && wants_json(argc, argv);
			r = cmds[i].fn(argc - 1, argv + 1);
			if (operands)
				g_ptr_array_free(operands, TRUE);
			return r;
		}
	{
		g_autofree char *e = mk_text_escape(argv[1]);
		return usage_error("unknown command '%s'", e);
	}
}
