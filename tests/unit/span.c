/* span.c -- spans split and coalesce: random allocate/free of spans in one
 * heap with the invariant walk after every step; all free again means one
 * free span per segment; grow and shrink in place; purge marks spans zero;
 * a free run waits for its newest slice, but its stale slices go back;
 * dirty spans are reused before clean ones, within a bin and across bins; an unmapped
 * segment's pages are no longer noted for their dirty tails; a one-slice
 * page goes on the dirty slice that holds what it is expected to touch;
 * the purge delay rises when purged memory is soon needed again; purges
 * and stats read the descriptors of a span's dirty stretch only; a given
 * free, dirty slice can be taken out of the middle of its span. */
#include "unit.h"

#include <sys/mman.h>

static tsr_heap_t heap;

/* Mark span (from tsr_span_alloc of h) used, as a large block's. */
static tsr_page_t *mark_used(tsr_heap_t *h, tsr_page_t *s, uint32_t slices) {
  if (s == NULL) return NULL;
  s->kind = TSR_PAGE_LARGE;
  tsr_span_mark_used(s, slices);
  tsr_page_set_owner(s, (uintptr_t)h | TSR_OWNER_SLOW);
  return s;
}

/* A span of `slices`, marked used; want_pages: see tsr_span_alloc. */
static tsr_page_t *used_span_for(uint32_t slices, unsigned want_pages) {
  return mark_used(&heap, tsr_span_alloc(&heap, slices, 1, want_pages), slices);
}

