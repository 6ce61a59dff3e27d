/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libsandbox KVM binding with a real guest (tests/kvmtest: 32-bit flat mode,
 * its own RAM in memslot 0 at gpa 0; our region goes to slot 1 at GPA).
 * The guest writes, the host restores while the region stays bound, the
 * guest reads the snapshot's bytes back; dirty logs are exact.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "kvmtest.h"
#include "tests/test-sbx-util.h"
#include "sandboxP.h"
#include "vmm/machine.h"

#define PG 4096u
#define GPA 0x10000000u
#define RO_GPA 0x20000000u

struct guest {
	struct vmm_vm vm;
	struct sbx_vm *svm;
	GByteArray *code;
	struct sbx_mem *m;          /* a patterned region, its snapshot, its guest view */
	struct sbx_snapshot *s;
	struct sbx_guest *gv;
};

/* What backs a test's region: anonymous memory, or guest_memfd (mapped in calls, or kept). */
enum kind { ANON, GMEM, GMEM_KEPT };

static struct sbx_mem *patterned(unsigned pages, struct sbx_snapshot **s);
static struct sbx_mem *patterned_in(struct sbx_vm *svm, enum kind kind, unsigned pages,
				    struct sbx_snapshot **s);

/* Linux major.minor of the running kernel, as major * 1000 + minor. */
static unsigned kernel_version(const char **release)
{
	static struct utsname u;
	unsigned major = 0, minor = 0;

	g_assert_cmpint(uname(&u), ==, 0);
	g_assert_cmpint(sscanf(u.release, "%u.%u", &major, &minor), ==, 2);
	*release = u.release;
	return major * 1000 + minor;
}

/*
 * Can this kernel's default VM have host-mappable guest_memfd? From 6.18 on
 * it must; before, the library says -EOPNOTSUPP: the one skip of the
 * guest_memfd cases, named by kernel.
 */
static bool gmem_here(struct sbx_vm *svm)
{
	const char *release;
	unsigned v = kernel_version(&release);
	int r = sbx_vm_gmem_supported(svm);

	if (v >= 6018)
		g_assert_cmpint(r, ==, 0);
	if (r == 0)
		return true;
	g_assert_cmpint(r, ==, -EOPNOTSUPP);
	g_autofree char *msg = g_strdup_printf("kernel %s: no host-mappable guest_memfd for a "
					       "default VM (-EOPNOTSUPP)", release);
	g_test_skip(msg);
	return false;
}

static bool guest_open_kind(struct guest *g, unsigned pages, enum kind kind)
{
	struct vmm_err err = { 0 };
	int r;

	if (!kvmtest_available())
		return false;
	r = vmm_vm_open(&g->vm, -1, 1 << 20, 0, &err);
	if (r < 0)
		g_error("VM setup: %s", err.msg);
	g_assert_cmpint(sbx_vm_from_fd(g->vm.vm_fd, &g->svm), ==, 0);
	g_assert_cmpint(sbx_vm_fd(g->svm), ==, g->vm.vm_fd);
	g_assert_cmpint(sbx_vm_kvm_fd(g->svm), ==, -EBADF);
	if (kind != ANON && !gmem_here(g->svm)) {
		sbx_vm_free(g->svm);
		vmm_vm_close(&g->vm);
		return false;
	}
	g->code = g_byte_array_new();
	g->m = patterned_in(g->svm, kind, pages, &g->s);
	g_assert_cmpint(sbx_mem_is_gmem(g->m), ==, kind != ANON);
	g_assert_cmpint(sbx_mem_split(g->m, &g->gv), ==, 0);
	return true;
}

static bool guest_open(struct guest *g, unsigned pages)
{
	return guest_open_kind(g, pages, ANON);
}

static void guest_close(struct guest *g)
{
	g_assert_cmpint(sbx_guest_free(g->gv), ==, 0);
	sbx_mem_free(g->m);
	sbx_snapshot_unref(g->s);
	sbx_vm_free(g->svm);
	vmm_vm_close(&g->vm);
	g_byte_array_unref(g->code);
}

static void emit(struct guest *g, const void *p, size_t n) { g_byte_array_append(g->code, p, (guint)n); }
static void emit32(struct guest *g, uint32_t v) { emit(g, &v, 4); }

/* movl $v, addr */
static void st32(struct guest *g, uint32_t addr, uint32_t v)
{
	emit(g, "\xc7\x05", 2);
	emit32(g, addr);
	emit32(g, v);
}

/* movl addr, %eax; out %eax, $port */
static void ld_out(struct guest *g, uint32_t addr, uint8_t port)
{
	emit(g, "\xa1", 1);
	emit32(g, addr);
	emit(g, "\xe7", 1);
	emit(g, &port, 1);
}

/* out %al, $port (a pause the host can act in) */
static void out8(struct guest *g, uint8_t port)
{
	emit(g, "\xe6", 1);
	emit(g, &port, 1);
}

static void load(struct guest *g)
{
	emit(g, "\xf4", 1);                      /* hlt */
	g_assert_cmpint(vmm_cpu_flat32(&g->vm, 0x1000, g->code->data, g->code->len, NULL), ==, 0);
	g_byte_array_set_size(g->code, 0);
}

/* Run the vCPU (entered in the guest view) to the next exit. */
static int run(struct guest *g, struct sbx_guest *gv)
{
	int r;

	g_assert_cmpint(sbx_guest_enter(gv), ==, 0);
	r = vmm_vm_run(&g->vm);
	g_assert_cmpint(sbx_guest_exit(gv), ==, 0);
	return r;
}

static uint32_t io_u32(struct guest *g, uint16_t port)
{
	uint32_t v;

	g_assert_cmpint(g->vm.run->io.direction, ==, KVM_EXIT_IO_OUT);
	g_assert_cmpint(g->vm.run->io.port, ==, port);
	g_assert_cmpint(g->vm.run->io.size, ==, 4);
	memcpy(&v, (uint8_t *)g->vm.run + g->vm.run->io.data_offset, 4);
	return v;
}

