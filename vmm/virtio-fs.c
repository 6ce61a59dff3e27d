/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: virtio-fs over virtio-pci (virtio-fs.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio-fs.h"

#define BUF_CAP (1u << 20)          /* > max_write (128 KiB) + headers */

static void fs_notify(struct vmm_virtio *v, unsigned q)
{
	struct vmm_virtiofs *fs = v->data;
	struct vmm_chain *c = &fs->chain;
	bool any = false;
	int r;

	while ((r = vmm_virtio_pop(v, q, c)) > 0) {
		size_t n = 0, reply, done = 0;

		any = true;
		fs->requests++;
		if (c->r_len > fs->max_request)
			fs->max_request = c->r_len;
		if (c->r_len > fs->cap) {
			vmm_fail(&fs->error, -E2BIG, "request of %llu bytes",
				 (unsigned long long)c->r_len);
			vmm_virtio_push(v, q, c->head, 0);
			continue;
		}
		for (unsigned i = 0; i < c->nr; i++) {
			memcpy(fs->in + n, c->r[i].iov_base, c->r[i].iov_len);
			n += c->r[i].iov_len;
		}
		reply = vmm_fuse_handle(fs->fuse, fs->in, n, fs->out,
					c->w_len < fs->cap ? (size_t)c->w_len : fs->cap);
		/* Scatter the reply over the device-writable buffers. */
		for (unsigned i = 0; i < c->nw && done < reply; i++) {
			size_t k = reply - done < c->w[i].iov_len ? reply - done : c->w[i].iov_len;

			memcpy(c->w[i].iov_base, fs->out + done, k);
			vmm_vm_ram_written_at(v->vm, c->w[i].iov_base, k);
			done += k;
		}
		vmm_virtio_push(v, q, c->head, (uint32_t)done);
	}
	if (r < 0)
		vmm_fail(&fs->error, r, "virtqueue: %s", v->error.msg);
	if (any)
		vmm_virtio_irq(v, q);
}

int vmm_virtiofs_init(struct vmm_virtiofs *fs, struct vmm_vm *vm, struct vmm_pci *bus,
		      unsigned slot, const char *tag, struct vmm_fuse *fuse, uint64_t bar0_gpa,
		      uint64_t window_gpa, uint64_t window_len)
{
	int r;

	memset(fs, 0, sizeof(*fs));
	if (strlen(tag) > 36)
		return -EINVAL;
	fs->fuse = fuse;
	fs->cap = BUF_CAP;
	fs->in = malloc(BUF_CAP);
	fs->out = malloc(BUF_CAP);
	if (!fs->in || !fs->out)
		return -ENOMEM;
	memcpy(fs->cfg, tag, strlen(tag));
	fs->cfg[36] = 1;                 /* one request queue */
	r = vmm_virtio_init(&fs->v, vm, bus, slot, VMM_VIRTIO_ID_FS, 0, 2, fs->cfg, sizeof(fs->cfg),
			    bar0_gpa, window_gpa, window_len);
	fs->v.notify = fs_notify;
	fs->v.data = fs;
	return r;
}

void vmm_virtiofs_free(struct vmm_virtiofs *fs)
{
	free(fs->in);
	free(fs->out);
	fs->in = fs->out = NULL;
}
