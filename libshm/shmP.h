/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libshm internals: the shared layout and one process's view of it.
 *
 * Shared (the same bytes in every process, offsets only):
 *   root file   struct shma_root: geometry, registered users, one free-list
 *               head per size class, the chunk slot table.
 *   chunk file  struct shma_chunk_hdr at offset 0, then blocks. Regular
 *               chunks (chunk_size bytes) are carved by a bump pointer
 *               kept in the slot; dedicated chunks hold one large block.
 *   block       struct shma_blk (16 bytes) right before the data.
 *
 * A block is named inside the pool by a 32-bit ref: (slot * chunk_size +
 * offset) / 16. Regular chunk slot i is mapped at resv + i * chunk_size in
 * every process, so pointer <-> ref is arithmetic.
 *
 * Free lists are Treiber stacks; each head is 16 bytes (a 48-bit tag and
 * the acting record in one word, the first ref in the other), changed by
 * one 16-byte CAS (list.c), so a CAS can never suffer ABA (the tag
 * changes on every push/pop). A block's state and generation share one
 * 64-bit word; a block is allocated iff its generation is odd, and the
 * free path moves it odd -> even with one CAS, so a double free loses
 * that race cleanly.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <syslog.h>

#include "common/log.h"
#include "shm.h"

#define SHMA_ROOT_MAGIC  "MKSHMPL1"
#define SHMA_CHUNK_MAGIC "MKSHMCK1"
/* 2: slot bump words carry the slot generation; 3: a free header may name
 * its holder (a thread cache, a trim), which older processes would not honour;
 * 4: in-flight records of chains (POPN, PUSHN), which older reclaims would drop */
#define SHMA_LAYOUT_VERSION 4

#define SHMA_MAX_USERS   255u           /* owner byte 0xff = unowned */
/* users[SHMA_MAX_USERS], never a registration: held by shma_pool_repair(). */
#define SHMA_REPAIR_SLOT SHMA_MAX_USERS
/* Flags of a free block a trim or repair of its owner holds off the lists (see below). */
#define SHMA_F_HELD       0xc0u
#define SHMA_OWNER_NONE  0xffu
#define SHMA_SLOTS_MAX   8192u
#define SHMA_SPAN_MAX    (64ull << 30)  /* refs are 32-bit in 16-byte granules */
#define SHMA_CHUNK_DATA  64u            /* first block header of a regular chunk */
#define SHMA_GRANULE     16u
/* shma_free_blk()'s only_owner when any owner will do (owners are 0..0xff). */
#define SHMA_ANY_OWNER   0x100u
/* A pool file's name: "memkit-shm." NAME (< SHMA_NAME_MAX) ".IDX.NONCE". */
#define SHMA_FNAME_MAX   128u

/* The mode of every file of a SHM pool; anything else is not ours (-EPERM). */
#define SHMA_FILE_MODE 0600

/* ---- block header ---------------------------------------------------------- */

#define SHMA_BLK_MAGIC   0x5a4du
#define SHMA_CLASS_LARGE 0x3fu          /* class id of a dedicated chunk's block */
#define SHMA_F_SHIFTED   0x40u          /* start header of an over-aligned block */
#define SHMA_F_INNER     0x80u          /* the header right before over-aligned data */

/*
 * word: gen (bits 0..31) | class+flags (32..39) | owner (40..47) | magic (48..63)
 * self: this header's ref (INNER: the block start's ref)
 * aux:  free: next ref in the class list; allocated: length (SHIFTED: the
 *       distance in bytes from the start to the inner header)
 *
 * A free class block's start header (even gen) says who may push it:
 *   flags 0, owner NONE: on a free list, or in a push or pop under way
 *     (an in-flight record names it: see intents).
 *   flags 0xc0 (SHMA_F_HELD), owner u: on a list shma_pool_trim or
 *     shma_pool_repair of user u took whole (a TAKE record); u pushes it
 *     back unmarked, or (trim) its chunk goes. Once u is dead, reclaim
 *     pushes it.
 *   flags 0, owner u: held privately by user u (a per-thread cache);
 *     once u is dead, reclaim pushes it.
 * So a plain free must never leave "flags 0, owner u" behind: its commit
 * writes owner NONE at once (alloc.c, free_commit).
 */
struct shma_blk {
	uint64_t word;
	uint32_t self;
	uint32_t aux;
};

