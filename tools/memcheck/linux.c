/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: boot a stock Linux kernel (Debian's 6.1 or
 * 6.12) on vmm/'s machine with its virtio-fs device, whose FUSE server
 * passes a temporary host directory through and whose DAX window is a
 * libdax session (linux-dax.c). The guest's init script (a
 * busybox initramfs built here at run time) mounts the tag with DAX,
 * reads files larger than the window (the kernel must reclaim ranges:
 * REMOVEMAPPING), drops its caches (inode eviction: REMOVEMAPPING
 * batches), writes with write(2) (extending writes go as FUSE WRITE,
 * in-place ones through the window after a read: the read -> write
 * upgrade) and reports MD5 sums over the serial console ("MC: " lines).
 * The host compares them with its own and checks the written files.
 * A second device serves Debian's fio to the guest (linux-fio.c).
 *
 * The check runs in stages: build (the files, the initramfs), boot (the
 * machine, its devices, the kernel), drive (the guest's run), verify (what
 * the guest said and wrote against the host's files) and report.
 *
 * Kernel: the one running (inside memkit's microVM that is the stock kernel
 * memcheck-guest --kernel chose), else the newest under
 * /var/cache/memkit/kernels; $MEMCHECK_LINUX_KERNEL (a series, release or
 * directory) overrides. Debug knobs: MEMCHECK_CONSOLE=1 with --verbose
 * copies the guest console to stderr; --inject-fault linux maps wrong file
 * ranges (MEMCHECK_LINUX_FAULT=drop-write: a mapper that drops the guest's
 * DAX writes); MEMCHECK_LINUX_BOOT=vmlinux skips the bzImage's decompressor;
 * MEMCHECK_LINUX_TRACE=1 prints every SETUPMAPPING / REMOVEMAPPING on stderr;
 * MEMCHECK_LINUX_CMDLINE adds to the guest kernel's command line.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/fuse.h>

#include "common/sys.h"
#include "dax.h"
#include "tools/memcheck/check.h"
#include "tools/memcheck/linux.h"
#include "tools/memcheck/linux-fio.h"
#include "tools/memcheck/linux-initramfs.h"
#include "tools/memcheck/pattern.h"
#include "vmm/boot.h"
#include "vmm/fuse-server.h"
#include "vmm/machine.h"
#include "vmm/virtio-fs.h"

#define RAM_SIZE    (512ull << 20)
#define MIB         (1ull << 20)
#define TAG         "memkit"
#define CMDLINE     "console=ttyS0 nokaslr acpi=off pci=conf1 reboot=t panic=-1 " \
		    "tsc=reliable no_timer_check i8042.noaux i8042.nokbd i8042.nopnp " \
		    "rdinit=/init loglevel=4"

/* The files of the shared directory: name, size, pattern seed. */
static const struct { const char *name; uint64_t size; uint64_t seed; } files[] = {
	{ "big0", 24 * MIB, 0x6230 },   /* larger than the window */
	{ "big1", 20 * MIB, 0x6231 },
	{ "upd", 6 * MIB, 0x757064 },   /* read, then its first 4 MiB overwritten in place */
	{ "mm", 4 * MIB, 0x6d6d },      /* mcmmap: read then write through mmap (upgrade) */
	{ "mw", 4 * MIB, 0x6d77 },      /* mcmmap w: write through mmap */
	{ "gone", 8 * MIB, 0x676f6e },  /* read, then unlinked: eviction removes its ranges */
};
enum { F_BIG0, F_BIG1, F_UPD, F_MM, F_MW, F_GONE };
#define W1_LEN  (8 * MIB)               /* w1: big0's first 8 MiB, written by dd */
#define UPD_LEN (4 * MIB)               /* upd: big1's first 4 MiB written over it */

static const char guest_init[] =
	"#!/bin/sh\n"
	"/bin/busybox --install -s /bin\n"
	"export PATH=/bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sys /sys\n"
	"mount -t devtmpfs dev /dev\n"
	". /etc/mc.conf\n"
	"say() { echo \"MC: $*\"; }\n"
	"fin() { say end; sync; reboot -f; }\n"
	"sum() { set -- $(md5sum < \"$1\"); echo $1; }\n"
	"say release $(uname -r)\n"
	"for m in $(cat /lib/mk/order); do insmod /lib/mk/$m || say error insmod $m; done\n"
	"if ! mount -t virtiofs -o \"$MC_DAXOPT\" " TAG " /mnt; then\n"
	"	say error mount -o $MC_DAXOPT: $(dmesg | tail -n 2 | tr '\\n' ' ')\n"
	"	fin\n"
	"fi\n"
	"say mount $(grep ' /mnt ' /proc/mounts)\n"
	/* READDIR and STATFS. */
	"say ls $(ls /mnt | tr '\\n' ' ')\n"
	"df /mnt > /dev/null || say error df\n"
	/* Reads through the window; the files are larger than it. */
	"for f in big0 big1; do say sum $f $(sum /mnt/$f); done\n"
	/* Inode eviction: the kernel removes each inode's ranges in batches. */
	"sync; echo 3 > /proc/sys/vm/drop_caches; say dropped\n"
	/* write(2) extending a new file: FUSE WRITE. */
	"dd if=/mnt/big0 of=/mnt/w1 bs=65536 count=128 2>/dev/null || say error dd w1\n"
	/* Read (read-only mappings), then overwrite in place: DAX writes, upgrades. */
	"say sum upd-before $(sum /mnt/upd)\n"
	"dd if=/mnt/big1 of=/mnt/upd bs=65536 count=64 conv=notrunc 2>/dev/null || say error dd upd\n"
	"sync\n"
	"say sum w1 $(sum /mnt/w1)\n"
	"say sum upd $(sum /mnt/upd)\n"
	/* A device-backend restart mid-read: the host snapshots the DAX session at
	 * "pause", destroys it, creates a new one and restores; the rest of the
	 * read goes through slots the new session binds on first touch. */
	"say sum upd-again $( (dd bs=1048576 count=3 2>/dev/null; echo 'MC: pause' > /dev/console; cat) "
	"< /mnt/upd | md5sum | cut -d' ' -f1)\n"
	/* Shared writable mappings: read faults then write faults, and write faults alone. */
	"mcmmap /mnt/mm || say error mcmmap mm\n"
	"mcmmap /mnt/mw w || say error mcmmap mw\n"
	/* Unlinking a file whose ranges are mapped evicts its inode at once. */
	"say sum gone $(sum /mnt/gone)\n"
	"rm /mnt/gone || say error rm gone\n"
	"say removed\n"
	/* fio from the mount, on files larger than the window (linux-fio.c). */
	"[ -r /etc/mc-fio.sh ] && . /etc/mc-fio.sh\n"
	/* What interrupted the guest, for whoever reads the details (-v). */
	"say irqs $(sed -n 's/^ *\\([0-9A-Z]*\\): *\\([0-9]*\\).*/\\1=\\2/p' /proc/interrupts | tr '\\n' ' ')\n"
	"say clockevent $(cat /sys/devices/system/clockevents/clockevent0/current_device 2>/dev/null) "
	"clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)\n"
	"umount /mnt || say error umount\n"
	"fin\n";

/* The guest's mmap writer (linux-mmap.S) and what it writes. */
extern const uint8_t mc_lxmmap_start[], mc_lxmmap_end[];
#define LXMMAP_LEN   (2 * MIB)
#define LXMMAP_MAGIC 0x4d434d4d41500000ull

/* A static ELF executable around position-independent code: one PT_LOAD, entry at the code. */
static uint8_t *elf_wrap(const uint8_t *code, size_t len, size_t *out_len)
{
	const uint64_t base = 0x400000;
	size_t hdr = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
	uint8_t *b = calloc(1, hdr + len);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + sizeof(*eh));

	if (!b)
		return NULL;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = base + hdr;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	ph->p_type = PT_LOAD;
	ph->p_flags = PF_R | PF_X;
	ph->p_offset = 0;
	ph->p_vaddr = ph->p_paddr = base;
	ph->p_filesz = ph->p_memsz = hdr + len;
	ph->p_align = 0x1000;
	memcpy(b + hdr, code, len);
	*out_len = hdr + len;
	return b;
}


