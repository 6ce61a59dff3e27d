/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest: run a real KVM guest over memory from libsandbox,
 * libdax and libshm and check from both sides that it behaves.
 * See memcheck-guest(1).
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/macro.h"
#include "common/sys.h"
#include "tools/memcheck/check.h"
#include "tools/json-out.h"
#include "tools/microvm-run.h"
#include "tools/tool-util.h"
#include "dax.h"
#include "sandbox.h"
#include "shm.h"
#include "tools/memcheck/proto.h"

#define PROG "memcheck-guest"

enum { EXIT_PASS = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_NOKVM = 77 };

const struct mc_check mc_checks[] = {
	{ "patterns", "guest and host write and verify each other's patterns", mc_check_patterns },
	{ "guard", "accesses just outside the region exit as MMIO", mc_check_guard },
	{ "dirty", "every page the guest writes is in libsandbox's dirty log", mc_check_dirty },
	{ "readonly", "a read-only region stops guest writes", mc_check_readonly },
	{ "snapshot", "restore brings back the snapshot bytes", mc_check_snapshot },
	{ "patterns-gmem", "patterns on a guest_memfd region", mc_check_patterns_gmem },
	{ "guard-gmem", "guard on a guest_memfd region", mc_check_guard_gmem },
	{ "snapshot-gmem", "snapshot on a guest_memfd region", mc_check_snapshot_gmem },
	{ "dax", "a file in the DAX window, snapshot, lazy rebind", mc_check_dax },
	{ "shm", "a libshm block written by the guest, read by another process", mc_check_shm },
	{ "lazy", "a guest over memory paged in from snapshot files, a bad chunk refused", mc_check_lazy },
	{ "linux", "a stock Linux guest reads and writes a virtio-fs DAX mount", mc_check_linux },
};
const unsigned mc_ncheck = MK_ARRAY_SIZE(mc_checks);

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	char *msg;
	va_list ap;
	int status;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	status = mk_usage_error(PROG, PROG, "%s", msg);
	g_free(msg);            /* exit() runs no g_autofree cleanup: LeakSanitizer saw it */
	exit(status);
}

/* ---- output --------------------------------------------------------------- */

static const char *status_name(enum mc_status st)
{
	return st == MC_PASS ? "PASS" : st == MC_FAIL ? "FAIL" : "SKIP";
}

/* Times in ms and metrics with a unit of time or rate, and any fraction, with
 * three decimals (microseconds for ms); whole counts as integers. memcheck-guest(1), --json. */
static bool metric_is_fixed(const struct mc_metric *m)
{
	static const char *const units[] = { "s", "ms", "us", "GB/s" };

	for (size_t i = 0; i < G_N_ELEMENTS(units); i++)
		if (m->unit && !strcmp(m->unit, units[i]))
			return true;
	return m->value != floor(m->value) || fabs(m->value) >= 9.2e18;
}

static void json_metric(struct jw *w, const struct mc_metric *m)
{
	if (metric_is_fixed(m))
		jw_fixed(w, m->name, m->value, 3);
	else if (m->value < 0)
		jw_i64(w, m->name, (int64_t)m->value);
	else
		jw_u64(w, m->name, (uint64_t)m->value);
}

static void json_ms(struct jw *w, uint64_t ns)
{
	/* whole microseconds, so the three decimals are exact */
	jw_fixed(w, "ms", (double)((ns + 500) / 1000) / 1e3, 3);
}

