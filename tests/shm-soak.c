/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kill -9 soak for libshm: NWORKERS processes of two threads each (each
 * thread with its own cache of free blocks) allocate, pattern-fill,
 * verify and free blocks in one SHM pool while the parent SIGKILLs a
 * random one every 0-2 ms (wherever it is: inside shma_alloc/shma_free,
 * mapping a chunk, filling a block) and starts another in its place, and
 * reclaims every 100 ms. Workers come in three kinds, in turn: fork+exec
 * of this program, fork() then shma_pool_attach, and fork() using the
 * parent's pool object as inherited. One more process of the same kinds
 * loops shma_pool_trim() (a short random sleep between calls) and is
 * killed like the others: inside trim it holds whole free lists and
 * closes chunks before dropping them.
 *
 * At the end every worker is killed, the pool reclaimed, and the parent
 * accounts for every byte: it walks each chunk header to header up to its
 * bump pointer and each class free list entry by entry. Nobody is alive,
 * so every carved block must be free and on exactly one free list of its
 * class, and each chunk's walk must end exactly at its bump pointer.
 *
 *   shm-soak [SECONDS [KILLS]]   run until SECONDS passed or KILLS kills
 *                                (default 3 s, no kill limit); TAP output
 *   shm-soak worker DIR NAME ID STATSFD   (the exec'd worker; ID NWORKERS: the trimmer)
 *
 * Lost: allocated blocks left after the final shma_pool_reclaim, free
 * blocks on no list, unwalkable gaps, slots stuck mid-creation: reclaim
 * alone must give back everything, including the blocks of processes
 * killed between a free list (or a bump pointer) and a block header,
 * which it finishes from their in-flight records, and the lists and
 * chunks of a trimmer killed inside shma_pool_trim (free blocks still
 * marked held by it, live chunks left closed to carving are lost). shma_pool_repair runs
 * after it as a cross-check: it must find nothing to give back. Corrupted:
 * a live worker's block whose pattern changed or that vanished (resolve
 * failed), list entries that are not free blocks of their class,
 * duplicates.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm.h"
#include "libshm/shmP.h"
#include "tests/test-shm-util.h"

#define NWORKERS 6
#define NPROCS (NWORKERS + 1)           /* the workers and the trimmer (id NWORKERS) */
#define KEEP 64
#define CHUNK (1u << 20)
#define MAX_CHUNKS 512u

enum { PH_NONE, PH_ALLOC, PH_FREE, PH_TRIM, PH_COUNT };

struct stats {                          /* shared by every worker (a memfd) */
	uint64_t ops;
	uint64_t corrupt;
	uint64_t errors;
	int32_t last_error;
	uint64_t trims;                 /* shma_pool_trim calls that returned */
	uint64_t dropped;               /* chunks they released */
	uint8_t phase[NPROCS];          /* where each process is, roughly */
};

static void bump(uint64_t *v)
{
	__atomic_add_fetch(v, 1, __ATOMIC_RELAXED);
}

static void set_phase(struct stats *st, unsigned id, uint8_t ph)
{
	__atomic_store_n(&st->phase[id], ph, __ATOMIC_RELAXED);
}

static uint8_t seed_of(const struct shma_handle *h, unsigned id)
{
	return shm_pattern_seed(h) ^ (uint8_t)(id * 37 + 1);
}

