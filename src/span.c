/* span.c -- segments and the spans inside them: find, split, coalesce, purge.
 *
 * A segment belongs to one heap, and only that heap's thread touches its
 * spans, so nothing here locks. Free spans sit in the heap's bins by length
 * (exact up to 16 slices, then two bins per doubling) and are coalesced with
 * both neighbours when freed: a segment never holds two adjacent free spans.
 * Invariants (checked by tsr_span_check):
 *   - every slice of a free span has owner 0, back_bytes 0 and kind FREE, and
 *     the span's first and last descriptors hold its length; so no stale
 *     descriptor can lead free() into a live page;
 *   - every slice of a used span has back_bytes to its head and its kind.
 * Free spans return to the OS (madvise) after the purge delay, fully empty
 * segments are unmapped; the heap's last segment is kept, purged.
 * Dirty and purged memory: a free span can be part dirty, part purged (a
 * freed span coalesces with a purged neighbour), so each slice of a free
 * span says its own state in its free_time_ms: 0 if it holds no memory the
 * OS must take back (purged, or never touched: zeroed descriptors read so),
 * else when it was freed. The head's is_purged (and is_zero) stays the
 * span's summary: set only when every slice is clean. One flag for the
 * merged span used to count the purged part as dirty in free_span_bytes and
 * purge it again (tests/unit/span_stats.c).
 * The head also bounds where its dirty slices are (dirty_lo, dirty_hi):
 * purges and stats read the descriptors of that stretch only. A fresh
 * segment is one free span of 511 slices, and the purge that followed the
 * first page's retirement read all their descriptors: on a kernel that
 * backs read faults with fresh pages (this project's machines; maxrss
 * counts them), that made the whole 64 KiB descriptor slice resident in a
 * program that used a dozen slices (micro-hot: 108 KiB of segment, 52 with
 * the purge off).
 */
#include "internal.h"

#include <errno.h>

#define SEGMENT_FIRST_SLICE 1u   /* slice 0 holds the descriptors */
#define SLICE_OS_PAGES (unsigned)(TSR_SLICE_SIZE / TSR_OS_PAGE_SIZE)

/* The slices [*lo, *hi) of the segment that may be dirty in free span
 * `span` (empty when purged). */
static void span_dirty(const tsr_page_t *span, size_t *lo, size_t *hi) {
  size_t index = tsr_slice_index(span);
  uint32_t a = span->dirty_lo, b = span->dirty_hi < span->slice_count ? span->dirty_hi : span->slice_count;
  if (span->is_purged || a >= b) { *lo = *hi = index; return; }
  *lo = index + a;
  *hi = index + b;
}

static unsigned span_bin(uint32_t slices) {
  if (slices <= 16) return slices - 1;
  unsigned k = 31u - (unsigned)__builtin_clz(slices);   /* k >= 4 */
  return 16u + (k - 4u) * 2u + ((slices >> (k - 1u)) & 1u);
}

static tsr_page_t *slice_at(tsr_segment_t *segment, size_t index) {
  return (tsr_page_t *)segment + index;
}

/* ---- bins ---------------------------------------------------------------- */

static void bin_insert(tsr_heap_t *heap, tsr_page_t *span) {
  unsigned b = span_bin(span->slice_count);
  span->prev = NULL;
  span->next = heap->span_bin[b];
  if (span->next != NULL) span->next->prev = span;
  heap->span_bin[b] = span;
  heap->span_bin_mask |= 1u << b;
}

static void bin_remove(tsr_heap_t *heap, tsr_page_t *span) {
  unsigned b = span_bin(span->slice_count);
  if (span->prev != NULL) span->prev->next = span->next;
  else heap->span_bin[b] = span->next;
  if (span->next != NULL) span->next->prev = span->prev;
  if (heap->span_bin[b] == NULL) heap->span_bin_mask &= ~(1u << b);
  span->next = span->prev = NULL;
}

/* Bytes of the dirty slices of a free span of `slices` slices (the caller's
 * count: the stats walk reads other heaps' spans and bounds it): 0 for a
 * purged span, else a walk of its descriptors (stats only, never hot). */
uint64_t tsr_span_dirty_bytes(const tsr_page_t *span, uint32_t slices) {
  if (span->is_purged) return 0;
  uint32_t hi = span->dirty_hi < slices ? span->dirty_hi : slices;
  uint64_t n = 0;
  for (uint32_t i = span->dirty_lo; i < hi; i++) n += span[i].free_time_ms != 0;
  return n << TSR_SLICE_SHIFT;
}

/* ---- the purge delay ------------------------------------------------------ */