#define MAX_SUMS 32

struct run_state {
	const struct mc_opts *o;
	const struct vmm_fuse *fuse;
	struct lx_dax *dax;
	bool ended;
	char release[128];
	char mount[256];
	char ls[256];
	char error[256];
	unsigned nsums;
	struct { char name[32]; char md5[33]; } sums[MAX_SUMS];
	int fio_rc;              /* fio's exit status in the guest; -1: not run */
	uint64_t fio_start_ns;
	uint64_t fio_loaded_ns;  /* fio --version from the mount, as the host saw it */
	uint64_t fio_ns;         /* fio's whole run in the guest */
};

static bool on_line(void *data, const char *line)
{
	struct run_state *st = data;

	if (strncmp(line, "MC: ", 4))
		return false;
	line += 4;
	if (st->fuse)
		mc_note(st->o, "linux: guest: %s [setup %llu, remove %llu in %llu requests]", line,
			(unsigned long long)st->fuse->st.ops[FUSE_SETUPMAPPING],
			(unsigned long long)st->fuse->st.remove_entries,
			(unsigned long long)st->fuse->st.ops[FUSE_REMOVEMAPPING]);
	if (!strncmp(line, "release ", 8)) {
		g_strlcpy(st->release, line + 8, sizeof(st->release));
	} else if (!strncmp(line, "ls ", 3)) {
		g_strlcpy(st->ls, line + 3, sizeof(st->ls));
	} else if (!strncmp(line, "mount ", 6)) {
		g_strlcpy(st->mount, line + 6, sizeof(st->mount));
	} else if (!strncmp(line, "error ", 6)) {
		if (!st->error[0])
			g_strlcpy(st->error, line + 6, sizeof(st->error));
	} else if (!strncmp(line, "sum ", 4) && st->nsums < MAX_SUMS) {
		char name[32], md5[40];

		if (sscanf(line + 4, "%31s %39s", name, md5) == 2 && strlen(md5) == 32) {
			g_strlcpy(st->sums[st->nsums].name, name, sizeof(st->sums[0].name));
			g_strlcpy(st->sums[st->nsums].md5, md5, sizeof(st->sums[0].md5));
			st->nsums++;
		}
	} else if (!strcmp(line, "pause")) {
		if (st->dax && !st->dax->restarted) {
			lx_dax_restart(st->dax);
			mc_note(st->o, "linux: DAX backend restarted: %s, %llu mappings, %zu-byte blob, %.3f ms",
				st->dax->err ? strerror(-st->dax->err) : "ok",
				(unsigned long long)st->dax->slots, st->dax->blob_len,
				(double)st->dax->restore_ns / 1e6);
			if (st->dax->err)
				return true;    /* no backend any more: stop */
		}
	} else if (!strncmp(line, "fio-version ", 12)) {
		st->fio_loaded_ns = st->fio_start_ns ? mk_now_ns() - st->fio_start_ns : 0;
	} else if (!strcmp(line, "fio-start")) {
		st->fio_start_ns = mk_now_ns();
	} else if (!strncmp(line, "fio ", 4)) {
		st->fio_rc = atoi(line + 4);
		st->fio_ns = st->fio_start_ns ? mk_now_ns() - st->fio_start_ns : 0;
	} else if (!strcmp(line, "end")) {
		st->ended = true;
	}
	return st->ended;
}

