/* page.c -- class pages: blocks are distinct, aligned and reused; the head
 * bias keeps the only page of a class alive through a malloc/free loop;
 * emptied extra pages are retired; the heap's invariants hold throughout;
 * the double-free mark is set on free and cleared on malloc; free-list links
 * are stored encoded; a page made on a dirty span gives its uncarved tail
 * back once due; a class's new page goes on the slice its last page gave
 * back, even inside a free span. */
#include "unit.h"

#include <sys/mman.h>

static size_t resident_pages(const void *start, size_t bytes) {
  unsigned char v[TSR_SLICE_SIZE / TSR_OS_PAGE_SIZE * 16];
  size_t n = bytes / TSR_OS_PAGE_SIZE, r = 0;
  if (n > sizeof v || mincore((void *)start, bytes, v) != 0) return SIZE_MAX;
  for (size_t i = 0; i < n; i++) r += v[i] & 1;
  return r;
}

/* Runs on a thread of its own: a fresh heap, whose first segment hands
 * out slices in order. */
static void *class_slice_thread(void *arg) {
  (void)arg;
  /* Four classes above 8 KiB (their empty pages retire at once), one page
   * each, made in this order so that they sit side by side: W, X, Y full
   * (each class then expects to fill its next page), Z a wall that stays. */
  enum { W_SIZE = 16384, X_SIZE = 12288, Y_SIZE = 14336, Z_SIZE = 10240 };
  const size_t sizes[4] = {W_SIZE, X_SIZE, Y_SIZE, Z_SIZE};
  void *wxyz[4][8] = {{0}};
  size_t counts[4];
  for (int k = 0; k < 4; k++) {
    wxyz[k][0] = malloc(sizes[k]);
    memset(wxyz[k][0], k + 1, sizes[k]);
  }
  tsr_page_t *pw = tsr_page_of(wxyz[0][0]), *px = tsr_page_of(wxyz[1][0]);
  tsr_page_t *py = tsr_page_of(wxyz[2][0]), *pz = tsr_page_of(wxyz[3][0]);
  bool side_by_side = px == pw + 1 && py == px + 1 && pz == py + 1 && pw->slice_count == 1 && px->slice_count == 1;
  CHECKF(side_by_side, "pages at slices %zu %zu %zu %zu, want four in a row", tsr_slice_index(pw), tsr_slice_index(px),
         tsr_slice_index(py), tsr_slice_index(pz));
  for (int k = 0; k < 3; k++) {
    counts[k] = tsr_page_of(wxyz[k][0])->reserved;
    for (size_t i = 1; i < counts[k] && i < 8; i++) {
      wxyz[k][i] = malloc(sizes[k]);
      memset(wxyz[k][i], k + 1, sizes[k]);
    }
  }
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < counts[k] && i < 8; i++) free(wxyz[k][i]);
  CHECK(pw->kind == TSR_PAGE_FREE && px->kind == TSR_PAGE_FREE && py->kind == TSR_PAGE_FREE);
  /* X's slice is now inside one free span (W's, X's, Y's), between W's
   * full slice and Y's: a fit by expected extent alone takes W's. */
  void *x2 = malloc(X_SIZE);
  memset(x2, 7, X_SIZE);
  CHECKF(tsr_page_of(x2) == px, "X's new page at slice %zu, want its old slice %zu", tsr_slice_index(tsr_page_of(x2)),
         tsr_slice_index(px));
  CHECK(tsr_check_heap() == 0);
  free(x2);
  free(wxyz[3][0]);

  return NULL;
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

  /* Pages of 4 KiB blocks fill their slices, then retire: their spans are
   * free and dirty. A new class's page lands on one of them and uses 8 KiB;
   * the rest of its slice is resident from the old page until the tail
   * purge gives it back, without touching the carved block. */
  CHECK_SECTION("dirty tails");
  enum { BIG = 64 };
  static void *big[BIG];
  for (int i = 0; i < BIG; i++) { big[i] = malloc(4096); memset(big[i], 7, 4096); }
  for (int i = 0; i < BIG; i++) free(big[i]);
  tsr_heap_t *heap = tsr_heap_get();
  uint32_t noted = heap->tail_dirty_count;
  unsigned char *q = malloc(5000);
  memset(q, 9, 5000);
  tsr_page_t *qp = tsr_page_of(q);
  CHECKF(qp->kind == TSR_PAGE_SMALL && qp->slice_count == 1 && qp->carved_size < 2 * TSR_OS_PAGE_SIZE,
         "page of the 5000-byte block: %u slices, %u bytes carved", qp->slice_count, qp->carved_size);
  CHECKF(qp->free_time_ms != 0 && heap->tail_dirty_count == noted + 1, "the page is noted: %u -> %u",
         noted, heap->tail_dirty_count);
  size_t before = resident_pages(qp->area, TSR_SLICE_SIZE);
  CHECKF(before == TSR_SLICE_SIZE / TSR_OS_PAGE_SIZE, "%zu of 16 OS pages resident before", before);
  /* The first look notes how far the page has carved; a page that carved
   * more since is left alone; the next look, with nothing carved since,
   * gives the rest back. */
  uint64_t later = qp->free_time_ms + 1000000;
  CHECK(tsr_page_purge_tails(heap, later, false) == 0);
  unsigned char *q2 = malloc(5000);
  memset(q2, 9, 5000);
  CHECK(tsr_page_of(q2) == qp && qp->carved_size == 2 * qp->block_size);
  CHECK(tsr_page_purge_tails(heap, later, false) == 0);   /* it grew */
  size_t released = tsr_page_purge_tails(heap, later, false);
  CHECKF(released >= TSR_SLICE_SIZE - 3 * TSR_OS_PAGE_SIZE, "released %zu", released);
  size_t after = resident_pages(qp->area, TSR_SLICE_SIZE);
  CHECKF(after == 3, "%zu OS pages resident after, want the 3 the two blocks use", after);
  CHECK(qp->free_time_ms == 0 && heap->tail_dirty_count == 0);   /* all were due */
  bool intact = true;
  for (int i = 0; i < 5000; i++) intact &= q[i] == 9 && q2[i] == 9;
  CHECK(intact);
  void *more[8];
  for (int i = 0; i < 8; i++) { more[i] = malloc(5000); memset(more[i], i, 5000); }   /* carves into the purged tail */
  CHECK(tsr_check_heap() == 0);
  for (int i = 0; i < 8; i++) free(more[i]);
  free(q2);
  free(q);

  CHECK_SECTION("a class's new page on the slice it gave back");
  pthread_t slice_thread;
  CHECK(pthread_create(&slice_thread, NULL, class_slice_thread, NULL) == 0);
  pthread_join(slice_thread, NULL);

  CHECK_SECTION("stats");
  tsr_stats_t s;
  s.struct_size = 0;
  CHECK(tsr_stats_get(&s) == 0);
  CHECK(s.malloc_count >= N && s.free_count >= N);
  return check_done("unit-page");
}
