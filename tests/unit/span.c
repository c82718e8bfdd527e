/* span.c -- spans split and coalesce: random allocate/free of spans in one
 * heap with the invariant walk after every step; all free again means one
 * free span per segment; grow and shrink in place; purge marks spans zero. */
#include "unit.h"

static tsr_heap_t heap;

static uint32_t free_slices(void) {
  uint32_t n = 0;
  for (tsr_segment_t *s = heap.segments; s != NULL; s = s->next) n += s->free_slice_count;
  return n;
}

int main(void) {
  tsr_init_process();
  for (size_t d = 0; d < TSR_DIRECT_COUNT; d++) heap.direct[d] = &tsr_page_empty;
  heap.secret = tsr_secret;
  enum { N = 200 };
  tsr_page_t *spans[N] = {0};
  unsigned seed = 12345;

  CHECK_SECTION("random split and coalesce");
  bool ok = true;
  for (int step = 0; step < 5000 && ok; step++) {
    seed = seed * 1103515245u + 12345u;
    int i = (int)((seed >> 8) % N);
    if (spans[i] == NULL) {
      uint32_t slices = 1 + (seed >> 20) % 40;
      uint32_t align = (seed >> 28) % 4 == 0 ? 4 : 1;
      spans[i] = tsr_span_alloc(&heap, slices, align);
      if (spans[i] == NULL) { CHECK(spans[i] != NULL); ok = false; break; }
      spans[i]->kind = TSR_PAGE_LARGE;
      tsr_span_mark_used(spans[i], slices);
      tsr_page_set_owner(spans[i], (uintptr_t)&heap | TSR_OWNER_SLOW);
      if (align == 4) CHECK(((uintptr_t)tsr_slice_start(spans[i]) & (4 * TSR_SLICE_SIZE - 1)) == 0);
      memset(tsr_slice_start(spans[i]), 0xab, 64);
    } else {
      tsr_span_free(&heap, spans[i]);
      spans[i] = NULL;
    }
    if (!tsr_span_check(&heap)) { CHECKF(0, "invariants broken at step %d", step); ok = false; }
  }
  CHECK(ok);

  CHECK_SECTION("grow and shrink");
  for (int i = 0; i < N; i++) if (spans[i] != NULL) { tsr_span_free(&heap, spans[i]); spans[i] = NULL; }
  CHECK(tsr_span_check(&heap));
  tsr_page_t *a = tsr_span_alloc(&heap, 3, 1);
  CHECK(a != NULL);
  a->kind = TSR_PAGE_LARGE;
  tsr_span_mark_used(a, 3);
  tsr_page_set_owner(a, (uintptr_t)&heap | TSR_OWNER_SLOW);
  CHECK(tsr_span_grow(&heap, a, 10) && a->slice_count == 10);
  CHECK(tsr_span_check(&heap));
  tsr_span_shrink(&heap, a, 2);
  CHECK(a->slice_count == 2 && tsr_span_check(&heap));
  tsr_span_free(&heap, a);

  CHECK_SECTION("coalesced back");
  uint32_t segments = 0;
  for (tsr_segment_t *s = heap.segments; s != NULL; s = s->next) {
    segments++;
    tsr_page_t *first = (tsr_page_t *)s + 1;
    CHECKF(first->kind == TSR_PAGE_FREE && first->slice_count == TSR_SLICE_COUNT - 1, "segment not one free span: %u", first->slice_count);
  }
  CHECK(free_slices() == segments * (TSR_SLICE_COUNT - 1));

  CHECK_SECTION("purge");
  size_t released = tsr_span_purge_due(&heap, tsr_platform_clock_ms() + 1000000, true, false);
  CHECK(released > 0);
  CHECK(heap.segments != NULL && heap.segments->next == NULL);   /* all but the last segment unmapped */
  tsr_page_t *z = tsr_span_alloc(&heap, 5, 1);
  CHECK(z != NULL && z->is_zero);
  return check_done("unit-span");
}
