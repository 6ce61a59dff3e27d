/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libdax against real KVM guests: a 32-bit flat guest reads and writes
 * the DAX window at gpa 0x40000000; setup, upgrade, remove, snapshot ->
 * restore -> first-touch rebind, with the window and memslot mappers.
 * The window mapper binds on first touch through userfaultfd (no vCPU
 * exit) where the process may, else eagerly at restore; its holes read
 * as zeros. The memslot mapper's holes exit as MMIO. Expectations follow
 * Documentation/virt/kvm/api.rst and hold on stock 6.1 and 6.12 (run in
 * the microVM) as well as natively. Skips with the reason when /dev/kvm
 * cannot be used.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
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

/* Events the session reported (dax_session_set_event_fn). */
struct evlog {
	GMutex lock;
	GArray *ev;             /* struct dax_event */
};

struct kfx {
	struct vmm_vm vm;
	struct dax_table *table;
	struct dax_session *s;
	char *path;
	struct evlog log;
};

static void on_event(void *data, const struct dax_event *ev)
{
	struct evlog *l = data;

	g_mutex_lock(&l->lock);
	g_array_append_val(l->ev, *ev);
	g_mutex_unlock(&l->lock);
}

static guint events(struct kfx *f, uint32_t kind, struct dax_event *last)
{
	guint n = 0;

	g_mutex_lock(&f->log.lock);
	for (guint i = 0; i < f->log.ev->len; i++) {
		struct dax_event *e = &g_array_index(f->log.ev, struct dax_event, i);
		if (e->kind == kind) {
			n++;
			if (last)
				*last = *e;
		}
	}
	g_mutex_unlock(&f->log.lock);
	return n;
}

static void kfx_session(struct kfx *f, unsigned mapper, uint32_t flags)
{
	struct dax_config cfg = {
		.size = sizeof(cfg),
		.base_gpa = WBASE, .window_len = WLEN, .align_log2 = 21,
		.mapper = mapper, .memslot = 1, .nmemslots = 16, .flags = flags,
		.vm_fd = f->vm.vm_fd,
	};
	struct dax_backend be = { dax_table_open, NULL, f->table };

	g_assert_cmpint(dax_session_new(&cfg, &be, &f->s), ==, 0);
	g_assert_cmpint(dax_session_set_event_fn(f->s, on_event, &f->log), ==, 0);
}

/* VM and table; the session too unless flags has KFX_NO_SESSION. */
#define KFX_NO_SESSION (1u << 31)
static bool kfx_open_flags(struct kfx *f, unsigned mapper, const char *path, uint32_t flags)
{
	struct vmm_err err = { 0 };
	int r;

	memset(f, 0, sizeof(*f));
	if (!kvmtest_available())
		return false;
	r = vmm_vm_open(&f->vm, -1, 1 << 20, 0, &err);
	if (r < 0)
		g_error("VM setup: %s", err.msg);
	f->path = path ? g_strdup(path) : dax_test_file(16 * M2 + 0x1000);
	g_assert_cmpint(dax_table_new(&f->table), ==, 0);
	g_assert_cmpint(dax_table_add(f->table, 1, f->path), ==, 0);
	g_mutex_init(&f->log.lock);
	f->log.ev = g_array_new(FALSE, TRUE, sizeof(struct dax_event));
	if (!(flags & KFX_NO_SESSION))
		kfx_session(f, mapper, flags);
	return true;
}

static bool kfx_open(struct kfx *f, unsigned mapper, const char *path)
{
	return kfx_open_flags(f, mapper, path, 0);
}

static struct dax_fault_stats fstats(struct kfx *f)
{
	struct dax_fault_stats fs = { .size = sizeof(fs) };

	g_assert_cmpint(dax_session_fault_stats(f->s, &fs), ==, 0);
	return fs;
}

/* The window mapper runs in the mode the process allows; say which. */
static bool lazy_by_userfault(struct kfx *f)
{
	struct dax_fault_stats fs = fstats(f);

	return fs.mode == DAX_FAULT_USERFAULT;
}

/* Free session and VM; keep_file leaves the file for another fixture. */
static void kfx_close(struct kfx *f, bool keep_file)
{
	dax_session_free(f->s);
	dax_table_free(f->table);
	vmm_vm_close(&f->vm);
	g_array_unref(f->log.ev);
	g_mutex_clear(&f->log.lock);
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
		int r = vmm_vm_run(&f->vm);
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
	g_assert_cmpint(vmm_cpu_flat32(&f->vm, 0x1000, c->b, c->n, NULL), ==, 0);
}