static void print_json(const struct mc_opts *o, const struct mc_result *res, unsigned n,
		       const char *verdict, unsigned counts[3], uint64_t total_ns)
{
	struct jw w;
	g_autofree char *doc = NULL;

	jw_begin_document(&w);
	jw_string(&w, "program", PROG);
	jw_string(&w, "version", PACKAGE_VERSION);
	jw_string(&w, "kernel", o->release);
	jw_string(&w, "via", o->via);
	jw_u64(&w, "size", o->size);
	jw_u64(&w, "seed", o->seed);
	jw_u64(&w, "iterations", o->iterations);
	jw_string(&w, "result", verdict);
	jw_u64(&w, "passed", counts[MC_PASS]);
	jw_u64(&w, "failed", counts[MC_FAIL]);
	jw_u64(&w, "skipped", counts[MC_SKIP]);
	json_ms(&w, total_ns);
	jw_array_begin(&w, "checks");
	for (unsigned i = 0; i < n; i++) {
		jw_object_begin(&w, NULL);
		jw_string(&w, "name", res[i].name);
		jw_string(&w, "status", res[i].status == MC_PASS ? "pass" :
				       res[i].status == MC_FAIL ? "fail" : "skip");
		json_ms(&w, res[i].ns);
		jw_string(&w, "detail", res[i].detail);
		if (res[i].region)
			jw_string(&w, "region", res[i].region);
		jw_object_begin(&w, "metrics");
		for (unsigned j = 0; j < res[i].nmetrics; j++)
			json_metric(&w, &res[i].metrics[j]);
		jw_object_end(&w);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	doc = jw_end_document(&w);
	fputs(doc, stdout);
}

/* --json where no check could run: still one JSON object. */
static void print_unavailable(const char *reason)
{
	struct jw w;
	g_autofree char *doc = NULL;

	jw_begin_document(&w);
	jw_string(&w, "program", PROG);
	jw_string(&w, "version", PACKAGE_VERSION);
	jw_string(&w, "result", "unavailable");
	jw_string(&w, "reason", reason);
	doc = jw_end_document(&w);
	fputs(doc, stdout);
}

static void print_table(const struct mc_opts *o, const struct mc_result *res, unsigned n,
			unsigned counts[3], uint64_t total_ns)
{
	printf("%s %s: %llu MiB, seed %llu, %u %s; kernel %s via %s\n", PROG,
	       PACKAGE_VERSION, (unsigned long long)(o->size >> 20), (unsigned long long)o->seed,
	       o->iterations, mk_plural(o->iterations, "iteration", "iterations"), o->release, o->via);
	printf("%-13s %-6s %10s  %s\n", "CHECK", "RESULT", "TIME", "DETAIL");
	/* A sandbox check names the kind of region it ran on first. */
	for (unsigned i = 0; i < n; i++)
		printf("%-13s %-6s %7.1f ms  %s%s%s%s\n", res[i].name, status_name(res[i].status),
		       (double)res[i].ns / 1e6, res[i].region ? "[" : "",
		       res[i].region ? res[i].region : "", res[i].region ? "] " : "", res[i].detail);
	printf("%u %s: %u passed, %u failed, %u skipped (%.1f ms)\n", n, mk_plural(n, "check", "checks"),
	       counts[MC_PASS], counts[MC_FAIL], counts[MC_SKIP], (double)total_ns / 1e6);
}

/* ---- main ----------------------------------------------------------------- */

/* Run the checks again in the microVM: the same arguments but --kernel (the runner's). */
static int in_microvm(const char *kernel, char **argv, const char *why)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new();

	for (char **a = argv + 1; *a; a++) {
		if (!strcmp(*a, "--kernel")) {
			if (a[1])
				a++;
			continue;
		}
		if (!g_str_has_prefix(*a, "--kernel="))
			g_ptr_array_add(args, *a);
	}
	g_ptr_array_add(args, NULL);
	return mk_microvm_run(PROG, kernel, NULL, (char **)args->pdata, why, "running the checks");
}

/* --size, --seed, --iterations, --timeout into o (a usage error exits). */
static void parse_numbers(struct mc_opts *o, const char *size_s, const char *seed_s, const char *iter_s,
			  const char *timeout_s)
{
	if (size_s && (!mk_parse_u64(size_s, &o->size) || o->size < (1u << 20) ||
		       o->size > MC_SIZE_MAX || o->size % 4096))
		usage_error("--size: '%s' is not a size from 1M to 1G in whole 4 KiB pages", size_s);
	if (seed_s && !mk_parse_u64(seed_s, &o->seed))
		usage_error("--seed: '%s' is not a number", seed_s);
	if (iter_s) {
		uint64_t v;
		if (!mk_parse_u64(iter_s, &v) || v < 1 || v > 100000)
			usage_error("--iterations: '%s' is not a number from 1 to 100000", iter_s);
		o->iterations = (unsigned)v;
	}
	if (timeout_s) {
		uint64_t v;
		if (!mk_parse_u64(timeout_s, &v) || v < 1 || v > 3600)
			usage_error("--timeout: '%s' is not a number of seconds from 1 to 3600",
				    timeout_s);
		o->timeout_ns = v * 1000000000ull;
	}
}

