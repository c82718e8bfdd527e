/* page.c -- pages of equal blocks: carving, free lists, the class queues and
 * the "find a block" slow path.
 *
 * Each heap keeps, per size class, a queue of its pages that may have free
 * blocks; the queue's first page is the one malloc pops from (the heap's
 * direct table points at it). A page that runs out leaves the queue and is
 * marked slow (TSR_OWNER_SLOW in its owner word), so the next free to it
 * takes the slow path and puts it back.
 * In classes up to 1 KiB (those of the direct table) the first page of a
 * queue carries one extra count in `used` (the "head bias"): it can never
 * reach zero through the fast path, so freeing the last block of the only
 * page of a class costs no call, and a hot malloc/free loop never retires
 * and re-creates its page. Every other page that empties is retired at once:
 * its span goes back to the heap -- in the bigger classes the first page
 * too, so their memory does not stay behind in a page nobody uses.
 * Blocks are carved TSR_PAGE_EXTEND_SIZE bytes at a time, so a new page costs
 * one OS page of memory, not 64 KiB.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

tsr_page_t tsr_page_empty;

/* ---- the direct table ------------------------------------------------------ */

static void direct_set(tsr_heap_t *heap, unsigned size_class, tsr_page_t *page) {
  size_t lo = size_class == 1 ? 0 : tsr_class_size[size_class - 1] / 16 + 1;
  size_t hi = tsr_class_size[size_class] / 16;
  for (size_t d = lo; d <= hi; d++) heap->direct[d] = page;
}

/* Point the direct slots of a class (sizes up to 1 KiB) at its queue head. */
void tsr_page_direct_update(tsr_heap_t *heap, unsigned size_class) {
  if (tsr_class_size[size_class] > TSR_DIRECT_MAX) return;
  tsr_page_t *page = heap->queue[size_class].first;
  if (size_class < TSR_REUSE_CLASSES && heap->reuse_page[size_class].free != NULL) page = &heap->reuse_page[size_class];
  else if (page == NULL) page = &tsr_page_empty;
  direct_set(heap, size_class, page);
}

/* Send a class's mallocs to the slow path (a peer about to retire its
 * first page; tsr_page_direct_update puts the slots back). */
void tsr_page_direct_clear(tsr_heap_t *heap, unsigned size_class) {
  if (tsr_class_size[size_class] <= TSR_DIRECT_MAX) direct_set(heap, size_class, &tsr_page_empty);
}

/* ---- queues (with the head bias) ------------------------------------------------- */

static inline bool class_has_bias(unsigned size_class) { return tsr_class_size[size_class] <= TSR_DIRECT_MAX; }

static void queue_unlink(tsr_page_queue_t *q, tsr_page_t *page) {
  if (page->prev != NULL) page->prev->next = page->next; else q->first = page->next;
  if (page->next != NULL) page->next->prev = page->prev; else q->last = page->prev;
  page->next = page->prev = NULL;
  page->is_queued = 0;
}

/* Remove a page from its queue; the head bias moves to the new first page.
 * Returns the page's used count without bias. */
static void queue_remove(tsr_heap_t *heap, tsr_page_t *page) {
  tsr_page_queue_t *q = &heap->queue[page->size_class];
  bool was_first = q->first == page;
  queue_unlink(q, page);
  if (was_first) {
    if (class_has_bias(page->size_class)) {
      page->used--;
      if (q->first != NULL) q->first->used++;
    }
    tsr_page_direct_update(heap, page->size_class);
  }
}

/* Give an empty page's span back; a one-slice page's slice, and how many
 * OS pages it had carved, are remembered for its class's next page
 * (page_new). */
static void page_span_free(tsr_heap_t *heap, tsr_page_t *page) {
  if (page->slice_count == 1) {
    size_t carved = tsr_os_pages(page->carved_size);
    heap->class_slice[page->size_class] = page;
    heap->class_slice_pages[page->size_class] = (uint8_t)(carved < 255 ? carved : 255);
  }
  tsr_span_free(heap, page);
}

static void queue_push_front(tsr_heap_t *heap, tsr_page_t *page) {
  tsr_page_queue_t *q = &heap->queue[page->size_class];
  tsr_page_t *old = q->first;
  page->prev = NULL;
  page->next = old;
  if (old != NULL) old->prev = page; else q->last = page;
  q->first = page;
  page->is_queued = 1;
  if (class_has_bias(page->size_class)) {
    page->used++;
    if (old != NULL && --old->used == 0) {   /* the old head was empty: retire it now */
      queue_unlink(q, old);
      page_span_free(heap, old);
    }
  }
  tsr_page_direct_update(heap, page->size_class);
}