/* Same set of words in any order? */
static bool ls_matches(const char *got, const char *want)
{
	g_auto(GStrv) g = g_strsplit(got, " ", -1), w = g_strsplit(want, " ", -1);
	unsigned ng = 0, nw = 0;

	for (char **p = g; *p; p++)
		if (**p)
			ng++;
	for (char **p = w; *p; p++) {
		if (!**p)
			continue;
		nw++;
		if (!g_strv_contains((const gchar *const *)g, *p))
			return false;
	}
	return ng == nw;
}

static const char *guest_sum(const struct run_state *st, const char *name)
{
	for (unsigned i = 0; i < st->nsums; i++)
		if (!strcmp(st->sums[i].name, name))
			return st->sums[i].md5;
	return NULL;
}

/* Seeded bytes: the same generator the other checks use. */
static void pattern(uint8_t *buf, uint64_t len, uint64_t seed)
{
	uint64_t x = mc_xs_seed(seed);

	for (uint64_t i = 0; i < len / 8; i++) {
		x = mc_xorshift(x);
		memcpy(buf + 8 * i, &x, 8);
	}
}

static char *md5_hex(const uint8_t *buf, uint64_t len)
{
	return g_compute_checksum_for_data(G_CHECKSUM_MD5, buf, (gsize)len);
}

/* Which kernel: $MEMCHECK_LINUX_KERNEL, else the one running (inside the microVM that is
 * the stock kernel under test), else the newest fetched. */
static int pick_kernel(struct lx_kernel *k, char *why, size_t len)
{
	const char *sel = g_getenv("MEMCHECK_LINUX_KERNEL");
	struct utsname u;

	if (sel && *sel)
		return lx_kernel_find(sel, k, why, len);
	if (uname(&u) == 0 && lx_kernel_find(u.release, k, why, len) == 0)
		return 0;
	return lx_kernel_find(NULL, k, why, len);
}

/* "-o dax" on 6.1 (what its documentation names), "dax=always" from 6.2 on. */
static const char *dax_option(const char *release)
{
	unsigned maj = 0, min = 0;

	if (sscanf(release, "%u.%u", &maj, &min) == 2 && (maj < 6 || (maj == 6 && min < 2)))
		return "dax";
	return "dax=always";
}

static int make_files(const char *dir, uint8_t **data)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *p = g_build_filename(dir, files[i].name, NULL);
		int fd, r;

		data[i] = malloc(files[i].size);
		if (!data[i])
			return -ENOMEM;
		pattern(data[i], files[i].size, files[i].seed);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		r = (int)mk_pwrite_full(fd, data[i], files[i].size, 0);
		close(fd);
		if (r < 0)
			return r;
	}
	return 0;
}


/* Compare a host file with expected bytes; returns its MD5 (g_free) or NULL on a read error. */
static char *host_file_md5(const char *dir, const char *name, uint64_t *len)
{
	g_autofree char *p = g_build_filename(dir, name, NULL);
	g_autofree char *buf = NULL;
	gsize n = 0;

	if (!g_file_get_contents(p, &buf, &n, NULL))
		return NULL;
	*len = n;
	return md5_hex((const uint8_t *)buf, n);
}


/* The decompressor a bzImage's payload needs, by its magic bytes; NULL: unknown. */
static const char *payload_tool(const uint8_t *pl, size_t pl_len)
{
	if (pl_len > 4 && !memcmp(pl, "\x28\xb5\x2f\xfd", 4))
		return "zstd";
	if (pl_len > 6 && !memcmp(pl, "\xfd" "7zXZ", 5))
		return "xz";
	if (pl_len > 2 && pl[0] == 0x1f && pl[1] == 0x8b)
		return "gzip";
	return NULL;
}

/* Decompress the bzImage's payload with the matching tool and load the vmlinux ELF. */
static int load_vmlinux(struct vmm_machine *m, const uint8_t *bz, size_t bz_len,
			struct vmm_boot *boot, struct vmm_err *e)
{
	g_autofree char *tmp = NULL, *elf = NULL;
	const uint8_t *pl;
	const char *tool;
	size_t pl_len, elf_len = 0;
	char why[256];
	int fd, r;

	if (vmm_boot_payload(bz, bz_len, &pl, &pl_len) < 0)
		return vmm_fail(e, -ENOEXEC, "no payload in the bzImage");
	tool = payload_tool(pl, pl_len);
	if (!tool)
		return vmm_fail(e, -ENOEXEC, "payload compressed with an unknown method");
	fd = g_file_open_tmp("memcheck-vmlinux-XXXXXX", &tmp, NULL);
	if (fd < 0)
		return vmm_fail(e, -EIO, "temporary file for the payload");
	r = (int)mk_pwrite_full(fd, pl, pl_len, 0);
	close(fd);
	if (r >= 0) {
		const char *argv[] = { tool, "-dc", tmp, NULL };

		r = lx_run_capture(argv, &elf, &elf_len, why, sizeof(why)) ? 0 : -EIO;
		if (r < 0)
			vmm_fail(e, r, "%s", why);
	} else {
		vmm_fail_sys(e, r, "writing the payload");
	}
	unlink(tmp);
	if (r < 0)
		return r;
	return vmm_boot_vmlinux(&m->vm, (const uint8_t *)elf, elf_len, boot, e);
}

/*
 * fio's verdict (exit status, every job without error) and the files it left:
 * the guest's sums through the mount against the host's of the same files.
 */
