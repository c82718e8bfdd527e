/* invariant.c -- a walk of every structure tessera keeps, checking what must
 * hold between operations: the segment map, segments and their span
 * descriptors (boundary tags), the free-span bins, every page's free lists
 * (decoded: each link inside the page, at a block start, no block twice) and
 * counts, the heaps' class queues, direct tables, pending lists and remote
 * batches, abandoned heaps, large spans, huge blocks and the huge cache, and
 * the counters that must agree with the structures.
 *
 * It reads every heap's owner-only fields, so the caller must make sure no
 * other thread is inside tessera (tests join or park their threads first),
 * and it runs one walk at a time (its scratch state is static); the locks
 * it takes only keep segments and heaps from coming and going.
 * It changes nothing, allocates nothing and survives broken structures: a
 * pointer is checked before it is followed. Tests (tests/reliability/faults*.c)
 * call it after every injected failure; it costs a pass over all metadata
 * and the 4 MiB segment map, far too much for any path of the allocator.
 */
#include "internal.h"

#include <string.h>

#define REPORT_MAX 20                 /* messages printed per walk; all are counted */
#define WALK_MAX   ((size_t)1 << 22)  /* longest list followed: longer is a cycle */
#define BLOCKS_MAX ((size_t)16 * TSR_SLICE_SIZE / TSR_ALIGN)   /* blocks a page can hold */

static struct {
  size_t errors;
  /* Totals of one walk, compared with the counters at its end. */
  uint64_t used_slice_count;          /* slices in used spans, every heap */
  uint64_t segment_count;
  uint64_t segment_map_bytes;
  uint64_t huge_count, huge_cache_count;
  uint64_t huge_slot_count;           /* segment-map slots huge mappings cover */
  uint64_t huge_map_bytes;            /* live and cached huge mappings */
  uint64_t huge_cache_bytes;
  uint64_t remote_batched_count;      /* slots of remote batches in use, every heap */
  uint8_t  seen[BLOCKS_MAX / 8];      /* a page's blocks met on some list */
} inv;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  if (++inv.errors > REPORT_MAX) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  tsr_format_va(line, sizeof line, fmt, ap);
  va_end(ap);
  tsr_message("invariant broken: %s", line);
}

static unsigned span_bin_of(uint32_t slices) {
  /* Recomputed here, not shared with span.c: a wrong binning there shows. */
  if (slices <= 16) return slices - 1;
  unsigned k = 31u - (unsigned)__builtin_clz(slices);
  return 16u + (k - 4u) * 2u + ((slices >> (k - 1u)) & 1u);
}

static bool class_is_biased(unsigned size_class) { return tsr_class_size[size_class] <= TSR_DIRECT_MAX; }

/* Is page the head descriptor of a span of one of heap's segments? Checked
 * before following a list link, so a broken link is reported, not followed. */
static bool is_span_head_of(tsr_heap_t *heap, const tsr_page_t *page) {
  uintptr_t a = (uintptr_t)page;
  if (page == NULL || (a & (sizeof(tsr_page_t) - 1)) != 0) return false;
  if (tsr_segmap_kind(a) != TSR_SEGMAP_SEGMENT) return false;
  if ((a & TSR_SEGMENT_MASK) >= ((uintptr_t)TSR_SLICE_COUNT << TSR_PAGE_DESC_SHIFT)) return false;   /* not a descriptor */
  size_t index = tsr_slice_index(page);
  if (index == 0) return false;
  tsr_segment_t *segment = tsr_segment_of(page);
  return (heap == NULL || segment->heap == heap) && page->back_bytes == 0 && page->slice_count != 0;
}

/* ---- the blocks of one page --------------------------------------------------- */

/* Walk a list of blocks of page (encoded links, first given decoded), marking
 * each in inv.seen, to its end or for `limit` blocks. Returns the count, or
 * UINT32_MAX if the list is broken. A cycle ends at the first block met
 * twice, so the walk is bounded by the page's capacity. */
static uint32_t blocks_walk(tsr_page_t *page, tsr_block_t *first, uint32_t limit,
                            bool must_be_marked, const char *list) {
  uint32_t n = 0;
  for (tsr_block_t *b = first; b != NULL; b = tsr_decode(tsr_secret, b->next_encoded)) {
    uintptr_t off = (uintptr_t)b - (uintptr_t)page->area;
    if ((uintptr_t)b < (uintptr_t)page->area || off >= page->carved_size) {
      fail("page %p (blocks of %u): %s list links to %p, outside its carved blocks", (void *)page, page->block_size,
           list, (void *)b);
      return UINT32_MAX;
    }
    if (off % page->block_size != 0) {
      fail("page %p (blocks of %u): %s list links to %p, %lu bytes into a block", (void *)page, page->block_size,
           list, (void *)b, (unsigned long)(off % page->block_size));
      return UINT32_MAX;
    }
    size_t i = off / page->block_size;
    if (inv.seen[i / 8] & (1u << (i % 8))) {
      fail("page %p (blocks of %u): block %p is on a free list twice (%s list)", (void *)page, page->block_size,
           (void *)b, list);
      return UINT32_MAX;
    }
    inv.seen[i / 8] |= (uint8_t)(1u << (i % 8));
    if (must_be_marked && !tsr_block_is_marked_free(b, tsr_secret)) {
      fail("page %p: block %p on the %s list has no free mark", (void *)page, (void *)b, list);
      return UINT32_MAX;
    }
    if (++n >= limit) break;   /* a remote batch's last link is not set yet */
  }
  return n;
}