static void queue_push_back(tsr_heap_t *heap, tsr_page_t *page) {
  tsr_page_queue_t *q = &heap->queue[page->size_class];
  if (q->first == NULL) { queue_push_front(heap, page); return; }
  page->next = NULL;
  page->prev = q->last;
  q->last->next = page;
  q->last = page;
  page->is_queued = 1;
}

/* ---- carving ------------------------------------------------------------------ */

/* Secure mode: link the new blocks in random order (Fisher-Yates), so an
 * overflow cannot count on which block follows which. */
static void page_extend_shuffled(tsr_heap_t *heap, tsr_page_t *page, uint8_t *first, uint32_t count) {
  uint16_t order[TSR_PAGE_EXTEND_SIZE / TSR_ALIGN];
  uint64_t x = heap->shuffle_state != 0 ? heap->shuffle_state : (uint64_t)heap->secret ^ (uintptr_t)first;
  for (uint32_t i = 0; i < count; i++) order[i] = (uint16_t)i;
  for (uint32_t i = count - 1; i > 0; i--) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;   /* xorshift64 */
    uint32_t j = (uint32_t)(x % (i + 1));
    uint16_t t = order[i]; order[i] = order[j]; order[j] = t;
  }
  heap->shuffle_state = x;
  tsr_block_t *list = page->free;
  for (uint32_t i = 0; i < count; i++) {
    tsr_block_t *block = (tsr_block_t *)(first + (size_t)order[i] * page->block_size);
    block->next_encoded = tsr_encode(heap->secret, list);
    list = block;
  }
  page->free = list;
}

/* Carve the next batch of never-used blocks into the (empty) free list. */
static void page_extend(tsr_heap_t *heap, tsr_page_t *page) {
  uint32_t size = page->block_size;
  uint32_t count = TSR_PAGE_EXTEND_SIZE / size;
  if (count < 1) count = 1;
  if (count > page->reserved - page->capacity) count = page->reserved - page->capacity;
  uint8_t *first = page->area + (size_t)page->capacity * size;
  if (tsr_owner_extra != 0 && count > 1) {
    page_extend_shuffled(heap, page, first, count);
  } else {
    uint8_t *block = first;
    for (uint32_t i = 1; i < count; i++, block += size)
      ((tsr_block_t *)block)->next_encoded = tsr_encode(heap->secret, block + size);
    ((tsr_block_t *)block)->next_encoded = tsr_encode(heap->secret, page->free);
    page->free = (tsr_block_t *)first;
  }
  page->capacity += count;
  __atomic_store_n(&page->carved_size, page->capacity * size, __ATOMIC_RELAXED);
  if (page->capacity == page->reserved) heap->class_fills[page->size_class / 64] |= 1ull << (page->size_class % 64);
}

/* ---- dirty tails ------------------------------------------------------------ */

/* A page made on a span that was dirty carves its blocks a few KiB at a
 * time, but the span's old contents stay resident behind them: a class of
 * a few blocks that lands on the slice of a former page of 4 KiB blocks
 * keeps 64 KiB resident for its 4. Replaying a trace ten times, RSS grew
 * pass after pass by such tails (cccp.rep: 1.72 MiB at the first pass's
 * peak, 2.04 MiB at the second's, with the same pages in use). So a page
 * made on dirty memory is noted here, and a page that then carved nothing
 * more from one housekeeping pass to the next gives its uncarved part back
 * to the OS. A page still growing keeps its tail (churn/1t spent 7 % more
 * time when every noted page was purged at the next pass: the busy ones
 * faulted their tails back in). The part is uncarved, so no block and no
 * free list lies there. Bounded: a page that finds the slots full keeps
 * its tail until it is retired. */
static void tail_dirty_add(tsr_heap_t *heap, tsr_page_t *page) {
  if (heap->tail_dirty_count == TSR_TAIL_DIRTY_SLOTS) return;
  uint64_t now = tsr_platform_clock_ms() | 1;   /* 0 means clean */
  page->free_time_ms = now;                     /* on a used page: its tail dirty since */
  heap->tail_dirty[heap->tail_dirty_count].page = page;
  heap->tail_dirty[heap->tail_dirty_count].carved = 0;
  heap->tail_dirty_count++;
  tsr_heap_purge_due_by(heap, now + TSR_PURGE_MIN_GAP_MS);
}

