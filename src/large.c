/* large.c -- large blocks (one block in a span of slices) and huge blocks
 * (a mapping of their own, grown and shrunk with mremap).
 *
 * A large block is a page of kind LARGE holding one block; its owner word is
 * always marked slow, so free() goes to tsr_large_free, which gives the span
 * back at once (coalesced, purged after the delay). realloc grows it into the
 * free span that follows, or shrinks it and purges the tail.
 * A huge block's mapping is aligned to the segment size and starts with a
 * segment header (kind HUGE) in its first OS page; the segment map marks the
 * mapping's slots so free() recognises it without touching it.
 * Freed huge mappings wait in a small cache for the purge delay: a program
 * that frees a big buffer and allocates another (a file read per request)
 * reuses the pages already faulted in, resized with mremap, instead of
 * paying a fault per OS page again.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define HUGE_CACHE_COUNT 8
#define HUGE_CACHE_MAX_BYTES ((size_t)256 << 20)

static struct {
  tsr_segment_t *huge_list;          /* every huge block (TSR_LOCK_HUGE) */
  tsr_segment_t *cache[HUGE_CACHE_COUNT]; /* freed mappings kept for reuse (TSR_LOCK_HUGE) */
  uint64_t cache_time_ms[HUGE_CACHE_COUNT];
  size_t cache_bytes;
  _Atomic uintptr_t freed_ring[16];  /* recently unmapped huge blocks: names double frees */
  _Atomic unsigned freed_next;
} large;

/* ---- large ------------------------------------------------------------------ */

static void large_set_size(tsr_page_t *page, uint32_t slices) {
  page->block_size = slices << TSR_SLICE_SHIFT;
  page->carved_size = page->block_size;
  page->block_magic = UINT64_MAX / page->block_size + 1;
}

void *tsr_large_alloc(tsr_heap_t *heap, size_t size, size_t alignment, bool zero) {
  if (heap->remote_pending != 0) tsr_free_flush_remote(heap);
  if (atomic_load_explicit(&heap->pending, memory_order_relaxed) != NULL) tsr_heap_collect_remote(heap);
  if (heap->purge_due_ms != 0) tsr_heap_housekeeping(heap);
  uint32_t slices = (uint32_t)((size + TSR_SLICE_SIZE - 1) >> TSR_SLICE_SHIFT);
  uint32_t align_slices = alignment > TSR_SLICE_SIZE ? (uint32_t)(alignment >> TSR_SLICE_SHIFT) : 1;
  tsr_page_t *page = tsr_span_alloc(heap, slices, align_slices);
  if (page == NULL) return NULL;
  bool is_zero = page->is_zero;
  page->kind = TSR_PAGE_LARGE;
  page->size_class = 0;
  page->area = tsr_slice_start(page);
  large_set_size(page, slices);
  page->capacity = page->reserved = 1;
  page->used = 1;
  page->free = NULL;
  atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
  page->requested_tail = (uint32_t)(page->block_size - size);
  tsr_span_mark_used(page, slices);
  tsr_page_set_owner(page, (uintptr_t)heap | TSR_OWNER_SLOW);
  if (zero && !is_zero) memset(page->area, 0, size);
  return page->area;
}

void tsr_large_free(tsr_heap_t *heap, tsr_page_t *page) {
  page->used = 0;
  tsr_span_free(heap, page);
}

/* Resize a large block of the calling thread's heap without moving it.
 * Returns the block, or NULL if it must move (nothing changed then). */
void *tsr_large_realloc_inplace(tsr_heap_t *heap, tsr_page_t *page, size_t size) {
  uint32_t slices = (uint32_t)((size + TSR_SLICE_SIZE - 1) >> TSR_SLICE_SHIFT);
  if (slices < page->slice_count) {
    tsr_span_shrink(heap, page, slices);
  } else if (slices > page->slice_count) {
    if (!tsr_span_grow(heap, page, slices)) return NULL;
  }
  large_set_size(page, slices);
  page->requested_tail = (uint32_t)(page->block_size - size);
  return page->area;
}

/* ---- huge -------------------------------------------------------------------- */

static size_t round_os(size_t n) { return (n + TSR_OS_PAGE_SIZE - 1) & ~(size_t)(TSR_OS_PAGE_SIZE - 1); }

static void huge_link(tsr_segment_t *segment) {
  tsr_lock(TSR_LOCK_HUGE);
  segment->prev = NULL;
  segment->next = large.huge_list;
  if (large.huge_list != NULL) large.huge_list->prev = segment;
  large.huge_list = segment;
  tsr_unlock(TSR_LOCK_HUGE);
}

static void huge_unlink(tsr_segment_t *segment) {
  tsr_lock(TSR_LOCK_HUGE);
  if (segment->prev != NULL) segment->prev->next = segment->next; else large.huge_list = segment->next;
  if (segment->next != NULL) segment->next->prev = segment->prev;
  tsr_unlock(TSR_LOCK_HUGE);
}