static uint32_t snap_u32(struct sbx_snapshot *s, uint64_t off)
{
	uint32_t v;

	memcpy(&v, (const uint8_t *)sbx_snapshot_data(s) + off, 4);
	return v;
}

static struct sbx_mem *patterned(unsigned pages, struct sbx_snapshot **s)
{
	return patterned_in(NULL, ANON, pages, s);
}

static struct sbx_mem *patterned_in(struct sbx_vm *svm, enum kind kind, unsigned pages,
				    struct sbx_snapshot **s)
{
	struct sbx_mem *m;

	if (kind == ANON)
		g_assert_cmpint(sbx_mem_new((uint64_t)pages * PG, &m), ==, 0);
	else
		g_assert_cmpint(sbx_vm_mem_new_gmem(svm, (uint64_t)pages * PG,
						    kind == GMEM_KEPT ? SBX_GMEM_KEEP_MAPPED : 0, &m),
				==, 0);
	for (unsigned p = 0; p < pages; p++)
		g_assert_cmpint(sbx_mem_fill(m, (uint64_t)p * PG, (uint8_t)(0x40 + p), PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, s), ==, 0);
	return m;
}

/*
 * Guest writes two pages, host restores (each strategy), guest reads
 * snapshot bytes. A guest_memfd memslot has no dirty log: every restore
 * after the guest ran rewrites all pages.
 */
static void restore_bound(enum kind kind)
{
	static const unsigned modes[] = { SBX_RESTORE_AUTO, SBX_RESTORE_COPY, SBX_RESTORE_REMAP,
					  SBX_RESTORE_TRIM };
	struct guest g;
	uint32_t v;

	if (!guest_open_kind(&g, 16, kind))
		return;
	struct sbx_mem *m = g.m;
	struct sbx_snapshot *s = g.s;
	struct sbx_guest *gv = g.gv;

	if (kind != ANON) {
		g_assert_cmpint(sbx_vm_bind(g.svm, m, 1, GPA, SBX_BIND_DIRTY_LOG), ==, -EOPNOTSUPP);
		g_assert_cmpint(sbx_vm_bind(g.svm, m, 1, GPA, SBX_BIND_READONLY), ==, -EOPNOTSUPP);
	}
	g_assert_cmpint(sbx_vm_bind(g.svm, m, 1, GPA, kind == ANON ? SBX_BIND_DIRTY_LOG : 0), ==, 0);
	for (unsigned k = 0; k < G_N_ELEMENTS(modes); k++) {
		st32(&g, GPA + 3 * PG + 8, 0xdeadbeef);
		st32(&g, GPA + 9 * PG, 0x12345678 + k);
		ld_out(&g, GPA + 3 * PG + 8, 0x10);     /* guest sees its own write */
		ld_out(&g, GPA + 3 * PG + 8, 0x11);     /* after the host's restore */
		ld_out(&g, GPA + 9 * PG, 0x12);
		ld_out(&g, GPA + 15 * PG + 4092, 0x13); /* never written */
		load(&g);
		g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
		g_assert_cmphex(io_u32(&g, 0x10), ==, 0xdeadbeef);
		g_assert_cmpint(sbx_mem_read_u32(m, 3 * PG + 8, &v), ==, 0);   /* host sees it too */
		g_assert_cmphex(v, ==, 0xdeadbeef);
		/* vCPU stopped at the OUT: restore with the region bound. */
		g_assert_cmpint(sbx_snapshot_restore(m, s, modes[k]),
				==, modes[k] == SBX_RESTORE_REMAP || kind != ANON ? 16 : 2);
		g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
		g_assert_cmphex(io_u32(&g, 0x11), ==, snap_u32(s, 3 * PG + 8));
		g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
		g_assert_cmphex(io_u32(&g, 0x12), ==, snap_u32(s, 9 * PG));
		g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
		g_assert_cmphex(io_u32(&g, 0x13), ==, snap_u32(s, 15 * PG + 4092));
		g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_HLT);
		g_assert_cmpint(sbx_mem_read_u32(m, 3 * PG + 8, &v), ==, 0);
		g_assert_cmphex(v, ==, snap_u32(s, 3 * PG + 8));
	}
	/* Binding errors. */
	g_assert_cmpint(sbx_vm_bind(g.svm, m, 1, GPA + (1 << 24), 0), ==, -EEXIST);
	g_assert_cmpint(sbx_vm_bind(g.svm, m, 3, GPA + 1, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_vm_bind(g.svm, m, 3, GPA, 0x100), ==, -EINVAL);
	g_assert_cmpint(sbx_vm_bind(g.svm, m, 3, UINT64_MAX & ~0xfffull, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_vm_unbind(g.svm, 7), ==, -ENOENT);
	g_assert_cmpint(sbx_guest_free(gv), ==, 0);
	sbx_mem_free(m);                /* the binding keeps the memory alive */
	g.gv = NULL;
	g.m = NULL;
	g_assert_cmpint(sbx_vm_unbind(g.svm, 1), ==, 0);
	guest_close(&g);
}

static void test_restore_bound(void)
{
	restore_bound(ANON);
}

static void test_gmem_restore_bound(void)
{
	restore_bound(GMEM);
}

static void test_gmem_restore_bound_kept(void)
{
	restore_bound(GMEM_KEPT);
}

/* The dirty log holds exactly the pages the guest wrote; host writes are in the record. */
static void test_dirty_log(void)
{
	static const unsigned pages[] = { 0, 5, 6, 63, 64, 99 };
	struct guest g;
	struct sbx_mem_stats st = { .size = sizeof(st) };
	uint64_t bm[2];
	uint64_t small[1];

	if (!guest_open(&g, 100))
		return;
	struct sbx_mem *m = g.m;
	struct sbx_snapshot *s = g.s;
	struct sbx_guest *gv = g.gv;

	g_assert_cmpint(sbx_vm_bind(g.svm, m, 1, GPA, SBX_BIND_DIRTY_LOG), ==, 0);
	for (unsigned i = 0; i < G_N_ELEMENTS(pages); i++)
		st32(&g, GPA + pages[i] * PG + 4 * i, i);
	ld_out(&g, GPA + 50 * PG, 0x10);         /* a read: not dirty */
	load(&g);
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_HLT);
	g_assert_cmpint(sbx_mem_write_u8(m, 10 * PG, 1), ==, 0);   /* host write */
	g_assert_cmpint(sbx_vm_dirty_log(g.svm, 1, small, 1), ==, -ENOBUFS);
	g_assert_cmpint(sbx_vm_dirty_log(g.svm, 1, bm, 2), ==, G_N_ELEMENTS(pages));
	g_assert_cmphex(bm[0], ==, (1ull << 0) | (1ull << 5) | (1ull << 6) | (1ull << 63));
	g_assert_cmphex(bm[1], ==, (1ull << 0) | (1ull << 35));
	/* Read again: nothing new. */
	g_assert_cmpint(sbx_vm_dirty_log(g.svm, 1, bm, 2), ==, 0);
	g_assert_cmphex(bm[0] | bm[1], ==, 0);
	/* The fetched bits were kept for restore: guest pages + the host page. */
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.dirty_pages, ==, G_N_ELEMENTS(pages) + 1);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, G_N_ELEMENTS(pages) + 1);
	for (unsigned i = 0; i < G_N_ELEMENTS(pages); i++) {
		uint32_t v;
		g_assert_cmpint(sbx_mem_read_u32(m, pages[i] * PG + 4 * i, &v), ==, 0);
		g_assert_cmphex(v, ==, snap_u32(s, pages[i] * PG + 4 * i));
	}
	/* Unbind keeps pending guest writes for the next restore. */
	st32(&g, GPA + 77 * PG, 1);
	load(&g);
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_HLT);
	g_assert_cmpint(sbx_vm_unbind(g.svm, 1), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 1);
	/* Unbound: the guest's access is an MMIO exit now. */
	ld_out(&g, GPA, 0x10);
	load(&g);
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_MMIO);
	g_assert_cmphex(g.vm.run->mmio.phys_addr, ==, GPA);
	guest_close(&g);
}

