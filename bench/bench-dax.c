/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libdax benchmark, one table:
 *  - without KVM: a session's FUSE_SETUPMAPPING + FUSE_REMOVEMAPPING pair
 *    of a 2 MiB range (window mapper, registered with userfaultfd where
 *    allowed) beside the floor, a bare mmap(MAP_FIXED) of the file and one
 *    of anonymous memory back over the same range, at 1k / 10k / 25k live
 *    slots. The session pair makes three syscalls to the floor's two: the
 *    same two mmaps and the UFFDIO_REGISTER that makes a touch right
 *    after the remove a reported fault (it also merges the range back into
 *    its registered neighbours, so the next setup's mmap splits that VMA
 *    where the floor's does not). (A setup asks the table for no file
 *    identity: no fstat, unless a restored node waits for its check.)
 *  - with KVM: the same pairs, KVM window mapper vs KVM memslot mapper;
 *  - snapshot (v1, v2) and restore (metadata only) of 10k and 100k slots,
 *    restore beside eagerly setting up the same 10k slots;
 *  - a real guest's first touch of restored slots through userfaultfd
 *    (blocked in KVM_RUN until the fault service binds the slot) beside a
 *    touch of a bound page, and beside eager mode's rebind per slot (a
 *    restore that binds every slot).
 * Medians of several runs. Measurements, not assertions.
 *
 * --host: only the no-KVM rows. --cpu: those rows timed in this thread's
 * CPU time (CLOCK_THREAD_CPUTIME_ID: the system calls' kernel time
 * included), which other work on the machine inflates less than the wall
 * clock; the load average is printed with them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "dax.h"
#include "daxP.h"
#include "vmm/cpu.h"
#include "tools/daxsnap.h"
#include "bench/bench-util.h"

#define M2 (2ull << 20)
#define WBASE 0x40000000ull
#define RUNS 5
/*
 * The no-KVM rows are cheap (2000 pairs of a few µs a run) and share the
 * machine with whatever else runs: more runs, and the ratio is the median
 * of each run's own ratio (both sides measured pair by pair in that run).
 */
#define HOST_RUNS 15

static struct dax_table *table;
static char *path;
static bool use_cpu;    /* --cpu: the no-KVM rows in this thread's CPU time */

/* The no-KVM rows' clock: wall, or (--cpu) this thread's CPU time. */
static double host_us(void)
{
	struct timespec ts;

	if (!use_cpu)
		return bench_now_us();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bench-dax: %s: %s\n", what, g_strerror(r < 0 ? -r : r));
	exit(1);
}

static struct dax_session *session_flags(int vm, unsigned mapper, uint64_t wlen,
					 unsigned align_log2, uint64_t max_mappings,
					 unsigned nslots, uint32_t flags)
{
	struct dax_config cfg = {
		.size = sizeof(cfg),
		.base_gpa = WBASE, .window_len = wlen, .align_log2 = align_log2,
		.max_mappings = max_mappings, .mapper = mapper, .vm_fd = vm, .memslot = 1,
		.nmemslots = nslots, .flags = flags,
	};
	struct dax_backend be = { dax_table_open, NULL, table };
	struct dax_session *s;
	int r = vm < 0 ? dax_session_new_host_only(&cfg, &be, &s) : dax_session_new(&cfg, &be, &s);

	if (r < 0)
		die("dax_session_new", r);
	return s;
}

