/* check.h -- declarations shared by the checking layer's files, which are
 * compiled only in the checking build (TSR_CHECK=1, libtessera-check.so):
 *   backtrace.c  stack capture without allocating, the stack depot, symbols
 *   check.c      the block table, redzones, quarantine, reports, the API
 *   guard.c      guard-page blocks and the SIGSEGV handler
 *   leak.c       the conservative leak scan at exit
 * Every structure here lives in memory mapped by the layer itself (never in
 * the heap it checks). The block table's shards have a lock each; the rest
 * is reached under TSR_LOCK_CHECK unless said otherwise, and the two kinds
 * are never held together. Reports are written under TSR_LOCK_REPORT,
 * never while a shard lock or TSR_LOCK_CHECK is held.
 */
#ifndef TSR_CHECK_H
#define TSR_CHECK_H

#include "internal.h"

#if TSR_CHECK

#define TSR_CHECK_MAX_FRAMES 64      /* cap of TESSERA_CHECK_STACK_DEPTH */
#define TSR_CHECK_HEADER_SIZE 32     /* in-block header (check.c, check_header_t), just before the left canary */
#define TSR_CHECK_CANARY   0xcb      /* redzone bytes */
#define TSR_CHECK_POISON   0xdf      /* freed blocks' bytes while quarantined */
#define TSR_CHECK_POISON_MAX 256   /* bytes poisoned (and verified) at the start of a freed block: writing
                                      * and re-reading 1 KiB was a third of a free (micro-hot, perf) */
#define TSR_CHECK_QUARANTINE_MIN ((size_t)256 << 10)  /* the quarantine may always hold this much */
/* The quarantine holds at most the live blocks' cost >> this. A block of
 * python's (~50 bytes) costs ~170 with its redzones and table slot against
 * ~66 under glibc: live blocks alone are ~2.6x glibc's RSS there, so a
 * quarantine as big as the live heap doubled that (126 MB against 28 MB);
 * a quarter keeps python-malloc and sqlite under 3x. */
#define TSR_CHECK_QUARANTINE_LIVE_SHIFT 2
#define TSR_CHECK_KEY      0x7e55e7a3c0de5afeULL  /* header's first word: user address XOR this */

/* ---- backtrace.c: stacks ------------------------------------------------------ */
/* Walk the frame-pointer chain from fp, first frame pc0 (0: start at fp's
 * return address), staying inside [lo, hi) (the thread's stack); returns the
 * number of frames written. Never faults on a chain inside those bounds. */
size_t   tsr_bt_walk(uintptr_t *frames, size_t max, uintptr_t pc0, uintptr_t fp, uintptr_t lo, uintptr_t hi) tsr_hidden;
/* Re-read the loaded objects' code ranges (frames must point into code);
 * rate-limited, false if skipped. Not from a signal handler (loader lock). */
bool     tsr_bt_text_refresh(void) tsr_hidden;
/* Walk from fp inside [lo, hi) as tsr_bt_walk does (no first pc), at most
 * max frames, and return the depot id of the stack (0: none or depot full);
 * *walked: the frames found. A per-thread cache makes a repeated stack cost
 * no lock; a new one takes TSR_LOCK_CHECK. */
uint32_t tsr_bt_capture(uintptr_t fp, uintptr_t lo, uintptr_t hi, size_t max, size_t *walked) tsr_hidden;
/* The id of the calling thread's last stack from the same call site when
 * the walk from fp would give it again; 0 otherwise (then tsr_bt_capture). */
uint32_t tsr_bt_memo_match(uintptr_t fp, uintptr_t lo, uintptr_t hi, size_t max) tsr_hidden;
/* Store frames in the depot; returns its id (0: depot full). Takes TSR_LOCK_CHECK on a cache miss. */
uint32_t tsr_depot_put(const uintptr_t *frames, size_t count) tsr_hidden;
/* The frames of id; returns the count (0 for id 0). Lock-free: entries never change. */
size_t   tsr_depot_get(uint32_t id, const uintptr_t **frames) tsr_hidden;
/* Symbolize one frame as "0x... in func (file:line)" into out. */
void     tsr_bt_symbolize(const uintptr_t *frames, size_t count, bool skip_own, bool first_is_pc,
                          void (*line)(const char *text, void *arg), void *arg) tsr_hidden;
bool     tsr_bt_is_own(uintptr_t pc) tsr_hidden;   /* pc lies in this library */

/* ---- check.c: blocks, threads, reports ------------------------------------------- */
enum { TSR_FAMILY_MALLOC = 0, TSR_FAMILY_NEW = 1, TSR_FAMILY_NEW_ARRAY = 2,
       TSR_FAMILY_NEW_ALIGNED = 3, TSR_FAMILY_NEW_ARRAY_ALIGNED = 4 };