/* Purge the uncarved part of the noted pages that carved nothing since the
 * previous look (all if force); a noted page that was retired or carved to
 * its end meanwhile is dropped. Looks come from housekeeping, at least
 * TSR_PURGE_MIN_GAP_MS apart. Looking every few new pages instead (a clock
 * of pages, faster where a program makes pages quickly) took the traces
 * further (expr.rep 0.86 -> 0.95) but churn/1t to 1.3-1.4x its time: the
 * tails it purged were soon carved or reused, and every refault costs. The
 * owner, or a peer holding the heap's claim: the owner's fast paths only
 * pop carved blocks. Returns the bytes released; lowers purge_due_ms while
 * some are still waiting. */
size_t tsr_page_purge_tails(tsr_heap_t *heap, uint64_t now_ms, bool force) {
  if (tsr_option_long(TSR_OPT_PURGE_DELAY) < 0 && !force) return 0;
  size_t released = 0;
  uint32_t kept = 0;
  for (uint32_t i = 0; i < heap->tail_dirty_count; i++) {
    tsr_page_t *page = heap->tail_dirty[i].page;
    uint32_t carved = page->carved_size;
    if (page->kind != TSR_PAGE_SMALL || page->free_time_ms == 0 || page->capacity == page->reserved ||
        (tsr_page_owner(page) & ~TSR_OWNER_SLOW) != (uintptr_t)heap) continue;
    if (!force && (carved != heap->tail_dirty[i].carved || now_ms < page->free_time_ms + TSR_PURGE_MIN_GAP_MS)) {
      heap->tail_dirty[kept].page = page;       /* still growing (or just made): look again later */
      heap->tail_dirty[kept].carved = carved;
      kept++;
      continue;
    }
    uintptr_t start = ((uintptr_t)page->area + carved + TSR_OS_PAGE_SIZE - 1) & ~(uintptr_t)(TSR_OS_PAGE_SIZE - 1);
    uintptr_t end = (uintptr_t)page->area + ((size_t)page->slice_count << TSR_SLICE_SHIFT);
    if (start < end && tsr_os_purge((void *)start, end - start)) {
      released += end - start;
      tsr_span_set_resident(page, page->slice_count, start - (uintptr_t)page->area);
    }
    page->free_time_ms = 0;
  }
  heap->tail_dirty_count = kept;
  if (kept != 0) tsr_heap_purge_due_by(heap, now_ms + TSR_PURGE_MIN_GAP_MS);
  return released;
}

#define CLASS_SLICE_SLACK 2   /* OS pages a remembered slice may hold beyond what its page carved */

static tsr_page_t *page_new(tsr_heap_t *heap, unsigned size_class) {
  uint32_t slices = tsr_class_slices(size_class);
  /* Every few new pages, give up other classes' empty first pages, so the
   * new page can reuse their memory (not at every one: a program that
   * switches between two sizes would rebuild pages back and forth). */
  if ((++heap->page_new_count & 7) == 0) tsr_page_retire_empty_heads(heap, true);
  /* Which slice suits the page (span.c, span_find_slice): a class that
   * filled a page before will fill this one; any other carves a few KiB
   * before anything says it needs more. */
  uint32_t size = tsr_class_size[size_class];
  unsigned full = (unsigned)tsr_os_pages(((size_t)slices << TSR_SLICE_SHIFT) / size * size);
  unsigned first = (unsigned)tsr_os_pages(size > TSR_PAGE_EXTEND_SIZE ? size : TSR_PAGE_EXTEND_SIZE);
  bool fills = (heap->class_fills[size_class / 64] >> (size_class % 64)) & 1;
  unsigned want = fills || first > full ? full : first;
  /* First the slice this class gave back last, if it is still free and
   * dirty: a program that frees everything and builds it up again (a
   * trace replayed, a server's next request) then gets its old layout
   * back, each class on the memory it touched before. Fitting by the
   * expected extent alone put a rare class that grows to 11 pages on a
   * slice holding 2 and a class of 16-page pages on a clean one, so every
   * replay of cccp.rep held more than the one before (utilization 0.92
   * for one pass, 0.80 for eight). Not when the slice now holds more than
   * the class's page had carved there (and CLASS_SLICE_SLACK more): then
   * something larger used it since, and the class would keep that
   * resident for nothing while the larger user takes clean memory
   * (micro-calloc: 6 % more peak RSS without this test). */
  tsr_page_t *page = NULL;
  if (slices == 1 && heap->class_slice[size_class] != NULL) {
    page = tsr_span_alloc_slice(heap, heap->class_slice[size_class],
                                heap->class_slice_pages[size_class] + CLASS_SLICE_SLACK);
    heap->class_slice[size_class] = NULL;
  }
  if (page == NULL) page = tsr_span_alloc(heap, slices, 1, want);
  if (page == NULL) return NULL;
  bool tail_dirty = false;   /* a free span's slices keep their free times until reused */
  for (uint32_t i = 0; i < slices; i++) tail_dirty |= page[i].free_time_ms != 0;
  page->free_time_ms = 0;
  if (tail_dirty) tail_dirty_add(heap, page);
  page->kind = TSR_PAGE_SMALL;
  page->size_class = (uint16_t)size_class;
  page->block_size = size;
  page->block_magic = UINT64_MAX / size + 1;
  page->area = tsr_slice_start(page);
  page->reserved = (uint32_t)(((size_t)slices << TSR_SLICE_SHIFT) / size);
  page->capacity = 0;
  page->carved_size = 0;
  page->used = 0;
  page->free = NULL;
  page->spill = NULL;
  page->remote_deferred = 0;
  atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
  page->pending_next = NULL;
  tsr_span_mark_used(page, slices);
  tsr_page_set_owner(page, (uintptr_t)heap);
  return page;
}

