/* heap.c -- thread-local heaps: create, adopt, abandon at thread exit,
 * collect remote frees, housekeeping, trim.
 *
 * A heap is owned by one thread at a time and touched only by it; other
 * threads reach it only through two lock-free lists: a page's thread_free
 * (blocks) and the heap's pending list (pages that got remote frees).
 * Heaps are never destroyed: a thread that exits abandons its heap, with
 * every page still owned by it, and the next new thread adopts it, so blocks
 * that other threads free after the exit are never lost and memory does not
 * grow with the number of threads ever created.
 * Every thread starts on tsr_heap_empty, whose pages have no free blocks,
 * so the first malloc falls into the slow path, which calls init_thread.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define EMPTY_DIRECT { [0 ... TSR_DIRECT_COUNT - 1] = &tsr_page_empty }

tsr_heap_t tsr_heap_empty = { .direct = EMPTY_DIRECT };
/* In .bss, not .data: its direct table is set when a thread takes it, like a
 * new heap's. Initialized, its 10.5 KiB were file pages every process mapped. */
tsr_heap_t tsr_heap_main;
__thread tsr_heap_t *tsr_heap_current = &tsr_heap_empty;
tsr_heap_t *tsr_heap_all;

static struct {
  tsr_heap_t *abandoned;       /* heaps of exited threads (TSR_LOCK_HEAPS) */
  uint32_t next_id;
  bool main_taken;
  pthread_key_t exit_key;      /* its destructor abandons the heap */
  _Atomic bool has_exit_key;
} heaps;

/* ---- remote frees ------------------------------------------------------------ */

/* Move a page's taken remote list onto its local lists, then requeue,
 * retire or free the page. The list's head says how long it is: an empty
 * local list simply becomes it, else the spill slot takes it; only when
 * both are in use is the list walked for its tail (reading only). */
static void page_take_remote(tsr_heap_t *heap, tsr_page_t *page, uintptr_t list) {
  if (page->kind == TSR_PAGE_LARGE) {
    if (list != 0) tsr_large_free(heap, page);
    return;
  }
  uintptr_t secret = heap->secret;
  uint32_t count = (uint32_t)(list >> TSR_REMOTE_COUNT_SHIFT);
  tsr_block_t *first = (tsr_block_t *)(list & TSR_REMOTE_PTR_MASK);
  if (first != NULL && page->free == NULL) {
    page->free = first;
  } else if (first != NULL && page->spill == NULL) {
    page->spill = first;        /* taken when the local list runs out */
  } else if (first != NULL) {
    tsr_block_t *last = first;
    for (tsr_block_t *b = tsr_decode(secret, first->next_encoded); b != NULL; b = tsr_decode(secret, b->next_encoded))
      last = b;
    last->next_encoded = tsr_encode(secret, page->spill);
    page->spill = first;
  }
  page->used -= count;
  if (count != 0 && !page->is_queued) tsr_page_unfull(heap, page);
  if (page->used == 0) tsr_page_retire(heap, page);
}

/* A page whose local and spill lists are both in use would need its remote
 * list walked (the blocks were last written by the freeing threads' cores:
 * a cache miss each, the hot spot of producer-consumer work). So its list
 * is left where it is and the page goes on the heap's deferred list, to be
 * taken without a walk once a local list runs dry -- unless every block of
 * the page is free, when the page is retired at once. While the remote list
 * stays non-empty no freeing thread pushes the page on the pending list, so
 * its pending_next link is the deferred list's. */
static bool page_defers(tsr_page_t *page) {
  if (page->kind != TSR_PAGE_SMALL || page->free == NULL || page->spill == NULL) return false;
  uintptr_t list = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  return page->used != (uint32_t)(list >> TSR_REMOTE_COUNT_SHIFT);
}

static void page_defer(tsr_heap_t *heap, tsr_page_t *page) {
  page->remote_deferred = 1;
  page->pending_next = heap->deferred[page->size_class];
  heap->deferred[page->size_class] = page;
  heap->deferred_count++;
}

static void collect_deferred_all(tsr_heap_t *heap) {
  for (unsigned c = 1; c < TSR_CLASS_COUNT && heap->deferred_count != 0; c++)
    if (heap->deferred[c] != NULL) tsr_heap_collect_deferred(heap, c, true);
}

