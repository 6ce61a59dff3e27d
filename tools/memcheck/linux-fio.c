/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest linux check: fio on the DAX mount (linux-fio.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sys.h"
#include "tools/memcheck/linux.h"
#include "tools/memcheck/linux-fio.h"
#include "tools/memcheck/linux-initramfs.h"

#define BIN         "/fio"            /* where the guest mounts the second device */
#define DATA        "fio-data"        /* the jobs' directory on the check's mount */
#define MAX_REPORT  (4u << 20)        /* fio's JSON for these jobs is ~60 KiB */

/*
 * Four writers at once (two engines, sequential and random), each writing
 * its 24 MiB file and reading it back to check every block's crc32c (the
 * random ones 2 MiB in 16 KiB blocks spread over the file: under nested
 * emulation each block can cost a SETUPMAPPING); then a MAP_SHARED writer
 * and a read(2) reader of what it wrote (verify_only: read and check, write
 * nothing); then the mmap writer's file read through read(2) and random
 * 256 KiB blocks of the first file read through mmap, checked again.
 */
#define G(x) "[" x "]\n"
const struct lx_fio_job lx_fio_jobs[LX_FIO_JOBS] = {
	{ "seq-psync", "seq-psync", G("seq-psync") "filename=seq-psync\nioengine=psync\nrw=write\nbs=256k\n",
	  true, "fio_seq_psync_read_bytes", "fio_seq_psync_write_bytes", "fio_seq_psync_ms" },
	{ "rand-psync", "rand-psync",
	  G("rand-psync") "filename=rand-psync\nioengine=psync\nrw=randwrite\nbs=16k\nio_size=2m\n",
	  true, "fio_rand_psync_read_bytes", "fio_rand_psync_write_bytes", "fio_rand_psync_ms" },
	{ "seq-mmap", "seq-mmap", G("seq-mmap") "filename=seq-mmap\nioengine=mmap\nrw=write\nbs=256k\n",
	  true, "fio_seq_mmap_read_bytes", "fio_seq_mmap_write_bytes", "fio_seq_mmap_ms" },
	{ "rand-mmap", "rand-mmap",
	  G("rand-mmap") "filename=rand-mmap\nioengine=mmap\nrw=randwrite\nbs=16k\nio_size=2m\n",
	  true, "fio_rand_mmap_read_bytes", "fio_rand_mmap_write_bytes", "fio_rand_mmap_ms" },
	{ "shared-mmap-write", "shared",
	  G("shared-mmap-write") "stonewall\nfilename=shared\nioengine=mmap\nrw=write\nbs=64k\ndo_verify=0\n",
	  false, "fio_shared_mmap_write_read_bytes", "fio_shared_mmap_write_write_bytes",
	  "fio_shared_mmap_write_ms" },
	{ "shared-read-check", "shared",
	  G("shared-read-check") "stonewall\nfilename=shared\nioengine=psync\nrw=write\nbs=64k\nverify_only=1\n",
	  true, "fio_shared_read_check_read_bytes", NULL, "fio_shared_read_check_ms" },
	{ "seq-read", "seq-mmap", G("seq-read") "stonewall\nfilename=seq-mmap\nioengine=psync\nrw=read\nbs=256k\n",
	  true, "fio_seq_read_read_bytes", NULL, "fio_seq_read_ms" },
	{ "rand-read-mmap", "seq-psync",
	  G("rand-read-mmap") "filename=seq-psync\nioengine=mmap\nrw=randread\nbs=256k\nio_size=4m\n",
	  true, "fio_rand_read_mmap_read_bytes", NULL, "fio_rand_read_mmap_ms" },
};
#undef G

const char *const lx_fio_files[LX_FIO_FILES] = {
	"seq-psync", "rand-psync", "seq-mmap", "rand-mmap", "shared",
};

static const char fio_global[] =
	"[global]\n"
	"directory=/mnt/" DATA "\n"
	"thread\n"                        /* no SysV shared memory needed */
	"clocksource=clock_gettime\n"     /* no TSC calibration under emulation */
	"size=24m\n"
	"verify=crc32c\n"
	"verify_fatal=1\n"
	"do_verify=1\n";

/* Sourced by the guest's init when the check staged fio (linux.c). */
const char lx_fio_guest[] =
	"mkdir -p " BIN "\n"
	"mount -t virtiofs -o \"$MC_DAXOPT\" " LX_FIO_TAG " " BIN " || say error mount " LX_FIO_TAG "\n"
	"say fio-start\n"
	/* Loading alone first: 60-odd libraries mapped from the mount. The loader
	 * from the mount runs fio from the mount: its code executes from DAX. */
	"say fio-version $(" BIN "/lib/ld.so --library-path " BIN "/lib " BIN "/fio --version)\n"
	BIN "/lib/ld.so --library-path " BIN "/lib " BIN "/fio --output-format=json "
	"--output=/mnt/fio-out.json " BIN "/jobs.fio >/dev/null 2>/mnt/fio-err\n"
	"say fio $?\n"
	"sync; echo 3 > /proc/sys/vm/drop_caches\n"
	"for f in seq-psync rand-psync seq-mmap rand-mmap shared; do\n"
	"	say sum fio/$f $(sum /mnt/" DATA "/$f)\n"
	"done\n"
	"umount " BIN " || say error umount " LX_FIO_TAG "\n";

static int copy_file(const char *from, const char *to, uint64_t *bytes)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	int fd, r;

	if (!g_file_get_contents(from, &data, &len, NULL))
		return -EIO;
	fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (fd < 0)
		return -errno;
	r = (int)mk_pwrite_full(fd, data, len, 0);
	close(fd);
	*bytes += len;
	return r < 0 ? r : 0;
}

