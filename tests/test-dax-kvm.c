/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libdax against real KVM guests: a 32-bit flat guest reads and writes
 * the DAX window at gpa 0x40000000; setup, upgrade, remove, snapshot ->
 * restore -> first-touch rebind, with the window and memslot mappers.
 * Skips with the reason when /dev/kvm cannot be used.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "dax.h"
#include "kvmtest.h"
#include "test-dax-util.h"

#define WBASE 0x40000000ull
#define WLEN (64ull << 20)
#define M2 (2ull << 20)
#define R DAX_FUSE_FLAG_READ
#define W DAX_FUSE_FLAG_WRITE

/* ---- guest code ----------------------------------------------------------------------- */

struct code {
	uint8_t b[512];
	size_t n;
};

static void emit(struct code *c, const void *p, size_t n)
{
	g_assert_cmpuint(c->n + n, <=, sizeof(c->b));
	memcpy(c->b + c->n, p, n);
	c->n += n;
}

static void op_addr(struct code *c, const uint8_t *op, size_t oplen, uint32_t addr)
{
	emit(c, op, oplen);
	emit(c, &addr, 4);
}

static void load_eax(struct code *c, uint32_t a) { op_addr(c, (const uint8_t[]){ 0xa1 }, 1, a); }
static void load_ebx(struct code *c, uint32_t a) { op_addr(c, (const uint8_t[]){ 0x8b, 0x1d }, 2, a); }
static void load_ecx(struct code *c, uint32_t a) { op_addr(c, (const uint8_t[]){ 0x8b, 0x0d }, 2, a); }
static void store_eax(struct code *c, uint32_t a) { op_addr(c, (const uint8_t[]){ 0xa3 }, 1, a); }
static void mov_eax(struct code *c, uint32_t v) { op_addr(c, (const uint8_t[]){ 0xb8 }, 1, v); }
static void out10(struct code *c) { emit(c, (const uint8_t[]){ 0xe6, 0x10 }, 2); }
static void hlt(struct code *c) { emit(c, (const uint8_t[]){ 0xf4 }, 1); }

static uint32_t pat32(uint64_t off)
{
	return (uint32_t)dax_test_pattern(off) | (uint32_t)dax_test_pattern(off + 1) << 8 |
	       (uint32_t)dax_test_pattern(off + 2) << 16 | (uint32_t)dax_test_pattern(off + 3) << 24;
}

/* ---- fixture --------------------------------------------------------------------------- */

struct kfx {
	struct kvmtest_vm vm;
	struct dax_table *table;
	struct dax_session *s;
	char *path;
};

static bool kfx_open(struct kfx *f, unsigned mapper, const char *path)
{
	const char *why;
	struct dax_config cfg = {
		.base_gpa = WBASE, .window_len = WLEN, .align_log2 = 21,
		.mapper = mapper, .slot = 1, .nslots = 16,
	};
	struct dax_backend be;
	int r;

	memset(f, 0, sizeof(*f));
	if (!kvmtest_available())
		return false;
	r = kvmtest_vm_open(&f->vm, 1 << 20, &why);
	if (r < 0)
		g_error("VM setup: %s: %s", why, g_strerror(-r));
	cfg.vm_fd = f->vm.vm_fd;
	f->path = path ? g_strdup(path) : dax_test_file(8 * M2 + 0x1000);
	g_assert_cmpint(dax_table_new(&f->table), ==, 0);
	g_assert_cmpint(dax_table_add(f->table, 1, f->path), ==, 0);
	be = (struct dax_backend){ dax_table_open, NULL, f->table };
	g_assert_cmpint(dax_session_new(&cfg, &be, &f->s), ==, 0);
	return true;
}

/* Free session and VM; keep_file leaves the file for another fixture. */
static void kfx_close(struct kfx *f, bool keep_file)
{
	dax_session_free(f->s);
	dax_table_free(f->table);
	kvmtest_vm_close(&f->vm);
	if (!keep_file)
		g_unlink(f->path);
	g_free(f->path);
}

/*
 * Run the guest until HLT, handing window exits to libdax. Returns how
 * many exits libdax handled; *fail gets a libdax error, if any.
 */