/* Blocks of page waiting in some thread's remote batch (on no list yet). */
static uint32_t page_batched(tsr_page_t *page, bool *broken) {
  uint32_t total = 0;
  if (inv.remote_batched_count == 0) return 0;
  for (tsr_heap_t *h = tsr_heap_all; h != NULL; h = h->all_next) {
    if (h->remote_pending == 0) continue;
    for (unsigned i = 0; i < TSR_REMOTE_BATCH_SLOTS; i++) {
      if (h->remote[i].page != page) continue;
      uint32_t n = blocks_walk(page, h->remote[i].first, h->remote[i].count, true, "remote batch");
      if (n == UINT32_MAX) { *broken = true; continue; }
      /* The batch's last block is not linked on until the batch is pushed. */
      tsr_block_t *last = h->remote[i].first;
      for (uint32_t k = 1; k < n; k++) last = tsr_decode(tsr_secret, last->next_encoded);
      if (n != h->remote[i].count || last != h->remote[i].last) {
        fail("heap %u: remote batch %u for page %p holds %u blocks, says %u", h->id, i, (void *)page, n,
             h->remote[i].count);
        *broken = true;
      }
      total += n;
    }
  }
  return total;
}

/* Blocks of page that a thread freed and keeps for reuse (free.c): on no
 * list of the page, counted as used by it, and carrying the free mark. */
static uint32_t reuse_walk(tsr_page_t *page, tsr_block_t *first, bool *broken) {
  uint32_t n = 0, steps = 0;
  for (tsr_block_t *b = first; b != NULL; b = tsr_decode(tsr_secret, b->next_encoded)) {
    if (++steps > TSR_REUSE_COUNT || tsr_segmap_kind((uintptr_t)b) != TSR_SEGMAP_SEGMENT) {
      fail("reuse list of blocks of %u: longer than %u or leaving tessera's segments at %p", page->block_size,
           TSR_REUSE_COUNT, (void *)b);
      *broken = true;
      return n;
    }
    if (tsr_page_of(b) != page) continue;
    uint32_t k = blocks_walk(page, b, 1, true, "reuse");
    if (k == UINT32_MAX) { *broken = true; return n; }
    n++;
  }
  return n;
}

static uint32_t page_reused(tsr_page_t *page, bool *broken) {
  unsigned c = page->size_class;
  uint32_t total = 0;
  if (c >= TSR_REUSE_CLASSES) return 0;
  for (tsr_heap_t *h = tsr_heap_all; h != NULL; h = h->all_next) {
    total += reuse_walk(page, h->reuse_list[c], broken);
    total += reuse_walk(page, h->reuse_page[c].free, broken);
  }
  for (unsigned i = 0; i < TSR_XFER_SLOTS; i++) {   /* the central transfer's lists (page.c) */
    uintptr_t word = atomic_load_explicit(&tsr_page_xfer[c].slot[i], memory_order_acquire);
    total += reuse_walk(page, tsr_xfer_list(word), broken);
  }
  return total;
}

