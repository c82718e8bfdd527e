/* alloc.c -- malloc, calloc, realloc and the aligned family.
 *
 * The fast path (tsr_malloc for sizes up to 1 KiB): thread heap, direct
 * table, pop from the page's free list. Expected cost: 19 instructions,
 * with one unlikely branch to the slow paths, which handle everything
 * else: the first call of a thread, empty pages, larger classes, large and
 * huge blocks. Every failure returns NULL with errno ENOMEM and changes
 * nothing; realloc keeps the old block intact when it fails.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Per-heap call counters; the shared empty heap is never written. */
#define COUNT(field, size) do { tsr_heap_t *h_ = tsr_heap_get();                 \
    if (h_ != &tsr_heap_empty) { h_->count.field++; h_->count.requested_bytes += (size); } } while (0)

#define COUNT_INPLACE() do { tsr_heap_t *h_ = tsr_heap_get();                      \
    if (h_ != &tsr_heap_empty) h_->count.realloc_inplace_count++; } while (0)

/* ---- the slow path ------------------------------------------------------------- */

/* Any size (not 0), any alignment up to a huge one (a power of two). */
static void *alloc_dispatch(tsr_heap_t *heap, size_t size, size_t alignment, bool zero) {
  void *p;
  if (alignment <= TSR_ALIGN && size <= TSR_CLASS_MAX_SIZE) {
    p = tsr_page_alloc_class(heap, tsr_size_class(size));
    if (zero && p != NULL) memset(p, 0, size);
  } else if (alignment <= TSR_SLICE_SIZE && size <= TSR_CLASS_MAX_SIZE &&
             tsr_size_class_aligned(size, alignment) != 0) {
    p = tsr_page_alloc_class(heap, tsr_size_class_aligned(size, alignment));
    if (zero && p != NULL) memset(p, 0, size);
  } else if (size <= TSR_LARGE_MAX_SIZE && alignment <= TSR_SEGMENT_SIZE / 4) {
    p = tsr_large_alloc(heap, size, alignment, zero);
  } else {
    p = tsr_huge_alloc(size, alignment, zero);
  }
  return p;
}

tsr_noinline void *tsr_alloc_generic(tsr_heap_t *heap, size_t size, size_t alignment, bool zero) {
  if (tsr_unlikely(heap == &tsr_heap_empty)) {
    heap = tsr_heap_init_thread();
    if (heap == NULL) { errno = ENOMEM; return NULL; }
  }
  /* A 0-byte block is a 1-byte one: aligned_alloc(128 KiB, 0) asked the
   * span allocator for 0 slices (ENOMEM, and a fresh segment mapped each
   * time), and a huge block of 0 bytes pointed past its own mapping (fuzz). */
  if (size == 0) size = 1;
  tsr_heap_t *entered = tsr_heap_enter(heap);
  void *p = alloc_dispatch(heap, size, alignment, zero);
  if (tsr_unlikely(p == NULL)) {
    /* The OS refused. Before saying so, give back what is held free (empty
     * segments, cached huge mappings: malloc_trim) and try once more. Under
     * `ulimit -v`, huge blocks failed while 130 MiB of freed small blocks
     * sat in empty segments (tests/reliability/faults_rlimit.c). */
    tsr_heap_trim();
    p = alloc_dispatch(heap, size, alignment, zero);
  }
  if (tsr_unlikely(p == NULL)) {
    if (tsr_option_long(TSR_OPT_VERBOSE)) tsr_message("warning: out of memory: a request of %zu bytes returns NULL", size);
    errno = ENOMEM;
  }
  tsr_heap_leave(entered);
  return p;
}

/* ---- malloc ------------------------------------------------------------------ */

/* The fast path, uncounted: callers count the call they serve. */
static inline void *alloc_block(tsr_heap_t *heap, size_t size) {
  if (tsr_likely(size <= TSR_DIRECT_MAX)) {
    tsr_pop_begin(heap);
    tsr_page_t *page = heap->direct[(size + 15) >> 4];
    tsr_block_t *block = page->free;
    void *p = tsr_likely(block != NULL) ? tsr_page_pop(heap, page, block) : NULL;
    tsr_pop_end(heap, false);
    if (tsr_likely(p != NULL)) return p;
  }
  return tsr_alloc_generic(heap, size, 0, false);
}

/* Counted slow path of malloc: a tail call from the fast path, so the fast
 * path saves no registers and sets up no frame. The size comes first, where
 * malloc received it: no register move before the jump. */