/* Load c and run it to its hlt with no exit and no libdax error; *rg its registers then. */
static void run_direct(struct kfx *f, struct code *c, struct kvm_regs *rg)
{
	int fail;

	load(f, c);
	g_assert_cmpuint(run_guest(f, &fail), ==, 0);
	g_assert_cmpint(fail, ==, 0);
	regs(f, rg);
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

	if (!kfx_open(&f, GPOINTER_TO_UINT(mapper), NULL))
		return;
	g_assert_cmpint(setup(&f, M2, 3 * M2, M2, R), ==, 0);
	load_eax(&c, WBASE + M2 + 0x1234);
	load_ebx(&c, WBASE + M2 + M2 - 4);
	hlt(&c);
	run_direct(&f, &c, &rg);  /* no exits: direct access */
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
	g_assert_cmpint(vmm_vm_run(&f.vm), ==, KVM_EXIT_IO);
	regs(&f, &rg);
	g_assert_cmphex(rg.rax, ==, pat32(0x100));
	/* the guest's read -> write upgrade: the same range again, read-write */
	g_assert_cmpint(setup(&f, 0, 0, M2, R | W), ==, 0);
	g_assert_cmpint(vmm_vm_run(&f.vm), ==, KVM_EXIT_HLT);
	fd = open(f.path, O_RDONLY);
	g_assert_cmpint(pread(fd, &v, 4, 0x2000), ==, 4);
	close(fd);
	g_assert_cmphex(v, ==, pat32(0x100));

	/* a write to a read-only mapping does not reach the file */
	g_assert_cmpint(setup(&f, 2 * M2, 0, M2, R), ==, 0);
	mov_eax(&c2, 0xabcd1234);
	store_eax(&c2, WBASE + 2 * M2 + 0x3000);
	load_ebx(&c2, WBASE + 2 * M2 + 0x3000);
	hlt(&c2);
	load(&f, &c2);
	r = vmm_vm_run(&f.vm);
	if (GPOINTER_TO_UINT(mapper) == DAX_MAPPER_KVM_MEMSLOT) {
		/* KVM_MEM_READONLY: the write exits as MMIO (api.rst), libdax refuses it */
		g_assert_cmpint(r, ==, KVM_EXIT_MMIO);
		g_assert_true(f.vm.run->mmio.is_write);
		g_assert_cmphex(f.vm.run->mmio.phys_addr, ==, WBASE + 2 * M2 + 0x3000);
		g_assert_cmpint(dax_session_handle_kvm_exit(f.s, f.vm.run), ==, -EACCES);
	} else {
		/*
		 * Window: a private copy takes the write (a read-only host
		 * mapping would fail KVM_RUN with EFAULT on stock kernels: a
		 * dead vCPU). The guest goes on and sees its own write.
		 */
		g_assert_cmpint(r, ==, KVM_EXIT_HLT);
		regs(&f, &rg);
		g_assert_cmphex(rg.rbx, ==, 0xabcd1234);
	}
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
	g_assert_cmpint(vmm_vm_run(&f.vm), ==, KVM_EXIT_IO);
	regs(&f, &rg);
	g_assert_cmphex(rg.rax, ==, pat32(8));
	/* FUSE_REMOVEMAPPING as the kernel sends it */
	memcpy(payload, &count, 4);
	memcpy(payload + 4, e, 16);
	g_assert_cmpint(dax_session_remove_raw(f.s, payload, sizeof(payload)), ==, 0);
	if (GPOINTER_TO_UINT(mapper) == DAX_MAPPER_KVM_MEMSLOT) {
		/* the page is gone from the guest: an MMIO exit nobody claims */
		g_assert_cmpint(vmm_vm_run(&f.vm), ==, KVM_EXIT_MMIO);
		g_assert_cmphex(f.vm.run->mmio.phys_addr, ==, WBASE + 4 * M2 + 8);
		g_assert_cmpint(dax_session_handle_kvm_exit(f.s, f.vm.run), ==, 0);
	} else {
		/* the page is gone: zeros, no exit, the vCPU goes on; reported when caught */
		struct dax_event ev;

		g_assert_cmpint(vmm_vm_run(&f.vm), ==, KVM_EXIT_HLT);
		regs(&f, &rg);
		g_assert_cmphex(rg.rbx, ==, 0);
		if (lazy_by_userfault(&f)) {
			g_assert_cmpuint(fstats(&f).holes, ==, 1);
			g_assert_cmpuint(events(&f, DAX_EVENT_HOLE, &ev), ==, 1);
			g_assert_cmphex(ev.gpa, ==, WBASE + 4 * M2);
		}
	}
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
	struct dax_stats st = { .size = sizeof(st) };
	uint32_t v;
	bool window;
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
	load_eax(&c, WBASE + 0x10);             /* first touch: rebind (memslot: MMIO exit) */
	load_ebx(&c, WBASE + 0x14);             /* direct */
	mov_eax(&c, 0xfeedf00d);
	store_eax(&c, WBASE + 6 * M2 + 0x40);   /* first touch of the RW slot: a write */
	store_eax(&c, WBASE + 6 * M2 + 0x80);   /* direct */
	load_ecx(&c, WBASE + 6 * M2 + 0x44);    /* direct read of the slot */
	hlt(&c);
	load(&g, &c);
	window = GPOINTER_TO_UINT(mapper) == DAX_MAPPER_KVM_WINDOW;
	/* window: no exit at all (userfaultfd, or bound eagerly by restore) */
	g_assert_cmpuint(run_guest(&g, &fail), ==, window ? 0 : 2);
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
	g_assert_cmpuint(st.mmio_completed, ==, window ? 0 : 2);
	g_assert_cmpuint(st.bound_mappings, ==, 2);
	if (window) {
		struct dax_fault_stats fs = fstats(&g);
		g_assert_cmpuint(fs.mode == DAX_FAULT_USERFAULT ? fs.uffd_binds : fs.eager_binds, ==, 2);
	}
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
	/* The VMM removes a slot; the guest touching it again goes on (window: zeros). */
	if (window) {
		struct code c3 = { 0 };
		struct dax_range e = { 6 * M2, M2 };

		g_assert_cmpint(dax_session_remove(g.s, &e, 1), ==, 0);
		load_ecx(&c3, WBASE + 6 * M2 + 0x80);
		load_eax(&c3, WBASE + 0x10);
		hlt(&c3);
		load(&g, &c3);
		g_assert_cmpuint(run_guest(&g, &fail), ==, 0);
		g_assert_cmpint(fail, ==, 0);
		regs(&g, &rg);
		g_assert_cmphex(rg.rcx, ==, 0);
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

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	g_assert_cmpint(setup(&f, 2 * M2, M2, M2, R), ==, 0);
	g_assert_cmpint(dax_session_snapshot(f.s, 1, &blob, &len), ==, 0);
	path = g_strdup(f.path);
	kfx_close(&f, true);
	if (!kfx_open(&g, DAX_MAPPER_KVM_WINDOW, path))
		return;
	g_assert_cmpint(dax_session_restore(g.s, blob, len), ==, 0);
	load_eax(&c, WBASE + 2 * M2 + 0x777);   /* unaligned, first touch of the slot */
	hlt(&c);
	run_direct(&g, &c, &rg);  /* served without an exit */
	g_assert_cmphex(rg.rax, ==, pat32(M2 + 0x777));
	kfx_close(&g, false);
}

static void test_restore_stale(void)
{
	struct kfx f, g;
	struct code c = { 0 };
	struct kvm_regs rg;
	struct dax_event ev;
	struct dax_stats st = { .size = sizeof(st) };
	g_autofree void *blob = NULL;
	g_autofree char *path = NULL;
	size_t len;
	int fd;

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
	mov_eax(&c, 0x12345678);
	load_eax(&c, WBASE + 0x10);
	hlt(&c);
	/* the changed file is never mapped: the guest reads zeros and goes on */
	run_direct(&g, &c, &rg);
	g_assert_cmphex(rg.rax, ==, 0);
	g_assert_cmpuint(fstats(&g).unbound, ==, 1);
	g_assert_cmpuint(events(&g, DAX_EVENT_UNBOUND, &ev), ==, 1);
	g_assert_cmpint(ev.err, ==, -ESTALE);
	g_assert_cmphex(ev.moffset, ==, 0);
	g_assert_cmpuint(ev.nodeid, ==, 1);
	g_assert_cmpuint(dax_session_stats(g.s, &st), ==, 0);
	g_assert_cmpuint(st.bound_mappings, ==, 0);
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
	g_assert_cmpint(vmm_vm_run(&f.vm), ==, KVM_EXIT_IO);
	regs(&f, &rg);
	g_assert_cmphex(rg.rax, ==, pat32(M2 + 0x20));
	g_assert_cmpint(dax_session_restore(f.s, blob, len), ==, 0);
	/* A is gone from the guest: zeros, not a stale read */
	g_assert_cmpint(vmm_vm_run(&f.vm), ==, KVM_EXIT_HLT);
	regs(&f, &rg);
	g_assert_cmphex(rg.rbx, ==, 0);
	if (lazy_by_userfault(&f))
		g_assert_cmpuint(events(&f, DAX_EVENT_HOLE, NULL), ==, 1);
	/* B binds on first touch (here a host-side one) */
	g_assert_cmpint(dax_session_fault(f.s, WBASE + 4 * M2), ==, 1);
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

/*
 * Walkers for vCPU 0 (as loaded) and a new vCPU 1 in the same flat mode,
 * starting at 0x1800 (where the caller put its code): returns vCPU 1's fd,
 * *sz the size of its kvm_run mapping (unmap w[1].run, close the fd).
 */
static int two_walkers(struct kfx *f, struct walker w[2], int *sz)
{
	struct kvm_sregs sregs;
	struct kvm_regs rg;
	int vcpu1 = mk_kvm_create_vcpu(f->vm.vm_fd, 1);

	g_assert_cmpint(vcpu1, >=, 0);
	*sz = mk_kvm_vcpu_mmap_size(f->vm.kvm_fd);
	w[0] = (struct walker){ f, f->vm.vcpu_fd, f->vm.run, 0, 0 };
	w[1] = (struct walker){ f, vcpu1, NULL, 0, 0 };
	g_assert_cmpint(mk_mmap(NULL, (size_t)*sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu1, 0,
				(void **)&w[1].run), ==, 0);
	g_assert_cmpint(mk_kvm_get_sregs(f->vm.vcpu_fd, &sregs), ==, 0);
	g_assert_cmpint(mk_kvm_set_sregs(vcpu1, &sregs), ==, 0);
	memset(&rg, 0, sizeof(rg));
	rg.rip = 0x1800;
	rg.rsp = f->vm.ram_size - 0x1000;
	rg.rflags = 2;
	g_assert_cmpint(mk_kvm_set_regs(vcpu1, &rg), ==, 0);
	return vcpu1;
}

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
		if (w->run->exit_reason == KVM_EXIT_IO)
			continue;
		if (w->run->exit_reason != KVM_EXIT_MMIO ||
		    dax_session_handle_kvm_exit(w->f->s, w->run) != 1) {
			w->err = -EIO;
			return NULL;
		}
		w->exits++;
	}
}

