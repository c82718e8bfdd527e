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
 * that frees a big buffer and allocates another (a file read per request),
 * or grows a vector again, gets the pages already faulted in, in place or
 * moved into the new block with mremap, instead of paying a fault per OS
 * page again. A block bigger than any cached mapping is assembled from
 * several; the cache stays within the program's peak of live huge bytes
 * (huge_link). Mappings of 4 MiB or more are made of 2 MiB pages
 * (huge_map_size, huge_pages_advised), so that those moves carry whole
 * page-table entries.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define HUGE_CACHE_COUNT 16
#define HUGE_CACHE_MIN_PIECE ((size_t)1 << 20)
#define HUGE_CACHE_MAX_BYTES ((size_t)256 << 20)

static struct {
  tsr_segment_t *huge_list;          /* every huge block (TSR_LOCK_HUGE) */
  tsr_segment_t *cache[HUGE_CACHE_COUNT]; /* freed mappings kept for reuse (TSR_LOCK_HUGE) */
  uint64_t cache_time_ms[HUGE_CACHE_COUNT];
  uint64_t cache_used_ms;            /* when the cache last served a block */
  size_t cache_bytes;
  size_t live_bytes;                 /* mapped for huge blocks in use (TSR_LOCK_HUGE) */
  size_t peak_live_bytes;            /* most live_bytes since the cache was last released (TSR_LOCK_HUGE) */
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
  if (atomic_load_explicit(&heap->pending, memory_order_relaxed) != NULL) tsr_heap_collect_remote(heap, false);
  if (heap->purge_due_ms != 0) tsr_heap_housekeeping(heap);
  uint32_t slices = (uint32_t)((size + TSR_SLICE_SIZE - 1) >> TSR_SLICE_SHIFT);
  uint32_t align_slices = alignment > TSR_SLICE_SIZE ? (uint32_t)(alignment >> TSR_SLICE_SHIFT) : 1;
  tsr_page_t *page = tsr_span_alloc(heap, slices, align_slices, 0);
  if (page == NULL) return NULL;
  bool is_zero = page->is_zero;
  page->kind = TSR_PAGE_LARGE;
  page->size_class = 0;
  page->area = tsr_slice_start(page);
  large_set_size(page, slices);
  page->capacity = page->reserved = 1;
  page->used = 1;
  page->free = NULL;
  page->remote_deferred = 0;
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

/* A huge mapping of 4 MiB or more is made of 2 MiB pages where the kernel
 * has them (TESSERA_HUGE_PAGES) when it is sized in whole 2 MiB pages, so
 * that every piece the cache moves (huge_cache_take, split_in_place)
 * starts and ends on a 2 MiB boundary and mremap moves whole page-table
 * entries of 2 MiB instead of splitting them into 512 small ones, each to
 * be faulted on its next touch. A mapping is rounded up to whole 2 MiB
 * pages only where that adds at most an eighth (the size classes' bound):
 * the block follows a 4 KiB header page, so a block of exactly 4 MiB would
 * take a third 2 MiB page, resident whole once the block's last bytes are
 * written (+50 %); it is not rounded, but advised all the same
 * (huge_pages_advised). */
#define HUGE_OS_PAGE_SIZE ((size_t)2 << 20)
#define HUGE_OS_PAGE_MIN  ((size_t)4 << 20)

static size_t round_huge_page(size_t n) { return (n + HUGE_OS_PAGE_SIZE - 1) & ~(HUGE_OS_PAGE_SIZE - 1); }

/* Whether to ask for 2 MiB pages: the kernel gives them only for the
 * whole 2 MiB ranges inside a mapping, so one that is not rounded (a block
 * of exactly 4 MiB behind its header page) gets two and keeps its last
 * 4 KiB in a small page: 4 MiB + 8 KiB resident once written, where small
 * pages cost it 1,024 faults (bigblock/1t 0.87 -> 0.63 s). */
static bool huge_pages_advised(size_t map_size) {
  return map_size >= HUGE_OS_PAGE_MIN && tsr_option_long(TSR_OPT_HUGE_PAGES);
}

static size_t huge_map_size(size_t offset, size_t size) {
  size_t map = round_os(offset + size);
  size_t up = round_huge_page(map);
  return up - map <= map / 8 && huge_pages_advised(up) ? up : map;
}

/* Advice for a block the program is about to write (not calloc's, which
 * may be touched sparsely and reads as zero untouched). */
static void huge_advise_written(void *mapping, size_t map_size) {
  if (huge_pages_advised(map_size)) tsr_platform_advise_huge_pages(mapping, map_size);
}

/* ---- extents: the kernel mappings a huge mapping is made of ----
 * A mapping is one kernel mapping when it is mapped, but one assembled from
 * cached pieces (huge_cache_take) is several, and mremap works within one
 * kernel mapping only. So the header page records where the pieces meet
 * (the kernel may merge neighbours, never split them unasked), and every
 * move works extent by extent, from the end: a refusal halfway leaves a
 * shorter piece and a block whose front is still fresh, both consistent. */
#define HUGE_EXTENTS_MAX 32
typedef struct huge_extents_s {
  uint32_t count;                    /* 1: a single kernel mapping */
  size_t   end[HUGE_EXTENTS_MAX];    /* extent i is [end[i-1], end[i]) of the mapping (end[-1] = 0) */
} huge_extents_t;
_Static_assert(sizeof(tsr_segment_t) + sizeof(huge_extents_t) <= TSR_OS_PAGE_SIZE, "extents fit the header page");

static huge_extents_t *extents_of(tsr_segment_t *segment) { return (huge_extents_t *)(segment + 1); }

static void extents_single(tsr_segment_t *segment, size_t map_size) {
  extents_of(segment)->count = 1;
  extents_of(segment)->end[0] = map_size;
}

/* For the invariant walk: the extents tile the mapping. */
bool tsr_huge_extents_ok(tsr_segment_t *segment) {
  huge_extents_t *e = extents_of(segment);
  if (e->count == 0 || e->count > HUGE_EXTENTS_MAX || e->end[e->count - 1] != segment->map_size) return false;
  for (uint32_t i = 0; i < e->count; i++)
    if (e->end[i] % TSR_OS_PAGE_SIZE != 0 || e->end[i] <= (i == 0 ? 0 : e->end[i - 1])) return false;
  return true;
}

/* Move the last len bytes of a cached piece (its segment-map marks cleared
 * by the caller) so that they end at dst_end, extent by extent from the
 * end. Returns the bytes moved: len, or less where mremap refused. The
 * piece shrinks by as much; *gone: it was moved whole (its header too),
 * and is not to be touched again. starts[] gets each moved chunk's place
 * (its start, as an offset of dst_base), up to max of them. */
static size_t move_tail(tsr_segment_t *piece, size_t len, uint8_t *dst_base, uint8_t *dst_end, size_t *starts,
                        uint32_t *n_starts, uint32_t max, bool *gone) {
  size_t moved = 0;
  *gone = false;
  while (moved < len && *n_starts < max) {
    huge_extents_t *e = extents_of(piece);
    uint32_t last = e->count - 1;
    size_t ext_start = last == 0 ? 0 : e->end[last - 1];
    size_t chunk = e->end[last] - ext_start;
    if (chunk > len - moved) chunk = len - moved;
    size_t from = e->end[last] - chunk;
    uint8_t *to = dst_end - moved - chunk;
    if (tsr_platform_remap((uint8_t *)piece + from, chunk, chunk, to) == NULL) break;
    starts[(*n_starts)++] = (size_t)(to - dst_base);
    moved += chunk;
    if (from == 0) { *gone = true; break; }   /* the header went with it */
    e->end[last] = from;
    if (from == ext_start) e->count--;
    piece->map_size = from;
  }
  return moved;
}

/* Remove cache slot i (TSR_LOCK_HUGE held). */
static void cache_drop(int i) {
  __atomic_fetch_sub(&large.cache_bytes, large.cache[i]->map_size, __ATOMIC_RELAXED);
  large.cache[i] = NULL;
}

/* The slot of the smallest cached mapping under below bytes, or -1
 * (TSR_LOCK_HUGE held): the first to go when the cache must shrink. */
static int cache_smallest(size_t below) {
  int small = -1;
  for (int k = 0; k < HUGE_CACHE_COUNT; k++) {
    tsr_segment_t *c = large.cache[k];
    if (c != NULL && c->map_size < below && (small < 0 || c->map_size < large.cache[small]->map_size)) small = k;
  }
  return small;
}

static void huge_unmap_all(tsr_segment_t **segments, int n);

/* The cache is bounded by the program's own peak: live and cached huge
 * mappings together never exceed the most that was live at once (since the
 * cache was last released), so caching costs RSS only up to a footprint
 * the program already had. At a free the cache keeps at most peak - live
 * (tsr_huge_free); here, a block that takes live past the old peak gives
 * cached mappings back, smallest first. */
static void huge_link(tsr_segment_t *segment) {
  tsr_segment_t *evicted[HUGE_CACHE_COUNT];
  int n = 0;
  tsr_lock(TSR_LOCK_HUGE);
  segment->prev = NULL;
  segment->next = large.huge_list;
  if (large.huge_list != NULL) large.huge_list->prev = segment;
  large.huge_list = segment;
  size_t bound = large.peak_live_bytes;
  large.live_bytes += segment->map_size;
  if (large.live_bytes > large.peak_live_bytes) large.peak_live_bytes = large.live_bytes;
  if (bound < large.live_bytes) bound = large.live_bytes;
  while (large.live_bytes + large.cache_bytes > bound) {
    int small = cache_smallest(SIZE_MAX);
    if (small < 0) break;
    evicted[n++] = large.cache[small];
    cache_drop(small);
  }
  tsr_unlock(TSR_LOCK_HUGE);
  huge_unmap_all(evicted, n);
}

static void huge_unlink(tsr_segment_t *segment) {
  tsr_lock(TSR_LOCK_HUGE);
  if (segment->prev != NULL) segment->prev->next = segment->next; else large.huge_list = segment->next;
  if (segment->next != NULL) segment->next->prev = segment->prev;
  large.live_bytes -= segment->map_size;
  tsr_unlock(TSR_LOCK_HUGE);
}

/* Extents of a mapping of map_size bytes whose end was filled with moved
 * chunks (move_tail's starts, from the end backwards); the front before the
 * first chunk, if any, is fresh. */
static void extents_from_moves(tsr_segment_t *segment, size_t map_size, const size_t *starts, uint32_t n_starts) {
  huge_extents_t *e = extents_of(segment);
  e->count = 0;
  size_t front = n_starts == 0 ? map_size : starts[n_starts - 1];
  if (front != 0) e->end[e->count++] = front;
  for (uint32_t k = n_starts; k-- > 1;) e->end[e->count++] = starts[k - 1];
  if (n_starts != 0) e->end[e->count++] = map_size;
  segment->map_size = map_size;
}

/* The header page of a huge mapping, a block's or a cached piece's (no
 * block: huge_block NULL until huge_setup). */
static void huge_header_init(tsr_segment_t *segment, size_t map_size) {
  tsr_platform_name(segment, map_size, "tessera huge");
  ((tsr_page_t *)segment)->kind = TSR_PAGE_META;
  ((tsr_page_t *)segment)->owner = 0;
  segment->kind = TSR_SEGMENT_HUGE;
  segment->map_size = map_size;
  segment->huge_block = NULL;
}

/* Cache slot i holds a piece larger than map_size by no more than
 * map_size: the block stays where the piece is, and its tail (the smaller
 * part) moves to a fresh aligned address as a cached piece of its own.
 * Pages that stay put cost nothing when the program touches them again;
 * on machines where a moved page costs a fault at its next touch (shadow
 * paging), moving the smaller part halves that cost. TSR_LOCK_HUGE held.
 * NULL (nothing changed) if the OS refuses the new address. */
static tsr_segment_t *split_in_place(int i, size_t map_size) {
  tsr_segment_t *piece = large.cache[i];
  /* Cut on a 2 MiB boundary where the piece may be made of 2 MiB pages: a
   * cut inside one splits it into 512 small pages, and each of those that
   * moves costs a fault at its next touch on this machine (the rest moves).
   * The block keeps the rest of that 2 MiB page, resident either way
   * (bigblock/1t 1.08 -> 0.76 s, tcmalloc 0.93, run between mimalloc's). */
  if (huge_pages_advised(piece->map_size)) {
    size_t cut = round_huge_page(map_size);
    if (cut < piece->map_size) map_size = cut;
  }
  size_t tail = piece->map_size - map_size;
  uint8_t *target = tsr_os_map_aligned(tail, TSR_SEGMENT_SIZE);
  if (target == NULL) return NULL;
  uint64_t cached_at = large.cache_time_ms[i];
  cache_drop(i);
  /* Unmarked before its pages move away (huge_cache_take). */
  tsr_os_segmap_set((uintptr_t)piece, piece->map_size, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
  size_t starts[HUGE_EXTENTS_MAX];
  uint32_t n_starts = 0;
  bool gone;
  size_t moved = move_tail(piece, tail, target, target + tail, starts, &n_starts, HUGE_EXTENTS_MAX - 1, &gone);
  tsr_os_account_map(-(long)moved);   /* the target's reservation holds them now */
  tsr_segment_t *rest = (tsr_segment_t *)target;
  extents_from_moves(rest, tail, starts, n_starts);
  huge_header_init(rest, tail);
  large.cache[i] = rest;
  large.cache_time_ms[i] = cached_at;
  __atomic_fetch_add(&large.cache_bytes, tail, __ATOMIC_RELAXED);
  tsr_os_segmap_set((uintptr_t)rest, tail, TSR_SEGMAP_HUGE, TSR_SEGMAP_HUGE_TAIL);
  return piece;
}

/* A mapping of at least map_size bytes made of cached pages, or NULL. The
 * smallest cached piece that fits is used: whole when it is at most
 * 1 MiB larger; split in place when the block is the larger part
 * (split_in_place); else its last map_size bytes are moved (mremap moves
 * page-table entries, not bytes) to a fresh aligned address, and the rest
 * stays cached. If none
 * fits (and !fit_only), a fresh mapping of map_size is filled from its end
 * with the largest pieces, as far as they go: only its front, if the cache
 * held less, is faulted in. Either way the pages arrive resident: no
 * fault, no zeroing, which a program that frees and allocates big buffers
 * in turn pays for otherwise, once per OS page. */
static tsr_segment_t *huge_cache_take(size_t map_size, bool fit_only) {
  tsr_lock(TSR_LOCK_HUGE);
  int bi = -1;
  for (int i = 0; i < HUGE_CACHE_COUNT; i++) {
    tsr_segment_t *s = large.cache[i];
    if (s != NULL && s->map_size >= map_size && (bi < 0 || s->map_size < large.cache[bi]->map_size)) bi = i;
  }
  if (bi >= 0 && large.cache[bi]->map_size < map_size + HUGE_CACHE_MIN_PIECE) {   /* whole */
    tsr_segment_t *taken = large.cache[bi];
    cache_drop(bi);
    large.cache_used_ms = tsr_platform_clock_ms();
    tsr_unlock(TSR_LOCK_HUGE);
    return taken;
  }
  if (bi < 0 && fit_only) { tsr_unlock(TSR_LOCK_HUGE); return NULL; }
  if (bi >= 0 && large.cache[bi]->map_size - map_size <= map_size) {
    tsr_segment_t *kept = split_in_place(bi, map_size);
    if (kept != NULL) {
      large.cache_used_ms = tsr_platform_clock_ms();
      tsr_unlock(TSR_LOCK_HUGE);
      return kept;
    }
  }
  uint8_t *target = tsr_os_map_aligned(map_size, TSR_SEGMENT_SIZE);
  if (target == NULL) { tsr_unlock(TSR_LOCK_HUGE); return NULL; }
  size_t starts[HUGE_EXTENTS_MAX];
  uint32_t n_starts = 0;
  size_t filled = 0;
  while (filled < map_size && n_starts < HUGE_EXTENTS_MAX - 1) {
    int pi = bi;   /* the piece that fits (split), else the largest left */
    if (pi < 0) {
      for (int i = 0; i < HUGE_CACHE_COUNT; i++)
        if (large.cache[i] != NULL && (pi < 0 || large.cache[i]->map_size > large.cache[pi]->map_size)) pi = i;
    }
    if (pi < 0) break;
    tsr_segment_t *piece = large.cache[pi];
    size_t size = piece->map_size, want = map_size - filled < size ? map_size - filled : size;
    /* Unmarked before its pages move away: once they have, another
     * thread's mmap may get that range and mark it, and a late clear
     * would undo that. */
    tsr_os_segmap_set((uintptr_t)piece, size, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
    bool gone;
    size_t moved = move_tail(piece, want, target, target + map_size - filled, starts, &n_starts,
                             HUGE_EXTENTS_MAX - 1, &gone);
    __atomic_fetch_sub(&large.cache_bytes, moved, __ATOMIC_RELAXED);
    tsr_os_account_map(-(long)moved);   /* the target's reservation was accounted when it was mapped */
    filled += moved;
    if (gone) large.cache[pi] = NULL;
    else tsr_os_segmap_set((uintptr_t)piece, piece->map_size, TSR_SEGMAP_HUGE, TSR_SEGMAP_HUGE_TAIL);
    if (moved < want) break;   /* the OS refused a move: the rest stays fresh */
    bi = -1;
  }
  if (filled != 0) large.cache_used_ms = tsr_platform_clock_ms();
  tsr_unlock(TSR_LOCK_HUGE);
  /* Extents, in address order: the fresh front (if any), then the chunks
   * (moved from the end backwards). */
  tsr_segment_t *taken = (tsr_segment_t *)target;
  extents_from_moves(taken, map_size, starts, n_starts);
  return taken;
}

/* Make segment (fresh or from the cache) a huge block at offset. */
static void *huge_setup(tsr_segment_t *segment, size_t map_size, size_t offset, bool written) {
  if (written) huge_advise_written(segment, map_size);
  huge_header_init(segment, map_size);
  segment->huge_block = (uint8_t *)segment + offset;
  segment->huge_size = map_size - offset;
  huge_link(segment);
  atomic_fetch_add_explicit(&tsr_os_counters.huge_count, 1, memory_order_relaxed);
  tsr_os_segmap_set((uintptr_t)segment, map_size, TSR_SEGMAP_HUGE, TSR_SEGMAP_HUGE_TAIL);
  return segment->huge_block;
}

static void huge_unmap_all(tsr_segment_t **segments, int n) {
  for (int i = 0; i < n; i++) {
    tsr_os_segmap_set((uintptr_t)segments[i], segments[i]->map_size, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
    tsr_os_unmap(segments[i], segments[i]->map_size);
  }
}

/* Unmap cached mappings once the program has stopped reusing them for the
 * huge-cache delay (all if force). Returns when the next one falls due (0:
 * the cache is empty or kept for ever). */
uint64_t tsr_huge_cache_purge(uint64_t now_ms, bool force) {
  tsr_segment_t *release[HUGE_CACHE_COUNT];
  int n = 0;
  long delay = tsr_option_long(TSR_OPT_HUGE_CACHE_DELAY);
  uint64_t next_due = 0;
  tsr_lock(TSR_LOCK_HUGE);
  for (int i = 0; i < HUGE_CACHE_COUNT; i++) {
    tsr_segment_t *s = large.cache[i];
    if (s == NULL) continue;
    /* While the program keeps taking blocks from the cache, the cache is
     * its working set: kept. Once it stops for the delay, it goes. */
    uint64_t due = (large.cache_time_ms[i] > large.cache_used_ms ? large.cache_time_ms[i] : large.cache_used_ms) +
                   (uint64_t)(delay > 0 ? delay : 0);
    if (force || (delay >= 0 && now_ms >= due)) {
      release[n++] = s;
      cache_drop(i);
    } else if (delay >= 0 && (next_due == 0 || due < next_due)) {
      next_due = due;
    }
  }
  if (n != 0 && large.cache_bytes == 0) large.peak_live_bytes = large.live_bytes;   /* released in full: a new phase */
  tsr_unlock(TSR_LOCK_HUGE);
  huge_unmap_all(release, n);
  return next_due;
}

void *tsr_huge_alloc(size_t size, size_t alignment, bool zero) {
  if (size > PTRDIFF_MAX - 2 * TSR_SEGMENT_SIZE || alignment > ((size_t)1 << 40)) { errno = ENOMEM; return NULL; }
  size_t offset = alignment > TSR_OS_PAGE_SIZE ? alignment : TSR_OS_PAGE_SIZE;
  size_t map_size = huge_map_size(offset, size);
  /* Not for calloc: fresh pages read as zero at no cost until touched,
   * while cached ones would have to be cleared now. */
  if (!zero && alignment <= TSR_OS_PAGE_SIZE && __atomic_load_n(&large.cache_bytes, __ATOMIC_RELAXED) != 0) {
    tsr_segment_t *cached = huge_cache_take(map_size, false);
    if (cached != NULL) return huge_setup(cached, cached->map_size, offset, true);
  }
  size_t map_align = alignment > TSR_SEGMENT_SIZE ? alignment : TSR_SEGMENT_SIZE;
  tsr_segment_t *segment = tsr_os_map_aligned(map_size, map_align);
  if (segment == NULL) return NULL;
  extents_single(segment, map_size);
  return huge_setup(segment, map_size, offset, !zero);
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
  if (segment->map_size <= HUGE_CACHE_MAX_BYTES / 2 && tsr_option_long(TSR_OPT_HUGE_CACHE_DELAY) != 0 &&
      tsr_owner_extra == 0) {   /* secure mode: freed contents go back to the OS at once */
    uint64_t now = tsr_platform_clock_ms();
    tsr_huge_cache_purge(now, false);
    tsr_segment_t *evicted[HUGE_CACHE_COUNT];
    int n_evicted = 0;
    tsr_lock(TSR_LOCK_HUGE);
    /* The cache holds at most what the program had live at its peak and
     * has not now (huge_link), within a fixed bound. Full: smaller cached
     * mappings make room for this one (a big block saves more faults, and
     * a request takes a bigger piece in part, or several pieces at once). */
    size_t cap = large.peak_live_bytes - large.live_bytes;
    if (cap > HUGE_CACHE_MAX_BYTES) cap = HUGE_CACHE_MAX_BYTES;
    for (;;) {
      int used = 0;
      for (int k = 0; k < HUGE_CACHE_COUNT; k++) used += large.cache[k] != NULL;
      int small = cache_smallest(segment->map_size);
      if ((used < HUGE_CACHE_COUNT && large.cache_bytes + segment->map_size <= cap) || small < 0) break;
      evicted[n_evicted++] = large.cache[small];
      cache_drop(small);
    }
    for (int k = 0; k < HUGE_CACHE_COUNT; k++) {
      if (large.cache[k] == NULL && large.cache_bytes + segment->map_size <= cap) {
        large.cache[k] = segment;
        large.cache_time_ms[k] = now;
        __atomic_fetch_add(&large.cache_bytes, segment->map_size, __ATOMIC_RELAXED);
        tsr_unlock(TSR_LOCK_HUGE);
        huge_unmap_all(evicted, n_evicted);
        tsr_heap_t *heap = tsr_heap_get();     /* its housekeeping releases the cache later */
        uint64_t due = now + (uint64_t)tsr_option_long(TSR_OPT_HUGE_CACHE_DELAY);
        if (heap != &tsr_heap_empty) {
          /* Bracketed: a peer working on this heap reads purge_due_ms (heap.c). */
          tsr_heap_t *entered = tsr_heap_enter(heap);
          tsr_heap_purge_due_by(heap, due);
          tsr_heap_leave(entered);
        }
        return;
      }
    }
    tsr_unlock(TSR_LOCK_HUGE);
    huge_unmap_all(evicted, n_evicted);
  }
  huge_unmap_all(&segment, 1);
}

/* Was p a huge block that was unmapped recently? (For the double-free message.) */
bool tsr_huge_was_freed(const void *p) {
  for (unsigned i = 0; i < 16; i++)
    if (atomic_load_explicit(&large.freed_ring[i], memory_order_relaxed) == (uintptr_t)p) return true;
  return false;
}

/* A block that realloc grows with mremap is a vector being filled: its new
 * tail is written in order, and with 2 MiB pages costs 1/512 as many
 * faults (micro realloc-vec: 0.46 -> 0.21 s). Mappings of 4 MiB or more
 * are advised when made (huge_advise_written); this covers a smaller one
 * grown, whose front stays in small pages. */
static void huge_advise_grown(void *mapping, size_t size) {
  if (tsr_option_long(TSR_OPT_HUGE_PAGES)) tsr_platform_advise_huge_pages(mapping, size);
}

/* Resize a mapping of several kernel mappings (huge_cache_take): shrink
 * by unmapping the tail; grow the last one in place, else copy the block
 * into a new one (mremap moves one kernel mapping at a time). */
static void *huge_realloc_pieces(tsr_segment_t *segment, size_t size, size_t offset, size_t new_map) {
  huge_extents_t *e = extents_of(segment);
  size_t old_map = segment->map_size;
  huge_unlink(segment);
  if (new_map < old_map) {
    tsr_os_segmap_set((uintptr_t)segment, old_map, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
    /* If the OS refuses (a split beyond the mapping limit), the block keeps its size. */
    if (tsr_platform_unmap((uint8_t *)segment + new_map, old_map - new_map) == 0) {
      tsr_os_account_map(-(long)(old_map - new_map));
      while (e->count > 1 && e->end[e->count - 2] >= new_map) e->count--;
      e->end[e->count - 1] = new_map;
      segment->map_size = new_map;
      segment->huge_size = new_map - offset;
    }
    tsr_os_segmap_set((uintptr_t)segment, segment->map_size, TSR_SEGMAP_HUGE, TSR_SEGMAP_HUGE_TAIL);
    huge_link(segment);
    return segment->huge_block;
  }
  size_t last_start = e->end[e->count - 2], last_len = old_map - last_start;
  /* In place or not at all: the marks stay right meanwhile. */
  if (tsr_platform_remap((uint8_t *)segment + last_start, last_len, last_len + (new_map - old_map), NULL) != NULL) {
    tsr_os_account_map((long)(new_map - old_map));
    huge_advise_grown((uint8_t *)segment + last_start, new_map - last_start);
    e->end[e->count - 1] = new_map;
    segment->map_size = new_map;
    segment->huge_size = new_map - offset;
    tsr_os_segmap_set((uintptr_t)segment, new_map, TSR_SEGMAP_HUGE, TSR_SEGMAP_HUGE_TAIL);
    huge_link(segment);
    return segment->huge_block;
  }
  huge_link(segment);
  void *p = tsr_huge_alloc(size, offset == TSR_OS_PAGE_SIZE ? 0 : offset, false);
  if (p == NULL) return NULL;   /* errno ENOMEM; the block is unchanged */
  memcpy(p, segment->huge_block, segment->huge_size);
  tsr_huge_free(segment);
  return p;
}

/* Resize a huge block: shrink or grow in place with mremap, else move the
 * pages (not the bytes) to a new aligned address. NULL (errno ENOMEM) if the
 * OS refuses; the block is then unchanged. */
void *tsr_huge_realloc(tsr_segment_t *segment, size_t size) {
  if (size > PTRDIFF_MAX - 2 * TSR_SEGMENT_SIZE) { errno = ENOMEM; return NULL; }
  size_t offset = (size_t)(segment->huge_block - (uint8_t *)segment);
  size_t old_map = segment->map_size, new_map = huge_map_size(offset, size);
  if (new_map == old_map) return segment->huge_block;
  /* Growing by at least half the old size into small pages: copying the
   * old bytes into cached pages that are already resident costs less than
   * faulting in the new tail page by page (a vector that doubles). Not so
   * with 2 MiB pages: mremap moves or extends the block at the cost of a
   * fault per 2 MiB of new tail, and a copy is the dearer of the two
   * (micro realloc-vec, 1 thread: 2.13 s copying, 0.55 s not). */
  if (new_map > old_map && !huge_pages_advised(new_map) && offset == TSR_OS_PAGE_SIZE && new_map - old_map >= old_map / 2 &&
      __atomic_load_n(&large.cache_bytes, __ATOMIC_RELAXED) != 0) {
    tsr_segment_t *cached = huge_cache_take(new_map, true);
    if (cached != NULL) {
      void *p = huge_setup(cached, cached->map_size, offset, true);
      memcpy(p, segment->huge_block, segment->huge_size);
      tsr_huge_free(segment);
      return p;
    }
  }
  if (extents_of(segment)->count > 1) return huge_realloc_pieces(segment, size, offset, new_map);
  huge_unlink(segment);   /* its list links move with it, or vanish */
  /* Unmarked before the mapping moves: once the old range is free, another
   * thread's mmap may get it and mark it, and a clear after the move would
   * wipe that thread's marks (seen once in make bench: realloc-vec/2t, "a
   * pointer tessera never returned"). The block is the caller's meanwhile. */
  tsr_os_segmap_set((uintptr_t)segment, old_map, TSR_SEGMAP_NONE, TSR_SEGMAP_NONE);
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
  if (moved == NULL) {
    tsr_os_segmap_set((uintptr_t)segment, old_map, TSR_SEGMAP_HUGE, TSR_SEGMAP_HUGE_TAIL);
    huge_link(segment);
    errno = ENOMEM;
    return NULL;
  }
  tsr_os_account_map((long)new_map - (long)old_map);
  if (new_map > old_map) huge_advise_grown(moved, new_map);
  extents_single(moved, new_map);
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