static tsr_page_t *used_span(uint32_t slices) { return used_span_for(slices, 0); }

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
      spans[i] = tsr_span_alloc(&heap, slices, align, 0);
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
  tsr_page_t *a = tsr_span_alloc(&heap, 3, 1, 0);
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
  /* Noted pages (page.c, dirty tails) of an unmapped segment are forgotten
   * with it; one in the segment that stays is kept. */
  CHECK(segments >= 2);
  heap.tail_dirty_count = 0;
  for (tsr_segment_t *s = heap.segments; s != NULL; s = s->next)
    heap.tail_dirty[heap.tail_dirty_count++].page = (tsr_page_t *)s + 1;
  size_t released = tsr_span_purge_due(&heap, tsr_platform_clock_ms() + 1000000, true, false);
  CHECK(released > 0);
  CHECK(heap.segments != NULL && heap.segments->next == NULL);   /* all but the last segment unmapped */
  CHECKF(heap.tail_dirty_count == 1 && tsr_segment_of(heap.tail_dirty[0].page) == heap.segments,
         "%u noted pages left", heap.tail_dirty_count);
  heap.tail_dirty_count = 0;
  tsr_page_t *z = tsr_span_alloc(&heap, 5, 1, 0);
  CHECK(z != NULL && z->is_zero);
  z->kind = TSR_PAGE_LARGE;
  tsr_span_mark_used(z, 5);
  tsr_span_free(&heap, z);
  tsr_span_purge_due(&heap, tsr_platform_clock_ms(), true, false);

  /* Two neighbours freed at different times form one free run. The run
   * goes back when its newest slice is due; before that, a slice free for
   * TSR_PURGE_STALE_FACTOR delays goes back alone, so a run that keeps
   * gaining fresh neighbours does not hold its memory for ever. The free
   * times are set by hand: the test needs no sleeping. */
  CHECK_SECTION("purge by slice age");
  tsr_page_t *older = used_span(2), *newer = used_span(2), *fence = used_span(1);
  CHECK(older != NULL && newer != NULL && fence != NULL);
  CHECK(newer == older + 2 && fence == newer + 2);   /* address order from a fresh segment */
  memset(tsr_slice_start(older), 1, 4 * TSR_SLICE_SIZE);
  tsr_span_free(&heap, older);
  tsr_span_free(&heap, newer);
  CHECKF(older->kind == TSR_PAGE_FREE && older->slice_count == 4, "one free run of 4 slices: %u", older->slice_count);
  uint64_t delay = (uint64_t)tsr_option_long(TSR_OPT_PURGE_DELAY), stale = delay * TSR_PURGE_STALE_FACTOR;
  uint64_t t_old = older[0].free_time_ms, t_new = t_old + stale + 50;
  CHECK(t_old != 0 && delay > 0);
  older[2].free_time_ms = older[3].free_time_ms = t_new;
  released = tsr_span_purge_due(&heap, t_old + delay, false, false);   /* older due, not stale */
  CHECKF(released == 0, "released %zu bytes while the run's newest slices wait", released);
  CHECK(heap.purge_due_ms == t_new + delay || heap.purge_due_ms == t_old + stale);
  released = tsr_span_purge_due(&heap, t_new, false, false);                /* older stale */
  CHECKF(released == 2 * TSR_SLICE_SIZE, "released %zu bytes, want the older 2 slices", released);
  CHECK(older[0].free_time_ms == 0 && older[1].free_time_ms == 0 && older[2].free_time_ms == t_new);
  CHECK(!older->is_purged && heap.purge_due_ms == t_new + delay);
  CHECK(tsr_span_check(&heap));
  CHECK(tsr_span_purge_due(&heap, t_new + delay, false, false) == 2 * TSR_SLICE_SIZE);
  CHECK(older->is_purged && older->is_zero);

  /* Two free spans of one bin, a clean one first in the list and a dirty
   * one behind it: the dirty one is taken, its memory being resident. */
  CHECK_SECTION("dirty first within a bin");
  tsr_span_free(&heap, fence);
  tsr_span_purge_due(&heap, tsr_platform_clock_ms(), true, false);
  tsr_page_t *wide = used_span(5), *gap1 = used_span(1), *dirty = used_span(2), *gap2 = used_span(1);
  CHECK(wide != NULL && gap1 != NULL && dirty != NULL && gap2 != NULL);
  tsr_span_free(&heap, wide);
  tsr_span_purge_due(&heap, tsr_platform_clock_ms(), true, false);   /* wide: clean */
  memset(tsr_slice_start(dirty), 1, 2 * TSR_SLICE_SIZE);
  tsr_span_free(&heap, dirty);
  tsr_page_t *cut = used_span(3);                     /* from wide: its 2-slice rest heads the bin */
  CHECK(cut == wide);
  tsr_page_t *clean = wide + 3;
  CHECK(clean->kind == TSR_PAGE_FREE && clean->slice_count == 2 && heap.span_bin[1] == clean);
  tsr_page_t *got = used_span(2);
  CHECKF(got == dirty, "took slice %zu, want the dirty span at %zu (the clean one is at %zu)",
         got ? tsr_slice_index(got) : 0, tsr_slice_index(dirty), tsr_slice_index(clean));
  CHECK(tsr_span_check(&heap));

  /* A clean span of the exact length, and a dirty one of a larger bin: the
   * dirty one is split, its memory being resident. */
  CHECK_SECTION("dirty first across bins");
  tsr_page_t *exact = used_span(2), *gap3 = used_span(1), *big = used_span(6), *gap4 = used_span(1);
  CHECK(exact != NULL && gap3 != NULL && big != NULL && gap4 != NULL);
  tsr_span_free(&heap, exact);
  tsr_span_purge_due(&heap, tsr_platform_clock_ms(), true, false);   /* exact: clean */
  CHECK(exact->is_purged);
  memset(tsr_slice_start(big), 1, 6 * TSR_SLICE_SIZE);
  tsr_span_free(&heap, big);
  CHECK(big->free_time_ms != 0);
  got = used_span(2);
  CHECKF(got == big, "took slice %zu, want the dirty span at %zu (the clean one is at %zu)",
         got ? tsr_slice_index(got) : 0, tsr_slice_index(big), tsr_slice_index(exact));
  CHECK(tsr_span_check(&heap));

  /* Dirty slices hold what their last page touched. A page expected to
   * fill its slice takes one that holds all 16 OS pages; a page expected to
   * carve a few KiB takes the one that holds at least that with the fewest
   * to spare, not the full one (whose memory it would leave resident and
   * unused while the filling class touches clean memory). The slices are
   * apart, so they do not coalesce. */
  CHECK_SECTION("a one-slice page on the slice that holds what it will touch");
  tsr_page_t *full = used_span(1), *gap5 = used_span(1), *one = used_span(1), *gap6 = used_span(1),
             *four = used_span(1), *gap7 = used_span(1);
  CHECK(full != NULL && gap5 != NULL && one != NULL && gap6 != NULL && four != NULL && gap7 != NULL);
  full->carved_size = TSR_SLICE_SIZE;
  one->carved_size = 100;
  four->carved_size = 3 * TSR_OS_PAGE_SIZE + 1;
  tsr_span_free(&heap, full);   /* freed first: deepest in its bin */
  tsr_span_free(&heap, one);
  tsr_span_free(&heap, four);
  CHECKF(full->resident_pages == 16 && one->resident_pages == 1 && four->resident_pages == 4,
         "resident pages %u, %u, %u; want 16, 1, 4", full->resident_pages, one->resident_pages, four->resident_pages);
  CHECK(tsr_span_check(&heap));
  got = used_span_for(1, 16);
  CHECKF(got == full, "a filling page took slice %zu, want the full one at %zu", got ? tsr_slice_index(got) : 0,
         tsr_slice_index(full));
  got = used_span_for(1, 2);
  CHECKF(got == four, "a 2-page page took slice %zu, want the 4-page one at %zu", got ? tsr_slice_index(got) : 0,
         tsr_slice_index(four));
  got = used_span_for(1, 1);
  CHECKF(got == one, "a 1-page page took slice %zu, want the 1-page one at %zu", got ? tsr_slice_index(got) : 0,
         tsr_slice_index(one));
  CHECK(tsr_span_check(&heap));
  /* A slice keeps what it held under its next page: freed with less
   * carved, it still holds the old pages; purged, nothing. */
  got->carved_size = 0;
  tsr_span_free(&heap, got);
  CHECK(one->resident_pages == 1);
  tsr_span_purge_due(&heap, tsr_platform_clock_ms(), true, false);
  CHECK(one->resident_pages == 0 && one->free_time_ms == 0);
  CHECK(tsr_span_check(&heap));

  /* The purge delay rises for a heap whose purged memory is taken again
   * soon after the purge, not for memory purged long ago, and falls back
   * after eight delays without that. A heap of its own, so the layout is
   * known: slice 0 metadata, the span under test at 1-2, a fence at 3. */
  CHECK_SECTION("purge delay rises when purged memory is soon needed again");
  static tsr_heap_t heap2;
  for (size_t d = 0; d < TSR_DIRECT_COUNT; d++) heap2.direct[d] = &tsr_page_empty;
  heap2.secret = tsr_secret;
  tsr_page_t *span = tsr_span_alloc(&heap2, 2, 1, 0);
  tsr_page_t *wall = mark_used(&heap2, tsr_span_alloc(&heap2, 1, 1, 0), 1);
  CHECK(span != NULL && wall == span + 2 && tsr_slice_index(span) == 1);
  for (int step = 0; step < 2; step++) {
    mark_used(&heap2, span, 2);
    span->carved_size = 2 * TSR_SLICE_SIZE;
    memset(tsr_slice_start(span), 1, 2 * TSR_SLICE_SIZE);
    tsr_span_free(&heap2, span);
    uint64_t now = tsr_platform_clock_ms();
    span[0].free_time_ms = span[1].free_time_ms = now - 2 * delay;   /* due */
    released = tsr_span_purge_due(&heap2, now, false, false);
    CHECKF(released == 2 * TSR_SLICE_SIZE, "released %zu bytes", released);
    CHECK(span[0].was_purged && span[1].was_purged && heap2.purge_released_ms == now);
    if (step == 0) heap2.purge_released_ms = now - 5 * delay;   /* as if purged long ago */
    got = tsr_span_alloc(&heap2, 2, 1, 0);
    CHECKF(got == span, "took slice %zu, want the purged span at 1", got ? tsr_slice_index(got) : 0);
    CHECK(!span[0].was_purged && !span[1].was_purged);
    if (step == 0) CHECKF(heap2.purge_delay_ms == 0, "delay %lu after reuse of memory purged long ago",
                          (unsigned long)heap2.purge_delay_ms);
    else CHECKF(heap2.purge_delay_ms == 2 * delay, "delay %lu after reuse of memory purged just now, want %lu",
                (unsigned long)heap2.purge_delay_ms, (unsigned long)(2 * delay));
  }
  tsr_span_purge_due(&heap2, heap2.purge_regret_ms + 8 * 2 * delay, false, false);
  CHECKF(heap2.purge_delay_ms == delay, "delay %lu after eight quiet delays, want %lu", (unsigned long)heap2.purge_delay_ms,
         (unsigned long)delay);
  mark_used(&heap2, span, 2);
  CHECK(tsr_span_check(&heap2));

  CHECK_SECTION("purges and stats read the dirty stretch's descriptors only");
  /* mincore counts a page as resident once read, on kernels that map the
   * zero page for a read as on those that back it with a fresh one. */
  static tsr_heap_t heap3;
  for (size_t d = 0; d < TSR_DIRECT_COUNT; d++) heap3.direct[d] = &tsr_page_empty;
  heap3.secret = tsr_secret;
  tsr_page_t *sa = mark_used(&heap3, tsr_span_alloc(&heap3, 1, 1, 0), 1);
  tsr_page_t *sb = mark_used(&heap3, tsr_span_alloc(&heap3, 1, 1, 0), 1);
  tsr_page_t *sc = mark_used(&heap3, tsr_span_alloc(&heap3, 1, 1, 0), 1);
  CHECK(sa != NULL && sb == sa + 1 && sc == sa + 2 && tsr_slice_index(sa) == 1);
  tsr_page_t *ends[3] = {sa, sb, sc};
  for (int i = 0; i < 3; i++) {
    ends[i]->carved_size = TSR_SLICE_SIZE;
    memset(tsr_slice_start(ends[i]), 1, TSR_SLICE_SIZE);
  }
  tsr_span_free(&heap3, sb);   /* alone: slices 2 */
  CHECKF(sb->dirty_lo == 0 && sb->dirty_hi == 1, "freed slice: dirty [%u, %u)", sb->dirty_lo, sb->dirty_hi);
  tsr_span_free(&heap3, sc);   /* joins sb and the clean rest: slices 2..511 */
  CHECKF(sb->slice_count == TSR_SLICE_COUNT - 2 && sb->dirty_lo == 0 && sb->dirty_hi == 2,
         "merged with the clean rest: %u slices, dirty [%u, %u)", sb->slice_count, sb->dirty_lo, sb->dirty_hi);
  tsr_span_free(&heap3, sa);   /* the whole segment: slices 1..511 */
  CHECKF(sa->slice_count == TSR_SLICE_COUNT - 1 && sa->dirty_lo == 0 && sa->dirty_hi == 3,
         "whole segment free: %u slices, dirty [%u, %u)", sa->slice_count, sa->dirty_lo, sa->dirty_hi);
  CHECK(tsr_span_dirty_bytes(sa, sa->slice_count) == 3 * TSR_SLICE_SIZE);
  uint64_t later = tsr_platform_clock_ms() + 100 * delay;
  released = tsr_span_purge_due(&heap3, later, false, false);
  CHECKF(released == 3 * TSR_SLICE_SIZE, "released %zu bytes, want 3 slices", released);
  CHECK(sa->is_purged && tsr_span_dirty_bytes(sa, sa->slice_count) == 0);
  /* Slice 0's OS pages hold the descriptors: the first (the header and
   * slices 1..31) and the last (slice 511, the free span's end) are
   * written; none between them may have been read. */
  unsigned char v[TSR_SLICE_SIZE / TSR_OS_PAGE_SIZE];
  tsr_segment_t *seg3 = tsr_segment_of(sa);
  CHECK(mincore(seg3, TSR_SLICE_SIZE, v) == 0);
  size_t read_between = 0;
  for (size_t i = 1; i + 1 < sizeof v; i++) read_between += v[i] & 1;
  CHECKF(read_between == 0, "%zu OS pages of descriptors between the first and the last were touched", read_between);
  CHECK(tsr_span_check(&heap3));

  CHECK_SECTION("a given free slice taken out of its span");
  /* Four one-slice spans in a row; the first three freed (dirty) merge
   * into one span, the fourth is a wall. */
  tsr_page_t *row[4];
  for (int i = 0; i < 4; i++) {
    row[i] = mark_used(&heap3, tsr_span_alloc(&heap3, 1, 1, 0), 1);
    row[i]->carved_size = TSR_SLICE_SIZE;
    memset(tsr_slice_start(row[i]), 2, TSR_SLICE_SIZE);
  }
  CHECK(row[1] == row[0] + 1 && row[2] == row[0] + 2 && row[3] == row[0] + 3);
  CHECK(tsr_span_alloc_slice(&heap3, row[3], 16) == NULL);   /* used */
  for (int i = 0; i < 3; i++) tsr_span_free(&heap3, row[i]);
  CHECK(row[0]->kind == TSR_PAGE_FREE && row[0]->slice_count == 3);
  CHECK(tsr_span_alloc_slice(&heap2, row[1], 16) == NULL);   /* another heap's segment */
  CHECK(tsr_span_alloc_slice(&heap3, row[1], 15) == NULL);   /* holds 16 OS pages: more than asked */
  tsr_page_t *mid = tsr_span_alloc_slice(&heap3, row[1], 16);
  CHECKF(mid == row[1], "took %p, want the middle slice %p", (void *)mid, (void *)row[1]);
  CHECK(row[0]->kind == TSR_PAGE_FREE && row[0]->slice_count == 1 && row[2]->kind == TSR_PAGE_FREE &&
        row[2]->slice_count == 1);
  mark_used(&heap3, mid, 1);
  CHECK(tsr_span_check(&heap3));
  tsr_span_purge_due(&heap3, tsr_platform_clock_ms(), true, false);
  CHECK(tsr_span_alloc_slice(&heap3, row[2], 16) == NULL);   /* purged: clean */
  CHECK(tsr_span_check(&heap3));
  return check_done("unit-span");
}
