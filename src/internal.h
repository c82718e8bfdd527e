/* internal.h -- declarations shared between tessera's files, grouped under a
 * heading per defining file in layer order (platform, os, sizeclass, span,
 * page, large, heap, alloc, free, check, options/stats/init). Calls go only
 * downward in that order. Everything here has hidden visibility; the only
 * exported names are those of override.c and the tsr_* of tessera.h.
 * The tiny inline helpers the fast paths need live here too.
 */
#ifndef TSR_INTERNAL_H
#define TSR_INTERNAL_H

#include "types.h"
#include "platform.h"
#include "options.h"
#include "../include/tessera.h"

#if TSR_CHECK
/* The checking build: the allocator's own entry points become tsr_core_*,
 * and check.c (which #undefs these) defines the public tsr_* as wrappers
 * that add redzones, quarantine and reports. The release build has no
 * such indirection: its fast paths are the public functions. */
void  *tsr_core_malloc(size_t size);
void  *tsr_core_calloc(size_t count, size_t size);
void  *tsr_core_realloc(void *p, size_t size);
void  *tsr_core_reallocarray(void *p, size_t count, size_t size);
void   tsr_core_free(void *p);
void   tsr_core_free_sized(void *p, size_t size);
void   tsr_core_free_aligned_sized(void *p, size_t alignment, size_t size);
int    tsr_core_posix_memalign(void **out, size_t alignment, size_t size);
void  *tsr_core_aligned_alloc(size_t alignment, size_t size);
size_t tsr_core_usable_size(const void *p);
#define tsr_malloc             tsr_core_malloc
#define tsr_calloc             tsr_core_calloc
#define tsr_realloc            tsr_core_realloc
#define tsr_reallocarray       tsr_core_reallocarray
#define tsr_free               tsr_core_free
#define tsr_free_sized         tsr_core_free_sized
#define tsr_free_aligned_sized tsr_core_free_aligned_sized
#define tsr_posix_memalign     tsr_core_posix_memalign
#define tsr_aligned_alloc      tsr_core_aligned_alloc
#define tsr_usable_size        tsr_core_usable_size
#define tsr_alloc_aligned      tsr_core_alloc_aligned
#endif

#define tsr_likely(x)    __builtin_expect(!!(x), 1)
#define tsr_unlikely(x)  __builtin_expect(!!(x), 0)
#define tsr_noinline     __attribute__((noinline))
#define tsr_cold         __attribute__((cold, noinline))
#define tsr_hidden       __attribute__((visibility("hidden")))
#define tsr_public       __attribute__((visibility("default")))

/* ---- locks (rank order; prepare-for-fork takes them in this order) ---- */
typedef enum tsr_lock_rank_e {
  TSR_LOCK_INIT = 0,        /* process initialization */
  TSR_LOCK_HEAPS = 1,       /* heap registry and the abandoned list */
  TSR_LOCK_META = 2,        /* metadata bump allocator */
  TSR_LOCK_HUGE = 3,        /* huge-block bookkeeping for the visitor */
  TSR_LOCK_REPORT = 4,      /* check build: one report at a time (taken before CHECK) */
  TSR_LOCK_CHECK = 5,       /* check build: block table, stack depot, quarantine */
  TSR_LOCK_COUNT
} tsr_lock_rank_t;

/* A test-and-set lock that yields: taken only off the fast paths, briefly. */
typedef struct tsr_lock_s { _Atomic int held; } tsr_lock_t;
extern tsr_lock_t tsr_locks[TSR_LOCK_COUNT] tsr_hidden;

static inline void tsr_lock(tsr_lock_rank_t rank) {
  tsr_lock_t *l = &tsr_locks[rank];
  for (unsigned spins = 0;; spins++) {
    if (!atomic_load_explicit(&l->held, memory_order_relaxed) &&
        !atomic_exchange_explicit(&l->held, 1, memory_order_acquire)) return;
    if (spins > 64) tsr_platform_yield(); else __builtin_ia32_pause();
  }
}
static inline void tsr_unlock(tsr_lock_rank_t rank) {
  atomic_store_explicit(&tsr_locks[rank].held, 0, memory_order_release);
}