/* A block is FREED only once poisoned (check.c writes the state last); a
 * core block's header passes through a third state, FREEING (check.c),
 * while its free runs. */
enum { TSR_BLOCK_LIVE = 1, TSR_BLOCK_FREED = 2 };
#define TSR_BLOCK_GUARDED 1          /* flags: mapped on its own with a guard page */
#define TSR_BLOCK_UNPROTECTED 2      /* flags: guard lifted after a report */
#define TSR_BLOCK_GUARD_BEFORE 4     /* flags: guarded on the underflow side (the guard page precedes it) */

/* One checked block as the reports see it: a copy of a core block's
 * in-block header (check.c, check_header_t), or the entry of a guarded
 * block in the block table, which since the header redesign holds only
 * guarded blocks (their memory is not the core's, so no core page vouches
 * for them). 32 bytes, two to a cache line; the block's start is not
 * stored but derived (tsr_check_base). */
typedef struct tsr_check_block_s {
  uintptr_t user;                /* first user byte: the key (0: empty slot) */
  uint64_t  size : 48;           /* bytes requested (TSR_CHECK_SIZE_MAX at most) */
  uint64_t  state : 4;           /* TSR_BLOCK_LIVE or TSR_BLOCK_FREED (quarantined) */
  uint64_t  family : 4;          /* TSR_FAMILY_* */
  uint64_t  align_shift : 8;     /* log2 of the requested alignment (4 at least) */
  uint32_t  alloc_stack;         /* depot ids (0: unknown) */
  uint32_t  free_stack;
  uint32_t  alloc_thread;        /* thread numbers (registry; 1 is the main thread) */
  uint32_t  free_thread : 24;
  uint32_t  flags : 8;           /* TSR_BLOCK_GUARDED ... */
} tsr_check_block_t;
_Static_assert(sizeof(tsr_check_block_t) == 32, "a table slot is half a cache line");
#define TSR_CHECK_SIZE_MAX (((uint64_t)1 << 47) - 1)   /* more than a process can map on x86-64 */

/* The block table's home slot of a block (check.c, and guard.c's handler).
 * Tried: address-ordered runs of slots per stretch of memory, so that
 * blocks allocated together share cache lines: python-malloc 6-20% faster,
 * churn 12-35% slower from the clusters linear probing then meets. */
static inline size_t tsr_check_slot_of(uintptr_t user, size_t capacity) {
  return (size_t)(((user >> 4) * 0x9e3779b97f4a7c15ULL) >> 20) & (capacity - 1);
}

typedef struct tsr_check_thread_s {
  long      tid;
  uint32_t  number;
  uintptr_t stack_lo, stack_hi;  /* 0, 0: unknown */
} tsr_check_thread_t;

tsr_check_thread_t *tsr_check_thread_self(void) tsr_hidden;   /* registers on first use; never NULL */
const tsr_check_thread_t *tsr_check_thread_of_stack(uintptr_t addr) tsr_hidden;
const tsr_check_thread_t *tsr_check_thread_at(size_t index) tsr_hidden;  /* NULL past the end */
/* The block whose user bytes or redzones contain addr (copied to *out); false if none. */
bool     tsr_check_find(uintptr_t addr, tsr_check_block_t *out) tsr_hidden;
/* Every checked block, live or quarantined (fn returns false to stop):
 * core blocks found by walking the core's pages for valid headers (under
 * TSR_LOCK_HEAPS: fn takes no lock), then the guarded blocks of the table
 * (each shard under its lock). Returns false if fn stopped it. */
bool     tsr_check_blocks_each(bool (*fn)(const tsr_check_block_t *b, void *arg), void *arg) tsr_hidden;
/* A core block's header re-read without any lock (for the leak scan once
 * the other threads are parked): true and *out when user is still a checked
 * core block; false for anything else (guarded blocks included). */
bool     tsr_check_core_get(uintptr_t user, tsr_check_block_t *out) tsr_hidden;
/* The block table (guarded blocks only) is split in shards by address, each with its own lock
 * (check.c, shard_of). To visit every block: tsr_check_shards_lock, then
 * each shard's table, then tsr_check_shards_unlock. */
#define TSR_CHECK_SHARD_SHIFT 6
#define TSR_CHECK_SHARD_COUNT (((size_t)1 << TSR_CHECK_SHARD_SHIFT) + 1)   /* the last stays empty */
void tsr_check_shards_lock(void) tsr_hidden;     /* all shard locks, in order */
void tsr_check_shards_unlock(void) tsr_hidden;
/* NULL: empty. A slot whose user is 0 (empty) or 1 (a removed block's
 * tombstone) holds no block; a tombstone's state is 0, neither live nor freed. */
