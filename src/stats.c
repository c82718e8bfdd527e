/* stats.c -- counters merged from every heap, a walk of every segment for
 * the figures that counters cannot give, and the text and JSON reports.
 *
 * The fields are declared once (TSR_STATS_FIELDS in tessera.h); the struct,
 * the text and the JSON all come from that list. Counters are per heap
 * (plain increments by the owner) and summed here without stopping anyone,
 * so figures taken while other threads run are a moment's approximation.
 * The segment walk holds TSR_LOCK_HEAPS, under which no segment is unmapped.
 */
#include "internal.h"

#include <string.h>

/* ---- gathering ---------------------------------------------------------------- */

static bool page_is_head(tsr_heap_t *heap, tsr_page_t *page) {
  return page->kind == TSR_PAGE_SMALL && page->is_queued && heap->queue[page->size_class].first == page &&
         tsr_class_size[page->size_class] <= TSR_DIRECT_MAX;   /* only these carry the bias */
}

/* Live blocks of a small page, without the queue head's bias. */
uint32_t tsr_page_live_count(tsr_heap_t *heap, tsr_page_t *page) {
  uint32_t used = page->used;
  if (page_is_head(heap, page) && used > 0) used--;
  return used;
}

static void huge_add(tsr_segment_t *segment, void *arg) {
  tsr_stats_t *s = arg;
  s->in_use_bytes += segment->huge_size;
  s->page_bytes += segment->huge_size;
}

static void stats_walk(tsr_stats_t *s) {
  uint64_t held[TSR_REUSE_CLASSES] = { 0 };
  for (tsr_heap_t *heap = tsr_heap_all; heap != NULL; heap = heap->all_next) {
    s->heap_count++;
    if (heap->is_abandoned) s->abandoned_heap_count++;
    tsr_heap_counters_t *c = &heap->count;
    s->malloc_count += tsr_heap_malloc_count(heap);
    s->calloc_count += c->calloc_count;
    s->realloc_count += c->realloc_count;
    s->aligned_count += c->aligned_count;
    s->free_count += c->free_count;
    s->remote_free_count += c->remote_free_count;
    s->realloc_inplace_count += c->realloc_inplace_count;
    s->requested_bytes += c->requested_bytes;
    /* Blocks this heap keeps for reuse (free.c) count as used on their own
     * pages, which may be any heap's: they are free blocks (below). */
    for (unsigned k = 1; k < TSR_REUSE_CLASSES; k++) {
      uint32_t on_page = heap->reuse_page[k].capacity - heap->reuse_page[k].used;
      if (on_page <= TSR_REUSE_COUNT) held[k] += on_page;   /* else read mid-update */
      held[k] += heap->reuse_count[k];
    }
    for (tsr_segment_t *segment = heap->segments; segment != NULL; segment = segment->next) {
      tsr_page_t *slices = (tsr_page_t *)segment;
      size_t last_group = (size_t)-1;   /* descriptors touched: one OS page per 32 */
      s->metadata_bytes += TSR_OS_PAGE_SIZE;   /* the header's OS page */
      for (size_t i = 1; i < TSR_SLICE_COUNT;) {
        size_t group = (i << TSR_PAGE_DESC_SHIFT) / TSR_OS_PAGE_SIZE;
        if (group != last_group && group != 0) { s->metadata_bytes += TSR_OS_PAGE_SIZE; last_group = group; }
        tsr_page_t *page = &slices[i];
        uint32_t n = page->slice_count;
        if (n == 0 || i + n > TSR_SLICE_COUNT) n = 1;    /* mid-update by its owner: step on */
        if (page->kind == TSR_PAGE_FREE) {
          s->free_span_bytes += tsr_span_dirty_bytes(page, n);   /* per slice: part may be purged */
        } else if (page->kind == TSR_PAGE_SMALL && page->size_class < TSR_CLASS_COUNT) {
          uint32_t live = tsr_page_live_count(heap, page);
          uint32_t size = page->block_size;
          uint32_t below = page->size_class > 1 ? tsr_class_size[page->size_class - 1] : 0;
          s->in_use_bytes += (uint64_t)live * size;
          s->slack_bytes += (uint64_t)live * ((size - below) / 2);   /* expected waste of the class */
          if (page->capacity > live) s->free_block_bytes += (uint64_t)(page->capacity - live) * size;
          s->class_live_count[page->size_class] += live;
          s->class_page_count[page->size_class]++;
        } else if (page->kind == TSR_PAGE_LARGE) {
          s->in_use_bytes += page->block_size;
          s->slack_bytes += page->requested_tail;
        }
        i += n;
      }
    }
  }
  for (unsigned k = 1; k < TSR_REUSE_CLASSES; k++) {   /* and the central transfer's lists (page.c) */
    for (unsigned i = 0; i < TSR_XFER_SLOTS; i++)
      held[k] += tsr_xfer_count(atomic_load_explicit(&tsr_page_xfer[k].slot[i], memory_order_relaxed));
  }
  for (unsigned k = 1; k < TSR_REUSE_CLASSES; k++) {
    uint64_t n = held[k] < s->class_live_count[k] ? held[k] : s->class_live_count[k];
    uint32_t size = tsr_class_size[k], below = tsr_class_size[k - 1];
    s->in_use_bytes -= n * size;
    s->slack_bytes -= n * ((size - below) / 2);
    s->free_block_bytes += n * size;
    s->class_live_count[k] -= n;
  }
}