static unsigned run_guest(struct kfx *f, int *fail)
{
	unsigned handled = 0;

	*fail = 0;
	for (;;) {
		int r = kvmtest_run(&f->vm);
		if (r == KVM_EXIT_HLT)
			return handled;
		if (r == KVM_EXIT_IO)
			continue;
		if (r == KVM_EXIT_MMIO) {
			int h = dax_session_handle_kvm_exit(f->s, f->vm.run);
			if (h < 0) {
				*fail = h;
				return handled;
			}
			g_assert_cmpint(h, ==, 1);
			handled++;
			continue;
		}
		g_error("unexpected exit %d (%s)", r, r < 0 ? g_strerror(-r) : "");
	}
}

static void regs(struct kfx *f, struct kvm_regs *rg)
{
	g_assert_cmpint(mk_kvm_get_regs(f->vm.vcpu_fd, rg), ==, 0);
}

static void load(struct kfx *f, struct code *c)
{
	g_assert_cmpint(kvmtest_load(&f->vm, 0x1000, c->b, c->n), ==, 0);
}

static int setup(struct kfx *f, uint64_t moff, uint64_t foff, uint64_t len, uint64_t flags)
{
	struct dax_setup_req q = { DAX_FH_NONE, foff, len, flags, moff };

	return dax_session_setup(f->s, 1, &q);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_setup_read(gconstpointer mapper)
{
	struct kfx f;
	struct code c = { 0 };
	struct kvm_regs rg;
	int fail;

	if (!kfx_open(&f, GPOINTER_TO_UINT(mapper), NULL))
		return;
	g_assert_cmpint(setup(&f, M2, 3 * M2, M2, R), ==, 0);
	load_eax(&c, WBASE + M2 + 0x1234);
	load_ebx(&c, WBASE + M2 + M2 - 4);
	hlt(&c);
	load(&f, &c);
	g_assert_cmpuint(run_guest(&f, &fail), ==, 0);      /* no exits: direct access */
	g_assert_cmpint(fail, ==, 0);
	regs(&f, &rg);
	g_assert_cmphex(rg.rax, ==, pat32(3 * M2 + 0x1234));
	g_assert_cmphex(rg.rbx, ==, pat32(4 * M2 - 4));
	kfx_close(&f, false);
}

static void test_upgrade(gconstpointer mapper)
{
	struct kfx f;
	struct code c = { 0 }, c2 = { 0 };
	struct kvm_regs rg;
	uint32_t v = 0;
	int fd, r;

	if (!kfx_open(&f, GPOINTER_TO_UINT(mapper), NULL))
		return;
	g_assert_cmpint(setup(&f, 0, 0, M2, R), ==, 0);
	load_eax(&c, WBASE + 0x100);
	out10(&c);
	store_eax(&c, WBASE + 0x2000);
	hlt(&c);
	load(&f, &c);
	g_assert_cmpint(kvmtest_run(&f.vm), ==, KVM_EXIT_IO);
	regs(&f, &rg);
	g_assert_cmphex(rg.rax, ==, pat32(0x100));
	/* the guest's read -> write upgrade: the same range again, read-write */
	g_assert_cmpint(setup(&f, 0, 0, M2, R | W), ==, 0);
	g_assert_cmpint(kvmtest_run(&f.vm), ==, KVM_EXIT_HLT);
	fd = open(f.path, O_RDONLY);
	g_assert_cmpint(pread(fd, &v, 4, 0x2000), ==, 4);
	close(fd);
	g_assert_cmphex(v, ==, pat32(0x100));

	/* a write to a read-only mapping does not reach the file */
	g_assert_cmpint(setup(&f, 2 * M2, 0, M2, R), ==, 0);
	store_eax(&c2, WBASE + 2 * M2 + 0x3000);
	hlt(&c2);
	load(&f, &c2);
	/* window: a read-only host mapping; memslot: KVM_MEM_READONLY. Both exit as MMIO writes. */
	r = kvmtest_run(&f.vm);
	g_assert_cmpint(r, ==, KVM_EXIT_MMIO);
	g_assert_true(f.vm.run->mmio.is_write);
	g_assert_cmphex(f.vm.run->mmio.phys_addr, ==, WBASE + 2 * M2 + 0x3000);
	g_assert_cmpint(dax_session_handle_kvm_exit(f.s, f.vm.run), ==, -EACCES);
	fd = open(f.path, O_RDONLY);
	g_assert_cmpint(pread(fd, &v, 4, 0x3000), ==, 4);
	close(fd);
	g_assert_cmphex(v, ==, pat32(0x3000));
	kfx_close(&f, false);
}

static void test_remove(gconstpointer mapper)
{
	struct kfx f;
	struct code c = { 0 };
	struct kvm_regs rg;
	uint8_t payload[4 + 16];
	uint32_t count = 1;
	uint64_t e[2] = { 4 * M2, M2 };

	if (!kfx_open(&f, GPOINTER_TO_UINT(mapper), NULL))
		return;
	g_assert_cmpint(setup(&f, 4 * M2, 0, M2, R), ==, 0);
	load_eax(&c, WBASE + 4 * M2 + 8);
	out10(&c);
	load_ebx(&c, WBASE + 4 * M2 + 8);
	hlt(&c);
	load(&f, &c);
	g_assert_cmpint(kvmtest_run(&f.vm), ==, KVM_EXIT_IO);
	regs(&f, &rg);
	g_assert_cmphex(rg.rax, ==, pat32(8));
	/* FUSE_REMOVEMAPPING as the kernel sends it */
	memcpy(payload, &count, 4);
	memcpy(payload + 4, e, 16);
	g_assert_cmpint(dax_session_remove_raw(f.s, payload, sizeof(payload)), ==, 0);
	/* the page is gone from the guest: an MMIO exit nobody claims */
	g_assert_cmpint(kvmtest_run(&f.vm), ==, KVM_EXIT_MMIO);
	g_assert_cmphex(f.vm.run->mmio.phys_addr, ==, WBASE + 4 * M2 + 8);
	g_assert_cmpint(dax_session_handle_kvm_exit(f.s, f.vm.run), ==, 0);
	kfx_close(&f, false);
}

static void test_restore_rebind(gconstpointer mapper)
{
	struct kfx f, g;
	struct code c = { 0 };
	struct kvm_regs rg;
	g_autofree void *blob = NULL;
	g_autofree char *path = NULL;
	size_t len;
	struct dax_stats st;
	uint32_t v;
	int fail, fd;

	if (!kfx_open(&f, GPOINTER_TO_UINT(mapper), NULL))
		return;
	g_assert_cmpint(setup(&f, 0, 0, M2, R), ==, 0);
	g_assert_cmpint(setup(&f, 6 * M2, 2 * M2, M2, R | W), ==, 0);
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &blob, &len), ==, 0);
	path = g_strdup(f.path);
	kfx_close(&f, true);

	/* a new VMM process, in effect: new VM, new session, same files */
	if (!kfx_open(&g, GPOINTER_TO_UINT(mapper), path))
		return;
	g_assert_cmpint(dax_session_restore(g.s, blob, len), ==, 0);
	load_eax(&c, WBASE + 0x10);             /* first touch: MMIO exit, rebind */
	load_ebx(&c, WBASE + 0x14);             /* direct */
	mov_eax(&c, 0xfeedf00d);
	store_eax(&c, WBASE + 6 * M2 + 0x40);   /* first touch of the RW slot: MMIO write */
	store_eax(&c, WBASE + 6 * M2 + 0x80);   /* direct */
	load_ecx(&c, WBASE + 6 * M2 + 0x44);    /* direct read of the slot */
	hlt(&c);
	load(&g, &c);
	g_assert_cmpuint(run_guest(&g, &fail), ==, 2);
	g_assert_cmpint(fail, ==, 0);
	regs(&g, &rg);
	g_assert_cmphex(rg.rbx, ==, pat32(0x14));
	g_assert_cmphex(rg.rcx, ==, pat32(2 * M2 + 0x44));
	fd = open(g.path, O_RDONLY);
	g_assert_cmpint(pread(fd, &v, 4, 2 * M2 + 0x40), ==, 4);
	g_assert_cmphex(v, ==, 0xfeedf00d);
	g_assert_cmpint(pread(fd, &v, 4, 2 * M2 + 0x80), ==, 4);
	g_assert_cmphex(v, ==, 0xfeedf00d);
	close(fd);
	g_assert_cmpint(dax_session_stats(g.s, &st), ==, 0);
	g_assert_cmpuint(st.faults, ==, 2);
	g_assert_cmpuint(st.mmio_completed, ==, 2);
	g_assert_cmpuint(st.bound_slots, ==, 2);
	/* the first load's value came from the MMIO completion */
	{
		struct code c2 = { 0 };
		load_eax(&c2, WBASE + 0x10);
		hlt(&c2);
		load(&g, &c2);
		g_assert_cmpuint(run_guest(&g, &fail), ==, 0);
		regs(&g, &rg);
		g_assert_cmphex(rg.rax, ==, pat32(0x10));
	}
	kfx_close(&g, false);
}