tsr_check_block_t *tsr_check_shard_table(size_t shard, size_t *capacity) tsr_hidden;
/* SIGSEGV handler: copy user's block and flag it TSR_BLOCK_UNPROTECTED (bounded wait for its shard's lock). */
bool tsr_check_block_unprotect(uintptr_t user, tsr_check_block_t *out) tsr_hidden;
void    *tsr_check_map(size_t size, const char *name) tsr_hidden;     /* our own memory */
void     tsr_check_unmap(void *p, size_t size) tsr_hidden;
bool     tsr_check_is_own_memory(uintptr_t addr) tsr_hidden;         /* a mapping of this layer */
size_t   tsr_check_left_size(size_t alignment) tsr_hidden;           /* header + left redzone */
/* The header and left redzone of a block of alignment 16, fixed at the
 * first allocation: the 32-byte header, then TESSERA_CHECK_REDZONE rounded
 * up to 16 of canary. The header always sits this far before the user bytes. */
extern size_t tsr_check_left_min tsr_hidden;
uintptr_t tsr_guard_base(const tsr_check_block_t *b) tsr_hidden;     /* guard.c */
/* Where b starts: its core block (header first), or a guarded block's first data page. */
static inline uintptr_t tsr_check_base(const tsr_check_block_t *b) {
  if (tsr_unlikely(b->flags & TSR_BLOCK_GUARDED)) return tsr_guard_base(b);
  size_t alignment = (size_t)1 << b->align_shift;
  size_t left = alignment > 16 ? (tsr_check_left_min + alignment - 1) & ~(alignment - 1) : tsr_check_left_min;
  return b->user - left;
}
size_t   tsr_check_right_size(size_t size) tsr_hidden;               /* canary after the user bytes */

/* /proc/self/maps, line by line (raw reads, no allocation); fn returns false to stop. */
typedef struct tsr_maps_entry_s { uintptr_t lo, hi; char perms[5]; const char *name; } tsr_maps_entry_t;
bool     tsr_check_maps_each(bool (*fn)(const tsr_maps_entry_t *e, void *arg), void *arg) tsr_hidden;

/* Reports: one at a time (TSR_LOCK_REPORT). Lines are "tessera: ..." on the
 * log file; JSON mode gathers a report into one JSON line. */
void tsr_report_begin(const char *error_class, const char *fmt, ...) tsr_hidden;
void tsr_report_line(const char *fmt, ...) tsr_hidden;
/* skip_own: drop our leading frames; first_is_pc: frame 0 is a faulting pc, not a return address. */
void tsr_report_stack(const char *title, const uintptr_t *frames, size_t count, bool skip_own, bool first_is_pc) tsr_hidden;
void tsr_report_block(const tsr_check_block_t *b) tsr_hidden;   /* allocation and free stacks */
void tsr_report_end(bool is_error) tsr_hidden;
void tsr_report_where(uintptr_t addr) tsr_hidden;   /* "address is on thread T's stack" ... */
extern _Atomic size_t tsr_check_error_count tsr_hidden;

/* Whether a second thread has ever called the checked allocator (check.c). */
bool tsr_check_threaded(void) tsr_hidden;

/* ---- guard.c ------------------------------------------------------------------------ */
bool  tsr_guard_wanted(size_t size, size_t alignment) tsr_hidden;
/* The sampled mode's countdown, per thread: while it is above 1 the answer
 * is no, and the allocation path decrements it inline instead of calling
 * tsr_guard_wanted (28 instructions an allocation, callgrind). */
extern __thread size_t tsr_guard_countdown tsr_hidden;
static inline bool tsr_guard_wanted_now(size_t size, size_t alignment) {
  if (tsr_guard_countdown > 1) { tsr_guard_countdown--; return false; }
  return tsr_guard_wanted(size, alignment);
}
/* Map a guarded block; fills b->user (and GUARD_BEFORE in flags). false: not possible now. */
bool  tsr_guard_alloc(tsr_check_block_t *b, size_t size, size_t alignment) tsr_hidden;
void  tsr_guard_protect_freed(const tsr_check_block_t *b) tsr_hidden;  /* into quarantine */
void  tsr_guard_release(const tsr_check_block_t *b) tsr_hidden;        /* out of quarantine */
size_t tsr_guard_map_size(const tsr_check_block_t *b) tsr_hidden;
bool  tsr_guard_lookup(uintptr_t addr, uintptr_t *user) tsr_hidden;    /* caller holds CHECK */
void  tsr_guard_thread_init(void) tsr_hidden;   /* alternate signal stack for this thread */
void  tsr_guard_process_init(void) tsr_hidden;  /* the SIGSEGV handler */

/* ---- leak.c ------------------------------------------------------------------------- */
void  tsr_leak_report(void) tsr_hidden;         /* at exit, per TESSERA_CHECK_LEAKS */

#endif /* TSR_CHECK */
#endif /* TSR_CHECK_H */
