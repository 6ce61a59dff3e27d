/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest dax check: a real file mapped into the guest's DAX
 * window through libdax (table backend, KVM window mapper); the guest
 * checksums it and the host compares with the file. Then a DAX snapshot
 * is restored: the slots are metadata only, and the guest's first touch
 * is served by libdax's own mechanism (userfaultfd: the vCPU waits inside
 * KVM_RUN while the session binds the slot; eager mode: restore bound
 * every slot); the checksum must still match. The run loop only hands
 * exits to dax_session_handle_kvm_exit(): nothing guesses addresses from
 * guest registers.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sys.h"
#include "dax.h"
#include "tools/memcheck/check.h"
#include "tools/memcheck/pattern.h"

#define SLOT_LEN (2ull << 20)
#define WINDOW_LEN (16ull << 20)
#define NMAP 2

/* Window offsets of the two mappings and their file offsets (a gap between them). */
static const uint64_t moff[NMAP] = { 0, 4 * SLOT_LEN / 2 };
static const uint64_t foff[NMAP] = { 0, SLOT_LEN };

static int dax_exit(void *data, struct kvm_run *run)
{
	return dax_session_handle_kvm_exit(data, run);
}

/* A temporary file of 2 slots of seeded bytes; returns the fd, its path in *path. */
static int make_file(uint64_t seed, char **path)
{
	const char *dir = getenv("TMPDIR");
	uint64_t *buf = malloc(SLOT_LEN), x = mc_xs_seed(seed);
	int fd, r = 0;

	if (!buf)
		return -ENOMEM;
	if (asprintf(path, "%s/memcheck-dax-XXXXXX", dir && *dir ? dir : "/tmp") < 0) {
		free(buf);
		return -ENOMEM;
	}
	fd = mkostemp(*path, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	for (unsigned s = 0; s < 2 && r >= 0; s++) {
		for (size_t i = 0; i < SLOT_LEN / 8; i++)
			buf[i] = x = mc_xorshift(x);
		r = (int)mk_pwrite_full(fd, buf, SLOT_LEN, s * SLOT_LEN);
	}
	if (r < 0) {
		mk_close(fd);
		unlink(*path);
		fd = r;
	}
out:
	if (fd < 0) {
		free(*path);
		*path = NULL;
	}
	free(buf);
	return fd < 0 ? fd : fd;
}

static bool guest_sums(struct mc_vm *vm, uint64_t sums[NMAP], struct mc_result *res,
		       const char *when)
{
	for (unsigned i = 0; i < NMAP; i++) {
		struct mc_cmd c = { MC_OP_CHECKSUM, MC_GPA_DAX + moff[i], SLOT_LEN, 0, 0, { 0 } };

		if (mc_vm_do(vm, &c) < 0) {
			mc_fail(res, "%s: guest checksum of the window at +0x%llx: %s", when,
				(unsigned long long)moff[i], vm->err.msg);
			return false;
		}
		sums[i] = c.res[0];
	}
	return true;
}

/* What one run of the check holds. */
struct dax_run {
	const struct mc_opts *o;
	struct mc_result *res;
	struct mc_vm vm;
	int fd;
	char *path;                 /* the file (unlinked at the end) */
	uint64_t want[NMAP];        /* its checksums, read with read(2) */
	struct dax_table *table;
	struct dax_session *s;
	struct dax_fault_stats fs;
	void *blob;                 /* the snapshot */
	size_t blob_len;
};

/* The file, and what the guest must see: its bytes, read with read(2). */
static bool make_want(struct dax_run *d)
{
	uint8_t *buf;
	int r = 0;

	d->fd = make_file(d->o->seed ^ 0x646178, &d->path);
	if (d->fd < 0) {
		mc_fail(d->res, "temporary file: %s", strerror(-d->fd));
		return false;
	}
	buf = malloc(SLOT_LEN);
	if (!buf) {
		mc_fail(d->res, "out of memory");
		return false;
	}
	for (unsigned i = 0; i < NMAP && r >= 0; i++) {
		r = (int)mk_pread_full(d->fd, buf, SLOT_LEN, foff[i]);
		d->want[i] = mc_checksum(MC_FNV_OFFSET, buf, SLOT_LEN);
	}
	free(buf);
	if (r < 0) {
		mc_fail(d->res, "read %s: %s", d->path, strerror(-r));
		return false;
	}
	if (mc_injected(d->o, "dax"))
		d->want[1] ^= 1;
	return true;
}

/* A session over the window (table backend), the file's two ranges set up in it. */
static bool map_file(struct dax_run *d)
{
	struct dax_config cfg = {
		.size = sizeof(cfg),
		.base_gpa = MC_GPA_DAX, .window_len = WINDOW_LEN, .align_log2 = 21,
		.mapper = DAX_MAPPER_KVM_WINDOW, .memslot = MC_SLOT_DAX, .vm_fd = d->vm.tv.vm_fd,
	};
	struct dax_backend be;
	int r;

	r = dax_table_new(&d->table);
	if (r >= 0)
		r = dax_table_add(d->table, 1, d->path);
	if (r < 0) {
		mc_fail(d->res, "libdax: table backend for %s: %s", d->path, strerror(-r));
		return false;
	}
	be = (struct dax_backend){ dax_table_open, NULL, d->table };
	r = dax_session_new(&cfg, &be, &d->s);
	if (r < 0) {
		mc_fail(d->res, "libdax: dax_session_new: %s", strerror(-r));
		return false;
	}
	d->vm.exit_fn = dax_exit;
	d->vm.exit_data = d->s;
	d->fs = (struct dax_fault_stats){ .size = sizeof(d->fs) };
	r = dax_session_fault_stats(d->s, &d->fs);
	if (r < 0) {
		mc_fail(d->res, "libdax: dax_session_fault_stats: %s", strerror(-r));
		return false;
	}
	for (unsigned i = 0; i < NMAP; i++) {
		struct dax_setup_req req = { DAX_FH_NONE, foff[i], SLOT_LEN, DAX_FUSE_FLAG_READ, moff[i] };

		r = dax_session_setup(d->s, 1, &req);
		if (r < 0) {
			mc_fail(d->res, "libdax: dax_session_setup(+0x%llx): %s",
				(unsigned long long)moff[i], strerror(-r));
			return false;
		}
	}
	mc_note(d->o, "dax: %s mapped at gpa 0x%llx (+0x%llx) and +0x%llx", d->path,
		(unsigned long long)MC_GPA_DAX, (unsigned long long)moff[0],
		(unsigned long long)moff[1]);
	return true;
}

/* The guest's checksums of both mappings against the file's (a failure says when, after pre). */
static bool sums_match(struct dax_run *d, const char *when, const char *pre)
{
	uint64_t got[NMAP];

	if (!guest_sums(&d->vm, got, d->res, when))
		return false;
	for (unsigned i = 0; i < NMAP; i++) {
		if (got[i] != d->want[i]) {
			mc_fail(d->res, "%sguest checksum of mapping %u is 0x%016llx, the file's is "
				"0x%016llx", pre, i, (unsigned long long)got[i],
				(unsigned long long)d->want[i]);
			return false;
		}
	}
	return true;
}

/* Snapshot, restore: slots come back unbound (lazy) or bound (eager mode). */
static bool restore(struct dax_run *d)
{
	struct dax_mapping *list = NULL;
	size_t nlist = 0;
	bool ok = true;
	int r;

	r = dax_session_snapshot(d->s, DAX_BLOB_V2, &d->blob, &d->blob_len);
	if (r < 0) {
		mc_fail(d->res, "libdax: dax_session_snapshot: %s", strerror(-r));
		return false;
	}
	r = dax_session_restore(d->s, d->blob, d->blob_len);
	if (r < 0) {
		mc_fail(d->res, "libdax: dax_session_restore: %s", strerror(-r));
		return false;
	}
	r = dax_session_list(d->s, &list, &nlist);
	if (r < 0 || nlist != NMAP) {
		mc_fail(d->res, "libdax: after restore: %s", r < 0 ? strerror(-r) : "wrong mapping count");
		ok = false;
	}
	for (size_t i = 0; ok && i < nlist; i++) {
		/* lazy unless the session runs in eager mode (no userfaultfd for KVM here) */
		if (!(list[i].flags & DAX_MAPPING_BOUND) != (d->fs.mode != DAX_FAULT_EAGER)) {
			mc_fail(d->res, "libdax: mapping +0x%llx is %s right after restore (%s mode)",
				(unsigned long long)list[i].moffset,
				d->fs.mode == DAX_FAULT_EAGER ? "unbound" : "bound",
				d->fs.mode == DAX_FAULT_EAGER ? "eager" : "lazy");
			ok = false;
		}
	}
	free(list);
	if (ok)
		mc_note(d->o, "dax: snapshot of %zu bytes restored; %zu mappings unbound", d->blob_len,
			nlist);
	return ok;
}

/* The guest's first touches after the restore: right bytes, each slot bound once, no exit. */
static void rebind(struct dax_run *d)
{
	uint64_t t, faults0, rebind_ns, rebound;
	struct dax_stats st = { .size = sizeof(st) };
	int r;

	r = dax_session_stats(d->s, &st);
	if (r < 0) {
		mc_fail(d->res, "libdax: dax_session_stats: %s", strerror(-r));
		return;
	}
	faults0 = st.faults;
	d->vm.handled_exits = 0;
	t = mk_now_ns();
	if (!sums_match(d, "after restore", "after restore, "))
		return;
	rebind_ns = mk_now_ns() - t;
	r = dax_session_stats(d->s, &st);
	d->fs = (struct dax_fault_stats){ .size = sizeof(d->fs) };
	if (r >= 0)
		r = dax_session_fault_stats(d->s, &d->fs);
	/* eager mode bound the mappings inside dax_session_restore(), before faults0 */
	rebound = r < 0 ? 0 : d->fs.mode == DAX_FAULT_EAGER ? d->fs.eager_binds : st.faults - faults0;
	if (r < 0 || rebound != NMAP || d->vm.handled_exits ||
	    (d->fs.mode == DAX_FAULT_USERFAULT && d->fs.uffd_binds != NMAP)) {
		mc_fail(d->res, "libdax: %llu mappings rebound after restore (%u exits), expected %u and none",
			(unsigned long long)rebound, d->vm.handled_exits, NMAP);
		return;
	}
	mc_metric(d->res, "rebind_exits", d->vm.handled_exits, "exits");
	mc_metric(d->res, "checksum_after_restore_us", (double)rebind_ns / 1e3, "us");
	mc_metric(d->res, "snapshot_bytes", (double)d->blob_len, "bytes");
	mc_pass(d->res, "%u x 2 MiB file mappings match; after restore %u rebinds (%s, no exit; "
		"%.0f us incl. checksums)", NMAP, NMAP,
		d->fs.mode == DAX_FAULT_USERFAULT ? "userfaultfd on first touch" : "eager at restore",
		(double)rebind_ns / 1e3);
}

void mc_check_dax(const struct mc_opts *o, struct mc_result *res)
{
	struct dax_run d = { .o = o, .res = res, .fd = -1 };

	if (!mc_check_vm(o, &d.vm, res))
		return;
	if (make_want(&d) && map_file(&d) && sums_match(&d, "mapped", "") && restore(&d))
		rebind(&d);
	mc_vm_close(&d.vm);      /* the VM first: it holds the window memslot */
	dax_session_free(d.s);
	dax_table_free(d.table);
	free(d.blob);
	if (d.fd >= 0)
		mk_close(d.fd);
	if (d.path)
		unlink(d.path);
	free(d.path);
}
