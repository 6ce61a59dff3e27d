/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: boot a stock Linux kernel (Debian's 6.1 or
 * 6.12) in a small VMM of memcheck's own (linux-vm.c, boot.c, serial.c,
 * pci.c, virtio-pci.c) with a virtio-fs device (virtio-fs.c) whose FUSE
 * server (fuse-server.c) passes a temporary host directory through and
 * whose DAX window is a libdax session. The guest's init script (a
 * busybox initramfs built here at run time) mounts the tag with DAX,
 * reads files larger than the window (the kernel must reclaim ranges:
 * REMOVEMAPPING), drops its caches (inode eviction: REMOVEMAPPING
 * batches), writes with write(2) (extending writes go as FUSE WRITE,
 * in-place ones through the window after a read: the read -> write
 * upgrade) and reports MD5 sums over the serial console ("MC: " lines).
 * The host compares them with its own and checks the written files.
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
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/fuse.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "dax.h"
#include "tools/memcheck/boot.h"
#include "tools/memcheck/check.h"
#include "tools/memcheck/fuse-server.h"
#include "tools/memcheck/linux-fio.h"
#include "tools/memcheck/linux-initramfs.h"
#include "tools/memcheck/linux-vm.h"
#include "tools/memcheck/pattern.h"
#include "tools/memcheck/virtio-fs.h"

#define RAM_SIZE    (512ull << 20)
#define WINDOW_LEN  (16ull << 20)      /* 8 DAX ranges of 2 MiB */
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

/* The DAX backend of the device, replaceable while the guest runs. */
struct dax_holder {
	struct dax_session *s;
	struct dax_session *fio;  /* the fio device's window (linux-fio.h), or NULL */
	struct lx_fuse *fuse;
	struct dax_config cfg;
	struct dax_backend be;
	bool restarted;
	int err;                 /* restart failure */
	uint64_t restore_ns;     /* snapshot + free + new + restore */
	size_t blob_len;
	uint64_t slots;          /* slots in the snapshot */
	uint64_t efault_binds;   /* slots bound after a bare EFAULT (no exit info) */
	uint64_t exits_handled;  /* MMIO / memory-fault exits libdax handled (lazy rebind) */
	struct dax_stats before; /* the first session's counters at the restart */
};

static int dax_exit(void *data, struct kvm_run *run)
{
	struct dax_holder *h = data;
	int r = h->s ? dax_session_handle_kvm_exit(h->s, run) : 0;

	if (r == 0 && h->fio)
		r = dax_session_handle_kvm_exit(h->fio, run);
	if (r == 1)
		h->exits_handled++;
	return r;
}

/* KVM said EFAULT without a gpa: bind every unbound slot (nothing finer is possible). */
static int dax_efault(void *data)
{
	struct dax_holder *h = data;
	struct dax_mapping *list = NULL;
	size_t n = 0;
	int bound = 0;

	if (dax_session_list(h->s, &list, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!(list[i].flags & DAX_MAPPING_BOUND) &&
		    dax_session_fault(h->s, h->cfg.base_gpa + list[i].moffset) == 1)
			bound++;
	}
	free(list);
	h->efault_binds += (uint64_t)bound;
	return bound > 0;
}

/* Snapshot (DAXS v2), destroy, create anew, restore: a device-backend restart. */
static void dax_restart(struct dax_holder *h)
{
	uint64_t t = mk_now_ns();
	struct dax_session *ns = NULL;
	void *blob = NULL;
	size_t len = 0;
	int r;

	h->restarted = true;
	r = dax_session_snapshot(h->s, DAX_BLOB_V2, &blob, &len);
	if (r < 0)
		goto fail;
	dax_session_stats(h->s, &h->before);   /* its counters die with it */
	dax_session_free(h->s);     /* its memslot and reservation go with it */
	h->s = NULL;
	h->fuse->dax = NULL;
	r = dax_session_new(&h->cfg, &h->be, &ns);
	if (r < 0)
		goto fail;
	r = dax_session_restore(ns, blob, len);
	if (r < 0) {
		dax_session_free(ns);
		goto fail;
	}
	h->s = ns;
	h->fuse->dax = ns;
	h->restore_ns = mk_now_ns() - t;
	h->blob_len = len;
	{
		struct dax_blob_header hdr;
		struct dax_mapping *e = NULL;

		if (dax_blob_parse(blob, len, &hdr, &e, NULL) == 0)
			h->slots = hdr.count;
		free(e);
	}
	free(blob);
	return;
fail:
	h->err = r;
	free(blob);
}