tsr_public int tsr_stats_get(tsr_stats_t *out) {
  if (out == NULL) return -1;
  size_t size = out->struct_size == 0 ? sizeof(tsr_stats_t) : out->struct_size;
  if (size < sizeof(tsr_stats_t)) return -1;
  tsr_stats_t s;
  memset(&s, 0, sizeof s);
  s.version = TSR_STATS_VERSION;
  s.struct_size = sizeof s;
  tsr_lock(TSR_LOCK_HEAPS);
  stats_walk(&s);
  tsr_unlock(TSR_LOCK_HEAPS);
  tsr_huge_each(huge_add, &s);
  tsr_os_counters_t *o = &tsr_os_counters;
  s.page_bytes += atomic_load(&o->page_bytes);
  s.page_peak_bytes = atomic_load(&o->page_peak_bytes);
  s.mapped_bytes = atomic_load(&o->mapped_bytes);
  s.mapped_peak_bytes = atomic_load(&o->mapped_peak_bytes);
  s.metadata_bytes += atomic_load(&o->metadata_bytes);
  s.purged_bytes = atomic_load(&o->purged_bytes);
  s.os_map_count = atomic_load(&o->map_count);
  s.os_unmap_count = atomic_load(&o->unmap_count);
  s.os_purge_count = atomic_load(&o->purge_count);
  s.huge_count = atomic_load(&o->huge_count);
  s.rss_bytes = tsr_platform_rss_bytes();
  s.rss_peak_bytes = tsr_platform_rss_peak_bytes();
  s.class_count = TSR_CLASS_COUNT;
  for (unsigned c = 0; c < TSR_CLASS_COUNT; c++) s.class_block_size[c] = tsr_class_size[c];
  memcpy(out, &s, sizeof s);
  return 0;
}

/* ---- writing -------------------------------------------------------------------- */

typedef struct writer_s { int fd; size_t used; char buf[4096]; } writer_t;

static void writer_flush(writer_t *w) {
  tsr_platform_write(w->fd, w->buf, w->used);
  w->used = 0;
}

