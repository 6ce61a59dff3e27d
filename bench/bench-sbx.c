/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libsandbox benchmark, one table:
 *  - restore of a 256 MiB sandbox after a real guest dirtied 0.1% / 1% /
 *    10% of its pages (random pages; the guest's re-dirtying is timed too):
 *    memkit (sealed snapshot, MAP_PRIVATE, copy-back/remap by dirty count)
 *    vs a memcpy of the whole region from a saved copy (Hyperlight's way);
 *  - 64 dirty pages of 256 MiB (the restore target);
 *  - volatile host copies of 4 KiB and 1 MiB vs memcpy;
 *  - create + destroy of a 64 MiB region vs a bare mmap + munmap;
 *  - memory of 16 sandboxes sharing one snapshot copy-on-write;
 *  - restore time against dirty pages (8 .. 64k) in a 1 GiB sandbox, for
 *    each strategy, to show it follows the dirty count, not the size;
 *  - a guest_memfd region (mapped in calls, or kept) beside an anonymous
 *    one of 64 MiB: restores and host copies (kernels with guest_memfd).
 * Without /dev/kvm the pages are dirtied by host writes instead (said so).
 * Medians of several runs. Measurements, not assertions.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "sandbox.h"
#include "vmm/cpu.h"
#include "bench/bench-util.h"

#define PG 4096ull
#define MIB (1ull << 20)
#define RUNS 7
#define GPA_SBX 0x40000000ull    /* memkit region (up to 1 GiB) */
#define GPA_BASE 0x10000000ull   /* memcpy baseline region (256 MiB) */
#define TABLE 0x10000u           /* page address table in low RAM */
#define LOW (2 * MIB)

static struct vmm_vm vm;
static struct sbx_vm *svm;
static bool have_kvm;

static void die(const char *what, long r)
{
	fprintf(stderr, "bench-sbx: %s: %s\n", what, g_strerror(r < 0 ? (int)-r : (int)r));
	exit(1);
}

/* n distinct random pages of npages (fixed seed per call site). */
static uint32_t *random_pages(uint64_t npages, unsigned n, uint32_t seed)
{
	uint32_t *v = g_new(uint32_t, n);
	uint8_t *seen = g_malloc0(npages);
	GRand *rng = g_rand_new_with_seed(seed);

	for (unsigned i = 0; i < n;) {
		uint32_t p = (uint32_t)g_rand_int_range(rng, 0, (gint32)npages);
		if (!seen[p]) {
			seen[p] = 1;
			v[i++] = p;
		}
	}
	g_rand_free(rng);
	g_free(seen);
	return v;
}

/*
 * The guest loop: for each u32 gpa in the table, movl $1, (gpa); then hlt.
 *   mov $TABLE, %esi; mov $n, %ecx
 * 1: mov (%esi), %eax; movl $1, (%eax); add $4, %esi; dec %ecx; jnz 1b; hlt
 */
static void guest_dirty(uint64_t gpa, struct sbx_mem *m, uint8_t *raw,
			const uint32_t *pages, unsigned n)
{
	if (!have_kvm) {
		for (unsigned i = 0; i < n; i++) {
			raw[(uint64_t)pages[i] * PG] += 1;
			if (m)
				sbx_mem_mark_dirty(m, (uint64_t)pages[i] * PG, 1);
		}
		return;
	}
	uint8_t code[32] = { 0xbe, 0, 0, 0, 0, 0xb9, 0, 0, 0, 0,
			     0x8b, 0x06, 0xc7, 0x00, 1, 0, 0, 0, 0x83, 0xc6, 0x04, 0x49, 0x75, 0xf2,
			     0xf4 };
	uint32_t t = TABLE, cnt = n;
	uint32_t *table = (uint32_t *)((uint8_t *)vm.ram + TABLE);
	int r;

	if (!n)
		return;
	memcpy(code + 1, &t, 4);
	memcpy(code + 6, &cnt, 4);
	for (unsigned i = 0; i < n; i++)
		table[i] = (uint32_t)(gpa + (uint64_t)pages[i] * PG);
	r = vmm_cpu_flat32(&vm, 0x1000, code, 25, NULL);
	if (r < 0)
		die("vmm_cpu_flat32", r);
	r = vmm_vm_run(&vm);
	if (r != KVM_EXIT_HLT)
		die("guest did not halt", r < 0 ? r : -EIO);
}

struct cycle { double dirty, restore; };

/* memkit: median over RUNS of (guest dirties n pages, restore). */
static struct cycle memkit_cycle(struct sbx_mem *m, struct sbx_snapshot *s, uint64_t gpa,
				 unsigned n, unsigned flags, uint32_t seed)
{
	double d[RUNS], rs[RUNS];
	uint8_t *raw = have_kvm ? NULL : sbx_mem_host_ptr(m, true);
	uint32_t *pages = random_pages(sbx_mem_size(m) / PG, n, seed);

	/* The same working set every cycle (a warm-up cycle first), as a
	 * guest serving one request after another would dirty it. */
	for (int i = -1; i < RUNS; i++) {
		double t0 = bench_now_us(), t1;
		int64_t r;
		guest_dirty(gpa, m, raw, pages, n);
		t1 = bench_now_us();
		r = sbx_snapshot_restore(m, s, flags);
		if (r < 0)
			die("sbx_snapshot_restore", r);
		if (i >= 0) {
			rs[i] = bench_now_us() - t1;
			d[i] = t1 - t0;
		}
	}
	g_free(pages);
	return (struct cycle){ bench_median(d, RUNS), bench_median(rs, RUNS) };
}

/* Hyperlight's way: the guest dirties, restore = memcpy of everything from a copy. */
static struct cycle memcpy_cycle(uint8_t *region, const uint8_t *saved, uint64_t size,
				 unsigned n, uint32_t seed)
{
	double d[RUNS], rs[RUNS];
	uint32_t *pages = random_pages(size / PG, n, seed);

	for (int i = -1; i < RUNS; i++) {
		double t0 = bench_now_us(), t1;
		guest_dirty(GPA_BASE, NULL, region, pages, n);
		t1 = bench_now_us();
		memcpy(region, saved, size);
		if (i >= 0) {
			rs[i] = bench_now_us() - t1;
			d[i] = t1 - t0;
		}
	}
	g_free(pages);
	return (struct cycle){ bench_median(d, RUNS), bench_median(rs, RUNS) };
}

static void row(const char *what, double a, double b, const char *unit)
{
	printf("%-44s %12.1f %12.1f %s %9.1fx\n", what, a, b, unit, b / a);
}

static void bench_restore(void)
{
	const uint64_t size = 256 * MIB;
	struct sbx_mem *m;
	struct sbx_snapshot *s;
	uint8_t *region, *saved;
	void *p;
	int r;

	/* A populated sandbox: every page holds data (worst case for the baseline too). */
	if ((r = sbx_mem_new(size, &m)) < 0)
		die("sbx_mem_new", r);
	for (uint64_t off = 0; off < size; off += PG)
		sbx_mem_fill(m, off, (uint8_t)(off / PG), 64);
	if ((r = sbx_snapshot_take(m, &s)) < 0)
		die("sbx_snapshot_take", r);
	if ((r = mk_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &p)) < 0)
		die("mmap", r);
	region = p;
	saved = g_malloc(size);
	memcpy(saved, sbx_snapshot_data(s), size);
	memcpy(region, saved, size);
	if (have_kvm) {
		if ((r = sbx_vm_bind(svm, m, 1, GPA_SBX, SBX_BIND_DIRTY_LOG)) < 0)
			die("sbx_vm_bind", r);
		if ((r = mk_kvm_set_memslot(vm.vm_fd, 2, 0, GPA_BASE, size, region)) < 0)
			die("KVM_SET_USER_MEMORY_REGION", r);
	}

	printf("%-44s %12s %12s %s %10s\n", "restore, 256 MiB sandbox (median us)", "memkit",
	       "memcpy", "  ", "speedup");
	static const struct { const char *name; unsigned pages; } lv[] = {
		{ "0.1% dirty (65 pages)", 65 }, { "1% dirty (655 pages)", 655 },
		{ "10% dirty (6554 pages)", 6554 },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(lv); i++) {
		struct cycle a = memkit_cycle(m, s, GPA_SBX, lv[i].pages, SBX_RESTORE_AUTO, 100 + i);
		struct cycle b = memcpy_cycle(region, saved, size, lv[i].pages, 100 + i);
		char name[96];
		snprintf(name, sizeof(name), "  %s: restore", lv[i].name);
		row(name, a.restore, b.restore, "us");
		snprintf(name, sizeof(name), "  %s: guest dirty + restore", lv[i].name);
		row(name, a.dirty + a.restore, b.dirty + b.restore, "us");
	}
	{
		struct cycle a = memkit_cycle(m, s, GPA_SBX, 64, SBX_RESTORE_AUTO, 7);
		struct cycle t = memkit_cycle(m, s, GPA_SBX, 64, SBX_RESTORE_TRIM, 8);
		struct cycle b = memcpy_cycle(region, saved, size, 64, 7);
		row("  64 dirty pages: restore (copy-back)", a.restore, b.restore, "us");
		row("  64 dirty pages: restore (MADV_DONTNEED)", t.restore, b.restore, "us");
	}
	if (have_kvm) {
		sbx_vm_unbind(svm, 1);
		mk_kvm_delete_memslot(vm.vm_fd, 2);
	}
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
	mk_munmap(region, size);
	g_free(saved);
}

static void bench_copy(void)
{
	static const size_t sizes[] = { 4096, MIB };
	struct sbx_mem *m;
	uint8_t *buf = g_malloc(MIB), *raw;
	int r;

	if ((r = sbx_mem_new(2 * MIB, &m)) < 0)
		die("sbx_mem_new", r);
	raw = sbx_mem_host_ptr(m, true);
	memset(buf, 0x5a, MIB);
	sbx_mem_write(m, 0, buf, MIB);
	printf("\n%-44s %12s %12s %s %10s\n", "host copy (median GB/s)", "memkit", "memcpy", "  ",
	       "ratio");
	for (unsigned k = 0; k < G_N_ELEMENTS(sizes); k++) {
		size_t n = sizes[k];
		unsigned iters = (unsigned)(256 * MIB / n / 4);
		for (int dir = 0; dir < 2; dir++) {
			double a[RUNS], b[RUNS], ga, gb;
			char name[64];
			for (int i = 0; i < RUNS; i++) {
				double t0 = bench_now_us();
				for (unsigned it = 0; it < iters; it++) {
					if (dir)
						sbx_mem_read(m, 0, buf, n);
					else
						sbx_mem_write(m, 0, buf, n);
				}
				double t1 = bench_now_us();
				for (unsigned it = 0; it < iters; it++) {
					if (dir)
						memcpy(buf, raw, n);
					else
						memcpy(raw, buf, n);
					__asm__ volatile("" ::: "memory");
				}
				double t2 = bench_now_us();
				a[i] = (double)n * iters / ((t1 - t0) * 1e3);
				b[i] = (double)n * iters / ((t2 - t1) * 1e3);
			}
			ga = bench_median(a, RUNS);
			gb = bench_median(b, RUNS);
			snprintf(name, sizeof(name), "  %s %zu KiB", dir ? "read (copy-out)" : "write (copy-in)",
				 n / 1024);
			printf("%-44s %12.2f %12.2f GB/s %7.2fx\n", name, ga, gb, ga / gb);
		}
	}
	sbx_mem_free(m);
	g_free(buf);
}

static void bench_create(void)
{
	double a[RUNS], b[RUNS];
	const unsigned iters = 200;

	for (int i = 0; i < RUNS; i++) {
		double t0 = bench_now_us();
		for (unsigned it = 0; it < iters; it++) {
			struct sbx_mem *m;
			int r = sbx_mem_new(64 * MIB, &m);
			if (r < 0)
				die("sbx_mem_new", r);
			sbx_mem_free(m);
		}
		double t1 = bench_now_us();
		for (unsigned it = 0; it < iters; it++) {
			void *p;
			if (mk_mmap(NULL, 64 * MIB, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &p) < 0)
				die("mmap", -ENOMEM);
			mk_munmap(p, 64 * MIB);
		}
		double t2 = bench_now_us();
		a[i] = (t1 - t0) / iters;
		b[i] = (t2 - t1) / iters;
	}
	printf("\n%-44s %12s %12s\n", "create + destroy 64 MiB (median us)", "memkit", "mmap+munmap");
	printf("%-44s %12.2f %12.2f us %7.2fx\n", "  sbx_mem_new + sbx_mem_free (guarded)",
	       bench_median(a, RUNS), bench_median(b, RUNS), bench_median(b, RUNS) / bench_median(a, RUNS));
}

/* Copy-on-write sharing: sandboxes made from one snapshot, each dirtying 1%. */
static void bench_sharing(void)
{
	const uint64_t size = 64 * MIB;
	const unsigned count = 16, dirty = (unsigned)(size / PG / 100);
	struct sbx_mem *m, *ms[16];
	struct sbx_snapshot *s;
	uint64_t priv = 0;
	double t0, t_new;
	int r;

	if ((r = sbx_mem_new(size, &m)) < 0)
		die("sbx_mem_new", r);
	for (uint64_t off = 0; off < size; off += PG)
		sbx_mem_fill(m, off, (uint8_t)(off / PG), PG);
	if ((r = sbx_snapshot_take(m, &s)) < 0)
		die("sbx_snapshot_take", r);
	sbx_mem_free(m);
	t0 = bench_now_us();
	for (unsigned i = 0; i < count; i++)
		if ((r = sbx_mem_new_from_snapshot(s, &ms[i])) < 0)
			die("sbx_mem_new_from_snapshot", r);
	t_new = (bench_now_us() - t0) / count;
	for (unsigned i = 0; i < count; i++) {
		struct sbx_mem_stats st = { .size = sizeof(st) };
		uint32_t *pages = random_pages(size / PG, dirty, 500 + i);
		for (unsigned k = 0; k < dirty; k++)
			sbx_mem_write_u64(ms[i], (uint64_t)pages[k] * PG, i);
		g_free(pages);
		sbx_mem_stats(ms[i], &st);
		priv += st.private_bytes;
	}
	printf("\n%u sandboxes of 64 MiB from one snapshot, 1%% dirty each:\n", count);
	printf("  private memory %8.1f MiB vs %8.1f MiB for private copies (%.1f MiB saved, %.0fx less)\n",
	       (double)priv / MIB, (double)count * size / MIB,
	       ((double)count * size - (double)priv) / MIB, (double)count * size / (double)priv);
	printf("  sbx_mem_new_from_snapshot: %.1f us each\n", t_new);
	for (unsigned i = 0; i < count; i++)
		sbx_mem_free(ms[i]);
	sbx_snapshot_unref(s);
}

static void bench_scaling(void)
{
	const uint64_t size = 1024 * MIB;
	static const unsigned counts[] = { 8, 64, 512, 4096, 16384, 65536 };
	struct sbx_mem *m;
	struct sbx_snapshot *s;
	int r;

	if ((r = sbx_mem_new(size, &m)) < 0)
		die("sbx_mem_new", r);
	for (uint64_t off = 0; off < size; off += 64 * PG)
		sbx_mem_write_u64(m, off, off);
	if ((r = sbx_snapshot_take(m, &s)) < 0)
		die("sbx_snapshot_take", r);
	if (have_kvm && (r = sbx_vm_bind(svm, m, 1, GPA_SBX, SBX_BIND_DIRTY_LOG)) < 0)
		die("sbx_vm_bind", r);
	printf("\n1 GiB sandbox, median us: restore alone, and +dirty = the guest dirtying the same\n"
	       "pages again + restore (one cycle), per strategy\n");
	printf("%-8s %9s %8s %9s %9s %9s %9s %9s %9s\n", "pages", "auto", "us/page", "copy",
	       "+dirty", "remap", "+dirty", "dontneed", "+dirty");
	for (unsigned i = 0; i < G_N_ELEMENTS(counts); i++) {
		unsigned n = counts[i];
		struct cycle a = memkit_cycle(m, s, GPA_SBX, n, SBX_RESTORE_AUTO, 1000 + i);
		struct cycle c = memkit_cycle(m, s, GPA_SBX, n, SBX_RESTORE_COPY, 2000 + i);
		struct cycle x = memkit_cycle(m, s, GPA_SBX, n, SBX_RESTORE_REMAP, 3000 + i);
		struct cycle t = memkit_cycle(m, s, GPA_SBX, n, SBX_RESTORE_TRIM, 4000 + i);
		printf("%-8u %9.1f %8.3f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", n, a.restore,
		       a.restore / n, c.restore, c.restore + c.dirty, x.restore, x.restore + x.dirty,
		       t.restore, t.restore + t.dirty);
	}
	if (have_kvm)
		sbx_vm_unbind(svm, 1);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

/*
 * guest_memfd regions (Linux 6.18+) beside an anonymous region of the same
 * size, in the same VM: restore after the guest dirtied pages (no dirty log
 * on guest_memfd memslots: the whole region is rewritten), restore after
 * host writes only (O(dirty) for both), and host copies (a guest_memfd
 * region not kept mapped is mapped and unmapped around each call).
 */
#define GPA_GMEM 0x80000000ull
static void bench_gmem(void)
{
	static const char *const names[] = { "anonymous", "gmem", "gmem kept" };
	static const unsigned dirty[] = { 16, 164, 1638 };
	const uint64_t size = 64 * MIB;
	struct sbx_mem *m[3];
	struct sbx_snapshot *s[3];
	uint8_t *buf = g_malloc(64 * 1024);
	int r;

	if (!have_kvm || (r = sbx_vm_gmem_supported(svm)) < 0) {
		printf("\nguest_memfd: not measured (%s)\n",
		       have_kvm ? "this kernel has no host-mappable guest_memfd" : "no KVM");
		g_free(buf);
		return;
	}
	for (unsigned k = 0; k < 3; k++) {
		r = k ? sbx_vm_mem_new_gmem(svm, size, k == 2 ? SBX_GMEM_KEEP_MAPPED : 0, &m[k])
		      : sbx_mem_new(size, &m[k]);
		if (r < 0)
			die("region", r);
		for (uint64_t off = 0; off < size; off += PG)
			sbx_mem_fill(m[k], off, (uint8_t)(off / PG), 64);
		if ((r = sbx_snapshot_take(m[k], &s[k])) < 0)
			die("sbx_snapshot_take", r);
	}
	printf("\nguest_memfd vs anonymous, 64 MiB region (median us; ratio: gmem / anonymous)\n");
	printf("%-36s %11s %11s %11s %7s %7s\n", "", names[0], names[1], names[2], "gmem", "kept");
	for (unsigned host = 0; host < 2; host++) {
		for (unsigned i = 0; i < G_N_ELEMENTS(dirty); i++) {
			double v[3];
			char name[64];
			for (unsigned k = 0; k < 3; k++) {
				struct cycle c;
				/* The guest's writes through a binding; the host's through the library. */
				if (!host && (r = sbx_vm_bind(svm, m[k], 3, GPA_GMEM,
							     k ? 0 : SBX_BIND_DIRTY_LOG)) < 0)
					die("sbx_vm_bind", r);
				if (host) {
					double rs[RUNS];
					uint32_t *pages = random_pages(size / PG, dirty[i], 500 + i);
					for (int it = -1; it < RUNS; it++) {
						for (unsigned j = 0; j < dirty[i]; j++)
							sbx_mem_write_u32(m[k], (uint64_t)pages[j] * PG, 1);
						double t0 = bench_now_us();
						if ((r = (int)sbx_snapshot_restore(m[k], s[k], SBX_RESTORE_AUTO)) < 0)
							die("sbx_snapshot_restore", r);
						if (it >= 0)
							rs[it] = bench_now_us() - t0;
					}
					g_free(pages);
					c.restore = bench_median(rs, RUNS);
				} else {
					c = memkit_cycle(m[k], s[k], GPA_GMEM, dirty[i], SBX_RESTORE_AUTO,
							 600 + i);
					sbx_vm_unbind(svm, 3);
				}
				v[k] = c.restore;
			}
			snprintf(name, sizeof(name), "  restore, %u pages %s", dirty[i],
				 host ? "host-written" : "guest-written");
			printf("%-36s %11.1f %11.1f %11.1f %6.1fx %6.1fx\n", name, v[0], v[1], v[2],
			       v[1] / v[0], v[2] / v[0]);
		}
	}
	for (unsigned sz = 4096; sz <= 64 * 1024; sz *= 16) {
		double v[3];
		char name[64];
		for (unsigned k = 0; k < 3; k++) {
			double t[RUNS];
			for (int it = 0; it < RUNS; it++) {
				double t0 = bench_now_us();
				for (unsigned j = 0; j < 256; j++)
					sbx_mem_read(m[k], (uint64_t)j * 64 * 1024, buf, sz);
				t[it] = (bench_now_us() - t0) / 256;
			}
			v[k] = bench_median(t, RUNS);
		}
		snprintf(name, sizeof(name), "  sbx_mem_read %u KiB (us a call)", sz / 1024);
		printf("%-36s %11.2f %11.2f %11.2f %6.1fx %6.1fx\n", name, v[0], v[1], v[2],
		       v[1] / v[0], v[2] / v[0]);
	}
	for (unsigned k = 0; k < 3; k++) {
		sbx_mem_free(m[k]);
		sbx_snapshot_unref(s[k]);
	}
	g_free(buf);
}

int main(void)
{
	struct vmm_err err = { 0 };
	int r;

	r = vmm_vm_open(&vm, -1, LOW, 0, &err);
	have_kvm = r == 0;
	if (have_kvm) {
		if ((r = sbx_vm_from_fd(vm.vm_fd, &svm)) < 0)
			die("sbx_vm_from_fd", r);
		printf("bench-sbx: pages dirtied by a real KVM guest (one 4-byte store per page)\n\n");
	} else {
		printf("bench-sbx: no KVM (%s): pages dirtied by host stores\n\n", err.msg);
		vmm_vm_close(&vm);
	}
	bench_restore();
	bench_copy();
	bench_create();
	bench_sharing();
	bench_scaling();
	bench_gmem();
	if (have_kvm) {
		sbx_vm_free(svm);
		vmm_vm_close(&vm);
	}
	return 0;
}