/* Collect every page on the pending list; full: walk where needed and take
 * the deferred pages too (trim, thread exit, housekeeping). Owner only, or
 * a thread holding an abandoned heap. */
void tsr_heap_collect_remote(tsr_heap_t *heap, bool full) {
  tsr_page_t *page = atomic_exchange_explicit(&heap->pending, NULL, memory_order_acq_rel);
  while (page != NULL) {
    /* Read the link first: once thread_free is taken, a remote free may
     * push this page onto the pending list again and rewrite it. */
    tsr_page_t *next = page->pending_next;
    if (!full && page_defers(page)) page_defer(heap, page);
    else page_take_remote(heap, page, atomic_exchange_explicit(&page->thread_free, 0, memory_order_acq_rel));
    page = next;
  }
  if (full) collect_deferred_all(heap);
}

/* Take a class's deferred pages that no longer need a walk (all if full):
 * from malloc's slow path for that class, where its first page ran dry. */
void tsr_heap_collect_deferred(tsr_heap_t *heap, unsigned size_class, bool full) {
  tsr_page_t *page = heap->deferred[size_class];
  heap->deferred[size_class] = NULL;
  while (page != NULL) {
    tsr_page_t *next = page->pending_next;
    page->remote_deferred = 0;
    heap->deferred_count--;
    if (!full && page_defers(page)) page_defer(heap, page);
    else page_take_remote(heap, page, atomic_exchange_explicit(&page->thread_free, 0, memory_order_acq_rel));
    page = next;
  }
}

/* ---- peer collection: other threads' idle heaps ----------------------------------- */

/* A thread that allocated a burst, freed it (or had it freed by others)
 * and went idle would keep all of it: remote frees wait for their owner's
 * next slow path, and so does the purge of its free spans. So a peer (any
 * thread's housekeeping, and malloc_trim) may claim another live heap and
 * do that work itself, restricted to what the owner's fast paths never
 * reach: the heap's remote batches, its pending list, pages that are free
 * in full (counted used == remotely freed, never the first page of a class
 * of the direct table: malloc's fast path pops from those), and its free
 * spans.
 * Claiming is the peer's half of an asymmetric Dekker handshake with
 * tsr_heap_enter: it sets `claimed`, makes every thread pass a barrier,
 * and backs off if the owner is inside a slow path; an owner that enters
 * meanwhile waits until the peer lets go. A page whose used count reached
 * zero is never touched: the owner's free may be on its way to retire it. */
_Atomic uint64_t tsr_heap_peer_retired;   /* pages retired by peers (tests) */

static void peer_release(tsr_heap_t *h) { atomic_store_explicit(&h->claimed, 0, memory_order_release); }

void tsr_heap_wait_unclaimed(tsr_heap_t *heap) {
  while (atomic_load_explicit(&heap->claimed, memory_order_acquire) != 0) tsr_platform_yield();
}

/* ---- first pages of the direct table ---- an idle thread's malloc fast path
 * would pop from them at its next call, without a bracket. A peer takes a
 * class's first page out of the direct table (its slots then send malloc to
 * the slow path, which waits for the claim), makes every thread pass a
 * barrier, and then reads the owner's pop_seq: even means no fast pop that
 * read the slots before they changed is still at work (types.h), so the
 * page is the peer's to retire if its blocks are all free. Only the class's
 * one page: retiring a first page moves the head bias (page.c) onto the
 * next, whose count the owner's free may be changing. heads: a bit per
 * class whose first page is out of the direct table for this pass. */
typedef uint64_t peer_heads_t[(TSR_CLASS_COUNT + 63) / 64];

static bool heads_has(const uint64_t *heads, unsigned c) {
  return heads != NULL && (heads[c >> 6] >> (c & 63) & 1) != 0;
}

/* The class's one page, every block free (its used count is the bias plus
 * the blocks freed remotely); a first read, taken again after the barrier. */