static void test_restore_first_read_value(void)
{
	struct kfx f, g;
	struct code c = { 0 };
	struct kvm_regs rg;
	g_autofree void *blob = NULL;
	g_autofree char *path = NULL;
	size_t len;
	int fail;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	g_assert_cmpint(setup(&f, 2 * M2, M2, M2, R), ==, 0);
	g_assert_cmpint(dax_session_snapshot(f.s, 1, &blob, &len), ==, 0);
	path = g_strdup(f.path);
	kfx_close(&f, true);
	if (!kfx_open(&g, DAX_MAPPER_KVM_WINDOW, path))
		return;
	g_assert_cmpint(dax_session_restore(g.s, blob, len), ==, 0);
	load_eax(&c, WBASE + 2 * M2 + 0x777);   /* unaligned, completed by pread */
	hlt(&c);
	load(&g, &c);
	g_assert_cmpuint(run_guest(&g, &fail), ==, 1);
	regs(&g, &rg);
	g_assert_cmphex(rg.rax, ==, pat32(M2 + 0x777));
	kfx_close(&g, false);
}

static void test_restore_stale(void)
{
	struct kfx f, g;
	struct code c = { 0 };
	g_autofree void *blob = NULL;
	g_autofree char *path = NULL;
	size_t len;
	int fail, fd;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	g_assert_cmpint(setup(&f, 0, 0, M2, R), ==, 0);
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &blob, &len), ==, 0);
	path = g_strdup(f.path);
	kfx_close(&f, true);
	/* the file changes while the VM is down */
	fd = open(path, O_WRONLY | O_APPEND);
	g_assert_cmpint(write(fd, "more", 4), ==, 4);
	close(fd);
	if (!kfx_open(&g, DAX_MAPPER_KVM_WINDOW, path))
		return;
	g_assert_cmpint(dax_session_restore(g.s, blob, len), ==, 0);
	load_eax(&c, WBASE + 0x10);
	hlt(&c);
	load(&g, &c);
	g_assert_cmpuint(run_guest(&g, &fail), ==, 0);
	g_assert_cmpint(fail, ==, -ESTALE);
	kfx_close(&g, false);
}