static bool fio_verify(struct mc_result *res, const char *dir, const char *release,
		       struct lx_fio *fio, const struct run_state *st, uint64_t *guest_bytes,
		       uint64_t *host_bytes)
{
	int r;

	if (!fio->staged)
		return true;
	if (st->fio_rc < 0) {
		mc_fail(res, "guest %s never ran fio", release);
		return false;
	}
	r = lx_fio_results(dir, fio);
	if (st->fio_rc != 0 || r < 0) {
		g_autofree char *line = lx_fio_stderr_line(dir);

		mc_fail(res, "guest %s: fio exited %d: %s%s%s", release, st->fio_rc, line,
			r < 0 ? "; " : "", r < 0 ? fio->why : "");
		return false;
	}
	for (unsigned k = 0; k < LX_FIO_JOBS; k++)
		if (fio->res[k].error) {
			mc_fail(res, "guest %s: fio job %s: error %d (%s)", release, lx_fio_jobs[k].name,
				fio->res[k].error, strerror(fio->res[k].error));
			return false;
		}
	for (unsigned i = 0; i < LX_FIO_FILES; i++) {
		g_autofree char *rel = g_build_filename("fio-data", lx_fio_files[i], NULL);
		g_autofree char *name = g_strconcat("fio/", lx_fio_files[i], NULL);
		uint64_t len = 0;
		g_autofree char *host = host_file_md5(dir, rel, &len);
		const char *got = guest_sum(st, name);

		if (!host || !got || strcmp(host, got) || !len || len > LX_FIO_FILE_SIZE) {
			mc_fail(res, "fio's %s: guest MD5 %s, host MD5 %s (%llu bytes)", lx_fio_files[i],
				got ? got : "(none)", host ? host : "(unreadable)", (unsigned long long)len);
			return false;
		}
		*guest_bytes += len;
		*host_bytes += len;
	}
	*guest_bytes += fio->verified_bytes;
	return true;
}

static void fio_metrics(struct mc_result *res, const struct lx_fio *fio, const struct lx_fio_dev *dev,
			const struct run_state *st)
{
	if (!fio->staged)
		return;
	for (unsigned k = 0; k < LX_FIO_JOBS; k++) {
		const struct lx_fio_job *j = &lx_fio_jobs[k];

		mc_metric(res, j->m_read, (double)fio->res[k].read, "bytes");
		if (j->m_write)
			mc_metric(res, j->m_write, (double)fio->res[k].write, "bytes");
		mc_metric(res, j->m_ms, (double)fio->res[k].ms, "ms");
	}
	mc_metric(res, "fio_verified_bytes", (double)fio->verified_bytes, "bytes");
	mc_metric(res, "fio_libraries", (double)fio->nlibs, "files");
	mc_metric(res, "fio_staged_bytes", (double)fio->staged_bytes, "bytes");
	mc_metric(res, "fio_load_s", (double)st->fio_loaded_ns / 1e9, "s");
	mc_metric(res, "fio_dev_setupmapping", (double)dev->fuse.st.ops[FUSE_SETUPMAPPING], "requests");
	mc_metric(res, "fio_dev_removemapping", (double)dev->fuse.st.ops[FUSE_REMOVEMAPPING], "requests");
	mc_metric(res, "fio_dev_requests", (double)dev->vfs.requests, "requests");
	mc_metric(res, "fio_guest_s", (double)st->fio_ns / 1e9, "s");
}

/* The shared directory: the files the guest reads and fio (its loader, libraries, jobs). */
static bool prepare_files(const struct mc_opts *o, struct mc_result *res, char **dirp,
			  uint8_t **data, struct lx_fio *fio)
{
	char *dir = g_build_filename(g_get_tmp_dir(), "memcheck-linux-XXXXXX", NULL);
	int r;

	if (!g_mkdtemp(dir)) {
		mc_fail(res, "temporary directory: %s", strerror(errno));
		g_free(dir);
		return false;
	}
	*dirp = dir;
	r = make_files(dir, data);
	if (r < 0) {
		mc_fail(res, "files in %s: %s", dir, strerror(-r));
		return false;
	}
	/* The fault injections test what the first device's files show: fio adds nothing. */
	if (mc_injected(o, "linux")) {
		snprintf(fio->why, sizeof(fio->why), "a fault is injected");
		mc_note(o, "linux: fio not run: %s", fio->why);
		return true;
	}
	r = lx_fio_stage(dir, fio);
	if (r < 0) {
		mc_fail(res, "fio for the guest: %s", fio->why);
		return false;
	}
	if (fio->staged)
		mc_note(o, "linux: %s with its loader and %u libraries (%llu bytes) for the guest",
			fio->version, fio->nlibs, (unsigned long long)fio->staged_bytes);
	else
		mc_note(o, "linux: fio not run: %s", fio->why);
	return true;
}

/* ---- the stages ------------------------------------------------------------ */

/* Everything one run of the check holds, from build to report. */
struct lx_run {
	const struct mc_opts *o;
	struct mc_result *res;
	struct lx_kernel k;
	char *bz;                   /* the bzImage (g_free) */
	gsize bz_len;
	char *dir;                  /* the shared directory (removed at the end) */
	uint8_t *data[G_N_ELEMENTS(files)];   /* the bytes of its files */
	struct lx_fio fio;
	struct lx_cpio cpio;
	unsigned nmods;
	int root_fd;
	struct vmm_machine m;
	struct vmm_fuse fuse;
	struct vmm_virtiofs vfs;
	struct lx_dax dax;
	struct lx_fio_dev fiodev;
	struct run_state st;        /* what the guest said */
	struct vmm_err err;         /* how the machine's run ended */
	uint64_t t0;                /* the run's start */
	struct dax_stats ds;        /* the (restarted) session's, at the end */
	struct dax_fault_stats fs;
	uint64_t upgrades;          /* both sessions' */
	uint64_t guest_bytes, host_bytes;   /* checked through the guest, on the host */
};

/* Nothing held yet: every member safe to free. */
static void run_init(struct lx_run *r, const struct mc_opts *o, struct mc_result *res)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->res = res;
	r->root_fd = -1;
	r->fiodev.root_fd = -1;
	r->st = (struct run_state){ .o = o, .fio_rc = -1 };
	lx_cpio_init(&r->cpio);
	vmm_vm_init(&r->m.vm);
}

