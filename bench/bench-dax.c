/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libdax benchmark, one table:
 *  - FUSE_SETUPMAPPING + FUSE_REMOVEMAPPING pairs of 2 MiB ranges with
 *    1k / 10k / 25k live slots: KVM window mapper vs KVM memslot mapper;
 *  - snapshot (v1, v2) and restore (metadata only) of 10k and 100k slots,
 *    restore beside eagerly setting up the same 10k slots;
 *  - first-touch rebind in a real guest (MMIO exit -> bind -> complete)
 *    beside a direct access to an already bound page.
 * Medians of several runs. Measurements, not assertions.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "dax.h"
#include "tests/kvmtest.h"
#include "tools/daxsnap.h"
#include "bench/bench-util.h"

#define M2 (2ull << 20)
#define WBASE 0x40000000ull
#define RUNS 5

static struct dax_table *table;
static char *path;

static void die(const char *what, int r)
{
	fprintf(stderr, "bench-dax: %s: %s\n", what, g_strerror(r < 0 ? -r : r));
	exit(1);
}

static struct dax_session *session(int vm, unsigned mapper, uint64_t wlen, unsigned align_log2,
				   uint64_t max_mappings, unsigned nslots)
{
	struct dax_config cfg = {
		.base_gpa = WBASE, .window_len = wlen, .align_log2 = align_log2,
		.max_mappings = max_mappings, .mapper = mapper, .vm_fd = vm, .slot = 1,
		.nslots = nslots,
	};
	struct dax_backend be = { dax_table_open, NULL, table };
	struct dax_session *s;
	int r = dax_session_new(&cfg, &be, &s);

	if (r < 0)
		die("dax_session_new", r);
	return s;
}

static void setup_at(struct dax_session *s, uint64_t moff, uint64_t len)
{
	struct dax_setup_req q = { DAX_FH_NONE, 0, len, DAX_FUSE_FLAG_READ, moff };
	int r = dax_session_setup(s, 1, &q);

	if (r < 0)
		die("setup", r);
}