/*
 * ldd's lines: "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" for a
 * library, "\t/lib64/ld-linux-x86-64.so.2 (0x...)" for the loader, and
 * "\tlinux-vdso.so.1 (0x...)" for the vDSO (no file). Copies each file
 * under lib/ by its name (the loader as ld.so).
 */
static int stage_libs(const char *fio, const char *libdir, struct lx_fio *f)
{
	const char *argv[] = { "ldd", fio, NULL };
	g_autofree char *out = NULL;
	g_auto(GStrv) lines = NULL;
	size_t len = 0;
	bool loader = false;

	if (!lx_run_capture(argv, &out, &len, f->why, sizeof(f->why)))
		return -EIO;
	lines = g_strsplit(out, "\n", -1);
	for (char **l = lines; *l; l++) {
		g_auto(GStrv) w = g_strsplit_set(g_strstrip(*l), " \t", -1);
		g_autofree char *to = NULL;
		const char *from = NULL, *name = NULL;
		int r;

		if (!w[0] || !*w[0])
			continue;
		if (w[1] && !strcmp(w[1], "=>") && w[2] && w[2][0] == '/') {
			from = w[2];
			name = w[0];
		} else if (w[0][0] == '/') {
			from = w[0];
			name = "ld.so";
			loader = true;
		} else {
			continue;       /* the vDSO */
		}
		if (strchr(name, '/')) {
			snprintf(f->why, sizeof(f->why), "ldd %s: library name '%s'", fio, name);
			return -EINVAL;
		}
		to = g_build_filename(libdir, name, NULL);
		r = copy_file(from, to, &f->staged_bytes);
		if (r < 0) {
			snprintf(f->why, sizeof(f->why), "copy %s: %s", from, strerror(-r));
			return r;
		}
		f->nlibs++;
	}
	if (!loader) {
		snprintf(f->why, sizeof(f->why), "ldd %s names no dynamic loader", fio);
		return -ENOEXEC;
	}
	return 0;
}

static int write_jobs(const char *path)
{
	GString *s = g_string_new(fio_global);
	bool ok;

	for (unsigned i = 0; i < LX_FIO_JOBS; i++)
		g_string_append_printf(s, "\n%s", lx_fio_jobs[i].spec);
	ok = g_file_set_contents(path, s->str, (gssize)s->len, NULL);
	g_string_free(s, TRUE);
	return ok ? 0 : -EIO;
}