static void writer_put(writer_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void writer_put(writer_t *w, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  size_t n = tsr_format_va(line, sizeof line, fmt, ap);
  va_end(ap);
  if (w->used + n > sizeof w->buf) writer_flush(w);
  memcpy(w->buf + w->used, line, n);
  w->used += n;
}

static const char *human(char *buf, uint64_t bytes) {
  static const char units[] = "BKMGT";
  unsigned u = 0;
  uint64_t whole = bytes, tenth = 0;
  while (whole >= 1024 && u < 4) { tenth = (whole % 1024) * 10 / 1024; whole /= 1024; u++; }
  if (u == 0) tsr_format(buf, 32, "%lu B", (unsigned long)whole);
  else tsr_format(buf, 32, "%lu.%lu %ciB", (unsigned long)whole, (unsigned long)tenth, units[u]);
  return buf;
}

static void stats_text(writer_t *w, const tsr_stats_t *s) {
  char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
  writer_put(w, "tessera: statistics (%s)\n", tsr_version());
#define TSR_STATS_TEXT(name, kind, doc) \
  if (#kind[0] == 'B') writer_put(w, "tessera:   %-22s %14lu  %-10s %s\n", #name, (unsigned long)s->name, human(a, s->name), doc); \
  else writer_put(w, "tessera:   %-22s %14lu  %-10s %s\n", #name, (unsigned long)s->name, "", doc);
  TSR_STATS_FIELDS(TSR_STATS_TEXT)
#undef TSR_STATS_TEXT
  uint64_t live = s->in_use_bytes > s->slack_bytes ? s->in_use_bytes - s->slack_bytes : 0;
  uint64_t known = live + s->slack_bytes + s->free_block_bytes + s->metadata_bytes + s->free_span_bytes;
  uint64_t other = s->rss_bytes > known ? s->rss_bytes - known : 0;
  writer_put(w, "tessera: explain my RSS: %s = live data %s + size-class slack %s + free blocks %s + "
                "metadata %s + not yet returned to the OS %s + the rest (program, libraries, stacks) %s\n",
             human(a, s->rss_bytes), human(b, live), human(c, s->slack_bytes), human(d, s->free_block_bytes),
             human(e, s->metadata_bytes), human(f, s->free_span_bytes), human(g, other));
  writer_put(w, "tessera: size classes in use (block size: live blocks, pages)\n");
  for (unsigned k = 1; k < s->class_count && k < TSR_STATS_CLASS_MAX; k++)
    if (s->class_page_count[k] != 0)
      writer_put(w, "tessera:   %7lu: %10lu live  %6lu pages\n", (unsigned long)s->class_block_size[k],
                 (unsigned long)s->class_live_count[k], (unsigned long)s->class_page_count[k]);
  writer_put(w, "tessera: threads (heap: malloc, free, remote free)\n");
  for (tsr_heap_t *h = tsr_heap_all; h != NULL; h = h->all_next)
    writer_put(w, "tessera:   heap %u%s: %lu malloc, %lu free, %lu remote free\n", h->id,
               h->is_abandoned ? " (thread exited)" : "", (unsigned long)tsr_heap_malloc_count(h),
               (unsigned long)h->count.free_count, (unsigned long)h->count.remote_free_count);
}

static void stats_json(writer_t *w, const tsr_stats_t *s) {
  writer_put(w, "{\"version\": %u, \"tessera\": \"%s\"", s->version, tsr_version());
#define TSR_STATS_JSON(name, kind, doc) writer_put(w, ", \"%s\": %lu", #name, (unsigned long)s->name);
  TSR_STATS_FIELDS(TSR_STATS_JSON)
#undef TSR_STATS_JSON
  writer_put(w, ", \"classes\": [");
  bool first = true;
  for (unsigned k = 1; k < s->class_count && k < TSR_STATS_CLASS_MAX; k++) {
    if (s->class_page_count[k] == 0) continue;
    writer_put(w, "%s{\"block_size\": %lu, \"live\": %lu, \"pages\": %lu}", first ? "" : ", ",
               (unsigned long)s->class_block_size[k], (unsigned long)s->class_live_count[k],
               (unsigned long)s->class_page_count[k]);
    first = false;
  }
  writer_put(w, "], \"heaps\": [");
  first = true;
  for (tsr_heap_t *h = tsr_heap_all; h != NULL; h = h->all_next) {
    writer_put(w, "%s{\"id\": %u, \"exited\": %s, \"malloc_count\": %lu, \"free_count\": %lu, \"remote_free_count\": %lu}",
               first ? "" : ", ", h->id, h->is_abandoned ? "true" : "false", (unsigned long)tsr_heap_malloc_count(h),
               (unsigned long)h->count.free_count, (unsigned long)h->count.remote_free_count);
    first = false;
  }
  writer_put(w, "]}\n");
}

tsr_public void tsr_stats_print(int fd, bool json) {
  tsr_stats_t s;
  s.struct_size = sizeof s;
  tsr_stats_get(&s);
  writer_t w;
  w.fd = fd;
  w.used = 0;
  if (json) stats_json(&w, &s); else stats_text(&w, &s);
  writer_flush(&w);
}

int tsr_stats_stderr = -1;

/* At start-up: keep a copy of stderr if an exit report will be written to it. */
void tsr_stats_init(void) {
  const char *mode = tsr_option_text(TSR_OPT_STATS);
  const char *path = tsr_option_text(TSR_OPT_STATS_FILE);
  if (mode != NULL && *mode != 0 && strcmp(mode, "off") != 0 && strcmp(mode, "0") != 0 && (path == NULL || *path == 0))
    tsr_stats_stderr = tsr_platform_dup_high(2);
}

/* At exit, if TESSERA_STATS asks for it. */
void tsr_stats_exit_report(void) {
  const char *mode = tsr_option_text(TSR_OPT_STATS);
  if (mode == NULL || *mode == 0 || strcmp(mode, "off") == 0 || strcmp(mode, "0") == 0 || strcmp(mode, "no") == 0) return;
  bool json = strcmp(mode, "json") == 0;
  const char *path = tsr_option_text(TSR_OPT_STATS_FILE);
  /* Programs close stderr before exit (coreutils does): write to the copy
   * of fd 2 taken at start-up. */
  int fd = tsr_stats_stderr >= 0 ? tsr_stats_stderr : 2;
  if (path != NULL && *path != 0) {
    fd = tsr_platform_open_write(path);
    if (fd < 0) { tsr_message("cannot write statistics to %s", path); return; }
  }
  tsr_stats_print(fd, json);
  if (path != NULL && *path != 0 && fd >= 0) tsr_platform_close(fd);
}