/* Both walkers, each on its own thread, to their hlt without an error. */
static void walk_both(struct walker w[2])
{
	GThread *th[2];

	th[0] = g_thread_new("vcpu0", walk, &w[0]);
	th[1] = g_thread_new("vcpu1", walk, &w[1]);
	g_thread_join(th[0]);
	g_thread_join(th[1]);
	g_assert_cmpint(w[0].err, ==, 0);
	g_assert_cmpint(w[1].err, ==, 0);
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
	struct kvm_regs rg;
	struct dax_stats st = { .size = sizeof(st) };
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
		memcpy((uint8_t *)f.vm.ram + 0x2000 + 4 * i, &a, 4);
		memcpy((uint8_t *)f.vm.ram + 0x3000 + 4 * i, &b, 4);
		want ^= pat32((i % 4) * M2 + 0x10 * i);
	}
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &blob, &len), ==, 0);
	g_assert_cmpint(dax_session_restore(f.s, blob, len), ==, 0);

	walk_code(&c0, 0x2000, N);
	walk_code(&c1, 0x3000, N);
	memcpy((uint8_t *)f.vm.ram + 0x1800, c1.b, c1.n);
	load(&f, &c0);
	vcpu1 = two_walkers(&f, w, &sz);

	walk_both(w);
	g_assert_cmpint(mk_kvm_get_regs(f.vm.vcpu_fd, &rg), ==, 0);
	g_assert_cmphex(rg.rbx, ==, want);
	g_assert_cmpint(mk_kvm_get_regs(vcpu1, &rg), ==, 0);
	g_assert_cmphex(rg.rbx, ==, want);
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_assert_cmpuint(st.faults, ==, N);             /* each slot bound once */
	g_assert_cmpuint(st.bound_mappings, ==, N);
	/* the window needs no exit: the vCPUs block in KVM_RUN until the slot is bound */
	g_assert_cmpuint(w[0].exits + w[1].exits, ==, 0);
	if (lazy_by_userfault(&f)) {
		struct dax_fault_stats fs = fstats(&f);
		g_assert_cmpuint(fs.uffd_binds, ==, N);
		g_assert_cmpuint(fs.uffd_faults, >=, N);
		g_assert_cmpuint(fs.holes + fs.unbound, ==, 0);
		g_test_message("userfaultfd events %" G_GUINT64_FORMAT " for %u slots",
			       fs.uffd_faults, N);
	}
	mk_munmap(w[1].run, (size_t)sz);
	mk_close(vcpu1);
	kfx_close(&f, false);
}