int lx_fio_stage(const char *datadir, struct lx_fio *f)
{
	const char *env = g_getenv("MEMCHECK_FIO");
	g_autofree char *fio = env && *env ? g_strdup(env) : g_find_program_in_path("fio");
	g_autofree char *lib = NULL, *bin = NULL, *jobs = NULL;
	g_autofree char *data = g_build_filename(datadir, DATA, NULL);
	const char *vargv[] = { NULL, "--version", NULL };
	g_autofree char *ver = NULL;
	size_t vlen = 0;
	int r;

	memset(f, 0, sizeof(*f));
	if (!fio || access(fio, X_OK) < 0) {
		snprintf(f->why, sizeof(f->why), "no fio here (install Debian's fio)");
		return 1;
	}
	vargv[0] = fio;
	if (lx_run_capture(vargv, &ver, &vlen, f->why, sizeof(f->why)))
		g_strlcpy(f->version, g_strstrip(ver), sizeof(f->version));
	f->bindir = g_build_filename(g_get_tmp_dir(), "memcheck-fio-XXXXXX", NULL);
	if (!g_mkdtemp(f->bindir)) {
		snprintf(f->why, sizeof(f->why), "temporary directory: %s", strerror(errno));
		g_clear_pointer(&f->bindir, g_free);
		return -errno;
	}
	lib = g_build_filename(f->bindir, "lib", NULL);
	bin = g_build_filename(f->bindir, "fio", NULL);
	jobs = g_build_filename(f->bindir, "jobs.fio", NULL);
	if (mkdir(lib, 0755) < 0 || mkdir(data, 0755) < 0) {
		r = -errno;
		snprintf(f->why, sizeof(f->why), "mkdir: %s", strerror(-r));
		return r;
	}
	r = copy_file(fio, bin, &f->staged_bytes);
	if (r < 0) {
		snprintf(f->why, sizeof(f->why), "copy %s: %s", fio, strerror(-r));
		return r;
	}
	r = stage_libs(fio, lib, f);
	if (r < 0)
		return r;
	r = write_jobs(jobs);
	if (r < 0) {
		snprintf(f->why, sizeof(f->why), "write %s", jobs);
		return r;
	}
	f->why[0] = 0;
	f->staged = true;
	return 0;
}

void lx_fio_free(struct lx_fio *f)
{
	if (f->bindir)
		lx_rm_tree(f->bindir);
	g_clear_pointer(&f->bindir, g_free);
}

int lx_fio_dev_open(struct lx_fio_dev *d, struct vmm_machine *m, const struct lx_fio *f,
		    struct vmm_err *e)
{
	struct dax_config cfg = {
		.size = sizeof(cfg),
		.base_gpa = LX_GPA_DAX_FIO, .window_len = LX_FIO_WINDOW, .align_log2 = 12,
		.mapper = DAX_MAPPER_KVM_WINDOW, .memslot = LX_SLOT_DAX_FIO, .vm_fd = m->vm.vm_fd,
	};
	struct dax_backend be = { vmm_fuse_dax_open, NULL, &d->fuse };
	int r;

	memset(d, 0, sizeof(*d));
	d->root_fd = open(f->bindir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->root_fd < 0)
		return vmm_fail(e, -errno, "open %s: %s", f->bindir, strerror(errno));
	r = vmm_fuse_init(&d->fuse, d->root_fd, NULL, LX_FIO_WINDOW);
	if (r == 0)
		r = dax_session_new(&cfg, &be, &d->dax);
	if (r < 0)
		return vmm_fail_sys(e, r, "the fio device's FUSE server or DAX session");
	d->fuse.dax = d->dax;
	r = vmm_virtiofs_init(&d->vfs, &m->vm, &m->pci, LX_PCI_FS_FIO, LX_FIO_TAG, &d->fuse,
			      LX_GPA_PCI_MMIO + 0x4000, LX_GPA_DAX_FIO, LX_FIO_WINDOW);
	return r < 0 ? vmm_fail_sys(e, r, "the fio device") : 0;
}