static void run_free(struct lx_run *r)
{
	vmm_machine_close(&r->m);   /* the VM first: the window memslots are in it */
	lx_dax_close(&r->dax);
	lx_fio_dev_close(&r->fiodev);
	lx_fio_free(&r->fio);
	vmm_virtiofs_free(&r->vfs);
	vmm_fuse_free(&r->fuse);
	if (r->root_fd >= 0)
		close(r->root_fd);
	if (r->dir)
		lx_rm_tree(r->dir);
	g_free(r->dir);
	g_free(r->bz);
	for (unsigned i = 0; i < G_N_ELEMENTS(files); i++)
		free(r->data[i]);
	lx_cpio_free(&r->cpio);
}

/* The guest's initramfs: busybox and the modules, /init, its settings, fio's part, mcmmap. */
static bool build_initramfs(struct lx_run *r)
{
	static const char *const mods[] = { "virtio_pci", "virtiofs", NULL };
	g_autofree char *conf = g_strdup_printf("MC_DAXOPT=%s\n", dax_option(r->k.release));
	char why[512] = "";
	size_t elf_len = 0;
	uint8_t *elf;
	int e;

	e = lx_initramfs_base(&r->cpio, &r->k, mods, &r->nmods, why, sizeof(why));
	if (e >= 0)
		e = lx_cpio_file(&r->cpio, "etc/mc.conf", 0644, conf, strlen(conf));
	if (e >= 0)
		e = lx_cpio_file(&r->cpio, "init", 0755, guest_init, sizeof(guest_init) - 1);
	if (e >= 0 && r->fio.staged)
		e = lx_cpio_file(&r->cpio, "etc/mc-fio.sh", 0644, lx_fio_guest, strlen(lx_fio_guest));
	if (e >= 0) {
		elf = elf_wrap(mc_lxmmap_start, (size_t)(mc_lxmmap_end - mc_lxmmap_start), &elf_len);
		e = elf ? lx_cpio_file(&r->cpio, "bin/mcmmap", 0755, elf, elf_len) : -ENOMEM;
		free(elf);
	}
	if (e >= 0)
		e = lx_cpio_finish(&r->cpio);
	if (e < 0) {
		mc_fail(r->res, "initramfs for %s: %s", r->k.release, why[0] ? why : strerror(-e));
		return false;
	}
	mc_note(r->o, "linux: kernel %s, initramfs %zu bytes with %u modules", r->k.release,
		r->cpio.len, r->nmods);
	return true;
}

/* Stage 1: the kernel, the shared directory's files, the initramfs. */
static bool build(struct lx_run *r)
{
	char why[512];

	if (pick_kernel(&r->k, why, sizeof(why)) < 0) {
		mc_skip(r->res, "%s", why);
		return false;
	}
	if (!g_file_get_contents(r->k.image, &r->bz, &r->bz_len, NULL)) {
		mc_fail(r->res, "cannot read %s", r->k.image);
		return false;
	}
	return prepare_files(r->o, r->res, &r->dir, r->data, &r->fio) && build_initramfs(r);
}

/* The FUSE server, its DAX session, the virtio-fs devices, the machine's handlers. */
static bool devices(struct lx_run *r)
{
	const char *mode = g_getenv("MEMCHECK_LINUX_FAULT");
	bool inject = mc_injected(r->o, "linux");
	bool drop = inject && mode && !strcmp(mode, "drop-write");
	struct vmm_err e = { 0 };
	int x;

	x = vmm_fuse_init(&r->fuse, r->root_fd, NULL, LX_WINDOW_LEN);
	if (x < 0) {
		mc_fail(r->res, "FUSE server: %s", strerror(-x));
		return false;
	}
	r->fuse.inject_wrong_range = inject && !drop;   /* default: libdax maps a wrong range */
	if (lx_dax_open(&r->dax, &r->m, &r->fuse, drop, &e) < 0) {
		mc_fail(r->res, "%s", e.msg);
		return false;
	}
	if (g_getenv("MEMCHECK_LINUX_TRACE"))
		r->fuse.trace = stderr;
	x = vmm_virtiofs_init(&r->vfs, &r->m.vm, &r->m.pci, LX_PCI_FS, TAG, &r->fuse, LX_GPA_PCI_MMIO,
			      LX_GPA_DAX, LX_WINDOW_LEN);
	if (x < 0) {
		mc_fail(r->res, "virtio-fs device: %s", strerror(-x));
		return false;
	}
	if (r->fio.staged) {
		if (lx_fio_dev_open(&r->fiodev, &r->m, &r->fio, &e) < 0) {
			mc_fail(r->res, "%s", e.msg);
			return false;
		}
		r->dax.fio = r->fiodev.dax;
	}
	r->m.mmio_fn = lx_dax_exit;
	r->m.mmio_data = &r->dax;
	r->m.efault_fn = lx_dax_efault;
	r->m.echo = r->o->verbose && g_getenv("MEMCHECK_CONSOLE");
	r->m.line_fn = on_line;
	r->m.line_data = &r->st;
	r->st.dax = &r->dax;
	r->st.fuse = &r->fuse;
	return true;
}

