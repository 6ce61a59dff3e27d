/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest's lazy check: a real guest over memory libsandbox pages in
 * from snapshot files on demand, verified (sbx_snapshot_open(3)).
 *
 *  1. The guest boots as every check's does; then its own RAM (program,
 *     page tables, stack, command block) is saved to a snapshot file and
 *     replaced by a region lazily loaded from that file, and the test
 *     region is lazily loaded from a file of address-in-address words. The
 *     guest runs on and verifies the whole test region: every access it
 *     makes (code fetches and page-table walks included) faults chunks in
 *     inside KVM_RUN, served by the snapshot's thread.
 *  2. One chunk of the test file corrupted: a fresh guest verifies every
 *     other chunk, then reads the bad one, which must end its KVM_RUN as
 *     documented (EFAULT; an MMIO exit at the address where KVM emulates
 *     the access, never on a stock kernel) with no byte of it; the host's
 *     read of it fails with EBADMSG; the counters and the log name the
 *     chunk's offset; a third guest reads every other chunk right again.
 *
 * --inject-fault=lazy corrupts a second chunk behind the check's back: a
 * chunk the check expects to read right fails, and the check must FAIL.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "sandbox.h"
#include "tools/memcheck/check.h"
#include "tools/memcheck/pattern.h"
#include "vmm/machine.h"

#define CHUNK SBX_CHUNK_MIN     /* 64 KiB: a 1 MiB region has 16 */

/* The log line of the bad chunk (the service thread may write it). */
struct lazy_log {
	pthread_mutex_t lock;
	unsigned errors;
	char last[512];
};

static void lazy_log_fn(void *data, int priority, const char *msg)
{
	struct lazy_log *l = data;

	if (priority > LOG_ERR)
		return;
	pthread_mutex_lock(&l->lock);
	l->errors++;
	g_strlcpy(l->last, msg, sizeof(l->last));
	pthread_mutex_unlock(&l->lock);
}

/* A lazily loaded region bound into a check's VM, entered around each KVM_RUN. */
struct lazy_region {
	struct sbx_snapshot *snap;
	struct sbx_mem *mem;
	struct sbx_guest *guest;
};

struct lazy_vm {
	struct mc_vm vm;
	struct sbx_vm *svm;             /* the VM's memslots through libsandbox */
	struct sbx_guest *views[2];     /* entered around KVM_RUN */
	uint64_t efault_gpa;            /* where KVM_RUN said EFAULT (vm.fault_fn) */
	unsigned efaults;
};

static int enter_views(void *data)
{
	struct lazy_vm *v = data;
	int r = 0;

	for (unsigned i = 0; i < 2 && r == 0; i++)
		if (v->views[i] && (r = sbx_guest_enter(v->views[i])) < 0 && i)
			sbx_guest_exit(v->views[0]);
	return r;
}

static void leave_views(void *data)
{
	struct lazy_vm *v = data;

	for (unsigned i = 0; i < 2; i++)
		if (v->views[i])
			sbx_guest_exit(v->views[i]);
}

/* KVM_RUN failed with EFAULT: record where (the guest's access is at rdi), not ours to fix. */
static int on_efault(void *data, uint64_t gpa)
{
	struct lazy_vm *v = data;

	v->efault_gpa = gpa;
	v->efaults++;
	return 0;
}

static bool lazy_vm_open(const struct mc_opts *o, struct lazy_vm *v, struct mc_result *res)
{
	int r;

	memset(v, 0, sizeof(*v));
	if (!mc_check_vm(o, &v->vm, res))
		return false;
	r = sbx_vm_from_fd(v->vm.tv.vm_fd, &v->svm);
	if (r < 0) {
		mc_fail(res, "libsandbox: sbx_vm_from_fd: %s", strerror(-r));
		mc_vm_close(&v->vm);
		return false;
	}
	v->vm.enter_fn = enter_views;
	v->vm.leave_fn = leave_views;
	v->vm.run_data = v;
	v->vm.fault_fn = on_efault;
	v->vm.exit_data = v;
	return true;
}

static void lazy_vm_close(struct lazy_vm *v)
{
	/* Memslots first (the VM fd is borrowed and still open), then the VM. */
	sbx_vm_free(v->svm);
	mc_vm_close(&v->vm);
}

static void region_free(struct lazy_region *lr)
{
	if (lr->guest)
		sbx_guest_free(lr->guest);
	sbx_mem_free(lr->mem);
	sbx_snapshot_unref(lr->snap);
	memset(lr, 0, sizeof(*lr));
}

