/* visit.c -- the heap visitor: every area of every segment and every huge
 * block, for `tessera map`, the leak scan and tests.
 *
 * It holds TSR_LOCK_HEAPS (no segment is unmapped meanwhile) and reads the
 * descriptors of other threads' heaps without stopping them: an area being
 * changed at that moment may be reported in its old or new state.
 */
#include "internal.h"

typedef struct visit_state_s {
  bool (*visit)(const tsr_area_t *area, void *arg);
  void *arg;
  size_t count;
  bool stopped;
} visit_state_t;

static void visit_huge(tsr_segment_t *segment, void *arg) {
  visit_state_t *v = arg;
  if (v->stopped) return;
  tsr_area_t area = {
    .kind = TSR_AREA_HUGE, .start = (uintptr_t)segment->huge_block, .size = segment->huge_size,
    .block_size = segment->huge_size, .block_count = 1, .used_count = 1,
  };
  v->count++;
  if (!v->visit(&area, v->arg)) v->stopped = true;
}

tsr_public size_t tsr_heap_visit(bool (*visit)(const tsr_area_t *area, void *arg), void *arg) {
  visit_state_t v = { visit, arg, 0, false };
  if (visit == NULL) return 0;
  tsr_lock(TSR_LOCK_HEAPS);
  for (tsr_heap_t *heap = tsr_heap_all; heap != NULL && !v.stopped; heap = heap->all_next) {
    for (tsr_segment_t *segment = heap->segments; segment != NULL && !v.stopped; segment = segment->next) {
      tsr_page_t *slices = (tsr_page_t *)segment;
      tsr_area_t meta = { .kind = TSR_AREA_METADATA, .start = (uintptr_t)segment, .size = TSR_SLICE_SIZE, .heap_id = heap->id };
      v.count++;
      if (!visit(&meta, arg)) { v.stopped = true; break; }
      for (size_t i = 1; i < TSR_SLICE_COUNT && !v.stopped;) {
        tsr_page_t *page = &slices[i];
        uint32_t n = page->slice_count;
        if (n == 0 || i + n > TSR_SLICE_COUNT) n = 1;
        tsr_area_t area = { .start = (uintptr_t)segment + (i << TSR_SLICE_SHIFT), .size = (size_t)n << TSR_SLICE_SHIFT,
                            .heap_id = heap->id };
        if (page->kind == TSR_PAGE_SMALL) {
          area.kind = TSR_AREA_SMALL_PAGE;
          area.block_size = page->block_size;
          area.block_count = page->reserved;
          area.used_count = tsr_page_live_count(heap, page);
          area.size_class = page->size_class;
        } else if (page->kind == TSR_PAGE_LARGE) {
          area.kind = TSR_AREA_LARGE;
          area.block_size = page->block_size;
          area.block_count = area.used_count = 1;
        } else {
          area.kind = TSR_AREA_FREE_SPAN;
          area.is_purged = page->is_purged;
        }
        v.count++;
        if (!visit(&area, arg)) v.stopped = true;
        i += n;
      }
    }
  }
  tsr_unlock(TSR_LOCK_HEAPS);
  if (!v.stopped) tsr_huge_each(visit_huge, &v);
  return v.count;
}