/* ---- os.c: policy above the platform ------------------------------------ */
extern uint8_t tsr_segmap[TSR_SEGMAP_COUNT] tsr_hidden;   /* what each 32 MiB slot is */
void *tsr_os_map_aligned(size_t size, size_t alignment) tsr_hidden;
void  tsr_os_unmap(void *addr, size_t size) tsr_hidden;
bool  tsr_os_purge(void *addr, size_t size) tsr_hidden;
void *tsr_os_meta_alloc(size_t size) tsr_hidden;         /* zeroed, never freed, 64-aligned */
void  tsr_os_segmap_set(uintptr_t start, size_t size, uint8_t first, uint8_t rest) tsr_hidden;
void  tsr_os_account_map(long delta_bytes) tsr_hidden;
void  tsr_os_account_pages(long delta_bytes) tsr_hidden;  /* spans in use as pages */
typedef struct tsr_os_counters_s {
  _Atomic uint64_t mapped_bytes, mapped_peak_bytes, metadata_bytes, purged_bytes;
  _Atomic uint64_t map_count, unmap_count, purge_count;
  _Atomic uint64_t page_bytes, page_peak_bytes, huge_count;
} tsr_os_counters_t;
extern tsr_os_counters_t tsr_os_counters tsr_hidden;

static inline uint8_t tsr_segmap_kind(uintptr_t addr) {
  /* A plain read keeps the fast path one cmpb. Slots are written with
   * atomic stores and a neighbouring huge mapping may change a slot while a
   * lookup walks past it; on x86-64 a byte load is atomic anyway, and the
   * ThreadSanitizer build says so explicitly. */
#if defined(__SANITIZE_THREAD__)
  return __atomic_load_n(&tsr_segmap[(addr >> TSR_SEGMENT_SHIFT) & (TSR_SEGMAP_COUNT - 1)], __ATOMIC_RELAXED);
#else
  return tsr_segmap[(addr >> TSR_SEGMENT_SHIFT) & (TSR_SEGMAP_COUNT - 1)];
#endif
}

/* ---- sizeclass.c ----------------------------------------------------------- */
extern const uint32_t tsr_class_size[TSR_CLASS_COUNT] tsr_hidden;     /* class -> block size */
unsigned tsr_size_class(size_t size) tsr_hidden;          /* size <= TSR_CLASS_MAX_SIZE */
unsigned tsr_size_class_aligned(size_t size, size_t alignment) tsr_hidden; /* 0: none fits */
uint32_t tsr_class_slices(unsigned size_class) tsr_hidden;/* slices of one page of a class */
size_t   tsr_good_size_internal(size_t size) tsr_hidden;

/* ---- segments and spans (span.c) ------------------------------------------- */
static inline tsr_segment_t *tsr_segment_of(const void *p) {
  return (tsr_segment_t *)((uintptr_t)p & ~(uintptr_t)TSR_SEGMENT_MASK);
}
/* The descriptor of the slice holding p (not yet resolved to its span head). */
static inline tsr_page_t *tsr_slice_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  return (tsr_page_t *)((a & ~(uintptr_t)TSR_SEGMENT_MASK) +
                        (((a & TSR_SEGMENT_MASK) >> TSR_SLICE_SHIFT) << TSR_PAGE_DESC_SHIFT));
}
/* The owner word is written by the owner and read by freeing threads:
 * relaxed atomic accesses (plain moves on x86-64) keep that race defined. */
static inline uintptr_t tsr_page_owner(const tsr_page_t *page) {
  return __atomic_load_n(&page->owner, __ATOMIC_RELAXED);
}
extern uintptr_t tsr_owner_extra tsr_hidden;   /* TSR_OWNER_SLOW in secure mode, else 0 (init.c) */
static inline void tsr_page_set_owner(tsr_page_t *page, uintptr_t owner) {
  if (owner != 0) owner |= tsr_owner_extra;
  __atomic_store_n(&page->owner, owner, __ATOMIC_RELAXED);
}
static inline tsr_page_t *tsr_page_of(const void *p) {
  tsr_page_t *slice = tsr_slice_of(p);
  return (tsr_page_t *)((uint8_t *)slice - slice->back_bytes);
}
static inline size_t tsr_slice_index(const tsr_page_t *page) {
  return ((uintptr_t)page & TSR_SEGMENT_MASK) >> TSR_PAGE_DESC_SHIFT;
}
static inline uint8_t *tsr_slice_start(const tsr_page_t *page) {
  return (uint8_t *)((uintptr_t)page & ~(uintptr_t)TSR_SEGMENT_MASK) + (tsr_slice_index(page) << TSR_SLICE_SHIFT);
}
/* OS pages that `bytes` from a page boundary cover. */
static inline size_t tsr_os_pages(size_t bytes) { return (bytes + TSR_OS_PAGE_SIZE - 1) / TSR_OS_PAGE_SIZE; }
/* want_pages: OS pages of its one slice the caller expects to touch soon
 * (a small page), to pick among dirty slices; 0: no preference. */