static void page_check_small(tsr_heap_t *heap, tsr_page_t *page) {
  unsigned c = page->size_class;
  if (c == 0 || c >= TSR_CLASS_COUNT) { fail("page %p: size class %u", (void *)page, c); return; }
  uint32_t size = tsr_class_size[c];
  uint32_t slices = page->slice_count;
  uint32_t reserved = (uint32_t)(((size_t)slices << TSR_SLICE_SHIFT) / size);
  if (page->block_size != size || page->block_magic != UINT64_MAX / size + 1 || slices != tsr_class_slices(c) ||
      page->area != tsr_slice_start(page) || page->reserved != reserved || page->capacity > reserved ||
      page->carved_size != page->capacity * size || reserved > BLOCKS_MAX) {
    fail("page %p (class %u): geometry: block %u magic ok %d slices %u area ok %d reserved %u capacity %u carved %u",
         (void *)page, c, page->block_size, page->block_magic == UINT64_MAX / size + 1, slices,
         page->area == tsr_slice_start(page), page->reserved, page->capacity, page->carved_size);
    return;
  }
  memset(inv.seen, 0, (page->capacity + 7) / 8);
  bool broken = false;
  uint32_t n_free = blocks_walk(page, page->free, UINT32_MAX, false, "local free");
  uint32_t n_spill = blocks_walk(page, page->spill, UINT32_MAX, true, "spill");
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
  uint32_t tf_said = (uint32_t)(tf >> TSR_REMOTE_COUNT_SHIFT);
  uint32_t n_thread = blocks_walk(page, (tsr_block_t *)(tf & TSR_REMOTE_PTR_MASK), UINT32_MAX, true,
                                  "thread free");
  uint32_t n_batched = page_batched(page, &broken) + page_reused(page, &broken);
  if (n_free == UINT32_MAX || n_spill == UINT32_MAX || n_thread == UINT32_MAX || broken) return;
  if (n_thread != tf_said)
    fail("page %p: thread-free list holds %u blocks, its head says %u", (void *)page, n_thread, tf_said);
  /* A block on no list is live: it must not carry the free mark, or its
   * free would be reported as a double free (malloc clears the mark). */
  for (uint32_t i = 0; i < page->capacity; i++) {
    if (inv.seen[i / 8] & (1u << (i % 8))) continue;
    tsr_block_t *b = (tsr_block_t *)(page->area + (size_t)i * size);
    if (tsr_block_is_marked_free(b, tsr_secret)) {
      fail("page %p: live block %p carries the free mark", (void *)page, (void *)b);
      break;
    }
  }
  tsr_page_queue_t *q = &heap->queue[c];
  uint32_t bias = page->is_queued && q->first == page && class_is_biased(c) ? 1 : 0;
  /* used counts blocks not on the local lists: live ones, remote ones not
   * yet collected, and the queue head's bias. */
  if (page->used < bias || page->used - bias < n_thread + n_batched) {
    fail("page %p (blocks of %u): used %u < bias %u + thread free %u + batched %u", (void *)page, size, page->used,
         bias, n_thread, n_batched);
  } else if (page->capacity != page->used - bias + n_free + n_spill) {
    fail("page %p (blocks of %u): capacity %u != used %u - bias %u + local free %u + spill %u (thread free %u, "
         "batched %u)", (void *)page, size, page->capacity, page->used, bias, n_free, n_spill, n_thread, n_batched);
  }
  uintptr_t owner = tsr_page_owner(page);
  if (page->is_queued) {
    /* The slow flag may be set on a queued page too (secure mode sends every free through the slow path). */
    if ((owner & ~TSR_OWNER_SLOW) != (uintptr_t)heap)
      fail("page %p: queued but owner word %lx", (void *)page, (unsigned long)owner);
    if (q->first != page && page->used == 0) fail("page %p: empty, queued behind the head, not retired", (void *)page);
  } else {
    /* Off its queue only while full: the next free (slow, by the flag) puts it back. */
    if (owner != ((uintptr_t)heap | TSR_OWNER_SLOW))
      fail("page %p: off its queue but owner word %lx (not marked slow)", (void *)page, (unsigned long)owner);
    if (page->free != NULL || page->spill != NULL || page->capacity != page->reserved)
      fail("page %p: off its queue but not full (free %p spill %p capacity %u of %u)", (void *)page,
           (void *)page->free, (void *)page->spill, page->capacity, page->reserved);
    if (page->used == 0) fail("page %p: off its queue, empty and not retired", (void *)page);
  }
}

static void page_check_large(tsr_heap_t *heap, tsr_page_t *page) {
  uint32_t bytes = page->slice_count << TSR_SLICE_SHIFT;
  if (page->block_size != bytes || page->carved_size != bytes || page->block_magic != UINT64_MAX / bytes + 1 ||
      page->area != tsr_slice_start(page) || page->capacity != 1 || page->reserved != 1 || page->used != 1 ||
      page->size_class != 0 || page->free != NULL || page->is_queued || page->requested_tail >= TSR_SLICE_SIZE)
    fail("large %p: block %u of %u slices, carved %u, capacity %u, used %u, tail %u, queued %d", (void *)page,
         page->block_size, page->slice_count, page->carved_size, page->capacity, page->used, page->requested_tail,
         page->is_queued);
  if (tsr_page_owner(page) != ((uintptr_t)heap | TSR_OWNER_SLOW))
    fail("large %p: owner word %lx", (void *)page, (unsigned long)tsr_page_owner(page));
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
  if (tf != 0 && tf != ((uintptr_t)page->area | ((uintptr_t)1 << TSR_REMOTE_COUNT_SHIFT)))
    fail("large %p: thread-free word %lx is not its own block once", (void *)page, (unsigned long)tf);
}

/* ---- segments and spans --------------------------------------------------------- */

static bool bin_contains(tsr_heap_t *heap, const tsr_page_t *span) {
  size_t n = 0;
  for (tsr_page_t *s = heap->span_bin[span_bin_of(span->slice_count)]; s != NULL && n < WALK_MAX; s = s->next, n++)
    if (s == span) return true;
  return false;
}

typedef struct heap_walk_s { size_t free_spans, queued_pages, pending_pages, deferred_pages; } heap_walk_t;