/* ---- lazy binding: modes, fault service, registration, races ----------------------------- */

/* Where the process may use userfaultfd for KVM's faults, the window mapper does. */
static bool userfault_allowed(void)
{
	g_autofree char *v = NULL;

	if (g_file_get_contents("/proc/sys/vm/unprivileged_userfaultfd", &v, NULL, NULL) &&
	    g_ascii_strtoull(v, NULL, 10) == 1)
		return true;
	return geteuid() == 0 || access("/dev/userfaultfd", R_OK | W_OK) == 0;
}

/* Does a thread of this process carry this name (waiting up to 1 s for it to set it)? */
static bool thread_named(const char *name)
{
	for (int tries = 0; tries < 100; tries++) {
		g_autoptr(GDir) d = g_dir_open("/proc/self/task", 0, NULL);
		const char *tid;

		g_assert_nonnull(d);
		while ((tid = g_dir_read_name(d))) {
			g_autofree char *path = g_strdup_printf("/proc/self/task/%s/comm", tid);
			g_autofree char *comm = NULL;

			if (g_file_get_contents(path, &comm, NULL, NULL) && !strcmp(g_strchomp(comm), name))
				return true;
		}
		g_usleep(10000);
	}
	return false;
}

static void test_modes(void)
{
	struct kfx f;
	struct dax_fault_stats fs = { .size = sizeof(fs) };
	bool uffd = userfault_allowed();

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	fs = fstats(&f);
	g_test_message("window mapper: %s mode", fs.mode == DAX_FAULT_USERFAULT ? "userfault" : "eager");
	g_assert_cmpuint(fs.mode, ==, uffd ? DAX_FAULT_USERFAULT : DAX_FAULT_EAGER);
	g_assert_cmpuint(fs.thread, ==, uffd ? 1 : 0);
	g_assert_true((dax_session_fault_fd(f.s) >= 0) == uffd);
	/* The service thread names itself (shows in top -H, /proc/PID/task/TID/comm). */
	g_assert_true(thread_named("dax-fault") == uffd);
	dax_session_free(f.s);
	kfx_session(&f, DAX_MAPPER_KVM_WINDOW, DAX_SESSION_NO_USERFAULT);
	fs = fstats(&f);
	g_assert_cmpuint(fs.mode, ==, DAX_FAULT_EAGER);
	g_assert_cmpuint(fs.thread, ==, 0);
	g_assert_cmpint(dax_session_fault_fd(f.s), ==, -ENOTSUP);
	g_assert_cmpint(dax_session_service(f.s), ==, -ENOTSUP);
	dax_session_free(f.s);
	kfx_session(&f, DAX_MAPPER_KVM_MEMSLOT, 0);
	g_assert_cmpuint(fstats(&f).mode, ==, DAX_FAULT_EXIT);
	dax_session_free(f.s);
	kfx_session(&f, DAX_MAPPER_KVM_WINDOW, DAX_SESSION_NO_THREAD);
	fs = fstats(&f);
	g_assert_cmpuint(fs.thread, ==, 0);
	if (uffd)
		g_assert_cmpint(dax_session_service(f.s), ==, 0);       /* nothing pending */
	kfx_close(&f, false);
}

/*
 * A restored session in a new VM: the guest reads and writes slots,
 * touches a removed and a never-set-up range, with nothing of libdax in
 * the run loop (here: none at all, KVM_EXIT_IO/HLT only). flags picks the
 * mode; a stale slot is reported, not fatal.
 */