/* A writable binding without dirty logging: restore cannot trust the record, remaps. */
static void test_untracked_binding(void)
{
	struct guest g;

	if (!guest_open(&g, 8))
		return;
	struct sbx_mem *m = g.m;
	struct sbx_snapshot *s = g.s;
	struct sbx_guest *gv = g.gv;

	g_assert_cmpint(sbx_vm_bind(g.svm, m, 1, GPA, 0), ==, 0);
	st32(&g, GPA + 2 * PG, 0xabcdef);
	out8(&g, 0x10);
	ld_out(&g, GPA + 2 * PG, 0x11);
	load(&g);
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 8);
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x11), ==, snap_u32(s, 2 * PG));
	guest_close(&g);
}

/* Snapshot memory bound read-only: the guest reads it, its writes exit as MMIO. */
static void test_snapshot_readonly(void)
{
	struct guest g;

	if (!guest_open(&g, 4))
		return;
	struct sbx_mem *m = g.m;
	struct sbx_snapshot *s = g.s;
	struct sbx_guest *gv = g.gv;

	g_assert_cmpint(sbx_vm_bind_snapshot(g.svm, s, 2, RO_GPA), ==, 0);
	g_assert_cmpint(sbx_vm_bind(g.svm, m, 3, GPA, SBX_BIND_READONLY), ==, 0);
	ld_out(&g, RO_GPA + 2 * PG + 12, 0x10);
	ld_out(&g, GPA + PG, 0x11);
	st32(&g, RO_GPA + 8, 0x55);
	load(&g);
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x10), ==, snap_u32(s, 2 * PG + 12));
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x11), ==, snap_u32(s, PG));
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_MMIO);
	g_assert_true(g.vm.run->mmio.is_write);
	g_assert_cmphex(g.vm.run->mmio.phys_addr, ==, RO_GPA + 8);
	g_assert_cmpint(snap_u32(s, 8), ==, 0x40404040);
	sbx_snapshot_unref(s);           /* the binding still holds it */
	g.s = NULL;
	guest_close(&g);                /* sbx_vm_free unbinds and drops it */
}

/* sbx_vm_new: a VM of our own; the fds work for KVM calls. */
static void test_vm_new(void)
{
	struct sbx_vm *vm;
	struct sbx_mem *m;

	if (!kvmtest_available())
		return;
	g_assert_cmpint(sbx_vm_new(&vm), ==, 0);
	g_assert_cmpint(mk_kvm_check_extension(sbx_vm_kvm_fd(vm), KVM_CAP_USER_MEMORY), >, 0);
	g_assert_cmpint(sbx_mem_new(16 * PG, &m), ==, 0);
	g_assert_cmpint(sbx_vm_bind(vm, m, 0, 0, SBX_BIND_DIRTY_LOG), ==, 0);
	{
		int vcpu = mk_kvm_create_vcpu(sbx_vm_fd(vm), 0);
		g_assert_cmpint(vcpu, >=, 0);
		mk_close(vcpu);
	}
	sbx_mem_free(m);
	sbx_vm_free(vm);
}

/*
 * Each allocation of creating a VM handle and of binding failed in turn:
 * -ENOMEM, no memslot left behind, the caller's fd still open.
 */