static inline uint64_t shma_blk_word(uint32_t gen, unsigned cls, unsigned owner)
{
	return (uint64_t)gen | (uint64_t)(cls & 0xff) << 32 | (uint64_t)(owner & 0xff) << 40 |
	       (uint64_t)SHMA_BLK_MAGIC << 48;
}
static inline uint32_t shma_w_gen(uint64_t w) { return (uint32_t)w; }
static inline unsigned shma_w_cls(uint64_t w) { return (unsigned)(w >> 32) & 0x3f; }
static inline unsigned shma_w_flags(uint64_t w) { return (unsigned)(w >> 32) & 0xc0; }
static inline unsigned shma_w_owner(uint64_t w) { return (unsigned)(w >> 40) & 0xff; }
static inline bool shma_w_magic_ok(uint64_t w) { return (w >> 48) == SHMA_BLK_MAGIC; }
/* Is w a free class block's start header that user u's trim or repair holds (SHMA_F_HELD)? */
static inline bool shma_w_held_by(uint64_t w, unsigned u)
{
	return shma_w_magic_ok(w) && !(shma_w_gen(w) & 1) && shma_w_flags(w) == SHMA_F_HELD &&
	       shma_w_cls(w) != SHMA_CLASS_LARGE && shma_w_owner(w) == u && u != SHMA_OWNER_NONE;
}

/* ---- chunk slots ------------------------------------------------------------ */

enum { SHMA_SLOT_FREE = 0, SHMA_SLOT_CREATING = 1, SHMA_SLOT_LIVE = 2 };
enum { SHMA_KIND_REGULAR = 0, SHMA_KIND_DEDICATED = 1 };
/* Flag on a CREATING slot's kind: just claimed, the nonce is the claimer's pid. */
#define SHMA_KIND_CLAIMING 0x80u

/* state: nonce (0..31) | gen (32..47) | st (48..55) | kind (56..63) */
static inline uint64_t shma_slot_word(uint32_t nonce, unsigned gen, unsigned st, unsigned kind)
{
	return (uint64_t)nonce | (uint64_t)(gen & 0xffff) << 32 | (uint64_t)(st & 0xff) << 48 |
	       (uint64_t)(kind & 0xff) << 56;
}
static inline uint32_t shma_s_nonce(uint64_t s) { return (uint32_t)s; }
static inline unsigned shma_s_gen(uint64_t s) { return (unsigned)(s >> 32) & 0xffff; }
static inline unsigned shma_s_st(uint64_t s) { return (unsigned)(s >> 48) & 0xff; }
static inline unsigned shma_s_kind(uint64_t s) { return (unsigned)(s >> 56) & 0xff; }

/*
 * A regular chunk's bump word: the slot generation it carves for (32..47)
 * and the next free byte offset (0..31; once trim closed it, chunk_size +
 * 1 + the offset carving had reached, so walks still know where the
 * carved part ends), and the record of the carve that set it (48..63; see intents; for
 * a closed chunk, the record of the trim that closed it, which had every
 * carved block SHMA_F_HELD: reclaim of that trimmer drops the chunk).
 * A carver reads the slot state, maps that generation, then CASes
 * the bump word expecting that generation: were the chunk trimmed and
 * created anew in between (an ABA on the offset alone: the new chunk's
 * bump can reach the old value), the CAS fails instead of carving the new
 * chunk through the old one's mapping.
 */
static inline uint64_t shma_bump_word(unsigned gen, uint64_t off, unsigned actor)
{
	return (uint64_t)actor << 48 | (uint64_t)(gen & 0xffff) << 32 | (uint32_t)off;
}
static inline uint64_t shma_bump_off(uint64_t b) { return (uint32_t)b; }
static inline unsigned shma_bump_gen(uint64_t b) { return (unsigned)(b >> 32) & 0xffff; }
/* The record of the carve that set it (see intents), 0 none. */
static inline unsigned shma_bump_actor(uint64_t b) { return (unsigned)(b >> 48); }
/* Closed to carving by a trim (about to be dropped)? */
static inline bool shma_bump_closed(uint64_t b, uint64_t chunk_size) { return shma_bump_off(b) > chunk_size; }
/* Where the carved part ends, open or closed (a damaged word: at most chunk_size). */
static inline uint64_t shma_bump_end(uint64_t b, uint64_t chunk_size)
{
	uint64_t off = shma_bump_off(b);

	if (off > chunk_size)
		off -= chunk_size + 1;
	return off < chunk_size ? off : chunk_size;
}

