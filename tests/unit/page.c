/* page.c -- class pages: blocks are distinct, aligned and reused; the head
 * bias keeps the only page of a class alive through a malloc/free loop;
 * emptied extra pages are retired; the heap's invariants hold throughout;
 * the double-free mark is set on free and cleared on malloc; free-list links
 * are stored encoded. */
#include "unit.h"

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

  CHECK_SECTION("stats");
  tsr_stats_t s;
  s.struct_size = 0;
  CHECK(tsr_stats_get(&s) == 0);
  CHECK(s.malloc_count >= N && s.free_count >= N);
  return check_done("unit-page");
}