/* The kernel, initramfs and command line in guest RAM, the vCPU at the 64-bit entry. */
static bool load_kernel(struct lx_run *r)
{
	const char *extra = g_getenv("MEMCHECK_LINUX_CMDLINE");
	g_autofree char *cmdline = g_strconcat(CMDLINE, extra ? " " : "", extra ? extra : "", NULL);
	struct vmm_err e = { 0 };
	struct vmm_boot boot;

	if (vmm_boot_load(&r->m.vm, (const uint8_t *)r->bz, r->bz_len, r->cpio.buf, r->cpio.len,
			  cmdline, &boot, &e) < 0) {
		mc_fail(r->res, "boot %s: %s", r->k.image, e.msg);
		return false;
	}
	/* Debug: enter the kernel proper decompressed here instead of through its decompressor. */
	if (!g_strcmp0(g_getenv("MEMCHECK_LINUX_BOOT"), "vmlinux") &&
	    load_vmlinux(&r->m, (const uint8_t *)r->bz, r->bz_len, &boot, &e) < 0) {
		mc_fail(r->res, "boot %s without its decompressor: %s", r->k.image, e.msg);
		return false;
	}
	if (vmm_boot_vcpu(&r->m.vm, boot.entry, &e) < 0) {
		mc_fail(r->res, "vCPU: %s", e.msg);
		return false;
	}
	return true;
}

/* Stage 2: the machine with its devices, the kernel loaded. */
static bool boot(struct lx_run *r)
{
	r->root_fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->root_fd < 0) {
		mc_fail(r->res, "open %s: %s", r->dir, strerror(errno));
		return false;
	}
	if (vmm_machine_open(&r->m, r->o->kvm_fd, RAM_SIZE, &r->err) < 0) {
		mc_fail(r->res, "VMM: %s", r->err.msg);
		return false;
	}
	return devices(r) && load_kernel(r);
}

/* Stage 3: the guest's run, to its "end" (or what stopped it). */
static bool drive(struct lx_run *r)
{
	const struct mc_opts *o = r->o;
	enum vmm_machine_result rr;

	r->t0 = mk_now_ns();
	/*
	 * A whole boot and fio: 60 command timeouts (the default 10 s each makes
	 * 10 minutes). Nested under emulation on a loaded 2-core host the run
	 * took up to 330 s; quiet, 80 to 110 s.
	 */
	rr = vmm_machine_run(&r->m, o->timeout_ns * 60, &r->err);
	mc_note(o, "linux: run ended after %.1f s (%d) %s; %llu requests, %llu notifies, %llu irqs",
		(double)(mk_now_ns() - r->t0) / 1e9, rr, r->err.msg,
		(unsigned long long)r->vfs.requests, (unsigned long long)r->vfs.v.n_notify,
		(unsigned long long)r->vfs.v.n_irq);
	if (!r->st.ended) {
		/* The whole story (a panic's oops and trace) for whoever asked for details. */
		if (!r->m.echo)
			mc_note(o, "linux: the guest's console, last 8 KiB:\n%s",
				vmm_machine_console_tail(&r->m, 8192));
		mc_fail(r->res, "guest %s: %s; console: %s", r->k.release, r->err.msg,
			vmm_machine_console_tail(&r->m, 200));
		return false;
	}
	if (r->st.error[0]) {
		mc_fail(r->res, "guest %s: %s", r->k.release, r->st.error);
		return false;
	}
	return true;
}

/* The devices saw nothing malformed, the DAX backend survived its restart and left no hole. */
static bool verify_devices(struct lx_run *r)
{
	const char *rel = r->k.release;
	int x;

	if (vmm_err_set(&r->vfs.error) || vmm_err_set(&r->fuse.error)) {
		mc_fail(r->res, "guest %s: device: %s%s", rel, r->vfs.error.msg, r->fuse.error.msg);
		return false;
	}
	if (vmm_err_set(&r->fiodev.vfs.error) || vmm_err_set(&r->fiodev.fuse.error)) {
		mc_fail(r->res, "guest %s: fio's device: %s%s", rel, r->fiodev.vfs.error.msg,
			r->fiodev.fuse.error.msg);
		return false;
	}
	if (r->dax.err || !r->dax.s) {
		mc_fail(r->res, "DAX backend restart: %s", strerror(-r->dax.err));
		return false;
	}
	r->fs = (struct dax_fault_stats){ .size = sizeof(r->fs) };
	x = dax_session_fault_stats(r->dax.s, &r->fs);
	if (x < 0) {
		mc_fail(r->res, "libdax: dax_session_fault_stats: %s", strerror(-x));
		return false;
	}
	/* A touch of the window where no slot could be bound read zeros: the guest saw wrong data. */
	if (r->fs.holes || r->fs.unbound) {
		mc_fail(r->res, "libdax: %llu window touches without a mapping, %llu mappings it could not bind",
			(unsigned long long)r->fs.holes, (unsigned long long)r->fs.unbound);
		return false;
	}
	r->ds = (struct dax_stats){ .size = sizeof(r->ds) };
	x = dax_session_stats(r->dax.s, &r->ds);
	if (x < 0) {
		mc_fail(r->res, "libdax: dax_session_stats: %s", strerror(-x));
		return false;
	}
	r->upgrades = r->ds.upgrades + r->dax.before.upgrades;
	return true;
}

/* The directory listing: every file the host made, nothing else yet. */
static bool verify_listing(struct lx_run *r)
{
	g_autofree char *want = NULL;
	GString *w = g_string_new("");

	for (unsigned i = 0; i < G_N_ELEMENTS(files); i++)
		g_string_append_printf(w, "%s%s", i ? " " : "", files[i].name);
	if (r->fio.staged)
		g_string_append(w, " fio-data");
	want = g_string_free(w, FALSE);
	if (!ls_matches(r->st.ls, want)) {
		mc_fail(r->res, "guest %s lists /mnt as '%s', the host made '%s'", r->k.release,
			r->st.ls, want);
		return false;
	}
	return true;
}

