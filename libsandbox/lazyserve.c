/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fault service of a lazy snapshot (sbx_snapshot_service(3)): read the
 * userfaultfd's fault events and serve each (lazymap.c), then prefetch one
 * run of the working set, so a fault never waits behind more than one run.
 * It runs on the snapshot's own thread (common/uffd.c), which polls the
 * epoll fd that also reports queued prefetch work, or in the caller's loop
 * (SBX_OPEN_NO_THREAD: sbx_snapshot_fault_fd() to poll). One service call
 * at a time per snapshot (svc_lock: the read buffer is the service's).
 */
#include "config.h"

#include <errno.h>

#include "common/sys.h"
#include "common/uffd.h"
#include "sandboxP.h"

int sbx_lazy_service(struct sbx_lazy *z)
{
	uint64_t addr[16], t0;
	int done = 0, got, n;

	pthread_mutex_lock(&z->svc_lock);
	for (;;) {
		got = mk_uffd_read_faults(z->uffd, addr, 16);
		t0 = mk_now_ns();
		if (got == -EAGAIN)
			break;
		if (got < 0) {
			done = done ? done : got;
			goto out;
		}
		/* Latency from the events' read: what an access waited once it was seen. */
		for (int i = 0; i < got; i++) {
			sbx_lazy_serve_fault(z, addr[i], t0);
			done++;
		}
	}
	n = sbx_lazy_prefetch_step(z);
	done += n;
	if (n == 0) {
		uint64_t v;

		/* Nothing left to prefetch: the fd stops reporting it (new work writes again). */
		pthread_mutex_lock(&z->lock);
		if (!sbx_lazy_prefetch_pending(z))
			(void)mk_read(z->pf_fd, &v, sizeof(v));
		pthread_mutex_unlock(&z->lock);
	}
out:
	pthread_mutex_unlock(&z->svc_lock);
	return done;
}

static void serve(void *p)
{
	(void)sbx_lazy_service(p);
}

int sbx_lazy_start(struct sbx_lazy *z)
{
	int r = mk_uffd_thread_start(&z->svc, z->epfd, serve, z, "sbx-fault");

	if (r < 0) {
		sbx_refuse(LOG_ERR, "sbx_snapshot_open: cannot start the fault service thread (%d)", r);
		return r;
	}
	__atomic_store_n(&z->st.thread, 1, __ATOMIC_RELAXED);
	return 0;
}