static void segment_check(tsr_heap_t *heap, tsr_segment_t *segment, heap_walk_t *w) {
  tsr_page_t *slices = (tsr_page_t *)segment;
  /* map_size: the segment, and the guard page after it. */
  if (segment->kind != TSR_SEGMENT_NORMAL || segment->map_size < TSR_SEGMENT_SIZE ||
      segment->map_size > TSR_SEGMENT_SIZE + TSR_OS_PAGE_SIZE || slices[0].kind != TSR_PAGE_META ||
      slices[0].owner != 0 || slices[0].back_bytes != 0) {
    fail("segment %p (heap %u): header kind %u size %zu descriptor 0 kind %u", (void *)segment, heap->id,
         segment->kind, segment->map_size, slices[0].kind);
    return;
  }
  uint32_t free_slices = 0;
  bool prev_free = false;
  for (size_t i = 1; i < TSR_SLICE_COUNT;) {
    tsr_page_t *span = &slices[i];
    uint32_t n = span->slice_count;
    if (n == 0 || i + n > TSR_SLICE_COUNT || span->back_bytes != 0) {
      fail("segment %p slice %zu: span of %u slices, back %u", (void *)segment, i, n, span->back_bytes);
      return;   /* the rest of the segment cannot be found */
    }
    bool is_free = span->kind == TSR_PAGE_FREE;
    if (is_free) {
      if (prev_free) fail("segment %p slice %zu: two free spans side by side (not coalesced)", (void *)segment, i);
      for (uint32_t k = 0; k < n; k++)
        if (span[k].kind != TSR_PAGE_FREE || span[k].owner != 0 || span[k].back_bytes != 0) {
          fail("segment %p slice %zu: slice %u of a free span: kind %u owner %lx back %u", (void *)segment, i, k,
               span[k].kind, (unsigned long)span[k].owner, span[k].back_bytes);
          break;
        }
      if (span[n - 1].slice_count != n)
        fail("segment %p slice %zu: free span of %u slices, its last slice says %u", (void *)segment, i, n,
             span[n - 1].slice_count);
      if (span->is_purged && !span->is_zero) fail("free span %p: purged but not known zero", (void *)span);
      for (uint32_t k = 0; k < n && !span->is_purged; k++)
        if (span[k].free_time_ms != 0 && (k < span->dirty_lo || k >= span->dirty_hi || span->dirty_hi > n)) {
          fail("free span %p: slice %u is dirty outside the span's dirty bounds [%u, %u)", (void *)span, k,
               span->dirty_lo, span->dirty_hi);
          break;
        }
      if (!bin_contains(heap, span)) fail("free span %p (%u slices) is not in its bin", (void *)span, n);
      if (atomic_load_explicit(&span->thread_free, memory_order_relaxed) != 0)
        fail("free span %p has remote frees", (void *)span);
      free_slices += n;
      w->free_spans++;
    } else {
      for (uint32_t k = 1; k < n; k++)
        if (span[k].back_bytes != (k << TSR_PAGE_DESC_SHIFT) || span[k].kind != span->kind || span[k].owner != 0) {
          fail("segment %p slice %zu: slice %u of a used span: back %u kind %u owner %lx", (void *)segment, i, k,
               span[k].back_bytes, span[k].kind, (unsigned long)span[k].owner);
          break;
        }
      if (span->kind == TSR_PAGE_SMALL) page_check_small(heap, span);
      else if (span->kind == TSR_PAGE_LARGE) page_check_large(heap, span);
      else fail("segment %p slice %zu: span of kind %u", (void *)segment, i, span->kind);
      if (span->is_queued) w->queued_pages++;
      if (span->remote_deferred) w->deferred_pages++;
      else if (atomic_load_explicit(&span->thread_free, memory_order_relaxed) != 0) w->pending_pages++;
      inv.used_slice_count += n;
    }
    prev_free = is_free;
    i += n;
  }
  if (free_slices != segment->free_slice_count)
    fail("segment %p: %u slices in free spans, header says %u", (void *)segment, free_slices,
         segment->free_slice_count);
}

/* ---- a heap ------------------------------------------------------------------------ */

static void heap_check_bins(tsr_heap_t *heap, const heap_walk_t *w) {
  size_t entries = 0;
  for (unsigned b = 0; b < TSR_SPAN_BIN_COUNT; b++) {
    bool has = heap->span_bin[b] != NULL;
    if (has != ((heap->span_bin_mask >> b) & 1u))
      fail("heap %u: bin %u is %s but its mask bit says otherwise", heap->id, b, has ? "used" : "empty");
    tsr_page_t *prev = NULL;
    size_t n = 0;
    for (tsr_page_t *s = heap->span_bin[b]; s != NULL; prev = s, s = s->next) {
      if (!is_span_head_of(heap, s) || s->kind != TSR_PAGE_FREE) {
        fail("heap %u: bin %u holds %p, not a free span of this heap", heap->id, b, (void *)s);
        break;
      }
      if (s->prev != prev) fail("heap %u: bin %u: span %p's back link is %p, not %p", heap->id, b, (void *)s,
                                (void *)s->prev, (void *)prev);
      if (span_bin_of(s->slice_count) != b)
        fail("heap %u: span of %u slices in bin %u, not %u", heap->id, s->slice_count, b, span_bin_of(s->slice_count));
      if (++n > WALK_MAX) { fail("heap %u: bin %u has a cycle", heap->id, b); break; }
    }
    entries += n;
  }
  if (entries != w->free_spans)
    fail("heap %u: bins hold %zu spans, its segments %zu free spans", heap->id, entries, w->free_spans);
}