/* How long a free span waits before it goes back to the OS: the option's
 * delay, raised for a heap whose purged memory is soon needed again. A
 * program that frees most of its memory between rounds of work and builds
 * it up again in the next (python's objects, sqlite's statements, the big
 * blocks of bigblock) had the spans it freed purged 100 ms later, in the
 * middle of the next round, which then faulted them back in: python-malloc
 * (objects.py) took 26,000 page faults instead of 15,000, and 12 % more
 * time, bigblock/1t 17 %, sqlite 6 %, for no lower peak RSS. So when a span
 * is taken on slices that a purge made clean, within four delays of the
 * heap's last purge, the heap's delay doubles, up to TSR_PURGE_DELAY_MAX_
 * FACTOR times the option's; eight delays without such a regret halve it
 * again. An idle heap is not touched by this (it takes no spans), so memory
 * a program frees and leaves alone still goes back after the option's delay
 * (a thread that adopts an exited thread's heap starts from the option's). */
static uint64_t purge_delay(tsr_heap_t *heap) {
  long base = tsr_option_long(TSR_OPT_PURGE_DELAY);
  if (base <= 0) return base < 0 ? UINT64_MAX : 0;
  return heap->purge_delay_ms > (uint64_t)base ? heap->purge_delay_ms : (uint64_t)base;
}

static void purge_regret(tsr_heap_t *heap) {
  long base = tsr_option_long(TSR_OPT_PURGE_DELAY);
  if (base <= 0) return;
  uint64_t now = tsr_platform_clock_ms(), delay = purge_delay(heap);
  if (now >= heap->purge_released_ms + 4 * delay) return;   /* purged long ago: no regret */
  heap->purge_regret_ms = now;
  uint64_t max = (uint64_t)base * TSR_PURGE_DELAY_MAX_FACTOR;
  heap->purge_delay_ms = delay * 2 < max ? delay * 2 : max;
}

static void purge_relax(tsr_heap_t *heap, uint64_t now_ms) {
  long base = tsr_option_long(TSR_OPT_PURGE_DELAY);
  if (base <= 0 || heap->purge_delay_ms <= (uint64_t)base) return;
  if (now_ms < heap->purge_regret_ms + 8 * heap->purge_delay_ms) return;
  heap->purge_delay_ms /= 2;
  heap->purge_regret_ms = now_ms;
}

static void purge_schedule(tsr_heap_t *heap, uint64_t since_ms) {
  tsr_heap_purge_due_by(heap, since_ms + purge_delay(heap));
}

/* Make [head, head+slices) one free span and bin it; no coalescing here.
 * The slices keep their own states; is_zero/is_purged summarize them, and
 * the segment's slices [dirty_lo, dirty_hi) (clipped to the span) bound
 * the dirty ones. */
static void span_insert_free(tsr_heap_t *heap, tsr_page_t *head, uint32_t slices,
                             bool is_zero, bool is_purged, size_t dirty_lo, size_t dirty_hi) {
  size_t index = tsr_slice_index(head);
  if (dirty_lo < index) dirty_lo = index;
  if (dirty_hi > index + slices) dirty_hi = index + slices;
  bool none = is_purged || dirty_lo >= dirty_hi;
  head->dirty_lo = none ? 0 : (uint16_t)(dirty_lo - index);
  head->dirty_hi = none ? 0 : (uint16_t)(dirty_hi - index);
  head->kind = TSR_PAGE_FREE;
  tsr_page_set_owner(head, 0);
  head->back_bytes = 0;
  head->slice_count = slices;
  head->is_zero = is_zero;
  head->is_purged = is_purged;
  head->is_queued = 0;
  head->free = NULL;
  head->used = 0;
  tsr_page_t *tail = head + (slices - 1);
  tail->kind = TSR_PAGE_FREE;
  tail->slice_count = slices;
  bin_insert(heap, head);
}

void tsr_span_mark_used(tsr_page_t *span, uint32_t slices) {
  uint8_t kind = span->kind;
  for (uint32_t i = 1; i < slices; i++) {
    span[i].back_bytes = i << TSR_PAGE_DESC_SHIFT;
    span[i].kind = kind;
    tsr_page_set_owner(&span[i], 0);
  }
  span->back_bytes = 0;
  span->slice_count = slices;
}

/* ---- segments ------------------------------------------------------------- */

