/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The dirty record of a region: one bit per page written since the last
 * snapshot, restore or remap, set by host copies (sbx_dirty_mark) and by
 * the KVM dirty logs of the region's bindings once fetched
 * (sbx_dirty_collect). Restore walks its runs; a region rebased on a
 * snapshot (sbx_dirty_rebase) starts an empty record.
 */
#include "config.h"

#include <string.h>

#include "common/kvm.h"
#include "sandboxP.h"

void sbx_dirty_mark(struct sbx_mem *m, uint64_t off, uint64_t len)
{
	uint64_t first, last;

	if (!len)
		return;
	first = off >> m->page_shift;
	last = (off + len - 1) >> m->page_shift;
	/* Host copies may run on several threads at once: atomic OR per word. */
	for (uint64_t w = first / 64; w <= last / 64; w++) {
		uint64_t lo = w == first / 64 ? first % 64 : 0;
		uint64_t hi = w == last / 64 ? last % 64 : 63;
		uint64_t bits = (hi == 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & ~((1ull << lo) - 1);
		if ((__atomic_load_n(&m->dirty[w], __ATOMIC_RELAXED) & bits) != bits)
			__atomic_or_fetch(&m->dirty[w], bits, __ATOMIC_RELAXED);
	}
}

void sbx_dirty_clear(struct sbx_mem *m)
{
	memset(m->dirty, 0, m->dirty_words * sizeof(uint64_t));
}

void sbx_dirty_rebase(struct sbx_mem *m, struct sbx_snapshot *s)
{
	if (m->snap != s) {
		sbx_snapshot_unref(m->snap);
		m->snap = sbx_snapshot_ref(s);
	}
	m->snap_len = m->size;
	sbx_dirty_clear(m);
	m->untracked = false;
}

uint64_t sbx_dirty_count(const struct sbx_mem *m)
{
	uint64_t n = 0;

	for (size_t i = 0; i < m->dirty_words; i++)
		n += (uint64_t)__builtin_popcountll(__atomic_load_n(&m->dirty[i], __ATOMIC_RELAXED));
	return n;
}

int64_t sbx_dirty_for_runs(struct sbx_mem *m, bool want,
			   int (*fn)(struct sbx_mem *m, uint64_t first, uint64_t n))
{
	int64_t pages = 0;
	uint64_t i = 0;

	while (i < m->npages) {
		uint64_t w = m->dirty[i / 64];
		uint64_t bits = want ? w : ~w;
		uint64_t start, end;
		int r;

		bits &= ~0ull << (i % 64);
		if (!bits) {
			i = (i / 64 + 1) * 64;
			continue;
		}
		start = (i / 64) * 64 + (uint64_t)__builtin_ctzll(bits);
		if (start >= m->npages)
			break;
		/* Extend the run while the bits stay as wanted. */
		end = start + 1;
		while (end < m->npages) {
			uint64_t ww = m->dirty[end / 64];
			uint64_t b = (want ? ~ww : ww) & (~0ull << (end % 64));
			if (b) {
				end = (end / 64) * 64 + (uint64_t)__builtin_ctzll(b);
				break;
			}
			end = (end / 64 + 1) * 64;
		}
		if (end > m->npages)
			end = m->npages;
		r = fn(m, start, end - start);
		if (r < 0)
			return r;
		pages += (int64_t)(end - start);
		i = end;
	}
	return pages;
}

bool sbx_binding_writable(const struct sbx_binding *b)
{
	return b->mem && !(b->kflags & KVM_MEM_READONLY);
}

int sbx_dirty_fetch_log(struct sbx_binding *b)
{
	struct sbx_mem *m = b->mem;
	int r = mk_kvm_get_dirty_log(b->vm->vm_fd, b->slot, b->log);

	if (r < 0) {
		sbx_refuse(LOG_WARNING, "KVM_GET_DIRTY_LOG of memslot %" PRIu32 " failed (%d)",
			   b->slot, r);
		return r;
	}
	for (size_t i = 0; i < m->dirty_words; i++)
		if (b->log[i])
			__atomic_or_fetch(&m->dirty[i], b->log[i], __ATOMIC_RELAXED);
	return 0;
}

int sbx_dirty_collect(struct sbx_mem *m)
{
	bool untracked = false;

	for (struct sbx_binding *b = m->binds; b; b = b->mem_next) {
		if (!sbx_binding_writable(b))
			continue;
		/* Unlogged, or a log we cannot read (VM fd closed under us?): assume the worst. */
		if (!b->log || sbx_dirty_fetch_log(b) < 0)
			untracked = true;
	}
	return untracked;
}