static void test_alloc_failures(void)
{
	struct sbx_vm *vm = NULL, *borrowed = NULL;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	long fails;
	int r;

	if (!kvmtest_available())
		return;
	fails = MK_FAIL_EACH_ALLOC(r, sbx_vm_new(&vm), g_assert_null(vm));
	g_assert_cmpint(fails, ==, 1);
	fails = MK_FAIL_EACH_ALLOC(r, sbx_vm_from_fd(sbx_vm_fd(vm), &borrowed), {
		g_assert_null(borrowed);
		g_assert_cmpint(fcntl(sbx_vm_fd(vm), F_GETFD), >=, 0);
	});
	g_assert_cmpint(fails, ==, 1);
	sbx_vm_free(borrowed);
	g_assert_cmpint(fcntl(sbx_vm_fd(vm), F_GETFD), >=, 0);

	m = patterned(16, &s);
	/* The binding and its dirty-log buffer. */
	fails = MK_FAIL_EACH_ALLOC(r, sbx_vm_bind(vm, m, 1, GPA, SBX_BIND_DIRTY_LOG), {
		g_assert_cmpint(sbx_vm_unbind(vm, 1), ==, -ENOENT);
		/* Not bound: a resize (refused while bound) goes through. */
		g_assert_cmpint(sbx_mem_resize(m, 32 * PG), ==, 0);
		g_assert_cmpint(sbx_mem_resize(m, 16 * PG), ==, 0);
	});
	g_assert_cmpint(fails, ==, 2);
	g_assert_cmpint(sbx_mem_resize(m, 32 * PG), ==, -EBUSY);
	fails = MK_FAIL_EACH_ALLOC(r, sbx_vm_bind_snapshot(vm, s, 2, RO_GPA),
				    g_assert_cmpint(sbx_vm_unbind(vm, 2), ==, -ENOENT));
	g_assert_cmpint(fails, ==, 1);
	g_assert_cmpint(sbx_vm_unbind(vm, 2), ==, 0);
	g_assert_cmpint(sbx_vm_unbind(vm, 1), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 32 * PG), ==, 0);
	sbx_vm_free(vm);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

/* ---- lazily loaded memory (sbx_snapshot_open(3)) -------------------------- */

#define LCH SBX_CHUNK_MIN               /* the files' chunks: 64 KiB */
#define LNCH 16u                        /* 1 MiB */

/* A snapshot file of LNCH chunks (chunk 5 all zero) in a memfd, its bytes in *bytes. */
static int lazy_file(uint8_t **bytes)
{
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	uint8_t *b = g_malloc(LNCH * LCH);
	int fd = mk_memfd_create("lazy-kvm", 0);

	for (size_t i = 0; i < LNCH * LCH; i++)
		b[i] = (uint8_t)((i * 2654435761u) >> 11 ^ i / LCH);
	memset(b + 5 * LCH, 0, LCH);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(sbx_mem_new(LNCH * LCH, &m), ==, 0);
	g_assert_cmpint(sbx_mem_write(m, 0, b, LNCH * LCH), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	g_assert_cmpint(sbx_snapshot_save_chunked(s, fd, LCH, 0), ==, 0);
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
	*bytes = b;
	return fd;
}

static uint32_t le_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* A lazily loaded region of lazy_file() bound at GPA in slot 1 (chunk bad, if < LNCH, corrupted first). */
struct lazy_bound {
	int fd;
	uint8_t *bytes;
	struct sbx_snapshot *s;
	struct sbx_mem *m;
	struct sbx_guest *g;
};

static void lazy_bind(struct guest *g, struct lazy_bound *lb, unsigned open_flags, unsigned bind_flags,
		      unsigned bad)
{
	lb->fd = lazy_file(&lb->bytes);
	if (bad < LNCH) {
		struct sbx_snapf f;
		uint8_t hdr[4096], b;
		uint64_t at;

		g_assert_cmpint(mk_pread_full(lb->fd, hdr, sizeof(hdr), 0), ==, 4096);
		g_assert_cmpint(sbx_snapf_parse(hdr, sizeof(hdr), &f, "test"), ==, 0);
		at = f.data_off + (uint64_t)bad * LCH + 300;
		g_assert_cmpint(mk_pread_full(lb->fd, &b, 1, at), ==, 1);
		b ^= 1;
		g_assert_cmpint(mk_pwrite_full(lb->fd, &b, 1, at), ==, 1);
	}
	g_assert_cmpint(sbx_snapshot_open(lb->fd, SBX_OPEN_LAZY | open_flags, &lb->s), ==, 0);
	g_assert_cmpint(sbx_mem_new_from_snapshot(lb->s, &lb->m), ==, 0);
	g_assert_cmpint(sbx_mem_split(lb->m, &lb->g), ==, 0);
	g_assert_cmpint(sbx_vm_bind(g->svm, lb->m, 1, GPA, bind_flags), ==, 0);
}

static void lazy_unbind(struct guest *g, struct lazy_bound *lb)
{
	g_assert_cmpint(sbx_vm_unbind(g->svm, 1), ==, 0);
	g_assert_cmpint(sbx_guest_free(lb->g), ==, 0);
	sbx_mem_free(lb->m);
	sbx_snapshot_unref(lb->s);
	close(lb->fd);
	g_free(lb->bytes);
}

static struct sbx_lazy_stats lstats(struct sbx_snapshot *s)
{
	struct sbx_lazy_stats st = { .size = sizeof(st) };

	g_assert_cmpint(sbx_snapshot_lazy_stats(s, &st), ==, 0);
	return st;
}

/*
 * A guest over a lazily loaded region: its reads and writes fault chunks
 * in inside KVM_RUN (no exit), it reads the file's bytes; restore stays
 * O(dirty) with the region bound; the dirty log has exactly its writes.
 */
static void test_lazy_guest(void)
{
	static const uint32_t offs[] = { 0, 3 * LCH + 100, 5 * LCH + 8, 9 * LCH + LCH - 4, 15 * LCH };
	struct guest g;
	struct lazy_bound lb;
	uint64_t bm[(LNCH * LCH / PG + 63) / 64];

	if (!guest_open(&g, 4))
		return;
	lazy_bind(&g, &lb, 0, SBX_BIND_DIRTY_LOG, LNCH);
	struct sbx_snapshot *ls = lb.s;
	struct sbx_mem *lm = lb.m;
	struct sbx_guest *lg = lb.g;
	uint8_t *bytes = lb.bytes;
	for (unsigned i = 0; i < G_N_ELEMENTS(offs); i++)
		ld_out(&g, GPA + offs[i], (uint8_t)(0x20 + i));
	st32(&g, GPA + 12 * LCH + 40, 0xc0ffee);        /* a write to an unloaded chunk */
	ld_out(&g, GPA + 12 * LCH + 40, 0x30);
	load(&g);
	for (unsigned i = 0; i < G_N_ELEMENTS(offs); i++) {
		g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_IO);
		g_assert_cmphex(io_u32(&g, (uint16_t)(0x20 + i)), ==, le_u32(bytes + offs[i]));
	}
	g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x30), ==, 0xc0ffee);
	g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_HLT);
	/* Guest faults were served by the snapshot's thread: 5 chunks (4 read, 1 zero) and the write's. */
	g_assert_cmpuint(lstats(ls).faults, >=, 6);
	g_assert_cmpuint(lstats(ls).chunks_read, ==, 5);
	g_assert_cmpuint(lstats(ls).chunks_zero, ==, 1);
	g_assert_cmpint(sbx_vm_dirty_log(g.svm, 1, bm, G_N_ELEMENTS(bm)), ==, 1);
	g_assert_cmphex(bm[(12 * LCH + 40) / PG / 64], ==, 1ull << ((12 * LCH + 40) / PG % 64));
	/* Restore with the region bound: one page, read back from the file's chunk, verified. */
	g_assert_cmpint(sbx_snapshot_restore(lm, ls, SBX_RESTORE_COPY), ==, 1);
	ld_out(&g, GPA + 12 * LCH + 40, 0x31);
	load(&g);
	g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x31), ==, le_u32(bytes + 12 * LCH + 40));
	g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_HLT);
	g_test_message("guest faults served: %" PRIu64 ", mean %.1f us", lstats(ls).faults,
		       (double)lstats(ls).fault_ns_total / 1e3 / (double)lstats(ls).faults);
	lazy_unbind(&g, &lb);
	guest_close(&g);
}