static void restore_and_run(uint32_t flags, bool drop_privileges)
{
	struct kfx f, g;
	struct code c = { 0 };
	struct kvm_regs rg;
	struct dax_stats st = { .size = sizeof(st) };
	struct dax_fault_stats fs = { .size = sizeof(fs) };
	struct dax_event ev;
	struct dax_range gone = { 10 * M2, M2 };
	g_autofree void *blob = NULL;
	g_autofree char *path = NULL, *path2 = NULL;
	size_t len;
	uint32_t v;
	int fd;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	path2 = dax_test_file(M2);
	g_assert_cmpint(dax_table_add(f.table, 2, path2), ==, 0);
	g_assert_cmpint(setup(&f, 0, 0, M2, R), ==, 0);
	g_assert_cmpint(setup(&f, 6 * M2, 2 * M2, M2, R | W), ==, 0);
	g_assert_cmpint(setup(&f, 10 * M2, 4 * M2, M2, R), ==, 0);
	{
		struct dax_setup_req q = { DAX_FH_NONE, 0, M2, R, 12 * M2 };
		g_assert_cmpint(dax_session_setup(f.s, 2, &q), ==, 0);
	}
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &blob, &len), ==, 0);
	path = g_strdup(f.path);
	kfx_close(&f, true);
	/* node 2's file changes while the VM is down */
	fd = open(path2, O_WRONLY | O_APPEND);
	g_assert_cmpint(write(fd, "x", 1), ==, 1);
	close(fd);

	g_assert_true(kfx_open_flags(&g, DAX_MAPPER_KVM_WINDOW, path, KFX_NO_SESSION));
	g_assert_cmpint(dax_table_add(g.table, 2, path2), ==, 0);
	/* not root: the process is unprivileged already */
	if (drop_privileges && geteuid() == 0) {
		/* nobody: no CAP_SYS_PTRACE, no /dev/userfaultfd (the fds stay usable);
		 * the files become nobody's so it can check and remove them */
		g_assert_cmpint(chown(path, 65534, 65534), ==, 0);
		g_assert_cmpint(chown(path2, 65534, 65534), ==, 0);
		g_assert_cmpint(setgid(65534), ==, 0);
		g_assert_cmpint(setuid(65534), ==, 0);
	}
	kfx_session(&g, DAX_MAPPER_KVM_WINDOW, flags);
	fs = fstats(&g);
	g_test_message("restored session runs in %s mode",
		       fs.mode == DAX_FAULT_USERFAULT ? "userfault" : "eager");
	if ((flags & DAX_SESSION_NO_USERFAULT) || !userfault_allowed())
		g_assert_cmpuint(fs.mode, ==, DAX_FAULT_EAGER);
	else
		g_assert_cmpuint(fs.mode, ==, DAX_FAULT_USERFAULT);
	g_assert_cmpint(dax_session_restore(g.s, blob, len), ==, 0);
	g_assert_cmpint(dax_session_stats(g.s, &st), ==, 0);
	fs = fstats(&g);
	if (fs.mode == DAX_FAULT_EAGER) {
		/* every slot bound before restore returned; the stale one reported then */
		g_assert_cmpuint(st.bound_mappings, ==, 3);
		g_assert_cmpuint(fs.eager_binds, ==, 3);
		g_assert_cmpuint(events(&g, DAX_EVENT_UNBOUND, &ev), ==, 1);
		g_assert_cmpint(ev.err, ==, -ESTALE);
		g_assert_cmphex(ev.moffset, ==, 12 * M2);
		g_test_message("eager restore: %" G_GUINT64_FORMAT " slots bound in %" G_GUINT64_FORMAT " ns",
			       fs.eager_binds, fs.eager_ns);
	} else {
		g_assert_cmpuint(st.bound_mappings, ==, 0);
	}
	g_assert_cmpint(dax_session_remove(g.s, &gone, 1), ==, 0);
	load_eax(&c, WBASE + 0x10);                     /* restored slot, read */
	mov_eax(&c, 0xc0ffee11);
	store_eax(&c, WBASE + 6 * M2 + 0x40);           /* restored slot, write */
	load_ebx(&c, WBASE + 10 * M2 + 0x40);           /* removed slot */
	load_ecx(&c, WBASE + 12 * M2 + 0x40);           /* stale slot */
	store_eax(&c, WBASE + 20 * M2);                 /* never set up: write, */
	op_addr(&c, (const uint8_t[]){ 0x8b, 0x15 }, 2, WBASE + 20 * M2 + 4);  /* mov edx, [..] */
	op_addr(&c, (const uint8_t[]){ 0x8b, 0x35 }, 2, WBASE);                 /* mov esi, [slot 0] */
	hlt(&c);
	run_direct(&g, &c, &rg);
	g_assert_cmphex(rg.rsi, ==, pat32(0));
	g_assert_cmphex(rg.rbx, ==, 0);
	g_assert_cmphex(rg.rcx, ==, 0);
	g_assert_cmphex(rg.rdx, ==, 0);
	fd = open(path, O_RDONLY);
	g_assert_cmpint(pread(fd, &v, 4, 2 * M2 + 0x40), ==, 4);
	close(fd);
	g_assert_cmphex(v, ==, 0xc0ffee11);
	fs = fstats(&g);
	if (fs.mode == DAX_FAULT_USERFAULT) {
		g_assert_cmpuint(fs.uffd_binds, ==, 2);
		g_assert_cmpuint(fs.unbound, ==, 1);
		g_assert_cmpuint(fs.holes, >=, 2);
		g_assert_cmpuint(events(&g, DAX_EVENT_UNBOUND, &ev), ==, 1);
		g_assert_cmpint(ev.err, ==, -ESTALE);
		g_assert_cmphex(ev.gpa, ==, WBASE + 12 * M2);
		g_assert_cmpuint(events(&g, DAX_EVENT_HOLE, NULL), ==, fs.holes);
	}
	g_unlink(path2);
	kfx_close(&g, false);
}

