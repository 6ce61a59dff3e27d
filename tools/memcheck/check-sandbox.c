/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest checks over libsandbox memory: patterns, guard, dirty,
 * readonly, snapshot. Each check has a VM of its own with the test region
 * bound at MC_GPA_TEST (slot MC_SLOT_TEST). Each runs on an anonymous
 * region and, but for dirty and readonly, also (the *-gmem checks) on a
 * guest_memfd region of its VM, where the kernel offers one; the result
 * names the kind. KVM keeps no dirty log of a guest_memfd memslot and has
 * no read-only one, so those two run on anonymous memory only.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "tools/memcheck/check.h"
#include "tools/memcheck/host.h"
#include "tools/memcheck/pattern.h"
#include "tools/tool-util.h"

/* What backs the test region. */
enum kind { ANON, GMEM };

/* A VM plus a bound test region. */
struct fixture {
	struct mc_vm vm;
	struct mc_mem *mem;
};

/*
 * -EOPNOTSUPP from the library on a guest_memfd region is the kernel
 * saying it has no host-mappable guest_memfd (before Linux 6.18): SKIP,
 * naming the kernel.
 */
static void setup_failed(const struct mc_opts *o, enum kind kind, const char *why, int r,
			 struct mc_result *res)
{
	if (kind == GMEM && r == -EOPNOTSUPP)
		mc_skip(res, "kernel %s: %s: no host-mappable guest_memfd for this VM (EOPNOTSUPP)",
			o->release, why);
	else
		mc_fail(res, "%s: %s", why, strerror(-r));
}

static bool fixture_open(const struct mc_opts *o, struct fixture *f, uint64_t size, unsigned flags,
			 enum kind kind, struct mc_result *res)
{
	const char *why = "";
	int r;

	memset(f, 0, sizeof(*f));
	res->region = kind == GMEM ? "guest_memfd" : "anonymous";
	if (!mc_check_vm(o, &f->vm, res))
		return false;
	if (kind == GMEM)
		r = mc_mem_new_gmem(size, &f->vm, &f->mem, &why);
	else
		r = mc_mem_new(size, &f->mem, &why);
	if (r < 0) {
		/* The region itself: the flags are the binding's, not yet asked for. */
		setup_failed(o, kind, why, r, res);
		goto fail;
	}
	r = mc_mem_bind(f->mem, &f->vm, MC_SLOT_TEST, MC_GPA_TEST, flags, &why);
	if (r < 0) {
		setup_failed(o, kind, why, r, res);
		goto fail;
	}
	return true;
fail:
	mc_mem_free(f->mem);
	mc_vm_close(&f->vm);
	return false;
}

static void fixture_close(struct fixture *f)
{
	/* The region first: its binding deletes the memslot through the VM fd. */
	mc_mem_free(f->mem);
	mc_vm_close(&f->vm);
}

/* A libsandbox call's result: true if it worked, else SKIP (not implemented) or FAIL. */
static bool lib_ok(struct mc_result *res, int64_t r, const char *why)
{
	if (r >= 0)
		return true;
	if (r == -ENOSYS)
		mc_skip(res, "%s not implemented", why);
	else
		mc_fail(res, "%s: %s", why, strerror((int)-r));
	return false;
}

static bool guest_do(struct fixture *f, struct mc_cmd *c, struct mc_result *res, const char *what)
{
	if (mc_vm_do(&f->vm, c) == 0)
		return true;
	mc_fail(res, "%s: %s", what, f->vm.err.msg);
	return false;
}

static double gbps(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes / (double)ns : 0;
}

/* ---- patterns -------------------------------------------------------------- */