tsr_page_t *tsr_span_alloc(tsr_heap_t *heap, uint32_t slices, uint32_t align_slices, unsigned want_pages) tsr_hidden;
/* The free slice `slice` of one of heap's segments as a span of one (page.c,
 * page_new), if it holds 1 to most_pages resident OS pages; else NULL. */
tsr_page_t *tsr_span_alloc_slice(tsr_heap_t *heap, tsr_page_t *slice, unsigned most_pages) tsr_hidden;
void  tsr_span_free(tsr_heap_t *heap, tsr_page_t *span) tsr_hidden;
void  tsr_span_set_resident(tsr_page_t *span, uint32_t slices, size_t bytes) tsr_hidden;
bool  tsr_span_grow(tsr_heap_t *heap, tsr_page_t *span, uint32_t slices) tsr_hidden;
void  tsr_span_shrink(tsr_heap_t *heap, tsr_page_t *span, uint32_t slices) tsr_hidden;
void  tsr_span_mark_used(tsr_page_t *span, uint32_t slices) tsr_hidden;
size_t tsr_span_purge_due(tsr_heap_t *heap, uint64_t now_ms, bool force, bool lock_unmaps) tsr_hidden;
uint64_t tsr_span_dirty_bytes(const tsr_page_t *span, uint32_t slices) tsr_hidden;
void  tsr_segment_release(tsr_heap_t *heap, tsr_segment_t *segment) tsr_hidden;
bool  tsr_span_check(tsr_heap_t *heap) tsr_hidden;

/* ---- page.c ------------------------------------------------------------------- */
extern tsr_page_t tsr_page_empty tsr_hidden;  /* a page with no free blocks */
void *tsr_page_alloc_class(tsr_heap_t *heap, unsigned size_class) tsr_hidden;
void  tsr_page_free_local_slow(tsr_heap_t *heap, tsr_page_t *page, void *p) tsr_hidden;
void  tsr_page_retire(tsr_heap_t *heap, tsr_page_t *page) tsr_hidden;
void  tsr_page_retire_now(tsr_heap_t *heap, tsr_page_t *page) tsr_hidden;
void  tsr_page_retire_empty_heads(tsr_heap_t *heap, bool with_bias) tsr_hidden;
size_t tsr_page_purge_tails(tsr_heap_t *heap, uint64_t now_ms, bool force) tsr_hidden;
void  tsr_page_unfull(tsr_heap_t *heap, tsr_page_t *page) tsr_hidden;
void  tsr_page_direct_update(tsr_heap_t *heap, unsigned size_class) tsr_hidden;
void  tsr_page_direct_clear(tsr_heap_t *heap, unsigned size_class) tsr_hidden;
extern tsr_xfer_class_t tsr_page_xfer[TSR_REUSE_CLASSES] tsr_hidden;
/* A central transfer slot's word (types.h, tsr_xfer_class_t); count 1..256. */
static inline uintptr_t tsr_xfer_word(tsr_block_t *list, uint32_t count, const tsr_heap_t *owner,
                                      const tsr_heap_t *putter) {
  return (uintptr_t)list >> 4 | (uintptr_t)(count - 1) << 43 | (uintptr_t)(owner->id & 63u) << 51 |
         (uintptr_t)(putter->id & 127u) << 57;
}
static inline tsr_block_t *tsr_xfer_list(uintptr_t word) {
  return (tsr_block_t *)((word & (((uintptr_t)1 << 43) - 1)) << 4);
}
static inline uint32_t tsr_xfer_count(uintptr_t word) { return word == 0 ? 0 : (uint32_t)(word >> 43 & 255) + 1; }
/* Whether heap may take the list: it owns its first block, or put it there. */
static inline bool tsr_xfer_is_for(uintptr_t word, const tsr_heap_t *heap) {
  return (word >> 51 & 63) == (heap->id & 63u) || word >> 57 == (heap->id & 127u);
}
_Static_assert(TSR_REUSE_COUNT <= 256 && TSR_ADDRESS_BITS <= 47, "central transfer word");
bool  tsr_page_xfer_put(unsigned size_class, uintptr_t word) tsr_hidden;
tsr_block_t *tsr_page_xfer_take(unsigned size_class, const tsr_heap_t *heap, uint32_t *count) tsr_hidden;

