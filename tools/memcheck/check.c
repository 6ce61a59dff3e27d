/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memcheck-guest: helpers shared by the checks. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/memcheck/check.h"
#include "tools/memcheck/host.h"
#include "tools/memcheck/pattern.h"

static void set(struct mc_result *res, enum mc_status st, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void set(struct mc_result *res, enum mc_status st, const char *fmt, va_list ap)
{
	res->status = st;
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
}

void mc_pass(struct mc_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set(res, MC_PASS, fmt, ap);
	va_end(ap);
}

void mc_fail(struct mc_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set(res, MC_FAIL, fmt, ap);
	va_end(ap);
}

void mc_skip(struct mc_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set(res, MC_SKIP, fmt, ap);
	va_end(ap);
}

void mc_metric(struct mc_result *res, const char *name, double value, const char *unit)
{
	if (res->nmetrics < MC_MAX_METRICS)
		res->metrics[res->nmetrics++] = (struct mc_metric){ name, value, unit };
}

bool mc_injected(const struct mc_opts *o, const char *check)
{
	return o->inject && (!strcmp(o->inject, check) || !strcmp(o->inject, "all"));
}

void mc_note(const struct mc_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->verbose)
		return;
	va_start(ap, fmt);
	fputs("memcheck-guest: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

bool mc_check_vm(const struct mc_opts *o, struct mc_vm *vm, struct mc_result *res)
{
	if (mc_vm_open(vm, o->kvm_fd, o->timeout_ns) == 0)
		return true;
	mc_fail(res, "VM setup: %s", vm->err.msg);
	mc_vm_close(vm);
	return false;
}

/* ---- host side of pattern checks, through the region's host API ---------- */

#define CHUNK (1u << 20)

int mc_host_verify(struct mc_mem *m, uint64_t gpa, unsigned kind, uint64_t seed,
		   struct mc_mismatch *mm)
{
	uint64_t size = mc_mem_size(m);
	uint64_t *buf = malloc(CHUNK);
	struct mc_pat p;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	memset(mm, 0, sizeof(*mm));
	mc_pat_init(&p, kind, seed, gpa);
	for (uint64_t off = 0; off < size; off += CHUNK) {
		size_t n = (size_t)MK_MIN((uint64_t)CHUNK, size - off);

		r = mc_mem_read(m, off, buf, n);
		if (r < 0)
			break;
		for (size_t i = 0; i < n / 8; i++) {
			uint64_t want = mc_pat_next(&p);

			if (mk_unlikely(buf[i] != want)) {
				if (!mm->count) {
					mm->first_gpa = gpa + off + i * 8;
					mm->expected = want;
					mm->actual = buf[i];
				}
				mm->count++;
			}
		}
	}
	free(buf);
	return r;
}

int mc_host_fill(struct mc_mem *m, uint64_t gpa, unsigned kind, uint64_t seed)
{
	uint64_t size = mc_mem_size(m);
	uint64_t *buf = malloc(CHUNK);
	struct mc_pat p;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	mc_pat_init(&p, kind, seed, gpa);
	for (uint64_t off = 0; off < size && r == 0; off += CHUNK) {
		size_t n = (size_t)MK_MIN((uint64_t)CHUNK, size - off);

		mc_pat_fill(&p, buf, n / 8);
		r = mc_mem_write(m, off, buf, n);
	}
	free(buf);
	return r;
}

int mc_host_checksum(struct mc_mem *m, uint64_t *out)
{
	uint64_t size = mc_mem_size(m), h = MC_FNV_OFFSET;
	void *buf = malloc(CHUNK);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < size && r == 0; off += CHUNK) {
		size_t n = (size_t)MK_MIN((uint64_t)CHUNK, size - off);

		r = mc_mem_read(m, off, buf, n);
		h = mc_checksum(h, buf, n);
	}
	free(buf);
	*out = h;
	return r;
}

/* Flip one bit in the middle of the region: the debug fault injection. */
int mc_host_corrupt(struct mc_mem *m, uint64_t off)
{
	uint8_t b;
	int r = mc_mem_read(m, off, &b, 1);

	if (r < 0)
		return r;
	b ^= 0x10;
	return mc_mem_write(m, off, &b, 1);
}
