/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fault service: lazy binding of the DAX window through userfaultfd.
 *
 * The window's ranges without a bound slot are anonymous memory
 * registered with a userfaultfd (UFFDIO_REGISTER_MODE_MISSING). A first
 * touch of such a page, by the guest (KVM's gup inside KVM_RUN, a
 * kernel-mode fault) or by a host thread, blocks in the kernel with a
 * page-fault event on the fd carrying the host address. Serving it:
 *   - a slot covers the page: bind it (mmap its file range over it with
 *     MAP_FIXED, which also ends the registration of that range) and wake
 *     every waiter of the slot's range (UFFDIO_WAKE); the faulting access
 *     retries and finds the file's page;
 *   - no slot (never set up, removed), or the slot cannot be bound (file
 *     changed: -ESTALE, backend error): install the zero page
 *     (UFFDIO_ZEROPAGE), count it, report a dax_event, then wake the page.
 * Every step runs under the session lock, so a fault is served against
 * one consistent slot index: never with another slot's file, never
 * mapped after a remove dropped its slot.
 *
 * No lost wake-ups: the kernel queues the waiter and checks the page
 * table under mmap_lock before it sleeps, and our mmap takes that lock
 * for writing, so a waiter either sees the new mapping or is queued
 * before it and woken by the UFFDIO_WAKE that follows it. A UFFDIO ioctl
 * failing with EEXIST (page already present: a racing touch or another
 * event of the same page won), ENOENT (the range was just mapped over by
 * a setup) or EAGAIN (the mm is changing) is followed by a plain wake:
 * the woken access retries, and faults again (a fresh event) if it must.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

#include "common/ext.h"
#include "common/macro.h"
#include "common/size.h"
#include "common/sys.h"
#include "common/uffd.h"
#include "daxP.h"

void dax_emit(struct dax_session *s, const struct dax_event *ev)
{
	dax_event_fn fn;
	void *data;

	pthread_mutex_lock(&s->lock);
	fn = s->event_fn;
	data = s->event_data;
	pthread_mutex_unlock(&s->lock);
	if (fn)
		fn(data, ev);
}

/*
 * Serve one page fault at host address addr. Returns true when there is
 * something to report in *ev (ev->gpa: the page): the caller reports it,
 * then wakes the page.
 */
static bool serve_one(struct dax_session *s, uint64_t addr, uint64_t t0, struct dax_event *ev)
{
	struct dax_window *w = s->win;
	uint64_t page = addr & ~(uint64_t)(mk_page_size() - 1);
	uint64_t res = (uintptr_t)w->res, off, gpa;
	struct dax_slot *sl;
	bool report = false;
	int r;

	if (page < res || page - res >= w->wlen) {
		/* Not in the window (cannot happen: only the window is registered). */
		mk_uffd_wake(w->uffd, page, mk_page_size());
		return false;
	}
	off = page - res;
	gpa = s->base + off;
	pthread_mutex_lock(&s->lock);
	s->fst.uffd_faults++;
	sl = dax_lookup_gpa(s, gpa);
	if (sl) {
		bool was_bound = sl->bound;

		r = dax_bind_locked(s, sl, NULL, NULL);
		if (r == 0) {
			if (!was_bound)
				s->fst.uffd_binds++;
			/* Every waiter of the slot goes on; their own events only wake again. */
			mk_uffd_wake(w->uffd, res + sl->moffset, sl->len);
		} else {
			dax_account(s, r);
			s->fst.unbound++;
			*ev = (struct dax_event){ DAX_EVENT_UNBOUND, r, gpa, sl->moffset, sl->len,
						  sl->nodeid };
			report = true;
			(void)mk_uffd_zero(w->uffd, page, mk_page_size());
		}
	} else {
		s->fst.holes++;
		*ev = (struct dax_event){ DAX_EVENT_HOLE, 0, gpa, 0, mk_page_size(), 0 };
		report = true;
		(void)mk_uffd_zero(w->uffd, page, mk_page_size());
	}
	dax_hist_add(s->fst.uffd_ns, mk_now_ns() - t0);
	pthread_mutex_unlock(&s->lock);
	return report;
}

MK_EXPORT int dax_session_service(struct dax_session *s)
{
	uint64_t addr[16];
	int n = 0;

	if (!s)
		return -EINVAL;
	if (s->mode != DAX_FAULT_USERFAULT)
		return -ENOTSUP;
	for (;;) {
		int got = mk_uffd_read_faults(s->win->uffd, addr, 16);
		uint64_t t0 = mk_now_ns();

		if (got == -EAGAIN)
			break;
		if (got < 0)
			return n ? n : got;
		for (int i = 0; i < got; i++) {
			struct dax_event ev;

			if (serve_one(s, addr[i], t0, &ev)) {
				dax_emit(s, &ev);
				mk_uffd_wake(s->win->uffd, ev.gpa - s->base + (uintptr_t)s->win->res,
					     mk_page_size());
			}
			if (n < INT32_MAX)
				n++;
		}
	}
	return n;
}

MK_EXPORT int dax_session_fault_fd(struct dax_session *s)
{
	if (!s)
		return -EINVAL;
	return s->mode == DAX_FAULT_USERFAULT ? s->win->uffd : -ENOTSUP;
}

static void serve(void *p)
{
	(void)dax_session_service(p);
}

int dax_service_start(struct dax_session *s)
{
	int r = mk_uffd_thread_start(&s->svc, s->win->uffd, serve, s, "dax-fault");

	if (r < 0) {
		mk_log(&dax_log, LOG_ERR, "cannot start the fault service thread: %s",
		       r == -EAGAIN ? "EAGAIN" : "error");
		return r;
	}
	s->fst.thread = 1;
	return 0;
}

void dax_service_stop(struct dax_session *s)
{
	mk_uffd_thread_stop(&s->svc);
	s->fst.thread = 0;
}

MK_EXPORT int dax_session_set_event_fn(struct dax_session *s, dax_event_fn fn, void *data)
{
	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->event_fn = fn;
	s->event_data = data;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

MK_EXPORT int dax_session_fault_stats(struct dax_session *s, struct dax_fault_stats *ust)
{
	/* Extensible struct (common/ext.h, libdax(3)); the first layout is 3.0's. */
	int64_t usize = mk_ext_size(ust, sizeof(struct dax_fault_stats));
	struct dax_fault_stats st;

	if (!s || usize < 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	st = s->fst;
	st.mode = s->mode;
	pthread_mutex_unlock(&s->lock);
	mk_ext_out(ust, &st, sizeof(st), (size_t)usize);
	return 0;
}