/*
 * Generations. A slot's 16-bit generation (in handles) would wrap after
 * 65,535 reuses; the slot's epoch counts the wraps (bumped, by CAS, while
 * the slot is FREE at generation 0xffff, before the claim that wraps it).
 * A dedicated chunk's block generation is SHMA_GEN_DEDICATED | epoch << 1
 * | 1, so a handle from an earlier epoch is -ESTALE (2^46 reuses of one
 * slot); a slot that ever wrapped holds only dedicated chunks, so regular
 * chunks' (slot, generation) pairs never repeat; and a class block whose
 * generation would reach SHMA_GEN_RETIRED (2^30 reuses) is retired
 * (left free, never listed) instead of wrapping.
 */
#define SHMA_GEN_DEDICATED 0x80000000u
#define SHMA_GEN_RETIRED   0x7ffffffeu
#define SHMA_EPOCH_MAX     0x3fffffffu

struct shma_slot {                      /* 64 bytes: one cache line each */
	uint64_t state;
	uint64_t size;
	uint64_t bump;                  /* regular: shma_bump_word() */
	int64_t owner_pid;
	uint64_t owner_start;
	uint64_t epoch;                 /* wraps of the generation (see above) */
	uint64_t pad[2];
};
_Static_assert(sizeof(struct shma_slot) == 64, "a chunk slot is one cache line");

static inline uint32_t shma_dedicated_gen(uint64_t epoch)
{
	return SHMA_GEN_DEDICATED | (uint32_t)(epoch & SHMA_EPOCH_MAX) << 1 | 1;
}

/*
 * A registration. pid > 0: that process (start: its start time, 0 while
 * it registers); pid < 0: process -pid is giving back what the dead
 * registrant held (judged alive by its pid alone); 0: free. Every change
 * of pid is a CAS, so one process at a time owns a slot.
 */
struct shma_user {
	int64_t pid;
	uint64_t start;
};

/*
 * In-flight records ("intents"): every user slot has SHMA_LANES of them in
 * the root, and every operation that moves a block between a free list or
 * a chunk's bump pointer and a header (pop, push, carve) holds one, claimed
 * per operation by a CAS (so threads, and a signal handler nested in its
 * thread's operation, each have their own). Before the CAS that moves the
 * list head or bump word, the record names the operation and the exact
 * transition it is trying to make (class and head tag, or slot, generation
 * and new bump offset); the CAS itself names the record in the word it
 * writes (the "actor"); whoever makes the next transition of that word
 * first marks the record CONFIRMED. So after a process dies, reclaim can
 * tell for each of its records whether the transition happened (the word
 * still names the record, or the record was confirmed) and finish it (give
 * back a popped or carved block whose header was never written) or roll it
 * back (push a block freed but never pushed). Only root memory is written
 * on another's behalf, never a chunk.
 *
 * word: payload (0..58) | state (59..60) | op (61..63); ref: see the ops.
 *   HEAD ops (POP, PUSH): payload = class << 48 | head tag it produces;
 *     ref = block ref | block generation (as free) << 32. A PUSH with tag 0
 *     has not tried its CAS yet.
 *   CARVE: payload = slot << 43 | slot generation << 27 | new bump / 16;
 *     ref = class.
 *   TAKE (a head op: shma_pool_trim emptying a whole list): payload as
 *     for POP; ref = the first ref it takes. Once the take happened, the
 *     taken chain is the record holder's alone: trim marks each entry
 *     SHMA_F_HELD; should it die, reclaim marks the rest (shma_resolve_user)
 *     and its walk pushes every block the dead user held.
 *   POPN, PUSHN (head ops moving a chain of 2..SHMA_CHAIN_MAX blocks
 *     between a list and a thread cache with one CAS): payload as for POP,
 *     | chain length << 54; ref = the first ref. The chain's own links
 *     (aux) are its record: a POPN that happened, or a PUSHN that did
 *     not, leaves a chain only the record holder can reach, each entry
 *     free and either marked cached by it or still owner NONE; reclaim
 *     marks the NONE ones cached by the dead user, and its walk pushes
 *     them. (So a POPN's blocks are all marked cached before the record
 *     goes, and none is allocated, its aux overwritten, before that.)
 */
#define SHMA_LANES 64u
enum {
	SHMA_OP_NONE = 0, SHMA_OP_IDLE = 1, SHMA_OP_POP = 2, SHMA_OP_PUSH = 3, SHMA_OP_CARVE = 4,
	SHMA_OP_TAKE = 5, SHMA_OP_POPN = 6, SHMA_OP_PUSHN = 7,
};
/* Blocks a POPN or PUSHN moves at most (their count fits payload bits 54..58). */
#define SHMA_CHAIN_MAX 31u
#define SHMA_IN_COUNT_SHIFT 54
enum { SHMA_IN_PENDING = 1, SHMA_IN_CONFIRMED = 2 };
#define SHMA_TAG_MASK ((1ull << 48) - 1)