static void test_translate(void)
{
	struct kfx f;
	void *hva;
	uint64_t len;
	uint32_t v;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	g_assert_cmpint(setup(&f, 8 * M2, 4 * M2, M2, R), ==, 0);
	g_assert_cmpint(dax_session_translate(f.s, WBASE + 8 * M2 + 0x100, &hva, &len), ==, 0);
	g_assert_cmphex(len, ==, M2 - 0x100);
	memcpy(&v, hva, 4);
	g_assert_cmphex(v, ==, pat32(4 * M2 + 0x100));
	kfx_close(&f, false);
}

/* Restoring into a session with live mappings unmaps them from the guest first. */
static void test_restore_over_live(void)
{
	struct kfx f;
	struct code c = { 0 };
	struct kvm_regs rg;
	g_autofree void *blob = NULL;
	size_t len;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	g_assert_cmpint(setup(&f, 4 * M2, 0, M2, R), ==, 0);
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &blob, &len), ==, 0);    /* only B */
	g_assert_cmpint(dax_session_reset(f.s), ==, 0);
	g_assert_cmpint(setup(&f, 0, M2, M2, R), ==, 0);                      /* A, live */
	load_eax(&c, WBASE + 0x20);
	out10(&c);
	load_ebx(&c, WBASE + 0x20);             /* A again, after the restore */
	hlt(&c);
	load(&f, &c);
	g_assert_cmpint(kvmtest_run(&f.vm), ==, KVM_EXIT_IO);
	regs(&f, &rg);
	g_assert_cmphex(rg.rax, ==, pat32(M2 + 0x20));
	g_assert_cmpint(dax_session_restore(f.s, blob, len), ==, 0);
	/* A is gone from the guest: an unclaimed MMIO exit, not a stale read */
	g_assert_cmpint(kvmtest_run(&f.vm), ==, KVM_EXIT_MMIO);
	g_assert_cmphex(f.vm.run->mmio.phys_addr, ==, WBASE + 0x20);
	g_assert_cmpint(dax_session_handle_kvm_exit(f.s, f.vm.run), ==, 0);
	/* B binds on first touch */
	g_assert_cmpint(dax_session_handle_mmio(f.s, WBASE + 4 * M2, (uint8_t[8]){ 0 }, 4, 0), ==, 1);
	kfx_close(&f, false);
}