static void heap_check_queues(tsr_heap_t *heap, const heap_walk_t *w) {
  size_t queued = 0;
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) {
    tsr_page_queue_t *q = &heap->queue[c];
    tsr_page_t *prev = NULL;
    size_t n = 0;
    for (tsr_page_t *p = q->first; p != NULL; prev = p, p = p->next) {
      if (!is_span_head_of(heap, p) || p->kind != TSR_PAGE_SMALL || p->size_class != c || !p->is_queued) {
        fail("heap %u: queue of class %u holds %p (kind %u class %u queued %d)", heap->id, c, (void *)p,
             is_span_head_of(heap, p) ? p->kind : 255u, is_span_head_of(heap, p) ? p->size_class : 0u,
             is_span_head_of(heap, p) ? p->is_queued : 0);
        prev = NULL;
        break;
      }
      if (p->prev != prev) fail("heap %u: queue %u: page %p's back link is wrong", heap->id, c, (void *)p);
      if (++n > WALK_MAX) { fail("heap %u: queue %u has a cycle", heap->id, c); break; }
    }
    if (prev != q->last && n <= WALK_MAX)
      fail("heap %u: queue %u ends at %p, its last says %p", heap->id, c, (void *)prev, (void *)q->last);
    if (class_is_biased(c) && q->first != NULL && is_span_head_of(heap, q->first) && q->first->used == 0)
      fail("heap %u: queue %u head %p has no bias (used 0)", heap->id, c, (void *)q->first);
    queued += n;
  }
  if (queued != w->queued_pages)
    fail("heap %u: queues hold %zu pages, %zu pages say they are queued", heap->id, queued, w->queued_pages);
  /* The direct table points at each small class's queue head, or at its
   * reuse page: always while that has blocks, and until the next slow path
   * of the class once it ran dry. */
  for (size_t d = 0; d < TSR_DIRECT_COUNT; d++) {
    unsigned c = tsr_size_class(d == 0 ? 1 : d * 16);
    tsr_page_t *want = heap->queue[c].first != NULL ? heap->queue[c].first : &tsr_page_empty;
    tsr_page_t *reuse = c < TSR_REUSE_CLASSES ? &heap->reuse_page[c] : NULL;
    if (reuse != NULL && (reuse->free != NULL || heap->direct[d] == reuse)) want = reuse;
    if (heap->direct[d] != want)
      fail("heap %u: direct[%zu] = %p, class %u's head is %p", heap->id, d, (void *)heap->direct[d], c, (void *)want);
  }
}