/* Open fd lazily, a region of it, its guest view. */
static int region_open(int fd, struct lazy_region *lr, const char **why)
{
	int r;

	memset(lr, 0, sizeof(*lr));
	*why = "sbx_snapshot_open";
	r = sbx_snapshot_open(fd, SBX_OPEN_LAZY, &lr->snap);
	if (r == 0) {
		*why = "sbx_mem_new_from_snapshot";
		r = sbx_mem_new_from_snapshot(lr->snap, &lr->mem);
	}
	if (r == 0) {
		*why = "sbx_mem_split";
		r = sbx_mem_split(lr->mem, &lr->guest);
	}
	if (r < 0)
		region_free(lr);
	return r;
}

/* A snapshot file (unlinked temporary) of len bytes at data. */
static int save_file(const void *data, uint64_t len, const char **why)
{
	g_autofree char *path = g_build_filename(g_get_tmp_dir(), "memcheck-lazy-XXXXXX", NULL);
	struct sbx_snapshot *s = NULL;
	struct sbx_mem *m = NULL;
	int fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600), r;

	*why = "temporary file";
	if (fd < 0)
		return -errno;
	unlink(path);
	*why = "libsandbox: saving the snapshot";
	r = sbx_mem_new(len, &m);
	if (r == 0)
		r = sbx_mem_write(m, 0, data, (size_t)len);
	if (r == 0)
		r = sbx_snapshot_take(m, &s);
	if (r == 0)
		r = sbx_snapshot_save_chunked(s, fd, CHUNK, 0);
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Flip a byte of chunk k's data in a saved file. */
static int corrupt_chunk(int fd, uint64_t k)
{
	uint8_t hdr[48], b;
	uint64_t off;

	if (mk_pread_full(fd, hdr, sizeof(hdr), 0) != sizeof(hdr))
		return -EIO;
	memcpy(&off, hdr + 16, 8);      /* data offset (little-endian hosts) */
	off += k * CHUNK + 777;
	if (mk_pread_full(fd, &b, 1, off) != 1)
		return -EIO;
	b ^= 0x40;
	return mk_pwrite_full(fd, &b, 1, off) == 1 ? 0 : -EIO;
}

/* The guest verifies [off, off + len) of the test region (address-in-address words). */
static bool guest_verify(struct lazy_vm *v, uint64_t off, uint64_t len, struct mc_result *res)
{
	struct mc_cmd c = { MC_OP_VERIFY, MC_GPA_TEST + off, len, 0, MC_PAT_ADDR, { 0 } };

	if (!len)
		return true;
	if (mc_vm_do(&v->vm, &c) < 0) {
		mc_fail(res, "guest verify of [0x%llx, +0x%llx): %s", (unsigned long long)off,
			(unsigned long long)len, v->vm.err.msg);
		return false;
	}
	if (c.res[0]) {
		mc_fail(res, "guest read %llu wrong words from the lazily loaded region; first at gpa "
			"0x%llx", (unsigned long long)c.res[0], (unsigned long long)c.res[1]);
		return false;
	}
	return true;
}

/*
 * Phase 1: the guest's own RAM replaced by a lazily loaded copy (memslot
 * 0 again, same contents), the test region lazily loaded; the guest runs
 * on and verifies all of it.
 */
