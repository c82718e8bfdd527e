/* free.c -- free, the cross-thread free, and the diagnosis of invalid frees.
 *
 * The fast path: segment map says "ours", the slice's descriptor by masking,
 * owner check, two cheap validity checks, push. No lock, no atomic.
 * The checks catch the invalid frees that the metadata makes cheap to see,
 * before they corrupt anything:
 *   - outside every tessera segment (the segment map),
 *   - not at the start of a block (offset divisibility by multiplication),
 *   - already free: a free block carries a mark in its second word (its
 *     address XOR the process secret) that malloc clears; a live block would
 *     have to hold that exact value by chance. A hit is reported without
 *     walking any list: a block freed by another thread may sit in that
 *     thread's remote batch, on no list at all.
 * Only single-slice pages take the fast path: a descriptor that is not a
 * page head has owner 0, so blocks of multi-slice pages, large and huge
 * blocks, full pages, other threads' pages and suspects go to
 * tsr_free_generic, which resolves the head and diagnoses.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* ---- reporting ------------------------------------------------------------- */

tsr_cold _Noreturn void tsr_free_invalid(const void *p, const char *what, size_t block_size) {
  if (block_size != 0) tsr_message("%s 0x%lx (block of %zu bytes)", what, (unsigned long)(uintptr_t)p, block_size);
  else tsr_message("%s 0x%lx", what, (unsigned long)(uintptr_t)p);
  tsr_platform_abort();
}

/* Validate p as the start of a live block of page, or abort with a report. */
static void block_validate(tsr_page_t *page, const void *p) {
  uintptr_t a = (uintptr_t)p;
  if (tsr_page_owner(page) == 0) {
    if (page->kind == TSR_PAGE_META) tsr_free_invalid(p, "invalid free of a pointer into tessera's metadata:", 0);
    if ((a & (TSR_SLICE_SIZE - 1)) == 0) tsr_free_invalid(p, "double free (or free of a stale pointer) of", 0);
    tsr_free_invalid(p, "invalid free of a pointer into free memory:", 0);
  }
  uint64_t offset = a - (uintptr_t)page->area;
  if (offset >= __atomic_load_n(&page->carved_size, __ATOMIC_RELAXED) || offset * page->block_magic >= page->block_magic) {
    tsr_message("invalid free of 0x%lx: %lu bytes into a block of %u bytes (not the start of a block)",
                (unsigned long)a, (unsigned long)(offset % page->block_size), page->block_size);
    tsr_platform_abort();
  }
  if (page->kind == TSR_PAGE_LARGE) {
    if (atomic_load_explicit(&page->thread_free, memory_order_acquire) != 0)
      tsr_free_invalid(p, "double free of", page->block_size);
    return;
  }
  /* The mark is reliable without a walk of the lists: malloc clears it, and
   * a block freed by another thread may sit in that thread's remote batch,
   * on no list at all. */
  if (tsr_block_is_marked_free(p, tsr_secret)) tsr_free_invalid(p, "double free of", page->block_size);
}

/* ---- cross-thread free ---------------------------------------------------------- */

/* Push a chain of blocks (first..last, linked) onto the page's remote list;
 * the chain that makes the list non-empty also puts the page on its owner's
 * pending list, so the owner finds it. The page cannot be retired in
 * between: our blocks still count as used. */
static void push_remote(tsr_page_t *page, tsr_block_t *first, tsr_block_t *last, uint32_t count) {
  tsr_heap_t *owner = (tsr_heap_t *)(tsr_page_owner(page) & ~TSR_OWNER_SLOW);
  uintptr_t secret = tsr_secret;
  /* acq_rel throughout: the owner's exchange that emptied the list must
   * happen-before our write of pending_next (free on x86-64 either way). */
  /* The head carries the list's length, so the owner can take the list
   * without walking it (the blocks were last touched by our core). */
  uintptr_t head = atomic_load_explicit(&page->thread_free, memory_order_acquire);
  uintptr_t updated;
  do {
    last->next_encoded = tsr_encode(secret, (void *)(head & TSR_REMOTE_PTR_MASK));
    updated = (uintptr_t)first | (((head >> TSR_REMOTE_COUNT_SHIFT) + count) << TSR_REMOTE_COUNT_SHIFT);
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &head, updated,
                                                  memory_order_acq_rel, memory_order_acquire));
  if (head != 0) return;
  tsr_heap_pending_push(owner, page, page);
}