static void heap_check_remote(tsr_heap_t *heap, const heap_walk_t *w) {
  size_t n = 0;
  for (tsr_page_t *p = atomic_load_explicit(&heap->pending, memory_order_acquire); p != NULL; p = p->pending_next) {
    if (!is_span_head_of(heap, p) || (p->kind != TSR_PAGE_SMALL && p->kind != TSR_PAGE_LARGE)) {
      fail("heap %u: pending list holds %p, not a page of this heap", heap->id, (void *)p);
      return;
    }
    if (atomic_load_explicit(&p->thread_free, memory_order_relaxed) == 0)
      fail("heap %u: page %p pending with no remote frees", heap->id, (void *)p);
    if (++n > WALK_MAX) { fail("heap %u: pending list has a cycle", heap->id); return; }
  }
  if (n != w->pending_pages)
    fail("heap %u: %zu pages pending, %zu pages have remote frees", heap->id, n, w->pending_pages);
  n = 0;
  for (unsigned c = 0; c < TSR_CLASS_COUNT; c++)
    for (tsr_page_t *p = heap->deferred[c]; p != NULL; p = p->pending_next) {
      if (!is_span_head_of(heap, p) || p->kind != TSR_PAGE_SMALL || p->size_class != c || !p->remote_deferred ||
          !p->is_queued || atomic_load_explicit(&p->thread_free, memory_order_relaxed) == 0) {
        fail("heap %u: deferred list %u holds %p, not a queued page of the class with remote frees", heap->id, c,
             (void *)p);
        return;
      }
      if (++n > WALK_MAX) { fail("heap %u: deferred list has a cycle", heap->id); return; }
    }
  if (n != w->deferred_pages || n != heap->deferred_count)
    fail("heap %u: %zu pages on the deferred lists, %zu marked deferred, count %u", heap->id, n, w->deferred_pages,
         heap->deferred_count);
  uint32_t slots = 0;
  for (unsigned i = 0; i < TSR_REMOTE_BATCH_SLOTS; i++) {
    tsr_page_t *p = heap->remote[i].page;
    if (p == NULL) continue;
    slots++;
    if (!is_span_head_of(NULL, p) || p->kind != TSR_PAGE_SMALL || tsr_segment_of(p)->heap == heap ||
        heap->remote[i].count == 0 || heap->remote[i].count > TSR_REMOTE_BATCH_COUNT)
      fail("heap %u: remote batch %u: page %p (own heap's: %d), %u blocks", heap->id, i, (void *)p,
           is_span_head_of(NULL, p) && tsr_segment_of(p)->heap == heap, heap->remote[i].count);
  }
  if (slots != heap->remote_pending)
    fail("heap %u: %u remote batches in use, remote_pending says %u", heap->id, slots, heap->remote_pending);
  if (heap->is_abandoned && slots != 0) fail("heap %u: abandoned with %u remote batches unsent", heap->id, slots);
  uint32_t reused = 0;
  for (unsigned c = 1; c < TSR_REUSE_CLASSES; c++) {
    uint32_t n = 0;
    for (tsr_block_t *b = heap->reuse_list[c]; b != NULL && n <= TSR_REUSE_COUNT; b = tsr_decode(tsr_secret, b->next_encoded))
      n++;
    if (n != heap->reuse_count[c] || n > TSR_REUSE_COUNT || (size_t)n * tsr_class_size[c] > TSR_REUSE_BYTES)
      fail("heap %u: reuse list %u holds %u blocks, says %u", heap->id, c, n, heap->reuse_count[c]);
    reused += heap->reuse_count[c];
    if (heap->is_abandoned && (n != 0 || heap->reuse_page[c].free != NULL))
      fail("heap %u: abandoned with blocks kept for reuse (class %u)", heap->id, c);
  }
  if (reused != heap->reuse_total) fail("heap %u: reuse lists hold %u blocks, total says %u", heap->id, reused, heap->reuse_total);
}

static void heap_check(tsr_heap_t *heap) {
  if (!heap->is_initialized || heap->secret != tsr_secret || heap->id == 0)
    fail("heap %p: initialized %d, id %u, secret %s", (void *)heap, heap->is_initialized, heap->id,
         heap->secret == tsr_secret ? "ok" : "wrong");
  heap_walk_t w = { 0, 0, 0, 0 };
  tsr_segment_t *prev = NULL;
  size_t n = 0;
  for (tsr_segment_t *s = heap->segments; s != NULL; prev = s, s = s->next) {
    if (((uintptr_t)s & TSR_SEGMENT_MASK) != 0 || tsr_segmap_kind((uintptr_t)s) != TSR_SEGMAP_SEGMENT ||
        s->heap != heap) {
      fail("heap %u: segment list holds %p (map kind %u)", heap->id, (void *)s,
           ((uintptr_t)s & TSR_SEGMENT_MASK) == 0 ? tsr_segmap_kind((uintptr_t)s) : 255u);
      return;   /* nothing below can trust this heap's pages */
    }
    if (s->prev != prev) fail("heap %u: segment %p's back link is wrong", heap->id, (void *)s);
    if (++n > WALK_MAX) { fail("heap %u: segment list has a cycle", heap->id); return; }
    segment_check(heap, s, &w);
    inv.segment_count++;
    inv.segment_map_bytes += s->map_size;
  }
  heap_check_bins(heap, &w);
  heap_check_queues(heap, &w);
  heap_check_remote(heap, &w);
  if (heap->is_abandoned && heap == &tsr_heap_main) fail("the main heap is marked abandoned");
  if (heap == tsr_heap_current && (heap->pop_seq & 1) != 0)
    fail("heap %u: pop_seq %lu is odd outside malloc", heap->id, (unsigned long)heap->pop_seq);
  tsr_heap_counters_t *k = &heap->count;
  if (k->remote_free_count > k->free_count || k->realloc_inplace_count > k->realloc_count)
    fail("heap %u: counters: %lu remote of %lu frees, %lu in place of %lu reallocs", heap->id,
         (unsigned long)k->remote_free_count, (unsigned long)k->free_count, (unsigned long)k->realloc_inplace_count,
         (unsigned long)k->realloc_count);
}

/* The abandoned list's head is heap.c's own; what can be seen from the heaps:
 * their abandoned_next links form one chain through exactly the heaps marked
 * abandoned, and no heap in use points into it. */