static tsr_noinline void *malloc_slow(size_t size, tsr_heap_t *heap) {
  /* Sizes above the direct table: the class's first page, if it has a free
   * block, is one class computation away (no queue walk, no housekeeping). */
  if (size > TSR_DIRECT_MAX && size <= TSR_CLASS_MAX_SIZE) {
    tsr_heap_t *entered = tsr_heap_enter(heap);   /* a peer may be retiring queue heads */
    unsigned c = tsr_size_class(size);
    tsr_page_t *page = c < TSR_REUSE_CLASSES && heap->reuse_page[c].free != NULL ? &heap->reuse_page[c]
                                                                                : heap->queue[c].first;
    tsr_block_t *block = page != NULL ? page->free : NULL;
    void *p = block != NULL ? tsr_page_pop(heap, page, block) : NULL;
    tsr_heap_leave(entered);
    if (p != NULL) {
      heap->count.malloc_count++;
      heap->count.requested_bytes += size;
      return p;
    }
  }
  void *p = tsr_alloc_generic(heap, size, 0, false);
  COUNT(malloc_count, size);
  return p;
}

/* Expected cost: 19 instructions (TLS 2, size test 2, index 2, loads 2,
 * test 2, decode and unlink 3, clear mark 1, pop marks and counts 4, ret 1;
 * `make fastpath`). The pop marks (internal.h, tsr_pop_begin) let a peer
 * retire an idle thread's first pages (heap.c). */
tsr_public void *tsr_malloc(size_t size) {
  tsr_heap_t *heap = tsr_heap_get();
  if (tsr_likely(size <= TSR_DIRECT_MAX)) {
    tsr_pop_begin(heap);
    tsr_page_t *page = heap->direct[(size + 15) >> 4];
    tsr_block_t *block = page->free;
    if (tsr_likely(block != NULL)) {
      heap->count.requested_bytes += size;
      void *p = tsr_page_pop(heap, page, block);
      tsr_pop_end(heap, true);   /* also the count: pop_seq / 2 */
      return p;
    }
    tsr_pop_end(heap, false);
  }
  return malloc_slow(size, heap);
}

tsr_public void *tsr_calloc(size_t count, size_t size) {
  size_t total;
  if (tsr_unlikely(__builtin_mul_overflow(count, size, &total))) { errno = ENOMEM; return NULL; }
  void *p;
  if (total <= TSR_DIRECT_MAX) {
    p = alloc_block(tsr_heap_get(), total);
    if (p != NULL) memset(p, 0, total);
  } else {
    p = tsr_alloc_generic(tsr_heap_get(), total, 0, true);   /* skips clearing fresh memory */
  }
  COUNT(calloc_count, total);
  return p;
}

/* ---- aligned -------------------------------------------------------------------- */

/* alignment: a power of two (checked by the callers). */
void *tsr_alloc_aligned(size_t alignment, size_t size) {
  COUNT(aligned_count, size);
  if (alignment <= TSR_ALIGN) return alloc_block(tsr_heap_get(), size);
  if (tsr_unlikely(size > PTRDIFF_MAX || alignment > PTRDIFF_MAX)) { errno = ENOMEM; return NULL; }
  return tsr_alloc_generic(tsr_heap_get(), size, alignment, false);
}

static inline bool is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