static void check_patterns(const struct mc_opts *o, enum kind kind, struct mc_result *res)
{
	uint64_t size = o->size, fill_ns = 0, verify_ns = 0, host_ns = 0;
	struct fixture f;
	unsigned k;

	if (!fixture_open(o, &f, size, 0, kind, res))
		return;
	if (o->inject && !strcmp(o->inject, "hang")) {
		/* Debug: a guest that never answers must be stopped and failed. */
		struct mc_cmd c = { MC_OP_HANG, 0, 0, 0, 0, { 0 } };
		guest_do(&f, &c, res, "guest");
		goto out;
	}
	for (k = 0; k < MC_PAT_COUNT; k++) {
		uint64_t seed = o->seed + k, hseed = ~(o->seed + k), t;
		struct mc_cmd c = { MC_OP_FILL, MC_GPA_TEST, size, seed, k, { 0 } };
		struct mc_mismatch mm;
		int r;

		/* Guest writes, host verifies through the region's host API. */
		t = mk_now_ns();
		if (!guest_do(&f, &c, res, "guest fill"))
			goto out;
		fill_ns += mk_now_ns() - t;
		if (mc_injected(o, kind == GMEM ? "patterns-gmem" : "patterns"))
			mc_host_corrupt(f.mem, size / 2 + 3);
		t = mk_now_ns();
		r = mc_host_verify(f.mem, MC_GPA_TEST, k, seed, &mm);
		host_ns += mk_now_ns() - t;
		if (r < 0) {
			mc_fail(res, "host read: %s", strerror(-r));
			goto out;
		}
		if (mm.count) {
			mc_fail(res, "%s: host saw %llu bad words of the guest's; first at gpa 0x%llx: "
				"0x%016llx, expected 0x%016llx", mc_pat_name(k),
				(unsigned long long)mm.count, (unsigned long long)mm.first_gpa,
				(unsigned long long)mm.actual, (unsigned long long)mm.expected);
			goto out;
		}
		/* Host writes another stream, guest verifies. */
		r = mc_host_fill(f.mem, MC_GPA_TEST, k, hseed);
		if (r < 0) {
			mc_fail(res, "host write: %s", strerror(-r));
			goto out;
		}
		c = (struct mc_cmd){ MC_OP_VERIFY, MC_GPA_TEST, size, hseed, k, { 0 } };
		t = mk_now_ns();
		if (!guest_do(&f, &c, res, "guest verify"))
			goto out;
		verify_ns += mk_now_ns() - t;
		if (c.res[0]) {
			mc_fail(res, "%s: guest saw %llu bad words of the host's; first at gpa 0x%llx: "
				"0x%016llx, expected 0x%016llx", mc_pat_name(k),
				(unsigned long long)c.res[0], (unsigned long long)c.res[1],
				(unsigned long long)c.res[3], (unsigned long long)c.res[2]);
			goto out;
		}
		mc_note(o, "patterns: %s ok", mc_pat_name(k));
	}
	mc_metric(res, "guest_fill_gbps", gbps(size * MC_PAT_COUNT, fill_ns), "GB/s");
	mc_metric(res, "guest_verify_gbps", gbps(size * MC_PAT_COUNT, verify_ns), "GB/s");
	mc_metric(res, "host_verify_gbps", gbps(size * MC_PAT_COUNT, host_ns), "GB/s");
	mc_pass(res, "%u patterns x %llu MiB both ways; guest fill %.1f GB/s (incl. first touch), "
		"verify %.1f GB/s",
		MC_PAT_COUNT, (unsigned long long)(size >> 20), gbps(size * MC_PAT_COUNT, fill_ns),
		gbps(size * MC_PAT_COUNT, verify_ns));
out:
	fixture_close(&f);
}

/* ---- guard ----------------------------------------------------------------- */

/*
 * One access that must leave the guest's memory: an MMIO exit at exactly
 * gpa, of the right direction (and value for a write). Reads get 0.
 */
static bool expect_mmio(struct fixture *f, uint64_t gpa, bool write, uint64_t value,
			struct mc_result *res)
{
	struct mc_cmd c = { write ? MC_OP_WRITE64 : MC_OP_READ64, gpa, 0, 0, value, { 0 } };
	struct kvm_run *run = f->vm.tv.run;
	enum mc_run_result rr;
	unsigned st = 0;
	uint64_t got;