/*
 * Two vCPUs walk the same restored slots in opposite orders at once:
 * every slot is bound exactly once, every exit is completed with the
 * file's bytes, whichever vCPU wins.
 */
struct walker {
	struct kfx *f;
	int vcpu_fd;
	struct kvm_run *run;
	unsigned exits;
	int err;
};

static gpointer walk(gpointer p)
{
	struct walker *w = p;

	for (;;) {
		int r = mk_kvm_run(w->vcpu_fd);
		if (r < 0) {
			w->err = r;
			return NULL;
		}
		if (w->run->exit_reason == KVM_EXIT_HLT)
			return NULL;
		if (w->run->exit_reason != KVM_EXIT_MMIO ||
		    dax_session_handle_kvm_exit(w->f->s, w->run) != 1) {
			w->err = -EIO;
			return NULL;
		}
		w->exits++;
	}
}

static void walk_code(struct code *c, uint32_t table, uint32_t n)
{
	op_addr(c, (const uint8_t[]){ 0xbe }, 1, table);        /* mov esi, table */
	op_addr(c, (const uint8_t[]){ 0xb9 }, 1, n);            /* mov ecx, n */
	emit(c, (const uint8_t[]){ 0x31, 0xdb,                  /* xor ebx, ebx */
				   0x8b, 0x06,                  /* loop: mov eax, [esi] */
				   0x8b, 0x10,                  /* mov edx, [eax] */
				   0x31, 0xd3,                  /* xor ebx, edx */
				   0x83, 0xc6, 0x04,            /* add esi, 4 */
				   0x49,                        /* dec ecx */
				   0x75, 0xf4,                  /* jnz loop */
				   0xf4 }, 15);                 /* hlt */
}