struct shma_intent {
	uint64_t word;
	uint64_t ref;
};

static inline uint64_t shma_in_word(unsigned op, unsigned state, uint64_t payload)
{
	return (uint64_t)op << 61 | (uint64_t)state << 59 | (payload & ((1ull << 59) - 1));
}
static inline unsigned shma_in_op(uint64_t w) { return (unsigned)(w >> 61); }
static inline unsigned shma_in_state(uint64_t w) { return (unsigned)(w >> 59) & 3; }
static inline uint64_t shma_in_payload(uint64_t w) { return w & ((1ull << 59) - 1); }
static inline uint64_t shma_in_head(unsigned c, uint64_t tag)
{
	return (uint64_t)(c & 0x3f) << 48 | (tag & SHMA_TAG_MASK);
}
/* A head op's payload without a chain's count: what the head's (class, tag) names. */
static inline uint64_t shma_in_head_of(uint64_t payload)
{
	return payload & ((1ull << SHMA_IN_COUNT_SHIFT) - 1);
}
static inline unsigned shma_in_count(uint64_t payload)
{
	return (unsigned)(payload >> SHMA_IN_COUNT_SHIFT) & 0x1f;
}
static inline uint64_t shma_in_carve(uint32_t idx, unsigned gen, uint64_t off)
{
	return (uint64_t)(idx & 0xffff) << 43 | (uint64_t)(gen & 0xffff) << 27 | (off / 16 & 0x7ffffff);
}

/*
 * A free-list head (16 bytes, changed only by a 16-byte CAS):
 *   lo: tag (0..47, +1 on every change, never wraps in practice) | actor
 *       (48..63: the record of the last change, 0 none; see intents)
 *   hi: ref of the first block (0: empty)
 */
struct shma_head {                      /* one cache line per class */
	uint64_t lo;
	uint64_t hi;
	uint64_t pad[6];
};
_Static_assert(sizeof(struct shma_head) == 64, "a free-list head is one cache line");
static inline uint64_t shma_h_tag(uint64_t lo) { return lo & SHMA_TAG_MASK; }
static inline unsigned shma_h_actor(uint64_t lo) { return (unsigned)(lo >> 48); }
static inline uint64_t shma_h_lo(uint64_t tag, unsigned actor)
{
	return (tag & SHMA_TAG_MASK) | (uint64_t)actor << 48;
}
/* An actor names user u's record lane (+1: 0 is none). */
static inline unsigned shma_actor(unsigned u, unsigned lane) { return (u * SHMA_LANES + lane) + 1; }

struct shma_root {
	char magic[8];
	uint32_t version;
	uint32_t backend;
	uint64_t root_size;
	uint64_t chunk_size;
	uint32_t max_chunks;
	uint32_t nclasses;
	uint64_t class_max;             /* largest data length served by classes */
	uint64_t pool_id;
	char name[SHMA_NAME_MAX];
	uint32_t class_size[SHMA_NCLASSES];
	uint32_t hwm;                   /* slots [0, hwm) have ever been used */
	uint32_t cur;                   /* regular chunk being carved */
	uint64_t pad0[6];
	struct shma_user users[SHMA_MAX_USERS + 1];
	struct shma_head heads[SHMA_NCLASSES];
	struct shma_intent intents[SHMA_MAX_USERS + 1][SHMA_LANES];
	struct shma_slot slots[];       /* max_chunks */
};

struct shma_chunk_hdr {                 /* at offset 0 of every chunk file */
	char magic[8];
	uint64_t pool_id;
	uint32_t index;
	uint32_t gen;
	uint64_t size;
	uint64_t pad[4];
};

/* ---- one process's view ------------------------------------------------------ */

/* A dedicated chunk's old mapping, unmapped once no walk can read it. */
struct shma_defer {
	char *addr;
	uint64_t len;
};

struct shma_local {                     /* per slot */
	int fd;                         /* -1: none */
	uint32_t gen;                   /* slot generation that addr/fd belong to */
	char *addr;                     /* NULL: not mapped here */
	uint64_t len;
};

