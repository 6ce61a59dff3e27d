/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest benchmark, one table:
 *  - start-up: process exec -> the guest's first instruction (its first
 *    OUT), VM creation -> first instruction, and VM create + test memory
 *    bind + first command exit, in fresh processes (fork + exec of this
 *    program with a hidden --child argument);
 *  - pattern throughput inside the guest (fill, verify) against host
 *    memset / memcmp / the same pattern loop in C, over the same bytes of
 *    the same region in the same run.
 * Medians of several runs. Measurements, not assertions.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "tools/memcheck/mem.h"
#include "tools/memcheck/pattern.h"
#include "tools/memcheck/proto.h"
#include "tools/memcheck/vm.h"
#include "bench/bench-util.h"

#define STARTS 15
#define RUNS 5
#define BIND_SIZE (64ull << 20)
#define TPUT_SIZE (256ull << 20)
#define TIMEOUT_NS 30000000000ull

static void die(const char *what, const char *why) __attribute__((noreturn));
static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench-memcheck: %s: %s\n", what, why);
	exit(1);
}

static void guest(struct mc_vm *vm, uint64_t op, uint64_t addr, uint64_t len, uint64_t seed,
		  uint64_t arg, uint64_t *res0)
{
	struct mc_cmd c = { op, addr, len, seed, arg, { 0 } };

	if (mc_vm_do(vm, &c) < 0)
		die("guest command", vm->err.msg);
	if (res0)
		*res0 = c.res[0];
}

/* --child T0: one cold start; prints "exec->hello create->hello create->bind+exit" in ns. */
static int child(const char *t0s)
{
	uint64_t t0 = g_ascii_strtoull(t0s, NULL, 10), t_main = mk_now_ns(), t_bound;
	struct mc_mem *m;
	const char *why = "";
	struct mc_vm vm;
	int fd = mk_kvm_open();

	(void)t_main;
	if (fd < 0)
		die("KVM", mk_kvm_strerror(fd));
	if (mc_vm_open(&vm, fd, TIMEOUT_NS) < 0)
		die("VM", vm.err.msg);
	if (mc_mem_new(BIND_SIZE, &m, &why) < 0 ||
	    mc_mem_bind(m, &vm, MC_SLOT_TEST, MC_GPA_TEST, 0, &why) < 0)
		die("test memory", why);
	guest(&vm, MC_OP_READ64, MC_GPA_TEST, 0, 0, 0, NULL);
	t_bound = mk_now_ns();
	printf("%llu %llu %llu\n", (unsigned long long)(vm.t_hello_ns - t0),
	       (unsigned long long)(vm.t_hello_ns - vm.t_open_ns),
	       (unsigned long long)(t_bound - vm.t_open_ns));
	mc_vm_close(&vm);
	mc_mem_free(m);
	mk_close(fd);
	return 0;
}

static void startup(void)
{
	double exec_ms[STARTS], create_ms[STARTS], bind_ms[STARTS];

	for (int i = 0; i < STARTS; i++) {
		unsigned long long a, b, c;
		int pfd[2], status;
		char buf[128] = "";
		ssize_t n;
		pid_t pid;

		if (pipe(pfd) < 0)
			die("pipe", strerror(errno));
		pid = fork();
		if (pid < 0)
			die("fork", strerror(errno));
		if (pid == 0) {
			char t0[32];

			dup2(pfd[1], STDOUT_FILENO);
			snprintf(t0, sizeof(t0), "%llu", (unsigned long long)mk_now_ns());
			execl("/proc/self/exe", "bench-memcheck", "--child", t0, (char *)NULL);
			_exit(127);
		}
		close(pfd[1]);
		n = read(pfd[0], buf, sizeof(buf) - 1);
		close(pfd[0]);
		waitpid(pid, &status, 0);
		if (n <= 0 || sscanf(buf, "%llu %llu %llu", &a, &b, &c) != 3)
			die("child", "no result");
		exec_ms[i] = (double)a / 1e6;
		create_ms[i] = (double)b / 1e6;
		bind_ms[i] = (double)c / 1e6;
	}
	printf("%-52s %10s %10s\n", "start-up (fresh process, median of 15)", "ms", "target");
	printf("%-52s %10.3f\n", "  exec -> first guest instruction (first OUT)", bench_median(exec_ms, STARTS));
	printf("%-52s %10.3f %10s\n", "  VM create -> first guest instruction", bench_median(create_ms, STARTS),
	       "<= 5");
	printf("%-52s %10.3f\n", "  VM create + 64 MiB bind + first command exit", bench_median(bind_ms, STARTS));
}

static double gbps(uint64_t bytes, double ns)
{
	return (double)bytes / ns;
}