static void abandoned_check(size_t abandoned) {
  tsr_heap_t *head = NULL;
  size_t heads = 0;
  for (tsr_heap_t *h = tsr_heap_all; h != NULL; h = h->all_next) {
    if (!h->is_abandoned) {
      if (h->abandoned_next != NULL) fail("heap %u is in use but links to abandoned heap %p", h->id, (void *)h->abandoned_next);
      continue;
    }
    if (h->abandoned_next != NULL && !h->abandoned_next->is_abandoned)
      fail("abandoned heap %u links to heap %u, which is in use", h->id, h->abandoned_next->id);
    size_t in = 0;
    for (tsr_heap_t *g = tsr_heap_all; g != NULL; g = g->all_next) in += g->is_abandoned && g->abandoned_next == h;
    if (in > 1) fail("abandoned heap %u is linked to %zu times", h->id, in);
    if (in == 0) { head = h; heads++; }
  }
  if (abandoned == 0) return;
  size_t n = 0;
  for (tsr_heap_t *h = head; h != NULL && n <= abandoned; h = h->abandoned_next) n++;
  if (heads != 1 || n != abandoned)
    fail("%zu heaps abandoned, but their links form %zu chains, the first %zu long", abandoned, heads, n);
}

/* The heap every thread starts on is never written. */
static void heap_check_empty(void) {
  tsr_heap_t *e = &tsr_heap_empty;
  bool ok = e->segments == NULL && e->remote_pending == 0 && e->span_bin_mask == 0 &&
            atomic_load(&e->pending) == NULL && e->count.malloc_count == 0 && e->count.free_count == 0;
  for (size_t d = 0; d < TSR_DIRECT_COUNT; d++) ok = ok && e->direct[d] == &tsr_page_empty;
  for (unsigned c = 0; c < TSR_CLASS_COUNT; c++) ok = ok && e->queue[c].first == NULL;
  if (!ok) fail("the shared empty heap was written to");
  if (tsr_page_empty.free != NULL || tsr_page_empty.used != 0) fail("the empty page has blocks");
}

/* ---- huge blocks ------------------------------------------------------------------- */

static uint64_t slots_of(size_t map_size) { return (map_size + TSR_SEGMENT_MASK) >> TSR_SEGMENT_SHIFT; }

static void huge_check_slots(tsr_segment_t *s) {
  uintptr_t a = (uintptr_t)s;
  if (tsr_segmap_kind(a) != TSR_SEGMAP_HUGE) fail("huge mapping %p: its map slot says %u", (void *)s, tsr_segmap_kind(a));
  for (uint64_t k = 1; k < slots_of(s->map_size); k++)
    if (tsr_segmap_kind(a + (k << TSR_SEGMENT_SHIFT)) != TSR_SEGMAP_HUGE_TAIL) {
      fail("huge mapping %p: slot %lu is not marked as its tail", (void *)s, (unsigned long)k);
      break;
    }
  inv.huge_slot_count += slots_of(s->map_size);
  inv.huge_map_bytes += s->map_size;
  if (!tsr_huge_extents_ok(s)) fail("huge mapping %p: its extents do not tile its %zu bytes", (void *)s, s->map_size);
}

static void huge_visit(tsr_segment_t *s, void *arg) {
  (void)arg;
  if (((uintptr_t)s & TSR_SEGMENT_MASK) != 0 || s->kind != TSR_SEGMENT_HUGE) {
    fail("huge list holds %p (kind %u)", (void *)s, ((uintptr_t)s & TSR_SEGMENT_MASK) == 0 ? s->kind : 0u);
    return;
  }
  size_t offset = (size_t)(s->huge_block - (uint8_t *)s);
  if (s->huge_block == NULL || offset < TSR_OS_PAGE_SIZE || offset % TSR_OS_PAGE_SIZE != 0 || offset >= s->map_size ||
      s->map_size % TSR_OS_PAGE_SIZE != 0 || s->huge_size != s->map_size - offset ||
      ((tsr_page_t *)s)->kind != TSR_PAGE_META)
    fail("huge %p: block %p, %zu usable of a %zu-byte mapping", (void *)s, (void *)s->huge_block, s->huge_size,
         s->map_size);
  if (tsr_huge_segment_of(s->huge_block) != s) fail("huge %p: its block is not found by its address", (void *)s);
  huge_check_slots(s);
  inv.huge_count++;
}

/* ---- the segment map ----------------------------------------------------------------- */

/* Every slot marked is a known segment or huge mapping (the walks above
 * checked each known one's slots; here the totals rule out strays). A huge
 * mapping that is not in the list of huge blocks must be in the huge cache:
 * found here, since the cache keeps its slots marked. */