struct shma_pool {
	struct shma_root *root;
	uint64_t root_len;
	int root_fd;
	int dirfd;                      /* SHM backend; -1 for memfd */
	unsigned backend;
	bool rdonly;
	bool creator;
	uint64_t reg;                   /* shma_fork_gen << 32 | our user slot (or
					 * SHMA_OWNER_NONE); see shma_owner() */
	uint64_t chunk_size;
	unsigned chunk_shift;
	uint32_t max_chunks;
	uint32_t nclasses;
	uint64_t class_max;
	char *resv;                     /* max_chunks * chunk_size, PROT_NONE */
	uint64_t resv_len;
	struct shma_local *loc;         /* max_chunks entries, mmap()ed */
	uint64_t loc_len;
	int lock;                       /* slow-path spinlock (taken with signals blocked) */
	int pins;                       /* walks under way in this process (shma_pin) */
	uint32_t ndefer;                /* dedicated mappings waiting for pins to drop */
	uint32_t defer_cap;
	struct shma_defer *defer;       /* defer_cap entries, mmap()ed */
	uint64_t defer_len;
	uint64_t serial;                /* this object's number in the process (never 0; cache.c) */
	uint8_t tc_cap[SHMA_NCLASSES];  /* thread caches: blocks per class (0: not cached) */
	struct shma_pcache *pc;         /* the pool cache (cache.c); NULL: none */
	uint64_t pc_len;
	char name[SHMA_NAME_MAX];
};

/* Size classes (header included), 4 per power of two past 128 bytes. */
static inline unsigned shma_size_class(uint64_t total)
{
	unsigned lg;

	if (total <= 128)
		return total <= 32 ? 0 : (unsigned)((total + 15) / 16 - 2);
	lg = 63u - (unsigned)__builtin_clzll(total - 1);
	return 7 + (lg - 7) * 4 + (unsigned)(((total - 1) >> (lg - 2)) & 3);
}

static inline uint64_t shma_class_bytes(unsigned c)
{
	unsigned lg, sub;

	if (c < 7)
		return (uint64_t)(c + 2) * 16;
	lg = 7 + (c - 7) / 4;
	sub = (c - 7) % 4;
	return (1ull << lg) + (uint64_t)(sub + 1) * (1ull << (lg - 2));
}

static inline uint32_t shma_ref(const struct shma_pool *p, uint32_t idx, uint64_t off)
{
	return (uint32_t)(((uint64_t)idx << p->chunk_shift | off) / SHMA_GRANULE);
}

/*
 * Bumped in the child of every fork() (a pthread_atfork handler). A pool
 * object inherited across fork() carries its parent's registration: the
 * child must not allocate under it (the parent's death would make reclaim
 * free the child's live blocks), so shma_owner() registers the child anew
 * first. One relaxed load on the allocation path.
 */
extern unsigned shma_fork_gen;
int shma_reregister(struct shma_pool *p, uint64_t old, unsigned *owner);

/* Our user slot for this process; -EUSERS if it had to register and could not. */
static inline int shma_owner(struct shma_pool *p, unsigned *owner)
{
	uint64_t r = __atomic_load_n(&p->reg, __ATOMIC_ACQUIRE);

	if (__builtin_expect((uint32_t)(r >> 32) == __atomic_load_n(&shma_fork_gen, __ATOMIC_RELAXED), 1)) {
		*owner = (unsigned)r & 0xff;
		return 0;
	}
	return shma_reregister(p, r, owner);
}

/* Our slot if this process registered it (not a parent's before fork), else NONE. */
static inline unsigned shma_own_slot(const struct shma_pool *p)
{
	uint64_t r = __atomic_load_n(&p->reg, __ATOMIC_ACQUIRE);

	return (uint32_t)(r >> 32) == __atomic_load_n(&shma_fork_gen, __ATOMIC_RELAXED)
		? (unsigned)r & 0xff : SHMA_OWNER_NONE;
}

/*
 * cache.c: per-thread caches of free blocks ("thread caches"). A cached
 * block is a free block whose header names its cacher: (even generation,
 * class, flags 0, owner = the cacher's user slot). The header is the
 * whole record: whatever a thread's cache array says, reclaim gives back
 * every free block a dead owner's header names, so a process killed with
 * blocks in its caches loses none. Free lists hold only owner NONE blocks.
 *
 * One cache per (thread, pool object), reached through a thread-local
 * array of SHMA_TC_POOLS entries, most recently used first; a thread
 * using more pools at once goes to the shared lists for the others. The
 * caches themselves outlive pools and threads (process-wide table, never
 * unmapped), so a thread-local pointer is always safe to read: a cache is
 * bound to one pool object (its serial) at a time.
 *
 * st: fork generation << 32 | state. FREE: nobody's; OWNED: a thread's,
 * bound to no pool (or its pool was freed); BOUND: a thread's, caching
 * for pool (serial); CLOSING: being emptied into its pool, by the thread's
 * exit or by shma_pool_free. A cache of an earlier fork generation holds
 * blocks of the parent's: never emptied, taken over empty by CAS.
 * busy: the owning thread is inside the cache (a signal handler nested
 * there uses the shared lists instead).
 */