static tsr_page_t *head_if_free(tsr_heap_t *h, unsigned c) {
  tsr_page_t *page = h->queue[c].first;
  if (page == NULL || page->next != NULL) return NULL;
  uintptr_t list = atomic_load_explicit(&page->thread_free, memory_order_acquire);
  uint32_t count = (uint32_t)(list >> TSR_REMOTE_COUNT_SHIFT);
  return __atomic_load_n(&page->used, __ATOMIC_ACQUIRE) == count + 1 ? page : NULL;
}

/* Take the free first pages of the claimed heaps out of their direct
 * tables; returns whether any was (heads[i] says which classes). */
static bool peer_heads_release(tsr_heap_t **claimed, unsigned n, peer_heads_t *heads) {
  bool any = false;
  (void)claimed;
  for (unsigned i = 0; i < n; i++) {
    memset(heads[i], 0, sizeof heads[i]);
#if !defined(__SANITIZE_THREAD__)   /* it cannot see the barrier that orders pop_seq */
    for (unsigned c = 1; c < TSR_CLASS_COUNT && tsr_class_size[c] <= TSR_DIRECT_MAX; c++) {
      if (head_if_free(claimed[i], c) == NULL) continue;
      tsr_page_direct_clear(claimed[i], c);
      heads[i][c >> 6] |= (uint64_t)1 << (c & 63);
      any = true;
    }
#endif
  }
  return any;
}

static void peer_heads_restore(tsr_heap_t *h, uint64_t *heads) {
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++)
    if (heads_has(heads, c)) tsr_page_direct_update(h, c);
  memset(heads, 0, sizeof(peer_heads_t));
}

/* Retire a page of a claimed heap if every block in it is free, the rest
 * of them on its remote list. false: it stays (on the pending list). */
static bool peer_retire_if_free(tsr_heap_t *h, tsr_page_t *page, const uint64_t *heads) {
  uintptr_t list = atomic_load_explicit(&page->thread_free, memory_order_acquire);
  if (page->kind == TSR_PAGE_LARGE) {
    /* Its one block was freed remotely; the page is on no fast path. */
    if (list != 0 && atomic_compare_exchange_strong(&page->thread_free, &list, 0)) {
      tsr_large_free(h, page);
      atomic_fetch_add_explicit(&tsr_heap_peer_retired, 1, memory_order_relaxed);
    }
    return true;
  }
  uint32_t count = (uint32_t)(list >> TSR_REMOTE_COUNT_SHIFT);
  if (count == 0) return false;
#if defined(__SANITIZE_THREAD__)
  /* A queued page's count is written by the owner's fast free, which the
   * barrier orders but ThreadSanitizer cannot see: full pages only there
   * (their frees all take the bracketed slow path). */
  if (page->is_queued) return false;
#endif
  /* The first page of a class of the direct table is where malloc's fast
   * path pops, unless this pass took it out (above); the other classes'
   * first pages are reached by slow paths only. */
  bool head = page->is_queued && h->queue[page->size_class].first == page && page->block_size <= TSR_DIRECT_MAX;
  if (head && !(heads_has(heads, page->size_class) && page->next == NULL)) return false;
  uint32_t bias = head ? 1 : 0;
  /* The owner's fast free of a live block of this page stores the count
   * after its push, so a count equal to the remote one means no block of
   * the page is live, and none will be freed into it again. */
  if (__atomic_load_n(&page->used, __ATOMIC_ACQUIRE) != count + bias) return false;
  if (!atomic_compare_exchange_strong(&page->thread_free, &list, 0)) return false;
  page->used = bias;
  tsr_page_retire_now(h, page);
  atomic_fetch_add_explicit(&tsr_heap_peer_retired, 1, memory_order_relaxed);
  return true;
}

/* Give back what is due (all if force): free spans, then the dirty tails
 * of pages (page.c), which must come after: the span purge resets
 * purge_due_ms, and the tails lower it again for those still waiting.
 * lock_unmaps: see tsr_span_purge_due. Returns the bytes released. */
static size_t heap_purge(tsr_heap_t *h, uint64_t now, bool force, bool lock_unmaps) {
  size_t released = tsr_span_purge_due(h, now, force, lock_unmaps);
  return released + tsr_page_purge_tails(h, now, force);
}