static void segmap_check(void) {
  uint64_t segment_slots = 0, huge_slots = 0, live_huge = 0;
  const uint64_t *words = (const uint64_t *)tsr_segmap;
  for (size_t w = 0; w < TSR_SEGMAP_COUNT / 8; w++) {
    uint64_t v = __atomic_load_n(&words[w], __ATOMIC_RELAXED);
    if (v == 0) continue;
    for (unsigned b = 0; b < 8; b++) {
      uint8_t kind = (uint8_t)(v >> (8 * b));
      uintptr_t slot = (uintptr_t)(w * 8 + b) << TSR_SEGMENT_SHIFT;
      if (kind == TSR_SEGMAP_SEGMENT) {
        segment_slots++;
      } else if (kind == TSR_SEGMAP_HUGE) {
        huge_slots++;
        tsr_segment_t *s = (tsr_segment_t *)slot;
        if (s->kind != TSR_SEGMENT_HUGE || s->map_size % TSR_OS_PAGE_SIZE != 0) {
          fail("segment map slot %p: a huge mapping whose header says kind %u, %zu bytes", (void *)s, s->kind, s->map_size);
        } else if (s->huge_block != NULL) {
          live_huge++;
        } else {
          huge_check_slots(s);   /* cached */
          inv.huge_cache_count++;
          inv.huge_cache_bytes += s->map_size;
        }
      } else if (kind == TSR_SEGMAP_HUGE_TAIL) {
        huge_slots++;
      } else if (kind != TSR_SEGMAP_NONE) {
        fail("segment map slot %zu holds %u", w * 8 + b, kind);
      }
    }
  }
  if (segment_slots != inv.segment_count)
    fail("segment map marks %lu segments, the heaps own %lu", (unsigned long)segment_slots,
         (unsigned long)inv.segment_count);
  if (live_huge != inv.huge_count)
    fail("segment map holds %lu huge blocks, %lu are listed", (unsigned long)live_huge, (unsigned long)inv.huge_count);
  if (huge_slots != inv.huge_slot_count)
    fail("segment map marks %lu huge slots, huge blocks and the cache cover %lu", (unsigned long)huge_slots,
         (unsigned long)inv.huge_slot_count);
}

/* ---- counters ---------------------------------------------------------------------------- */

static void counters_check(void) {
  tsr_os_counters_t *o = &tsr_os_counters;
  uint64_t page_bytes = atomic_load(&o->page_bytes);
  if (page_bytes != inv.used_slice_count << TSR_SLICE_SHIFT)
    fail("page_bytes counter %lu, used spans hold %lu", (unsigned long)page_bytes,
         (unsigned long)(inv.used_slice_count << TSR_SLICE_SHIFT));
  if (atomic_load(&o->huge_count) != inv.huge_count)
    fail("huge_count counter %lu, %lu huge blocks listed", (unsigned long)atomic_load(&o->huge_count),
         (unsigned long)inv.huge_count);
  /* Mapped: at least the segments, huge mappings and the metadata handed
   * out (a mapping whose unmap the OS refused stays counted: it is mapped). */
  uint64_t mapped = atomic_load(&o->mapped_bytes);
  uint64_t known = inv.segment_map_bytes + inv.huge_map_bytes + atomic_load(&o->metadata_bytes);
  if (mapped < known || (int64_t)mapped < 0)
    fail("mapped_bytes counter %lu below the %lu bytes known mapped", (unsigned long)mapped, (unsigned long)known);
  if (atomic_load(&o->mapped_peak_bytes) < mapped || atomic_load(&o->page_peak_bytes) < page_bytes)
    fail("a peak counter is below its current value");
  uint64_t allocs = 0, frees = 0;
  for (tsr_heap_t *h = tsr_heap_all; h != NULL; h = h->all_next) {
    allocs += tsr_heap_malloc_count(h) + h->count.calloc_count + h->count.realloc_count + h->count.aligned_count;
    frees += h->count.free_count;
  }
  if (frees > allocs) fail("%lu frees counted, but only %lu allocations", (unsigned long)frees, (unsigned long)allocs);
}

/* ---- the walk ------------------------------------------------------------------------------ */

size_t tsr_invariant_check(void) {
  tsr_lock(TSR_LOCK_HEAPS);
  memset(&inv, 0, offsetof(__typeof__(inv), seen));
  heap_check_empty();
  size_t heaps = 0;
  for (tsr_heap_t *h = tsr_heap_all; h != NULL && heaps <= WALK_MAX; h = h->all_next, heaps++)
    for (unsigned i = 0; i < TSR_REMOTE_BATCH_SLOTS; i++) inv.remote_batched_count += h->remote[i].page != NULL;
  if (heaps > WALK_MAX) {   /* every walk below follows the registry */
    fail("the heap registry has a cycle");
    tsr_unlock(TSR_LOCK_HEAPS);
    return inv.errors;
  }
  size_t abandoned = 0;
  for (tsr_heap_t *h = tsr_heap_all; h != NULL && heaps-- > 0; h = h->all_next) {
    heap_check(h);
    abandoned += h->is_abandoned;
  }
  abandoned_check(abandoned);
  tsr_unlock(TSR_LOCK_HEAPS);
  tsr_huge_each(huge_visit, NULL);
  segmap_check();
  counters_check();
  if (inv.errors > REPORT_MAX) tsr_message("invariant walk: %zu more broken", inv.errors - REPORT_MAX);
  return inv.errors;
}