	rr = mc_vm_call(&f->vm, &c, &st);
	if (rr != MC_RUN_MMIO) {
		mc_fail(res, "guest %s of gpa 0x%llx was not caught: %s", write ? "write" : "read",
			(unsigned long long)gpa,
			rr == MC_RUN_DONE ? "the access reached memory" : f->vm.err.msg);
		return false;
	}
	if (run->mmio.phys_addr != gpa || !!run->mmio.is_write != write || run->mmio.len != 8) {
		mc_fail(res, "MMIO exit for gpa 0x%llx reports gpa 0x%llx, %s, len %u",
			(unsigned long long)gpa, (unsigned long long)run->mmio.phys_addr,
			run->mmio.is_write ? "write" : "read", run->mmio.len);
		return false;
	}
	memcpy(&got, run->mmio.data, 8);
	if (write && got != value) {
		mc_fail(res, "MMIO write data 0x%llx, guest wrote 0x%llx",
			(unsigned long long)got, (unsigned long long)value);
		return false;
	}
	if (!write)
		memset(run->mmio.data, 0, sizeof(run->mmio.data));
	rr = mc_vm_resume(&f->vm, &c, &st);
	if (rr != MC_RUN_DONE || st != MC_ST_OK) {
		mc_fail(res, "guest after MMIO exit: %s", rr == MC_RUN_DONE ? "bad status" : f->vm.err.msg);
		return false;
	}
	if (!write && c.res[0] != 0) {
		mc_fail(res, "guest read 0x%llx from gpa 0x%llx, the host answered 0",
			(unsigned long long)c.res[0], (unsigned long long)gpa);
		return false;
	}
	return true;
}

static void check_guard(const struct mc_opts *o, enum kind kind, struct mc_result *res)
{
	uint64_t end = MC_GPA_TEST + o->size, before, after;
	struct fixture f;
	struct mc_cmd c;
	int r;

	if (!fixture_open(o, &f, o->size, 0, kind, res))
		return;
	/* Give the region known content, written by the guest itself. */
	c = (struct mc_cmd){ MC_OP_FILL, MC_GPA_TEST, o->size, o->seed, MC_PAT_RANDOM, { 0 } };
	if (!guest_do(&f, &c, res, "guest fill"))
		goto out;
	r = mc_host_checksum(f.mem, &before);
	if (r < 0) {
		mc_fail(res, "host read: %s", strerror(-r));
		goto out;
	}
	if (!expect_mmio(&f, end, false, 0, res) ||
	    !expect_mmio(&f, end, true, 0x6775617264ull, res) ||
	    !expect_mmio(&f, end + 0x1000 - 8, true, ~0ull, res) ||
	    !expect_mmio(&f, MC_GPA_TEST - 8, true, 0x5a5a5a5a5a5a5a5aull, res) ||
	    !expect_mmio(&f, MC_GPA_TEST - 8, false, 0, res))
		goto out;
	mc_note(o, "guard: 5 accesses outside the region exited as MMIO");
	if (mc_injected(o, kind == GMEM ? "guard-gmem" : "guard"))
		mc_host_corrupt(f.mem, o->size - 1);
	r = mc_host_checksum(f.mem, &after);
	if (r < 0) {
		mc_fail(res, "host read: %s", strerror(-r));
		goto out;
	}
	if (after != before) {
		mc_fail(res, "region bytes changed while the guest touched the pages around it");
		goto out;
	}
	/* And the guest still sees its own bytes. */
	c = (struct mc_cmd){ MC_OP_VERIFY, MC_GPA_TEST, o->size, o->seed, MC_PAT_RANDOM, { 0 } };
	if (!guest_do(&f, &c, res, "guest verify"))
		goto out;
	if (c.res[0]) {
		mc_fail(res, "guest saw %llu changed words after the guard accesses",
			(unsigned long long)c.res[0]);
		goto out;
	}
	mc_pass(res, "5 accesses at gpa 0x%llx and 0x%llx: MMIO exits, region unchanged",
		(unsigned long long)(MC_GPA_TEST - 8), (unsigned long long)end);
out:
	fixture_close(&f);
}