static tsr_segment_t *segment_create(tsr_heap_t *heap) {
  /* A guard page after each segment: a linear overflow off the end of its
   * last block faults instead of running into whatever is mapped next
   * (another segment's metadata, say). It costs one mprotect per 32 MiB and
   * no memory; the segment's alignment keeps the next one clear of it. If
   * the kernel refuses (the mapping limit), the segment goes without. */
  tsr_segment_t *segment = tsr_os_map_aligned(TSR_SEGMENT_SIZE + TSR_OS_PAGE_SIZE, TSR_SEGMENT_SIZE);
  if (segment == NULL) return NULL;
  if (TSR_HARDEN_GUARD_PAGES) tsr_platform_protect((uint8_t *)segment + TSR_SEGMENT_SIZE, TSR_OS_PAGE_SIZE, false);
  tsr_platform_name(segment, TSR_SEGMENT_SIZE, "tessera segment");
  tsr_page_t *meta = (tsr_page_t *)segment;
  meta->kind = TSR_PAGE_META;
  segment->heap = heap;
  segment->kind = TSR_SEGMENT_NORMAL;
  segment->map_size = TSR_SEGMENT_SIZE + TSR_OS_PAGE_SIZE;
  segment->free_slice_count = TSR_SLICE_COUNT - SEGMENT_FIRST_SLICE;
  tsr_lock(TSR_LOCK_HEAPS);     /* the stats walker follows heap->segments */
  segment->next = heap->segments;
  segment->prev = NULL;
  if (heap->segments != NULL) heap->segments->prev = segment;
  heap->segments = segment;
  tsr_unlock(TSR_LOCK_HEAPS);
  span_insert_free(heap, slice_at(segment, SEGMENT_FIRST_SLICE), TSR_SLICE_COUNT - SEGMENT_FIRST_SLICE,
                   true, true, 0, 0);
  tsr_os_segmap_set((uintptr_t)segment, TSR_SEGMENT_SIZE, TSR_SEGMAP_SEGMENT, TSR_SEGMAP_SEGMENT);
  return segment;
}

