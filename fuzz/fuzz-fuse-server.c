/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: vmm/'s passthrough FUSE server (vmm/fuse-server.c,
 * memcheck-guest's linux check), one guest request per input, over a real
 * temporary directory whose state carries over between inputs (nodes and
 * open files found by earlier inputs are there for later ones).
 *
 * Input: [mode][request bytes]. Mode bit 0 mends the header (len = the
 * bytes given, no extensions) so that mutations get past the length check
 * to the arguments and names; bits 1-3 pick the reply buffer's size. The
 * request is in a buffer of exactly its size and the reply buffer is
 * followed by guard bytes (poisoned under ASan): the server must read
 * only the one and write only the other, and every reply must be well
 * formed (its length what was returned, an error reply header-only).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/fuse.h>

#include "vmm/fuse-server.h"
#include "tests/guard.h"


#define RESTART_EVERY 1000      /* inputs before a fresh server and directory */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
const char *mk_fuzz_summary(void);
int mk_fuzz_reached(void);

/* Reply capacities: none, less than a header, a header, each reply size, plenty. */
static const size_t caps[8] = {
	0, 8, sizeof(struct fuse_out_header), sizeof(struct fuse_out_header) + 8,
	sizeof(struct fuse_out_header) + sizeof(struct fuse_attr_out),
	sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out),
	sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out),
	4096 + sizeof(struct fuse_out_header),
};

static char root[] = "/tmp/fuzz-fuse-server-XXXXXX";
static int root_fd = -1;
static struct vmm_fuse fuse;
static unsigned long inputs, handled_ok;
static uint64_t refused;        /* over every server so far */
static char summary[128];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	return ftw->level ? remove(path) : 0;
}

