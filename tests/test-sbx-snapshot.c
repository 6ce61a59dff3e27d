/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libsandbox snapshots: immutability, O(dirty) restore, sharing, import, files. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fsverity.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/sys.h"
#include "sandboxP.h"
#include "tests/test-sbx-util.h"
#include "tests/verityfs.h"

#define PG 4096u

static void pattern(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

/* A region of n pages with a recognizable pattern, and its snapshot. */
static struct sbx_mem *patterned(unsigned n, struct sbx_snapshot **snap)
{
	struct sbx_mem *m;
	uint8_t *buf = g_malloc(n * PG);

	pattern(buf, n * PG, 1);
	g_assert_cmpint(sbx_mem_new((uint64_t)n * PG, &m), ==, 0);
	g_assert_cmpint(sbx_mem_write(m, 0, buf, n * PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, snap), ==, 0);
	g_free(buf);
	return m;
}

static void assert_equals_snapshot(struct sbx_mem *m, struct sbx_snapshot *s)
{
	uint64_t size = sbx_mem_size(m);
	uint8_t *buf = g_malloc(size);

	g_assert_cmpint(sbx_mem_read(m, 0, buf, size), ==, 0);
	g_assert_cmpmem(buf, size, sbx_snapshot_data(s), sbx_snapshot_size(s));
	g_free(buf);
}

static void test_immutable(void)
{
	struct sbx_snapshot *s;
	struct sbx_mem *m = patterned(16, &s);
	uint8_t copy[16 * PG], b = 0;
	void *p;
	int fd = sbx_snapshot_fd(s);

	memcpy(copy, sbx_snapshot_data(s), sizeof(copy));
	g_assert_cmpint(mk_get_seals(fd) & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
			==, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	/* Every later write to the sandbox stays out of the snapshot. */
	g_assert_cmpint(sbx_mem_fill(m, 0, 0xab, 16 * PG), ==, 0);
	g_assert_cmpint(sbx_mem_zero(m), ==, 0);
	g_assert_cmpint(sbx_mem_fill(m, 5 * PG, 0xcd, PG), ==, 0);
	g_assert_cmpmem(sbx_snapshot_data(s), sizeof(copy), copy, sizeof(copy));
	/* And nobody can change it through the fd. */
	g_assert_cmpint(mk_pwrite_full(fd, &b, 1, 0), ==, -EPERM);
	g_assert_cmpint(mk_ftruncate(fd, PG), ==, -EPERM);
	g_assert_cmpint(mk_mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0, &p), ==, -EPERM);
	g_assert_cmpint(mk_add_seals(fd, F_SEAL_FUTURE_WRITE), ==, -EPERM);
	sbx_mem_free(m);
	g_assert_cmpmem(sbx_snapshot_data(s), sizeof(copy), copy, sizeof(copy));
	sbx_snapshot_unref(s);
}

/* s is still whole: its fd is the same sealed memfd, its mapping the same bytes. */
static void assert_alive(struct sbx_snapshot *s, int fd, const struct stat *id, const uint8_t *copy,
			 size_t len)
{
	struct stat st;

	g_assert_cmpint(sbx_snapshot_fd(s), ==, fd);
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	g_assert_cmpuint(st.st_dev, ==, id->st_dev);
	g_assert_cmpuint(st.st_ino, ==, id->st_ino);
	g_assert_cmpmem(sbx_snapshot_data(s), len, copy, len);
}

/* After the last reference went: the fd is closed and the mapping gone. Nothing in
 * between opens a file or maps memory, so neither number can have been reused. */
static void assert_gone(int fd, const void *data, size_t len)
{
	unsigned char vec[4];
	struct stat st;

	g_assert_cmpint(fstat(fd, &st), ==, -1);
	g_assert_cmpint(errno, ==, EBADF);
	g_assert_cmpint(mincore((void *)data, len, vec), ==, -1);
	g_assert_cmpint(errno, ==, ENOMEM);
}

/* One snapshot of 4 pages held by nothing but the caller: its fd, identity, bytes. */
static struct sbx_snapshot *lone(int *fd, struct stat *id, uint8_t *copy)
{
	struct sbx_snapshot *s;
	struct sbx_mem *m = patterned(4, &s);

	sbx_mem_free(m);   /* the region's reference */
	*fd = sbx_snapshot_fd(s);
	g_assert_cmpint(*fd, >=, 0);
	g_assert_cmpint(fstat(*fd, id), ==, 0);
	memcpy(copy, sbx_snapshot_data(s), 4 * PG);
	return s;
}

/* Two more references on a lone snapshot, then three drops through drop[]: the
 * snapshot lives, fd and bytes, until the third. */
static void ref_twice_drop_thrice(void (*const drop[3])(struct sbx_snapshot *))
{
	uint8_t copy[4 * PG];
	struct stat id;
	int fd;
	struct sbx_snapshot *s = lone(&fd, &id, copy);
	const void *data = sbx_snapshot_data(s);

	g_assert_true(sbx_snapshot_ref(s) == s);
	g_assert_true(sbx_snapshot_ref(s) == s);
	for (int i = 0; i < 2; i++) {
		drop[i](s);
		assert_alive(s, fd, &id, copy, sizeof(copy));
	}
	drop[2](s);   /* the last one */
	assert_gone(fd, data, sizeof(copy));
	drop[2](NULL);
}

static void test_ref_unref(void)
{
	static void (*const drop[3])(struct sbx_snapshot *) = {
		sbx_snapshot_unref, sbx_snapshot_unref, sbx_snapshot_unref
	};

	ref_twice_drop_thrice(drop);
	g_assert_null(sbx_snapshot_ref(NULL));
}

static void test_restore_strategies(void)
{
	static const unsigned modes[] = { SBX_RESTORE_AUTO, SBX_RESTORE_COPY, SBX_RESTORE_REMAP,
					  SBX_RESTORE_TRIM };
	const unsigned n = 256;
	struct sbx_snapshot *s;
	struct sbx_mem *m = patterned(n, &s);
	struct sbx_mem_stats st = { .size = sizeof(st) };

	assert_equals_snapshot(m, s);
	for (unsigned k = 0; k < G_N_ELEMENTS(modes); k++) {
		unsigned dirty = 0;
		/* Dirty an assortment: single bytes, page-straddling writes, fills. */
		for (unsigned p = k; p < n; p += 7 + k) {
			g_assert_cmpint(sbx_mem_write_u8(m, (uint64_t)p * PG + 100, 0xee), ==, 0);
			dirty++;
		}
		g_assert_cmpint(sbx_mem_write_u64(m, 10 * PG - 4, UINT64_MAX), ==, 0);
		g_assert_cmpint(sbx_mem_fill(m, 200 * PG + 1, 0x99, 3 * PG), ==, 0);
		g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
		g_assert_cmpuint(st.dirty_pages, >=, dirty);
		int64_t r = sbx_snapshot_restore(m, s, modes[k]);
		if (modes[k] == SBX_RESTORE_REMAP)
			g_assert_cmpint(r, ==, n);
		else
			g_assert_cmpint(r, ==, (int64_t)st.dirty_pages);
		assert_equals_snapshot(m, s);
		g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
		g_assert_cmpuint(st.dirty_pages, ==, 0);
		/* Nothing dirty: restore touches nothing. */
		g_assert_cmpint(sbx_snapshot_restore(m, s, modes[k]),
				==, modes[k] == SBX_RESTORE_REMAP ? (int64_t)n : 0);
	}
	g_assert_cmpint(sbx_mem_stats(m, &st), ==, 0);
	g_assert_cmpuint(st.restores_copy, >=, 2);
	g_assert_cmpuint(st.restores_remap, ==, 2);
	g_assert_cmpuint(st.restores_trim, ==, 2);
	g_assert_cmpint(sbx_snapshot_restore(m, s, 17), ==, -EINVAL);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

static void test_restore_raw_pointer(void)
{
	struct sbx_snapshot *s;
	struct sbx_mem *m = patterned(32, &s);
	uint8_t *p;

	/* Promised marking: copy-back of just the reported page. */
	p = sbx_mem_host_ptr(m, true);
	p[3 * PG] ^= 1;
	g_assert_cmpint(sbx_mem_mark_dirty(m, 3 * PG, 1), ==, 0);
	g_assert_cmpint(sbx_mem_mark_dirty(m, 32 * PG, 1), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 1);
	assert_equals_snapshot(m, s);
	/* No promise: the library cannot know, the next restore is a full remap. */
	p = sbx_mem_host_ptr(m, false);
	p[7 * PG] ^= 1;
	p[31 * PG + 5] ^= 1;
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 32);
	assert_equals_snapshot(m, s);
	/* The pointer is still out there: every later restore stays a full one. */
	p[9 * PG] ^= 1;
	g_assert_cmpint(sbx_snapshot_restore(m, s, SBX_RESTORE_COPY), ==, 32);
	assert_equals_snapshot(m, s);
	g_assert_cmpint(sbx_mem_trim(m), ==, 0);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

static void test_restore_other(void)
{
	struct sbx_snapshot *a, *b, *small;
	struct sbx_mem *m = patterned(8, &a), *m2;

	g_assert_cmpint(sbx_mem_fill(m, 0, 0x3c, 8 * PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m, &b), ==, 0);
	g_assert_cmpint(sbx_mem_new(4 * PG, &m2), ==, 0);
	g_assert_cmpint(sbx_snapshot_take(m2, &small), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, small, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_restore(m, a, 0), ==, 8);    /* other base: remap */
	assert_equals_snapshot(m, a);
	g_assert_cmpint(sbx_mem_write_u8(m, 0, 1), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, a, 0), ==, 1);
	g_assert_cmpint(sbx_snapshot_restore(m, b, 0), ==, 8);
	assert_equals_snapshot(m, b);
	sbx_mem_free(m);
	sbx_mem_free(m2);
	sbx_snapshot_unref(a);
	sbx_snapshot_unref(b);
	sbx_snapshot_unref(small);
}

/* Many sandboxes from one snapshot share its pages; each pays only for what it writes. */
static void test_shared_cow(void)
{
	const unsigned n = 1024, count = 4;
	struct sbx_snapshot *s;
	struct sbx_mem *base = patterned(n, &s), *ms[4];
	struct sbx_mem_stats st = { .size = sizeof(st) };
	uint64_t priv = 0;

	sbx_mem_free(base);
	for (unsigned i = 0; i < count; i++) {
		g_assert_cmpint(sbx_mem_new_from_snapshot(s, &ms[i]), ==, 0);
		assert_equals_snapshot(ms[i], s);       /* read everything: still shared */
		g_assert_cmpint(sbx_mem_fill(ms[i], (uint64_t)i * PG, (uint8_t)i, 2 * PG), ==, 0);
	}
	for (unsigned i = 0; i < count; i++) {
		uint8_t v;
		g_assert_cmpint(sbx_mem_stats(ms[i], &st), ==, 0);
		g_assert_cmpuint(st.private_bytes, ==, 2 * PG);
		g_assert_cmpuint(st.shared_bytes, ==, (uint64_t)(n - 2) * PG);
		priv += st.private_bytes;
		/* Each sees only its own writes. */
		g_assert_cmpint(sbx_mem_read_u8(ms[i], (uint64_t)((i + 1) % count) * PG + 2 * PG - 1, &v), ==, 0);
		g_assert_cmpint(v, ==, ((const uint8_t *)sbx_snapshot_data(s))[((i + 1) % count) * PG + 2 * PG - 1]);
	}
	g_test_message("%u sandboxes of %u KiB from one snapshot: %" G_GUINT64_FORMAT
		       " KiB private, %" G_GUINT64_FORMAT " KiB saved vs private copies",
		       count, n * 4, priv / 1024, ((uint64_t)count * n * PG - priv) / 1024);
	/* Trim after copy-back restore gives the private pages back. */
	g_assert_cmpint(sbx_snapshot_restore(ms[0], s, SBX_RESTORE_COPY), ==, 2);
	g_assert_cmpint(sbx_mem_stats(ms[0], &st), ==, 0);
	g_assert_cmpuint(st.private_bytes, ==, 2 * PG);
	g_assert_cmpint(sbx_mem_write_u8(ms[0], 100 * PG, 7), ==, 0);   /* dirty: must survive */
	g_assert_cmpint(sbx_mem_trim(ms[0]), ==, n - 1);
	g_assert_cmpint(sbx_mem_stats(ms[0], &st), ==, 0);
	g_assert_cmpuint(st.private_bytes, ==, PG);
	{
		uint8_t v;
		g_assert_cmpint(sbx_mem_read_u8(ms[0], 100 * PG, &v), ==, 0);
		g_assert_cmpint(v, ==, 7);
	}
	g_assert_cmpint(sbx_snapshot_restore(ms[0], s, SBX_RESTORE_AUTO), ==, 1);
	assert_equals_snapshot(ms[0], s);
	for (unsigned i = 0; i < count; i++)
		sbx_mem_free(ms[i]);
	sbx_snapshot_unref(s);
}

static int sealed_memfd(size_t size, int seals)
{
	uint8_t *buf = g_malloc(size);
	int fd = mk_memfd_create("t", MFD_ALLOW_SEALING);

	g_assert_cmpint(fd, >=, 0);
	pattern(buf, size, 9);
	g_assert_cmpint(mk_pwrite_full(fd, buf, size, 0), ==, (ssize_t)size);
	if (seals)
		g_assert_cmpint(mk_add_seals(fd, seals), ==, 0);
	g_free(buf);
	return fd;
}

static void test_import(void)
{
	struct sbx_snapshot *s;
	uint8_t b = 0x77;
	int fd;

	/* Sealed memfd: mapped as is. */
	fd = sealed_memfd(4 * PG, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
	g_assert_cmpint(sbx_snapshot_import(fd, 0, &s), ==, 0);
	g_assert_true(sbx_snapshot_is_direct(s));
	g_assert_cmpint(sbx_snapshot_fd(s), !=, fd);
	close(fd);
	g_assert_cmpuint(sbx_snapshot_size(s), ==, 4 * PG);
	sbx_snapshot_unref(s);

	/* Only F_SEAL_FUTURE_WRITE: old writable mappings could still change it -> copied. */
	fd = sealed_memfd(4 * PG, F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
	g_assert_cmpint(sbx_snapshot_import(fd, 0, &s), ==, 0);
	g_assert_false(sbx_snapshot_is_direct(s));
	sbx_snapshot_unref(s);
	close(fd);

	/* Unsealed: copied, and later changes of the source do not show through. */
	fd = sealed_memfd(4 * PG, 0);
	g_assert_cmpint(sbx_snapshot_import(fd, 0, &s), ==, 0);
	g_assert_false(sbx_snapshot_is_direct(s));
	g_assert_cmpint(mk_pwrite_full(fd, &b, 1, 10), ==, 1);
	g_assert_cmpint(((const uint8_t *)sbx_snapshot_data(s))[10], !=, 0x77);
	g_assert_cmpint(mk_get_seals(sbx_snapshot_fd(s)) & F_SEAL_WRITE, ==, F_SEAL_WRITE);
	sbx_snapshot_unref(s);
	/* Sealed but copy forced. */
	g_assert_cmpint(sbx_snapshot_import(fd, SBX_IMPORT_COPY, &s), ==, 0);
	g_assert_false(sbx_snapshot_is_direct(s));
	sbx_snapshot_unref(s);
	g_assert_cmpint(sbx_snapshot_import(fd, 0x80, &s), ==, -EINVAL);
	close(fd);

	/* Unaligned size: copied and padded with zeros. */
	fd = sealed_memfd(PG + 10, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
	g_assert_cmpint(sbx_snapshot_import(fd, 0, &s), ==, 0);
	g_assert_false(sbx_snapshot_is_direct(s));
	g_assert_cmpuint(sbx_snapshot_size(s), ==, 2 * PG);
	g_assert_cmpint(((const uint8_t *)sbx_snapshot_data(s))[PG + 10], ==, 0);
	sbx_snapshot_unref(s);
	close(fd);

	/* Empty files and non-files are refused. */
	fd = mk_memfd_create("empty", 0);
	g_assert_cmpint(sbx_snapshot_import(fd, 0, &s), ==, -EINVAL);
	close(fd);
	{
		int p[2];
		g_assert_cmpint(pipe(p), ==, 0);
		g_assert_cmpint(sbx_snapshot_import(p[0], 0, &s), ==, -EINVAL);
		close(p[0]);
		close(p[1]);
	}
	g_assert_cmpint(sbx_snapshot_import(-1, 0, &s), ==, -EINVAL);
}

/* An fs-verity file is immutable too: mapped directly (ext4 on a loop device). */
static void test_import_verity(void)
{
	struct verityfs v;
	g_autofree char *path = NULL;
	struct sbx_snapshot *s;
	uint8_t buf[4 * PG];
	int fd;

	if (!verityfs_mount(&v))
		return;
	path = g_build_filename(v.mnt, "snap", NULL);
	pattern(buf, sizeof(buf), 5);
	g_assert_true(g_file_set_contents(path, (const char *)buf, sizeof(buf), NULL));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(verityfs_enable(fd), ==, 0);
	g_assert_cmpint(sbx_snapshot_import(fd, 0, &s), ==, 0);
	g_assert_true(sbx_snapshot_is_direct(s));
	g_assert_cmpmem(sbx_snapshot_data(s), sizeof(buf), buf, sizeof(buf));
	sbx_snapshot_unref(s);
	close(fd);
	verityfs_unmount(&v);
}

/* Version-2 header checksum: all 4096 header bytes, its own field as zero. */
static void rewrite_header_checksum(uint8_t *hdr)
{
	uint64_t h;

	memset(hdr + 40, 0, 8);
	h = GUINT64_TO_LE(sbx_hash64(hdr, 4096, 0));
	memcpy(hdr + 40, &h, 8);
}

/* Version 1 (still read): the checksum covers bytes 0..39 only. */
static void make_v1_header(uint8_t *hdr)
{
	uint32_t v = GUINT32_TO_LE(1);
	uint64_t h;

	memcpy(hdr + 8, &v, 4);
	h = GUINT64_TO_LE(sbx_hash64(hdr, 40, 0));
	memcpy(hdr + 40, &h, 8);
}

/* A saved file's layout, read back through the format's own parser. */
static void file_layout(int fd, struct sbx_snapf *f)
{
	uint8_t hdr[4096];

	g_assert_cmpint(mk_pread_full(fd, hdr, sizeof(hdr), 0), ==, 4096);
	g_assert_cmpint(sbx_snapf_parse(hdr, sizeof(hdr), f, "test"), ==, 0);
}

static void test_save_load(void)
{
	struct sbx_snapshot *s, *l = NULL;
	struct sbx_mem *m = patterned(64, &s);
	g_autofree char *dir = g_dir_make_tmp("sbx-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "snap", NULL);
	uint8_t hdr[4096], byte;
	struct sbx_snapf f;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(sbx_snapshot_save(s, fd), ==, 0);
	file_layout(fd, &f);
	g_assert_cmpuint(f.version, ==, 4);
	g_assert_cmpuint(f.chunk, ==, SBX_CHUNK_DEFAULT);
	g_assert_cmpuint(f.size, ==, 64 * PG);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, 0);
	g_assert_cmpuint(sbx_snapshot_size(l), ==, 64 * PG);
	g_assert_cmpmem(sbx_snapshot_data(l), 64 * PG, sbx_snapshot_data(s), 64 * PG);
	g_assert_cmpint(mk_get_seals(sbx_snapshot_fd(l)) & F_SEAL_WRITE, ==, F_SEAL_WRITE);
	/* A loaded snapshot restores like any other. */
	g_assert_cmpint(sbx_mem_fill(m, 0, 0, 64 * PG), ==, 0);
	g_assert_cmpint(sbx_snapshot_restore(m, l, 0), ==, 64);
	assert_equals_snapshot(m, s);
	sbx_snapshot_unref(l);

	/* One flipped data byte. */
	g_assert_cmpint(mk_pread_full(fd, &byte, 1, f.data_off + 12345), ==, 1);
	byte ^= 0x10;
	g_assert_cmpint(mk_pwrite_full(fd, &byte, 1, f.data_off + 12345), ==, 1);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -EBADMSG);
	byte ^= 0x10;
	g_assert_cmpint(mk_pwrite_full(fd, &byte, 1, f.data_off + 12345), ==, 1);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, 0);
	sbx_snapshot_unref(l);

	/* Header fields: magic, a size changed without fixing the checksum, version. */
	g_assert_cmpint(mk_pread_full(fd, hdr, sizeof(hdr), 0), ==, 4096);
	{
		uint8_t bad[4096];
		struct sbx_snapf huge;

		memcpy(bad, hdr, sizeof(bad));
		bad[0] = 'X';
		g_assert_cmpint(mk_pwrite_full(fd, bad, sizeof(bad), 0), ==, 4096);
		g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -EBADMSG);
		memcpy(bad, hdr, sizeof(bad));
		bad[25] ^= 1;
		g_assert_cmpint(mk_pwrite_full(fd, bad, sizeof(bad), 0), ==, 4096);
		g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -EBADMSG);
		memcpy(bad, hdr, sizeof(bad));
		bad[8] = 5;
		rewrite_header_checksum(bad);
		g_assert_cmpint(mk_pwrite_full(fd, bad, sizeof(bad), 0), ==, 4096);
		g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -EPROTONOSUPPORT);
		/* A consistent header claiming a huge size: refused before allocating. */
		g_assert_cmpint(sbx_snapf_layout(1ull << 40, SBX_CHUNK_MIN, f.alg, 4, &huge), ==, 0);
		huge.meta_sum = f.meta_sum;
		sbx_snapf_encode(&huge, bad);
		g_assert_cmpint(mk_pwrite_full(fd, bad, sizeof(bad), 0), ==, 4096);
		g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -ENODATA);
		g_assert_cmpint(mk_pwrite_full(fd, hdr, sizeof(hdr), 0), ==, 4096);
	}
	/* Truncated: data short by a byte, at the data, in the table, then a partial header. */
	l = NULL;
	g_assert_cmpint(mk_ftruncate(fd, f.data_off + 64 * PG - 1), ==, 0);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -ENODATA);
	g_assert_cmpint(mk_ftruncate(fd, f.data_off), ==, 0);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -ENODATA);
	g_assert_cmpint(mk_ftruncate(fd, 4096 + 4), ==, 0);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -ENODATA);
	g_assert_cmpint(mk_ftruncate(fd, 4096), ==, 0);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -ENODATA);
	g_assert_cmpint(mk_ftruncate(fd, 20), ==, 0);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, -ENODATA);
	g_assert_null(l);
	close(fd);
	g_unlink(path);
	g_rmdir(dir);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