static struct dax_session *session(int vm, unsigned mapper, uint64_t wlen, unsigned align_log2,
				   uint64_t max_mappings, unsigned nslots)
{
	return session_flags(vm, mapper, wlen, align_log2, max_mappings, nslots, 0);
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

/*
 * The no-KVM rows' start: `live` read-write 2 MiB slots set up in s and,
 * for the floor, mapped from the same file (its fd in *fd) into a bare
 * reservation of wlen bytes, returned.
 */
static char *host_fill(struct dax_session *s, unsigned live, uint64_t wlen, int *fd)
{
	char *res;
	void *p;
	int r;

	*fd = dax_table_open(table, 1, DAX_FH_NONE, DAX_PROT_READ | DAX_PROT_WRITE, &(struct dax_file_id){ 0 });
	if (*fd < 0)
		die("open", *fd);
	r = mk_mmap(NULL, wlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0, &p);
	if (r < 0)
		die("mmap", r);
	res = p;
	for (unsigned i = 0; i < live; i++) {
		struct dax_setup_req q = { DAX_FH_NONE, 0, M2, DAX_FUSE_FLAG_READ | DAX_FUSE_FLAG_WRITE,
					   (uint64_t)i * M2 };
		if ((r = dax_session_setup(s, 1, &q)) < 0)
			die("setup", r);
		if ((r = mk_mmap(res + (uint64_t)i * M2, M2, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, *fd, 0, &p)) < 0)
			die("mmap", r);
	}
	return res;
}

/*
 * No KVM: µs per session setup+remove pair (read-write 2 MiB, so both
 * sides map MAP_SHARED) with `live` slots mapped, and the floor: the
 * same two mmap(MAP_FIXED) calls on a bare reservation with the same
 * live mappings. Medians of RUNS, the two interleaved run by run.
 */
static void host_pairs(unsigned live, unsigned npairs, double *sess_us, double *bare_us,
		       double *ratio, unsigned *mode)
{
	double a[HOST_RUNS], b[HOST_RUNS], rq[HOST_RUNS];
	uint64_t wlen = (uint64_t)(live + 64) * M2;
	struct dax_session *s = session_flags(-1, DAX_MAPPER_KVM_WINDOW, wlen, 21, live + 64, 0, 0);
	struct dax_fault_stats fs = { .size = sizeof(fs) };
	char *res;
	void *p;
	int fd, r;

	dax_session_fault_stats(s, &fs);
	*mode = fs.mode;
	res = host_fill(s, live, wlen, &fd);
	/* pair by pair, alternating, so that both sides see the same machine load */
	for (int run = 0; run < HOST_RUNS; run++) {
		double ts = 0, tb = 0;

		for (unsigned i = 0; i < npairs; i++) {
			uint64_t moff = (uint64_t)(live + i % 32) * M2;
			struct dax_setup_req q = { DAX_FH_NONE, 0, M2,
						   DAX_FUSE_FLAG_READ | DAX_FUSE_FLAG_WRITE, moff };
			struct dax_range e = { moff, M2 };
			char *addr = res + moff;
			double t0 = host_us(), t1, t2;

			if ((r = dax_session_setup(s, 1, &q)) < 0 || (r = dax_session_remove(s, &e, 1)) < 0)
				die("setup/remove", r);
			t1 = host_us();
			if ((r = mk_mmap(addr, M2, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0,
					 &p)) < 0 ||
			    (r = mk_mmap(addr, M2, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0, &p)) < 0)
				die("bare mmap", r);
			t2 = host_us();
			ts += t1 - t0;
			tb += t2 - t1;
		}
		a[run] = ts / npairs;
		b[run] = tb / npairs;
		rq[run] = a[run] / b[run];
	}
	*sess_us = bench_median(a, HOST_RUNS);
	*bare_us = bench_median(b, HOST_RUNS);
	*ratio = bench_median(rq, HOST_RUNS);
	mk_munmap(res, wlen);
	mk_close(fd);
	dax_session_free(s);
}

/*
 * No KVM, batches: µs per slot of BATCH adjacent setups and one remove of
 * all BATCH (one REMOVEMAPPING message), with `live` slots mapped, and
 * its floor: BATCH mmap(MAP_FIXED) of the file and one anonymous mmap back
 * over the whole range. The session gives a run of adjacent slots back
 * with one mmap and one UFFDIO_REGISTER. Medians of HOST_RUNS.
 */
#define BATCH 32

static void host_batches(unsigned live, unsigned nbatches, double *sess_us, double *bare_us,
			 double *ratio)
{
	double a[HOST_RUNS], b[HOST_RUNS], rq[HOST_RUNS];
	uint64_t wlen = (uint64_t)(live + BATCH) * M2;
	struct dax_session *s = session_flags(-1, DAX_MAPPER_KVM_WINDOW, wlen, 21, live + BATCH, 0, 0);
	struct dax_range e[BATCH];
	char *res;
	void *p;
	int fd, r;

	res = host_fill(s, live, wlen, &fd);
	for (unsigned k = 0; k < BATCH; k++)
		e[k] = (struct dax_range){ (uint64_t)(live + k) * M2, M2 };
	for (int run = 0; run < HOST_RUNS; run++) {
		double ts = 0, tb = 0;

		for (unsigned i = 0; i < nbatches; i++) {
			double t0 = host_us(), t1, t2;

			for (unsigned k = 0; k < BATCH; k++) {
				struct dax_setup_req q = { DAX_FH_NONE, 0, M2,
							   DAX_FUSE_FLAG_READ | DAX_FUSE_FLAG_WRITE,
							   e[k].moffset };
				if ((r = dax_session_setup(s, 1, &q)) < 0)
					die("setup", r);
			}
			if ((r = dax_session_remove(s, e, BATCH)) < 0)
				die("remove", r);
			t1 = host_us();
			for (unsigned k = 0; k < BATCH; k++)
				if ((r = mk_mmap(res + e[k].moffset, M2, PROT_READ | PROT_WRITE,
						 MAP_SHARED | MAP_FIXED, fd, 0, &p)) < 0)
					die("bare mmap", r);
			if ((r = mk_mmap(res + e[0].moffset, BATCH * M2, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0, &p)) < 0)
				die("bare mmap", r);
			t2 = host_us();
			ts += t1 - t0;
			tb += t2 - t1;
		}
		a[run] = ts / (nbatches * BATCH);
		b[run] = tb / (nbatches * BATCH);
		rq[run] = a[run] / b[run];
	}
	*sess_us = bench_median(a, HOST_RUNS);
	*bare_us = bench_median(b, HOST_RUNS);
	*ratio = bench_median(rq, HOST_RUNS);
	mk_munmap(res, wlen);
	mk_close(fd);
	dax_session_free(s);
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
static double guest_walk(struct vmm_vm *vm, struct dax_session *s, unsigned n)
{
	uint8_t code[DAXSNAP_TOUCH_CODE_MAX];
	size_t clen = daxsnap_touch_code(code, 0x2000, n);
	double t0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t a = (uint32_t)(WBASE + (uint64_t)i * M2);
		memcpy((uint8_t *)vm->ram + 0x2000 + 4 * i, &a, 4);
	}
	if (vmm_cpu_flat32(vm, 0x1000, code, clen, NULL) < 0)
		die("load", EINVAL);
	t0 = bench_now_us();
	for (;;) {
		int r = vmm_vm_run(vm);
		if (r == KVM_EXIT_HLT)
			break;
		/* the window mapper binds without exits; anything else is handed to libdax */
		if (r < 0 || dax_session_handle_kvm_exit(s, vm->run) != 1)
			die("guest walk", r < 0 ? r : EIO);
	}
	return (bench_now_us() - t0) / n;
}

/*
 * Per 2 MiB slot: a restored slot's first touch through userfaultfd
 * (lazy_us, the guest's walk), a touch of bound slots (bound_us), eager
 * mode's restore that binds every slot (eager_us), and setting the slots
 * up (setup_us).
 */
static void first_touch(double *lazy_us, double *bound_us, double *eager_us, double *setup_us,
			unsigned *mode)
{
	double a[RUNS], b[RUNS], c[RUNS], d[RUNS];
	const unsigned n = 1000;        /* 2 GiB of window below 4 GiB for the 32-bit guest */

	for (int run = 0; run < RUNS; run++) {
		struct vmm_vm vm;
		struct vmm_err err = { 0 };
		struct dax_session *s;
		void *blob;
		size_t len;
		double t0;

		if (vmm_vm_open(&vm, -1, 1 << 20, 0, &err) < 0) {
			fprintf(stderr, "bench-dax: VM: %s\n", err.msg);
			exit(1);
		}
		s = session(vm.vm_fd, DAX_MAPPER_KVM_WINDOW, (uint64_t)n * M2, 21, n, 0);
		t0 = bench_now_us();
		for (unsigned i = 0; i < n; i++)
			setup_at(s, (uint64_t)i * M2, M2);
		d[run] = (bench_now_us() - t0) / n;
		if (dax_session_snapshot(s, 2, &blob, &len) < 0 || dax_session_restore(s, blob, len) < 0)
			die("snapshot/restore", EIO);
		{
			struct dax_fault_stats fs = { .size = sizeof(fs) };
			dax_session_fault_stats(s, &fs);
			*mode = fs.mode;
		}
		a[run] = guest_walk(&vm, s, n);
		b[run] = guest_walk(&vm, s, n);
		dax_session_free(s);
		/* eager mode: the restore binds all n slots */
		s = session_flags(vm.vm_fd, DAX_MAPPER_KVM_WINDOW, (uint64_t)n * M2, 21, n, 0,
				  DAX_SESSION_NO_USERFAULT);
		t0 = bench_now_us();
		if (dax_session_restore(s, blob, len) < 0)
			die("eager restore", EIO);
		c[run] = (bench_now_us() - t0) / n;
		free(blob);
		dax_session_free(s);
		vmm_vm_close(&vm);
	}
	*lazy_us = bench_median(a, RUNS);
	*bound_us = bench_median(b, RUNS);
	*eager_us = bench_median(c, RUNS);
	*setup_us = bench_median(d, RUNS);
}

int main(int argc, char **argv)
{
	static const unsigned lives[] = { 1000, 10000, 25000 };
	double win[3], mem[3], hs[3], hb[3], hq[3], bs, bb, bq;
	struct snapres s10k, s100k;
	double eager10k, lazy, bound, eager, setup1;
	g_autofree char *mmc = NULL;
	unsigned hmode = 0, gmode = 0;
	bool host_only = false;
	int kvm, fd;
	GError *err = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--host")) {
			host_only = true;
		} else if (!strcmp(argv[i], "--cpu")) {
			use_cpu = true;
		} else {
			fprintf(stderr, "bench-dax: %s: unknown argument\n"
				"usage: bench-dax [--host] [--cpu]\n", argv[i]);
			return 2;
		}
	}
	fd = g_file_open_tmp("bench-dax-XXXXXX", &path, &err);
	if (fd < 0 || ftruncate(fd, (off_t)M2) < 0)
		die("temp file", errno);
	close(fd);
	dax_table_new(&table);
	if (dax_table_add(table, 1, path) < 0)
		die("table", EIO);
	g_file_get_contents("/proc/sys/vm/max_map_count", &mmc, NULL, NULL);

	for (int i = 0; i < 3; i++)
		host_pairs(lives[i], 2000, &hs[i], &hb[i], &hq[i], &hmode);
	host_batches(10000, 60, &bs, &bb, &bq);
	printf("libdax: DAX window session (medians of %d runs, no-KVM rows %d runs with the median "
	       "of their ratios, %s; vm.max_map_count=%s)\n", RUNS, HOST_RUNS,
	       use_cpu ? "CPU time" : "wall clock", mmc ? g_strstrip(mmc) : "?");
	{
		g_autofree char *la = NULL;

		g_file_get_contents("/proc/loadavg", &la, NULL, NULL);
		printf("load average: %s\n", la ? g_strstrip(la) : "n/a");
	}
	printf("%-40s %14s %16s %8s  %s\n", "operation", "libdax", "alternative", "ratio", "target");
	for (int i = 0; i < 3; i++) {
		char name[64];
		snprintf(name, sizeof(name), "no KVM: setup+remove 2M @ %uk live", lives[i] / 1000);
		printf("%-40s %11.2f us %13.2f us %7.2fx  %s\n", name, hs[i], hb[i], hq[i],
		       hmode == DAX_FAULT_USERFAULT ? "<= 1.5x bare mmap pair (userfault mode)" :
		       "<= 1.5x bare mmap pair (eager mode)");
	}
	printf("%-40s %11.2f us %13.2f us %7.2fx  %s\n", "no KVM: per slot, remove batch of 32 @ 10k",
	       bs, bb, bq, "(32 setups + one 32-entry remove; floor: one anon mmap)");
	/* --host: only the rows that need no KVM (for profiling the session pair) */
	if (host_only)
		goto out;
	kvm = mk_kvm_open();
	if (kvm < 0) {
		printf("bench-dax: KVM rows skipped: KVM unavailable: %s\n", mk_kvm_strerror(kvm));
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		win[i] = pairs(kvm, DAX_MAPPER_KVM_WINDOW, lives[i], 2000);
		mem[i] = pairs(kvm, DAX_MAPPER_KVM_MEMSLOT, lives[i], 300);
	}
	s10k = snap_restore(kvm, 10000);
	s100k = snap_restore(kvm, 100000);
	eager10k = eager_setup_ms(kvm, 10000);
	first_touch(&lazy, &bound, &eager, &setup1, &gmode);

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
	printf("%-40s %11.2f us %13.2f us %7.1fx  %s\n",
	       gmode == DAX_FAULT_USERFAULT ? "guest first touch (userfaultfd bind)" :
	       "guest first touch (eager mode: bound)", lazy, bound,
	       lazy / bound, "(vs touch of a bound slot)");
	printf("%-40s %11.2f us %13.2f us %7.1fx  %s\n", "first touch vs eager rebind at restore", lazy,
	       eager, lazy / eager, "(per 2 MiB slot)");
	printf("%-40s %11.2f us %16s %8s  %s\n", "setup of a 2 MiB slot", setup1, "-", "-", "");
	mk_close(kvm);
out:
	dax_table_free(table);
	g_unlink(path);
	g_free(path);
	return 0;
}