#define MAX_SUMS 32

struct run_state {
	const struct mc_opts *o;
	const struct lx_fuse *fuse;
	struct dax_holder *dax;
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
			dax_restart(st->dax);
			mc_note(st->o, "linux: DAX backend restarted: %s, %llu slots, %zu-byte blob, %.3f ms",
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

/*
 * Fault injection "drop-write": a custom libdax mapper shaped like its
 * KVM window mapper (one memslot over a PROT_NONE reservation, file ranges
 * mapped over it) except that writable ranges are MAP_PRIVATE: the
 * guest's stores land in copies and never reach the file. The check must
 * notice. Used only under --inject-fault linux with
 * MEMCHECK_LINUX_FAULT=drop-write.
 */
struct drop_mapper {
	uint8_t *base;
	uint64_t gpa, len;
};

static int drop_map(void *data, uint64_t gpa, uint64_t len, int fd, uint64_t foffset,
		    uint32_t prot, int replace, void **hva)
{
	struct drop_mapper *m = data;
	void *p;
	int r;

	(void)replace;
	r = mk_mmap(m->base + (gpa - m->gpa), len,
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
	struct drop_mapper *m = data;
	void *p;

	(void)hva;
	return mk_mmap(m->base + (gpa - m->gpa), len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0, &p);
}

static int drop_mapper_init(struct drop_mapper *m, int vm_fd, uint64_t gpa, uint64_t len)
{
	void *p;
	int r = mk_mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &p);

	if (r < 0)
		return r;
	m->base = p;
	m->gpa = gpa;
	m->len = len;
	return mk_kvm_set_memslot(vm_fd, LX_SLOT_DAX, 0, gpa, len, p);
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

/* Decompress the bzImage's payload with the matching tool and load the vmlinux ELF. */
static int load_vmlinux(struct lx_vm *vm, const uint8_t *bz, size_t bz_len, struct lx_boot *boot,
			char *why, size_t why_len)
{
	g_autofree char *tmp = NULL, *elf = NULL;
	const uint8_t *pl;
	const char *tool;
	size_t pl_len, elf_len = 0;
	int fd, r;

	if (lx_boot_payload(bz, bz_len, &pl, &pl_len) < 0) {
		snprintf(why, why_len, "no payload in the bzImage");
		return -ENOEXEC;
	}
	if (pl_len > 4 && !memcmp(pl, "\x28\xb5\x2f\xfd", 4))
		tool = "zstd";
	else if (pl_len > 6 && !memcmp(pl, "\xfd" "7zXZ", 5))
		tool = "xz";
	else if (pl_len > 2 && pl[0] == 0x1f && pl[1] == 0x8b)
		tool = "gzip";
	else {
		snprintf(why, why_len, "payload compressed with an unknown method");
		return -ENOEXEC;
	}
	fd = g_file_open_tmp("memcheck-vmlinux-XXXXXX", &tmp, NULL);
	if (fd < 0) {
		snprintf(why, why_len, "temporary file for the payload");
		return -EIO;
	}
	r = (int)mk_pwrite_full(fd, pl, pl_len, 0);
	close(fd);
	if (r >= 0) {
		const char *argv[] = { tool, "-dc", tmp, NULL };

		r = lx_run_capture(argv, &elf, &elf_len, why, why_len) ? 0 : -EIO;
	}
	unlink(tmp);
	if (r < 0)
		return r;
	r = lx_boot_vmlinux(vm->ram, vm->ram_size, (const uint8_t *)elf, elf_len, boot);
	if (r < 0)
		snprintf(why, why_len, "%s", boot->why);
	return r;
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

void mc_check_linux(const struct mc_opts *o, struct mc_result *res)
{
	static const char *const mods[] = { "virtio_pci", "virtiofs", NULL };
	g_autofree char *bz = NULL, *conf = NULL, *dir = NULL;
	uint8_t *data[G_N_ELEMENTS(files)] = { NULL };
	gsize bz_len = 0;
	struct lx_kernel k;
	struct lx_cpio cpio;
	struct lx_boot boot;
	struct lx_vm vm;
	struct lx_fuse fuse;
	struct lx_virtiofs vfs;
	struct dax_holder holder = { 0 };
	bool use_vmlinux;
	struct dax_stats ds;
	struct dax_fault_stats fs;
	uint64_t upgrades;
	struct run_state st = { .o = o, .fio_rc = -1 };
	struct lx_fio fio = { 0 };
	struct lx_fio_dev fiodev = { .root_fd = -1 };
	struct dax_config cfg = {
		.base_gpa = LX_GPA_DAX, .window_len = WINDOW_LEN, .align_log2 = 12,
		.mapper = DAX_MAPPER_KVM_WINDOW, .slot = LX_SLOT_DAX,
	};
	struct dax_backend be;
	struct drop_mapper dropper = { 0 };
	struct dax_mapper_ops drop_ops;
	char why[512];
	unsigned nmods = 0;
	uint64_t t0, guest_bytes = 0, host_bytes = 0;
	enum lx_run_result rr;
	const char *extra;
	char *cmdline;
	int root_fd = -1, r;

	lx_cpio_init(&cpio);
	memset(&vm, 0, sizeof(vm));
	memset(&fuse, 0, sizeof(fuse));
	memset(&vfs, 0, sizeof(vfs));
	if (pick_kernel(&k, why, sizeof(why)) < 0) {
		mc_skip(res, "%s", why);
		goto out;
	}
	if (!g_file_get_contents(k.image, &bz, &bz_len, NULL)) {
		mc_fail(res, "cannot read %s", k.image);
		goto out;
	}
	if (!prepare_files(o, res, &dir, data, &fio))
		goto out;
	conf = g_strdup_printf("MC_DAXOPT=%s\n", dax_option(k.release));
	r = lx_initramfs_base(&cpio, &k, mods, &nmods, why, sizeof(why));
	if (r >= 0)
		r = lx_cpio_file(&cpio, "etc/mc.conf", 0644, conf, strlen(conf));
	if (r >= 0)
		r = lx_cpio_file(&cpio, "init", 0755, guest_init, sizeof(guest_init) - 1);
	if (r >= 0 && fio.staged)
		r = lx_cpio_file(&cpio, "etc/mc-fio.sh", 0644, lx_fio_guest, strlen(lx_fio_guest));
	if (r >= 0) {
		size_t elf_len = 0;
		uint8_t *elf = elf_wrap(mc_lxmmap_start, (size_t)(mc_lxmmap_end - mc_lxmmap_start),
					&elf_len);

		r = elf ? lx_cpio_file(&cpio, "bin/mcmmap", 0755, elf, elf_len) : -ENOMEM;
		free(elf);
	}
	if (r >= 0)
		r = lx_cpio_finish(&cpio);
	if (r < 0) {
		mc_fail(res, "initramfs for %s: %s", k.release, why);
		goto out;
	}
	mc_note(o, "linux: kernel %s, initramfs %zu bytes with %u modules", k.release, cpio.len, nmods);

	root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		mc_fail(res, "open %s: %s", dir, strerror(errno));
		goto out;
	}

	/* Debug: enter the kernel proper decompressed here instead of through its decompressor. */
	use_vmlinux = g_strcmp0(g_getenv("MEMCHECK_LINUX_BOOT"), "vmlinux") == 0;
	r = lx_vm_open(&vm, o->kvm_fd, RAM_SIZE);
	if (r < 0) {
		mc_fail(res, "VMM: %s", vm.why);
		goto out;
	}
	r = lx_fuse_init(&fuse, root_fd, NULL, WINDOW_LEN);
	if (r < 0) {
		mc_fail(res, "FUSE server: %s", strerror(-r));
		goto out;
	}
	be = (struct dax_backend){ lx_fuse_dax_open, NULL, &fuse };
	cfg.vm_fd = vm.vm_fd;
	if (mc_injected(o, "linux")) {
		const char *mode = g_getenv("MEMCHECK_LINUX_FAULT");

		if (mode && !strcmp(mode, "drop-write")) {
			r = drop_mapper_init(&dropper, vm.vm_fd, LX_GPA_DAX, WINDOW_LEN);
			if (r < 0) {
				mc_fail(res, "fault injection mapper: %s", strerror(-r));
				goto out;
			}
			drop_ops = (struct dax_mapper_ops){ drop_map, drop_unmap, NULL, &dropper };
			cfg.mapper = DAX_MAPPER_CUSTOM;
			cfg.ops = &drop_ops;
		} else {
			fuse.inject_wrong_range = true;   /* default: libdax maps a wrong range */
		}
	}
	holder.cfg = cfg;
	holder.be = be;
	holder.fuse = &fuse;
	r = dax_session_new(&holder.cfg, &holder.be, &holder.s);
	if (r < 0) {
		mc_fail(res, "libdax: dax_session_new: %s", strerror(-r));
		goto out;
	}
	fuse.dax = holder.s;
	if (g_getenv("MEMCHECK_LINUX_TRACE"))
		fuse.trace = stderr;
	r = lx_virtiofs_init(&vfs, &vm, 1, TAG, &fuse, LX_GPA_PCI_MMIO, LX_GPA_DAX, WINDOW_LEN);
	if (r < 0) {
		mc_fail(res, "virtio-fs device: %s", strerror(-r));
		goto out;
	}
	if (fio.staged) {
		r = lx_fio_dev_open(&fiodev, &vm, &fio, why, sizeof(why));
		if (r < 0) {
			mc_fail(res, "%s", why);
			goto out;
		}
		holder.fio = fiodev.dax;
	}
	vm.mmio_fn = dax_exit;
	vm.mmio_data = &holder;
	vm.efault_fn = dax_efault;
	st.dax = &holder;
	vm.echo = o->verbose && g_getenv("MEMCHECK_CONSOLE");
	vm.line_fn = on_line;
	vm.line_data = &st;
	st.fuse = &fuse;
	extra = g_getenv("MEMCHECK_LINUX_CMDLINE");
	cmdline = g_strconcat(CMDLINE, extra ? " " : "", extra ? extra : "", NULL);
	r = lx_boot_load(vm.ram, vm.ram_size, (const uint8_t *)bz, bz_len, cpio.buf, cpio.len,
			 cmdline, &boot);
	g_free(cmdline);
	if (r < 0) {
		mc_fail(res, "boot %s: %s", k.image, boot.why);
		goto out;
	}
	if (use_vmlinux) {
		r = load_vmlinux(&vm, (const uint8_t *)bz, bz_len, &boot, why, sizeof(why));
		if (r < 0) {
			mc_fail(res, "boot %s without its decompressor: %s", k.image, why);
			goto out;
		}
	}
	r = lx_boot_vcpu(o->kvm_fd, vm.vcpu_fd, boot.entry, why, sizeof(why));
	if (r < 0) {
		mc_fail(res, "vCPU: %s", why);
		goto out;
	}
	t0 = mk_now_ns();
	/*
	 * A whole boot and fio: 60 command timeouts (the default 10 s each makes
	 * 10 minutes). Nested under emulation on a loaded 2-core host the run
	 * took up to 330 s; quiet, 80 to 110 s.
	 */
	rr = lx_vm_run(&vm, o->timeout_ns * 60);
	mc_note(o, "linux: run ended after %.1f s (%d) %s; %llu requests, %llu notifies, %llu irqs",
		(double)(mk_now_ns() - t0) / 1e9, rr, vm.why, (unsigned long long)vfs.requests,
		(unsigned long long)vfs.v.n_notify, (unsigned long long)vfs.v.n_irq);
	if (!st.ended) {
		/* The whole story (a panic's oops and trace) for whoever asked for details. */
		if (!vm.echo)
			mc_note(o, "linux: the guest's console, last 8 KiB:\n%s", lx_vm_console_tail(&vm, 8192));
		mc_fail(res, "guest %s: %s; console: %s", k.release,
			vm.why, lx_vm_console_tail(&vm, 200));
		goto out;
	}
	if (st.error[0]) {
		mc_fail(res, "guest %s: %s", k.release, st.error);
		goto out;
	}
	if (vfs.error[0] || fuse.error[0]) {
		mc_fail(res, "guest %s: device: %s%s", k.release, vfs.error, fuse.error);
		goto out;
	}
	if (fiodev.vfs.error[0] || fiodev.fuse.error[0]) {
		mc_fail(res, "guest %s: fio's device: %s%s", k.release, fiodev.vfs.error, fiodev.fuse.error);
		goto out;
	}
	if (holder.err || !holder.s) {
		mc_fail(res, "DAX backend restart: %s", strerror(-holder.err));
		goto out;
	}
	r = dax_session_fault_stats(holder.s, &fs);
	if (r < 0) {
		mc_fail(res, "libdax: dax_session_fault_stats: %s", strerror(-r));
		goto out;
	}
	/* A touch of the window where no slot could be bound read zeros: the guest saw wrong data. */
	if (fs.holes || fs.unbound) {
		mc_fail(res, "libdax: %llu window touches without a slot, %llu slots it could not bind",
			(unsigned long long)fs.holes, (unsigned long long)fs.unbound);
		goto out;
	}
	r = dax_session_stats(holder.s, &ds);
	if (r < 0) {
		mc_fail(res, "libdax: dax_session_stats: %s", strerror(-r));
		goto out;
	}

	/* The directory listing: every file the host made, nothing else yet. */
	{
		g_autofree char *want = NULL;
		GString *w = g_string_new("");

		for (unsigned i = 0; i < G_N_ELEMENTS(files); i++)
			g_string_append_printf(w, "%s%s", i ? " " : "", files[i].name);
		if (fio.staged)
			g_string_append(w, " fio-data");
		want = g_string_free(w, FALSE);
		if (!ls_matches(st.ls, want)) {
			mc_fail(res, "guest %s lists /mnt as '%s', the host made '%s'", k.release, st.ls,
				want);
			goto out;
		}
	}
	/* The guest's reads against the files' bytes. */
	for (unsigned j = 0; j < 3; j++) {
		unsigned i = j == 2 ? F_GONE : j;
		g_autofree char *want = md5_hex(data[i], files[i].size);
		const char *got = guest_sum(&st, files[i].name);

		if (!got || strcmp(got, want)) {
			mc_fail(res, "guest %s read %s (%llu MiB) through DAX: MD5 %s, the host's %s",
				k.release, files[i].name, (unsigned long long)(files[i].size >> 20),
				got ? got : "(none)", want);
			goto out;
		}
		guest_bytes += files[i].size;
		host_bytes += files[i].size;
	}
	/* What the guest wrote, as the host sees it in the files. */
	{
		uint8_t *upd = malloc(files[2].size);
		g_autofree char *want_w1 = md5_hex(data[0], W1_LEN), *want_upd = NULL;
		g_autofree char *got_w1 = NULL, *got_upd = NULL, *before = md5_hex(data[2], files[2].size);
		uint64_t w1_len = 0, upd_len = 0;
		const char *g;

		if (!upd) {
			mc_fail(res, "out of memory");
			goto out;
		}
		memcpy(upd, data[2], files[2].size);
		memcpy(upd, data[1], UPD_LEN);
		want_upd = md5_hex(upd, files[2].size);
		free(upd);
		got_w1 = host_file_md5(dir, "w1", &w1_len);
		got_upd = host_file_md5(dir, "upd", &upd_len);
		g = guest_sum(&st, "upd-before");
		if (!g || strcmp(g, before)) {
			mc_fail(res, "guest read upd as %s, the host wrote %s", g ? g : "(none)", before);
			goto out;
		}
		if (!got_w1 || w1_len != W1_LEN || strcmp(got_w1, want_w1)) {
			mc_fail(res, "w1 (written by the guest with write(2)): host sees %llu bytes, MD5 %s; "
				"expected %llu bytes, %s", (unsigned long long)w1_len,
				got_w1 ? got_w1 : "(unreadable)", (unsigned long long)W1_LEN, want_w1);
			goto out;
		}
		if (!got_upd || upd_len != files[2].size || strcmp(got_upd, want_upd)) {
			mc_fail(res, "upd (overwritten in place through DAX): host sees MD5 %s, expected %s",
				got_upd ? got_upd : "(unreadable)", want_upd);
			goto out;
		}
		g = guest_sum(&st, "upd-again");
		if (!g || strcmp(g, want_upd)) {
			mc_fail(res, "upd read across the DAX backend restart: guest MD5 %s, expected %s",
				g ? g : "(none)", want_upd);
			goto out;
		}
		g = guest_sum(&st, "w1");
		if (!g || strcmp(g, want_w1) || !(g = guest_sum(&st, "upd")) || strcmp(g, want_upd)) {
			mc_fail(res, "the guest's own sums of what it wrote differ from the host's");
			goto out;
		}
		guest_bytes += files[2].size * 3 + 2 * W1_LEN + UPD_LEN;
		host_bytes += W1_LEN + files[2].size;
	}
	/* mcmmap's stores, through MAP_SHARED DAX mappings, must be in the files. */
	for (unsigned i = F_MM; i <= F_MW; i++) {
		g_autofree char *p = g_build_filename(dir, files[i].name, NULL);
		g_autofree char *buf = NULL;
		gsize n = 0;
		uint64_t bad = 0, first = 0;

		if (!g_file_get_contents(p, &buf, &n, NULL) || n != files[i].size) {
			mc_fail(res, "%s after the guest's mmap writes: unreadable or resized (%zu bytes)",
				files[i].name, (size_t)n);
			goto out;
		}
		for (uint64_t off = 0; off < n; off += 8) {
			uint64_t got, want;

			memcpy(&got, buf + off, 8);
			if (off < LXMMAP_LEN)
				want = off ^ LXMMAP_MAGIC;
			else
				memcpy(&want, data[i] + off, 8);
			if (got != want && !bad++)
				first = off;
		}
		if (bad) {
			mc_fail(res, "%s: %llu of %llu words differ from what the guest stored through "
				"mmap (first at offset 0x%llx)", files[i].name, (unsigned long long)bad,
				(unsigned long long)(n / 8), (unsigned long long)first);
			goto out;
		}
		guest_bytes += LXMMAP_LEN;
		host_bytes += n;
	}
	{
		g_autofree char *p = g_build_filename(dir, "gone", NULL);

		if (g_file_test(p, G_FILE_TEST_EXISTS)) {
			mc_fail(res, "the guest removed gone, the host still has it");
			goto out;
		}
	}
	if (!fuse.st.ops[FUSE_SETUPMAPPING]) {
		mc_fail(res, "guest %s mounted (%s) but sent no FUSE_SETUPMAPPING: no DAX", k.release,
			st.mount);
		goto out;
	}
	/* The script makes the kernel reclaim ranges and upgrade read-only ones. */
	upgrades = ds.upgrades + holder.before.upgrades;     /* both sessions' */
	if (!fuse.st.ops[FUSE_REMOVEMAPPING] || !upgrades) {
		mc_fail(res, "guest %s sent %llu REMOVEMAPPING, libdax saw %llu upgrades: the script "
			"should cause both", k.release,
			(unsigned long long)fuse.st.ops[FUSE_REMOVEMAPPING],
			(unsigned long long)upgrades);
		goto out;
	}

	if (!fio_verify(res, dir, k.release, &fio, &st, &guest_bytes, &host_bytes))
		goto out;

	mc_metric(res, "boot_to_end_s", (double)(mk_now_ns() - t0) / 1e9, "s");
	for (unsigned op = 0; op < LX_FUSE_OPS; op++)
		if (fuse.st.ops[op] && lx_fuse_opname(op))
			mc_metric(res, lx_fuse_opname(op), (double)fuse.st.ops[op], "requests");
	if (!fuse.st.ops[FUSE_REMOVEMAPPING])
		mc_metric(res, "removemapping", 0, "requests");
	mc_metric(res, "upgrades", (double)upgrades, "mappings");
	mc_metric(res, "fuse_minor", (double)fuse.st.init_minor, "version");
	mc_metric(res, "fuse_error_replies", (double)fuse.st.errors, "replies");
	if (fuse.st.unknown_ops)
		mc_metric(res, "unknown_opcodes", (double)fuse.st.unknown_ops, "requests");
	mc_metric(res, "setup_writable", (double)fuse.st.setup_write, "requests");
	mc_metric(res, "setup_fh_none", (double)fuse.st.setup_fh_none, "requests");
	mc_metric(res, "setup_unaligned", (double)fuse.st.setup_unaligned, "requests");
	mc_metric(res, "removemapping_entries", (double)fuse.st.remove_entries, "mappings");
	mc_metric(res, "removemapping_max_batch", (double)fuse.st.remove_max_batch, "mappings");
	mc_metric(res, "removemapping_batches", (double)fuse.st.remove_batches_gt1, "requests");
	{
		static const char *const names[LX_FUSE_BATCH_BUCKETS] = {
			"removemapping_batch_1", "removemapping_batch_2_3", "removemapping_batch_4_7",
			"removemapping_batch_8_15", "removemapping_batch_16_31", "removemapping_batch_32_up",
		};

		for (unsigned b = 0; b < LX_FUSE_BATCH_BUCKETS; b++)
			mc_metric(res, names[b], (double)fuse.st.remove_batch[b], "requests");
	}
	mc_metric(res, "setup_len_2m", (double)fuse.st.setup_len_2m, "requests");
	mc_metric(res, "fuse_init_flags", (double)fuse.st.init_flags, "bits");
	mc_metric(res, "fuse_init_flags2", (double)fuse.st.init_flags2, "bits");
	mc_metric(res, "fuse_refused", (double)fuse.st.refused, "requests");
	mc_metric(res, "restore_ms", (double)holder.restore_ns / 1e6, "ms");
	mc_metric(res, "restored_slots", (double)holder.slots, "slots");
	/* Every bind counts in dax_stats.faults, whoever triggered it (userfaultfd, restore, exit). */
	mc_metric(res, "rebound_slots", (double)ds.faults, "slots");
	mc_metric(res, "rebound_on_bare_efault", (double)holder.efault_binds, "slots");
	mc_metric(res, "dax_fault_mode", (double)fs.mode, "enum dax_fault_mode");
	mc_metric(res, "rebound_by_userfaultfd", (double)fs.uffd_binds, "slots");
	mc_metric(res, "rebound_eagerly", (double)fs.eager_binds, "slots");
	mc_metric(res, "memory_fault_exits", (double)vm.n_memfault, "exits");
	mc_metric(res, "rebind_exits", (double)holder.exits_handled, "exits");
	mc_metric(res, "bytes_checked_guest", (double)guest_bytes, "bytes");
	mc_metric(res, "bytes_checked_host", (double)host_bytes, "bytes");
	mc_metric(res, "fuse_write_bytes", (double)fuse.st.bytes_written, "bytes");
	fio_metrics(res, &fio, &fiodev, &st);
	mc_pass(res, "guest %s, -o %s: %llu setupmapping (%llu writable, %llu upgrades), "
		"%llu removemapping (%llu ranges, batches up to %llu); restart: %llu slots in "
		"%.1f ms, %llu rebound; %s; sums match",
		k.release, dax_option(k.release), (unsigned long long)fuse.st.ops[FUSE_SETUPMAPPING],
		(unsigned long long)fuse.st.setup_write, (unsigned long long)upgrades,
		(unsigned long long)fuse.st.ops[FUSE_REMOVEMAPPING],
		(unsigned long long)fuse.st.remove_entries,
		(unsigned long long)fuse.st.remove_max_batch, (unsigned long long)holder.slots,
		(double)holder.restore_ns / 1e6, (unsigned long long)ds.faults,
		fio.staged ? "fio: 8 jobs verified" : "no fio");
out:
	if (vm.console)
		lx_vm_close(&vm);       /* the VM first: the window memslots are in it */
	dax_session_free(holder.s);
	lx_fio_dev_close(&fiodev);
	lx_fio_free(&fio);
	if (dropper.base)
		mk_munmap(dropper.base, dropper.len);
	lx_virtiofs_free(&vfs);
	lx_fuse_free(&fuse);
	if (root_fd >= 0)
		close(root_fd);
	if (dir)
		lx_rm_tree(dir);
	for (unsigned i = 0; i < G_N_ELEMENTS(files); i++)
		free(data[i]);
	lx_cpio_free(&cpio);
}