static void wipe(void)
{
	if (root_fd >= 0) {
		refused += fuse.st.refused;
		vmm_fuse_free(&fuse);
		close(root_fd);
		root_fd = -1;
	}
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void at_exit(void)
{
	wipe();
	rmdir(root);
}

/* A fresh server over a directory holding a file "a" and a directory "d". */
static void restart(void)
{
	static bool made;
	int fd;

	if (!made) {
		if (!mkdtemp(root))
			abort();
		made = true;
		atexit(at_exit);
	}
	wipe();
	chmod(root, 0755);
	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fd = openat(root_fd, "a", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (root_fd < 0 || fd < 0 || write(fd, "abcdefgh", 8) != 8 || mkdirat(root_fd, "d", 0755) < 0)
		abort();
	close(fd);
	if (vmm_fuse_init(&fuse, root_fd, NULL, 0) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuse_out_header oh;
	struct fuse_in_header ih;
	size_t len, cap, n;
	uint8_t *in, *out;

	if (size < 1)
		return 0;
	if (root_fd < 0 || inputs % RESTART_EVERY == 0)
		restart();
	inputs++;
	len = size - 1;
	cap = caps[(data[0] >> 1) & 7];
	in = malloc(len ? len : 1);
	out = mk_guard_alloc(cap);
	if (!in || !out)
		abort();
	memcpy(in, data + 1, len);
	if ((data[0] & 1) && len >= sizeof(ih)) {
		memcpy(&ih, in, sizeof(ih));
		ih.len = (uint32_t)len;
		ih.total_extlen = 0;
		memcpy(in, &ih, sizeof(ih));
	}
	n = vmm_fuse_handle(&fuse, in, len, out, cap);
	if (n > cap || (n && (n < sizeof(oh) || len < sizeof(ih))))
		abort();
	if (n) {
		memcpy(&oh, out, sizeof(oh));
		memcpy(&ih, in, sizeof(ih));
		if (oh.len != n || oh.unique != ih.unique || oh.error > 0 || oh.error < -4095 ||
		    (oh.error && n != sizeof(oh)))
			abort();
		if (!oh.error && ih.opcode != FUSE_INIT)
			handled_ok++;
	}
	if (!mk_guard_free(out, cap))
		abort();
	free(in);
	return 0;
}

/* ---- seeds: well-formed requests (mode 1: mended header, reply room 4 KiB) ---- */

static size_t put_req(uint8_t *buf, size_t cap, uint32_t op, uint64_t nodeid, const void *arg,
		      size_t alen, const char *name, const void *tail, size_t tlen)
{
	struct fuse_in_header ih = { .opcode = op, .unique = op, .nodeid = nodeid };
	size_t nlen = name ? strlen(name) + 1 : 0, n = 1 + sizeof(ih) + alen + nlen + tlen;

	if (n > cap)
		return 0;
	ih.len = (uint32_t)(n - 1);
	buf[0] = 1 | 7 << 1;
	memcpy(buf + 1, &ih, sizeof(ih));
	if (alen)
		memcpy(buf + 1 + sizeof(ih), arg, alen);
	if (name)
		memcpy(buf + 1 + sizeof(ih) + alen, name, nlen);
	if (tlen)
		memcpy(buf + 1 + sizeof(ih) + alen + nlen, tail, tlen);
	return n;
}

size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	struct fuse_init_in ii = { .major = 7, .minor = 38, .flags = FUSE_MAP_ALIGNMENT };
	struct fuse_create_in ci = { .flags = O_RDWR, .mode = 0644 };
	struct fuse_mkdir_in mi = { .mode = 0755 };
	struct fuse_open_in oi = { .flags = O_RDWR };
	struct fuse_read_in ri = { .fh = 1, .size = 4096 };
	struct fuse_write_in wi = { .fh = 1, .size = 5 };
	struct fuse_setattr_in sa = { .valid = FATTR_SIZE | FATTR_MODE, .size = 3, .mode = 0600 };
	struct fuse_getattr_in gi = { 0 };
	struct fuse_release_in rl = { .fh = 1 };
	struct fuse_fsync_in fs = { .fh = 1 };
	struct fuse_forget_in fo = { .nlookup = 1 };
	struct { struct fuse_batch_forget_in in; struct fuse_forget_one one; } bf = { { 1, 0 }, { 2, 1 } };
	struct fuse_setupmapping_in su = { .fh = UINT64_MAX, .len = 2 << 20, .flags = 1 };
	struct { struct fuse_removemapping_in in; struct fuse_removemapping_one one; } rm =
		{ { 1 }, { 0, 2 << 20 } };

	switch (i) {
	case 0: return put_req(buf, cap, FUSE_INIT, 0, &ii, sizeof(ii), NULL, NULL, 0);
	case 1: return put_req(buf, cap, FUSE_LOOKUP, 1, NULL, 0, "a", NULL, 0);
	case 2: return put_req(buf, cap, FUSE_CREATE, 1, &ci, sizeof(ci), "c", NULL, 0);
	case 3: return put_req(buf, cap, FUSE_MKDIR, 1, &mi, sizeof(mi), "m", NULL, 0);
	case 4: return put_req(buf, cap, FUSE_OPEN, 2, &oi, sizeof(oi), NULL, NULL, 0);
	case 5: return put_req(buf, cap, FUSE_WRITE, 2, &wi, sizeof(wi), NULL, "hello", 5);
	case 6: return put_req(buf, cap, FUSE_READ, 2, &ri, sizeof(ri), NULL, NULL, 0);
	case 7: return put_req(buf, cap, FUSE_OPENDIR, 1, &oi, sizeof(oi), NULL, NULL, 0);
	case 8: return put_req(buf, cap, FUSE_READDIR, 1, &ri, sizeof(ri), NULL, NULL, 0);
	case 9: return put_req(buf, cap, FUSE_SETATTR, 2, &sa, sizeof(sa), NULL, NULL, 0);
	case 10: return put_req(buf, cap, FUSE_GETATTR, 2, &gi, sizeof(gi), NULL, NULL, 0);
	case 11: return put_req(buf, cap, FUSE_FSYNC, 2, &fs, sizeof(fs), NULL, NULL, 0);
	case 12: return put_req(buf, cap, FUSE_RELEASE, 2, &rl, sizeof(rl), NULL, NULL, 0);
	case 13: return put_req(buf, cap, FUSE_UNLINK, 1, NULL, 0, "c", NULL, 0);
	case 14: return put_req(buf, cap, FUSE_RMDIR, 1, NULL, 0, "m", NULL, 0);
	case 15: return put_req(buf, cap, FUSE_STATFS, 1, NULL, 0, NULL, NULL, 0);
	case 16: return put_req(buf, cap, FUSE_FORGET, 2, &fo, sizeof(fo), NULL, NULL, 0);
	case 17: return put_req(buf, cap, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, NULL, 0);
	case 18: return put_req(buf, cap, FUSE_SETUPMAPPING, 2, &su, sizeof(su), NULL, NULL, 0);
	case 19: return put_req(buf, cap, FUSE_REMOVEMAPPING, 0, &rm, sizeof(rm), NULL, NULL, 0);
	case 20: return put_req(buf, cap, FUSE_DESTROY, 0, NULL, 0, NULL, NULL, 0);
	default: return 0;
	}
}

const char *mk_fuzz_summary(void)
{
	snprintf(summary, sizeof(summary), "%lu requests handled without error, %llu refused as malformed",
		 handled_ok, (unsigned long long)(refused + fuse.st.refused));
	return summary;
}

/* The mended seeds must keep reaching the handlers, not only the checks in front of them. */
int mk_fuzz_reached(void)
{
	return handled_ok > 0;
}