static void peer_collect(tsr_heap_t *h, uint64_t now, bool force, uint64_t *heads) {
  /* First pages freed in full by their owner: on no remote list. */
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) {
    tsr_page_t *head = heads_has(heads, c) ? head_if_free(h, c) : NULL;
    if (head != NULL && atomic_load_explicit(&head->thread_free, memory_order_acquire) == 0) {
      tsr_page_retire_now(h, head);
      atomic_fetch_add_explicit(&tsr_heap_peer_retired, 1, memory_order_relaxed);
    }
  }
  tsr_page_t *page = atomic_exchange_explicit(&h->pending, NULL, memory_order_acq_rel);
  tsr_page_t *keep = NULL, *keep_last = NULL;
  while (page != NULL) {
    tsr_page_t *next = page->pending_next;
    if (!peer_retire_if_free(h, page, heads)) {
      /* Its remote list stays non-empty, so no freeing thread pushes it
       * on the pending list meanwhile: the link is ours to rewrite. */
      page->pending_next = keep;
      keep = page;
      if (keep_last == NULL) keep_last = page;
    }
    page = next;
  }
  if (keep != NULL) tsr_heap_pending_push(h, keep, keep_last);
  /* Deferred pages: the same test; the list is the owner's, and ours while claimed. */
  for (unsigned c = 1; c < TSR_CLASS_COUNT && h->deferred_count != 0; c++) {
    tsr_page_t **link = &h->deferred[c];
    while ((page = *link) != NULL) {
      tsr_page_t *next = page->pending_next;
      if (peer_retire_if_free(h, page, heads)) { *link = next; h->deferred_count--; }
      else link = &page->pending_next;
    }
  }
  peer_heads_restore(h, heads);
  if (force || (h->purge_due_ms != 0 && now >= h->purge_due_ms)) heap_purge(h, now, force, false);
}

/* Do the idle live heaps' work (caller holds the heaps lock). A heap is
 * idle when its owner entered no slow path since the previous pass. The
 * claims are set first and one barrier serves them all; then the batches
 * of every claimed heap are flushed, so that the pages they free are
 * complete when their own heaps are collected. */
#define PEERS_PER_PASS 64
/* The barrier is a membarrier system call, an interrupt on every CPU that
 * runs a thread of ours: 3.7 ms a call on the 2-core VM (strace). The
 * heaps lock is let go meanwhile, or every thread start and exit waits
 * for it (larson -t 4: thousands of sched_yields in tsr_lock). Nothing the
 * lock guards is held across it: the claims keep the claimed heaps ours
 * (their owners wait in tsr_heap_enter, thread exit included), and the
 * registry walk is done. Caller holds the heaps lock. */
static int barrier_all_threads_unlocked(void) {
  tsr_unlock(TSR_LOCK_HEAPS);
  int r = tsr_platform_barrier_all_threads();
  tsr_lock(TSR_LOCK_HEAPS);
  return r;
}

/* trim_round (malloc_trim's pass, force): every heap not yet done in this
 * round, idle or not; returns how many were left because their owner was
 * inside a slow path (perhaps waiting for the heaps lock we hold). */
