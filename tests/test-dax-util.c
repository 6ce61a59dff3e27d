/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "test-dax-util.h"

static int rec_map(void *data, uint64_t gpa, uint64_t len, int fd, uint64_t foffset,
		   uint32_t prot, int replace, void **hva)
{
	struct rec_mapper *m = data;
	struct rec_call c = { 'M', gpa, len, foffset, prot, replace };
	int r = 0;

	g_assert_cmpint(fd, >=, 0);
	g_mutex_lock(&m->lock);
	if (m->fail_map)
		r = -m->fail_map;
	else {
		g_array_append_val(m->calls, c);
		*hva = (void *)m->next_hva;
		m->next_hva += len;
	}
	g_mutex_unlock(&m->lock);
	return r;
}

static int rec_unmap(void *data, uint64_t gpa, uint64_t len, void *hva)
{
	struct rec_mapper *m = data;
	struct rec_call c = { 'U', gpa, len, 0, 0, 0 };
	int r = 0;

	g_mutex_lock(&m->lock);
	if (m->fail_unmap)
		r = -m->fail_unmap;
	else
		g_array_append_val(m->calls, c);
	g_mutex_unlock(&m->lock);
	return r;
}

const struct dax_mapper_ops rec_ops_template = { rec_map, rec_unmap, NULL, NULL };

void rec_init(struct rec_mapper *m)
{
	memset(m, 0, sizeof(*m));
	g_mutex_init(&m->lock);
	m->calls = g_array_new(FALSE, TRUE, sizeof(struct rec_call));
	m->next_hva = 0x4000000000ull;
}

void rec_clear(struct rec_mapper *m)
{
	g_array_unref(m->calls);
	g_mutex_clear(&m->lock);
}

guint rec_count(struct rec_mapper *m)
{
	guint n;

	g_mutex_lock(&m->lock);
	n = m->calls->len;
	g_mutex_unlock(&m->lock);
	return n;
}

struct rec_call rec_get(struct rec_mapper *m, guint i)
{
	struct rec_call c;

	g_mutex_lock(&m->lock);
	g_assert_cmpuint(i, <, m->calls->len);
	c = g_array_index(m->calls, struct rec_call, i);
	g_mutex_unlock(&m->lock);
	return c;
}

uint8_t dax_test_pattern(uint64_t off)
{
	return (uint8_t)((off * 131) ^ (off >> 12));
}

char *dax_test_file(uint64_t len)
{
	g_autoptr(GError) err = NULL;
	char *path = NULL;
	g_autofree uint8_t *buf = g_malloc(65536);
	int fd = g_file_open_tmp("dax-test-XXXXXX", &path, &err);

	g_assert_no_error(err);
	for (uint64_t off = 0; off < len; off += 65536) {
		size_t n = (size_t)MIN(65536, len - off);
		for (size_t i = 0; i < n; i++)
			buf[i] = dax_test_pattern(off + i);
		g_assert_cmpint(pwrite(fd, buf, n, (off_t)off), ==, (ssize_t)n);
	}
	close(fd);
	return path;
}
