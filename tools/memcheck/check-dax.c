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

void mc_check_dax(const struct mc_opts *o, struct mc_result *res)
{
	struct dax_config cfg = {
		.base_gpa = MC_GPA_DAX, .window_len = WINDOW_LEN, .align_log2 = 21,
		.mapper = DAX_MAPPER_KVM_WINDOW, .slot = MC_SLOT_DAX,
	};
	uint64_t want[NMAP], got[NMAP], t, faults0, rebind_ns, rebound;
	struct dax_table *table = NULL;
	struct dax_session *s = NULL;
	struct dax_mapping *list = NULL;
	struct dax_stats st;
	struct dax_fault_stats fs;
	struct dax_backend be;
	char *path = NULL;
	void *blob = NULL, *buf = NULL;
	size_t blob_len = 0, nlist = 0;
	struct mc_vm vm;
	int fd = -1, r;

	if (!mc_check_vm(o, &vm, res))
		return;
	fd = make_file(o->seed ^ 0x646178, &path);
	if (fd < 0) {
		mc_fail(res, "temporary file: %s", strerror(-fd));
		goto out;
	}
	/* What the guest must see: the file's bytes, read with read(2). */
	buf = malloc(SLOT_LEN);
	if (!buf) {
		mc_fail(res, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < NMAP; i++) {
		r = (int)mk_pread_full(fd, buf, SLOT_LEN, foff[i]);
		if (r < 0) {
			mc_fail(res, "read %s: %s", path, strerror(-r));
			goto out;
		}
		want[i] = mc_checksum(MC_FNV_OFFSET, buf, SLOT_LEN);
	}
	if (mc_injected(o, "dax"))
		want[1] ^= 1;

	r = dax_table_new(&table);
	if (r >= 0)
		r = dax_table_add(table, 1, path);
	if (r < 0) {
		mc_fail(res, "libdax: table backend for %s: %s", path, strerror(-r));
		goto out;
	}
	be = (struct dax_backend){ dax_table_open, NULL, table };
	cfg.vm_fd = vm.tv.vm_fd;
	r = dax_session_new(&cfg, &be, &s);
	if (r < 0) {
		mc_fail(res, "libdax: dax_session_new: %s", strerror(-r));
		goto out;
	}
	vm.exit_fn = dax_exit;
	vm.exit_data = s;
	r = dax_session_fault_stats(s, &fs);
	if (r < 0) {
		mc_fail(res, "libdax: dax_session_fault_stats: %s", strerror(-r));
		goto out;
	}
	for (unsigned i = 0; i < NMAP; i++) {
		struct dax_setup_req req = { DAX_FH_NONE, foff[i], SLOT_LEN, DAX_FUSE_FLAG_READ, moff[i] };

		r = dax_session_setup(s, 1, &req);
		if (r < 0) {
			mc_fail(res, "libdax: dax_session_setup(+0x%llx): %s",
				(unsigned long long)moff[i], strerror(-r));
			goto out;
		}
	}
	mc_note(o, "dax: %s mapped at gpa 0x%llx (+0x%llx) and +0x%llx", path,
		(unsigned long long)MC_GPA_DAX, (unsigned long long)moff[0],
		(unsigned long long)moff[1]);
	if (!guest_sums(&vm, got, res, "mapped"))
		goto out;
	for (unsigned i = 0; i < NMAP; i++) {
		if (got[i] != want[i]) {
			mc_fail(res, "guest checksum of mapping %u is 0x%016llx, the file's is 0x%016llx",
				i, (unsigned long long)got[i], (unsigned long long)want[i]);
			goto out;
		}
	}

	/* Snapshot, restore: slots come back unbound. */
	r = dax_session_snapshot(s, DAX_BLOB_V2, &blob, &blob_len);
	if (r < 0) {
		mc_fail(res, "libdax: dax_session_snapshot: %s", strerror(-r));
		goto out;
	}
	r = dax_session_restore(s, blob, blob_len);
	if (r < 0) {
		mc_fail(res, "libdax: dax_session_restore: %s", strerror(-r));
		goto out;
	}
	r = dax_session_list(s, &list, &nlist);
	if (r < 0 || nlist != NMAP) {
		mc_fail(res, "libdax: after restore: %s", r < 0 ? strerror(-r) : "wrong slot count");
		goto out;
	}
	for (size_t i = 0; i < nlist; i++) {
		/* lazy unless the session runs in eager mode (no userfaultfd for KVM here) */
		if (!(list[i].flags & DAX_MAPPING_BOUND) != (fs.mode != DAX_FAULT_EAGER)) {
			mc_fail(res, "libdax: slot +0x%llx is %s right after restore (%s mode)",
				(unsigned long long)list[i].moffset,
				fs.mode == DAX_FAULT_EAGER ? "unbound" : "bound",
				fs.mode == DAX_FAULT_EAGER ? "eager" : "lazy");
			goto out;
		}
	}
	r = dax_session_stats(s, &st);
	if (r < 0) {
		mc_fail(res, "libdax: dax_session_stats: %s", strerror(-r));
		goto out;
	}
	faults0 = st.faults;
	mc_note(o, "dax: snapshot of %zu bytes restored; %zu slots unbound", blob_len, nlist);
	vm.handled_exits = 0;
	t = mk_now_ns();
	if (!guest_sums(&vm, got, res, "after restore"))
		goto out;
	rebind_ns = mk_now_ns() - t;
	for (unsigned i = 0; i < NMAP; i++) {
		if (got[i] != want[i]) {
			mc_fail(res, "after restore, guest checksum of mapping %u is 0x%016llx, the file's "
				"is 0x%016llx", i, (unsigned long long)got[i], (unsigned long long)want[i]);
			goto out;
		}
	}
	r = dax_session_stats(s, &st);
	if (r >= 0)
		r = dax_session_fault_stats(s, &fs);
	/* eager mode bound the slots inside dax_session_restore(), before faults0 */
	rebound = r < 0 ? 0 : fs.mode == DAX_FAULT_EAGER ? fs.eager_binds : st.faults - faults0;
	if (r < 0 || rebound != NMAP || vm.handled_exits ||
	    (fs.mode == DAX_FAULT_USERFAULT && fs.uffd_binds != NMAP)) {
		mc_fail(res, "libdax: %llu slots rebound after restore (%u exits), expected %u and none",
			(unsigned long long)rebound, vm.handled_exits, NMAP);
		goto out;
	}
	mc_metric(res, "rebind_exits", vm.handled_exits, "exits");
	mc_metric(res, "checksum_after_restore_us", (double)rebind_ns / 1e3, "us");
	mc_metric(res, "snapshot_bytes", (double)blob_len, "bytes");
	mc_pass(res, "%u x 2 MiB file slots match; after restore %u rebinds (%s, no exit; "
		"%.0f us incl. checksums)", NMAP, NMAP,
		fs.mode == DAX_FAULT_USERFAULT ? "userfaultfd on first touch" : "eager at restore",
		(double)rebind_ns / 1e3);
out:
	mc_vm_close(&vm);      /* the VM first: it holds the window memslot */
	dax_session_free(s);
	dax_table_free(table);
	free(list);
	free(blob);
	free(buf);
	if (fd >= 0)
		mk_close(fd);
	if (path)
		unlink(path);
	free(path);
}