/* Unmap a segment whose slices are all free. */
void tsr_segment_release(tsr_heap_t *heap, tsr_segment_t *segment) {
  tsr_page_t *span = slice_at(segment, SEGMENT_FIRST_SLICE);
  bin_remove(heap, span);
  /* A page noted for its dirty tail (page.c) stays noted after it retires,
   * until the next tail purge drops it: forget those of this segment, whose
   * descriptors go with it (the API fuzzer's trim read one after the unmap). */
  uint32_t kept = 0;
  for (uint32_t i = 0; i < heap->tail_dirty_count; i++)
    if (tsr_segment_of(heap->tail_dirty[i].page) != segment) heap->tail_dirty[kept++] = heap->tail_dirty[i];
  heap->tail_dirty_count = kept;
  if (segment->prev != NULL) segment->prev->next = segment->next;
  else heap->segments = segment->next;
  if (segment->next != NULL) segment->next->prev = segment->prev;
  tsr_os_segmap_set((uintptr_t)segment, TSR_SEGMENT_SIZE, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
  tsr_os_unmap(segment, segment->map_size);
}

/* ---- allocate ------------------------------------------------------------- */

/* The first slice index >= index aligned to align_slices slices of address. */
static size_t aligned_index(tsr_page_t *span, uint32_t align_slices) {
  size_t index = tsr_slice_index(span);
  if (align_slices <= 1) return index;
  uintptr_t start = (uintptr_t)tsr_slice_start(span);
  size_t align_bytes = (size_t)align_slices << TSR_SLICE_SHIFT;
  uintptr_t aligned = (start + align_bytes - 1) & ~(uintptr_t)(align_bytes - 1);
  return index + ((aligned - start) >> TSR_SLICE_SHIFT);
}

/* Resident memory first: bin by bin from the request's length up, the
 * first span whose first slice is still resident (dirty), even from a
 * larger bin, which is then split; else the first span that fits. Taking a
 * clean span while a dirty one waits for its purge costs a fault per OS
 * page the new owner touches, and the heap's footprint is both until the
 * purge (a malloc-lab trace replayed twice: its second pass on clean spans
 * while the first pass's memory sat in larger bins, peak RSS 17 -> 28 MiB).
 * jemalloc and tcmalloc order their free extents and spans the same way.
 * Each bin's list is walked only so far past its first fit: freed spans
 * enter at the head, so the dirty ones are near it. */
#define SPAN_FIND_LOOK 8
#define SPAN_FIND_SLICES 32   /* slices a one-slice request compares at most */

/* OS pages of slice `offset` of free span `span` that may hold data: 0
 * when clean (outside the span's dirty stretch: its descriptor unread). */
static unsigned slice_resident(const tsr_page_t *span, uint32_t offset) {
  if (span->is_purged || offset < span->dirty_lo || offset >= span->dirty_hi) return 0;
  return span[offset].free_time_ms != 0 ? span[offset].resident_pages : 0;
}

/* One slice for a page expected to touch `want` OS pages of it. Dirty is
 * not all alike: a slice whose last page carved 4 KiB holds 4 KiB, one that
 * held a full page of 4 KiB blocks holds 64. Handing the full one to a class
 * that carves 4 KiB leaves 60 KiB resident for nothing, while the busy class
 * that could have filled it touches a clean slice: a malloc-lab trace
 * replayed twice had its rare classes' pages on the busy class's old slices
 * at the second pass, 224 KiB over the first pass's peak for the same
 * blocks (amptjp.rep). So the slice chosen is the one that holds at least
 * `want` pages with the fewest to spare, else the one that holds most; the
 * candidates are the two ends of the first spans of every bin (an end
 * splits off without cutting the span in two; looking inside spans as well
 * gained nothing on the traces), 32 slices at most: micro-calloc, which
 * makes a page every few calls, spent 6-12 % more time comparing 64 slices
 * of the inside too. No system call either way. */
static tsr_page_t *span_find_slice(tsr_heap_t *heap, unsigned want, size_t *start_index) {
  tsr_page_t *best = NULL;
  size_t best_index = 0;
  unsigned best_pages = 0, budget = SPAN_FIND_SLICES;
  for (uint32_t mask = heap->span_bin_mask; mask != 0 && budget != 0; mask &= mask - 1) {
    unsigned looked = 0;
    for (tsr_page_t *span = heap->span_bin[__builtin_ctz(mask)]; span != NULL && budget != 0; span = span->next) {
      uint32_t ends[2] = {0, span->slice_count - 1};   /* offsets in the span */
      for (unsigned e = 0; e < (span->slice_count > 1 ? 2u : 1u) && budget != 0; e++, budget--) {
        unsigned pages = slice_resident(span, ends[e]);
        bool better = best == NULL ||
                      ((pages >= want) != (best_pages >= want) ? pages >= want
                       : pages >= want                        ? pages < best_pages
                                                              : pages > best_pages);
        if (!better) continue;
        best = span;
        best_index = tsr_slice_index(span) + ends[e];
        best_pages = pages;
        if (pages == want) { *start_index = best_index; return best; }
      }
      if (++looked == SPAN_FIND_LOOK) break;
    }
  }
  *start_index = best_index;
  return best;
}

static tsr_page_t *span_find(tsr_heap_t *heap, uint32_t slices, uint32_t align_slices, unsigned want,
                             size_t *start_index) {
  if (slices == 1 && align_slices <= 1 && want != 0) return span_find_slice(heap, want, start_index);
  unsigned first = span_bin(slices);
  tsr_page_t *fit = NULL;
  size_t fit_index = 0;
  for (uint32_t mask = heap->span_bin_mask & ~((1u << first) - 1u); mask != 0; mask &= mask - 1) {
    unsigned looked = 0;
    for (tsr_page_t *span = heap->span_bin[__builtin_ctz(mask)]; span != NULL; span = span->next) {
      size_t index = aligned_index(span, align_slices);
      if (index + slices > tsr_slice_index(span) + span->slice_count) continue;
      if (span->free_time_ms != 0) { *start_index = index; return span; }
      if (fit == NULL) { fit = span; fit_index = index; }
      if (++looked == SPAN_FIND_LOOK) break;
    }
  }
  *start_index = fit_index;
  return fit;
}

/* Take [index, index + slices) out of free span `span`; its parts before
 * and after stay free. Returns the taken span's head with kind FREE and
 * is_zero telling whether it reads zero; the caller sets the kind and
 * marks it used. */
static tsr_page_t *span_take_slices(tsr_heap_t *heap, tsr_page_t *span, size_t index, uint32_t slices) {
  tsr_segment_t *segment = tsr_segment_of(span);
  size_t span_index = tsr_slice_index(span);
  uint32_t span_slices = span->slice_count;
  bool is_zero = span->is_zero, is_purged = span->is_purged;
  size_t dirty_lo, dirty_hi;
  span_dirty(span, &dirty_lo, &dirty_hi);
  bin_remove(heap, span);
  /* A part of a span with dirty slices may be clean: its summary stays
   * "not purged" (purges and stats look at its slices). */
  if (index > span_index)
    span_insert_free(heap, span, (uint32_t)(index - span_index), is_zero, is_purged, dirty_lo, dirty_hi);
  size_t end = index + slices, span_end = span_index + span_slices;
  if (span_end > end)
    span_insert_free(heap, slice_at(segment, end), (uint32_t)(span_end - end), is_zero, is_purged, dirty_lo, dirty_hi);
  tsr_page_t *head = slice_at(segment, index);
  bool regret = false;
  for (uint32_t i = 0; i < slices; i++) {
    regret |= head[i].was_purged;
    head[i].was_purged = 0;
  }
  if (regret) purge_regret(heap);
  head->kind = TSR_PAGE_FREE;
  head->slice_count = slices;
  head->is_zero = is_zero;
  head->is_purged = 0;
  head->is_queued = 0;
  head->next = head->prev = NULL;
  segment->free_slice_count -= slices;
  segment->empty_since_ms = 0;
  tsr_os_account_pages((long)slices << TSR_SLICE_SHIFT);
  return head;
}

/* A span of `slices` slices whose start is aligned to align_slices slices
 * (see span_take_slices for what it returns); NULL with ENOMEM if the OS
 * refuses. */
tsr_page_t *tsr_span_alloc(tsr_heap_t *heap, uint32_t slices, uint32_t align_slices, unsigned want_pages) {
  size_t index;
  tsr_page_t *span = span_find(heap, slices, align_slices, want_pages, &index);
  if (span == NULL) {
    if (segment_create(heap) == NULL) { errno = ENOMEM; return NULL; }
    span = span_find(heap, slices, align_slices, want_pages, &index);
    if (span == NULL) { errno = ENOMEM; return NULL; }
  }
  return span_take_slices(heap, span, index, slices);
}

/* How far left of a free slice its span's head is looked for: 32
 * descriptors are one OS page of them (a walk never reads more than that
 * past the slice's own). */
#define SLICE_HEAD_LOOK 32

/* The one slice `slice` (a descriptor this heap handed out before, possibly
 * of a segment since unmapped), taken if it is still free in one of this
 * heap's segments and holds 1 to most_pages resident OS pages; NULL
 * otherwise (nothing changed). A clean slice saves nothing over any other,
 * so it is left to span_find. */
tsr_page_t *tsr_span_alloc_slice(tsr_heap_t *heap, tsr_page_t *slice, unsigned most_pages) {
  if (tsr_segmap_kind((uintptr_t)slice) != TSR_SEGMAP_SEGMENT) return NULL;
  tsr_segment_t *segment = tsr_segment_of(slice);
  size_t index = tsr_slice_index(slice);
  if (segment->heap != heap || segment->kind != TSR_SEGMENT_NORMAL || index < SEGMENT_FIRST_SLICE ||
      slice->kind != TSR_PAGE_FREE || slice->free_time_ms == 0)
    return NULL;
  size_t head_index = index, stop = index > SEGMENT_FIRST_SLICE + SLICE_HEAD_LOOK ? index - SLICE_HEAD_LOOK
                                                                                  : SEGMENT_FIRST_SLICE;
  while (head_index > stop && slice_at(segment, head_index - 1)->kind == TSR_PAGE_FREE) head_index--;
  tsr_page_t *span = slice_at(segment, head_index);
  if (head_index > SEGMENT_FIRST_SLICE && slice_at(segment, head_index - 1)->kind == TSR_PAGE_FREE) return NULL;
  if (index >= head_index + span->slice_count) return NULL;
  unsigned pages = slice_resident(span, (uint32_t)(index - head_index));   /* 0 when purged */
  if (pages == 0 || pages > most_pages) return NULL;
  return span_take_slices(heap, span, index, 1);
}

/* ---- free, grow, shrink ---------------------------------------------------------- */

/* OS pages of slice i of a span whose first `bytes` were touched. */
static uint8_t slice_pages(size_t bytes, uint32_t i) {
  size_t from = (size_t)i << TSR_SLICE_SHIFT;
  return (uint8_t)(bytes <= from ? 0 : bytes - from >= TSR_SLICE_SIZE ? SLICE_OS_PAGES : tsr_os_pages(bytes - from));
}

/* A used span's slices now hold its first `bytes` only (its tail purged). */
void tsr_span_set_resident(tsr_page_t *span, uint32_t slices, size_t bytes) {
  for (uint32_t i = 0; i < slices; i++) span[i].resident_pages = slice_pages(bytes, i);
}

/* Widen [*lo, *hi) (segment slices) to cover free span's dirty stretch. */
static void dirty_widen(const tsr_page_t *span, size_t *lo, size_t *hi) {
  size_t a, b;
  span_dirty(span, &a, &b);
  if (a >= b) return;
  if (a < *lo) *lo = a;
  if (b > *hi) *hi = b;
}

/* Give a used span back to its segment, coalescing with free neighbours. */
void tsr_span_free(tsr_heap_t *heap, tsr_page_t *span) {
  tsr_segment_t *segment = tsr_segment_of(span);
  uint32_t slices = span->slice_count;
  size_t index = tsr_slice_index(span);
  bool is_purged = span->is_purged;
  uint64_t now = tsr_platform_clock_ms() | 1;   /* never 0: that means clean */
  tsr_os_account_pages(-((long)slices << TSR_SLICE_SHIFT));
  segment->free_slice_count += slices;
  /* What the span's user touched: a small page's carved blocks, a large
   * block whole; on top of what a slice held before (a page made on a
   * dirty slice carves from its start, its old tail stays). */
  size_t touched = span->kind == TSR_PAGE_SMALL || span->kind == TSR_PAGE_LARGE ? span->carved_size : 0;
  for (uint32_t i = 0; i < slices; i++) {
    uint8_t pages = slice_pages(touched, i);
    if (is_purged) span[i].resident_pages = 0;
    else if (pages > span[i].resident_pages) span[i].resident_pages = pages;
    span[i].was_purged = 0;   /* a shrink's purged tail: the program's doing, not the clock's */
    tsr_page_set_owner(&span[i], 0);
    span[i].back_bytes = 0;
    span[i].kind = TSR_PAGE_FREE;
    span[i].free_time_ms = is_purged ? 0 : now;
  }
  bool is_dirty = !is_purged;   /* the freed span's slices; the merge keeps each part's */
  size_t dirty_lo = is_dirty ? index : TSR_SLICE_COUNT, dirty_hi = is_dirty ? index + slices : 0;
  if (index + slices < TSR_SLICE_COUNT) {
    tsr_page_t *next = slice_at(segment, index + slices);
    if (next->kind == TSR_PAGE_FREE) {
      dirty_widen(next, &dirty_lo, &dirty_hi);
      bin_remove(heap, next);
      is_purged = is_purged && next->is_purged;
      slices += next->slice_count;
    }
  }
  if (index > SEGMENT_FIRST_SLICE) {
    tsr_page_t *tail = slice_at(segment, index - 1);
    if (tail->kind == TSR_PAGE_FREE) {
      tsr_page_t *prev = tail - (tail->slice_count - 1);
      dirty_widen(prev, &dirty_lo, &dirty_hi);
      bin_remove(heap, prev);
      is_purged = is_purged && prev->is_purged;
      slices += prev->slice_count;
      span = prev;
    }
  }
  span_insert_free(heap, span, slices, is_purged, is_purged, dirty_lo, dirty_hi);
  if (is_dirty) purge_schedule(heap, now);
  if (segment->free_slice_count == TSR_SLICE_COUNT - SEGMENT_FIRST_SLICE) {
    segment->empty_since_ms = now;
    purge_schedule(heap, now);
  }
}

/* Grow a used span in place to `slices` by taking from the free span right
 * after it. Returns false (nothing changed) when that span is missing or short. */
bool tsr_span_grow(tsr_heap_t *heap, tsr_page_t *span, uint32_t slices) {
  uint32_t old = span->slice_count;
  size_t index = tsr_slice_index(span);
  if (index + slices > TSR_SLICE_COUNT) return false;
  tsr_segment_t *segment = tsr_segment_of(span);
  tsr_page_t *next = slice_at(segment, index + old);
  if (next->kind != TSR_PAGE_FREE || old + next->slice_count < slices) return false;
  uint32_t next_slices = next->slice_count;
  bool is_zero = next->is_zero, is_purged = next->is_purged;
  size_t dirty_lo, dirty_hi;
  span_dirty(next, &dirty_lo, &dirty_hi);
  bin_remove(heap, next);
  uint32_t extra = slices - old;
  if (next_slices > extra)
    span_insert_free(heap, next + extra, next_slices - extra, is_zero, is_purged, dirty_lo, dirty_hi);
  for (uint32_t i = old; i < slices; i++) {
    span[i].back_bytes = i << TSR_PAGE_DESC_SHIFT;
    span[i].kind = span->kind;
    tsr_page_set_owner(&span[i], 0);
  }
  span->slice_count = slices;
  segment->free_slice_count -= extra;
  tsr_os_account_pages((long)extra << TSR_SLICE_SHIFT);
  return true;
}

/* Shrink a used span to `slices`; the tail goes back to the OS at once (a
 * program that shrinks a big block wants the memory back) and is freed. */
void tsr_span_shrink(tsr_heap_t *heap, tsr_page_t *span, uint32_t slices) {
  uint32_t old = span->slice_count;
  if (slices >= old) return;
  tsr_page_t *tail = span + slices;
  span->slice_count = slices;
  tail->slice_count = old - slices;
  tail->kind = span->kind;
  tail->back_bytes = 0;
  tail->is_purged = tsr_os_purge(tsr_slice_start(tail), (size_t)(old - slices) << TSR_SLICE_SHIFT);
  tsr_span_free(heap, tail);
}

/* ---- purge ---------------------------------------------------------------------- */

/* Purge the dirty slices span[a..b) as one range; 0 if the OS refused. */
static size_t purge_slices(tsr_page_t *span, uint32_t a, uint32_t b) {
  size_t bytes = (size_t)(b - a) << TSR_SLICE_SHIFT;
  if (!tsr_os_purge(tsr_slice_start(&span[a]), bytes)) return 0;
  for (uint32_t j = a; j < b; j++) {
    span[j].free_time_ms = span[j].resident_pages = 0;
    span[j].was_purged = 1;
  }
  return bytes;
}

/* Purge each run of dirty slices of a free span once its newest slice has
 * been free for the delay (every dirty slice if force): only the dirty
 * parts, so purged_bytes counts what really went back, and parts freed at
 * different times go back when each is due. A run that keeps gaining
 * freshly freed neighbours would never be quiet that long (micro calloc
 * held 4 MiB of free spans for its whole run): a slice free for
 * TSR_PURGE_STALE_FACTOR delays goes back on its own. Not at one delay:
 * purging every due slice of a busy run made python-malloc (objects.py)
 * call madvise 1263 times instead of 78, for 15 % more bytes, and fault
 * 7 % more, each fault refilling memory it was about to reuse. Marks the
 * span purged if no dirty slice is left; lowers *next_due to the earliest
 * run or slice still waiting. */
static size_t span_purge_runs(tsr_page_t *span, uint64_t now_ms, uint64_t delay, bool force, uint64_t *next_due) {
  uint64_t stale = delay * TSR_PURGE_STALE_FACTOR;
  size_t released = 0;
  bool is_clean = true;
  uint32_t n = span->dirty_hi < span->slice_count ? span->dirty_hi : span->slice_count;
  uint32_t dirty_lo = n, dirty_hi = 0;   /* what stays dirty */
  for (uint32_t i = span->dirty_lo; i < n;) {
    if (span[i].free_time_ms == 0) { i++; continue; }
    uint32_t k = i;
    uint64_t newest = 0, oldest = UINT64_MAX;
    for (; k < n && span[k].free_time_ms != 0; k++) {
      if (span[k].free_time_ms > newest) newest = span[k].free_time_ms;
      if (span[k].free_time_ms < oldest) oldest = span[k].free_time_ms;
    }
    if (force || now_ms >= newest + delay) {
      size_t bytes = purge_slices(span, i, k);
      released += bytes;
      if (bytes == 0) {   /* the OS refused: the run stays dirty */
        is_clean = false;
        if (i < dirty_lo) dirty_lo = i;
        dirty_hi = k;
        if (*next_due == 0 || now_ms + delay < *next_due) *next_due = now_ms + delay;
      }
      i = k;
      continue;
    }
    /* A busy run: its stale slices alone, in runs of their own. */
    if (now_ms >= oldest + stale) {
      for (uint32_t a = i; a < k;) {
        if (now_ms < span[a].free_time_ms + stale) { a++; continue; }
        uint32_t b = a + 1;
        while (b < k && now_ms >= span[b].free_time_ms + stale) b++;
        released += purge_slices(span, a, b);
        a = b;
      }
      oldest = UINT64_MAX;
      for (uint32_t j = i; j < k; j++)
        if (span[j].free_time_ms != 0 && span[j].free_time_ms < oldest) oldest = span[j].free_time_ms;
    }
    is_clean = false;
    for (uint32_t j = i; j < k; j++) {
      if (span[j].free_time_ms == 0) continue;
      if (j < dirty_lo) dirty_lo = j;
      dirty_hi = j + 1;
    }
    uint64_t due = newest + delay;
    if (oldest != UINT64_MAX && oldest + stale < due) due = oldest + stale;
    if (*next_due == 0 || due < *next_due) *next_due = due;
    i = k;
  }
  if (is_clean) span->is_purged = span->is_zero = 1;
  span->dirty_lo = is_clean ? 0 : (uint16_t)dirty_lo;
  span->dirty_hi = is_clean ? 0 : (uint16_t)dirty_hi;
  return released;
}

/* Return free spans that have been free for the purge delay (all of them if
 * force) to the OS, and unmap segments that are wholly free (keeping the
 * heap's last one). Returns the bytes released. The heaps lock guards the
 * unmaps alone (the stats walker follows heap->segments; it reads span
 * states unlocked anyway, as the owner changes them): lock_unmaps takes it
 * around each, for the owner's housekeeping, so its madvise calls do not
 * hold up other threads' starts, exits and housekeeping; the other callers
 * hold it already. */
size_t tsr_span_purge_due(tsr_heap_t *heap, uint64_t now_ms, bool force, bool lock_unmaps) {
  long option = tsr_option_long(TSR_OPT_PURGE_DELAY);
  if (option < 0 && !force) { heap->purge_due_ms = 0; return 0; }
  purge_relax(heap, now_ms);
  uint64_t delay = option < 0 ? 0 : purge_delay(heap);
  size_t released = 0;
  uint64_t next_due = 0;
  for (tsr_segment_t *segment = heap->segments, *next; segment != NULL; segment = next) {
    next = segment->next;
    bool wholly_free = segment->free_slice_count == TSR_SLICE_COUNT - SEGMENT_FIRST_SLICE;
    bool is_last = heap->segments == segment && segment->next == NULL;
    if (wholly_free && !is_last && (force || now_ms >= segment->empty_since_ms + delay)) {
      released += TSR_SEGMENT_SIZE;
      if (lock_unmaps) tsr_lock(TSR_LOCK_HEAPS);
      tsr_segment_release(heap, segment);
      if (lock_unmaps) tsr_unlock(TSR_LOCK_HEAPS);
    } else if (wholly_free && !is_last) {
      uint64_t due = segment->empty_since_ms + delay;
      if (next_due == 0 || due < next_due) next_due = due;
    }
  }
  for (unsigned b = 0; b < TSR_SPAN_BIN_COUNT; b++) {
    for (tsr_page_t *span = heap->span_bin[b]; span != NULL; span = span->next) {
      if (span->is_purged) continue;
      released += span_purge_runs(span, now_ms, delay, force, &next_due);
    }
  }
  heap->purge_due_ms = next_due;
  if (released != 0 && !force) heap->purge_released_ms = now_ms;   /* malloc_trim's are asked for */
  return released;
}

/* Invariant walk (debug builds and tsr_check_heap): returns false on the
 * first broken invariant. */
bool tsr_span_check(tsr_heap_t *heap) {
  for (tsr_segment_t *segment = heap->segments; segment != NULL; segment = segment->next) {
    if (tsr_segmap_kind((uintptr_t)segment) != TSR_SEGMAP_SEGMENT || segment->heap != heap) return false;
    uint32_t free_slices = 0;
    bool prev_free = false;
    for (size_t i = SEGMENT_FIRST_SLICE; i < TSR_SLICE_COUNT;) {
      tsr_page_t *span = slice_at(segment, i);
      uint32_t n = span->slice_count;
      if (n == 0 || i + n > TSR_SLICE_COUNT || span->back_bytes != 0) return false;
      bool is_free = span->kind == TSR_PAGE_FREE;
      if (is_free && prev_free) return false;            /* not coalesced */
      for (uint32_t k = 1; k < n; k++) {
        if (is_free ? (span[k].back_bytes != 0 || span[k].owner != 0)
                    : (span[k].back_bytes != (k << TSR_PAGE_DESC_SHIFT))) return false;
      }
      if (is_free) {
        if (span->owner != 0 || span[n - 1].slice_count != n) return false;
        if (span->is_purged)
          for (uint32_t k = 0; k < n; k++) if (span[k].free_time_ms != 0) return false;   /* summary lies */
        if (!span->is_purged && (span->dirty_hi > n || span->dirty_lo > span->dirty_hi)) return false;
        for (uint32_t k = 0; k < n && !span->is_purged; k++)   /* a dirty slice out of its span's bounds */
          if (span[k].free_time_ms != 0 && (k < span->dirty_lo || k >= span->dirty_hi)) return false;
        for (uint32_t k = 0; k < n; k++)   /* a clean slice holds nothing; a page holds at most 16 */
          if ((span[k].free_time_ms == 0 && span[k].resident_pages != 0) || span[k].resident_pages > SLICE_OS_PAGES)
            return false;
        free_slices += n;
      } else if ((span->owner & ~TSR_OWNER_SLOW) != (uintptr_t)heap) {
        return false;
      }
      prev_free = is_free;
      i += n;
    }
    if (free_slices != segment->free_slice_count) return false;
  }
  return true;
}