/*
 * A chunk of the file corrupted: the guest's access to it makes KVM_RUN
 * fail with EFAULT (every time it is retried), the host's reads get
 * -EBADMSG, the stats say which chunk; every other chunk reads right.
 */
static void test_lazy_bad_chunk(void)
{
	struct guest g;
	struct lazy_bound lb;
	struct sbx_lazy_stats st = { .size = sizeof(st) };
	uint8_t b;
	int r;

	if (!guest_open(&g, 4))
		return;
	lazy_bind(&g, &lb, 0, 0, 7);
	struct sbx_snapshot *ls = lb.s;
	struct sbx_mem *lm = lb.m;
	struct sbx_guest *lg = lb.g;
	uint8_t *bytes = lb.bytes;
	ld_out(&g, GPA + 6 * LCH + 4, 0x20);
	ld_out(&g, GPA + 7 * LCH + 8, 0x21);            /* the bad chunk */
	load(&g);
	g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x20), ==, le_u32(bytes + 6 * LCH + 4));
	r = run(&g, lg);
	g_test_message("the guest's access to the bad chunk: KVM_RUN %d (%s), exit reason %u", r,
		       r < 0 ? g_strerror(-r) : "no error", g.vm.run->exit_reason);
	/*
	 * Hardware-assisted KVM (stock kernels: the microVM's) fails KVM_RUN
	 * with EFAULT, and again on every retry. A KVM that emulates the
	 * instruction instead (a software KVM such as this host's for guest
	 * kernel code) cannot read the page either and reports an MMIO exit at
	 * its address, with no byte of the chunk.
	 */
	if (r == KVM_EXIT_MMIO && !g_getenv("MEMKIT_MICROVM_GUEST")) {
		g_assert_cmphex(g.vm.run->mmio.phys_addr, ==, GPA + 7 * LCH + 8);
		g_assert_false(g.vm.run->mmio.is_write);
		/* Finish the old program: the read gets what this VMM answers (0), then halt. */
		memset(g.vm.run->mmio.data, 0, sizeof(g.vm.run->mmio.data));
		g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_IO);
		g_assert_cmphex(io_u32(&g, 0x21), ==, 0);
		g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_HLT);
	} else {
		g_assert_cmpint(r, ==, -EFAULT);
		g_assert_cmpint(run(&g, lg), ==, -EFAULT);      /* retried: the same */
	}
	st = lstats(ls);
	g_assert_cmpuint(st.chunks_bad, ==, 1);
	g_assert_cmpuint(st.bad_offset, ==, 7 * LCH);
	g_assert_cmpint(sbx_mem_read_u8(lm, 7 * LCH, &b), ==, -EBADMSG);
	/* A new program: every other chunk reads right, for the guest and the host. */
	for (unsigned k = 0; k < LNCH; k++)
		if (k != 7)
			ld_out(&g, GPA + k * LCH + 60, (uint8_t)(0x40 + k));
	load(&g);
	for (unsigned k = 0; k < LNCH; k++) {
		if (k == 7)
			continue;
		g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_IO);
		g_assert_cmphex(io_u32(&g, (uint16_t)(0x40 + k)), ==, le_u32(bytes + k * LCH + 60));
	}
	g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_HLT);
	{
		uint8_t *buf = g_malloc(7 * LCH);
		g_assert_cmpint(sbx_mem_read(lm, 0, buf, 7 * LCH), ==, 0);
		g_assert_cmpmem(buf, 7 * LCH, bytes, 7 * LCH);
		g_free(buf);
	}
	g_assert_cmpuint(lstats(ls).chunks_bad, ==, 1);
	lazy_unbind(&g, &lb);
	guest_close(&g);
}