/* --tests (and --inject-fault's check) into selected[] (a usage error exits). */
static void select_checks(const char *tests_s, const char *inject, bool *selected)
{
	memset(selected, 0, mc_ncheck * sizeof(*selected));
	if (!tests_s || !strcmp(tests_s, "all")) {
		/* linux boots a whole kernel (tens of seconds): only when named. */
		for (unsigned i = 0; i < mc_ncheck; i++)
			selected[i] = strcmp(mc_checks[i].name, "linux") != 0;
	} else {
		g_auto(GStrv) names = g_strsplit(tests_s, ",", -1);
		for (char **p = names; *p; p++) {
			unsigned i;
			for (i = 0; i < mc_ncheck && strcmp(*p, mc_checks[i].name); i++)
				;
			if (i == mc_ncheck)
				usage_error("--tests: unknown check '%s', --list names them", *p);
			selected[i] = true;
		}
	}
	if (inject) {
		unsigned i;
		for (i = 0; i < mc_ncheck && strcmp(inject, mc_checks[i].name); i++)
			;
		if (i == mc_ncheck && strcmp(inject, "all") && strcmp(inject, "hang"))
			usage_error("--inject-fault: unknown check '%s'", inject);
	}
}

/* Run the selected checks in order, a progress line on a terminal; returns how many ran. */
static unsigned run_checks(const struct mc_opts *o, const bool *selected, struct mc_result *res,
			   unsigned counts[3])
{
	unsigned n = 0, done = 0, total = 0;
	bool progress = isatty(STDERR_FILENO) && !o->verbose;

	for (unsigned i = 0; i < mc_ncheck; i++)
		total += selected[i];
	for (unsigned i = 0; i < mc_ncheck; i++) {
		uint64_t t;

		if (!selected[i])
			continue;
		if (progress)
			fprintf(stderr, "\r\033[K[%u/%u] %s...", ++done, total, mc_checks[i].name);
		memset(&res[n], 0, sizeof(res[n]));
		res[n].name = mc_checks[i].name;
		mc_note(o, "%s: start", mc_checks[i].name);
		t = mk_now_ns();
		mc_checks[i].run(o, &res[n]);
		res[n].ns = mk_now_ns() - t;
		mc_note(o, "%s: %s %s", mc_checks[i].name, status_name(res[n].status), res[n].detail);
		counts[res[n].status]++;
		n++;
	}
	if (progress)
		fputs("\r\033[K", stderr);
	return n;
}