static bool phase_boot(const struct mc_opts *o, int test_fd, struct mc_result *res)
{
	struct lazy_region low = { 0 }, test = { 0 };
	struct sbx_lazy_stats st_low = { .size = sizeof(st_low) }, st_test = { .size = sizeof(st_test) };
	struct lazy_vm v;
	const char *why = "";
	uint64_t t0, ready_ns;
	bool ok = false;
	int low_fd = -1, r;

	if (!lazy_vm_open(o, &v, res))
		return false;
	low_fd = save_file(v.vm.low, MC_LOW_SIZE, &why);
	r = low_fd;
	t0 = mk_now_ns();
	if (r >= 0)
		r = region_open(low_fd, &low, &why);
	if (r >= 0)
		r = region_open(test_fd, &test, &why);
	ready_ns = mk_now_ns() - t0;
	if (r >= 0) {
		why = "replacing memslot 0 by the lazy copy of the guest's RAM";
		r = mk_kvm_delete_memslot(v.vm.tv.vm_fd, 0);
	}
	if (r >= 0)
		r = sbx_vm_bind(v.svm, low.mem, 0, 0, 0);
	if (r >= 0) {
		why = "libsandbox: sbx_vm_bind of the test region";
		r = sbx_vm_bind(v.svm, test.mem, MC_SLOT_TEST, MC_GPA_TEST, 0);
	}
	if (r < 0) {
		mc_fail(res, "%s: %s", why, strerror(-r));
		goto out;
	}
	/*
	 * The lazy copy is the VM's RAM from now on (the anonymous one, out of
	 * memslot 0 already, goes): the host writes commands through its raw
	 * pointer, each write reported (vmm_machine_sbx_ram), so the region's
	 * dirty record stays complete.
	 */
	mk_munmap(v.vm.tv.ram, v.vm.tv.ram_size);
	v.vm.tv.own_ram = false;
	r = vmm_machine_sbx_ram(&v.vm.tv, low.mem);
	v.vm.low = v.vm.tv.ram;
	if (r < 0) {
		mc_fail(res, "vmm_machine_sbx_ram: %s", strerror(-r));
		goto out;
	}
	v.views[0] = low.guest;
	v.views[1] = test.guest;
	if (!guest_verify(&v, 0, o->size, res))
		goto out;
	if (sbx_snapshot_lazy_stats(low.snap, &st_low) < 0 ||
	    sbx_snapshot_lazy_stats(test.snap, &st_test) < 0) {
		mc_fail(res, "sbx_snapshot_lazy_stats failed");
		goto out;
	}
	if (st_test.chunks_read != o->size / CHUNK || st_test.chunks_bad || st_low.chunks_bad ||
	    !st_test.faults || !st_low.faults) {
		mc_fail(res, "counters: test region %llu chunks read (of %llu), %llu faults, %llu bad; "
			"guest RAM %llu faults, %llu bad", (unsigned long long)st_test.chunks_read,
			(unsigned long long)(o->size / CHUNK), (unsigned long long)st_test.faults,
			(unsigned long long)st_test.chunks_bad, (unsigned long long)st_low.faults,
			(unsigned long long)st_low.chunks_bad);
		goto out;
	}
	mc_note(o, "lazy: guest ran over lazily loaded RAM (%llu faults, %llu of %llu chunks read, "
		"%llu zero) and verified %llu MiB (%llu faults)", (unsigned long long)st_low.faults,
		(unsigned long long)st_low.chunks_read, (unsigned long long)st_low.chunks,
		(unsigned long long)st_low.chunks_zero, (unsigned long long)(o->size >> 20),
		(unsigned long long)st_test.faults);
	mc_metric(res, "ready_us", (double)ready_ns / 1e3, "us");
	mc_metric(res, "guest_faults", (double)(st_low.faults + st_test.faults), "faults");
	mc_metric(res, "fault_mean_us", (double)(st_low.fault_ns_total + st_test.fault_ns_total) / 1e3 /
		  (double)(st_low.faults + st_test.faults), "us");
	mc_metric(res, "ram_chunks_zero", (double)st_low.chunks_zero, "chunks");
	ok = true;
out:
	lazy_vm_close(&v);      /* memslots go before the regions */
	region_free(&test);
	region_free(&low);
	if (low_fd >= 0)
		close(low_fd);
	return ok;
}

/* A fresh guest over the (corrupted) test region reads every chunk but bad. */
static bool verify_others(const struct mc_opts *o, struct lazy_region *lr, uint64_t bad,
			  struct mc_result *res)
{
	struct lazy_vm v;
	bool ok;
	int r;

	if (!lazy_vm_open(o, &v, res))
		return false;
	r = sbx_vm_bind(v.svm, lr->mem, MC_SLOT_TEST, MC_GPA_TEST, 0);
	if (r < 0) {
		mc_fail(res, "libsandbox: sbx_vm_bind: %s", strerror(-r));
		lazy_vm_close(&v);
		return false;
	}
	v.views[0] = lr->guest;
	ok = guest_verify(&v, 0, bad * CHUNK, res) &&
	     guest_verify(&v, (bad + 1) * CHUNK, o->size - (bad + 1) * CHUNK, res);
	lazy_vm_close(&v);
	return ok;
}

/* The guest's read of the bad chunk must end KVM_RUN as documented, with no byte of it. */
static bool bad_access(const struct mc_opts *o, struct lazy_region *lr, uint64_t bad,
		       struct mc_result *res)
{
	uint64_t gpa = MC_GPA_TEST + bad * CHUNK + 4096;
	struct mc_cmd c = { MC_OP_READ64, gpa, 0, 0, 0, { 0 } };
	enum mc_run_result rr;
	struct lazy_vm v;
	unsigned st = 0;
	bool ok = false;

