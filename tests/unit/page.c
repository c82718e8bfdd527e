/* page.c -- class pages: blocks are distinct, aligned and reused; the head
 * bias keeps the only page of a class alive through a malloc/free loop;
 * emptied extra pages are retired; the heap's invariants hold throughout;
 * the double-free mark is set on free and cleared on malloc; free-list links
 * are stored encoded; a page made on memory still resident from another
 * class keeps little of it when its class has no other page, all of it when
 * its class just filled one. */
#include "unit.h"

#include <sys/mman.h>

static size_t resident_os_pages(const void *start, size_t size) {
  static unsigned char vec[TSR_SLICE_SIZE / TSR_OS_PAGE_SIZE];
  size_t n = size / TSR_OS_PAGE_SIZE, count = 0;
  if (n > sizeof vec || mincore((void *)start, size, vec) != 0) return SIZE_MAX;
  for (size_t i = 0; i < n; i++) count += vec[i] & 1;
  return count;
}

/* Fill RESIDENT_PAGES pages of 2 KiB blocks and free them all: every page
 * but the class's first goes back as a dirty span, written in full; their
 * areas go to retired[]. */
enum { RESIDENT_PAGES = 4, PER_PAGE = TSR_SLICE_SIZE / 2048 };
static uint8_t *retired[RESIDENT_PAGES];

static void leave_resident_spans(void) {
  static void *blocks[RESIDENT_PAGES * PER_PAGE];
  int n = RESIDENT_PAGES * PER_PAGE;
  for (int i = 0; i < n; i++) { blocks[i] = malloc(2048); memset(blocks[i], 0x5a, 2048); }
  for (int k = 0; k < RESIDENT_PAGES; k++) retired[k] = tsr_page_of(blocks[k * PER_PAGE])->area;
  for (int i = n - 1; i >= 0; i--) free(blocks[i]);
}

static bool was_retired(const uint8_t *area) {
  for (int k = 0; k < RESIDENT_PAGES; k++)
    if (retired[k] == area && tsr_page_of(area)->block_size != 2048) return true;
  return false;
}

int main(void) {
  CHECK_SECTION("blocks");
  enum { N = 20000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(48);
    CHECK(blocks[i] != NULL && ((uintptr_t)blocks[i] & 15) == 0);
    memset(blocks[i], i & 0xff, 48);
  }
  tsr_page_t *page = tsr_page_of(blocks[0]);
  CHECK(page->kind == TSR_PAGE_SMALL && page->block_size == 48);
  size_t pages_before = 0;
  for (tsr_page_t *p = tsr_heap_get()->queue[page->size_class].first; p; p = p->next) pages_before++;
  CHECK(tsr_check_heap() == 0);
  for (int i = 0; i < N; i++) {
    unsigned char *b = blocks[i];
    if (b[47] != (i & 0xff)) { CHECKF(0, "block %d overwritten", i); break; }
  }

  CHECK_SECTION("free marks");
  tsr_block_t *b = malloc(48);               /* from the queue head: LIFO reuse */
  free(b);
  CHECK(b->free_mark == ((uintptr_t)b ^ tsr_secret));
  void *again = malloc(48);
  CHECK(again == b);
  CHECK(((tsr_block_t *)again)->free_mark == 0);
  free(again);

  CHECK_SECTION("encoded links");
  /* Two frees in a row: the second block's link names the first, stored
   * XOR the process secret, never as a plain pointer (hardening). */
  tsr_block_t *x = malloc(48), *y = malloc(48);
  free(x);
  free(y);
  CHECK(y->next_encoded == ((uintptr_t)x ^ tsr_secret));
  CHECK(y->next_encoded != (uintptr_t)x && tsr_secret != 0);
  CHECK(malloc(48) == (void *)y && malloc(48) == (void *)x);
  free(y);
  free(x);

  CHECK_SECTION("retire");
  for (int i = 0; i < N; i++) free(blocks[i]);
  CHECK(tsr_check_heap() == 0);
  size_t pages_after = 0;
  for (tsr_page_t *p = tsr_heap_get()->queue[page->size_class].first; p; p = p->next) pages_after++;
  CHECKF(pages_after == 1, "%zu pages left of %zu", pages_after, pages_before);

  CHECK_SECTION("head bias");
  tsr_page_t *head = tsr_heap_get()->queue[page->size_class].first;
  for (int i = 0; i < 1000; i++) { void *p = malloc(40); free(p); }
  CHECK(tsr_heap_get()->queue[page->size_class].first == head);
  CHECK(tsr_page_live_count(tsr_heap_get(), head) == 0);

  CHECK_SECTION("resident spans: a cold class keeps little");
  /* No purge by housekeeping meanwhile: the spans stay resident until a
   * page is made on them. */
  long delay = tsr_option_values[TSR_OPT_PURGE_DELAY].number;
  tsr_option_values[TSR_OPT_PURGE_DELAY].number = -1;
  leave_resident_spans();
  CHECK(resident_os_pages(retired[RESIDENT_PAGES - 1], TSR_SLICE_SIZE) == TSR_SLICE_SIZE / TSR_OS_PAGE_SIZE);
  void *cold = malloc(3500);   /* a class this test never used: it has no page */
  tsr_page_t *cold_page = tsr_page_of(cold);
  CHECKF(was_retired(cold_page->area), "the new page at %p should reuse a span just freed", (void *)cold_page->area);
  CHECKF(resident_os_pages(cold_page->area, TSR_SLICE_SIZE) <= 1 + 3500 / TSR_OS_PAGE_SIZE,
         "%zu OS pages resident under one 3500-byte block", resident_os_pages(cold_page->area, TSR_SLICE_SIZE));
  free(cold);

  CHECK_SECTION("resident spans: a busy class keeps all");
  leave_resident_spans();
  enum { BUSY = 1800, BUSY_PER_PAGE = TSR_SLICE_SIZE / 1792 };   /* class 1792 */
  static void *busy[2 * BUSY_PER_PAGE];
  busy[0] = malloc(BUSY);   /* the class's first page: cold, may purge */
  tsr_page_t *first_busy = tsr_page_of(busy[0]);
  uint64_t purges = atomic_load(&tsr_os_counters.purge_count);
  int made = 1;
  for (; made < 2 * BUSY_PER_PAGE; made++) {
    busy[made] = malloc(BUSY);
    if (tsr_page_of(busy[made]) != first_busy) break;   /* the class's second page */
  }
  CHECK(made < 2 * BUSY_PER_PAGE);
  tsr_page_t *second = tsr_page_of(busy[made]);
  CHECKF(was_retired(second->area), "the second page at %p should reuse a span just freed", (void *)second->area);
  CHECK(second->touched_size == TSR_SLICE_SIZE);
  CHECK(atomic_load(&tsr_os_counters.purge_count) == purges);
  for (int i = 0; i <= made; i++) free(busy[i]);
  tsr_option_values[TSR_OPT_PURGE_DELAY].number = delay;
  CHECK(tsr_check_heap() == 0);

  CHECK_SECTION("stats");
  tsr_stats_t s;
  s.struct_size = 0;
  CHECK(tsr_stats_get(&s) == 0);
  CHECK(s.malloc_count >= N && s.free_count >= N);
  return check_done("unit-page");
}