int main(int argc, char **argv)
{
	g_autofree char *size_s = NULL, *tests_s = NULL, *seed_s = NULL, *iter_s = NULL,
			*timeout_s = NULL, *inject = NULL, *shm_helper = NULL, *kernel = NULL;
	gboolean json = FALSE, verbose = FALSE, version = FALSE, list = FALSE;
	GOptionEntry entries[] = {
		{ "size", 's', 0, G_OPTION_ARG_STRING, &size_s,
		  "Test region size (K/M/G suffixes; default 64M, at most 1G)", "SIZE" },
		{ "tests", 't', 0, G_OPTION_ARG_STRING, &tests_s,
		  "Comma-separated checks to run (default: all)", "LIST" },
		{ "seed", 0, 0, G_OPTION_ARG_STRING, &seed_s, "Pattern seed (default 1)", "N" },
		{ "iterations", 'i', 0, G_OPTION_ARG_STRING, &iter_s,
		  "Snapshot restore rounds (default 3)", "N" },
		{ "timeout", 0, 0, G_OPTION_ARG_STRING, &timeout_s,
		  "Seconds a guest command may take before the guest is stopped (default 10)", "SEC" },
		{ "kernel", 0, 0, G_OPTION_ARG_STRING, &kernel,
		  "Run the checks in memkit's microVM on this kernel (6.1, 6.12, a release or a path)",
		  "KERNEL" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &json, "Print one JSON object", NULL },
		{ "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Explain each step on stderr", NULL },
		{ "list", 'l', 0, G_OPTION_ARG_NONE, &list, "List the checks and exit", NULL },
		{ "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
		{ "inject-fault", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &inject, NULL, NULL },
		{ "shm-helper", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &shm_helper, NULL, NULL },
		{ NULL },
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- check memory from inside a KVM guest");
	g_autoptr(GError) err = NULL;
	struct mc_opts o = { .size = 64ull << 20, .seed = 1, .iterations = 3,
			     .timeout_ns = 10000000000ull };
	bool selected[MK_ARRAY_SIZE(mc_checks)];
	struct mc_result res[MK_ARRAY_SIZE(mc_checks)];
	unsigned n, counts[3] = { 0 };
	uint64_t t0;
	g_auto(GStrv) argv0 = g_strdupv(argv); /* for a re-run in the microVM */
	struct utsname uts;
	int fd;

	mk_tool_init(PROG);
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_description(ctx,
		"Checks: patterns guard dirty readonly snapshot dax shm lazy; linux only when\n"
		"named (it boots a stock kernel, see --kernel).\n"
		"Exit status: 0 no check failed, 1 a check failed, 2 usage error,\n"
		"77 KVM unavailable (neither /dev/kvm nor the microVM). See memcheck-guest(1).");
	if (!g_option_context_parse(ctx, &argc, &argv, &err))
		usage_error("%s", err->message);
	if (argc > 1)
		usage_error("unexpected argument '%s'", argv[1]);
	if (shm_helper)
		return mc_shm_helper(shm_helper);
	if (version) {
		g_autofree char *libs = g_strdup_printf("libsandbox %s, libdax %s, libshm %s",
							sbx_version(), dax_version(), shma_version());

		mk_print_version(PROG, libs, NULL);
		return EXIT_PASS;
	}
	if (list) {
		for (unsigned i = 0; i < mc_ncheck; i++)
			printf("%-13s %s\n", mc_checks[i].name, mc_checks[i].summary);
		return EXIT_PASS;
	}
	parse_numbers(&o, size_s, seed_s, iter_s, timeout_s);
	select_checks(tests_s, inject, selected);
	o.inject = inject;
	o.verbose = verbose;
	o.self = "/proc/self/exe";

	if (uname(&uts) < 0)
		g_strlcpy(uts.release, "unknown", sizeof(uts.release));
	o.release = uts.release;
	o.via = mk_in_microvm() ? "microvm" : "host";
	/* The microVM emulates its CPU (TCG): a guest command there runs 10-100x
	 * slower than on hardware, and slower still on a loaded host, so the
	 * default deadline is six times the native one. */
	if (!timeout_s && mk_in_microvm())
		o.timeout_ns = 60000000000ull;
	if (kernel && !mk_in_microvm()) {
		int r = in_microvm(kernel, argv0, NULL);

		if (r == EXIT_NOKVM && json)
			print_unavailable("no microVM on that kernel (see stderr)");
		return r;
	}

	fd = mk_kvm_open();
	if (fd >= 0) {
		/* A /dev/kvm that opens but cannot create a VM is no KVM either. */
		int vm = mk_kvm_create_vm(fd);

		if (vm < 0) {
			mk_close(fd);
			fd = vm == -ENOENT ? -ENXIO : vm;
		} else {
			mk_close(vm);
		}
	}
	if (fd < 0 && !mk_in_microvm()) {
		g_autofree char *why = g_strdup_printf("KVM unavailable here: %s", mk_kvm_strerror(fd));
		int r = in_microvm(NULL, argv0, why);

		if (r == EXIT_NOKVM && json)
			print_unavailable(why);
		return r;
	}
	if (fd < 0) {
		fprintf(stderr, "%s: KVM unavailable: %s\n", PROG, mk_kvm_strerror(fd));
		if (json)
			print_unavailable(mk_kvm_strerror(fd));
		return EXIT_NOKVM;
	}
	o.kvm_fd = fd;

	t0 = mk_now_ns();
	n = run_checks(&o, selected, res, counts);
	mk_close(fd);
	if (json)
		print_json(&o, res, n, counts[MC_FAIL] ? "fail" : "pass", counts,
			   mk_now_ns() - t0);
	else
		print_table(&o, res, n, counts, mk_now_ns() - t0);
	return counts[MC_FAIL] ? EXIT_FAILED : EXIT_PASS;
}
