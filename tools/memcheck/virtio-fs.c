/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest linux check: virtio-fs over virtio-pci (virtio-fs.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/memcheck/virtio-fs.h"

#define BUF_CAP (1u << 20)          /* > max_write (128 KiB) + headers */

static void fs_notify(struct lx_virtio *v, unsigned q)
{
	struct lx_virtiofs *fs = v->data;
	struct lx_chain *c = &fs->chain;
	bool any = false;
	int r;

	while ((r = lx_virtio_pop(v, q, c)) > 0) {
		size_t n = 0, reply, done = 0;

		any = true;
		fs->requests++;
		if (c->r_len > fs->max_request)
			fs->max_request = c->r_len;
		if (c->r_len > fs->cap) {
			if (!fs->error[0])
				snprintf(fs->error, sizeof(fs->error), "request of %llu bytes",
					 (unsigned long long)c->r_len);
			lx_virtio_push(v, q, c->head, 0);
			continue;
		}
		for (unsigned i = 0; i < c->nr; i++) {
			memcpy(fs->in + n, c->r[i].iov_base, c->r[i].iov_len);
			n += c->r[i].iov_len;
		}
		reply = lx_fuse_handle(fs->fuse, fs->in, n, fs->out,
				       c->w_len < fs->cap ? (size_t)c->w_len : fs->cap);
		/* Scatter the reply over the device-writable buffers. */
		for (unsigned i = 0; i < c->nw && done < reply; i++) {
			size_t k = reply - done < c->w[i].iov_len ? reply - done : c->w[i].iov_len;

			memcpy(c->w[i].iov_base, fs->out + done, k);
			done += k;
		}
		lx_virtio_push(v, q, c->head, (uint32_t)done);
	}
	if (r < 0 && !fs->error[0])
		snprintf(fs->error, sizeof(fs->error), "virtqueue: %s", v->error);
	if (any)
		lx_virtio_irq(v, q);
}

int lx_virtiofs_init(struct lx_virtiofs *fs, struct lx_vm *vm, unsigned slot, const char *tag,
		     struct lx_fuse *fuse, uint64_t bar0_gpa, uint64_t window_gpa,
		     uint64_t window_len)
{
	int r;

	memset(fs, 0, sizeof(*fs));
	fs->fuse = fuse;
	fs->cap = BUF_CAP;
	fs->in = malloc(BUF_CAP);
	fs->out = malloc(BUF_CAP);
	if (!fs->in || !fs->out)
		return -ENOMEM;
	memcpy(fs->cfg, tag, strlen(tag) < 36 ? strlen(tag) : 36);
	fs->cfg[36] = 1;                 /* one request queue */
	r = lx_virtio_init(&fs->v, vm, slot, LX_VIRTIO_ID_FS, 0, 2, fs->cfg, sizeof(fs->cfg),
			   bar0_gpa, window_gpa, window_len);
	fs->v.notify = fs_notify;
	fs->v.data = fs;
	return r;
}

void lx_virtiofs_free(struct lx_virtiofs *fs)
{
	free(fs->in);
	free(fs->out);
	fs->in = fs->out = NULL;
}
