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

#define EMPTY_DIRECT { [0 ... TSR_DIRECT_COUNT - 1] = &tsr_page_empty }

tsr_heap_t tsr_heap_empty = { .direct = EMPTY_DIRECT };
tsr_heap_t tsr_heap_main = { .direct = EMPTY_DIRECT };
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

/* Collect every page on the pending list: move its remote frees onto its
 * local list, then requeue, retire or free the page. Owner only. */
void tsr_heap_collect_remote(tsr_heap_t *heap) {
  tsr_page_t *page = atomic_exchange_explicit(&heap->pending, NULL, memory_order_acq_rel);
  uintptr_t secret = heap->secret;
  while (page != NULL) {
    /* Read the link first: once thread_free is taken, a remote free may
     * push this page onto the pending list again and rewrite it. */
    tsr_page_t *next = page->pending_next;
    uintptr_t list = atomic_exchange_explicit(&page->thread_free, 0, memory_order_acq_rel);
    if (page->kind == TSR_PAGE_LARGE) {
      if (list != 0) tsr_large_free(heap, page);
    } else {
      /* The remote list uses the same encoding as the local one and its
       * head says how long it is: an empty local list simply becomes it;
       * else find its tail (reading only) and splice it in front. */
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
    page = next;
  }
}

/* ---- housekeeping -------------------------------------------------------------- */

/* Heaps of exited threads have no owner to give their memory back, and a
 * new thread adopts only the most recently abandoned one: so every live
 * thread's housekeeping also collects the frees other threads made to them
 * and purges what is due, at most every ABANDONED_GAP_MS in the process.
 * Caller holds the heaps lock, which keeps them from being adopted meanwhile. */
#define ABANDONED_GAP_MS 20
static void abandoned_housekeeping(uint64_t now) {
  static uint64_t last_pass_ms;     /* under the heaps lock */
  if (heaps.abandoned == NULL || now < last_pass_ms + ABANDONED_GAP_MS) return;
  last_pass_ms = now;
  for (tsr_heap_t *h = heaps.abandoned; h != NULL; h = h->abandoned_next) {
    if (atomic_load_explicit(&h->pending, memory_order_acquire) != NULL) {
      tsr_heap_collect_remote(h);
      tsr_page_retire_empty_heads(h, true);
    }
    if (h->purge_due_ms != 0 && now >= h->purge_due_ms) tsr_span_purge_due(h, now, false);
  }
}

/* Purge what is due. Called from slow paths, at most every few milliseconds. */
void tsr_heap_housekeeping(tsr_heap_t *heap) {
  uint64_t now = tsr_platform_clock_ms();
  if (now < heap->purge_due_ms || now < heap->last_purge_ms + TSR_PURGE_MIN_GAP_MS) return;
  heap->last_purge_ms = now;
  tsr_page_retire_empty_heads(heap, false);
  tsr_lock(TSR_LOCK_HEAPS);         /* segment unmaps: the stats walker must not see them half done */
  tsr_span_purge_due(heap, now, false);
  abandoned_housekeeping(now);
  tsr_unlock(TSR_LOCK_HEAPS);
  uint64_t huge_due = tsr_huge_cache_purge(now, false);
  if (huge_due != 0 && (heap->purge_due_ms == 0 || huge_due < heap->purge_due_ms)) heap->purge_due_ms = huge_due;
}

/* Return empty pages (queue heads included) and all free spans. Owner only,
 * or a thread holding an abandoned heap taken off the abandoned list. */
static size_t heap_trim_one(tsr_heap_t *heap) {
  tsr_free_flush_remote(heap);
  tsr_heap_collect_remote(heap);
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
  return tsr_span_purge_due(heap, tsr_platform_clock_ms(), true);
}

bool tsr_heap_trim(void) {
  size_t released = 0;
  tsr_heap_t *heap = tsr_heap_get();
  tsr_lock(TSR_LOCK_HEAPS);
  if (heap != &tsr_heap_empty) released += heap_trim_one(heap);
  /* Abandoned heaps have no thread: while we hold the lock none can adopt them. */
  for (tsr_heap_t *h = heaps.abandoned; h != NULL; h = h->abandoned_next) released += heap_trim_one(h);
  tsr_unlock(TSR_LOCK_HEAPS);
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
    heap_register(heap);
  } else if (heaps.abandoned != NULL) {
    heap = heaps.abandoned;
    heaps.abandoned = heap->abandoned_next;
    heap->abandoned_next = NULL;
    heap->is_abandoned = false;
  }
  tsr_unlock(TSR_LOCK_HEAPS);
  if (heap == &tsr_heap_empty) {
    heap = tsr_os_meta_alloc(sizeof(tsr_heap_t));
    if (heap == NULL) { errno = ENOMEM; return NULL; }
    for (size_t d = 0; d < TSR_DIRECT_COUNT; d++) heap->direct[d] = &tsr_page_empty;
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
  tsr_free_flush_remote(heap);
  tsr_heap_collect_remote(heap);
  tsr_page_retire_empty_heads(heap, true);   /* empty pages become spans that others' housekeeping purges */
  tsr_heap_current = &tsr_heap_empty;
  tsr_lock(TSR_LOCK_HEAPS);
  heap->is_abandoned = true;
  heap->abandoned_next = heaps.abandoned;
  heaps.abandoned = heap;
  tsr_unlock(TSR_LOCK_HEAPS);
}

/* Called once libc is ready (from the constructor): thread-exit hook. */
void tsr_heap_process_ready(void) {
  if (atomic_load(&heaps.has_exit_key)) return;
  if (pthread_key_create(&heaps.exit_key, tsr_heap_thread_exit) == 0) atomic_store(&heaps.has_exit_key, true);
}
