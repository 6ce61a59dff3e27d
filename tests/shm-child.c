/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helper for the cross-process libshm tests (tests/test-shm.c): a separate
 * program, started with fork+exec, that attaches to a pool and works on
 * it. Exit status 0 on success, 2 on a usage error, 1 (with a message on
 * stderr) on anything else.
 *
 *   shm-child resolve DIR NAME HANDLE...   verify each block's pattern, write its complement
 *   shm-child memfd SOCKFD                 receive fds + handles, same as resolve
 *   shm-child churn DIR NAME ID ITERS KEEP alloc/free ITERS times, keep KEEP blocks
 *                                          (pattern ID), print their handles
 *   shm-child loop DIR NAME                alloc/free forever; prints "R" once running
 *   shm-child threads DIR NAME             two threads alloc/check/free forever (their
 *                                          caches full); prints "R" once both run
 *   shm-child leak DIR NAME N              allocate N blocks, exit without detaching
 *   shm-child create DIR NAME N            create a SHM pool, allocate N blocks, detach
 *   shm-child hold DIR NAME SECONDS        stay attached for SECONDS (a live user)
 *   shm-child crash DIR NAME               attach, allocate one patterned block, print
 *                                          its handle, then wait to be killed
 *   shm-child handover DIR NAME N FREE     allocate N patterned blocks (small, over-aligned,
 *                                          dedicated), print their handles, then (FREE 1)
 *                                          free them all or (FREE 0) wait to be killed
 *   shm-child adopt DIR NAME HANDLE...     adopt each block, verify its pattern, print
 *                                          "A <adopted> <stale>", wait to be killed
 *   shm-child memfd-hold NAME N LEAK       create a memfd pool NAME (tests/shmctl.sh), allocate
 *                                          N blocks; a fork()ed child allocates LEAK more
 *                                          and exits attached (0: no child); print "R",
 *                                          then wait to be killed
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm.h"
#include "tests/test-shm-util.h"

static int fail(const char *what, int r)
{
	fprintf(stderr, "shm-child: %s: %s\n", what, strerror(-r));
	return 1;
}

static int verify_and_flip(struct shma_pool *p, const struct shma_handle *h)
{
	uint8_t *d;
	int r = shma_resolve(p, h, (void **)&d);

	if (r < 0)
		return fail("resolve", r);
	if (!shm_pattern_ok(d, h->len, shm_pattern_seed(h)))
		return fail("pattern", -EBADMSG);
	for (uint32_t i = 0; i < h->len; i++)
		d[i] = (uint8_t)~d[i];
	return 0;
}

static int do_resolve(int argc, char **argv)
{
	struct shma_pool *p;
	int r = shma_pool_attach(argv[2], argv[3], 0, &p);

	if (r < 0)
		return fail("attach", r);
	for (int i = 4; i < argc; i++) {
		struct shma_handle h;
		if (shm_handle_parse(argv[i], &h) < 0)
			return fail("handle", -EINVAL);
		if (verify_and_flip(p, &h))
			return 1;
	}
	shma_pool_free(p);
	return 0;
}

static int do_memfd(char **argv)
{
	int sock = atoi(argv[2]), fds[64], n, r;
	struct shma_handle hs[64];
	struct shma_pool *p;
	size_t got = 0;

	n = shma_recv_fds(sock, fds, 64, hs, sizeof(hs), &got);
	if (n < 0)
		return fail("recv", n);
	r = shma_pool_attach_fds(fds, (size_t)n, 0, &p);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (r < 0)
		return fail("attach_fds", r);
	for (size_t i = 0; i < got / sizeof(hs[0]); i++)
		if (verify_and_flip(p, &hs[i]))
			return 1;
	shma_pool_free(p);
	if (write(sock, "K", 1) != 1)
		return fail("write", -errno);
	return 0;
}

static int do_churn(char **argv)
{
	unsigned id = (unsigned)atoi(argv[4]);
	long iters = atol(argv[5]), keep = atol(argv[6]);
	struct shma_handle *live = calloc((size_t)keep, sizeof(*live));
	uint64_t rng = 0x1234567 + id;
	struct shma_pool *p;
	int r = shma_pool_attach(argv[2], argv[3], 0, &p);

	if (r < 0)
		return fail("attach", r);
	for (long i = 0; i < keep; i++)
		live[i].len = 0;
	for (long i = 0; i < iters; i++) {
		long k = (long)(shm_rand(&rng) % (uint64_t)keep);
		size_t len = 16 + shm_rand(&rng) % 4080;
		void *d;
		if (live[k].len) {
			r = shma_free_handle(p, &live[k]);
			if (r < 0)
				return fail("free", r);
		}
		r = shma_alloc(p, len, 0, &live[k], &d);
		if (r < 0)
			return fail("alloc", r);
		shm_pattern_fill(d, len, shm_pattern_seed(&live[k]) ^ id);
	}
	for (long i = 0; i < keep; i++) {
		char buf[64];
		if (!live[i].len)
			continue;
		shm_handle_format(&live[i], buf, sizeof(buf));
		printf("%s\n", buf);
	}
	fflush(stdout);
	shma_pool_free(p);
	free(live);
	return 0;
}