/* Blocks of other heaps that this thread freed (free.c, "reuse"): the reuse
 * page serves them until it runs dry, then its list is refilled from the
 * reuse list, or the direct table goes back to the class queue. */
static void *reuse_take(tsr_heap_t *heap, unsigned size_class) {
  tsr_page_t *r = &heap->reuse_page[size_class];
  bool was_direct = tsr_class_size[size_class] <= TSR_DIRECT_MAX && heap->direct[tsr_class_size[size_class] >> 4] == r;
  /* The heap's own first page comes first when it has blocks: a thread
   * that frees locally what it reused would otherwise keep those blocks
   * foreign for good, every free of them a remote one (larson: a successor
   * thread frees its predecessor's blocks, then works on its own). */
  tsr_page_t *first = heap->queue[size_class].first;
  bool own = first != NULL && (first->free != NULL || first->spill != NULL);
  if (r->free == NULL && heap->reuse_list[size_class] != NULL && !own) {
    uint32_t n;
    r->free = tsr_reuse_list_take(heap, size_class, &n);
    r->capacity = r->used + n;   /* capacity - used: blocks held (stats) */
  }
  if ((r->free != NULL) != was_direct) tsr_page_direct_update(heap, size_class);   /* no-op above 1 KiB */
  return r->free != NULL ? tsr_page_pop(heap, r, r->free) : NULL;
}

/* ---- the central transfer ------------------------------------------------------ */

/* A thread that frees more blocks of a class than it allocates (the
 * consumer of a producer-consumer flow) fills its reuse list (free.c) and
 * then hands the whole list here, with one CAS, where the per-page batches
 * back to the owners took one CAS per few blocks and the owners' collection
 * a cache miss per page (after tcmalloc's transfer cache). A thread whose
 * own pages of the class have no free block takes a whole list here before
 * it makes a new page -- a list whose first block its heap owns (the
 * blocks go home in bulk, into its reuse page) or one it put here itself
 * (its own frees, still in its cache). A third heap leaves the list: the
 * blocks of a burst that one thread allocated and another freed would
 * otherwise end up live in other threads' blocks, keeping the burst's
 * pages (make soak's RSS right after malloc_trim: docs/design.md). Heap
 * ids are compared by their low bits (tsr_xfer_word): a rare match by
 * chance only lets a third heap in.
 * The blocks stay counted as used on their own pages and keep their free
 * marks. Lock-free: a slot is filled by a CAS from 0 and emptied by a CAS
 * to 0, so no list reaches two takers. Bounded by the slots (TSR_XFER_SLOTS
 * lists of up to TSR_REUSE_BYTES per class); the others' housekeeping
 * (every 20 ms at most) sends home a list that sat in its slot since its
 * previous pass (tsr_free_flush_xfer), and malloc_trim sends all home. */