/* µs per setup+remove pair with `live` slots mapped; median of RUNS. */
static double pairs(int kvm, unsigned mapper, unsigned live, unsigned npairs)
{
	double v[RUNS];
	int vm = mk_kvm_create_vm(kvm), vcpu;
	struct dax_session *s;

	if (vm < 0)
		die("KVM_CREATE_VM", vm);
	/* a VM as a VMM has it: memslot changes must wait for vCPUs (SRCU) */
	vcpu = mk_kvm_create_vcpu(vm, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU", vcpu);
	s = session(vm, mapper, (uint64_t)(live + 64) * M2, 21, live + 64, live + 8);
	for (unsigned i = 0; i < live; i++)
		setup_at(s, (uint64_t)i * M2, M2);
	for (int run = 0; run < RUNS; run++) {
		double t0 = bench_now_us();
		for (unsigned i = 0; i < npairs; i++) {
			uint64_t moff = (uint64_t)(live + i % 32) * M2;
			struct dax_range e = { moff, M2 };
			int r;
			setup_at(s, moff, M2);
			r = dax_session_remove(s, &e, 1);
			if (r < 0)
				die("remove", r);
		}
		v[run] = (bench_now_us() - t0) / npairs;
	}
	dax_session_free(s);
	mk_close(vcpu);
	mk_close(vm);
	return bench_median(v, RUNS);
}

/* A blob of n 4 KiB slots spread over a window of 2n pages, nodes cycling 1..4. */
static void *make_blob(unsigned n, unsigned version, size_t *len)
{
	struct dax_blob_header h = { .version = version, .align_log2 = 12, .base_gpa = WBASE,
				     .window_len = (uint64_t)n * 8192, .cap = (uint64_t)n * 8192 };
	struct dax_mapping *v = g_new0(struct dax_mapping, n);
	const char *why;
	void *blob;
	int r;

	for (unsigned i = 0; i < n; i++)
		v[i] = (struct dax_mapping){ .moffset = (uint64_t)i * 8192, .len = 4096, .nodeid = 1,
					     .foffset = 0, .prot = DAX_PROT_READ };
	r = dax_blob_build(&h, v, n, &blob, len, &why);
	if (r < 0) {
		fprintf(stderr, "bench-dax: blob: %s\n", why);
		exit(1);
	}
	g_free(v);
	return blob;
}

struct snapres {
	double snap_v1_ms, snap_v2_ms, restore_ms;
};

static struct snapres snap_restore(int kvm, unsigned n)
{
	double a[RUNS], b[RUNS], c[RUNS];
	size_t len;
	void *blob = make_blob(n, 2, &len);
	int vm = mk_kvm_create_vm(kvm);
	struct dax_session *s;
	struct snapres res;

	if (vm < 0)
		die("KVM_CREATE_VM", vm);
	s = session(vm, DAX_MAPPER_KVM_WINDOW, (uint64_t)n * 8192, 12, n, 0);
	for (int run = 0; run < RUNS; run++) {
		void *out;
		size_t olen;
		double t0 = bench_now_us();
		int r = dax_session_restore(s, blob, len);
		double t1 = bench_now_us();
		if (r < 0)
			die("restore", r);
		r = dax_session_snapshot(s, 1, &out, &olen);
		double t2 = bench_now_us();
		if (r < 0)
			die("snapshot v1", r);
		free(out);
		double t3 = bench_now_us();
		r = dax_session_snapshot(s, 2, &out, &olen);
		double t4 = bench_now_us();
		if (r < 0)
			die("snapshot v2", r);
		free(out);
		c[run] = (t1 - t0) / 1e3;
		a[run] = (t2 - t1) / 1e3;
		b[run] = (t4 - t3) / 1e3;
	}
	res.restore_ms = bench_median(c, RUNS);
	res.snap_v1_ms = bench_median(a, RUNS);
	res.snap_v2_ms = bench_median(b, RUNS);
	dax_session_free(s);
	mk_close(vm);
	free(blob);
	return res;
}

/* Eagerly setting up n 4 KiB slots (what a restore without lazy rebind would pay). */
static double eager_setup_ms(int kvm, unsigned n)
{
	double v[RUNS];
	int vm = mk_kvm_create_vm(kvm);
	struct dax_session *s;

	if (vm < 0)
		die("KVM_CREATE_VM", vm);
	s = session(vm, DAX_MAPPER_KVM_WINDOW, (uint64_t)n * 8192, 12, n, 0);
	for (int run = 0; run < RUNS; run++) {
		double t0 = bench_now_us();
		for (unsigned i = 0; i < n; i++)
			setup_at(s, (uint64_t)i * 8192, 4096);
		v[run] = (bench_now_us() - t0) / 1e3;
		dax_session_reset(s);
	}
	dax_session_free(s);
	mk_close(vm);
	return bench_median(v, RUNS);
}

/* µs per slot for the guest's walk; first = restored slots, else already bound. */
static double guest_walk(struct kvmtest_vm *vm, struct dax_session *s, unsigned n)
{
	uint8_t code[DAXSNAP_TOUCH_CODE_MAX];
	size_t clen = daxsnap_touch_code(code, 0x2000, n);
	double t0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t a = (uint32_t)(WBASE + (uint64_t)i * M2);
		memcpy((uint8_t *)vm->mem + 0x2000 + 4 * i, &a, 4);
	}
	if (kvmtest_load(vm, 0x1000, code, clen) < 0)
		die("load", EINVAL);
	t0 = bench_now_us();
	for (;;) {
		int r = kvmtest_run(vm);
		if (r == KVM_EXIT_HLT)
			break;
		if (r != KVM_EXIT_MMIO || dax_session_handle_kvm_exit(s, vm->run) != 1)
			die("guest walk", r < 0 ? r : EIO);
	}
	return (bench_now_us() - t0) / n;
}

static void first_touch(double *lazy_us, double *bound_us, double *eager_us)
{
	double a[RUNS], b[RUNS], c[RUNS];
	const unsigned n = 1000;        /* 2 GiB of window below 4 GiB for the 32-bit guest */

	for (int run = 0; run < RUNS; run++) {
		struct kvmtest_vm vm;
		const char *why;
		struct dax_session *s;
		void *blob;
		size_t len;
		double t0;

		if (kvmtest_vm_open(&vm, 1 << 20, &why) < 0) {
			fprintf(stderr, "bench-dax: VM: %s\n", why);
			exit(1);
		}
		s = session(vm.vm_fd, DAX_MAPPER_KVM_WINDOW, (uint64_t)n * M2, 21, n, 0);
		t0 = bench_now_us();
		for (unsigned i = 0; i < n; i++)
			setup_at(s, (uint64_t)i * M2, M2);
		c[run] = (bench_now_us() - t0) / n;
		if (dax_session_snapshot(s, 2, &blob, &len) < 0 || dax_session_restore(s, blob, len) < 0)
			die("snapshot/restore", EIO);
		free(blob);
		a[run] = guest_walk(&vm, s, n);
		b[run] = guest_walk(&vm, s, n);
		dax_session_free(s);
		kvmtest_vm_close(&vm);
	}
	*lazy_us = bench_median(a, RUNS);
	*bound_us = bench_median(b, RUNS);
	*eager_us = bench_median(c, RUNS);
}