static void flush_slot(tsr_heap_t *heap, unsigned i) {
  push_remote(heap->remote[i].page, heap->remote[i].first, heap->remote[i].last, heap->remote[i].count);
  heap->remote[i].page = NULL;
  heap->remote[i].count = 0;
  heap->remote_pending--;
}

/* Hand this thread's batches of remote frees to their pages. Called when a
 * batch is full or its slot is wanted by another page, and from every slow
 * path of malloc, thread exit and trim, so a batch never waits long. */
void tsr_free_flush_remote(tsr_heap_t *heap) {
  for (unsigned i = 0; i < TSR_REMOTE_BATCH_SLOTS && heap->remote_pending != 0; i++)
    if (heap->remote[i].page != NULL) flush_slot(heap, i);
}

/* Batch a (free-marked) block for its owner heap: one slot per page, chosen
 * by the page's address; a full batch or a slot wanted by another page is
 * pushed first. */
static void batch_remote(tsr_heap_t *heap, tsr_page_t *page, tsr_block_t *block) {
  unsigned i = (unsigned)(((uintptr_t)page >> TSR_PAGE_DESC_SHIFT) ^ ((uintptr_t)page >> TSR_SEGMENT_SHIFT)) %
               TSR_REMOTE_BATCH_SLOTS;
  if (heap->remote[i].page != NULL && (heap->remote[i].page != page || heap->remote[i].count >= TSR_REMOTE_BATCH_COUNT))
    flush_slot(heap, i);
  if (heap->remote[i].page == NULL) {
    heap->remote[i].page = page;
    heap->remote[i].last = block;
    heap->remote_pending++;
  } else {
    block->next_encoded = tsr_encode(tsr_secret, heap->remote[i].first);
  }
  heap->remote[i].first = block;
  heap->remote[i].count++;
}

/* ---- reuse of other heaps' blocks ------------------------------------------------ */

/* A block another thread allocated and this one frees was last written by
 * this core: handing it out again from here (as the thread caches of
 * tcmalloc and jemalloc do) costs no cache miss, where sending it back to
 * its page makes the owner's next malloc of it miss. So a small block freed
 * remotely goes on this heap's reuse list of its class, up to a bound; it
 * stays counted as used on its own page, and keeps its free mark, so a
 * double free of it is still seen. malloc's slow path for the class moves
 * the list into the class's reuse page (reuse_take in page.c). Peers flush
 * the lists of idle heaps, never a reuse page: the fast path pops from it. */
static bool reuse_push(tsr_heap_t *heap, tsr_page_t *page, tsr_block_t *block) {
  unsigned c = page->size_class;
  if (c >= TSR_REUSE_CLASSES || tsr_owner_extra != 0) return false;   /* secure mode: no predictable reuse */
  /* A block of an exited thread's heap goes home: the thread that adopts
   * the heap gets it back with the heap's pages, and frees it locally
   * (larson: successor threads; a stale read only misplaces one block). */
  tsr_heap_t *owner = (tsr_heap_t *)(tsr_page_owner(page) & ~TSR_OWNER_SLOW);
  if (__atomic_load_n(&owner->is_abandoned, __ATOMIC_RELAXED)) return false;
  if (heap->reuse_count[c] >= TSR_REUSE_COUNT || (heap->reuse_count[c] + 1) * page->block_size > TSR_REUSE_BYTES) {
    /* Full: the whole list goes to the central transfer (page.c), where
     * the heap that owns its first block, or this one, may take it back
     * whole; this block starts a new list. */
    tsr_heap_t *first_owner = (tsr_heap_t *)(tsr_page_owner(tsr_page_of(heap->reuse_list[c])) & ~TSR_OWNER_SLOW);
    if (!tsr_page_xfer_put(c, tsr_xfer_word(heap->reuse_list[c], heap->reuse_count[c], first_owner, heap)))
      return false;
    uint32_t n;
    (void)tsr_reuse_list_take(heap, c, &n);
  }
  block->next_encoded = tsr_encode(tsr_secret, heap->reuse_list[c]);
  heap->reuse_list[c] = block;
  heap->reuse_count[c]++;
  heap->reuse_total++;
  return true;
}

/* Send every block of a reuse list or reuse page back to its owner. A list
 * from the central transfer may hold blocks of this heap's own pages: they
 * go onto their pages' remote lists directly (batches are for other heaps'
 * pages), and this heap collects them in its next slow path. */