static unsigned peers_housekeeping(tsr_heap_t *self, uint64_t now, uint64_t trim_round) {
  bool force = trim_round != 0;
  tsr_heap_t *claimed[PEERS_PER_PASS];
  unsigned n = 0, busy = 0;
  for (tsr_heap_t *h = tsr_heap_all; h != NULL && n < PEERS_PER_PASS; h = h->all_next) {
    if (h == self || h->is_abandoned || !h->is_initialized) continue;
    if (force && h->peer_trim_round == trim_round) continue;
    uint64_t entries = atomic_load_explicit(&h->slow_entries, memory_order_relaxed);
    bool was_idle = entries == h->peer_seen_entries;
    h->peer_seen_entries = entries;
    if (!was_idle && !force) continue;
#if !defined(__SANITIZE_THREAD__)
    /* A stale look at the owner's fields (a plain load of a word): at
     * worst a heap is claimed for nothing or left for the next pass. The
     * ThreadSanitizer build claims every idle heap instead. */
    bool has_work = *(volatile uint32_t *)&h->remote_pending != 0 || *(volatile uint32_t *)&h->reuse_total != 0 ||
                    atomic_load_explicit(&h->pending, memory_order_relaxed) != NULL ||
                    *(volatile uint32_t *)&h->deferred_count != 0 ||
                    *(volatile uint64_t *)&h->purge_due_ms != 0 ||
                    *(volatile uint64_t *)&h->count.free_count != h->peer_seen_frees;   /* first pages */
    if (!has_work) continue;
#endif
    uint8_t expected = 0;
    if (atomic_compare_exchange_strong(&h->claimed, &expected, 1)) claimed[n++] = h;
  }
  if (n == 0) return 0;
#if !defined(__SANITIZE_THREAD__)
  if (barrier_all_threads_unlocked() != 0) {   /* no membarrier here: no peer collection */
    for (unsigned i = 0; i < n; i++) peer_release(claimed[i]);
    return 0;
  }
#endif
  unsigned m = 0;
  for (unsigned i = 0; i < n; i++) {
    if (atomic_load_explicit(&claimed[i]->busy_depth, memory_order_seq_cst) == 0) claimed[m++] = claimed[i];
    else { peer_release(claimed[i]); busy++; }
  }
  peer_heads_t heads[PEERS_PER_PASS];
  if (peer_heads_release(claimed, m, heads)) {
    bool barrier_ok = barrier_all_threads_unlocked() == 0;
    for (unsigned i = 0; i < m; i++)
      if (!barrier_ok || (__atomic_load_n(&claimed[i]->pop_seq, __ATOMIC_SEQ_CST) & 1) != 0)
        peer_heads_restore(claimed[i], heads[i]);   /* a pop may be at work: another pass */
  }
  for (unsigned i = 0; i < m; i++) {
    tsr_free_flush_reuse(claimed[i]);
    tsr_free_flush_remote(claimed[i]);
  }
  for (unsigned i = 0; i < m; i++) {
#if !defined(__SANITIZE_THREAD__)
    claimed[i]->peer_seen_frees = *(volatile uint64_t *)&claimed[i]->count.free_count;
#endif
    peer_collect(claimed[i], now, force, heads[i]);
    claimed[i]->peer_trim_round = trim_round;
    peer_release(claimed[i]);
  }
  return busy;
}

/* ---- housekeeping -------------------------------------------------------------- */

/* Heaps of exited threads have no owner to give their memory back, and a
 * new thread adopts only the most recently abandoned one: so every live
 * thread's housekeeping also collects the frees other threads made to them
 * and purges what is due, at most every OTHERS_GAP_MS in the process, and
 * does the same for idle live heaps (peers_housekeeping). Caller holds the
 * heaps lock, which keeps abandoned heaps from being adopted meanwhile. */
#define OTHERS_GAP_MS 20
static _Atomic uint64_t others_last_ms;   /* written under the heaps lock */
static void others_housekeeping(tsr_heap_t *self, uint64_t now) {
  if (now < atomic_load_explicit(&others_last_ms, memory_order_relaxed) + OTHERS_GAP_MS) return;
  atomic_store_explicit(&others_last_ms, now, memory_order_relaxed);
  peers_housekeeping(self, now, 0);
  tsr_free_flush_xfer(self, false);
  for (tsr_heap_t *h = heaps.abandoned; h != NULL; h = h->abandoned_next) {
    if (atomic_load_explicit(&h->pending, memory_order_acquire) != NULL || h->deferred_count != 0) {
      tsr_heap_collect_remote(h, true);
      tsr_page_retire_empty_heads(h, true);
    }
    if (h->purge_due_ms != 0 && now >= h->purge_due_ms) heap_purge(h, now, false, false);
  }
}

/* The others' part alone, from the slow path that makes pages: a thread
 * with nothing of its own to purge still looks after the idle heaps. */
void tsr_heap_housekeeping_others(tsr_heap_t *heap, uint64_t now) {
  if (now < atomic_load_explicit(&others_last_ms, memory_order_relaxed) + OTHERS_GAP_MS) return;
  tsr_lock(TSR_LOCK_HEAPS);
  others_housekeeping(heap, now);
  tsr_unlock(TSR_LOCK_HEAPS);
}