/* A lazy snapshot bound read-only: the guest's reads page its view in; writes exit as MMIO. */
static void test_lazy_bind_snapshot(void)
{
	struct guest g;
	struct sbx_snapshot *ls;
	uint8_t *bytes;
	int fd;

	if (!guest_open(&g, 4))
		return;
	fd = lazy_file(&bytes);
	g_assert_cmpint(sbx_snapshot_open(fd, SBX_OPEN_LAZY, &ls), ==, 0);
	g_assert_cmpint(sbx_vm_bind_snapshot(g.svm, ls, 2, RO_GPA), ==, 0);
	ld_out(&g, RO_GPA + 11 * LCH + 12, 0x10);
	ld_out(&g, RO_GPA + 5 * LCH, 0x11);
	st32(&g, RO_GPA + 2 * LCH, 0x55);
	load(&g);
	g_assert_cmpint(run(&g, g.gv), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x10), ==, le_u32(bytes + 11 * LCH + 12));
	g_assert_cmpint(run(&g, g.gv), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x11), ==, 0);
	g_assert_cmpint(run(&g, g.gv), ==, KVM_EXIT_MMIO);
	g_assert_true(g.vm.run->mmio.is_write);
	g_assert_cmphex(g.vm.run->mmio.phys_addr, ==, RO_GPA + 2 * LCH);
	g_assert_cmpuint(lstats(ls).faults, >=, 2);
	sbx_snapshot_unref(ls);          /* the binding holds it */
	close(fd);
	g_free(bytes);
	guest_close(&g);
}

struct servicer {
	struct sbx_snapshot *s;
	int stop;               /* atomic */
	unsigned served;
};

static void *service_loop(void *data)
{
	struct servicer *sv = data;
	struct pollfd pfd = { sbx_snapshot_fault_fd(sv->s), POLLIN, 0 };

	while (!__atomic_load_n(&sv->stop, __ATOMIC_ACQUIRE))
		if (poll(&pfd, 1, 10) > 0) {
			int n = sbx_snapshot_service(sv->s);
			g_assert_cmpint(n, >=, 0);
			sv->served += (unsigned)n;
		}
	return NULL;
}

/* SBX_OPEN_NO_THREAD: the caller's own loop (here a thread of the test) serves the guest. */
static void test_lazy_caller_loop(void)
{
	struct guest g;
	struct servicer sv = { 0 };
	struct lazy_bound lb;
	pthread_t tid;

	if (!guest_open(&g, 4))
		return;
	lazy_bind(&g, &lb, SBX_OPEN_NO_THREAD, 0, LNCH);
	sv.s = lb.s;
	struct sbx_guest *lg = lb.g;
	uint8_t *bytes = lb.bytes;
	g_assert_cmpint(pthread_create(&tid, NULL, service_loop, &sv), ==, 0);
	for (unsigned k = 0; k < LNCH; k += 3)
		ld_out(&g, GPA + k * LCH + 1000, (uint8_t)(0x40 + k));
	load(&g);
	for (unsigned k = 0; k < LNCH; k += 3) {
		g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_IO);
		g_assert_cmphex(io_u32(&g, (uint16_t)(0x40 + k)), ==, le_u32(bytes + k * LCH + 1000));
	}
	g_assert_cmpint(run(&g, lg), ==, KVM_EXIT_HLT);
	__atomic_store_n(&sv.stop, 1, __ATOMIC_RELEASE);
	g_assert_cmpint(pthread_join(tid, NULL), ==, 0);
	g_assert_cmpuint(sv.served, >=, (LNCH + 2) / 3);
	g_assert_cmpuint(lstats(sv.s).thread, ==, 0);
	lazy_unbind(&g, &lb);
	guest_close(&g);
}

/* ---- guest_memfd regions ---- */

/* Where the kernel cannot, both calls say -EOPNOTSUPP and change nothing. */
static void test_gmem_probe(void)
{
	struct sbx_vm *vm;
	struct sbx_mem *m = (struct sbx_mem *)&m;
	const char *release;
	unsigned v;
	int r;

	if (!kvmtest_available())
		return;
	v = kernel_version(&release);
	g_assert_cmpint(sbx_vm_new(&vm), ==, 0);
	g_assert_cmpint(sbx_vm_gmem_supported(NULL), ==, -EINVAL);
	g_assert_cmpint(sbx_vm_mem_new_gmem(NULL, PG, 0, &m), ==, -EINVAL);
	g_assert_cmpint(sbx_vm_mem_new_gmem(vm, PG, 0x100, &m), ==, -EINVAL);
	g_assert_cmpint(sbx_vm_mem_new_gmem(vm, PG, 0, NULL), ==, -EINVAL);
	g_assert_false(sbx_mem_is_gmem(NULL));
	r = sbx_vm_gmem_supported(vm);
	g_test_message("kernel %s: sbx_vm_gmem_supported %d", release, r);
	if (v >= 6018) {
		g_assert_cmpint(r, ==, 0);
		g_assert_cmpint(sbx_vm_mem_new_gmem(vm, 0, 0, &m), ==, -EINVAL);
		g_assert_cmpint(sbx_vm_mem_new_gmem(vm, PG + 1, 0, &m), ==, -EINVAL);
		g_assert_cmpint(sbx_vm_mem_new_gmem(vm, 4 * PG, 0, &m), ==, 0);
		g_assert_true(sbx_mem_is_gmem(m));
		sbx_mem_free(m);
	} else {
		g_assert_cmpint(r, ==, -EOPNOTSUPP);
		g_assert_cmpint(sbx_vm_mem_new_gmem(vm, 4 * PG, 0, &m), ==, -EOPNOTSUPP);
		g_assert_cmpint(sbx_vm_mem_new_gmem(vm, 4 * PG, SBX_GMEM_KEEP_MAPPED, &m), ==,
				-EOPNOTSUPP);
		g_assert_true(m == (struct sbx_mem *)&m);
	}
	sbx_vm_free(vm);
}