tsr_xfer_class_t tsr_page_xfer[TSR_REUSE_CLASSES];

/* Set at the first put and never cleared: a program whose threads never
 * fill a reuse list (one thread, or threads that free their own blocks)
 * skips the scan of the class's slots at every slow path (8 loads; 1.2 %
 * of micro-batch's instructions). Read relaxed: a list put a moment ago
 * and not yet seen only waits for the next slow path. On a line of its
 * own, as the slots beside it are written by every put and take. */
static struct { _Alignas(64) _Atomic bool is_used; char pad[63]; } xfer_state;

/* word: tsr_xfer_word (internal.h). false: every slot of the class is
 * taken (the caller keeps the list). */
bool tsr_page_xfer_put(unsigned size_class, uintptr_t word) {
  _Atomic(uintptr_t) *slot = tsr_page_xfer[size_class].slot;
  if (!atomic_load_explicit(&xfer_state.is_used, memory_order_relaxed))
    atomic_store_explicit(&xfer_state.is_used, true, memory_order_relaxed);
  for (unsigned i = 0; i < TSR_XFER_SLOTS; i++) {
    uintptr_t empty = 0;
    if (atomic_load_explicit(&slot[i], memory_order_relaxed) == 0 &&
        atomic_compare_exchange_strong_explicit(&slot[i], &empty, word, memory_order_release, memory_order_relaxed))
      return true;
  }
  return false;
}

/* A whole list of the class for heap (tsr_xfer_is_for; NULL: none);
 * *count: its length. */
tsr_block_t *tsr_page_xfer_take(unsigned size_class, const tsr_heap_t *heap, uint32_t *count) {
  _Atomic(uintptr_t) *slot = tsr_page_xfer[size_class].slot;
  for (unsigned i = 0; i < TSR_XFER_SLOTS; i++) {
    uintptr_t word = atomic_load_explicit(&slot[i], memory_order_relaxed);
    if (word == 0 || !tsr_xfer_is_for(word, heap)) continue;
    if (!atomic_compare_exchange_strong_explicit(&slot[i], &word, 0, memory_order_acquire, memory_order_relaxed))
      continue;
    *count = tsr_xfer_count(word);
    return tsr_xfer_list(word);
  }
  return NULL;
}

/* A list from the central transfer becomes the reuse page's (which is
 * empty here: reuse_take ran). */
static void *reuse_take_xfer(tsr_heap_t *heap, unsigned size_class) {
  uint32_t n;
  tsr_block_t *list = tsr_page_xfer_take(size_class, heap, &n);
  if (list == NULL) return NULL;
  tsr_page_t *r = &heap->reuse_page[size_class];
  r->free = list;
  r->capacity = r->used + n;
  tsr_page_direct_update(heap, size_class);   /* no-op above 1 KiB: malloc_slow looks at the reuse page */
  return tsr_page_pop(heap, r, r->free);
}

/* The slow path of malloc for a size class: collect remote frees, walk the
 * class queue (pages that turn out full leave it), else make a new page.
 * NULL with errno ENOMEM if the OS refuses memory. */
void *tsr_page_alloc_class(tsr_heap_t *heap, unsigned size_class) {
  if (heap->remote_pending != 0) tsr_free_flush_remote(heap);
  if (atomic_load_explicit(&heap->pending, memory_order_relaxed) != NULL) tsr_heap_collect_remote(heap, false);
  if (heap->deferred[size_class] != NULL) tsr_heap_collect_deferred(heap, size_class, false);
  /* Reused blocks first, before the clock is read: a reuse page that runs
   * dry brings the thread here every few hundred blocks. */
  if (size_class < TSR_REUSE_CLASSES) {
    void *p = reuse_take(heap, size_class);
    if (p != NULL) return p;
    /* Then a list from the central transfer (into the reuse page, which
     * reuse_take left empty), before the own pages: their free blocks came
     * home one batch at a time from the threads that freed them, while the
     * transfer's lists wait whole and are sent home after a while if no
     * one takes them. */
    if (tsr_owner_extra == 0 && atomic_load_explicit(&xfer_state.is_used, memory_order_relaxed)) {
      p = reuse_take_xfer(heap, size_class);
      if (p != NULL) return p;
    }
  }
  /* Housekeeping reads the clock: with something of our own due, at every
   * page slow path (a program that calls malloc rarely still gets its
   * memory back after the purge delay: examples/realloc_shrink.c); for the
   * idle heaps of others alone, every 32nd. */
  if (heap->purge_due_ms != 0) tsr_heap_housekeeping(heap);
  else if ((atomic_load_explicit(&heap->slow_entries, memory_order_relaxed) & 31) == 0)
    tsr_heap_housekeeping_others(heap, tsr_platform_clock_ms());
  tsr_page_queue_t *q = &heap->queue[size_class];
  tsr_page_t *page = q->first;
  while (page != NULL) {
    if (page->free == NULL && page->spill != NULL) { page->free = page->spill; page->spill = NULL; }
    if (page->free == NULL && page->capacity < page->reserved) page_extend(heap, page);
    if (page->free != NULL) break;
    tsr_page_t *next = page->next;
    queue_remove(heap, page);           /* full: off the queue until a block comes back */
    tsr_page_set_owner(page, (uintptr_t)heap | TSR_OWNER_SLOW);
    page = next;
  }
  if (page == NULL) {
    page = page_new(heap, size_class);
    if (page == NULL) return NULL;
    page_extend(heap, page);
    queue_push_front(heap, page);
  } else if (q->first != page) {
    queue_unlink(q, page);
    queue_push_front(heap, page);
  }
  return tsr_page_pop(heap, page, page->free);
}