/* Purge what is due. Called from slow paths, at most every few milliseconds. */
void tsr_heap_housekeeping(tsr_heap_t *heap) {
  uint64_t now = tsr_platform_clock_ms();
  if (now < heap->purge_due_ms || now < heap->last_purge_ms + TSR_PURGE_MIN_GAP_MS) {
    tsr_heap_housekeeping_others(heap, now);
    return;
  }
  heap->last_purge_ms = now;
  if (heap->reuse_total != 0) tsr_free_flush_reuse_stale(heap);
  collect_deferred_all(heap);
  tsr_page_retire_empty_heads(heap, false);
  heap_purge(heap, now, false, true);   /* the lock around its unmaps only */
  tsr_heap_housekeeping_others(heap, now);
  uint64_t huge_due = tsr_huge_cache_purge(now, false);
  if (huge_due != 0) tsr_heap_purge_due_by(heap, huge_due);
}

/* Return empty pages (queue heads included) and all free spans. Owner only,
 * or a thread holding an abandoned heap taken off the abandoned list. */
static size_t heap_trim_one(tsr_heap_t *heap) {
  tsr_free_flush_reuse_all(heap);
  tsr_free_flush_remote(heap);
  tsr_heap_collect_remote(heap, true);
  tsr_page_retire_empty_heads(heap, false);
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) {
    tsr_page_t *first = heap->queue[c].first;
    if (first != NULL && first->used == 1 && tsr_class_size[c] <= TSR_DIRECT_MAX) {   /* only the bias: empty */
      tsr_page_retire(heap, first);             /* moves the bias on and frees the span */
    }
    for (tsr_page_t *page = heap->queue[c].first, *next; page != NULL; page = next) {
      next = page->next;
      if (page != heap->queue[c].first && page->used == 0) tsr_page_retire(heap, page);
    }
  }
  return heap_purge(heap, tsr_platform_clock_ms(), true, false);
}

bool tsr_heap_trim(void) {
  size_t released = 0;
  tsr_heap_t *heap = tsr_heap_get();
  tsr_heap_t *entered = tsr_heap_enter(heap);
  tsr_lock(TSR_LOCK_HEAPS);
  tsr_free_flush_xfer(heap, true);   /* before our batches are flushed, below */
  if (heap != &tsr_heap_empty) released += heap_trim_one(heap);
  /* Abandoned heaps have no thread: while we hold the lock none can adopt them. */
  for (tsr_heap_t *h = heaps.abandoned; h != NULL; h = h->abandoned_next) released += heap_trim_one(h);
  /* Live heaps of other threads: what a peer may do (see above), forced.
   * An owner inside a slow path may be waiting for the heaps lock: let go
   * of it between rounds, a few times, so busy heaps are trimmed too. */
  static uint64_t trim_rounds;   /* under the heaps lock */
  uint64_t round = ++trim_rounds;
  uint64_t mapped = atomic_load_explicit(&tsr_os_counters.mapped_bytes, memory_order_relaxed);
  uint64_t purged = atomic_load_explicit(&tsr_os_counters.purged_bytes, memory_order_relaxed);
  for (int tries = 0; peers_housekeeping(heap, tsr_platform_clock_ms(), round) != 0 && tries < 50; tries++) {
    tsr_unlock(TSR_LOCK_HEAPS);
    tsr_platform_yield();
    tsr_lock(TSR_LOCK_HEAPS);
  }
  released += (size_t)(mapped - atomic_load_explicit(&tsr_os_counters.mapped_bytes, memory_order_relaxed)) +
              (size_t)(atomic_load_explicit(&tsr_os_counters.purged_bytes, memory_order_relaxed) - purged);
  tsr_unlock(TSR_LOCK_HEAPS);
  tsr_heap_leave(entered);
  tsr_huge_cache_purge(0, true);
  return released != 0;
}

/* ---- life cycle ------------------------------------------------------------------ */

static void heap_register(tsr_heap_t *heap) {
  heap->secret = tsr_secret;
  heap->is_initialized = true;
  heap->id = ++heaps.next_id;
  heap->all_next = tsr_heap_all;
  atomic_store_explicit((_Atomic(tsr_heap_t *) *)&tsr_heap_all, heap, memory_order_release);
}

static void heap_clear_direct(tsr_heap_t *heap) {
  for (size_t d = 0; d < TSR_DIRECT_COUNT; d++) heap->direct[d] = &tsr_page_empty;
}

