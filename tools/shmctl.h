/* SPDX-License-Identifier: GPL-2.0-or-later */
/* shmctl internals shared between its source files. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Who holds which pool file open, found as util-linux's lsfd finds open
 * files: /proc/PID/fd of every process we may inspect (shmctl-procs.c).
 * Only the files that matter are kept: memfds named "memkit-shm:..."
 * (memfd pools' roots and chunks) and files named "memkit-shm.*" in a
 * directory (named pools').
 */
struct shm_holder {
	int pid;
	int fd;                 /* its lowest fd on the file */
	char *comm;             /* /proc/PID/comm, as the kernel has it */
};

struct shm_held {
	dev_t dev;
	ino_t ino;
	uid_t uid;
	gid_t gid;
	uint64_t bytes;         /* allocated (st_blocks) */
	char *memfd;            /* memfd name after "memkit-shm:" (up to a blank), NULL for a named file */
	GArray *holders;        /* struct shm_holder, by pid */
};

struct shm_procs {
	GHashTable *by_file;    /* dev and inode -> struct shm_held */
	GPtrArray *memfds;      /* the struct shm_held that are memfds, in /proc order */
	unsigned denied;        /* processes whose open files we may not read */
};

/* Look at every process but this one; never fails (what it cannot read is counted). */
void shm_procs_scan(struct shm_procs *ps);
void shm_procs_free(struct shm_procs *ps);
/* The held file with that identity, or NULL. */
const struct shm_held *shm_procs_find(const struct shm_procs *ps, dev_t dev, ino_t ino);

/*
 * Open the file h through one of its holders' /proc/PID/fd/FD (read-only,
 * or read-write), checked to be the same file (device and inode): the fd,
 * or -errno of the last try (-ESTALE: that fd now holds another file).
 */
int shm_held_open(const struct shm_held *h, bool rw);

/* Add the holders of src to dst (struct shm_holder arrays, by pid; comm shared, not copied). */
void shm_holders_merge(GArray *dst, const GArray *src);
