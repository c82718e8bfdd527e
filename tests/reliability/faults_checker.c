/* faults_checker.c -- the invariant checker that faults.c relies on must
 * itself be able to fail: each case below breaks one structure the way a
 * bug would (a count off by one, a block on a free list twice, a link out of
 * its page, a span missing from its bin, a stray segment-map slot, ...) in a
 * forked child, and tsr_invariant_check() must report it; the same heap
 * before the damage must check clean. The allocator is compiled in.
 */
#include "../../src/unity.c"
#include "../api/check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static tsr_page_t *page_of_block(void *p) { return tsr_page_of(p); }

/* State every case starts from: pages of a few classes with free blocks,
 * a full page, a large block, a huge block, a free span, an exited thread's
 * heap with blocks freed to it from here. */
static void *small[64], *full_page[4096], *large_block, *huge_block, *orphan[64], *kept[8];
static size_t full_count;

static void *thread_alloc(void *arg) {
  (void)arg;
  for (int i = 0; i < 64; i++) orphan[i] = malloc(96);
  for (int i = 0; i < 8; i++) kept[i] = malloc(160);
  return NULL;
}

static void setup(void) {
  for (int i = 0; i < 64; i++) small[i] = malloc(48);
  for (int i = 0; i < 64; i += 2) free(small[i]);
  /* Fill one page of 2048-byte blocks: it leaves its queue, marked full. */
  void *first = malloc(2048);
  full_page[full_count++] = first;
  while (full_count < 4096) {
    void *p = malloc(2048);
    full_page[full_count++] = p;
    if (page_of_block(p) != page_of_block(first)) break;
  }
  large_block = malloc(300000);
  huge_block = malloc(3u << 20);
  void *gap = malloc(500000);   /* freed: a free span between used ones */
  void *after = malloc(200000);
  free(gap);
  (void)after;
  pthread_t t;
  pthread_create(&t, NULL, thread_alloc, NULL);
  pthread_join(t, NULL);
  for (int i = 0; i < 64; i += 2) free(orphan[i]);   /* remote frees, kept for reuse (free.c) */
  tsr_free_flush_reuse(tsr_heap_get());                /* sent home: some still batched */
  for (int i = 0; i < 8; i++) free(kept[i]);           /* these stay on the reuse list */
}

/* ---- the damage, one kind per case ------------------------------------------------- */

static tsr_page_t *small_page(void) { return page_of_block(small[1]); }

static void break_used_count(void) { small_page()->used++; }

static void break_free_twice(void) {
  /* The local list's second block links back to the first: a cycle, as a
   * double free that slipped past free() would make. */
  tsr_page_t *page = small_page();
  tsr_block_t *a = page->free, *b = tsr_decode(tsr_secret, a->next_encoded);
  b->next_encoded = tsr_encode(tsr_secret, a);
}

static void break_link_outside(void) {
  tsr_page_t *page = small_page();
  page->free->next_encoded = tsr_encode(tsr_secret, (uint8_t *)large_block + 64);
}

static void break_link_misaligned(void) {
  tsr_page_t *page = small_page();
  page->free->next_encoded = tsr_encode(tsr_secret, (uint8_t *)small[1] + 16);
}

static void break_capacity(void) { small_page()->capacity--; }

static void break_live_mark(void) {
  /* A live block that looks free: its free() would be reported as a double free. */
  ((tsr_block_t *)small[1])->free_mark = (uintptr_t)small[1] ^ tsr_secret;
}

static void break_bin(void) {
  /* Unlink the first free span of the first non-empty bin, as a lost update would. */
  tsr_heap_t *heap = tsr_heap_get();
  unsigned b = (unsigned)__builtin_ctz(heap->span_bin_mask);
  heap->span_bin[b] = heap->span_bin[b]->next;
  if (heap->span_bin[b] != NULL) heap->span_bin[b]->prev = NULL;
  else heap->span_bin_mask &= ~(1u << b);
}

static void break_bin_mask(void) {
  tsr_heap_t *heap = tsr_heap_get();
  heap->span_bin_mask |= 1u << (31 - __builtin_clz(~heap->span_bin_mask & 0x7fffffffu));
}

static void break_boundary_tag(void) {
  tsr_heap_t *heap = tsr_heap_get();
  tsr_page_t *span = heap->span_bin[__builtin_ctz(heap->span_bin_mask)];
  span[span->slice_count - 1].slice_count++;
}

static void break_segment_count(void) { tsr_segment_of(small[1])->free_slice_count--; }