/* ---- large.c: large blocks (one per span) and huge blocks (own mapping) ------ */
void  *tsr_large_alloc(tsr_heap_t *heap, size_t size, size_t alignment, bool zero) tsr_hidden;
void   tsr_large_free(tsr_heap_t *heap, tsr_page_t *page) tsr_hidden;
void  *tsr_large_realloc_inplace(tsr_heap_t *heap, tsr_page_t *page, size_t size) tsr_hidden;
void  *tsr_huge_alloc(size_t size, size_t alignment, bool zero) tsr_hidden;
void   tsr_huge_free(tsr_segment_t *segment) tsr_hidden;
void  *tsr_huge_realloc(tsr_segment_t *segment, size_t size) tsr_hidden;
tsr_segment_t *tsr_huge_segment_of(const void *p) tsr_hidden;  /* NULL if not a huge block start */
bool   tsr_huge_was_freed(const void *p) tsr_hidden;
uint64_t tsr_huge_cache_purge(uint64_t now_ms, bool force) tsr_hidden;
void   tsr_huge_each(void (*fn)(tsr_segment_t *segment, void *arg), void *arg) tsr_hidden;
bool   tsr_huge_extents_ok(tsr_segment_t *segment) tsr_hidden;   /* invariant walk */

/* ---- heap.c -------------------------------------------------------------------- */
extern tsr_heap_t tsr_heap_empty tsr_hidden;    /* every thread starts here */
extern tsr_heap_t tsr_heap_main tsr_hidden;
extern __thread tsr_heap_t *tsr_heap_current tsr_hidden;
static inline tsr_heap_t *tsr_heap_get(void) { return tsr_heap_current; }
tsr_heap_t *tsr_heap_init_thread(void) tsr_hidden;     /* NULL if no memory */
void  tsr_heap_collect_remote(tsr_heap_t *heap, bool full) tsr_hidden;
void  tsr_heap_collect_deferred(tsr_heap_t *heap, unsigned size_class, bool full) tsr_hidden;
void  tsr_heap_housekeeping(tsr_heap_t *heap) tsr_hidden;
/* Have the heap's housekeeping run by `due` (ms) at the latest. */
static inline void tsr_heap_purge_due_by(tsr_heap_t *heap, uint64_t due) {
  if (heap->purge_due_ms == 0 || due < heap->purge_due_ms) heap->purge_due_ms = due;
}
void  tsr_heap_housekeeping_others(tsr_heap_t *heap, uint64_t now) tsr_hidden;
bool  tsr_heap_trim(void) tsr_hidden;
void  tsr_heap_thread_exit(void *heap) tsr_hidden;
void  tsr_heap_process_ready(void) tsr_hidden;
void  tsr_heap_fork_child(void) tsr_hidden;
extern tsr_heap_t *tsr_heap_all tsr_hidden;

/* The owner's side of peer collection (heap.c): every slow path that
 * touches its heap's queues, spans, pending list or remote batches is
 * bracketed by enter/leave; the fast paths are not, and a peer touches
 * nothing they reach. A peer that claimed the heap makes every thread pass
 * a barrier before it reads busy_depth, so the owner's side is a plain
 * store and load (asymmetric Dekker); the ThreadSanitizer build, which
 * cannot see that barrier, uses sequentially consistent accesses instead.
 * Only the calling thread's own heap is bracketed: a thread working on an
 * abandoned heap or as a peer holds the heaps lock or the claim instead. */