/* Read 8 bytes of this process at addr through /proc/self/mem: bytes read, or -errno. */
static ssize_t proc_mem_read(const void *addr, void *buf)
{
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	g_assert_cmpint(fd, >=, 0);
	n = pread(fd, buf, 8, (off_t)(uintptr_t)addr);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

/*
 * The host API on a guest_memfd region without a guest: copies, the buffer
 * stack, snapshots and O(dirty) restores of host writes, zero, what it
 * refuses; and, not kept mapped, that nothing reaches it between calls.
 */
static void gmem_host(enum kind kind)
{
	struct sbx_snapshot *s, *s2, *lz;
	struct sbx_mem_stats st = { .size = sizeof(st) };
	struct sbx_vm *vm;
	struct sbx_mem *m;
	uint8_t buf[64], big[3 * PG], raw[8];
	uint64_t u64;
	size_t len;
	uint8_t *p;

	if (!kvmtest_available())
		return;
	g_assert_cmpint(sbx_vm_new(&vm), ==, 0);
	if (!gmem_here(vm)) {
		sbx_vm_free(vm);
		return;
	}
	m = patterned_in(vm, kind, 8, &s);
	g_assert_true(sbx_mem_is_gmem(m));
	g_assert_cmpuint(sbx_mem_size(m), ==, 8 * PG);
	/* Copies, typed values, bounds. */
	g_assert_cmpint(sbx_mem_read(m, 3 * PG - 8, buf, 16), ==, 0);
	g_assert_cmphex(buf[0], ==, 0x42);
	g_assert_cmphex(buf[15], ==, 0x43);
	g_assert_cmpint(sbx_mem_write_u64(m, 5 * PG + 8, 0x1122334455667788ull), ==, 0);
	g_assert_cmpint(sbx_mem_read_u64(m, 5 * PG + 8, &u64), ==, 0);
	g_assert_cmphex(u64, ==, 0x1122334455667788ull);
	g_assert_cmpint(sbx_mem_read(m, 8 * PG - 8, buf, 16), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_write(m, UINT64_MAX, buf, 2), ==, -EINVAL);
	g_assert_cmpint(sbx_mem_copy(m, 6 * PG, 5 * PG, PG), ==, 0);
	g_assert_cmpint(sbx_mem_read_u64(m, 6 * PG + 8, &u64), ==, 0);
	g_assert_cmphex(u64, ==, 0x1122334455667788ull);
	/* The buffer stack (6 * PG .. 7 * PG). */
	g_assert_cmpint(sbx_stack_init(m, 6 * PG, PG), ==, 0);
	g_assert_cmpint(sbx_stack_push(m, 6 * PG, PG, "gmem", 4), ==, 0);
	g_assert_cmpint(sbx_stack_pop(m, 6 * PG, PG, buf, sizeof(buf), &len), ==, 0);
	g_assert_cmpmem(buf, len, "gmem", 4);
	/* Pages 5 and 6 dirty: an O(dirty) restore puts back just those (TRIM copies too). */
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.dirty_pages, ==, 2);
	g_assert_cmpuint(st.shared_bytes, ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_TRIM), ==, 2);
	g_assert_cmpint(sbx_mem_read(m, 5 * PG, big, PG), ==, 0);
	g_assert_cmpmem(big, PG, (const uint8_t *)sbx_snapshot_data(s) + 5 * PG, PG);
	g_assert_cmpint(sbx_mem_fill(m, PG, 0x99, 2 * PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 2);
	g_assert_cmpint(sbx_mem_fill(m, 0, 0, 8 * PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, 8);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_REMAP), ==, 8);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.restores_copy, ==, 2);
	g_assert_cmpuint(st.restores_remap, ==, 2);
	g_assert_cmpuint(st.restores_trim, ==, 0);
	g_assert_cmpuint(st.pages_restored, ==, 20);
	g_assert_cmpint(sbx_mem_read(m, 0, big, sizeof(big)), ==, 0);
	g_assert_cmpmem(big, sizeof(big), sbx_snapshot_data(s), sizeof(big));
	g_assert_cmpint(sbx_mem_trim(m), ==, 0);
	g_assert_cmpint(sbx_mem_resize(m, 16 * PG), ==, -EOPNOTSUPP);
	/* Another snapshot (half zero: those pages go back as holes), then back to s. */
	g_assert_cmpint(sbx_mem_fill(m, 0, 0, 4 * PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s2), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 8);
	g_assert_cmpint(sbx_mem_read_u64(m, 0, &u64), ==, 0);
	g_assert_cmphex(u64, ==, 0x4040404040404040ull);
	g_assert_cmpint(sbx_snapshot_restore(m, s2, SBX_RESTORE_COPY), ==, 8);
	g_assert_cmpint(sbx_mem_read_u64(m, 0, &u64), ==, 0);
	g_assert_cmphex(u64, ==, 0);
	g_assert_cmpint(sbx_mem_read_u64(m, 4 * PG, &u64), ==, 0);
	g_assert_cmphex(u64, ==, 0x4444444444444444ull);
	/* A lazily loaded snapshot is not restored into guest_memfd. */
	{
		int fd = mk_memfd_create("gmem-lazy", 0);
		g_assert_cmpint(fd, >=, 0);
		g_assert_cmpint(sbx_snapshot_save(s, fd), ==, 0);
		g_assert_cmpint(sbx_snapshot_open(fd, SBX_OPEN_LAZY, &lz), ==, 0);
		g_assert_cmpint(sbx_snapshot_restore(m, lz, SBX_RESTORE_AUTO), ==, -EOPNOTSUPP);
		sbx_snapshot_unref(lz);
		mk_close(fd);
	}
	/* The raw pointer exists only kept mapped; unkept, nothing maps the bytes between calls. */
	p = sbx_mem_host_ptr(m, true);
	if (kind == GMEM_KEPT) {
		g_assert_nonnull(p);
		g_assert_cmphex(p[4 * PG], ==, 0x44);
		g_assert_cmpint(proc_mem_read(p + 4 * PG, raw), ==, 8);
		g_assert_cmphex(raw[0], ==, 0x44);
	} else {
		g_assert_null(p);
		g_assert_cmpint(proc_mem_read(m->base + 4 * PG, raw), ==, -EIO);
	}
	/* Zero: every page given back. */
	g_assert_cmpint(sbx_mem_zero(m), ==, 0);
	g_assert_cmpint(sbx_mem_read(m, 4 * PG, big, PG), ==, 0);
	g_assert_true(sbx_all_zero(big, PG));
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 8);
	g_assert_cmpint(sbx_mem_read_u64(m, 7 * PG, &u64), ==, 0);
	g_assert_cmphex(u64, ==, 0x4747474747474747ull);
	sbx_snapshot_unref(s2);
	sbx_snapshot_unref(s);
	sbx_mem_free(m);
	sbx_vm_free(vm);
}