static void test_vmm_restore(void)
{
	restore_and_run(0, false);
}

static void test_eager_restore(void)
{
	restore_and_run(DAX_SESSION_NO_USERFAULT, false);
}

/* The fallback where userfaultfd may not serve KVM: an unprivileged process. */
static void test_unprivileged(void)
{
	if (!kvmtest_available())
		return;
	if (g_test_subprocess()) {
		restore_and_run(0, true);
		return;
	}
	g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
}

/* A VMM's poll loop instead of the service thread. */
struct poll_vcpu {
	struct kfx *f;
	int done;
	int r;
};

static gpointer poll_vcpu_run(gpointer p)
{
	struct poll_vcpu *v = p;
	int fail;

	run_guest(v->f, &fail);
	v->r = fail;
	g_atomic_int_set(&v->done, 1);
	return NULL;
}

static void test_poll_loop(void)
{
	enum { N = 8 };
	struct kfx f;
	struct code c = { 0 };
	struct kvm_regs rg;
	struct poll_vcpu v = { &f, 0, 0 };
	struct dax_fault_stats fs = { .size = sizeof(fs) };
	g_autofree void *blob = NULL;
	size_t len;
	uint32_t want = 0;
	GThread *th;
	int served = 0;

	if (!kfx_open_flags(&f, DAX_MAPPER_KVM_WINDOW, NULL, DAX_SESSION_NO_THREAD))
		return;
	if (!lazy_by_userfault(&f)) {
		g_test_skip("userfaultfd may not serve KVM's faults in this process (eager mode)");
		kfx_close(&f, false);
		return;
	}
	for (unsigned i = 0; i < N; i++) {
		uint32_t a = (uint32_t)(WBASE + i * M2 + 0x10 * i);
		g_assert_cmpint(setup(&f, i * M2, i * M2, M2, R), ==, 0);
		memcpy((uint8_t *)f.vm.ram + 0x2000 + 4 * i, &a, 4);
		want ^= pat32(i * M2 + 0x10 * i);
	}
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &blob, &len), ==, 0);
	g_assert_cmpint(dax_session_restore(f.s, blob, len), ==, 0);
	walk_code(&c, 0x2000, N);
	load(&f, &c);
	th = g_thread_new("vcpu", poll_vcpu_run, &v);
	while (!g_atomic_int_get(&v.done)) {
		struct pollfd pfd = { dax_session_fault_fd(f.s), POLLIN, 0 };
		int r = poll(&pfd, 1, 100);

		g_assert_cmpint(r, >=, 0);
		if (r > 0) {
			r = dax_session_service(f.s);
			g_assert_cmpint(r, >=, 0);
			served += r;
		}
	}
	g_thread_join(th);
	g_assert_cmpint(v.r, ==, 0);
	regs(&f, &rg);
	g_assert_cmphex(rg.rbx, ==, want);
	fs = fstats(&f);
	g_assert_cmpuint(fs.uffd_binds, ==, N);
	g_assert_cmpuint(fs.uffd_faults, ==, (uint64_t)served);
	g_assert_cmpint(served, >=, N);
	kfx_close(&f, false);
}

/*
 * The window stays registered through setup, upgrade, remove, reset and
 * restore: after each, a host thread's touch of a range without a slot
 * is caught (a HOLE event, zeros) and a restored slot binds on its first
 * touch with its own file's bytes. Host touches are user-mode faults and
 * go through the same service as the guest's.
 */
static uint32_t host_read(struct kfx *f, uint64_t moff)
{
	void *hva;
	uint64_t len;

	/* The window's host address, from the slot at its start (the test keeps one there). */
	g_assert_cmpint(dax_session_translate(f->s, WBASE, &hva, &len), ==, 0);
	return *(volatile uint32_t *)((char *)hva + moff);
}