#define SHMA_TC_POOLS 4
#define SHMA_TC_CAP 128                 /* blocks per class at most ... */
#define SHMA_TC_BYTES (256u << 10)      /* ... and bytes per class at most */
enum { SHMA_TC_FREE = 0, SHMA_TC_OWNED = 1, SHMA_TC_BOUND = 2, SHMA_TC_CLOSING = 3 };

struct shma_tcache {
	uint64_t st;
	uint64_t serial;                /* the bound pool's serial; 0 unbound */
	struct shma_pool *pool;
	unsigned owner;                 /* the user slot cached headers name */
	int busy;
	uint64_t mark;                  /* shma_blk_word(0, 0, owner): | class, | generation */
	uint32_t carve;                 /* the regular chunk this thread carves from (alloc.c's
					 * carve); SHMA_SLOTS_MAX: none yet */
	uint8_t n[SHMA_NCLASSES];
	uint32_t ref[SHMA_NCLASSES][SHMA_TC_CAP];
};

extern __thread struct shma_tcache *shma_tls_tc[SHMA_TC_POOLS]
	__attribute__((tls_model("initial-exec")));
struct shma_tcache *shma_tc_slow(struct shma_pool *p);

/*
 * This thread's most recently used cache if it is bound to p in this fork
 * generation (its owner is then p's registration: both were taken in
 * this generation, and neither changes within one), else NULL. The
 * fast paths' whole lookup: a thread-local load and two compares.
 */
static inline struct shma_tcache *shma_tc_current(const struct shma_pool *p)
{
	struct shma_tcache *tc = shma_tls_tc[0];

	if (__builtin_expect(tc && __atomic_load_n(&tc->serial, __ATOMIC_RELAXED) == p->serial &&
			     (uint32_t)(__atomic_load_n(&tc->st, __ATOMIC_RELAXED) >> 32) ==
			     __atomic_load_n(&shma_fork_gen, __ATOMIC_RELAXED), 1))
		return tc;
	return NULL;
}

/* This thread's cache for p, NULL if none (caches off, a read-only pool, too many pools). */
static inline struct shma_tcache *shma_tc_get(struct shma_pool *p)
{
	struct shma_tcache *tc = shma_tc_current(p);

	return tc ? tc : shma_tc_slow(p);
}

/* Enter/leave the cache: false if a signal handler finds its thread inside already. */
static inline bool shma_tc_enter(struct shma_tcache *tc)
{
	if (tc->busy)
		return false;
	tc->busy = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return true;
}
static inline void shma_tc_leave(struct shma_tcache *tc)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	tc->busy = 0;
}
/* Is b (at ref) exactly a block of class c cached by owner? *gen: its generation. */
static inline bool shma_tc_is_cached(const struct shma_blk *b, uint32_t ref, unsigned c,
				     unsigned owner, uint32_t *gen)
{
	uint64_t w = __atomic_load_n(&b->word, __ATOMIC_ACQUIRE);

	*gen = shma_w_gen(w);
	return w == shma_blk_word(*gen, c, owner) && !(*gen & 1) && owner < SHMA_MAX_USERS &&
	       __atomic_load_n(&b->self, __ATOMIC_RELAXED) == ref;
}
/*
 * The pool cache: a second level behind the thread caches, one per pool
 * object (so per process and attachment), holding blocks marked cached by
 * this process's user slot exactly as a thread cache's are (its header is
 * the whole record, here too). A full thread cache moves its older half
 * here, an empty one refills from here before it goes to the shared
 * lists: moving entries touches no block header and no shared line, and
 * the blocks a process frees stay in pages it has mapped and touched.
 * (bench-shm, 2 processes at 100k live: refills from the shared lists
 * had handed each process the other's blocks, and the first touch of
 * each of their pages in a process is a page fault.)
 * Each class has a try-lock naming the fork generation of its holder: a
 * thread or signal handler finding it taken goes to the shared lists
 * instead, so nothing waits; a lock or entries left from before a fork()
 * belong to the parent and are forgotten.
 */
#define SHMA_PC_CAP 4096u               /* blocks per class at most ... */
#define SHMA_PC_BYTES (32ull << 20)     /* ... and bytes in all classes at most */

struct shma_pcache {
	uint64_t bytes;                 /* held in all classes (atomic: classes lock apart) */
	uint32_t lock[SHMA_NCLASSES];   /* 0, or the holder's fork generation << 1 | 1 */
	uint32_t gen[SHMA_NCLASSES];    /* the fork generation the entries belong to */
	uint16_t n[SHMA_NCLASSES];
	uint32_t ref[SHMA_NCLASSES][SHMA_PC_CAP];
};

