/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest linux check: the device's DAX backend and its restart (linux.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "tools/memcheck/linux.h"

/*
 * Fault injection "drop-write": a custom libdax mapper shaped like its
 * KVM window mapper (one memslot over a PROT_NONE reservation, file ranges
 * mapped over it) except that writable ranges are MAP_PRIVATE: the
 * guest's stores land in copies and never reach the file. The check must
 * notice. Used only under --inject-fault linux with
 * MEMCHECK_LINUX_FAULT=drop-write.
 */
static int drop_map(void *data, uint64_t gpa, uint64_t len, int fd, uint64_t foffset,
		    uint32_t prot, int replace, void **hva)
{
	struct lx_dax *d = data;
	void *p;
	int r;

	(void)replace;
	r = mk_mmap(d->drop_base + (gpa - LX_GPA_DAX), len,
		    PROT_READ | ((prot & DAX_PROT_WRITE) ? PROT_WRITE : 0),
		    ((prot & DAX_PROT_WRITE) ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, fd,
		    (off_t)foffset, &p);
	if (r < 0)
		return r;
	*hva = p;
	return 0;
}

static int drop_unmap(void *data, uint64_t gpa, uint64_t len, void *hva)
{
	struct lx_dax *d = data;
	void *p;

	(void)hva;
	return mk_mmap(d->drop_base + (gpa - LX_GPA_DAX), len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0, &p);
}

static int drop_mapper(struct lx_dax *d, int vm_fd)
{
	void *p;
	int r = mk_mmap(NULL, LX_WINDOW_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			-1, 0, &p);

	if (r < 0)
		return r;
	d->drop_base = p;
	d->drop_ops = (struct dax_mapper_ops){ drop_map, drop_unmap, NULL, d };
	d->cfg.mapper = DAX_MAPPER_CUSTOM;
	d->cfg.ops = &d->drop_ops;
	return mk_kvm_set_memslot(vm_fd, LX_SLOT_DAX, 0, LX_GPA_DAX, LX_WINDOW_LEN, p);
}

int lx_dax_open(struct lx_dax *d, struct vmm_machine *m, struct vmm_fuse *fuse, bool drop_writes,
		struct vmm_err *e)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->fuse = fuse;
	d->cfg = (struct dax_config){
		.size = sizeof(d->cfg), .base_gpa = LX_GPA_DAX, .window_len = LX_WINDOW_LEN, .align_log2 = 12,
		.mapper = DAX_MAPPER_KVM_WINDOW, .memslot = LX_SLOT_DAX, .vm_fd = m->vm.vm_fd,
	};
	d->be = (struct dax_backend){ vmm_fuse_dax_open, NULL, fuse };
	if (drop_writes) {
		r = drop_mapper(d, m->vm.vm_fd);
		if (r < 0)
			return vmm_fail_sys(e, r, "fault injection mapper");
	}
	r = dax_session_new(&d->cfg, &d->be, &d->s);
	if (r < 0)
		return vmm_fail_sys(e, r, "libdax: dax_session_new");
	fuse->dax = d->s;
	return 0;
}

void lx_dax_close(struct lx_dax *d)
{
	dax_session_free(d->s);
	d->s = NULL;
	if (d->drop_base)
		mk_munmap(d->drop_base, LX_WINDOW_LEN);
	d->drop_base = NULL;
}

int lx_dax_exit(void *data, struct kvm_run *run)
{
	struct lx_dax *d = data;
	int r = d->s ? dax_session_handle_kvm_exit(d->s, run) : 0;

	if (r == 0 && d->fio)
		r = dax_session_handle_kvm_exit(d->fio, run);
	if (r == 1)
		d->exits_handled++;
	return r;
}

/* KVM said EFAULT without a gpa: bind every unbound slot (nothing finer is possible). */
int lx_dax_efault(void *data)
{
	struct lx_dax *d = data;
	struct dax_mapping *list = NULL;
	size_t n = 0;
	int bound = 0;

	if (dax_session_list(d->s, &list, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!(list[i].flags & DAX_MAPPING_BOUND) &&
		    dax_session_fault(d->s, d->cfg.base_gpa + list[i].moffset) == 1)
			bound++;
	}
	free(list);
	d->efault_binds += (uint64_t)bound;
	return bound > 0;
}

/* How many slots the snapshot holds (for the report). */
static uint64_t blob_slots(const void *blob, size_t len)
{
	struct dax_blob_header hdr;
	struct dax_mapping *e = NULL;
	uint64_t n = 0;

	if (dax_blob_parse(blob, len, &hdr, &e, NULL) == 0)
		n = hdr.count;
	free(e);
	return n;
}

/* Snapshot (DAXS v2), destroy, create anew, restore: a device-backend restart. */
void lx_dax_restart(struct lx_dax *d)
{
	uint64_t t = mk_now_ns();
	struct dax_session *ns = NULL;
	void *blob = NULL;
	size_t len = 0;
	int r;

	d->restarted = true;
	r = dax_session_snapshot(d->s, DAX_BLOB_V2, &blob, &len);
	if (r < 0)
		goto fail;
	d->before = (struct dax_stats){ .size = sizeof(d->before) };
	dax_session_stats(d->s, &d->before);   /* its counters die with it */
	dax_session_free(d->s);     /* its memslot and reservation go with it */
	d->s = NULL;
	d->fuse->dax = NULL;
	r = dax_session_new(&d->cfg, &d->be, &ns);
	if (r < 0)
		goto fail;
	r = dax_session_restore(ns, blob, len);
	if (r < 0) {
		dax_session_free(ns);
		goto fail;
	}
	d->s = ns;
	d->fuse->dax = ns;
	d->restore_ns = mk_now_ns() - t;
	d->blob_len = len;
	d->slots = blob_slots(blob, len);
	free(blob);
	return;
fail:
	d->err = r;
	free(blob);
}