static void test_registration(void)
{
	struct kfx f;
	g_autofree void *blob = NULL;
	size_t len;
	struct dax_range e = { 2 * M2, M2 };
	uint64_t holes = 0;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	if (!lazy_by_userfault(&f)) {
		g_test_skip("userfaultfd may not serve KVM's faults in this process (eager mode)");
		kfx_close(&f, false);
		return;
	}
	g_assert_cmpint(setup(&f, 0, 0, M2, R), ==, 0);         /* the anchor for host_read */
#define HOLE_AT(moff) do {                                                              \
		g_assert_cmphex(host_read(&f, (moff)), ==, 0);                           \
		g_assert_cmpuint(fstats(&f).holes, ==, ++holes);                         \
	} while (0)
	HOLE_AT(M2 + 0x100);                                    /* never set up */
	g_assert_cmpint(setup(&f, 2 * M2, 5 * M2, M2, R), ==, 0);
	g_assert_cmphex(host_read(&f, 2 * M2 + 8), ==, pat32(5 * M2 + 8));
	HOLE_AT(3 * M2);                                        /* next to a setup */
	g_assert_cmpint(setup(&f, 2 * M2, 5 * M2, M2, R | W), ==, 0);   /* upgrade */
	g_assert_cmphex(host_read(&f, 2 * M2 + 8), ==, pat32(5 * M2 + 8));
	HOLE_AT(M2 + 0x2000);
	g_assert_cmpint(dax_session_remove(f.s, &e, 1), ==, 0);
	HOLE_AT(2 * M2 + 8);                                    /* removed */
	HOLE_AT(2 * M2 + M2 - 4);
	g_assert_cmpint(setup(&f, 2 * M2, 6 * M2, M2, R), ==, 0);       /* over the hole's zero page */
	g_assert_cmphex(host_read(&f, 2 * M2 + 8), ==, pat32(6 * M2 + 8));
	/* one batch: three adjacent slots (one given back for all) and one apart */
	for (unsigned i = 8; i < 12; i++)
		g_assert_cmpint(setup(&f, (i + (i == 11)) * M2, i * M2, M2, R), ==, 0);
	g_assert_cmphex(host_read(&f, 9 * M2 + 8), ==, pat32(9 * M2 + 8));
	g_assert_cmpint(dax_session_remove(f.s, (struct dax_range[]){ { 12 * M2, M2 }, { 9 * M2, M2 },
								       { 8 * M2, M2 }, { 10 * M2, M2 } },
					   4), ==, 0);
	HOLE_AT(8 * M2 + 8);
	HOLE_AT(9 * M2 + 8);
	HOLE_AT(10 * M2 + M2 - 4);
	HOLE_AT(11 * M2);                                       /* never set up, between */
	HOLE_AT(12 * M2 + 8);
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &blob, &len), ==, 0);
	g_assert_cmpint(dax_session_reset(f.s), ==, 0);
	g_assert_cmpint(setup(&f, 0, 0, M2, R), ==, 0);
	HOLE_AT(2 * M2 + 8);                                    /* reset */
	g_assert_cmpint(dax_session_restore(f.s, blob, len), ==, 0);
	/* restored over the old hole's zero page: the file, not zeros */
	g_assert_cmphex(host_read(&f, 2 * M2 + 8), ==, pat32(6 * M2 + 8));
	HOLE_AT(4 * M2);                                        /* restore */
	/* the slot at 2 MiB through userfaultfd; the anchor by translate */
	g_assert_cmpuint(fstats(&f).uffd_binds, ==, 1);
	g_assert_cmpuint(events(&f, DAX_EVENT_HOLE, NULL), ==, holes);
#undef HOLE_AT
	kfx_close(&f, false);
}

/*
 * Two vCPUs read 16 slots over and over, each read checked in the guest
 * against that slot's own file bytes (or zeros while it is removed),
 * while host threads remove and set up half of the slots and restore
 * the whole session: no read ever sees another slot's bytes, and no vCPU
 * stays blocked (a lost wake-up would hang the test, and its timeout
 * would fail it). The vCPUs walk again until restores finished during a
 * walk.
 */
enum { RACE_N = 16, RACE_ROUNDS = 60 };

static size_t race_code(uint8_t *b, uint32_t table, uint32_t n, uint32_t rounds)
{
	static const uint8_t t[] = {
		0xbd, 0, 0, 0, 0,               /* mov ebp, rounds */
		0xbe, 0, 0, 0, 0,               /* outer: mov esi, table */
		0xb9, 0, 0, 0, 0,               /* mov ecx, n */
		0x8b, 0x06,                     /* inner: mov eax, [esi] */
		0x8b, 0x10,                     /* mov edx, [eax] */
		0x85, 0xd2,                     /* test edx, edx */
		0x74, 0x06,                     /* jz ok */
		0x3b, 0x56, 0x04,               /* cmp edx, [esi + 4] */
		0x74, 0x01,                     /* je ok */
		0x47,                           /* inc edi: a wrong value */
		0x83, 0xc6, 0x08,               /* ok: add esi, 8 */
		0x49,                           /* dec ecx */
		0x75, 0xec,                     /* jnz inner */
		0x4d,                           /* dec ebp */
		0x75, 0xdf,                     /* jnz outer */
		0xf4,                           /* hlt */
	};

	memcpy(b, t, sizeof(t));
	memcpy(b + 1, &rounds, 4);
	memcpy(b + 6, &table, 4);
	memcpy(b + 11, &n, 4);
	return sizeof(t);
}

struct race {
	struct kfx *f;
	void *blob;
	size_t len;
	int stop;
	unsigned churns;
	int restores;           /* atomic: the test thread reads it while walks run */
};

static gpointer race_churn(gpointer p)
{
	struct race *r = p;

	for (unsigned i = 0; !g_atomic_int_get(&r->stop); i++) {
		unsigned k = 1 + 2 * (i % (RACE_N / 2));
		struct dax_range e = { k * M2, M2 };
		int x = dax_session_remove(r->f->s, &e, 1);

		/* -ENOENT: a restore put every slot back in between; both fine */
		g_assert_true(x == 0 || x == -ENOENT);
		g_usleep(200);
		x = setup(r->f, k * M2, k * M2, M2, R);
		g_assert_true(x == 0 || x == -EEXIST);
		r->churns++;
	}
	return NULL;
}