/* The guest's reads against the files' bytes. */
static bool verify_reads(struct lx_run *r)
{
	for (unsigned j = 0; j < 3; j++) {
		unsigned i = j == 2 ? F_GONE : j;
		g_autofree char *want = md5_hex(r->data[i], files[i].size);
		const char *got = guest_sum(&r->st, files[i].name);

		if (!got || strcmp(got, want)) {
			mc_fail(r->res, "guest %s read %s (%llu MiB) through DAX: MD5 %s, the host's %s",
				r->k.release, files[i].name, (unsigned long long)(files[i].size >> 20),
				got ? got : "(none)", want);
			return false;
		}
		r->guest_bytes += files[i].size;
		r->host_bytes += files[i].size;
	}
	return true;
}

/* upd's bytes after the guest wrote big1's first UPD_LEN bytes over them (g_free). */
static char *upd_md5(const struct lx_run *r)
{
	uint8_t *upd = malloc(files[F_UPD].size);
	char *md5;

	if (!upd)
		return NULL;
	memcpy(upd, r->data[F_UPD], files[F_UPD].size);
	memcpy(upd, r->data[F_BIG1], UPD_LEN);
	md5 = md5_hex(upd, files[F_UPD].size);
	free(upd);
	return md5;
}

/* What the guest wrote, as the host sees it in the files, and as the guest read it back. */
static bool verify_writes(struct lx_run *r)
{
	g_autofree char *want_w1 = md5_hex(r->data[F_BIG0], W1_LEN), *want_upd = upd_md5(r);
	g_autofree char *before = md5_hex(r->data[F_UPD], files[F_UPD].size);
	g_autofree char *got_w1 = NULL, *got_upd = NULL;
	uint64_t w1_len = 0, upd_len = 0;
	const char *g;

	if (!want_upd) {
		mc_fail(r->res, "out of memory");
		return false;
	}
	got_w1 = host_file_md5(r->dir, "w1", &w1_len);
	got_upd = host_file_md5(r->dir, "upd", &upd_len);
	g = guest_sum(&r->st, "upd-before");
	if (!g || strcmp(g, before)) {
		mc_fail(r->res, "guest read upd as %s, the host wrote %s", g ? g : "(none)", before);
		return false;
	}
	if (!got_w1 || w1_len != W1_LEN || strcmp(got_w1, want_w1)) {
		mc_fail(r->res, "w1 (written by the guest with write(2)): host sees %llu bytes, MD5 %s; "
			"expected %llu bytes, %s", (unsigned long long)w1_len,
			got_w1 ? got_w1 : "(unreadable)", (unsigned long long)W1_LEN, want_w1);
		return false;
	}
	if (!got_upd || upd_len != files[F_UPD].size || strcmp(got_upd, want_upd)) {
		mc_fail(r->res, "upd (overwritten in place through DAX): host sees MD5 %s, expected %s",
			got_upd ? got_upd : "(unreadable)", want_upd);
		return false;
	}
	g = guest_sum(&r->st, "upd-again");
	if (!g || strcmp(g, want_upd)) {
		mc_fail(r->res, "upd read across the DAX backend restart: guest MD5 %s, expected %s",
			g ? g : "(none)", want_upd);
		return false;
	}
	g = guest_sum(&r->st, "w1");
	if (!g || strcmp(g, want_w1) || !(g = guest_sum(&r->st, "upd")) || strcmp(g, want_upd)) {
		mc_fail(r->res, "the guest's own sums of what it wrote differ from the host's");
		return false;
	}
	r->guest_bytes += files[F_UPD].size * 3 + 2 * W1_LEN + UPD_LEN;
	r->host_bytes += W1_LEN + files[F_UPD].size;
	return true;
}

/* mcmmap's stores, through MAP_SHARED DAX mappings, must be in the files. */
static bool verify_mmap(struct lx_run *r)
{
	for (unsigned i = F_MM; i <= F_MW; i++) {
		g_autofree char *p = g_build_filename(r->dir, files[i].name, NULL);
		g_autofree char *buf = NULL;
		gsize n = 0;
		uint64_t bad = 0, first = 0;

		if (!g_file_get_contents(p, &buf, &n, NULL) || n != files[i].size) {
			mc_fail(r->res, "%s after the guest's mmap writes: unreadable or resized (%zu bytes)",
				files[i].name, (size_t)n);
			return false;
		}
		for (uint64_t off = 0; off < n; off += 8) {
			uint64_t got, want;

			memcpy(&got, buf + off, 8);
			if (off < LXMMAP_LEN)
				want = off ^ LXMMAP_MAGIC;
			else
				memcpy(&want, r->data[i] + off, 8);
			if (got != want && !bad++)
				first = off;
		}
		if (bad) {
			mc_fail(r->res, "%s: %llu of %llu words differ from what the guest stored through "
				"mmap (first at offset 0x%llx)", files[i].name, (unsigned long long)bad,
				(unsigned long long)(n / 8), (unsigned long long)first);
			return false;
		}
		r->guest_bytes += LXMMAP_LEN;
		r->host_bytes += n;
	}
	return true;
}

/* gone is gone, and the kernel sent what the script makes it send. */
static bool verify_requests(struct lx_run *r)
{
	g_autofree char *p = g_build_filename(r->dir, "gone", NULL);
	const struct vmm_fuse_stats *fst = &r->fuse.st;

	if (g_file_test(p, G_FILE_TEST_EXISTS)) {
		mc_fail(r->res, "the guest removed gone, the host still has it");
		return false;
	}
	if (!fst->ops[FUSE_SETUPMAPPING]) {
		mc_fail(r->res, "guest %s mounted (%s) but sent no FUSE_SETUPMAPPING: no DAX",
			r->k.release, r->st.mount);
		return false;
	}
	/* The script makes the kernel reclaim ranges and upgrade read-only ones. */
	if (!fst->ops[FUSE_REMOVEMAPPING] || !r->upgrades) {
		mc_fail(r->res, "guest %s sent %llu REMOVEMAPPING, libdax saw %llu upgrades: the script "
			"should cause both", r->k.release,
			(unsigned long long)fst->ops[FUSE_REMOVEMAPPING], (unsigned long long)r->upgrades);
		return false;
	}
	return true;
}