int main(void)
{
	static const unsigned lives[] = { 1000, 10000, 25000 };
	double win[3], mem[3];
	struct snapres s10k, s100k;
	double eager10k, lazy, bound, eager;
	g_autofree char *mmc = NULL;
	int kvm, fd;
	GError *err = NULL;

	kvm = mk_kvm_open();
	if (kvm < 0) {
		printf("bench-dax: skipped: KVM unavailable: %s\n", mk_kvm_strerror(kvm));
		return 0;
	}
	fd = g_file_open_tmp("bench-dax-XXXXXX", &path, &err);
	if (fd < 0 || ftruncate(fd, (off_t)M2) < 0)
		die("temp file", errno);
	close(fd);
	dax_table_new(&table);
	if (dax_table_add(table, 1, path) < 0)
		die("table", EIO);
	g_file_get_contents("/proc/sys/vm/max_map_count", &mmc, NULL, NULL);

	for (int i = 0; i < 3; i++) {
		win[i] = pairs(kvm, DAX_MAPPER_KVM_WINDOW, lives[i], 2000);
		mem[i] = pairs(kvm, DAX_MAPPER_KVM_MEMSLOT, lives[i], 300);
	}
	s10k = snap_restore(kvm, 10000);
	s100k = snap_restore(kvm, 100000);
	eager10k = eager_setup_ms(kvm, 10000);
	first_touch(&lazy, &bound, &eager);

	printf("libdax: DAX window session on KVM (medians of %d runs; vm.max_map_count=%s)\n",
	       RUNS, mmc ? g_strstrip(mmc) : "?");
	printf("%-40s %14s %16s %8s  %s\n", "operation", "libdax", "alternative", "ratio", "target");
	for (int i = 0; i < 3; i++) {
		char name[64];
		snprintf(name, sizeof(name), "setup+remove 2 MiB @ %u live", lives[i]);
		printf("%-40s %11.2f us %13.2f us %7.1fx  %s\n", name, win[i], mem[i], mem[i] / win[i],
		       i == 1 ? "<= 10 us, >= 10x (window vs memslot mapper)" :
		       "(window vs memslot mapper)");
	}
	printf("%-40s %11.3f ms %16s %8s  %s\n", "snapshot v1, 10k slots", s10k.snap_v1_ms, "-", "-", "");
	printf("%-40s %11.3f ms %16s %8s  %s\n", "snapshot v2, 10k slots", s10k.snap_v2_ms, "-", "-", "");
	printf("%-40s %11.3f ms %13.3f ms %7.1fx  %s\n", "restore (lazy), 10k slots", s10k.restore_ms,
	       eager10k, eager10k / s10k.restore_ms, "(vs eager setup of every slot)");
	printf("%-40s %11.3f ms %16s %8s  %s\n", "snapshot v1, 100k slots", s100k.snap_v1_ms, "-", "-", "<= 5 ms");
	printf("%-40s %11.3f ms %16s %8s  %s\n", "snapshot v2, 100k slots", s100k.snap_v2_ms, "-", "-", "<= 5 ms");
	printf("%-40s %11.3f ms %16s %8s  %s\n", "restore (lazy), 100k slots", s100k.restore_ms, "-", "-", "<= 20 ms");
	printf("%-40s %11.2f us %13.2f us %7.1fx  %s\n", "guest first touch (exit+rebind+MMIO)", lazy, bound,
	       lazy / bound, "(vs touch of a bound slot)");
	printf("%-40s %11.2f us %13.2f us %7.1fx  %s\n", "first-touch rebind vs eager setup", lazy, eager,
	       lazy / eager, "(per 2 MiB slot)");

	dax_table_free(table);
	g_unlink(path);
	g_free(path);
	mk_close(kvm);
	return 0;
}