static gpointer race_restore(gpointer p)
{
	struct race *r = p;

	while (!g_atomic_int_get(&r->stop)) {
		g_assert_cmpint(dax_session_restore(r->f->s, r->blob, r->len), ==, 0);
		g_atomic_int_inc(&r->restores);
		g_usleep(2000);
	}
	return NULL;
}

/*
 * One walk of both vCPUs from their code's start (rdi, the count of wrong
 * reads, carries over); the number of restores that finished meanwhile.
 */
static int race_walk(struct race *rc, struct walker w[2])
{
	static const uint64_t start[2] = { 0x1000, 0x1800 };
	int before = g_atomic_int_get(&rc->restores);
	struct kvm_regs rg;

	for (unsigned i = 0; i < 2; i++) {
		g_assert_cmpint(mk_kvm_get_regs(w[i].vcpu_fd, &rg), ==, 0);
		rg.rip = start[i];
		g_assert_cmpint(mk_kvm_set_regs(w[i].vcpu_fd, &rg), ==, 0);
	}
	walk_both(w);
	return g_atomic_int_get(&rc->restores) - before;
}

static void test_race(void)
{
	struct kfx f;
	struct walker w[2];
	struct race rc = { &f, NULL, 0, 0, 0, 0 };
	GThread *th[2];
	struct kvm_regs rg;
	struct dax_stats st = { .size = sizeof(st) };
	uint8_t code[64];
	unsigned walks;
	size_t n;
	int vcpu1, sz;

	if (!kfx_open(&f, DAX_MAPPER_KVM_WINDOW, NULL))
		return;
	for (unsigned i = 0; i < RACE_N; i++) {
		uint32_t a = (uint32_t)(WBASE + i * M2 + 0x10 * i + 0x100);
		uint32_t want = pat32(i * M2 + 0x10 * i + 0x100);
		uint32_t j = RACE_N - 1 - i;
		uint32_t b = (uint32_t)(WBASE + j * M2 + 0x10 * j + 0x100);
		uint32_t wantb = pat32(j * M2 + 0x10 * j + 0x100);

		g_assert_cmpint(setup(&f, i * M2, i * M2, M2, R), ==, 0);
		memcpy((uint8_t *)f.vm.ram + 0x2000 + 8 * i, &a, 4);
		memcpy((uint8_t *)f.vm.ram + 0x2004 + 8 * i, &want, 4);
		memcpy((uint8_t *)f.vm.ram + 0x3000 + 8 * i, &b, 4);
		memcpy((uint8_t *)f.vm.ram + 0x3004 + 8 * i, &wantb, 4);
	}
	g_assert_cmpint(dax_session_snapshot(f.s, 2, &rc.blob, &rc.len), ==, 0);
	g_assert_cmpint(dax_session_restore(f.s, rc.blob, rc.len), ==, 0);
	n = race_code(code, 0x3000, RACE_N, RACE_ROUNDS);
	memcpy((uint8_t *)f.vm.ram + 0x1800, code, n);
	n = race_code(code, 0x2000, RACE_N, RACE_ROUNDS);
	g_assert_cmpint(vmm_cpu_flat32(&f.vm, 0x1000, code, n, NULL), ==, 0);
	vcpu1 = two_walkers(&f, w, &sz);

	th[0] = g_thread_new("churn", race_churn, &rc);
	th[1] = g_thread_new("restore", race_restore, &rc);
	/*
	 * Walk again until restores ran during a walk: a loaded host (or the
	 * microVM's emulated one) can finish a walk before the restore thread
	 * is first scheduled, and such a walk raced nothing.
	 */
	for (walks = 1; race_walk(&rc, w) == 0; walks++)
		g_assert_cmpuint(walks, <, 100);
	g_atomic_int_set(&rc.stop, 1);
	g_thread_join(th[0]);
	g_thread_join(th[1]);
	g_assert_cmpint(mk_kvm_get_regs(f.vm.vcpu_fd, &rg), ==, 0);
	g_assert_cmphex(rg.rdi, ==, 0);                 /* no read saw another slot's bytes */
	g_assert_cmpint(mk_kvm_get_regs(vcpu1, &rg), ==, 0);
	g_assert_cmphex(rg.rdi, ==, 0);
	g_assert_cmpint(dax_session_stats(f.s, &st), ==, 0);
	g_test_message("%u walk%s, %u remove+setup, %d restores, %" G_GUINT64_FORMAT " lazy binds, "
		       "%" G_GUINT64_FORMAT " holes", walks, walks == 1 ? "" : "s", rc.churns, rc.restores, st.faults,
		       fstats(&f).holes);
	mk_munmap(w[1].run, (size_t)sz);
	mk_close(vcpu1);
	free(rc.blob);
	kfx_close(&f, false);
}

/* The default mapping limit keeps the window mapper under vm.max_map_count. */
static void test_map_count_guard(void)
{
	struct kfx f;
	struct dax_stats st = { .size = sizeof(st) };
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
	g_test_add_func("/dax/kvm/window/modes", test_modes);
	g_test_add_func("/dax/kvm/window/vmm-restore", test_vmm_restore);
	g_test_add_func("/dax/kvm/window/eager-restore", test_eager_restore);
	g_test_add_func("/dax/kvm/window/unprivileged", test_unprivileged);
	g_test_add_func("/dax/kvm/window/poll-loop", test_poll_loop);
	g_test_add_func("/dax/kvm/window/registration", test_registration);
	g_test_add_func("/dax/kvm/window/race", test_race);
	return g_test_run();
}