/* Stage 4: what the guest said and wrote against the host's files. */
static bool verify(struct lx_run *r)
{
	return verify_devices(r) && verify_listing(r) && verify_reads(r) && verify_writes(r) &&
	       verify_mmap(r) && verify_requests(r) &&
	       fio_verify(r->res, r->dir, r->k.release, &r->fio, &r->st, &r->guest_bytes,
			  &r->host_bytes);
}

/* The metrics of REMOVEMAPPING requests by batch size (vmm_fuse_stats.remove_batch). */
static const char *const batch_names[VMM_FUSE_BATCH_BUCKETS] = {
	"removemapping_batch_1", "removemapping_batch_2_3", "removemapping_batch_4_7",
	"removemapping_batch_8_15", "removemapping_batch_16_31", "removemapping_batch_32_up",
};

/* The FUSE server's count of each opcode the kernel sent. */
static void fuse_metrics(struct mc_result *res, const struct vmm_fuse_stats *st)
{
	for (unsigned op = 0; op < VMM_FUSE_OPS; op++)
		if (st->ops[op] && vmm_fuse_opname(op))
			mc_metric(res, vmm_fuse_opname(op), (double)st->ops[op], "requests");
	if (!st->ops[FUSE_REMOVEMAPPING])
		mc_metric(res, "removemapping", 0, "requests");
}

/* Stage 5: the metrics and the verdict. */
static void report(struct lx_run *r)
{
	struct mc_result *res = r->res;
	const struct vmm_fuse_stats *fst = &r->fuse.st;

	mc_metric(res, "boot_to_end_s", (double)(mk_now_ns() - r->t0) / 1e9, "s");
	fuse_metrics(res, fst);
	mc_metric(res, "upgrades", (double)r->upgrades, "mappings");
	mc_metric(res, "fuse_minor", (double)fst->init_minor, "version");
	mc_metric(res, "fuse_error_replies", (double)fst->errors, "replies");
	if (fst->unknown_ops)
		mc_metric(res, "unknown_opcodes", (double)fst->unknown_ops, "requests");
	mc_metric(res, "setup_writable", (double)fst->setup_write, "requests");
	mc_metric(res, "setup_fh_none", (double)fst->setup_fh_none, "requests");
	mc_metric(res, "setup_unaligned", (double)fst->setup_unaligned, "requests");
	mc_metric(res, "removemapping_entries", (double)fst->remove_entries, "mappings");
	mc_metric(res, "removemapping_max_batch", (double)fst->remove_max_batch, "mappings");
	mc_metric(res, "removemapping_batches", (double)fst->remove_batches_gt1, "requests");
	for (unsigned b = 0; b < VMM_FUSE_BATCH_BUCKETS; b++)
		mc_metric(res, batch_names[b], (double)fst->remove_batch[b], "requests");
	mc_metric(res, "setup_len_2m", (double)fst->setup_len_2m, "requests");
	mc_metric(res, "fuse_init_flags", (double)fst->init_flags, "bits");
	mc_metric(res, "fuse_init_flags2", (double)fst->init_flags2, "bits");
	mc_metric(res, "fuse_refused", (double)fst->refused, "requests");
	mc_metric(res, "restore_ms", (double)r->dax.restore_ns / 1e6, "ms");
	mc_metric(res, "restored_slots", (double)r->dax.slots, "slots");
	/* Every bind counts in dax_stats.faults, whoever triggered it (userfaultfd, restore, exit). */
	mc_metric(res, "rebound_slots", (double)r->ds.faults, "slots");
	mc_metric(res, "rebound_on_bare_efault", (double)r->dax.efault_binds, "slots");
	mc_metric(res, "dax_fault_mode", (double)r->fs.mode, "enum dax_fault_mode");
	mc_metric(res, "rebound_by_userfaultfd", (double)r->fs.uffd_binds, "slots");
	mc_metric(res, "rebound_eagerly", (double)r->fs.eager_binds, "slots");
	mc_metric(res, "memory_fault_exits", (double)r->m.n_memfault, "exits");
	mc_metric(res, "rebind_exits", (double)r->dax.exits_handled, "exits");
	mc_metric(res, "bytes_checked_guest", (double)r->guest_bytes, "bytes");
	mc_metric(res, "bytes_checked_host", (double)r->host_bytes, "bytes");
	mc_metric(res, "fuse_write_bytes", (double)fst->bytes_written, "bytes");
	fio_metrics(res, &r->fio, &r->fiodev, &r->st);
	mc_pass(res, "guest %s, -o %s: %llu setupmapping (%llu writable, %llu upgrades), "
		"%llu removemapping (%llu ranges, batches up to %llu); restart: %llu mappings in "
		"%.1f ms, %llu rebound; %s; sums match",
		r->k.release, dax_option(r->k.release), (unsigned long long)fst->ops[FUSE_SETUPMAPPING],
		(unsigned long long)fst->setup_write, (unsigned long long)r->upgrades,
		(unsigned long long)fst->ops[FUSE_REMOVEMAPPING],
		(unsigned long long)fst->remove_entries, (unsigned long long)fst->remove_max_batch,
		(unsigned long long)r->dax.slots, (double)r->dax.restore_ns / 1e6,
		(unsigned long long)r->ds.faults, r->fio.staged ? "fio: 8 jobs verified" : "no fio");
}

void mc_check_linux(const struct mc_opts *o, struct mc_result *res)
{
	struct lx_run *r = g_new(struct lx_run, 1);

	run_init(r, o, res);
	if (build(r) && boot(r) && drive(r) && verify(r))
		report(r);
	run_free(r);
	g_free(r);
}