static void test_gmem_host(void)
{
	gmem_host(GMEM);
}

static void test_gmem_host_kept(void)
{
	gmem_host(GMEM_KEPT);
}

/*
 * A guest writes a guest_memfd region the host has not mapped: the host
 * reads it through the library, not through /proc/self/mem; a region of
 * one VM does not bind into another.
 */
static void test_gmem_guest_unmapped(void)
{
	struct sbx_vm *other;
	struct guest g;
	uint8_t raw[8];
	uint32_t v;

	if (!guest_open_kind(&g, 4, GMEM))
		return;
	g_assert_cmpint(sbx_vm_bind(g.svm, g.m, 1, GPA, 0), ==, 0);
	st32(&g, GPA + PG + 4, 0xfeedf00d);
	ld_out(&g, GPA + 3 * PG, 0x10);
	load(&g);
	g_assert_cmpint(run(&g, g.gv), ==, KVM_EXIT_IO);
	g_assert_cmphex(io_u32(&g, 0x10), ==, snap_u32(g.s, 3 * PG));
	g_assert_cmpint(proc_mem_read(g.m->base + PG + 4, raw), ==, -EIO);
	g_assert_cmpint(sbx_mem_read_u32(g.m, PG + 4, &v), ==, 0);
	g_assert_cmphex(v, ==, 0xfeedf00d);
	g_assert_cmpint(run(&g, g.gv), ==, KVM_EXIT_HLT);
	g_assert_cmpint(sbx_vm_new(&other), ==, 0);
	g_assert_cmpint(sbx_vm_bind(other, g.m, 1, GPA, 0), ==, -EINVAL);
	sbx_vm_free(other);
	guest_close(&g);
}

/*
 * The VMM's way (vmm_machine_open): the region is the VM's RAM at gpa 0
 * (memslot 0, dirty log on), its raw pointer taken with the will_mark_dirty
 * promise (vmm_machine_sbx_ram). The host loads code through the pointer
 * (reported by vmm), the guest writes two pages; the restore copies back
 * exactly those three pages (no remap of all 512) and the region equals the
 * snapshot again, code page included.
 */
static void test_vmm_ram(void)
{
	struct vmm_err err = { 0 };
	struct sbx_mem_stats st = { .size = sizeof(st) };
	struct sbx_snapshot *s;
	struct sbx_guest *gv;
	struct sbx_mem *m;
	struct sbx_vm *svm;
	struct guest g = { 0 };
	uint8_t buf[PG];

	if (!kvmtest_available())
		return;
	g_assert_cmpint(vmm_vm_open(&g.vm, -1, 0, 0, &err), ==, 0);
	g_assert_cmpint(sbx_vm_from_fd(g.vm.vm_fd, &svm), ==, 0);
	g_assert_cmpint(sbx_mem_new(512 * PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_split(m, &gv), ==, 0);
	g_assert_cmpint(vmm_machine_sbx_ram(&g.vm, m), ==, 0);
	g_assert_cmpint(sbx_vm_bind(svm, m, 0, 0, SBX_BIND_DIRTY_LOG), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	g.code = g_byte_array_new();
	st32(&g, 100 * PG + 8, 0xdeadbeef);
	st32(&g, 300 * PG, 0x12345678);
	load(&g);                                   /* host write into page 1 */
	g_assert_cmpint(run(&g, gv), ==, KVM_EXIT_HLT);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.dirty_pages, ==, 1);    /* the guest's two are still in KVM's log */
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_AUTO), ==, 3);
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.restores_copy, ==, 1);
	g_assert_cmpuint(st.restores_remap, ==, 0);
	g_assert_cmpuint(st.pages_restored, ==, 3);
	for (unsigned p = 0; p < 512; p++) {
		g_assert_cmpint(sbx_mem_read(m, (uint64_t)p * PG, buf, PG), ==, 0);
		g_assert_cmpmem(buf, PG, (const uint8_t *)sbx_snapshot_data(s) + (uint64_t)p * PG, PG);
	}
	g_byte_array_unref(g.code);
	sbx_vm_free(svm);
	g_assert_cmpint(sbx_guest_free(gv), ==, 0);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	vmm_vm_close(&g.vm);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sbx/kvm/restore-bound", test_restore_bound);
	g_test_add_func("/sbx/kvm/dirty-log", test_dirty_log);
	g_test_add_func("/sbx/kvm/vmm-ram", test_vmm_ram);
	g_test_add_func("/sbx/kvm/untracked-binding", test_untracked_binding);
	g_test_add_func("/sbx/kvm/snapshot-readonly", test_snapshot_readonly);
	g_test_add_func("/sbx/kvm/vm-new", test_vm_new);
	g_test_add_func("/sbx/kvm/alloc-failures", test_alloc_failures);
	g_test_add_func("/sbx/kvm/lazy-guest", test_lazy_guest);
	g_test_add_func("/sbx/kvm/lazy-bad-chunk", test_lazy_bad_chunk);
	g_test_add_func("/sbx/kvm/lazy-bind-snapshot", test_lazy_bind_snapshot);
	g_test_add_func("/sbx/kvm/lazy-caller-loop", test_lazy_caller_loop);
	g_test_add_func("/sbx/kvm/gmem/probe", test_gmem_probe);
	g_test_add_func("/sbx/kvm/gmem/host", test_gmem_host);
	g_test_add_func("/sbx/kvm/gmem/host-kept", test_gmem_host_kept);
	g_test_add_func("/sbx/kvm/gmem/restore-bound", test_gmem_restore_bound);
	g_test_add_func("/sbx/kvm/gmem/restore-bound-kept", test_gmem_restore_bound_kept);
	g_test_add_func("/sbx/kvm/gmem/guest-unmapped", test_gmem_guest_unmapped);
	return g_test_run();
}