/*
 * Move refs[] (k entries of class c, cached by this process: a thread
 * cache's) into p's pool cache, the last ones first: how many it took,
 * from the end of refs[] (0: no pool cache, its class busy or full).
 */
unsigned shma_pc_put(struct shma_pool *p, unsigned c, const uint32_t *refs, unsigned k);
/* Refill tc's class c (empty, tc entered) from p's pool cache: how many. */
unsigned shma_pc_refill(struct shma_pool *p, struct shma_tcache *tc, unsigned c);

/* A pool object's serial and cache sizes (at attach; caching off: tc_cap all 0). */
void shma_tc_pool_init(struct shma_pool *p);
/* Give every block in this thread's caches for p's pool back to the free lists; how many. */
unsigned shma_tc_flush_self(struct shma_pool *p);
/*
 * Give n blocks of class c back to the free list, blocks cached by owner
 * (refs[]; an entry whose header says otherwise was scribbled on: left
 * alone), as chains of up to SHMA_CHAIN_MAX under rec (claimed by the
 * caller, left IDLE); how many went.
 */
struct shma_rec;
unsigned shma_tc_give(struct shma_pool *p, struct shma_rec *rec, unsigned owner, unsigned c,
		      const uint32_t *refs, unsigned n);
/* shma_pool_free: empty every thread's cache for p (no thread may be using p). */
void shma_tc_close(struct shma_pool *p);
/* Caches this process has made (for tests: threads that come and go reuse them). */
unsigned shma_tc_made(void);

/* log.c: the log hook; shma_refuse() says why a call is refused (LOG_DEBUG) */
extern struct mk_log shma_log;
#define shma_refuse(...) mk_log(&shma_log, LOG_DEBUG, __VA_ARGS__)

/* users.c: the user table (shma_fork_gen and shma_reregister: above) */
bool shma_user_alive(int64_t pid, uint64_t start);
/* Is a repair under way in another live process? (seq_cst: pairs with repair's scan) */
bool shma_repair_running(const struct shma_pool *p);
bool shma_pid_alive(int64_t pid, uint64_t start);
uint64_t shma_self_start(void);
/* Claim a free user slot for this process (lock-free, async-signal-safe). */
int shma_claim_user(struct shma_pool *p, unsigned *out);
void shma_release_user(struct shma_pool *p, unsigned i);

/* chunk.c: the chunk table */
int shma_map_slot(struct shma_pool *p, uint32_t idx, uint64_t state, char **base);
int shma_add_chunk(struct shma_pool *p, unsigned kind, uint64_t size, uint32_t *idx);
void shma_release_chunk(struct shma_pool *p, uint32_t idx, uint64_t state);
/* Give a regular chunk back (shma_pool_trim took all its blocks off the lists). */
void shma_drop_regular(struct shma_pool *p, uint32_t idx, uint64_t state);
/*
 * Pin this process's dedicated mappings while reading chunks through a
 * base from shma_map_slot() that another thread may release meanwhile
 * (walks): a mapping released while pinned is replaced by zero pages and
 * unmapped only when the last pin goes. Async-signal-safe, nestable.
 */
void shma_pin(struct shma_pool *p);
void shma_unpin(struct shma_pool *p);
void shma_lock(struct shma_pool *p, void *oldmask);
void shma_unlock(struct shma_pool *p, const void *oldmask);
int shma_chunk_name(const struct shma_pool *p, uint32_t idx, uint32_t nonce, char *buf, size_t len);
uint32_t shma_make_nonce(void);
/* fchmod, errno untouched: files get exactly SHMA_FILE_MODE whatever the umask. */
int shma_set_file_mode(int fd);
/* Open a pool file by its fixed name: never blocking, never following a link. */
int shma_open_pool_file(int dirfd, const char *fname, bool rdonly);
/* A pool file must be a regular file of ours, and (SHM) of our mode. */
struct stat;
int shma_file_ok(const struct stat *st, unsigned backend);

/* walk.c: a walk over every block of the live chunks. fn is called for each
 * block with its start header (< 0 stops the walk, returned); gap, when not
 * NULL, for a carved block whose header its dead carver never wrote, sized
 * as class c. Returns 0, 1 if some chunk could not be walked to its end, or
 * the error of a chunk that cannot be mapped. */
typedef int (*shma_walk_fn)(struct shma_pool *p, struct shma_blk *start, uint32_t ref,
			    uint64_t word, void *ud);
typedef void (*shma_gap_fn)(struct shma_pool *p, struct shma_blk *start, uint32_t ref, unsigned c,
			    void *ud);
