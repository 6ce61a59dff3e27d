/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: a real file workload written by others on the
 * DAX mount. The host's fio (Debian's, with every shared library it loads)
 * is copied into a directory that a second virtio-fs device (tag
 * "memkit-fio", a 256 MiB window of its own, also served by libdax) passes
 * through; the guest mounts it with DAX and runs fio from there with the
 * dynamic loader it was linked with, so fio's code executes from DAX
 * mappings. Its jobs run on the check's DAX mount (the 16 MiB window) on
 * files larger than that window: psync and mmap engines, sequential and
 * random, writes verified with crc32c (verify_fatal), a MAP_SHARED writer
 * checked by a read(2) reader. fio's exit status and its JSON report
 * decide; the guest then sums each data file through the mount and the
 * host compares with its own sums of the files it served.
 *
 * Why two devices: the loader touches some 80 distinct 2 MiB ranges of
 * fio's 60-odd libraries (85 MB) while it relocates them; in the check's
 * 8-range window that is a reclaim for nearly every page it touches
 * (127,000 FUSE requests in 300 s under nested emulation, and fio never
 * started). The libraries get a window that holds them; the data jobs keep
 * the small one, where they make the kernel reclaim.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dax.h"
#include "vmm/fuse-server.h"
#include "vmm/machine.h"
#include "vmm/virtio-fs.h"

#define LX_FIO_TAG    "memkit-fio"
#define LX_FIO_WINDOW (256ull << 20)

/* The jobs, in the order of the job file (stonewalls make the groups). */
struct lx_fio_job {
	const char *name;
	const char *file;        /* data file under fio/data */
	const char *spec;        /* job file section body */
	bool verifies;           /* fio checks crc32c of what it reads */
	const char *m_read, *m_write, *m_ms;   /* metric names */
};

#define LX_FIO_JOBS 8
extern const struct lx_fio_job lx_fio_jobs[LX_FIO_JOBS];
/* The data files the jobs leave (each larger than the window). */
#define LX_FIO_FILES 5
extern const char *const lx_fio_files[LX_FIO_FILES];
#define LX_FIO_FILE_SIZE (24ull << 20)

struct lx_fio_result {
	bool seen;
	int error;               /* fio's per-job error (errno), 0 */
	uint64_t read, write;    /* bytes */
	uint64_t ms;             /* job run time */
};

/* The second virtio-fs device: fio's directory, read-only use, DAX. */
struct lx_fio_dev {
	int root_fd;
	struct vmm_fuse fuse;
	struct vmm_virtiofs vfs;
	struct dax_session *dax;
};

struct lx_fio {
	bool staged;
	char *bindir;            /* fio, its loader and libraries, the job file (g_free) */
	char why[256];           /* not staged, or results unusable: why */
	char version[32];        /* "fio-3.33" */
	unsigned nlibs;
	uint64_t staged_bytes;   /* fio, its loader and libraries */
	struct lx_fio_result res[LX_FIO_JOBS];
	uint64_t verified_bytes; /* read and crc32c-checked by fio in the guest */
};

/*
 * Copy fio ($MEMCHECK_FIO, else fio in PATH) with its loader and libraries
 * into a new temporary directory (f->bindir) with the job file, and make
 * datadir/fio-data for its files. 0 staged; 1 no fio here (why says so,
 * the check runs without it); -errno on failure (why).
 */
int lx_fio_stage(const char *datadir, struct lx_fio *f);
/* Remove f->bindir and free f's memory. */
void lx_fio_free(struct lx_fio *f);
/*
 * The second virtio-fs device on m's PCI slot LX_PCI_FS_FIO, passing
 * f->bindir through, its window a libdax session at LX_GPA_DAX_FIO. 0 or
 * -errno (e). Close after the machine (its memslot is in the VM).
 */
int lx_fio_dev_open(struct lx_fio_dev *d, struct vmm_machine *m, const struct lx_fio *f,
		    struct vmm_err *e);
void lx_fio_dev_close(struct lx_fio_dev *d);
/* The guest script's fio part (a shell fragment using say and sum). */
extern const char lx_fio_guest[];
/*
 * Read fio's JSON report (datadir/fio-out.json, written by the guest:
 * parsed as hostile input) into f. 0, or -errno with why.
 */
int lx_fio_results(const char *datadir, struct lx_fio *f);
/* The first line of fio's stderr in the guest (datadir/fio-err), escaped (g_free). */
char *lx_fio_stderr_line(const char *datadir);