void lx_fio_dev_close(struct lx_fio_dev *d)
{
	dax_session_free(d->dax);
	vmm_virtiofs_free(&d->vfs);
	vmm_fuse_free(&d->fuse);
	if (d->root_fd >= 0)
		close(d->root_fd);
	memset(d, 0, sizeof(*d));
	d->root_fd = -1;
}

char *lx_fio_stderr_line(const char *datadir)
{
	g_autofree char *p = g_build_filename(datadir, "fio-err", NULL);
	g_autofree char *text = NULL;
	gsize n = 0;
	char *nl;

	if (!g_file_get_contents(p, &text, &n, NULL) || !n)
		return g_strdup("(nothing on stderr)");
	if ((nl = strchr(text, '\n')))
		*nl = 0;
	if (strlen(text) > 160)
		text[160] = 0;
	return g_strescape(text, NULL);
}

static uint64_t member_u64(JsonObject *o, const char *name)
{
	JsonNode *n = json_object_get_member(o, name);

	if (!n || json_node_get_value_type(n) != G_TYPE_INT64 || json_node_get_int(n) < 0)
		return 0;
	return (uint64_t)json_node_get_int(n);
}

static uint64_t dir_bytes(JsonObject *job, const char *dir)
{
	JsonNode *n = json_object_get_member(job, dir);

	if (!n || !JSON_NODE_HOLDS_OBJECT(n))
		return 0;
	return member_u64(json_node_get_object(n), "io_bytes");
}

static int job_index(const char *name)
{
	for (int i = 0; i < LX_FIO_JOBS; i++)
		if (!strcmp(lx_fio_jobs[i].name, name))
			return i;
	return -1;
}

int lx_fio_results(const char *datadir, struct lx_fio *f)
{
	g_autofree char *path = g_build_filename(datadir, "fio-out.json", NULL);
	g_autofree char *text = NULL;
	g_autoptr(JsonParser) p = json_parser_new();
	g_autoptr(GError) err = NULL;
	JsonNode *root, *jobs;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, NULL) || len > MAX_REPORT) {
		snprintf(f->why, sizeof(f->why), "fio's report: %s", len ? "too large" : "missing");
		return -EBADMSG;
	}
	if (!json_parser_load_from_data(p, text, (gssize)len, &err)) {
		snprintf(f->why, sizeof(f->why), "fio's report: %s", err->message);
		return -EBADMSG;
	}
	root = json_parser_get_root(p);
	jobs = root && JSON_NODE_HOLDS_OBJECT(root) ?
	       json_object_get_member(json_node_get_object(root), "jobs") : NULL;
	if (!jobs || !JSON_NODE_HOLDS_ARRAY(jobs)) {
		snprintf(f->why, sizeof(f->why), "fio's report has no jobs");
		return -EBADMSG;
	}
	for (guint i = 0; i < json_array_get_length(json_node_get_array(jobs)); i++) {
		JsonNode *jn = json_array_get_element(json_node_get_array(jobs), i);
		JsonObject *job = JSON_NODE_HOLDS_OBJECT(jn) ? json_node_get_object(jn) : NULL;
		const char *name = job ? json_object_get_string_member_with_default(job, "jobname", "") : "";
		int k = job_index(name);
		struct lx_fio_result *r;

		if (k < 0 || f->res[k].seen) {
			snprintf(f->why, sizeof(f->why), "fio's report: unexpected job '%.40s'", name);
			return -EBADMSG;
		}
		r = &f->res[k];
		r->seen = true;
		r->error = (int)member_u64(job, "error");
		r->read = dir_bytes(job, "read");
		r->write = dir_bytes(job, "write");
		r->ms = member_u64(job, "job_runtime");
		if (lx_fio_jobs[k].verifies)
			f->verified_bytes += r->read;
	}
	for (unsigned k = 0; k < LX_FIO_JOBS; k++)
		if (!f->res[k].seen) {
			snprintf(f->why, sizeof(f->why), "fio's report lacks job %s", lx_fio_jobs[k].name);
			return -EBADMSG;
		}
	return 0;
}
