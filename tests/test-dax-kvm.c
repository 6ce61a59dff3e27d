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
	return g_test_run();
}