static void heap_bind_thread(tsr_heap_t *heap) {
  tsr_heap_current = heap;
  if (heap != &tsr_heap_main && atomic_load(&heaps.has_exit_key))
    pthread_setspecific(heaps.exit_key, heap);   /* the first keys need no allocation */
}

/* Give the calling thread a heap: the main heap, an abandoned one, or a new
 * one. NULL (errno ENOMEM) if no memory for a new heap. */
tsr_heap_t *tsr_heap_init_thread(void) {
  tsr_init_process();
  tsr_heap_t *heap = tsr_heap_current;
  if (heap != &tsr_heap_empty) return heap;      /* initialized while we recursed */
  bool is_main = tsr_platform_thread_id() == tsr_platform_process_id();
  tsr_lock(TSR_LOCK_HEAPS);
  if (is_main && !heaps.main_taken) {
    heaps.main_taken = true;
    heap = &tsr_heap_main;
    heap_clear_direct(heap);
    heap_register(heap);
  } else if (heaps.abandoned != NULL) {
    heap = heaps.abandoned;
    heaps.abandoned = heap->abandoned_next;
    heap->abandoned_next = NULL;
    __atomic_store_n(&heap->is_abandoned, false, __ATOMIC_RELAXED);   /* read unlocked by reuse_push (free.c) */
    heap->purge_delay_ms = 0;   /* a new thread's work: the option's purge delay (span.c) */
  }
  tsr_unlock(TSR_LOCK_HEAPS);
  if (heap == &tsr_heap_empty) {
    heap = tsr_os_meta_alloc(sizeof(tsr_heap_t));
    if (heap == NULL) { errno = ENOMEM; return NULL; }
    heap_clear_direct(heap);
    tsr_lock(TSR_LOCK_HEAPS);
    heap_register(heap);
    tsr_unlock(TSR_LOCK_HEAPS);
  }
  heap_bind_thread(heap);
  return heap;
}

/* pthread key destructor: the thread is exiting. Frees that other threads
 * make later still land on the pages (they stay owned by this heap) and are
 * collected by the thread that adopts it. Allocation after this point (a
 * later destructor) adopts a heap again; glibc then calls us once more. */
void tsr_heap_thread_exit(void *arg) {
  tsr_heap_t *heap = arg;
  if (heap == NULL || heap == &tsr_heap_empty || heap == &tsr_heap_main) return;
  tsr_heap_t *entered = tsr_heap_enter(heap);
  tsr_free_flush_reuse_all(heap);
  tsr_free_flush_remote(heap);
  tsr_heap_collect_remote(heap, true);
  tsr_page_retire_empty_heads(heap, true);   /* empty pages become spans that others' housekeeping purges */
  tsr_heap_leave(entered);                   /* before the heap can be adopted */
  tsr_heap_current = &tsr_heap_empty;
  tsr_lock(TSR_LOCK_HEAPS);
  __atomic_store_n(&heap->is_abandoned, true, __ATOMIC_RELAXED);
  heap->abandoned_next = heaps.abandoned;
  heaps.abandoned = heap;
  tsr_unlock(TSR_LOCK_HEAPS);
}

/* fork child: a peer in its barrier (barrier_all_threads_unlocked) holds
 * claims without the heaps lock, so fork_prepare does not wait for it, and
 * the child's one thread may find its heap claimed by a thread that is not
 * there: its next slow path would wait for ever. The claim is dropped, and
 * the direct slots the peer may have taken out for that pass put back. */
void tsr_heap_fork_child(void) {
  tsr_heap_t *heap = tsr_heap_current;
  if (heap == &tsr_heap_empty || atomic_load_explicit(&heap->claimed, memory_order_relaxed) == 0) return;
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) tsr_page_direct_update(heap, c);
  atomic_store_explicit(&heap->claimed, 0, memory_order_relaxed);
}

/* Called once libc is ready (from the constructor): thread-exit hook. */
void tsr_heap_process_ready(void) {
  if (atomic_load(&heaps.has_exit_key)) return;
  if (pthread_key_create(&heaps.exit_key, tsr_heap_thread_exit) == 0) atomic_store(&heaps.has_exit_key, true);
}