int shma_walk(struct shma_pool *p, shma_walk_fn fn, shma_gap_fn gap, void *ud);
/* Map every live chunk: 0, or the error of one that cannot be mapped. */
int shma_map_all(struct shma_pool *p);
/* The header that carries an allocated block's owner and length, or NULL. */
struct shma_blk *shma_data_header(struct shma_blk *start, uint64_t w, uint64_t bytes);

/* reclaim.c: give back what dead registrants held, free their slots; returns
 * the number of slots freed, *blocks the blocks freed. */
int shma_reclaim_users(struct shma_pool *p, int *blocks);
void shma_disown(struct shma_pool *p, unsigned owner);

/* list.c: free lists, carving's bump words, in-flight records */
struct shma_rec {                       /* a claimed record */
	struct shma_intent *in;
	unsigned actor;
};
/* -EAGAIN if none came free for a long while (a damaged root, never our own threads). */
int shma_rec_claim(struct shma_pool *p, unsigned user, struct shma_rec *r);
void shma_rec_release(struct shma_rec *r);
/* Keep the record, about nothing (IDLE). */
void shma_rec_idle(struct shma_rec *r);
/* Name the free block ref (generation gen, class c) as about to be pushed. */
void shma_rec_push_intent(struct shma_rec *r, unsigned c, uint32_t ref, uint32_t gen);
struct shma_blk *shma_blk_at(struct shma_pool *p, uint32_t ref);
struct shma_blk *shma_blk_at_err(struct shma_pool *p, uint32_t ref, int *err);
int shma_pop(struct shma_pool *p, struct shma_rec *r, unsigned c, uint32_t *ref,
	     struct shma_blk **blk);
/* Push a block shma_rec_push_intent() named; the record goes back to IDLE. */
void shma_push(struct shma_pool *p, struct shma_rec *r, unsigned c, uint32_t ref,
	       struct shma_blk *b);
/*
 * Pop up to max (2..SHMA_CHAIN_MAX) blocks of class c with one CAS, a
 * POPN under r (a POP when only one is there): refs[] and blks[] get them
 * in list order; returns how many, or shma_pop()'s errors. The blocks are
 * not checked: the caller checks each (a damaged one is dropped) and
 * marks it cached, and keeps r until every one is marked (see intents).
 */
int shma_pop_chain(struct shma_pool *p, struct shma_rec *r, unsigned c, unsigned max,
		   uint32_t *refs, struct shma_blk **blks);
/*
 * Push the n (2..SHMA_CHAIN_MAX) free blocks refs[]/blks[] of class c,
 * cached by the record holder (headers of generation gens[]), as one
 * chain with one CAS, a PUSHN under r: links them, names the chain in r,
 * marks each owner NONE, then pushes. The record goes back to IDLE.
 */
void shma_push_chain(struct shma_pool *p, struct shma_rec *r, unsigned c, const uint32_t *refs,
		     struct shma_blk *const *blks, const uint32_t *gens, unsigned n);
/*
 * Take a whole list (trim, repair): its first ref. With r, the take is a
 * TAKE under r (see intents); r stays TAKE afterwards, about that list.
 */
uint32_t shma_take_list(struct shma_pool *p, unsigned c, struct shma_rec *r);
uint32_t shma_list_first(struct shma_pool *p, unsigned c);
/* CAS a bump word from *old to (gen, off), first confirming *old's carve. */
bool shma_bump_cas(struct shma_pool *p, uint32_t idx, uint64_t *old, unsigned gen, uint64_t off,
		   struct shma_rec *r);
/*
 * Close regular chunk idx to carving: CAS its bump word from *old to
 * (gen, chunk_size + 1 + *old's offset) naming r's actor (trim; no CARVE record), first
 * confirming *old's carve.
 */
bool shma_bump_close(struct shma_pool *p, uint32_t idx, uint64_t *old, unsigned gen,
		     struct shma_rec *r);
/*
 * Finish or roll back what dead user u's records were doing (u claimed by
 * us); then drop the chunks u's trim closed. Run before the reclaim walk:
 * it leaves the blocks u's trim held marked SHMA_F_HELD for the walk.
 */
void shma_resolve_user(struct shma_pool *p, unsigned u);

/* alloc.c */
/* actor_user: whose records the push uses (the freer's slot; a dead user's
 * slot that reclaim holds). */
int shma_free_blk(struct shma_pool *p, struct shma_blk *h, uint32_t ref, uint32_t want_gen,
		  bool by_handle, unsigned only_owner, unsigned actor_user);