/* Save's chunk sizes and checksums, all-zero chunks as holes, bad arguments. */
static void test_save_chunked(void)
{
	static const uint32_t sizes[] = { SBX_CHUNK_MIN, 128u << 10, SBX_CHUNK_DEFAULT, SBX_CHUNK_MAX };
	const unsigned n = 1536;        /* 6 MiB: three 2 MiB chunks, 96 of 64 KiB */
	struct sbx_snapshot *s, *l;
	struct sbx_mem *m = patterned(n, &s);
	int fd = mk_memfd_create("snap", 0);

	g_assert_cmpint(fd, >=, 0);
	/* Zero a stretch of 2 MiB + 64 KiB: whole chunks of every size become holes. */
	g_assert_cmpint(sbx_mem_fill(m, 2u << 20, 0, 33 * 65536), ==, 0);
	sbx_snapshot_unref(s);
	g_assert_cmpint(sbx_snapshot_take(m, &s), ==, 0);
	for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++)
		for (unsigned hash = 0; hash <= 1; hash++) {
			struct sbx_snapf f;
			uint64_t *sums, *zero, nzero = 0;
			struct stat st;

			g_assert_cmpint(sbx_snapshot_save_chunked(s, fd, sizes[i], hash ? SBX_SAVE_HASH64 : 0),
					==, 0);
			g_assert_cmpint(sbx_snapf_read(fd, &f, &sums, &zero, NULL, NULL, "test"), ==, 0);
			g_assert_cmpuint(f.chunk, ==, sizes[i]);
			g_assert_cmpuint(f.alg, ==, hash || !mk_crc32c_hw() ? SBX_CHECKSUM_HASH64
									: SBX_CHECKSUM_CRC32C);
			for (uint64_t k = 0; k < f.nchunks; k++) {
				uint64_t off = k * sizes[i];
				bool z = off >= (2u << 20) && off + sizes[i] <= (2u << 20) + 33 * 65536;

				g_assert_cmpint(sbx_bit(zero, k), ==, z);
				nzero += z;
				if (!z)
					g_assert_cmphex(sums[k], ==, sbx_chunk_sum(f.alg, (const uint8_t *)
									       sbx_snapshot_data(s) + off, sizes[i]));
			}
			g_assert_cmpuint(nzero, ==, 33 * 65536 / sizes[i]);
			/* Holes: the file holds only the non-zero chunks' blocks (memfd: pages). */
			g_assert_cmpint(fstat(fd, &st), ==, 0);
			g_assert_cmpuint((uint64_t)st.st_blocks * 512, <=, f.data_off + n * PG - nzero * sizes[i]);
			g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, 0);
			g_assert_cmpmem(sbx_snapshot_data(l), n * PG, sbx_snapshot_data(s), n * PG);
			sbx_snapshot_unref(l);
			free(sums);
			free(zero);
		}
	g_assert_cmpint(sbx_snapshot_save_chunked(s, fd, 32768, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_save_chunked(s, fd, 4u << 20, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_save_chunked(s, fd, 100000, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_save_chunked(s, fd, 0, 0x10), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_save_chunked(NULL, fd, 0, 0), ==, -EINVAL);
	g_assert_cmpint(sbx_snapshot_save_chunked(s, -1, 0, 0), ==, -EINVAL);
	close(fd);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

/*
 * Corrupted snapshot files, class by class: the file content is set to a
 * corrupted copy of a saved file, and every load must fail with a documented
 * error. Counted, so the TAP log says "N of N refused".
 */
struct corrupt_run {
	int fd;
	unsigned tried, refused;
	unsigned first_loaded;          /* case number of the first accepted one */
};

static void try_corrupt(struct corrupt_run *c, const uint8_t *buf, size_t len)
{
	struct sbx_snapshot *l = NULL;
	int r;

	g_assert_cmpint(mk_ftruncate(c->fd, 0), ==, 0);
	g_assert_cmpint(mk_pwrite_full(c->fd, buf, len, 0), ==, (ssize_t)len);
	r = sbx_snapshot_load(c->fd, &l);
	c->tried++;
	if (r == 0) {
		if (c->first_loaded == UINT_MAX)
			c->first_loaded = c->tried;
		sbx_snapshot_unref(l);
		return;
	}
	g_assert_null(l);
	if (r != -EBADMSG && r != -ENODATA && r != -EPROTONOSUPPORT)
		g_error("case %u: undocumented error %d", c->tried, r);
	c->refused++;
}

static void expect_loads(int fd, const uint8_t *buf, size_t len, const uint8_t *data, size_t dlen)
{
	struct sbx_snapshot *l = NULL;

	g_assert_cmpint(mk_ftruncate(fd, 0), ==, 0);
	g_assert_cmpint(mk_pwrite_full(fd, buf, len, 0), ==, (ssize_t)len);
	g_assert_cmpint(sbx_snapshot_load(fd, &l), ==, 0);
	g_assert_cmpmem(sbx_snapshot_data(l), sbx_snapshot_size(l), data, dlen);
	sbx_snapshot_unref(l);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	v = GUINT64_TO_LE(v);
	memcpy(p, &v, 8);
}

/* Every byte of [0, upto) replaced by 0x00, 0xff and a random other value. */
static void try_byte_values(struct corrupt_run *c, const uint8_t *good, uint8_t *bad, size_t len,
			    size_t upto, GRand *rand)
{
	for (size_t i = 0; i < upto; i++) {
		const uint8_t vals[3] = { 0x00, 0xff, (uint8_t)(good[i] + 1 + g_rand_int_range(rand, 0, 255)) };
		for (unsigned v = 0; v < 3; v++) {
			if (vals[v] == good[i])
				continue;
			memcpy(bad, good, len);
			bad[i] = vals[v];
			try_corrupt(c, bad, len);
		}
	}
}

/* good (len bytes) extended by a zero byte, another byte, a page of them: never a valid file. */
static void try_extended(struct corrupt_run *c, const uint8_t *good, uint8_t *bad, size_t len)
{
	memcpy(bad, good, len);
	bad[len] = 0;
	try_corrupt(c, bad, len + 1);
	bad[len] = 0x5a;
	try_corrupt(c, bad, len + 1);
	memset(bad + len, 0x5a, PG);
	try_corrupt(c, bad, len + PG);
}

/* The header field at off (4 or 8 bytes) set to each of vals, the header checksum made right again. */
static void try_field(struct corrupt_run *c, const uint8_t *good, uint8_t *bad, size_t len, size_t off,
		      unsigned width, const uint64_t *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, good, len);
		if (width == 4) {
			uint32_t v = GUINT32_TO_LE((uint32_t)vals[i]);
			memcpy(bad + off, &v, 4);
		} else {
			put_u64(bad + off, vals[i]);
		}
		rewrite_header_checksum(bad);
		try_corrupt(c, bad, len);
	}
}

/* Each reserved header byte from first on made non-zero, the header checksum made right again. */
static void try_reserved(struct corrupt_run *c, const uint8_t *good, uint8_t *bad, size_t len,
			 size_t first)
{
	for (size_t i = first; i < 4096; i++) {
		memcpy(bad, good, len);
		bad[i] = (uint8_t)(1 + i % 255);
		rewrite_header_checksum(bad);
		try_corrupt(c, bad, len);
	}
}

/*
 * n random corruptions of good: 1 to 16 random bytes overwritten, none in
 * [skip_from, skip_to) (a range whose changes are allowed to load); a try
 * only where some byte really changed.
 */
static void try_random(struct corrupt_run *c, const uint8_t *good, uint8_t *bad, size_t len,
		       unsigned n, GRand *rand, size_t skip_from, size_t skip_to)
{
	for (unsigned i = 0; i < n; i++) {
		bool changed = false;
		memcpy(bad, good, len);
		for (int j = g_rand_int_range(rand, 1, 17); j > 0; j--) {
			size_t at = (size_t)g_rand_int_range(rand, 0, (gint32)len);
			uint8_t v = (uint8_t)g_rand_int(rand);
			if (at >= skip_from && at < skip_to)
				continue;
			changed |= v != good[at];
			bad[at] = v;
		}
		if (changed)
			try_corrupt(c, bad, len);
	}
}

/* A version-2 file (as releases before 0.3 wrote them) of data. */
static void write_v2(int fd, const void *data, size_t size)
{
	uint8_t hdr[4096] = { 0 };
	uint32_t v32;

	memcpy(hdr, "MKSBXSNP", 8);
	v32 = GUINT32_TO_LE(2);
	memcpy(hdr + 8, &v32, 4);
	v32 = GUINT32_TO_LE(4096);
	memcpy(hdr + 12, &v32, 4);
	put_u64(hdr + 16, 4096);
	put_u64(hdr + 24, size);
	put_u64(hdr + 32, sbx_hash64(data, size, 0));
	rewrite_header_checksum(hdr);
	g_assert_cmpint(mk_ftruncate(fd, 0), ==, 0);
	g_assert_cmpint(mk_pwrite_full(fd, hdr, sizeof(hdr), 0), ==, 4096);
	g_assert_cmpint(mk_pwrite_full(fd, data, size, 4096), ==, (ssize_t)size);
}

/* Version 2 files (still loaded): every corruption class is refused. */
static void test_save_load_corrupt(void)
{
	enum { NPG = 2, LEN = 4096 + NPG * PG };
	struct corrupt_run c = { .first_loaded = UINT_MAX };
	struct sbx_snapshot *s;
	struct sbx_mem *m = patterned(NPG, &s);
	static uint8_t good[LEN + PG + 1], bad[LEN + PG + 1];
	GRand *rand = g_rand_new_with_seed(15);
	unsigned per_class[8] = { 0 }, k = 0;

	c.fd = mk_memfd_create("sbx-corrupt", 0);
	g_assert_cmpint(c.fd, >=, 0);
	write_v2(c.fd, sbx_snapshot_data(s), NPG * PG);
	g_assert_cmpint(mk_pread_full(c.fd, good, sizeof(good), 0), ==, LEN);
	g_assert_cmpuint(good[8], ==, 2);
	expect_loads(c.fd, good, LEN, sbx_snapshot_data(s), NPG * PG);

	/* 1. Every bit of every byte, flipped alone (header, reserved, data). */
	for (size_t i = 0; i < LEN; i++)
		for (unsigned b = 0; b < 8; b++) {
			memcpy(bad, good, LEN);
			bad[i] ^= (uint8_t)(1u << b);
			try_corrupt(&c, bad, LEN);
		}
	per_class[k++] = c.tried;
	/* 2. Every byte replaced by 0x00, 0xff and a random other value. */
	try_byte_values(&c, good, bad, LEN, LEN, rand);
	per_class[k++] = c.tried;
	/* 3. Truncated to every shorter length; extended by a byte, a zero byte, a page. */
	for (size_t n = 0; n < LEN; n++)
		try_corrupt(&c, good, n);
	try_extended(&c, good, bad, LEN);
	per_class[k++] = c.tried;
	/*
	 * 4. Consistent headers: a field changed and the header checksum made
	 * right again, so only the field checks can refuse them. Each reserved
	 * byte non-zero; version, sizes, offset and data checksum wrong.
	 */
	try_reserved(&c, good, bad, LEN, 48);
	{
		const uint64_t sizes[] = { 0, PG, 3 * PG, NPG * PG - 1, NPG * PG + 1, 1ull << 40, UINT64_MAX,
					   UINT64_MAX - 4095 };
		const uint64_t versions[] = { 0, 3, 4, 0xffffffffu };
		const uint64_t offsets[] = { 0, 48, 4095, 8192, UINT64_MAX };

		try_field(&c, good, bad, LEN, 24, 8, sizes, G_N_ELEMENTS(sizes));
		try_field(&c, good, bad, LEN, 8, 4, versions, G_N_ELEMENTS(versions));
		try_field(&c, good, bad, LEN, 16, 8, offsets, G_N_ELEMENTS(offsets));       /* data offset */
		try_field(&c, good, bad, LEN, 12, 4, offsets, G_N_ELEMENTS(offsets));       /* header size */
		memcpy(bad, good, LEN);
		bad[32] ^= 0x80;                /* data checksum */
		rewrite_header_checksum(bad);
		try_corrupt(&c, bad, LEN);
		/* A version-2 header checksummed the version-1 way (bytes 0..39 only). */
		memcpy(bad, good, LEN);
		put_u64(bad + 40, sbx_hash64(bad, 40, 0));
		try_corrupt(&c, bad, LEN);
	}
	per_class[k++] = c.tried;
	/* 5. Data pages swapped (each page is intact, the order is not). */
	memcpy(bad, good, 4096);
	memcpy(bad + 4096, good + 4096 + PG, PG);
	memcpy(bad + 4096 + PG, good + 4096, PG);
	try_corrupt(&c, bad, LEN);
	per_class[k++] = c.tried;
	/* 6. 3,000 random corruptions: 1 to 16 random bytes overwritten anywhere. */
	try_random(&c, good, bad, LEN, 3000, rand, 0, 0);
	per_class[k++] = c.tried;
	/* 7. Version 1 files with a corruption a version-1 checksum cannot see. */
	memcpy(bad, good, LEN);
	make_v1_header(bad);
	expect_loads(c.fd, bad, LEN, sbx_snapshot_data(s), NPG * PG);
	for (size_t i = 48; i < 4096; i++) {
		memcpy(bad, good, LEN);
		bad[i] = 0x01;
		make_v1_header(bad);
		try_corrupt(&c, bad, LEN);
	}
	memcpy(bad, good, LEN);
	make_v1_header(bad);
	bad[LEN] = 0;
	try_corrupt(&c, bad, LEN + 1);
	per_class[k++] = c.tried;

	g_test_message("corrupted snapshot files refused: %u of %u (bit flips %u, byte values %u, "
		       "length %u, consistent headers %u, swapped pages %u, random %u, version 1 %u)",
		       c.refused, c.tried, per_class[0], per_class[1] - per_class[0],
		       per_class[2] - per_class[1], per_class[3] - per_class[2],
		       per_class[4] - per_class[3], per_class[5] - per_class[4],
		       per_class[6] - per_class[5]);
	if (c.refused != c.tried)
		g_error("corrupted file case %u loaded (%u of %u refused)", c.first_loaded, c.refused,
			c.tried);
	/* The intact file still loads after all that. */
	expect_loads(c.fd, good, LEN, sbx_snapshot_data(s), NPG * PG);
	close(c.fd);
	g_rand_free(rand);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

/* Version 4: the index's checksum and the header checksum right again after a change in the index. */
static void mend_index(uint8_t *file, const struct sbx_snapf *f)
{
	put_u64(file + 32, sbx_hash64(file + f->idx_off, (size_t)f->idx_len, 0));
	rewrite_header_checksum(file);
}

/*
 * Make the table's checksums right again after a change in the table:
 * version 3 its checksum, version 4 its blocks' in the index and the
 * index's; then the header checksum.
 */
static void mend_table(uint8_t *file, const struct sbx_snapf *f)
{
	if (f->version == 3) {
		put_u64(file + 32, sbx_hash64(file + f->meta_off, (size_t)f->meta_len, 0));
		rewrite_header_checksum(file);
		return;
	}
	for (uint64_t b = 0; b < f->nblocks; b++)
		put_u64(file + f->idx_off + 8 * b,
			sbx_hash64(file + f->meta_off + b * SBX_SNAPF_BLOCK, SBX_SNAPF_BLOCK, 0));
	mend_index(file, f);
}

/* Past the used bytes of the index (version 4) or the table: padding, one bit a byte is tried. */
static bool in_padding(const struct sbx_snapf *f, size_t i)
{
	if (f->version == 4 && i >= f->idx_off + 8 * f->nblocks && i < f->meta_off)
		return true;
	return i >= f->meta_off + 24;
}

/*
 * Versions 3 and 4: a flip anywhere but in the working-set section (a
 * prefetch hint written after the snapshot, checked on its own when a lazy
 * load reads it) is refused; consistent headers, indexes and tables with a
 * field changed are refused by the field checks, the table blocks' and the
 * chunks' checksums.
 */
static void corrupt_chunked(uint32_t version)
{
	enum { NPG = 32 };              /* 128 KiB: two 64 KiB chunks */
	struct corrupt_run c = { .first_loaded = UINT_MAX };
	struct sbx_snapshot *s;
	struct sbx_mem *m = patterned(NPG, &s);
	GRand *rand = g_rand_new_with_seed(33);
	unsigned per_class[8] = { 0 }, k = 0, ignored = 0;
	struct sbx_snapf f;
	uint8_t *good, *bad;
	size_t len, cut;

	c.fd = mk_memfd_create("sbx-corrupt3", 0);
	g_assert_cmpint(c.fd, >=, 0);
	g_assert_cmpint(sbx_snapshot_save_version(s, c.fd, SBX_CHUNK_MIN, 0, version), ==, 0);
	file_layout(c.fd, &f);
	g_assert_cmpuint(f.version, ==, version);
	g_assert_cmpuint(f.nchunks, ==, 2);
	len = (size_t)(f.data_off + NPG * PG);
	good = g_malloc(len + PG + 1);
	bad = g_malloc(len + PG + 1);
	g_assert_cmpint(mk_pread_full(c.fd, good, len + 1, 0), ==, (ssize_t)len);
	expect_loads(c.fd, good, len, sbx_snapshot_data(s), NPG * PG);

	/* 1. Every bit of header, index, table, bitmap and padding; 4,000 data bits; the working set loads. */
	for (size_t i = 0; i < f.ws_off; i++)
		for (unsigned b = 0; b < 8; b++) {
			if (in_padding(&f, i) && b != (i % 8))
				continue;       /* padding: one bit a byte */
			memcpy(bad, good, len);
			bad[i] ^= (uint8_t)(1u << b);
			try_corrupt(&c, bad, len);
		}
	for (unsigned i = 0; i < 4000; i++) {
		size_t at = (size_t)f.data_off + (size_t)g_rand_int_range(rand, 0, NPG * PG);
		memcpy(bad, good, len);
		bad[at] ^= (uint8_t)(1u << g_rand_int_range(rand, 0, 8));
		try_corrupt(&c, bad, len);
	}
	for (size_t i = (size_t)f.ws_off; i < f.data_off; i += 7) {
		memcpy(bad, good, len);
		bad[i] ^= 0x41;
		expect_loads(c.fd, bad, len, sbx_snapshot_data(s), NPG * PG);
		ignored++;
	}
	per_class[k++] = c.tried;
	/* 2. Every byte before the working set replaced by 0x00, 0xff and a random other value. */
	try_byte_values(&c, good, bad, len, (size_t)f.ws_off, rand);
	per_class[k++] = c.tried;
	/* 3. Truncated to every length through the tables, 300 in the data; extended by a byte, a page. */
	for (cut = 0; cut < f.data_off; cut++)
		try_corrupt(&c, good, cut);
	for (unsigned i = 0; i < 300; i++)
		try_corrupt(&c, good, (size_t)f.data_off + (size_t)g_rand_int_range(rand, 0, NPG * PG));
	try_extended(&c, good, bad, len);
	per_class[k++] = c.tried;
	/* 4. Consistent headers: a field changed, the header checksum made right. */
	try_reserved(&c, good, bad, len, version == 4 ? 112 : 96);
	{
		const uint64_t chunks[] = { 0, 4096, 32768, 65535, 131072, 3u << 16, 2u << 20, 4u << 20,
					    UINT32_MAX };
		/* Wrong ones, and the other one (the chunks do not check that way). */
		const uint64_t algs[] = { 0, 3, 0x100, UINT32_MAX,
					  f.alg == SBX_CHECKSUM_CRC32C ? SBX_CHECKSUM_HASH64 : SBX_CHECKSUM_CRC32C };
		const int64_t deltas[] = { -4096, -8, -1, 1, 8, 4096, 1ll << 40 };
		const unsigned fields[] = { 16, 24, 56, 64, 72, 80, 88, 96, 104 };
		/* A version-2 reading of the header, and one as the other of 3 and 4. */
		const uint64_t other[] = { 2, version == 4 ? 3 : 4 };

		try_field(&c, good, bad, len, 48, 4, chunks, G_N_ELEMENTS(chunks));
		try_field(&c, good, bad, len, 52, 4, algs, G_N_ELEMENTS(algs));
		for (unsigned i = 0; i < G_N_ELEMENTS(fields) - (version == 4 ? 0 : 2); i++) {
			uint64_t v, vals[G_N_ELEMENTS(deltas)];

			memcpy(&v, good + fields[i], 8);
			for (unsigned d = 0; d < G_N_ELEMENTS(deltas); d++)
				vals[d] = GUINT64_FROM_LE(v) + (uint64_t)deltas[d];
			try_field(&c, good, bad, len, fields[i], 8, vals, G_N_ELEMENTS(vals));
		}
		try_field(&c, good, bad, len, 8, 4, other, G_N_ELEMENTS(other));
	}
	per_class[k++] = c.tried;
	/* 5. Consistent tables: a field changed, table and header checksums made right. */
	for (unsigned i = 0; i < 2; i++) {
		memcpy(bad, good, len);
		bad[f.meta_off + 8 * i] ^= 0x01;                /* a chunk checksum */
		mend_table(bad, &f);
		try_corrupt(&c, bad, len);
		memcpy(bad, good, len);
		bad[f.meta_off + 16] |= (uint8_t)(1u << i);     /* zero bit, its checksum kept */
		mend_table(bad, &f);
		try_corrupt(&c, bad, len);
		memcpy(bad, good, len);
		bad[f.meta_off + 8 * i + 6] = 0x80;             /* a CRC-32C of 64 bits / another hash */
		mend_table(bad, &f);
		try_corrupt(&c, bad, len);
	}
	memcpy(bad, good, len);
	bad[f.meta_off + 16] |= 0x04;                           /* a bit past the last chunk */
	mend_table(bad, &f);
	try_corrupt(&c, bad, len);
	for (size_t i = (size_t)f.meta_off + 24; i < f.ws_off; i += 97) {
		memcpy(bad, good, len);
		bad[i] = 1;                                     /* padding */
		mend_table(bad, &f);
		try_corrupt(&c, bad, len);
	}
	for (size_t i = (size_t)f.idx_off; version == 4 && i < f.meta_off; i += i < f.idx_off + 8 ? 1 : 89) {
		memcpy(bad, good, len);
		bad[i] ^= 0x04;                                 /* the index, its checksum made right */
		mend_index(bad, &f);
		try_corrupt(&c, bad, len);
	}
	per_class[k++] = c.tried;
	/* 6. The two chunks swapped (each intact, the order not). */
	memcpy(bad, good, (size_t)f.data_off);
	memcpy(bad + f.data_off, good + f.data_off + 65536, 65536);
	memcpy(bad + f.data_off + 65536, good + f.data_off, 65536);
	try_corrupt(&c, bad, len);
	per_class[k++] = c.tried;
	/* 7. 3,000 random corruptions: 1 to 16 random bytes outside the working set. */
	try_random(&c, good, bad, len, 3000, rand, f.ws_off, f.data_off);
	per_class[k++] = c.tried;
	g_test_message("corrupted version-%u files refused: %u of %u (bit flips %u, byte values %u, "
		       "length %u, consistent headers %u, consistent tables %u, swapped chunks %u, "
		       "random %u); %u changes in the working-set section loaded the right bytes",
		       version, c.refused, c.tried, per_class[0], per_class[1] - per_class[0],
		       per_class[2] - per_class[1], per_class[3] - per_class[2],
		       per_class[4] - per_class[3], per_class[5] - per_class[4],
		       per_class[6] - per_class[5], ignored);
	if (c.refused != c.tried)
		g_error("corrupted file case %u loaded (%u of %u refused)", c.first_loaded, c.refused,
			c.tried);
	expect_loads(c.fd, good, len, sbx_snapshot_data(s), NPG * PG);
	close(c.fd);
	g_free(good);
	g_free(bad);
	g_rand_free(rand);
	sbx_mem_free(m);
	sbx_snapshot_unref(s);
}

static void test_save_load_corrupt_v3(void)
{
	corrupt_chunked(3);
}

static void test_save_load_corrupt_v4(void)
{
	corrupt_chunked(4);
}

/*
 * Each allocation of taking, importing, loading a snapshot and of a region
 * made from one failed in turn: -ENOMEM, the region as it was, no fd left.
 */
static void test_alloc_failures(void)
{
	struct sbx_snapshot *base, *s = NULL, *s2 = NULL;
	struct sbx_mem *m, *m2 = NULL;
	struct sbx_mem_image im;
	unsigned fds;
	long fails;
	int r, fd, file;

	m = patterned(8, &base);
	g_assert_cmpint(sbx_mem_write_u32(m, 3 * PG + 8, 0xdeadbeef), ==, 0);
	sbx_mem_image_take(m, &im);
	fds = mk_test_open_fds();
	fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_take(m, &s), {
		g_assert_null(s);
		sbx_mem_image_check(m, &im);
		g_assert_cmpuint(mk_test_open_fds(), ==, fds);
	});
	g_assert_cmpint(fails, ==, 1);
	assert_equals_snapshot(m, s);
	sbx_mem_image_free(&im);

	fails = MK_FAIL_EACH_ALLOC(r, sbx_mem_new_from_snapshot(s, &m2), {
		g_assert_null(m2);
		g_assert_cmpuint(mk_test_open_fds(), ==, fds + 1);
	});
	g_assert_cmpint(fails, ==, 2);
	assert_equals_snapshot(m2, s);
	sbx_mem_free(m2);

	/* Imported as is (sealed), and copied. */
	fd = sealed_memfd(4 * PG, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
	fds = mk_test_open_fds();
	for (unsigned copy = 0; copy <= 1; copy++) {
		fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_import(fd, copy ? SBX_IMPORT_COPY : 0, &s2), {
			g_assert_null(s2);
			g_assert_cmpuint(mk_test_open_fds(), ==, fds);
		});
		g_assert_cmpint(fails, ==, 1);
		g_assert_true(sbx_snapshot_is_direct(s2) == !copy);
		sbx_snapshot_unref(s2);
		s2 = NULL;
	}
	close(fd);

	/* Saved to a file: a failed save leaves the file as it was (an older save here). */
	file = mk_memfd_create("snapfile", 0);
	g_assert_cmpint(file, >=, 0);
	g_assert_cmpint(sbx_snapshot_save_chunked(base, file, SBX_CHUNK_MIN, SBX_SAVE_HASH64), ==, 0);
	{
		struct stat before, after;
		uint8_t *old = g_malloc(64 << 10), *now = g_malloc(64 << 10);

		g_assert_cmpint(fstat(file, &before), ==, 0);
		g_assert_cmpint(mk_pread_full(file, old, 64 << 10, 0), ==, before.st_size);
		fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_save(s, file), {
			g_assert_cmpint(fstat(file, &after), ==, 0);
			g_assert_cmpint(after.st_size, ==, before.st_size);
			g_assert_cmpint(mk_pread_full(file, now, 64 << 10, 0), ==, before.st_size);
			g_assert_cmpmem(now, before.st_size, old, before.st_size);
		});
		g_assert_cmpint(fails, ==, 5);  /* checksums, zero bitmap, table, index, working set */
		g_free(old);
		g_free(now);
	}
	/* Loaded from it. */
	fds = mk_test_open_fds();
	fails = MK_FAIL_EACH_ALLOC(r, sbx_snapshot_load(file, &s2), {
		g_assert_null(s2);
		g_assert_cmpuint(mk_test_open_fds(), ==, fds);
	});
	/* The table's bytes, checksums, zero bitmap, the index; the snapshot. */
	g_assert_cmpint(fails, ==, 5);
	g_assert_cmpmem(sbx_snapshot_data(s2), sbx_snapshot_size(s2),
			sbx_snapshot_data(s), sbx_snapshot_size(s));
	close(file);
	sbx_snapshot_unref(s2);
	sbx_snapshot_unref(s);
	sbx_snapshot_unref(base);
	sbx_mem_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sbx/snapshot/immutable", test_immutable);
	g_test_add_func("/sbx/snapshot/ref-unref", test_ref_unref);
	g_test_add_func("/sbx/snapshot/restore-strategies", test_restore_strategies);
	g_test_add_func("/sbx/snapshot/restore-raw-pointer", test_restore_raw_pointer);
	g_test_add_func("/sbx/snapshot/restore-other", test_restore_other);
	g_test_add_func("/sbx/snapshot/shared-cow", test_shared_cow);
	g_test_add_func("/sbx/snapshot/import", test_import);
	verityfs_add_func("/sbx/snapshot/import-verity", test_import_verity);
	g_test_add_func("/sbx/snapshot/save-load", test_save_load);
	g_test_add_func("/sbx/snapshot/save-chunked", test_save_chunked);
	g_test_add_func("/sbx/snapshot/save-load-corrupt", test_save_load_corrupt);
	g_test_add_func("/sbx/snapshot/save-load-corrupt-v3", test_save_load_corrupt_v3);
	g_test_add_func("/sbx/snapshot/save-load-corrupt-v4", test_save_load_corrupt_v4);
	g_test_add_func("/sbx/snapshot/alloc-failures", test_alloc_failures);
	return g_test_run();
}
