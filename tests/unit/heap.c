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

enum { XFER_SIZE = 256 };

/* Free every block of `blocks` (another thread's), with a heap of our own;
 * then stay alive (the heap not abandoned, so no other thread adopts it)
 * until the main thread is done with the next step. */
static pthread_barrier_t xfer_step;
static void *free_all(void *arg) {
  (void)arg;
  free(malloc(16));
  for (int i = 0; i < N; i++) free(blocks[i]);
  pthread_barrier_wait(&xfer_step);
  pthread_barrier_wait(&xfer_step);
  return NULL;
}

static size_t xfer_blocks(unsigned c) {
  size_t n = 0;
  for (unsigned i = 0; i < TSR_XFER_SLOTS; i++)
    n += tsr_xfer_count(atomic_load(&tsr_page_xfer[c].slot[i]));
  return n;
}

/* Allocate 64 blocks of the class; count those of the main thread's pages. */
static int taken_main;
static void *take_some(void *arg) {
  (void)arg;
  void *p[64];
  for (int i = 0; i < 64; i++) p[i] = malloc(XFER_SIZE);
  for (int i = 0; i < 64; i++)
    taken_main += (tsr_page_owner(tsr_page_of(p[i])) & ~TSR_OWNER_SLOW) == (uintptr_t)&tsr_heap_main;
  for (int i = 0; i < 64; i++) free(p[i]);
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

  CHECK_SECTION("central transfer");
  /* A thread that frees more of a class than it allocates hands its full
   * reuse lists to the central transfer (page.c); the heap that owns them
   * (or the one that put them) takes one at its next slow path of the
   * class, before it looks at its own pages. A third heap leaves them
   * (they would keep the owner's pages alive), and housekeeping or trim
   * sends them home. */
  unsigned xc = tsr_size_class(XFER_SIZE);
  for (int i = 0; i < N; i++) blocks[i] = malloc(XFER_SIZE);   /* this (live) thread's pages */
  pthread_barrier_init(&xfer_step, NULL, 2);
  pthread_t freer;
  pthread_create(&freer, NULL, free_all, NULL);
  pthread_barrier_wait(&xfer_step);
  size_t central = xfer_blocks(xc);
  size_t full = (size_t)TSR_XFER_SLOTS * (TSR_REUSE_BYTES / XFER_SIZE);   /* every slot: a full list */
  CHECKF(central == full, "%zu blocks in the central transfer, not %zu", central, full);
  CHECK(tsr_invariant_check() == 0);             /* walks the central lists too */
  pthread_create(&t, NULL, take_some, NULL);
  pthread_join(t, NULL);
  CHECKF(taken_main == 0, "another heap took %d of the main heap's blocks", taken_main);
  CHECK(xfer_blocks(xc) == central);
  pthread_barrier_wait(&xfer_step);
  pthread_join(freer, NULL);
  /* The blocks that went home batch by batch wait on our pages; a list
   * comes back at the first slow path, once the first page's carved
   * blocks are used (at most one extension's worth). */
  int m = 0;
  while (m < N && xfer_blocks(xc) == central) blocks[m++] = malloc(XFER_SIZE);
  CHECKF(m <= TSR_PAGE_EXTEND_SIZE / XFER_SIZE + 1, "a list came back after %d mallocs (%d blocks had gone home)", m,
         N - (int)central);
  CHECK(xfer_blocks(xc) < central);
  CHECK(tsr_heap_get()->reuse_page[xc].free != NULL);
  for (int i = 0; i < m; i++) free(blocks[i]);
  malloc_trim(0);                                /* sends what is left home */
  CHECK(xfer_blocks(xc) == 0);
  CHECK(tsr_invariant_check() == 0);

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