/* ---- dirty ------------------------------------------------------------------ */

static bool test_bit(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

static void check_dirty(const struct mc_opts *o, struct mc_result *res)
{
	uint64_t npages = o->size / 4096, words = (npages + 63) / 64, state, missing = 0, extra = 0;
	uint64_t count = MK_MIN(MK_MAX(npages / 16, 64u), (uint64_t)MC_LIST_MAX), nset = 0;
	uint64_t *bm = NULL, *list = NULL;
	uint8_t *written = NULL;
	const char *why = "";
	struct fixture f;
	struct mc_cmd c;
	int r;

	if (!fixture_open(o, &f, o->size, MC_MEM_DIRTY, ANON, res))
		return;
	bm = calloc(words, 8);
	list = calloc(count, 8);
	written = calloc(npages, 1);
	if (!bm || !list || !written) {
		mc_fail(res, "out of memory");
		goto out;
	}
	/* Start from a clean log. */
	r = mc_mem_dirty_log(f.mem, bm, &why);
	if (!lib_ok(res, r, why))
		goto out;
	c = (struct mc_cmd){ MC_OP_WRITE_PAGES, MC_GPA_TEST, o->size, o->seed, count, { 0 } };
	if (!guest_do(&f, &c, res, "guest write-pages"))
		goto out;
	/* The guest's report: copied once, every entry checked against our own replay. */
	memcpy(list, f.vm.low + MC_LIST, count * 8);
	state = mc_xs_seed(o->seed);
	for (uint64_t i = 0; i < count; i++) {
		struct mc_page_write w;

		mc_page_next(&state, npages, &w);
		if (list[i] != w.page) {
			mc_fail(res, "guest reported page %llu as write %llu, expected page %llu",
				(unsigned long long)list[i], (unsigned long long)i,
				(unsigned long long)w.page);
			goto out;
		}
		written[w.page] = 1;
	}
	r = mc_mem_dirty_log(f.mem, bm, &why);
	if (!lib_ok(res, r, why))
		goto out;
	mc_note(o, "dirty: guest report matches the replay of seed %llu; dirty log fetched",
		(unsigned long long)o->seed);
	if (mc_injected(o, "dirty"))
		bm[list[0] / 64] &= ~(1ull << (list[0] % 64));
	for (uint64_t p = 0; p < npages; p++) {
		bool d = test_bit(bm, p);

		nset += written[p];
		if (written[p] && !d) {
			if (!missing)
				mc_note(o, "dirty: page %llu written but not in the log",
					(unsigned long long)p);
			missing++;
		} else if (!written[p] && d) {
			extra++;
		}
	}
	mc_metric(res, "pages_written", (double)nset, "pages");
	mc_metric(res, "pages_missing", (double)missing, "pages");
	mc_metric(res, "pages_extra", (double)extra, "pages");
	if (missing) {
		mc_fail(res, "%llu of %llu written pages missing from the dirty log",
			(unsigned long long)missing, (unsigned long long)nset);
		goto out;
	}
	mc_pass(res, "%llu %s written (%llu %s), all in the dirty log; %llu other %s logged",
		(unsigned long long)nset, mk_plural(nset, "page", "pages"), (unsigned long long)count,
		mk_plural(count, "write", "writes"), (unsigned long long)extra,
		mk_plural(extra, "page", "pages"));
out:
	free(bm);
	free(list);
	free(written);
	fixture_close(&f);
}

/* ---- readonly --------------------------------------------------------------- */

static void check_readonly(const struct mc_opts *o, struct mc_result *res)
{
	uint64_t seed = o->seed ^ 0x726f, before, after;
	struct fixture f;
	struct mc_mismatch mm;
	struct mc_cmd c;
	int r;

	if (mk_kvm_check_extension(o->kvm_fd, KVM_CAP_READONLY_MEM) <= 0) {
		mc_skip(res, "KVM lacks KVM_CAP_READONLY_MEM");
		return;
	}
	if (!fixture_open(o, &f, o->size, MC_MEM_RO, ANON, res))
		return;
	r = mc_host_fill(f.mem, MC_GPA_TEST, MC_PAT_RANDOM, seed);
	if (r >= 0)
		r = mc_host_checksum(f.mem, &before);
	if (r < 0) {
		mc_fail(res, "host access: %s", strerror(-r));
		goto out;
	}
	mc_note(o, "readonly: %llu MiB bound read-only, filled by the host",
		(unsigned long long)(o->size >> 20));
	/* Reads work... */
	c = (struct mc_cmd){ MC_OP_VERIFY, MC_GPA_TEST, o->size, seed, MC_PAT_RANDOM, { 0 } };
	if (!guest_do(&f, &c, res, "guest verify"))
		goto out;
	if (c.res[0]) {
		mc_fail(res, "guest read %llu wrong words from the read-only region",
			(unsigned long long)c.res[0]);
		goto out;
	}
	/* ...writes exit, first, middle and last word. */
	if (!expect_mmio(&f, MC_GPA_TEST, true, 0x1111111111111111ull, res) ||
	    !expect_mmio(&f, MC_GPA_TEST + (o->size / 2 & ~7ull), true, 0, res) ||
	    !expect_mmio(&f, MC_GPA_TEST + o->size - 8, true, ~0ull, res))
		goto out;
	if (mc_injected(o, "readonly"))
		mc_host_corrupt(f.mem, 0);
	r = mc_host_checksum(f.mem, &after);
	if (r < 0) {
		mc_fail(res, "host read: %s", strerror(-r));
		goto out;
	}
	if (after != before) {
		r = mc_host_verify(f.mem, MC_GPA_TEST, MC_PAT_RANDOM, seed, &mm);
		mc_fail(res, "read-only bytes changed (%llu words; first at gpa 0x%llx)",
			r < 0 ? 0ull : (unsigned long long)mm.count,
			r < 0 ? 0ull : (unsigned long long)mm.first_gpa);
		goto out;
	}
	mc_pass(res, "3 guest writes caught as MMIO exits, %llu MiB unchanged",
		(unsigned long long)(o->size >> 20));
out:
	fixture_close(&f);
}

/* ---- snapshot ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void check_snapshot(const struct mc_opts *o, enum kind kind, struct mc_result *res)
{
	uint64_t seed = o->seed ^ 0x736e6170, npages = o->size / 4096;
	uint64_t dirty = MK_MIN(MK_MAX(npages / 100, 64u), (uint64_t)MC_LIST_MAX);
	uint64_t *cost = calloc(o->iterations, 8), restored = 0, n_copy, n_remap, n_trim;
	const char *why = "";
	int64_t pages;
	struct mc_mismatch mm;
	struct fixture f;
	struct mc_cmd c;
	int r;

	if (!cost) {
		mc_fail(res, "out of memory");
		return;
	}
	/* KVM keeps no dirty log of a guest_memfd memslot: each restore rewrites it all. */
	if (!fixture_open(o, &f, o->size, kind == GMEM ? 0 : MC_MEM_DIRTY, kind, res)) {
		free(cost);
		return;
	}
	c = (struct mc_cmd){ MC_OP_FILL, MC_GPA_TEST, o->size, seed, MC_PAT_RANDOM, { 0 } };
	if (!guest_do(&f, &c, res, "guest fill"))
		goto out;
	r = mc_mem_snapshot(f.mem, &why);
	if (!lib_ok(res, r, why))
		goto out;
	for (unsigned it = 0; it < o->iterations; it++) {
		uint64_t t;

		c = (struct mc_cmd){ MC_OP_WRITE_PAGES, MC_GPA_TEST, o->size, o->seed + it + 1,
				     dirty, { 0 } };
		if (!guest_do(&f, &c, res, "guest write-pages"))
			goto out;
		t = mk_now_ns();
		pages = mc_mem_restore(f.mem, &why);
		cost[it] = mk_now_ns() - t;
		if (!lib_ok(res, pages, why))
			goto out;
		restored += (uint64_t)pages;
		mc_note(o, "snapshot: round %u: %lld pages restored in %.1f us", it + 1,
			(long long)pages, (double)cost[it] / 1e3);
		if (mc_injected(o, kind == GMEM ? "snapshot-gmem" : "snapshot"))
			mc_host_corrupt(f.mem, (o->size / 3) & ~7ull);
		c = (struct mc_cmd){ MC_OP_VERIFY, MC_GPA_TEST, o->size, seed, MC_PAT_RANDOM, { 0 } };
		if (!guest_do(&f, &c, res, "guest verify"))
			goto out;
		if (c.res[0]) {
			mc_fail(res, "round %u: guest read %llu words that differ from the snapshot; "
				"first at gpa 0x%llx", it + 1, (unsigned long long)c.res[0],
				(unsigned long long)c.res[1]);
			goto out;
		}
	}
	r = mc_host_verify(f.mem, MC_GPA_TEST, MC_PAT_RANDOM, seed, &mm);
	if (r < 0 || mm.count) {
		mc_fail(res, "host view after restore: %s", r < 0 ? strerror(-r) : "bytes differ");
		goto out;
	}
	qsort(cost, o->iterations, 8, cmp_u64);
	mc_metric(res, "restore_median_us", (double)cost[o->iterations / 2] / 1e3, "us");
	mc_metric(res, "restore_max_us", (double)cost[o->iterations - 1] / 1e3, "us");
	mc_metric(res, "dirty_writes", (double)dirty, "pages");
	mc_metric(res, "pages_restored_avg", (double)restored / o->iterations, "pages");
	if (mc_mem_restore_counts(f.mem, &n_copy, &n_remap, &n_trim) < 0)
		n_copy = n_remap = n_trim = 0;
	mc_pass(res, "%u %s of %llu page %s, %.0f %s restored each (%s); restore "
		"median %.1f us, max %.1f us", o->iterations, mk_plural(o->iterations, "round", "rounds"),
		(unsigned long long)dirty, mk_plural(dirty, "write", "writes"),
		(double)restored / o->iterations, mk_plural((uint64_t)llround((double)restored / o->iterations), "page", "pages"),
		n_copy && !n_remap ? "copy-back" : n_remap && !n_copy ?
		(kind == GMEM ? "whole region rewritten" : "remap") : "copy-back/remap",
		(double)cost[o->iterations / 2] / 1e3, (double)cost[o->iterations - 1] / 1e3);
out:
	free(cost);
	fixture_close(&f);
}

/* ---- the checks, on each kind of region ------------------------------------ */

void mc_check_patterns(const struct mc_opts *o, struct mc_result *res) { check_patterns(o, ANON, res); }
void mc_check_guard(const struct mc_opts *o, struct mc_result *res) { check_guard(o, ANON, res); }
void mc_check_dirty(const struct mc_opts *o, struct mc_result *res) { check_dirty(o, res); }
void mc_check_readonly(const struct mc_opts *o, struct mc_result *res) { check_readonly(o, res); }
void mc_check_snapshot(const struct mc_opts *o, struct mc_result *res) { check_snapshot(o, ANON, res); }
void mc_check_patterns_gmem(const struct mc_opts *o, struct mc_result *res) { check_patterns(o, GMEM, res); }
void mc_check_guard_gmem(const struct mc_opts *o, struct mc_result *res) { check_guard(o, GMEM, res); }
void mc_check_snapshot_gmem(const struct mc_opts *o, struct mc_result *res) { check_snapshot(o, GMEM, res); }
