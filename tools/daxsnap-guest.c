/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest program daxsnap replay (and bench-dax) runs to touch DAX
 * slots, and replay's run loop: libdax binds the restored slots by its
 * own mechanism (userfaultfd, or eagerly at restore), so the loop has
 * nothing to do but hand any exit to dax_session_handle_kvm_exit();
 * slots that cannot be bound come back as libdax events.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/kvm.h"
#include "dax.h"
#include "daxsnap.h"

size_t daxsnap_touch_code(uint8_t *c, uint32_t table, uint32_t n)
{
	static const uint8_t tmpl[] = {
		0xbe, 0, 0, 0, 0,       /* mov esi, table */
		0xb9, 0, 0, 0, 0,       /* mov ecx, n */
		0x85, 0xc9,             /* test ecx, ecx */
		0x74, 0x0d,             /* jz done */
		0x8b, 0x06,             /* loop: mov eax, [esi] */
		0x8b, 0x10,             /* mov edx, [eax]      first touch */
		0x8b, 0x50, 0x04,       /* mov edx, [eax + 4]  must be direct */
		0x83, 0xc6, 0x04,       /* add esi, 4 */
		0x49,                   /* dec ecx */
		0x75, 0xf3,             /* jnz loop */
		0xf4,                   /* done: hlt */
	};

	memcpy(c, tmpl, sizeof(tmpl));
	memcpy(c + 1, &table, 4);
	memcpy(c + 6, &n, 4);
	return sizeof(tmpl);
}

static void replay_event(void *data, const struct dax_event *ev)
{
	struct daxsnap_replay *rp = data;

	if (ev->kind == DAX_EVENT_UNBOUND) {
		/* the guest reads zeros there and goes on with the next slot */
		printf("0x%" PRIx64 ": %s\n", ev->moffset, strerror(-ev->err));
		fflush(stdout);
		__atomic_add_fetch(&rp->failed, 1, __ATOMIC_RELAXED);
	} else {
		fprintf(stderr, "daxsnap: replay: guest access 0x%" PRIx64 " outside every slot\n",
			ev->gpa);
		__atomic_add_fetch(&rp->outside, 1, __ATOMIC_RELAXED);
	}
}

void daxsnap_replay_watch(struct dax_session *s, struct daxsnap_replay *rp)
{
	memset(rp, 0, sizeof(*rp));
	dax_session_set_event_fn(s, replay_event, rp);
}

int daxsnap_replay_run(struct dax_session *s, int vcpu, struct kvm_run *run,
		       struct daxsnap_replay *rp)
{
	for (;;) {
		int r = mk_kvm_run(vcpu);

		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		if (run->exit_reason == KVM_EXIT_HLT)
			return 0;
		/* Only where the session's mapper binds through exits (not the window). */
		if (run->exit_reason != KVM_EXIT_MMIO && run->exit_reason != KVM_EXIT_MEMORY_FAULT)
			return -EPROTO;
		rp->exits++;
		r = dax_session_handle_kvm_exit(s, run);
		if (r == 0) {
			rp->outside++;
			return -EPROTO;
		}
		if (r < 0) {
			printf("0x%llx: %s\n", (unsigned long long)run->mmio.phys_addr, strerror(-r));
			memset(run->mmio.data, 0, sizeof(run->mmio.data));
			rp->failed++;
		}
	}
}