static void break_segmap_stray(void) {
  uintptr_t slot = (uintptr_t)tsr_segment_of(small[1]) + ((uintptr_t)1000 << TSR_SEGMENT_SHIFT);
  if (tsr_segmap_kind(slot) == TSR_SEGMAP_NONE) tsr_segmap[slot >> TSR_SEGMENT_SHIFT] = TSR_SEGMAP_SEGMENT;
  else tsr_segmap[(slot >> TSR_SEGMENT_SHIFT) + 1] = TSR_SEGMAP_HUGE_TAIL;
}

static void break_direct(void) { tsr_heap_get()->direct[20] = small_page(); }   /* 320 bytes: another class */

static void break_queue_last(void) {
  tsr_heap_t *heap = tsr_heap_get();
  tsr_page_queue_t *q = &heap->queue[small_page()->size_class];
  q->last = NULL;
}

static void break_full_flag(void) {
  /* A full page whose slow flag is lost: its next free takes the fast path
   * and the page never returns to its queue. */
  tsr_page_t *page = page_of_block(full_page[0]);
  tsr_page_set_owner(page, (uintptr_t)tsr_heap_get());
}

static void break_large(void) { page_of_block(large_block)->used = 0; }

static void break_huge_size(void) { tsr_huge_segment_of(huge_block)->huge_size += 4096; }

static void break_page_bytes(void) { tsr_os_account_pages(TSR_SLICE_SIZE); }

static void break_huge_count(void) { atomic_fetch_add(&tsr_os_counters.huge_count, 1); }

static void break_abandoned(void) { tsr_heap_get()->is_abandoned = true; }

static void break_thread_free_count(void) {
  /* The thread-free head says one block more than its list holds. */
  for (tsr_heap_t *h = tsr_heap_all; h != NULL; h = h->all_next) {
    if (!h->is_abandoned) continue;
    tsr_page_t *page = page_of_block(orphan[1]);
    tsr_free_flush_remote(tsr_heap_get());
    uintptr_t tf = atomic_load(&page->thread_free);
    atomic_store(&page->thread_free, tf + ((uintptr_t)1 << TSR_REMOTE_COUNT_SHIFT));
    return;
  }
}

static void break_pending(void) {
  /* Remote frees pushed onto a page, but the page is not on its heap's
   * pending list: the owner would never collect them. */
  tsr_page_t *page = page_of_block(orphan[1]);
  tsr_free_flush_remote(tsr_heap_get());
  tsr_heap_t *owner = (tsr_heap_t *)(tsr_page_owner(page) & ~TSR_OWNER_SLOW);
  atomic_store(&owner->pending, NULL);
}

static void break_batch(void) {
  tsr_heap_t *heap = tsr_heap_get();
  for (unsigned i = 0; i < TSR_REMOTE_BATCH_SLOTS; i++)
    if (heap->remote[i].page != NULL) { heap->remote[i].count++; return; }
  heap->remote_pending++;   /* no batch waiting: then its count is wrong */
}

static void break_reuse(void) {
  tsr_heap_t *heap = tsr_heap_get();
  heap->reuse_count[tsr_size_class(160)]++;
}

static const struct { const char *name; void (*damage)(void); } cases[] = {
  { "used count", break_used_count },       { "block twice", break_free_twice },
  { "link outside", break_link_outside },   { "link misaligned", break_link_misaligned },
  { "capacity", break_capacity },           { "live block marked free", break_live_mark },           { "span not binned", break_bin },
  { "bin mask", break_bin_mask },           { "boundary tag", break_boundary_tag },
  { "segment count", break_segment_count }, { "stray map slot", break_segmap_stray },
  { "direct table", break_direct },         { "queue last", break_queue_last },
  { "full flag", break_full_flag },         { "large used", break_large },
  { "huge size", break_huge_size },         { "page_bytes", break_page_bytes },
  { "huge_count", break_huge_count },       { "abandoned flag", break_abandoned },
  { "thread-free count", break_thread_free_count }, { "pending list", break_pending },
  { "remote batch", break_batch },          { "reuse list", break_reuse },
};

int main(void) {
  CHECK_SECTION("clean");
  setup();
  CHECKF(tsr_invariant_check() == 0, "a healthy heap fails the check");
  CHECK_SECTION("damaged");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      close(2);   /* the reports of the intended damage are not news */
      cases[i].damage();
      _exit(tsr_invariant_check() != 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %s", cases[i].name,
           WIFEXITED(st) ? "not detected" : "the checker crashed");
  }
  CHECK_SECTION("clean after");
  CHECKF(tsr_invariant_check() == 0, "the parent's heap fails the check");
  return check_done("faults_checker");
}