static void throughput(int fd)
{
	double g_fill[RUNS], g_rand[RUNS], g_ver[RUNS], h_set[RUNS], h_cmp[RUNS], h_loop[RUNS],
	       h_rand[RUNS], h_vloop[RUNS];
	const char *why = "";
	struct mc_mem *m;
	struct mc_vm vm;
	uint8_t *hva, *ref;
	uint64_t t, bad;
	volatile int sink = 0;

	if (mc_vm_open(&vm, fd, TIMEOUT_NS) < 0)
		die("VM", vm.err.msg);
	if (mc_mem_new(TPUT_SIZE, &m, &why) < 0 ||
	    mc_mem_bind(m, &vm, MC_SLOT_TEST, MC_GPA_TEST, 0, &why) < 0)
		die("test memory", why);
	hva = mc_mem_host_ptr(m);
	ref = malloc(TPUT_SIZE);
	if (!ref)
		die("malloc", "out of memory");
	/* Warm: every page present on both sides before timing. */
	guest(&vm, MC_OP_FILL, MC_GPA_TEST, TPUT_SIZE, 0, MC_PAT_WALK1, NULL);
	memset(ref, 1, TPUT_SIZE);

	for (int r = 0; r < RUNS; r++) {
		struct mc_pat p;

		t = mk_now_ns();
		guest(&vm, MC_OP_FILL, MC_GPA_TEST, TPUT_SIZE, (uint64_t)r, MC_PAT_WALK1, NULL);
		g_fill[r] = gbps(TPUT_SIZE, (double)(mk_now_ns() - t));
		memcpy(ref, hva, TPUT_SIZE);
		t = mk_now_ns();
		guest(&vm, MC_OP_VERIFY, MC_GPA_TEST, TPUT_SIZE, (uint64_t)r, MC_PAT_WALK1, &bad);
		g_ver[r] = gbps(TPUT_SIZE, (double)(mk_now_ns() - t));
		if (bad)
			die("guest verify", "mismatches");
		t = mk_now_ns();
		sink += memcmp(hva, ref, TPUT_SIZE);
		h_cmp[r] = gbps(TPUT_SIZE, (double)(mk_now_ns() - t));
		t = mk_now_ns();
		guest(&vm, MC_OP_FILL, MC_GPA_TEST, TPUT_SIZE, (uint64_t)r + 1, MC_PAT_RANDOM, NULL);
		g_rand[r] = gbps(TPUT_SIZE, (double)(mk_now_ns() - t));

		t = mk_now_ns();
		memset(hva, 0x5a + r, TPUT_SIZE);
		h_set[r] = gbps(TPUT_SIZE, (double)(mk_now_ns() - t));
		t = mk_now_ns();
		mc_pat_init(&p, MC_PAT_WALK1, (uint64_t)r, 0);
		mc_pat_fill(&p, (uint64_t *)hva, TPUT_SIZE / 8);
		h_loop[r] = gbps(TPUT_SIZE, (double)(mk_now_ns() - t));
		t = mk_now_ns();
		mc_pat_init(&p, MC_PAT_WALK1, (uint64_t)r, 0);
		for (size_t i = 0; i < TPUT_SIZE / 8; i++)
			sink += ((uint64_t *)hva)[i] != mc_pat_next(&p);
		h_vloop[r] = gbps(TPUT_SIZE, (double)(mk_now_ns() - t));
		t = mk_now_ns();
		mc_pat_init(&p, MC_PAT_RANDOM, (uint64_t)r + 1, 0);
		mc_pat_fill(&p, (uint64_t *)hva, TPUT_SIZE / 8);
		h_rand[r] = gbps(TPUT_SIZE, (double)(mk_now_ns() - t));
		/* The raw pointer's promise (mc_mem_host_ptr), kept outside the timing. */
		if (mc_mem_mark_dirty(m, 0, TPUT_SIZE) < 0)
			die("mc_mem_mark_dirty", "refused");
	}
	printf("\n%-34s %9s %9s %9s %8s\n", "throughput, 256 MiB, warm (GB/s)", "guest", "host",
	       "ratio", "target");
	printf("%-34s %9.2f %9.2f %9.2f %8s\n", "  fill walking-ones vs memset", bench_median(g_fill, RUNS),
	       bench_median(h_set, RUNS), bench_median(g_fill, RUNS) / bench_median(h_set, RUNS), ">= 0.5");
	printf("%-34s %9.2f %9.2f %9.2f\n", "  fill walking-ones vs C loop", bench_median(g_fill, RUNS),
	       bench_median(h_loop, RUNS), bench_median(g_fill, RUNS) / bench_median(h_loop, RUNS));
	printf("%-34s %9.2f %9.2f %9.2f\n", "  fill random vs C xorshift loop", bench_median(g_rand, RUNS),
	       bench_median(h_rand, RUNS), bench_median(g_rand, RUNS) / bench_median(h_rand, RUNS));
	printf("%-34s %9.2f %9.2f %9.2f %8s\n", "  verify walking-ones vs memcmp", bench_median(g_ver, RUNS),
	       bench_median(h_cmp, RUNS), bench_median(g_ver, RUNS) / bench_median(h_cmp, RUNS), ">= 0.5");
	printf("%-34s %9.2f %9.2f %9.2f\n", "  verify walking-ones vs C loop", bench_median(g_ver, RUNS),
	       bench_median(h_vloop, RUNS), bench_median(g_ver, RUNS) / bench_median(h_vloop, RUNS));
	(void)sink;
	mc_vm_close(&vm);
	mc_mem_free(m);
	free(ref);
}

int main(int argc, char **argv)
{
	int fd;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child(argv[2]);
	fd = mk_kvm_open();
	if (fd < 0) {
		printf("bench-memcheck: SKIP: KVM unavailable: %s\n", mk_kvm_strerror(fd));
		return 0;
	}
	startup();
	throughput(fd);
	mk_close(fd);
	return 0;
}