static void reuse_return(tsr_heap_t *heap, tsr_block_t *list) {
  while (list != NULL) {
    tsr_block_t *next = tsr_decode(tsr_secret, list->next_encoded);
    tsr_page_t *page = tsr_page_of(list);
    if (heap == &tsr_heap_empty || (tsr_page_owner(page) & ~TSR_OWNER_SLOW) == (uintptr_t)heap)
      push_remote(page, list, list, 1);
    else batch_remote(heap, page, list);
    list = next;
  }
}

/* The reuse lists (the owner, or a peer holding the heap's claim). */
void tsr_free_flush_reuse(tsr_heap_t *heap) {
  for (unsigned c = 1; c < TSR_REUSE_CLASSES && heap->reuse_total != 0; c++) {
    uint32_t n;
    if (heap->reuse_list[c] != NULL) reuse_return(heap, tsr_reuse_list_take(heap, c, &n));
  }
}

/* Housekeeping (owner): a list that neither grew nor was taken since the
 * last time is not being reused (the thread frees that class but does not
 * allocate it): its blocks go home, so they do not keep pages alive. */
void tsr_free_flush_reuse_stale(tsr_heap_t *heap) {
  for (unsigned c = 1; c < TSR_REUSE_CLASSES; c++) {
    uint32_t n = heap->reuse_count[c];
    if (n != 0 && n == heap->reuse_seen[c]) {
      reuse_return(heap, tsr_reuse_list_take(heap, c, &n));
      n = 0;
    }
    heap->reuse_seen[c] = (uint16_t)n;
  }
}

/* Send the central transfer's lists home (page.c): all of them (trim), or
 * those that no thread took since the previous call (housekeeping, under
 * the heaps lock, which also guards `seen`). heap: the caller's, whose
 * batches carry the blocks, or tsr_heap_empty. */
void tsr_free_flush_xfer(tsr_heap_t *heap, bool all) {
  static uintptr_t seen[TSR_REUSE_CLASSES][TSR_XFER_SLOTS];
  for (unsigned c = 1; c < TSR_REUSE_CLASSES; c++) {
    for (unsigned i = 0; i < TSR_XFER_SLOTS; i++) {
      _Atomic(uintptr_t) *slot = &tsr_page_xfer[c].slot[i];
      uintptr_t word = atomic_load_explicit(slot, memory_order_relaxed);
      if (word != 0 && (all || word == seen[c][i]) &&
          atomic_compare_exchange_strong_explicit(slot, &word, 0, memory_order_acquire, memory_order_relaxed)) {
        reuse_return(heap, tsr_xfer_list(word));
        word = 0;
      }
      seen[c][i] = word;
    }
  }
}

/* The reuse pages too, and the direct table back to the class queues: the
 * owner only (thread exit, trim, housekeeping), or an abandoned heap's holder. */
void tsr_free_flush_reuse_all(tsr_heap_t *heap) {
  tsr_free_flush_reuse(heap);
  for (unsigned c = 1; c < TSR_REUSE_CLASSES; c++) {
    tsr_page_t *r = &heap->reuse_page[c];
    if (r->free == NULL) continue;
    tsr_block_t *list = r->free;
    r->free = NULL;
    r->capacity = r->used;
    tsr_page_direct_update(heap, c);
    reuse_return(heap, list);
  }
}

/* A free of a block owned by another heap: kept for reuse, or batched per
 * page when this thread has a heap of its own. */
static void free_remote(tsr_heap_t *heap, tsr_page_t *page, tsr_block_t *block) {
  block->free_mark = (uintptr_t)block ^ tsr_secret;
  if (heap == &tsr_heap_empty || page->kind != TSR_PAGE_SMALL) {
    push_remote(page, block, block, 1);
    return;
  }
  if (reuse_push(heap, page, block)) return;
  batch_remote(heap, page, block);
}

/* ---- the slow path ------------------------------------------------------------- */

static tsr_cold void free_special(void *p) {
  if (p == NULL) return;
  uint8_t kind = tsr_segmap_kind((uintptr_t)p);
  if (kind == TSR_SEGMAP_HUGE || kind == TSR_SEGMAP_HUGE_TAIL) {
    tsr_segment_t *segment = tsr_huge_segment_of(p);
    if (segment == NULL && tsr_huge_was_freed(p)) tsr_free_invalid(p, "double free of (huge block)", 0);
    if (segment == NULL) tsr_free_invalid(p, "invalid free of a pointer inside a huge block:", 0);
    tsr_heap_t *heap = tsr_heap_get();
    if (heap != &tsr_heap_empty) heap->count.free_count++;
    tsr_huge_free(segment);
    return;
  }
  if (tsr_huge_was_freed(p)) tsr_free_invalid(p, "double free of (huge block)", 0);
  tsr_free_invalid(p, "invalid free of a pointer tessera never returned:", 0);
}