static int do_loop(char **argv)
{
	struct shma_handle live[256] = { 0 };
	uint64_t rng = 99;
	struct shma_pool *p;
	int r = shma_pool_attach(argv[2], argv[3], 0, &p);

	if (r < 0)
		return fail("attach", r);
	for (unsigned long i = 0;; i++) {
		unsigned k = (unsigned)(shm_rand(&rng) % 256);
		void *d;
		if (live[k].len && (r = shma_free_handle(p, &live[k])) < 0)
			return fail("free", r);
		r = shma_alloc(p, 16 + shm_rand(&rng) % 4080, 0, &live[k], &d);
		if (r < 0)
			return fail("alloc", r);
		memset(d, 0x5a, live[k].len);
		if (i == 1000) {
			if (write(1, "R", 1) != 1)
				return 1;
		}
	}
}

/* Two threads allocate, fill, check and free with their caches full, until SIGKILL. */
struct tloop {
	struct shma_pool *p;
	unsigned id;
	unsigned long ops;
};

static void *tloop_run(void *arg)
{
	struct tloop *t = arg;
	struct shma_handle live[256] = { 0 };
	uint64_t rng = 1234 + t->id;

	for (;;) {
		unsigned k = (unsigned)(shm_rand(&rng) % 256);
		uint8_t *d;
		int r;
		if (live[k].len) {
			if (shma_resolve(t->p, &live[k], (void **)&d) < 0 ||
			    !shm_pattern_ok(d, live[k].len, shm_pattern_seed(&live[k]) ^ (uint8_t)t->id))
				_exit(3);
			if ((r = shma_free_handle(t->p, &live[k])) < 0)
				_exit(fail("free", r));
		}
		r = shma_alloc(t->p, 16 + shm_rand(&rng) % 2000, 0, &live[k], (void **)&d);
		if (r < 0)
			_exit(fail("alloc", r));
		shm_pattern_fill(d, live[k].len, shm_pattern_seed(&live[k]) ^ (uint8_t)t->id);
		__atomic_add_fetch(&t->ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int do_threads(char **argv)
{
	struct tloop t[2];
	pthread_t th[2];
	struct shma_pool *p;
	int r = shma_pool_attach(argv[2], argv[3], 0, &p);

	if (r < 0)
		return fail("attach", r);
	for (unsigned i = 0; i < 2; i++) {
		t[i] = (struct tloop){ p, i + 1, 0 };
		if (pthread_create(&th[i], NULL, tloop_run, &t[i]) != 0)
			return fail("pthread_create", -EAGAIN);
	}
	while (__atomic_load_n(&t[0].ops, __ATOMIC_RELAXED) < 2000 ||
	       __atomic_load_n(&t[1].ops, __ATOMIC_RELAXED) < 2000)
		usleep(1000);
	if (write(1, "R", 1) != 1)
		return 1;
	for (;;)
		pause();        /* until SIGKILL */
}

static int do_leak(char **argv)
{
	struct shma_pool *p;
	long n = atol(argv[4]);
	int r = shma_pool_attach(argv[2], argv[3], 0, &p);

	if (r < 0)
		return fail("attach", r);
	for (long i = 0; i < n; i++) {
		struct shma_handle h;
		r = shma_alloc(p, 100 + (size_t)i, 0, &h, NULL);
		if (r < 0)
			return fail("alloc", r);
	}
	_exit(0);   /* no shma_pool_free: as if we crashed */
}

static int do_create(char **argv)
{
	struct shma_pool_opts o = { .size = sizeof(o), .backend = SHMA_BACKEND_SHM,
				    .name = argv[3], .dir = argv[2], .chunk_size = 1u << 20 };
	struct shma_pool *p;
	long n = atol(argv[4]);
	int r = shma_pool_create(&o, &p);

	if (r < 0)
		return fail("create", r);
	for (long i = 0; i < n; i++)
		if ((r = shma_alloc(p, 1000, 0, NULL, NULL)) < 0)
			return fail("alloc", r);
	shma_pool_free(p);
	return 0;
}

static int do_hold(char **argv)
{
	struct shma_pool *p;
	int r = shma_pool_attach(argv[2], argv[3], 0, &p);

	if (r < 0)
		return fail("attach", r);
	sleep((unsigned)atoi(argv[4]));
	shma_pool_free(p);
	return 0;
}

static int do_crash(char **argv)
{
	struct shma_pool *p;
	struct shma_handle h;
	char buf[64];
	void *d;
	int r = shma_pool_attach(argv[2], argv[3], 0, &p);

	if (r < 0)
		return fail("attach", r);
	r = shma_alloc(p, 200, 0, &h, &d);
	if (r < 0)
		return fail("alloc", r);
	shm_pattern_fill(d, h.len, shm_pattern_seed(&h));
	shm_handle_format(&h, buf, sizeof(buf));
	printf("%s\n", buf);
	fflush(stdout);
	for (;;)
		pause();        /* until SIGKILL */
}

static int do_handover(char **argv)
{
	long n = atol(argv[4]);
	int do_free = atoi(argv[5]);
	struct shma_handle *hs = calloc((size_t)n, sizeof(*hs));
	struct shma_pool *p;
	int r = shma_pool_attach(argv[2], argv[3], 0, &p);

	if (r < 0)
		return fail("attach", r);
	if (!hs)
		return fail("calloc", -ENOMEM);
	for (long i = 0; i < n; i++) {
		size_t len = i % 10 == 9 ? (300u << 10) : 24 + (size_t)i * 37 % 3000;
		char buf[64];
		void *d;
		r = shma_alloc(p, len, i % 3 == 1 ? 64 : 0, &hs[i], &d);
		if (r < 0)
			return fail("alloc", r);
		shm_pattern_fill(d, len, shm_pattern_seed(&hs[i]));
		shm_handle_format(&hs[i], buf, sizeof(buf));
		printf("%s\n", buf);
	}
	printf("H\n");
	fflush(stdout);
	if (do_free) {
		for (long i = 0; i < n; i++)
			shma_free_handle(p, &hs[i]);   /* racing the adopter: either may win */
		shma_pool_free(p);
		free(hs);
		return 0;
	}
	for (;;)
		pause();        /* until SIGKILL */
}

static int do_adopt(int argc, char **argv)
{
	struct shma_pool *p;
	int r = shma_pool_attach(argv[2], argv[3], 0, &p), adopted = 0, stale = 0;

	if (r < 0)
		return fail("attach", r);
	for (int i = 4; i < argc; i++) {
		struct shma_handle h;
		void *d;
		if (shm_handle_parse(argv[i], &h) < 0)
			return fail("handle", -EINVAL);
		r = shma_adopt(p, &h);
		if (r == -ESTALE) {
			stale++;
			continue;
		}
		if (r < 0)
			return fail("adopt", r);
		/* Ours now: nobody frees it under us (unless its sender frees it). */
		r = shma_resolve(p, &h, &d);
		if (r == 0 && !shm_pattern_ok(d, h.len, shm_pattern_seed(&h)))
			return fail("pattern", -EBADMSG);
		adopted++;
	}
	printf("A %d %d\n", adopted, stale);
	fflush(stdout);
	for (;;)
		pause();        /* until SIGKILL */
}

static int do_memfd_hold(char **argv)
{
	struct shma_pool_opts o = { .size = sizeof(o), .backend = SHMA_BACKEND_MEMFD, .name = argv[2],
				    .chunk_size = 1u << 20 };
	int n = atoi(argv[3]), leak = atoi(argv[4]);
	struct shma_pool *p;
	int r = shma_pool_create(&o, &p);

	if (r < 0)
		return fail("create", r);
	for (int i = 0; i < n; i++)
		if ((r = shma_alloc(p, 100, 0, NULL, NULL)) < 0)
			return fail("alloc", r);
	if (leak) {
		/* the child registers as itself at its first allocation, then dies attached */
		pid_t pid = fork();
		int st;

		if (pid < 0)
			return fail("fork", -errno);
		if (pid == 0) {
			for (int i = 0; i < leak; i++)
				if (shma_alloc(p, 100, 0, NULL, NULL) < 0)
					_exit(1);
			_exit(0);
		}
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			return fail("leaking child", -ECHILD);
	}
	printf("R\n");
	fflush(stdout);
	for (;;)
		pause();        /* until killed */
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "resolve"))
		return do_resolve(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "memfd"))
		return do_memfd(argv);
	if (argc == 7 && !strcmp(argv[1], "churn"))
		return do_churn(argv);
	if (argc == 4 && !strcmp(argv[1], "loop"))
		return do_loop(argv);
	if (argc == 4 && !strcmp(argv[1], "threads"))
		return do_threads(argv);
	if (argc == 5 && !strcmp(argv[1], "leak"))
		return do_leak(argv);
	if (argc == 5 && !strcmp(argv[1], "create"))
		return do_create(argv);
	if (argc == 5 && !strcmp(argv[1], "hold"))
		return do_hold(argv);
	if (argc == 4 && !strcmp(argv[1], "crash"))
		return do_crash(argv);
	if (argc == 6 && !strcmp(argv[1], "handover"))
		return do_handover(argv);
	if (argc >= 4 && !strcmp(argv[1], "adopt"))
		return do_adopt(argc, argv);
	if (argc == 5 && !strcmp(argv[1], "memfd-hold"))
		return do_memfd_hold(argv);
	fprintf(stderr, "usage: shm-child resolve|memfd|churn|loop|threads|leak|create|hold|crash|handover|adopt|memfd-hold ...\n");
	return 2;
}