/* ---- freeing ------------------------------------------------------------------------ */

/* A block came back to a page that had left its queue (full): put it back. */
void tsr_page_unfull(tsr_heap_t *heap, tsr_page_t *page) {
  tsr_page_set_owner(page, (uintptr_t)heap);
  queue_push_back(heap, page);
}

/* A page's last block was freed: give its span back, unless it is the head
 * (the bias keeps the head's count above zero; see the file comment). */
static void page_retire(tsr_heap_t *heap, tsr_page_t *page) {
  if (page->is_queued && heap->queue[page->size_class].first == page && !class_has_bias(page->size_class) &&
      page->block_size <= 8192) {
    /* An empty first page of a class of 1-8 KiB stays until the next
     * housekeeping (a malloc/free loop of that size keeps reusing it);
     * above 8 KiB touching the block costs more than a new page. */
    if (heap->purge_due_ms == 0) heap->purge_due_ms = heap->last_purge_ms + 1;
    return;
  }
  if (page->is_queued) queue_remove(heap, page);
  if (page->used != 0) return;
  page_span_free(heap, page);
}

/* Entered from free's fast path too: bracketed for peers (heap.c). */
void tsr_page_retire(tsr_heap_t *heap, tsr_page_t *page) {
  tsr_heap_t *entered = tsr_heap_enter(heap);
  page_retire(heap, page);
  tsr_heap_leave(entered);
}

/* Retire an empty page whatever its place (a peer's collection, heap.c).
 * A first page of the direct table's classes comes here only as its
 * class's one page, with used 1: the bias, which goes with it. */
void tsr_page_retire_now(tsr_heap_t *heap, tsr_page_t *page) {
  page->remote_deferred = 0;   /* the caller took it off its deferred list */
  if (page->is_queued) queue_remove(heap, page);
  page_span_free(heap, page);
}

/* Retire the empty first pages of the classes above 1 KiB (housekeeping),
 * or of every class (with_bias: before a new page is made, so the new page
 * reuses memory another class no longer holds live -- segregated classes
 * then share memory over time, the way coalescing lets a best-fit heap). */
void tsr_page_retire_empty_heads(tsr_heap_t *heap, bool with_bias) {
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) {
    tsr_page_t *first = heap->queue[c].first;
    if (first == NULL) continue;
    bool bias = class_has_bias(c);
    if (bias ? (with_bias && first->used == 1 && first->next == NULL) : first->used == 0) {
      queue_remove(heap, first);   /* drops the bias: used is 0 now */
      page_span_free(heap, first);
    }
  }
}

/* Local free of a block in a page that is marked slow (full), after the
 * caller validated the block: push, then requeue or retire. */
void tsr_page_free_local_slow(tsr_heap_t *heap, tsr_page_t *page, void *p) {
  tsr_block_t *block = p;
  block->next_encoded = tsr_encode(heap->secret, page->free);
  block->free_mark = (uintptr_t)block ^ heap->secret;
  page->free = block;
  page->used--;
  if (!page->is_queued) tsr_page_unfull(heap, page);
  if (page->used == 0) tsr_page_retire(heap, page);
}