static void test_concurrent_faults(void)
{
	enum { N = 24 };
	struct kfx f;
	struct code c0 = { 0 }, c1 = { 0 };
	struct walker w[2];
	GThread *th[2];
	struct kvm_sregs sregs;
	struct kvm_regs rg;
	struct dax_stats st;
	g_autofree void *blob = NULL;
	size_t len;
	uint32_t want = 0;
	int vcpu1, sz;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	for (unsigned i = 0; i < N; i++) {
		uint32_t a = (uint32_t)(WBASE + i * M2 + 0x10 * i);
		uint32_t b = (uint32_t)(WBASE + (N - 1 - i) * M2 + 0x10 * (N - 1 - i));
		g_assert_cmpint(setup(&f, i * M2, (i % 4) * M2, M2, R), ==, 0);
		memcpy((uint8_t *)f.vm.mem + 0x2000 + 4 * i, &a, 4);
		memcpy((uint8_t *)f.vm.mem + 0x3000 + 4 * i, &b, 4);
		want ^= pat32((i % 4) * M2 + 0x10 * i);
	}
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &blob, &len), ==, 0);
	g_assert_cmpint(dax_session_restore(f.s, blob, len), ==, 0);

	walk_code(&c0, 0x2000, N);
	walk_code(&c1, 0x3000, N);
	memcpy((uint8_t *)f.vm.mem + 0x1800, c1.b, c1.n);
	load(&f, &c0);
	vcpu1 = mk_kvm_create_vcpu(f.vm.vm_fd, 1);
	g_assert_cmpint(vcpu1, >=, 0);
	sz = mk_kvm_vcpu_mmap_size(f.vm.kvm_fd);
	w[0] = (struct walker){ &f, f.vm.vcpu_fd, f.vm.run, 0, 0 };
	w[1] = (struct walker){ &f, vcpu1, NULL, 0, 0 };
	g_assert_cmpint(mk_mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu1, 0,
				(void **)&w[1].run), ==, 0);
	g_assert_cmpint(mk_kvm_get_sregs(f.vm.vcpu_fd, &sregs), ==, 0);
	g_assert_cmpint(mk_kvm_set_sregs(vcpu1, &sregs), ==, 0);
	memset(&rg, 0, sizeof(rg));
	rg.rip = 0x1800;
	rg.rsp = f.vm.mem_size - 0x1000;
	rg.rflags = 2;
	g_assert_cmpint(mk_kvm_set_regs(vcpu1, &rg), ==, 0);

	th[0] = g_thread_new("vcpu0", walk, &w[0]);
	th[1] = g_thread_new("vcpu1", walk, &w[1]);
	g_thread_join(th[0]);
	g_thread_join(th[1]);
	g_assert_cmpint(w[0].err, ==, 0);
	g_assert_cmpint(w[1].err, ==, 0);
	g_assert_cmpint(mk_kvm_get_regs(f.vm.vcpu_fd, &rg), ==, 0);
	g_assert_cmphex(rg.rbx, ==, want);
	g_assert_cmpint(mk_kvm_get_regs(vcpu1, &rg), ==, 0);
	g_assert_cmphex(rg.rbx, ==, want);
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_cmpuint(st.faults, ==, N);             /* each slot bound once */
	g_assert_cmpuint(st.bound_slots, ==, N);
	g_assert_cmpuint(st.mmio_completed, ==, w[0].exits + w[1].exits);
	g_assert_cmpuint(w[0].exits + w[1].exits, >=, N);
	g_assert_cmpuint(w[0].exits + w[1].exits, <=, 2 * N);
	g_test_message("exits: vcpu0 %u, vcpu1 %u", w[0].exits, w[1].exits);
	mk_munmap(w[1].run, (size_t)sz);
	mk_close(vcpu1);
	kfx_close(&f, false);
}

/* The default mapping limit keeps the window mapper under vm.max_map_count. */
static void test_map_count_guard(void)
{
	struct kfx f;
	struct dax_stats st;
	g_autofree char *s = NULL;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_true(g_file_get_contents("/proc/sys/vm/max_map_count", &s, NULL, NULL));
	g_test_message("vm.max_map_count %s -> max_mappings %" G_GUINT64_FORMAT, g_strstrip(s),
		       st.max_mappings);
	g_assert_cmpuint(st.max_mappings, >, 0);
	g_assert_cmpuint(2 * st.max_mappings, <, g_ascii_strtoull(s, NULL, 10));
	kfx_close(&f, false);
}

static void add(const char *name, GTestDataFunc fn)
{
	g_autofree char *w = g_strdup_printf("/dax/kvm/window/%s", name);
	g_autofree char *m = g_strdup_printf("/dax/kvm/memslot/%s", name);

	g_test_add_data_func(w, GUINT_TO_POINTER(DAX_MAPPER_KVM_WINDOW), fn);
	g_test_add_data_func(m, GUINT_TO_POINTER(DAX_MAPPER_KVM_MEMSLOT), fn);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	add("setup-read", test_setup_read);
	add("upgrade", test_upgrade);
	add("remove", test_remove);
	add("restore-rebind", test_restore_rebind);
	g_test_add_func("/dax/kvm/window/restore-first-read", test_restore_first_read_value);
	g_test_add_func("/dax/kvm/window/restore-stale", test_restore_stale);
	g_test_add_func("/dax/kvm/window/translate", test_translate);
	g_test_add_func("/dax/kvm/window/concurrent-faults", test_concurrent_faults);
	g_test_add_func("/dax/kvm/window/restore-over-live", test_restore_over_live);
	g_test_add_func("/dax/kvm/window/map-count-guard", test_map_count_guard);
	return g_test_run();
}