#if defined(__SANITIZE_THREAD__)
#define TSR_OWNER_ORDER memory_order_seq_cst
#else
#define TSR_OWNER_ORDER memory_order_relaxed
#endif
void tsr_heap_wait_unclaimed(tsr_heap_t *heap) tsr_hidden;
extern _Atomic uint64_t tsr_heap_peer_retired tsr_hidden;   /* pages a peer retired */
/* Returns the heap entered (NULL: none), to be given to tsr_heap_leave. */
static inline tsr_heap_t *tsr_heap_enter(tsr_heap_t *heap) {
  if (heap != tsr_heap_current || heap == &tsr_heap_empty) return NULL;
  uint32_t depth = atomic_load_explicit(&heap->busy_depth, memory_order_relaxed);
  atomic_store_explicit(&heap->busy_depth, depth + 1, TSR_OWNER_ORDER);
  if (depth != 0) return heap;
  atomic_store_explicit(&heap->slow_entries, atomic_load_explicit(&heap->slow_entries, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (tsr_unlikely(atomic_load_explicit(&heap->claimed, TSR_OWNER_ORDER) != 0)) tsr_heap_wait_unclaimed(heap);
  return heap;
}
static inline void tsr_heap_leave(tsr_heap_t *entered) {
  if (entered == NULL) return;
  uint32_t depth = atomic_load_explicit(&entered->busy_depth, memory_order_relaxed);
  atomic_store_explicit(&entered->busy_depth, depth - 1, memory_order_release);
}

/* malloc's fast-path marks around a pop from the direct table (types.h,
 * pop_seq): odd from before the page is read until the pop's stores are
 * done. Compiler fences keep that order; x86-64 keeps stores in order, and
 * the barrier a peer makes every thread pass drains them. Plain adds on
 * the owner's heap (tsr_heap_empty's is written by threads that have no
 * heap yet, and never read); atomic under ThreadSanitizer, for that one. */
#if defined(__SANITIZE_THREAD__)
#define TSR_POP_SEQ_ADD(heap, n) __atomic_fetch_add(&(heap)->pop_seq, (uint64_t)(int64_t)(n), __ATOMIC_RELAXED)
#else
/* One add to memory: a plain or volatile += becomes a load, add and store. */
#define TSR_POP_SEQ_ADD(heap, n) __asm__ volatile("addq %1, %0" : "+m"((heap)->pop_seq) : "er"((int64_t)(n)) : "cc")
#endif
static inline uint64_t tsr_heap_malloc_count(const tsr_heap_t *heap) {
  return heap->count.malloc_count + heap->pop_seq / 2;
}
static inline void tsr_pop_begin(tsr_heap_t *heap) {
  TSR_POP_SEQ_ADD(heap, 1);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}
/* counted: malloc's own pop (pop_seq / 2 is the fast path's malloc count) */
static inline void tsr_pop_end(tsr_heap_t *heap, bool counted) {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  TSR_POP_SEQ_ADD(heap, counted ? 1 : -1);
}

/* Test-only switches: each takes one piece of the default hardening out, so
 * `make hardening-cost` (bench/hardening_cost.py) can build the variant from
 * these sources and measure what the piece costs. Never for production.
 *   -DTSR_HARDEN_NO_LINK_ENCODING  free-list links stored plain; the secret
 *       stays, because it also keys the free mark (a mark equal to the
 *       block's own address would be common in live data: an empty circular
 *       list head at offset 0 points to itself).
 *   -DTSR_HARDEN_NO_FREE_CHECKS    free's fast path tests neither the block
 *       start nor the free mark, malloc and free keep no mark, and no block
 *       reads as marked (so no double free is diagnosed anywhere).
 *   -DTSR_HARDEN_NO_GUARD_PAGES    no PROT_NONE page after each segment. */
#ifdef TSR_HARDEN_NO_LINK_ENCODING
#define TSR_HARDEN_LINK_ENCODING 0
#else
#define TSR_HARDEN_LINK_ENCODING 1
#endif
#ifdef TSR_HARDEN_NO_FREE_CHECKS
#define TSR_HARDEN_FREE_CHECKS 0
#else
#define TSR_HARDEN_FREE_CHECKS 1
#endif
#ifdef TSR_HARDEN_NO_GUARD_PAGES
#define TSR_HARDEN_GUARD_PAGES 0
#else
#define TSR_HARDEN_GUARD_PAGES 1
#endif

static inline uintptr_t tsr_encode(uintptr_t secret, const void *p) {
  return (uintptr_t)p ^ (TSR_HARDEN_LINK_ENCODING ? secret : 0);
}
static inline tsr_block_t *tsr_decode(uintptr_t secret, uintptr_t v) {
  return (tsr_block_t *)(v ^ (TSR_HARDEN_LINK_ENCODING ? secret : 0));
}

/* Push the pages first..last (linked by pending_next) onto heap's pending
 * list. The caller owns their links: a page is pushed only by whoever made
 * its remote list non-empty (or took the list off the heap and found it
 * still non-empty). acq_rel: the owner's exchange that emptied the list
 * must happen-before our write of pending_next. */
static inline void tsr_heap_pending_push(tsr_heap_t *heap, tsr_page_t *first, tsr_page_t *last) {
  tsr_page_t *head = atomic_load_explicit(&heap->pending, memory_order_acquire);
  do {
    last->pending_next = head;
  } while (!atomic_compare_exchange_weak_explicit(&heap->pending, &head, first, memory_order_acq_rel,
                                                  memory_order_acquire));
}

/* Pop the first block of a page's free list (block == page->free, not NULL).
 * Clearing the free mark keeps double-free detection exact. About 5
 * instructions; shared by malloc's fast path and the slow paths. */
static inline void *tsr_page_pop(tsr_heap_t *heap, tsr_page_t *page, tsr_block_t *block) {
  page->free = tsr_decode(heap->secret, block->next_encoded);
  if (TSR_HARDEN_FREE_CHECKS) block->free_mark = 0;
  page->used++;
  return block;
}

/* A free block carries its address XOR the secret in its second word. */
static inline bool tsr_block_is_marked_free(const tsr_block_t *block, uintptr_t secret) {
  return TSR_HARDEN_FREE_CHECKS && block->free_mark == ((uintptr_t)block ^ secret);
}

/* ---- alloc.c / free.c ------------------------------------------------------------ */
void *tsr_alloc_generic(tsr_heap_t *heap, size_t size, size_t alignment, bool zero) tsr_hidden;
void *tsr_alloc_aligned(size_t alignment, size_t size) tsr_hidden;
void *tsr_realloc_internal(void *p, size_t size) tsr_hidden;
void  tsr_free_generic(void *p, tsr_heap_t *heap) tsr_hidden;   /* p first: free's own argument register */
void  tsr_free_flush_remote(tsr_heap_t *heap) tsr_hidden;
/* Take a class's whole reuse list (free.c), leaving it empty; *count: its length. */
static inline tsr_block_t *tsr_reuse_list_take(tsr_heap_t *heap, unsigned size_class, uint32_t *count) {
  tsr_block_t *list = heap->reuse_list[size_class];
  *count = heap->reuse_count[size_class];
  heap->reuse_total -= *count;
  heap->reuse_list[size_class] = NULL;
  heap->reuse_count[size_class] = 0;
  return list;
}
void  tsr_free_flush_reuse(tsr_heap_t *heap) tsr_hidden;
void  tsr_free_flush_reuse_all(tsr_heap_t *heap) tsr_hidden;
void  tsr_free_flush_reuse_stale(tsr_heap_t *heap) tsr_hidden;
void  tsr_free_flush_xfer(tsr_heap_t *heap, bool all) tsr_hidden;
size_t tsr_usable_size_internal(const void *p) tsr_hidden;
_Noreturn void tsr_free_invalid(const void *p, const char *what, size_t block_size) tsr_hidden;

/* ---- options.c / stats.c / init.c --------------------------------------------------- */
typedef struct tsr_option_value_s { long number; const char *text; } tsr_option_value_t;
extern tsr_option_value_t tsr_option_values[TSR_OPT_COUNT] tsr_hidden;
void tsr_options_init(void) tsr_hidden;
long tsr_option_long(tsr_option_id_t id) tsr_hidden;
const char *tsr_option_text(tsr_option_id_t id) tsr_hidden;
void tsr_options_print(int fd) tsr_hidden;

/* Formatted messages without stdio or allocation: %s %d %u %zu %lu %x %p %%. */
#include <stdarg.h>
size_t tsr_format(char *buf, size_t size, const char *fmt, ...) tsr_hidden;
size_t tsr_format_va(char *buf, size_t size, const char *fmt, va_list ap) tsr_hidden;
uint32_t tsr_page_live_count(tsr_heap_t *heap, tsr_page_t *page) tsr_hidden;
void   tsr_message(const char *fmt, ...) tsr_hidden;          /* "tessera: ..." to stderr */
void   tsr_stats_exit_report(void) tsr_hidden;
void   tsr_stats_init(void) tsr_hidden;
extern int tsr_stats_stderr tsr_hidden;

extern uintptr_t tsr_secret tsr_hidden;
void tsr_init_process(void) tsr_hidden;
extern _Atomic int tsr_init_state tsr_hidden;  /* 0 none, 1 running, 2 done */

/* ---- invariant.c: the walk of every structure (tests, fault injection) ---- */
/* Reports each broken invariant ("invariant broken: ...") and returns how
 * many; no other thread may be inside tessera meanwhile. */
size_t tsr_invariant_check(void) tsr_hidden;

#if TSR_DEBUG
#define tsr_assert(c) ((c) ? (void)0 : tsr_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void tsr_assert_fail(const char *what, const char *file, int line) tsr_hidden;
#else
#define tsr_assert(c) ((void)0)
#endif

#endif /* TSR_INTERNAL_H */
