/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest shm check: a block of a libshm pool is bound into the
 * guest (its chunk becomes a memslot); the guest writes the block; a
 * second process (this program re-executed with the hidden --shm-helper
 * option) attaches the pool by name, resolves the block's handle and
 * checks the bytes.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "shm.h"
#include "tools/memcheck/check.h"
#include "tools/memcheck/pattern.h"

#define BLOCK_LEN (64u << 10)
#define CHUNK_SIZE (1u << 20)

static void lib_error(struct mc_result *res, const char *call, int r)
{
	if (r == -ENOSYS)
		mc_skip(res, "libshm: %s not implemented", call);
	else
		mc_fail(res, "libshm: %s: %s", call, strerror(-r));
}

/* Run the helper; 0 when it saw the bytes, else a reason in res. */
static bool run_helper(const struct mc_opts *o, const char *name, const struct shma_handle *h,
		       uint64_t seed, struct mc_result *res)
{
	g_autofree char *spec = g_strdup_printf("%s:%u:%u:%u:%u:%" PRIu64, name, h->chunk, h->gen,
						h->offset, h->len, seed);
	g_autofree char *arg = g_strdup_printf("--shm-helper=%s", spec);
	g_autofree char *err_out = NULL;
	g_autoptr(GError) err = NULL;
	char *argv[] = { (char *)o->self, arg, NULL };
	int status = 0;

	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
			  &err_out, &status, &err)) {
		mc_fail(res, "spawn %s: %s", o->self, err->message);
		return false;
	}
	if (!g_spawn_check_wait_status(status, NULL)) {
		g_strchomp(err_out);
		mc_fail(res, "other process: %s", *err_out ? err_out : "failed");
		return false;
	}
	return true;
}

void mc_check_shm(const struct mc_opts *o, struct mc_result *res)
{
	g_autofree char *name = g_strdup_printf("memcheck-%d", (int)getpid());
	struct shma_pool_opts po = {
		.size = sizeof(po), .backend = SHMA_BACKEND_SHM, .name = name,
		.chunk_size = CHUNK_SIZE,
	};
	uint64_t seed = o->seed ^ 0x73686d, t;
	struct shma_pool *pool = NULL;
	struct shma_chunk_info ci = { .size = sizeof(ci) };
	struct shma_handle h;
	void *ptr = NULL;
	struct mc_vm vm;
	struct mc_cmd c;
	int r;

	if (!mc_check_vm(o, &vm, res))
		return;
	r = shma_pool_create(&po, &pool);
	if (r < 0) {
		lib_error(res, "shma_pool_create", r);
		goto out;
	}
	r = shma_alloc(pool, BLOCK_LEN, 4096, &h, &ptr);
	if (r < 0) {
		lib_error(res, "shma_alloc", r);
		goto out;
	}
	r = shma_block_chunk(pool, &h, &ci);
	if (r < 0) {
		lib_error(res, "shma_block_chunk", r);
		goto out;
	}
	if (ci.len % 4096 || (uintptr_t)ci.base % 4096 || ci.offset > ci.len ||
	    BLOCK_LEN > ci.len - ci.offset) {
		mc_fail(res, "libshm: chunk info out of range (len %llu, offset %llu)",
			(unsigned long long)ci.len, (unsigned long long)ci.offset);
		goto out;
	}
	r = mk_kvm_set_memslot(vm.tv.vm_fd, MC_SLOT_SHM, 0, MC_GPA_SHM, ci.len, ci.base);
	if (r < 0) {
		mc_fail(res, "KVM_SET_USER_MEMORY_REGION (libshm chunk): %s", strerror(-r));
		goto out;
	}
	c = (struct mc_cmd){ MC_OP_FILL, MC_GPA_SHM + ci.offset, BLOCK_LEN, seed, MC_PAT_RANDOM, { 0 } };
	if (mc_vm_do(&vm, &c) < 0) {
		mc_fail(res, "guest fill of the block: %s", vm.err.msg);
		goto out;
	}
	mc_note(o, "shm: pool %s, chunk %u (%llu bytes) at gpa 0x%llx; guest wrote the block",
		shma_pool_name(pool), ci.index, (unsigned long long)ci.len,
		(unsigned long long)MC_GPA_SHM);
	t = mk_now_ns();
	if (!run_helper(o, shma_pool_name(pool), &h, mc_injected(o, "shm") ? seed ^ 1 : seed, res))
		goto out;
	mc_metric(res, "helper_ms", (double)(mk_now_ns() - t) / 1e6, "ms");
	mc_pass(res, "guest wrote a %u KiB block at gpa 0x%llx; another process resolved its "
		"handle and read the same bytes", BLOCK_LEN >> 10,
		(unsigned long long)(MC_GPA_SHM + ci.offset));
out:
	mc_vm_close(&vm);
	if (pool) {
		if (ptr)
			shma_free(pool, ptr);
		shma_pool_unlink(pool);
		shma_pool_free(pool);
	}
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!g_ascii_isdigit(*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* The second process: NAME:CHUNK:GEN:OFFSET:LEN:SEED. Exit 0 when the bytes match. */
int mc_shm_helper(const char *spec)
{
	g_auto(GStrv) f = g_strsplit(spec, ":", -1);
	struct shma_handle h;
	struct shma_pool *pool = NULL;
	struct mc_pat p;
	uint64_t seed, *words;
	void *ptr;
	char *end;
	int r;

	if (g_strv_length(f) != 6 || !parse_u32(f[1], &h.chunk) || !parse_u32(f[2], &h.gen) ||
	    !parse_u32(f[3], &h.offset) || !parse_u32(f[4], &h.len) || !g_ascii_isdigit(*f[5])) {
		fprintf(stderr, "memcheck-guest: --shm-helper: malformed '%s'\n", spec);
		return 2;
	}
	errno = 0;
	seed = strtoull(f[5], &end, 10);
	if (errno || *end) {
		fprintf(stderr, "memcheck-guest: --shm-helper: bad seed '%s'\n", f[5]);
		return 2;
	}
	r = shma_pool_attach(NULL, f[0], SHMA_ATTACH_RDONLY, &pool);
	if (r < 0) {
		fprintf(stderr, "shma_pool_attach(%s): %s\n", f[0], strerror(-r));
		return 1;
	}
	r = shma_resolve(pool, &h, &ptr);
	if (r < 0) {
		fprintf(stderr, "shma_resolve: %s\n", strerror(-r));
		shma_pool_free(pool);
		return 1;
	}
	/* The pool is shared with others: copy once, then compare. */
	words = g_malloc(h.len);
	memcpy(words, ptr, h.len);
	mc_pat_init(&p, MC_PAT_RANDOM, seed, 0);
	r = 0;
	for (size_t i = 0; i < h.len / 8; i++) {
		uint64_t want = mc_pat_next(&p);

		if (words[i] != want) {
			fprintf(stderr, "block word %zu (pid %d) is 0x%016" PRIx64 ", the guest wrote "
				"0x%016" PRIx64 "\n", i, (int)getpid(), words[i], want);
			r = 1;
			break;
		}
	}
	g_free(words);
	shma_pool_free(pool);
	return r;
}
