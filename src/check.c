/* check.c -- the checking layer. In the release build it only offers
 * tsr_check_heap as an invariant walk of the caller's heap; the checking
 * build (TSR_CHECK=1, libtessera-check.so) adds redzones, quarantine and
 * reports here (see docs/check.md once written).
 */
#include "internal.h"

/* Walk the calling thread's heap invariants; returns the number of broken ones. */
tsr_public size_t tsr_check_heap(void) {
  tsr_heap_t *heap = tsr_heap_get();
  if (heap == &tsr_heap_empty) return 0;
  size_t errors = 0;
  if (!tsr_span_check(heap)) { tsr_message("heap check: segment/span invariants broken (heap %u)", heap->id); errors++; }
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) {
    for (tsr_page_t *page = heap->queue[c].first; page != NULL; page = page->next) {
      uint32_t free_count = 0;
      for (tsr_block_t *b = page->free; b != NULL && free_count <= page->capacity;
           b = tsr_decode(heap->secret, b->next_encoded)) {
        uintptr_t off = (uintptr_t)b - (uintptr_t)page->area;
        if (off >= page->carved_size || off % page->block_size != 0) { errors++; break; }
        free_count++;
      }
      if (free_count > page->capacity) errors++;
      if (page->size_class != c || page->kind != TSR_PAGE_SMALL) errors++;
    }
  }
  if (errors != 0) tsr_message("heap check: %zu invariant(s) broken", errors);
  return errors;
}