	if (!lazy_vm_open(o, &v, res))
		return false;
	if (sbx_vm_bind(v.svm, lr->mem, MC_SLOT_TEST, MC_GPA_TEST, 0) < 0) {
		mc_fail(res, "libsandbox: sbx_vm_bind failed");
		goto out;
	}
	v.views[0] = lr->guest;
	rr = mc_vm_call(&v.vm, &c, &st);
	if (rr == MC_RUN_ERROR && v.efaults && v.efault_gpa == (gpa & ~0xfffull)) {
		mc_note(o, "lazy: the guest's read of the bad chunk: KVM_RUN failed with EFAULT");
		mc_metric(res, "bad_access_efault", 1, "bool");
		ok = true;
	} else if (rr == MC_RUN_MMIO && v.vm.tv.run->mmio.phys_addr == gpa &&
		   !g_getenv("MEMKIT_MICROVM_GUEST")) {
		/* A KVM that emulates the access (this host's is software): the documented MMIO exit. */
		mc_note(o, "lazy: the guest's read of the bad chunk: an MMIO exit at its address");
		mc_metric(res, "bad_access_efault", 0, "bool");
		ok = true;
	} else {
		mc_fail(res, "the guest's read of the bad chunk at gpa 0x%llx ended %s (%s), not with "
			"EFAULT", (unsigned long long)gpa,
			rr == MC_RUN_DONE ? "normally: it got bytes" : rr == MC_RUN_MMIO ? "in an MMIO exit"
			: "in another error", v.vm.err.msg);
	}
out:
	lazy_vm_close(&v);
	return ok;
}

/* Phase 2: one chunk corrupted in the test file. */
static bool phase_bad_chunk(const struct mc_opts *o, int test_fd, struct mc_result *res)
{
	struct lazy_log log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	uint64_t bad = o->size / CHUNK / 2, b8;
	struct sbx_lazy_stats st = { .size = sizeof(st) };
	struct lazy_region lr;
	g_autofree char *want = NULL;
	const char *why = "";
	bool ok = false;
	int r;

	r = corrupt_chunk(test_fd, bad);
	if (r == 0 && mc_injected(o, "lazy"))
		r = corrupt_chunk(test_fd, bad / 2);    /* one the check expects to read right */
	if (r < 0) {
		mc_fail(res, "corrupting the file: %s", strerror(-r));
		return false;
	}
	sbx_set_log_fn(lazy_log_fn, &log);
	r = region_open(test_fd, &lr, &why);
	if (r < 0) {
		mc_fail(res, "libsandbox: %s on the corrupted file: %s", why, strerror(-r));
		goto out;
	}
	if (!verify_others(o, &lr, bad, res) || !bad_access(o, &lr, bad, res))
		goto free;
	r = sbx_mem_read_u64(lr.mem, bad * CHUNK, &b8);
	if (r != -EBADMSG) {
		mc_fail(res, "the host's read of the bad chunk returned %d, not -EBADMSG", r);
		goto free;
	}
	want = g_strdup_printf("data offset %llu", (unsigned long long)(bad * CHUNK));
	if (sbx_snapshot_lazy_stats(lr.snap, &st) < 0 || st.chunks_bad != 1 ||
	    st.bad_offset != bad * CHUNK || log.errors != 1 || !strstr(log.last, want)) {
		mc_fail(res, "bad chunk %llu: counters say %llu bad at %llu, the log (%u lines): %s",
			(unsigned long long)bad, (unsigned long long)st.chunks_bad,
			(unsigned long long)st.bad_offset, log.errors, log.last);
		goto free;
	}
	/* And after the failure, a third guest reads every other chunk right again. */
	ok = verify_others(o, &lr, bad, res);
	mc_metric(res, "bad_chunk_offset", (double)(bad * CHUNK), "bytes");
free:
	region_free(&lr);
out:
	sbx_set_log_fn(NULL, NULL);
	return ok;
}

void mc_check_lazy(const struct mc_opts *o, struct mc_result *res)
{
	uint64_t *words = malloc(o->size);
	const char *why = "";
	struct mc_pat p;
	int fd;

	if (!words) {
		mc_fail(res, "out of memory");
		return;
	}
	if (o->size < 4 * CHUNK) {
		mc_skip(res, "needs a region of at least %u KiB", 4 * CHUNK / 1024);
		free(words);
		return;
	}
	mc_pat_init(&p, MC_PAT_ADDR, 0, MC_GPA_TEST);
	mc_pat_fill(&p, words, (size_t)(o->size / 8));
	fd = save_file(words, o->size, &why);
	free(words);
	if (fd < 0) {
		mc_fail(res, "%s: %s", why, strerror(-fd));
		return;
	}
	if (phase_boot(o, fd, res) && phase_bad_chunk(o, fd, res))
		mc_pass(res, "guest ran over lazily loaded RAM and read %llu MiB paged in on demand; a "
			"corrupted chunk failed its KVM_RUN and the host's read, every other chunk "
			"read right", (unsigned long long)(o->size >> 20));
	close(fd);
}
