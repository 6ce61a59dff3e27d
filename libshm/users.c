/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The user table: which processes are registered with a pool (and alive),
 * the fork generation a registration belongs to, re-registering a fork()ed
 * child, and the repair-running mark. The bottom of libshm: calls no other
 * file of it. Lock-free and async-signal-safe.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/sys.h"
#include "shmP.h"

unsigned shma_fork_gen;

static void fork_child(void)
{
	__atomic_add_fetch(&shma_fork_gen, 1, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void shma_init(void)
{
	/* Cannot fail but for ENOMEM; a fork()ed child then keeps using its
	 * parent's registration, as before this handler existed. */
	pthread_atfork(NULL, NULL, fork_child);
}

/*
 * This process's start time, read afresh on every call (attach, a new
 * chunk, re-registration after fork: never a hot path). A cached value
 * would be the parent's in a fork()ed child, which would then register
 * under a start time that is not its own and be judged dead at once.
 * Async-signal-safe. 0 if /proc cannot tell (then the pid alone counts).
 */
uint64_t shma_self_start(void)
{
	uint64_t t = 0;

	if (mk_proc_start_time(mk_getpid(), &t) < 0)
		t = 0;
	return t;
}

bool shma_pid_alive(int64_t pid, uint64_t start)
{
	uint64_t t;

	if (pid <= 0 || pid > INT32_MAX)
		return false;
	if (mk_proc_start_time((pid_t)pid, &t) < 0)
		return false;
	/* start 0: the process is still registering; its pid is all we know. */
	return !start || t == start;
}

/* Is the holder of a user slot alive (a registrant, or a reclaimer: pid < 0)? */
bool shma_user_alive(int64_t pid, uint64_t start)
{
	if (pid < 0)
		return pid > -(int64_t)INT32_MAX && shma_pid_alive(-pid, 0);
	return shma_pid_alive(pid, start);
}

/* Claim a free user slot for this process (lock-free, async-signal-safe). */
int shma_claim_user(struct shma_pool *p, unsigned *out)
{
	int64_t pid = mk_getpid();
	uint64_t start = shma_self_start();

	for (unsigned i = 0; i < SHMA_MAX_USERS; i++) {
		struct shma_user *u = &p->root->users[i];
		int64_t zero = 0;
		if (__atomic_load_n(&u->pid, __ATOMIC_RELAXED))
			continue;
		if (__atomic_compare_exchange_n(&u->pid, &zero, pid, false,
						__ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
			__atomic_store_n(&u->start, start, __ATOMIC_RELEASE);
			/* Registered first, then look: a repair either sees us or we see it. */
			if (shma_repair_running(p)) {
				__atomic_store_n(&u->start, 0, __ATOMIC_RELAXED);
				__atomic_store_n(&u->pid, 0, __ATOMIC_RELEASE);
				return -EBUSY;
			}
			*out = i;
			return 0;
		}
	}
	return -EUSERS;
}

bool shma_repair_running(const struct shma_pool *p)
{
	const struct shma_user *r = &p->root->users[SHMA_REPAIR_SLOT];
	int64_t pid = __atomic_load_n(&r->pid, __ATOMIC_SEQ_CST);

	return pid && pid != mk_getpid() &&
	       shma_pid_alive(pid, __atomic_load_n(&r->start, __ATOMIC_ACQUIRE));
}

void shma_release_user(struct shma_pool *p, unsigned i)
{
	__atomic_store_n(&p->root->users[i].start, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->root->users[i].pid, 0, __ATOMIC_RELEASE);
}

/*
 * A fork()ed child's first allocation with a pool it inherited: register
 * this process (no reclaim here: this runs inside shma_alloc, perhaps in a
 * signal handler). Racing threads of the child agree on one registration.
 */
int shma_reregister(struct shma_pool *p, uint64_t old, unsigned *owner)
{
	for (;;) {
		uint32_t gen = __atomic_load_n(&shma_fork_gen, __ATOMIC_RELAXED);
		unsigned u;
		int r;

		if ((uint32_t)(old >> 32) == gen) {
			*owner = (unsigned)old & 0xff;
			return 0;
		}
		r = shma_claim_user(p, &u);
		if (r < 0)
			return r;
		if (__atomic_compare_exchange_n(&p->reg, &old, (uint64_t)gen << 32 | u, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			*owner = u;
			return 0;
		}
		shma_release_user(p, u);     /* another thread won; old is its value now */
	}
}
