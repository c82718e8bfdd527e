/* heap.c -- remote frees reach the owner's pages through the pending list;
 * a thread's heap is abandoned at exit and adopted by the next thread, with
 * the frees made meanwhile by others collected, none lost. */
#include "unit.h"

enum { N = 5000 };
static void *blocks[N];
static tsr_heap_t *seen_heap;

static void *allocate(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) blocks[i] = malloc(32 + (size_t)(i % 7) * 16);
  seen_heap = tsr_heap_get();
  return NULL;
}

static void *adopt(void *arg) {
  (void)arg;
  void *p = malloc(32);
  seen_heap = tsr_heap_get();
  free(p);
  return NULL;
}

int main(void) {
  CHECK_SECTION("remote free");
  pthread_t t;
  pthread_create(&t, NULL, allocate, NULL);
  pthread_join(t, NULL);
  tsr_heap_t *exited = seen_heap;
  CHECK(exited != NULL && exited != tsr_heap_get());
  CHECK(exited->is_abandoned);
  for (int i = 0; i < N; i++) free(blocks[i]);      /* remote: the owner thread is gone */
  /* Remote frees are batched per page; at most a few batches wait in this
   * thread's heap until its next slow path. */
  size_t batched = 0;
  for (unsigned i = 0; i < TSR_REMOTE_BATCH_SLOTS; i++) batched += tsr_heap_get()->remote[i].count;
  CHECK(batched <= TSR_REMOTE_BATCH_SLOTS * TSR_REMOTE_BATCH_COUNT);
  /* Small blocks may be kept for reuse by this thread (free.c): send them
   * home too, as thread exit, trim and peers do. */
  CHECK(tsr_heap_get()->reuse_total <= (TSR_REUSE_CLASSES - 1) * TSR_REUSE_COUNT);
  tsr_free_flush_reuse(tsr_heap_get());
  CHECK(tsr_heap_get()->reuse_total == 0);
  tsr_free_flush_remote(tsr_heap_get());
  CHECK(atomic_load(&exited->pending) != NULL);

  CHECK_SECTION("adoption");
  pthread_create(&t, NULL, adopt, NULL);
  pthread_join(t, NULL);
  CHECK(seen_heap == exited);                     /* the abandoned heap was reused */
  CHECK(atomic_load(&exited->pending) == NULL);  /* and its remote frees collected */
  size_t live = 0;
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++)
    for (tsr_page_t *p = exited->queue[c].first; p; p = p->next) live += tsr_page_live_count(exited, p);
  CHECKF(live == 0, "%zu blocks still live in the adopted heap", live);

  CHECK_SECTION("trim");
  void *big[64];
  for (int i = 0; i < 64; i++) big[i] = malloc(200000);
  for (int i = 0; i < 64; i++) free(big[i]);
  tsr_stats_t before, after;
  before.struct_size = after.struct_size = 0;
  tsr_stats_get(&before);
  CHECK(malloc_trim(0) == 1);
  tsr_stats_get(&after);
  CHECKF(after.free_span_bytes < before.free_span_bytes || before.free_span_bytes == 0,
         "free spans %lu -> %lu", (unsigned long)before.free_span_bytes, (unsigned long)after.free_span_bytes);
  CHECK(after.free_span_bytes == 0);
  return check_done("unit-heap");
}