/* Allocate, fill, verify and free forever. */
static _Noreturn void work(struct shma_pool *p, unsigned id, struct stats *st)
{
	struct shma_handle live[KEEP];
	uint64_t rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)clock();

	memset(live, 0, sizeof(live));
	if (!rng)
		rng = 1;
	for (;;) {
		unsigned k = (unsigned)(shm_rand(&rng) % KEEP), pick = (unsigned)(shm_rand(&rng) % 1000);
		size_t len = pick < 900 ? 16 + shm_rand(&rng) % 500 :
			     pick < 995 ? 512 + shm_rand(&rng) % 8000 : (300u << 10);
		size_t align = shm_rand(&rng) % 4 ? 0 : 64;
		uint8_t *d;
		int r;

		if (live[k].len) {
			r = shma_resolve(p, &live[k], (void **)&d);
			if (r < 0 || !shm_pattern_ok(d, live[k].len, seed_of(&live[k], id)))
				bump(&st->corrupt);
			set_phase(st, id, PH_FREE);
			r = shma_free_handle(p, &live[k]);
			set_phase(st, id, PH_NONE);
			if (r < 0) {
				bump(&st->errors);
				st->last_error = r;
			}
			live[k].len = 0;
		}
		set_phase(st, id, PH_ALLOC);
		r = shma_alloc(p, len, align, &live[k], (void **)&d);
		set_phase(st, id, PH_NONE);
		if (r < 0) {
			bump(&st->errors);
			st->last_error = r;
			live[k].len = 0;
			continue;
		}
		shm_pattern_fill(d, len, seed_of(&live[k], id));
		bump(&st->ops);
	}
}

/* Trim forever, a random 0-20 us apart. */
static _Noreturn void trim_loop(struct shma_pool *p, unsigned id, struct stats *st)
{
	uint64_t rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)clock();

	if (!rng)
		rng = 1;
	for (;;) {
		struct timespec d = { 0, (long)(shm_rand(&rng) % 20000) };
		int r;

		set_phase(st, id, PH_TRIM);
		r = shma_pool_trim(p);
		set_phase(st, id, PH_NONE);
		if (r < 0) {
			bump(&st->errors);
			st->last_error = r;
		} else {
			bump(&st->trims);
			__atomic_add_fetch(&st->dropped, (uint64_t)r, __ATOMIC_RELAXED);
		}
		nanosleep(&d, NULL);
	}
}

struct work_arg {
	struct shma_pool *p;
	unsigned id;
	struct stats *st;
};

static void *work_thread(void *arg)
{
	struct work_arg *w = arg;

	work(w->p, w->id, w->st);
}

static _Noreturn void run(struct shma_pool *p, unsigned id, struct stats *st)
{
	static struct work_arg second;
	pthread_t t;

	/* Below the parent, whose kills and reclaims must keep their pace on few cores. */
	if (nice(10) < 0)
		bump(&st->errors);
	if (id == NWORKERS)
		trim_loop(p, id, st);
	/* Two threads per worker, each with its own cache (killed wherever they are). */
	second = (struct work_arg){ p, id, st };
	if (pthread_create(&t, NULL, work_thread, &second) != 0) {
		bump(&st->errors);
		st->last_error = -EAGAIN;
	}
	work(p, id, st);
}