/* Free of a block in a normal segment that the fast path declined. */
tsr_noinline void tsr_free_generic(void *p, tsr_heap_t *heap) {
  tsr_page_t *page = tsr_page_of(p);
  tsr_heap_t *owner = (tsr_heap_t *)(tsr_page_owner(page) & ~TSR_OWNER_SLOW);
  bool is_owner = owner == heap;
  tsr_heap_t *entered = tsr_heap_enter(heap);
  block_validate(page, p);
  /* Secure mode: a freed block keeps nothing of what it held (every free
   * comes here then; see tsr_owner_extra). */
  if (tsr_owner_extra != 0) memset(p, 0, page->block_size);
  if (heap != &tsr_heap_empty) heap->count.free_count++;
  if (!is_owner) {
    if (heap != &tsr_heap_empty) heap->count.remote_free_count++;
    free_remote(heap, page, p);
  } else if (page->kind == TSR_PAGE_LARGE) {
    tsr_large_free(heap, page);
  } else {
    tsr_page_free_local_slow(heap, page, p);
  }
  tsr_heap_leave(entered);
}

/* ---- free ------------------------------------------------------------------------ */

/* Expected cost: about 30 instructions (see `make fastpath`). */
tsr_public void tsr_free(void *p) {
  uintptr_t a = (uintptr_t)p;
  if (tsr_unlikely(tsr_segmap_kind(a) != TSR_SEGMAP_SEGMENT)) {
    free_special(p);
    return;
  }
  tsr_page_t *page = tsr_slice_of(p);
  tsr_heap_t *heap = tsr_heap_get();
  tsr_block_t *block = p;
  uintptr_t secret = heap->secret;
  uint64_t offset = a & (TSR_SLICE_SIZE - 1);   /* a one-slice page's area is its slice */
  if (tsr_unlikely(tsr_page_owner(page) != (uintptr_t)heap ||
                   (TSR_HARDEN_FREE_CHECKS && offset * page->block_magic >= page->block_magic) ||
                   tsr_block_is_marked_free(block, secret))) {
    tsr_free_generic(p, heap);
    return;
  }
  block->next_encoded = tsr_encode(secret, page->free);
  if (TSR_HARDEN_FREE_CHECKS) block->free_mark = a ^ secret;
  page->free = block;
  heap->count.free_count++;
  /* The count is stored last (no instruction: the compiler keeps the
   * order, x86-64 stores stay in it): a peer that reads it equal to the
   * page's remote frees knows this push is done (heap.c, peer collection). */
  atomic_signal_fence(memory_order_release);
  if (tsr_unlikely(--page->used == 0)) tsr_page_retire(heap, page);
}

tsr_public void tsr_free_sized(void *p, size_t size) {
  (void)size;   /* the checking build verifies it; here the block knows its size */
  tsr_free(p);
}

tsr_public void tsr_free_aligned_sized(void *p, size_t alignment, size_t size) {
  (void)alignment; (void)size;
  tsr_free(p);
}

/* ---- sizes ----------------------------------------------------------------------- */

size_t tsr_usable_size_internal(const void *p) {
  uint8_t kind = tsr_segmap_kind((uintptr_t)p);
  if (kind == TSR_SEGMAP_SEGMENT) {
    tsr_page_t *page = tsr_page_of(p);
    block_validate(page, p);
    return page->block_size;
  }
  if (kind == TSR_SEGMAP_HUGE || kind == TSR_SEGMAP_HUGE_TAIL) {
    tsr_segment_t *segment = tsr_huge_segment_of(p);
    if (segment == NULL) tsr_free_invalid(p, "usable size of a pointer inside a huge block:", 0);
    return segment->huge_size;
  }
  if (tsr_huge_was_freed(p)) tsr_free_invalid(p, "use of a freed huge block:", 0);
  tsr_free_invalid(p, "usable size of a pointer tessera never returned:", 0);
}

tsr_public size_t tsr_usable_size(const void *p) {
  return p == NULL ? 0 : tsr_usable_size_internal(p);
}