tsr_public int tsr_posix_memalign(void **out, size_t alignment, size_t size) {
  if (!is_power_of_two(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = tsr_alloc_aligned(alignment, size);
  if (p == NULL) { errno = saved; return ENOMEM; }
  *out = p;
  return 0;
}

tsr_public void *tsr_aligned_alloc(size_t alignment, size_t size) {
  if (!is_power_of_two(alignment)) { errno = EINVAL; return NULL; }
  return tsr_alloc_aligned(alignment, size);
}

/* ---- realloc ----------------------------------------------------------------------- */

/* A block that grows past this size by realloc moves into a span of its own
 * (a large block), where later growth happens in place and the untouched
 * tail costs no memory, instead of stepping through every size class. */
#define REALLOC_SPAN_MIN_SIZE ((size_t)16 * 1024)

/* A small block stays put while the new size fits and does not waste more
 * than half the block. */
static inline bool fits_in_place(size_t size, size_t usable) {
  return size <= usable && (size >= usable / 2 || usable <= 64);
}

static void *realloc_move(void *p, size_t old_size, size_t size) {
  void *q;
  if (size > old_size && size > REALLOC_SPAN_MIN_SIZE && size <= TSR_LARGE_MAX_SIZE) {
    tsr_heap_t *heap = tsr_heap_get();
    if (heap == &tsr_heap_empty) heap = tsr_heap_init_thread();
    q = heap != NULL ? tsr_large_alloc(heap, size, TSR_ALIGN, false) : NULL;
    if (q == NULL && heap != NULL) {   /* as in tsr_alloc_generic: give back what is held free, once */
      tsr_heap_trim();
      q = tsr_large_alloc(heap, size, TSR_ALIGN, false);
    }
    if (q == NULL) errno = ENOMEM;
  } else if (size > old_size && size <= TSR_CLASS_MAX_SIZE) {
    /* Growing: leave room for half as much again, so a block grown a little
     * at a time (a string appended to) moves through a few size classes, not
     * through all of them, leaving a trail of dirty free blocks in each. */
    size_t roomy = size + size / 2;
    q = alloc_block(tsr_heap_get(), roomy <= REALLOC_SPAN_MIN_SIZE ? roomy : size);
  } else {
    q = alloc_block(tsr_heap_get(), size);
  }
  if (q == NULL) return NULL;
  memcpy(q, p, old_size < size ? old_size : size);
  tsr_free(p);
  return q;
}

/* realloc(p, size) for p != NULL and size != 0. */
static void *realloc_slow(void *p, size_t size) {
  if (tsr_unlikely(size > PTRDIFF_MAX)) { errno = ENOMEM; return NULL; }
  uint8_t kind = tsr_segmap_kind((uintptr_t)p);
  if (tsr_likely(kind == TSR_SEGMAP_SEGMENT)) {
    tsr_page_t *page = tsr_page_of(p);
    size_t usable = tsr_usable_size_internal(p);    /* diagnoses an invalid or freed p */
    tsr_heap_t *heap = tsr_heap_get();
    if (page->kind == TSR_PAGE_SMALL) {
      if (fits_in_place(size, usable)) { COUNT_INPLACE(); return p; }
    } else if (page->kind == TSR_PAGE_LARGE && (tsr_page_owner(page) & ~TSR_OWNER_SLOW) == (uintptr_t)heap &&
               size > REALLOC_SPAN_MIN_SIZE && size <= TSR_LARGE_MAX_SIZE) {
      if (tsr_large_realloc_inplace(heap, page, size) != NULL) { COUNT_INPLACE(); return p; }
    }
    return realloc_move(p, usable, size);
  }
  if (kind == TSR_SEGMAP_HUGE || kind == TSR_SEGMAP_HUGE_TAIL) {
    tsr_segment_t *segment = tsr_huge_segment_of(p);
    if (segment == NULL) tsr_free_invalid(p, "realloc of a pointer inside a huge block", 0);
    if (size > TSR_LARGE_MAX_SIZE) {
      void *q = tsr_huge_realloc(segment, size);
      if (q == NULL) {   /* as in tsr_alloc_generic: give back what is held free, once */
        tsr_heap_trim();
        q = tsr_huge_realloc(segment, size);
      }
      if (q != NULL) COUNT_INPLACE();
      return q;
    }
    return realloc_move(p, segment->huge_size, size);
  }
  if (tsr_huge_was_freed(p)) tsr_free_invalid(p, "realloc of a freed huge block", 0);
  tsr_free_invalid(p, "realloc of a pointer tessera never returned", 0);
}

void *tsr_realloc_internal(void *p, size_t size) {
  tsr_heap_t *entered = tsr_heap_enter(tsr_heap_get());
  void *q = realloc_slow(p, size);
  tsr_heap_leave(entered);
  return q;
}

tsr_public void *tsr_realloc(void *p, size_t size) {
  COUNT(realloc_count, size);
  if (p == NULL) return alloc_block(tsr_heap_get(), size);
  if (size == 0) { tsr_free(p); return NULL; }    /* glibc: realloc(p, 0) frees and returns NULL */
  /* In place, the common case of a string or buffer grown a little: a
   * block of this thread's one-slice page, checked as free() checks it. */
  uintptr_t a = (uintptr_t)p;
  if (tsr_likely(tsr_segmap_kind(a) == TSR_SEGMAP_SEGMENT)) {
    tsr_page_t *page = tsr_slice_of(p);
    tsr_heap_t *heap = tsr_heap_get();
    uint64_t offset = a & (TSR_SLICE_SIZE - 1);
    uint32_t usable = page->block_size;
    if ((tsr_page_owner(page) & ~TSR_OWNER_SLOW) == (uintptr_t)heap &&   /* full pages too */
        offset * page->block_magic < page->block_magic &&
        !tsr_block_is_marked_free(p, heap->secret) && fits_in_place(size, usable)) {
      heap->count.realloc_inplace_count++;
      return p;
    }
  }
  return tsr_realloc_internal(p, size);
}

tsr_public void *tsr_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) { errno = ENOMEM; return NULL; }
  return tsr_realloc(p, total);
}

tsr_public size_t tsr_good_size(size_t size) { return tsr_good_size_internal(size); }