static struct stats *map_stats(int fd)
{
	void *m = mmap(NULL, sizeof(struct stats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return m == MAP_FAILED ? NULL : m;
}

static int worker_main(char **argv)
{
	struct stats *st = map_stats(atoi(argv[5]));
	unsigned id = (unsigned)atoi(argv[4]);
	struct shma_pool *p;
	int r;

	if (!st || id >= NPROCS)
		return 2;
	r = shma_pool_attach(argv[2], argv[3], 0, &p);
	if (r < 0) {
		fprintf(stderr, "shm-soak worker: attach: %s\n", strerror(-r));
		return 1;
	}
	run(p, id, st);
}

/* ---- the parent ------------------------------------------------------------------ */

static char dir[64], self_exe[4096];
static struct shma_pool *pool;
static struct stats *stats;
static int stats_fd;
static pid_t pids[NPROCS];
static uint64_t kinds[3], unexpected;

static pid_t spawn(unsigned id, unsigned kind)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		struct shma_pool *q = pool;
		char ids[16], fds[16];

		if (kind == 0) {
			snprintf(ids, sizeof(ids), "%u", id);
			snprintf(fds, sizeof(fds), "%d", stats_fd);
			execl(self_exe, self_exe, "worker", dir, "soak", ids, fds, (char *)NULL);
			_exit(127);
		}
		if (kind == 1 && shma_pool_attach(dir, "soak", 0, &q) < 0)
			_exit(1);
		run(q, id, stats);   /* kind 2: the inherited object */
	}
	kinds[kind]++;
	return pid;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct account {
	uint64_t carved, allocated, free_blocks, listed, unlisted, gaps, stuck_slots;
	uint64_t bad_list, dup_list, dedicated_left, chunks;
	uint64_t closed;                /* live regular chunks closed to carving (a trim's, not dropped) */
	uint64_t held;                  /* free blocks still marked held by a trimmer (among unlisted) */
};

/* Walk every chunk and every free list (nobody else alive). */
static int account(struct shma_pool *p, struct account *a)
{
	struct shma_root *rt = p->root;
	uint64_t nrefs = (uint64_t)p->max_chunks * p->chunk_size / SHMA_GRANULE;
	uint8_t *state = calloc(nrefs, 1);   /* 1: free block in a chunk, 2: seen on a list */

	if (!state)
		return -ENOMEM;
	memset(a, 0, sizeof(*a));
	for (uint32_t i = 0; i < p->max_chunks; i++) {
		uint64_t s = rt->slots[i].state, bump = shma_bump_off(rt->slots[i].bump), off;
		char *base;

		if (shma_s_st(s) == SHMA_SLOT_CREATING) {
			a->stuck_slots++;
			continue;
		}
		if (shma_s_st(s) != SHMA_SLOT_LIVE)
			continue;
		a->chunks++;
		if (shma_map_slot(p, i, s, &base) < 0) {
			a->stuck_slots++;
			continue;
		}
		if (shma_s_kind(s) == SHMA_KIND_DEDICATED) {
			/* Its block was not freed, or the chunk was not given back. */
			a->dedicated_left++;

			continue;
		}
		if (bump > p->chunk_size) {
			/* Closed by a trim that never dropped it: stuck, its carved end unknown. */
			a->closed++;
			bump = p->chunk_size;
		}
		for (off = SHMA_CHUNK_DATA; off + sizeof(struct shma_blk) <= bump && off < p->chunk_size;) {
			struct shma_blk *b = (struct shma_blk *)(base + off);
			uint64_t w = b->word;
			unsigned c = shma_w_cls(w);
			if (!shma_w_magic_ok(w) || c >= p->nclasses || b->self != shma_ref(p, i, off))
				break;
			a->carved++;
			if (shma_w_gen(w) & 1) {
				a->allocated++;
			} else {
				a->free_blocks++;
				state[shma_ref(p, i, off)] = 1;
				if (shma_w_flags(w) == SHMA_F_HELD && shma_w_owner(w) != SHMA_OWNER_NONE)
					a->held++;
			}
			off += shma_class_bytes(c);
		}
		if (shma_bump_off(rt->slots[i].bump) > p->chunk_size)
			continue;       /* counted above; the walk ends where the blocks do */
		if (off != bump)
			a->gaps += bump > off ? bump - off : off - bump;
	}
	for (unsigned c = 0; c < p->nclasses; c++) {
		uint32_t ref = (uint32_t)rt->heads[c].hi;
		uint64_t steps = 0;

		while (ref && steps++ <= nrefs) {
			struct shma_blk *b;
			if (ref >= nrefs || state[ref] == 0) {
				a->bad_list++;  /* not a free block of a chunk */
				break;
			}
			if (state[ref] == 2) {
				a->dup_list++;  /* twice on the lists: a cycle */
				break;
			}
			b = shma_blk_at(p, ref);
			if (!b || shma_w_cls(b->word) != c) {
				a->bad_list++;
				break;
			}
			state[ref] = 2;
			a->listed++;
			ref = b->aux;
		}
	}
	for (uint64_t r = 0; r < nrefs; r++)
		if (state[r] == 1)
			a->unlisted++;
	free(state);
	return 0;
}

int main(int argc, char **argv)
{
	struct shma_pool_opts o = { .size = sizeof(o), .backend = SHMA_BACKEND_SHM, .name = "soak",
				    .chunk_size = CHUNK, .max_chunks = MAX_CHUNKS };
	double seconds = 3;
	uint64_t max_kills = 0, kills = 0, kills_in[PH_COUNT] = { 0 }, reclaims = 0, reclaimed = 0;
	uint64_t t0, last_reclaim, rng = 0x5eed ^ (uint64_t)getpid();
	struct shma_pool_stat pst = { .size = sizeof(pst) };
	struct account a;
	uint64_t lost, lost_reclaim, corrupt;
	int r, reclaim_errors = 0, argi = 1, repaired;
	ssize_t n;

	if (argc == 6 && !strcmp(argv[1], "worker"))
		return worker_main(argv);
	while (argi < argc && !strncmp(argv[argi], "--", 2))
		argi++;         /* --tap and friends from the test harness */
	if (argi < argc)
		seconds = atof(argv[argi++]);
	if (argi < argc)
		max_kills = strtoull(argv[argi++], NULL, 10);
	if (seconds <= 0) {
		fprintf(stderr, "usage: shm-soak [SECONDS [KILLS]]\n");
		return 2;
	}
	printf("1..1\n");
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0) {
		printf("Bail out! /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	self_exe[n] = '\0';
	snprintf(dir, sizeof(dir), "/dev/shm/memkit-soak-XXXXXX");
	if (!mkdtemp(dir)) {
		printf("1..0 # SKIP no writable /dev/shm: %s\n", strerror(errno));
		return 0;
	}
	o.dir = dir;
	r = shma_pool_create(&o, &pool);
	if (r < 0) {
		printf("Bail out! create: %s\n", strerror(-r));
		rmdir(dir);
		return 1;
	}
	stats_fd = memfd_create("shm-soak-stats", 0);  /* inherited by exec'd workers */
	if (stats_fd < 0 || ftruncate(stats_fd, sizeof(struct stats)) < 0 ||
	    !(stats = map_stats(stats_fd))) {
		printf("Bail out! stats memfd: %s\n", strerror(errno));
		return 1;
	}
	fflush(stdout);

	for (unsigned i = 0; i < NPROCS; i++)
		pids[i] = spawn(i, i % 3);
	t0 = last_reclaim = now_ns();
	while ((now_ns() - t0) / 1e9 < seconds && (!max_kills || kills < max_kills)) {
		unsigned w = (unsigned)(shm_rand(&rng) % NPROCS);
		int status;
		struct timespec d = { 0, (long)(shm_rand(&rng) % 2000000) };

		nanosleep(&d, NULL);
		kills_in[stats->phase[w] < PH_COUNT ? stats->phase[w] : 0]++;
		kill(pids[w], SIGKILL);
		if (waitpid(pids[w], &status, 0) != pids[w] ||
		    !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			unexpected++;   /* died on its own before our kill */
			fprintf(stderr, "worker %u: status %#x\n", w, status);
		}
		stats->phase[w] = PH_NONE;
		kills++;
		pids[w] = spawn(w, (unsigned)(shm_rand(&rng) % 3));
		if (now_ns() - last_reclaim > 100000000ull) {
			r = shma_pool_reclaim(pool);
			if (r < 0) {
				reclaim_errors++;
				fprintf(stderr, "reclaim: %s\n", strerror(-r));
			} else {
				reclaimed += (uint64_t)r;
			}
			reclaims++;
			last_reclaim = now_ns();
		}
	}
	for (unsigned i = 0; i < NPROCS; i++) {
		int status;
		kill(pids[i], SIGKILL);
		waitpid(pids[i], &status, 0);
	}
	r = shma_pool_reclaim(pool);
	if (r < 0)
		reclaim_errors++;
	else
		reclaimed += (uint64_t)r;
	reclaims++;

	/* What reclaim alone left, then what shma_pool_repair (nobody else attached) gives back. */
	if (account(pool, &a) < 0) {
		printf("Bail out! accounting failed\n");
		return 1;
	}
	lost_reclaim = a.allocated + a.unlisted + a.gaps + a.stuck_slots + a.dedicated_left + a.closed;
	printf("# after reclaim: %" PRIu64 " lost (%" PRIu64 " allocated, %" PRIu64
	       " free on no list (%" PRIu64 " held by a trimmer), %" PRIu64 " gap bytes, %" PRIu64
	       " stuck slots, %" PRIu64 " dedicated chunks, %" PRIu64 " chunks left closed)\n",
	       lost_reclaim, a.allocated, a.unlisted, a.held, a.gaps, a.stuck_slots, a.dedicated_left,
	       a.closed);
	repaired = shma_pool_repair(pool);
	if (repaired < 0 || account(pool, &a) < 0 || shma_pool_stat(pool, &pst) < 0) {
		printf("Bail out! repair/accounting failed: %s\n", strerror(repaired < 0 ? -repaired : EIO));
		return 1;
	}
	lost = a.allocated + a.unlisted + a.gaps + a.stuck_slots + a.dedicated_left + a.closed;
	corrupt = stats->corrupt + a.bad_list + a.dup_list;
	printf("# %.1f s, %" PRIu64 " kills (%" PRIu64 " inside shma_alloc, %" PRIu64
	       " inside shma_free, %" PRIu64 " inside shma_pool_trim), %" PRIu64
	       " processes started (exec %" PRIu64 ", fork+attach %" PRIu64 ", fork inherited %"
	       PRIu64 ")\n",
	       (now_ns() - t0) / 1e9, kills, kills_in[PH_ALLOC], kills_in[PH_FREE], kills_in[PH_TRIM],
	       kinds[0] + kinds[1] + kinds[2], kinds[0], kinds[1], kinds[2]);
	printf("# %" PRIu64 " trims returned, releasing %" PRIu64 " chunks\n", stats->trims,
	       stats->dropped);
	printf("# %" PRIu64 " alloc+fill ops, %" PRIu64 " reclaims freed %" PRIu64
	       " blocks, %" PRIu64 " worker errors (last %s), %d reclaim errors, %" PRIu64
	       " unexpected exits\n", stats->ops, reclaims, reclaimed, stats->errors,
	       stats->errors ? strerror(-stats->last_error) : "none", reclaim_errors, unexpected);
	printf("# after shma_pool_repair (gave back %d): account: %" PRIu64 " chunks, %" PRIu64 " blocks carved, %" PRIu64
	       " allocated, %" PRIu64 " free (%" PRIu64 " on the lists, %" PRIu64 " on none), %"
	       PRIu64 " gap bytes, %" PRIu64 " stuck slots, %" PRIu64 " dedicated chunks left, %"
	       PRIu64 " closed; stat: %" PRIu64 " used, %u users, %u dead\n", repaired,
	       a.chunks, a.carved, a.allocated, a.free_blocks, a.listed, a.unlisted, a.gaps,
	       a.stuck_slots, a.dedicated_left, a.closed, pst.blocks_used, pst.users, pst.users_dead);
	printf("# corrupted: %" PRIu64 " (pattern/vanished %" PRIu64 ", bad list entries %" PRIu64
	       ", duplicates %" PRIu64 "); lost: %" PRIu64 "\n",
	       corrupt, stats->corrupt, a.bad_list, a.dup_list, lost);
	r = corrupt == 0 && lost == 0 && lost_reclaim == 0 && repaired == 0 && stats->errors == 0 &&
	    reclaim_errors == 0 && unexpected == 0 && kills > 0 && pst.users_dead == 0;
	printf("%s 1 - %" PRIu64 " kills (%" PRIu64 " inside trim, which released %" PRIu64
	       " chunks): %" PRIu64 " corrupted, %" PRIu64 " lost to reclaim alone"
	       " (%d blocks that only repair gave back), %" PRIu64 " lost after repair\n",
	       r ? "ok" : "not ok", kills, kills_in[PH_TRIM], stats->dropped, corrupt, lost_reclaim,
	       repaired, lost);
	shma_pool_unlink(pool);
	shma_pool_free(pool);
	rmdir(dir);
	return r ? 0 : 1;
}