static tsr_segment_t *huge_cache_take(size_t map_size) {
  tsr_segment_t *best = NULL;
  int best_i = -1;
  tsr_lock(TSR_LOCK_HUGE);
  for (int i = 0; i < HUGE_CACHE_COUNT; i++) {
    tsr_segment_t *s = large.cache[i];
    if (s == NULL) continue;
    /* Prefer the mapping closest in size: least to unmap or to move. */
    size_t d = s->map_size > map_size ? s->map_size - map_size : map_size - s->map_size;
    size_t bd = best == NULL ? SIZE_MAX : best->map_size > map_size ? best->map_size - map_size : map_size - best->map_size;
    if (d < bd) { best = s; best_i = i; }
  }
  if (best != NULL) {
    large.cache[best_i] = NULL;
    __atomic_fetch_sub(&large.cache_bytes, best->map_size, __ATOMIC_RELAXED);
  }
  tsr_unlock(TSR_LOCK_HUGE);
  return best;
}

/* Unmap cached mappings older than the purge delay (all if force). */
void tsr_huge_cache_purge(uint64_t now_ms, bool force) {
  tsr_segment_t *release[HUGE_CACHE_COUNT];
  int n = 0;
  long delay = tsr_option_long(TSR_OPT_PURGE_DELAY);
  tsr_lock(TSR_LOCK_HUGE);
  for (int i = 0; i < HUGE_CACHE_COUNT; i++) {
    tsr_segment_t *s = large.cache[i];
    if (s != NULL && (force || (delay >= 0 && now_ms >= large.cache_time_ms[i] + (uint64_t)delay))) {
      release[n++] = s;
      large.cache[i] = NULL;
      __atomic_fetch_sub(&large.cache_bytes, s->map_size, __ATOMIC_RELAXED);
    }
  }
  tsr_unlock(TSR_LOCK_HUGE);
  for (int i = 0; i < n; i++) {
    tsr_os_segmap_set((uintptr_t)release[i], release[i]->map_size, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
    tsr_os_unmap(release[i], release[i]->map_size);
  }
}

void *tsr_huge_alloc(size_t size, size_t alignment, bool zero) {
  if (size > PTRDIFF_MAX - 2 * TSR_SEGMENT_SIZE || alignment > ((size_t)1 << 40)) { errno = ENOMEM; return NULL; }
  if (alignment <= TSR_OS_PAGE_SIZE && __atomic_load_n(&large.cache_bytes, __ATOMIC_RELAXED) != 0) {
    tsr_segment_t *cached = huge_cache_take(round_os(TSR_OS_PAGE_SIZE + size));
    if (cached != NULL) {
      cached->huge_block = (uint8_t *)cached + TSR_OS_PAGE_SIZE;
      cached->huge_size = cached->map_size - TSR_OS_PAGE_SIZE;
      huge_link(cached);
      atomic_fetch_add_explicit(&tsr_os_counters.huge_count, 1, memory_order_relaxed);
      void *p = tsr_huge_realloc(cached, size);
      if (p == NULL) {       /* could not resize: give it up and map afresh */
        tsr_huge_free(cached);
      } else {
        if (zero) memset(p, 0, size);
        return p;
      }
    }
  }
  size_t offset = alignment > TSR_OS_PAGE_SIZE ? alignment : TSR_OS_PAGE_SIZE;
  size_t map_size = round_os(offset + size);
  size_t map_align = alignment > TSR_SEGMENT_SIZE ? alignment : TSR_SEGMENT_SIZE;
  tsr_segment_t *segment = tsr_os_map_aligned(map_size, map_align);
  if (segment == NULL) return NULL;
  tsr_platform_name(segment, map_size, "tessera huge");
  ((tsr_page_t *)segment)->kind = TSR_PAGE_META;
  segment->kind = TSR_SEGMENT_HUGE;
  segment->map_size = map_size;
  segment->huge_block = (uint8_t *)segment + offset;
  segment->huge_size = map_size - offset;
  huge_link(segment);
  atomic_fetch_add_explicit(&tsr_os_counters.huge_count, 1, memory_order_relaxed);
  tsr_os_segmap_set((uintptr_t)segment, map_size, TSR_SEGMAP_HUGE, TSR_SEGMAP_HUGE_TAIL);
  return segment->huge_block;
}

/* The huge segment whose block starts at p, or NULL. */
tsr_segment_t *tsr_huge_segment_of(const void *p) {
  uintptr_t slot = (uintptr_t)p >> TSR_SEGMENT_SHIFT;
  while (slot > 0 && tsr_segmap_kind(slot << TSR_SEGMENT_SHIFT) == TSR_SEGMAP_HUGE_TAIL) slot--;
  if (tsr_segmap_kind(slot << TSR_SEGMENT_SHIFT) != TSR_SEGMAP_HUGE) return NULL;
  tsr_segment_t *segment = (tsr_segment_t *)(slot << TSR_SEGMENT_SHIFT);
  return segment->huge_block == (const uint8_t *)p ? segment : NULL;
}

void tsr_huge_free(tsr_segment_t *segment) {
  huge_unlink(segment);
  unsigned i = atomic_fetch_add_explicit(&large.freed_next, 1, memory_order_relaxed) % 16;
  atomic_store_explicit(&large.freed_ring[i], (uintptr_t)segment->huge_block, memory_order_relaxed);
  atomic_fetch_sub_explicit(&tsr_os_counters.huge_count, 1, memory_order_relaxed);
  segment->huge_block = NULL;   /* a second free finds no block here: diagnosed */
  if (segment->map_size <= HUGE_CACHE_MAX_BYTES / 2 && tsr_option_long(TSR_OPT_PURGE_DELAY) != 0) {
    uint64_t now = tsr_platform_clock_ms();
    tsr_huge_cache_purge(now, false);
    tsr_lock(TSR_LOCK_HUGE);
    for (int k = 0; k < HUGE_CACHE_COUNT; k++) {
      if (large.cache[k] == NULL && large.cache_bytes + segment->map_size <= HUGE_CACHE_MAX_BYTES) {
        large.cache[k] = segment;
        large.cache_time_ms[k] = now;
        __atomic_fetch_add(&large.cache_bytes, segment->map_size, __ATOMIC_RELAXED);
        tsr_unlock(TSR_LOCK_HUGE);
        tsr_heap_t *heap = tsr_heap_get();     /* its housekeeping releases the cache later */
        uint64_t due = now + (uint64_t)tsr_option_long(TSR_OPT_PURGE_DELAY);
        if (heap != &tsr_heap_empty && (heap->purge_due_ms == 0 || due < heap->purge_due_ms)) heap->purge_due_ms = due;
        return;
      }
    }
    tsr_unlock(TSR_LOCK_HUGE);
  }
  tsr_os_segmap_set((uintptr_t)segment, segment->map_size, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
  tsr_os_unmap(segment, segment->map_size);
}

/* Was p a huge block that was unmapped recently? (For the double-free message.) */
bool tsr_huge_was_freed(const void *p) {
  for (unsigned i = 0; i < 16; i++)
    if (atomic_load_explicit(&large.freed_ring[i], memory_order_relaxed) == (uintptr_t)p) return true;
  return false;
}

/* Resize a huge block: shrink or grow in place with mremap, else move the
 * pages (not the bytes) to a new aligned address. NULL (errno ENOMEM) if the
 * OS refuses; the block is then unchanged. */
void *tsr_huge_realloc(tsr_segment_t *segment, size_t size) {
  if (size > PTRDIFF_MAX - 2 * TSR_SEGMENT_SIZE) { errno = ENOMEM; return NULL; }
  size_t offset = (size_t)(segment->huge_block - (uint8_t *)segment);
  size_t old_map = segment->map_size, new_map = round_os(offset + size);
  if (new_map == old_map) return segment->huge_block;
  huge_unlink(segment);   /* its list links move with it, or vanish */
  tsr_segment_t *moved = tsr_platform_remap(segment, old_map, new_map, NULL);
  if (moved == NULL && new_map > old_map) {
    size_t align = offset > TSR_SEGMENT_SIZE ? offset : TSR_SEGMENT_SIZE;
    void *target = tsr_os_map_aligned(new_map, align);
    if (target != NULL) {
      moved = tsr_platform_remap(segment, old_map, new_map, target);
      if (moved == NULL) tsr_os_unmap(target, new_map);
      else tsr_os_account_map(-(long)new_map);   /* the target's reservation became the block */
    }
  }
  if (moved == NULL) { huge_link(segment); errno = ENOMEM; return NULL; }
  tsr_os_segmap_set((uintptr_t)segment, old_map, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
  tsr_os_account_map((long)new_map - (long)old_map);
  moved->map_size = new_map;
  moved->huge_block = (uint8_t *)moved + offset;
  moved->huge_size = new_map - offset;
  tsr_os_segmap_set((uintptr_t)moved, new_map, TSR_SEGMAP_HUGE, TSR_SEGMAP_HUGE_TAIL);
  huge_link(moved);
  return moved->huge_block;
}

/* For the visitor and stats: call fn on every huge block under the lock. */
void tsr_huge_each(void (*fn)(tsr_segment_t *segment, void *arg), void *arg) {
  tsr_lock(TSR_LOCK_HUGE);
  for (tsr_segment_t *s = large.huge_list; s != NULL; s = s->next) fn(s, arg);
  tsr_unlock(TSR_LOCK_HUGE);
}
