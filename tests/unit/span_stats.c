/* span_stats.c -- free_span_bytes stays exact when a dirty free span
 * coalesces with a purged one (the bug: the merged span had one purged flag,
 * so the purged part counted as dirty and was purged again). The test keeps
 * its own model of every slice (used, dirty, clean) from its operations and
 * checks against it, after each step: the statistic, the invariants, and at
 * each forced purge the bytes purged and the RSS given back.
 */
#include "unit.h"

#include <fcntl.h>
#include <unistd.h>

static tsr_heap_t heap;
enum { USED, DIRTY, CLEAN };
static int model[TSR_SLICE_COUNT];   /* slices of the heap's one segment; fresh ones are clean */

static uint64_t model_dirty_bytes(void) {
  uint64_t n = 0;
  for (size_t i = 0; i < TSR_SLICE_COUNT; i++) n += model[i] == DIRTY;
  return n << TSR_SLICE_SHIFT;
}

/* free_span_bytes of this heap alone: the stats walk sees only it. */
static uint64_t stat_free_span_bytes(void) {
  tsr_heap_t *saved = tsr_heap_all;
  heap.all_next = NULL;
  tsr_heap_all = &heap;
  tsr_stats_t st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  int rc = tsr_stats_get(&st);
  tsr_heap_all = saved;
  CHECK(rc == 0);
  return st.free_span_bytes;
}

/* RSS in bytes, read without malloc from /proc/self/smaps_rollup, which
 * walks the page tables. Not /proc/self/statm: its counters are cached per
 * CPU and lagged by 128 KiB here, more with more CPUs, which is more than a
 * few slices' worth of doubt. */
static int64_t rss_bytes(void) {
  char buf[4096];
  int fd = open("/proc/self/smaps_rollup", O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char *s = strstr(buf, "\nRss:");
  return s ? strtoll(s + 5, NULL, 10) * 1024 : -1;
}

static size_t slice_of(tsr_page_t *span) { return tsr_slice_index(span); }

static tsr_page_t *span_take(uint32_t slices) {
  tsr_page_t *span = tsr_span_alloc(&heap, slices, 1, 0);
  CHECK(span != NULL);
  if (span == NULL) exit(1);
  span->kind = TSR_PAGE_LARGE;
  tsr_span_mark_used(span, slices);
  tsr_page_set_owner(span, (uintptr_t)&heap | TSR_OWNER_SLOW);
  memset(tsr_slice_start(span), 0x5a, (size_t)slices << TSR_SLICE_SHIFT);   /* all resident */
  for (uint32_t i = 0; i < slices; i++) model[slice_of(span) + i] = USED;
  return span;
}

static void span_give(tsr_page_t *span) {
  size_t first = slice_of(span);
  uint32_t slices = span->slice_count;
  tsr_span_free(&heap, span);
  for (uint32_t i = 0; i < slices; i++) model[first + i] = DIRTY;
}

static void expect_model(const char *step) {
  uint64_t got = stat_free_span_bytes(), want = model_dirty_bytes();
  CHECKF(got == want, "%s: free_span_bytes %llu, the model says %llu", step, (unsigned long long)got,
         (unsigned long long)want);
  CHECKF(tsr_span_check(&heap), "%s: span invariants", step);
}

/* A forced purge gives back exactly the dirty slices: in purged_bytes, and in
 * RSS to within one slice (other memory of the process moves a little). */
static void purge_all(const char *step) {
  uint64_t want = model_dirty_bytes(), stat_before = stat_free_span_bytes();
  uint64_t purged_before = atomic_load(&tsr_os_counters.purged_bytes);
  int64_t rss_before = rss_bytes();
  tsr_span_purge_due(&heap, tsr_platform_clock_ms(), true, false);
  int64_t rss_drop = rss_before - rss_bytes();
  uint64_t purged = atomic_load(&tsr_os_counters.purged_bytes) - purged_before;
  for (size_t i = 0; i < TSR_SLICE_COUNT; i++)
    if (model[i] == DIRTY) model[i] = CLEAN;
  CHECKF(purged == want, "%s: purged %llu bytes, %llu were dirty", step, (unsigned long long)purged,
         (unsigned long long)want);
  CHECKF(rss_before > 0 && llabs(rss_drop - (int64_t)stat_before) < (int64_t)TSR_SLICE_SIZE,
         "%s: free_span_bytes said %llu before the purge, RSS fell by %lld", step, (unsigned long long)stat_before,
         (long long)rss_drop);
  expect_model(step);
}

int main(void) {
  tsr_init_process();
  for (size_t d = 0; d < TSR_DIRECT_COUNT; d++) heap.direct[d] = &tsr_page_empty;
  heap.secret = tsr_secret;
  for (size_t i = 0; i < TSR_SLICE_COUNT; i++) model[i] = CLEAN;
  /* Whatever the calls below set up on first use (the RSS probe, a purge,
   * the stats walk) must not fall inside a measured RSS change. */
  CHECK(rss_bytes() > 0);
  tsr_span_purge_due(&heap, tsr_platform_clock_ms(), true, false);
  CHECK(stat_free_span_bytes() == 0);

  CHECK_SECTION("three spans side by side, the middle one freed and purged");
  tsr_page_t *a = span_take(4), *b = span_take(4), *c = span_take(4);
  CHECK(slice_of(b) == slice_of(a) + 4 && slice_of(c) == slice_of(b) + 4);   /* the layout the steps need */
  expect_model("taken");
  span_give(b);
  expect_model("middle freed");
  purge_all("middle purged");

  CHECK_SECTION("dirty span coalesced with a purged neighbour");
  span_give(a);
  expect_model("left freed, merged with the purged middle");

  CHECK_SECTION("split of a part-dirty span");
  tsr_page_t *d = span_take(2);
  CHECK(slice_of(d) == slice_of(a));   /* from the merged span's dirty front */
  expect_model("two slices taken from it");

  CHECK_SECTION("dirty between dirty-purged and the purged rest");
  span_give(c);
  expect_model("right freed, merged on both sides");
  purge_all("all purged");

  CHECK_SECTION("purge delay per part");
  span_give(d);
  expect_model("last span freed");
  uint64_t now = tsr_platform_clock_ms();
  long delay = tsr_option_long(TSR_OPT_PURGE_DELAY);
  if (delay > 0) {
    tsr_span_purge_due(&heap, now, false, false);   /* not due yet: nothing goes back */
    expect_model("not due");
  }
  purge_all("due");
  return check_done("unit-span-stats");
}
