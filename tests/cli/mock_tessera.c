/* mock_tessera.c -- a stand-in for libtessera.so with the same tsr_* entry
 * points the CLI's `map` uses, so tests/cli can check the map page (tile
 * count, screenshot) before or independently of the real allocator.
 *
 * Not an allocator to use: one 8 MiB arena of 64 KiB pages, power-of-two
 * size classes 16..8192 carved bump-then-free-list per page, bigger blocks
 * mapped on their own. Single-threaded, no locking.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tessera.h"

#define PAGE (64u << 10)
#define NPAGES 128u
#define NHUGE 256u

static struct {
  uint8_t *base;
  struct { unsigned cls; size_t used, carved; void *free; } page[NPAGES];
  struct { void *p; size_t size; } huge[NHUGE];
  uint64_t in_use;
} m;

static unsigned class_of(size_t n) { unsigned c = 0; while (((size_t)16 << c) < n) c++; return c; }

static void *page_pop(unsigned p) {
  size_t bs = (size_t)16 << m.page[p].cls;
  void *b = m.page[p].free;
  if (b) m.page[p].free = *(void **)b;
  else if ((m.page[p].carved + 1) * bs <= PAGE) b = m.base + (size_t)p * PAGE + bs * m.page[p].carved++;
  else return NULL;
  m.page[p].used++;
  m.in_use += bs;
  return b;
}

void *tsr_malloc(size_t n) {
  if (!m.base) {
    m.base = mmap(NULL, (size_t)NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m.base == MAP_FAILED) return m.base = NULL;
  }
  if (n <= 8192) {
    unsigned c = class_of(n ? n : 1);
    for (unsigned p = 0; p < NPAGES; p++)
      if (m.page[p].cls == c && (m.page[p].carved || m.page[p].free)) { void *b = page_pop(p); if (b) return b; }
    for (unsigned p = 0; p < NPAGES; p++)
      if (!m.page[p].carved && !m.page[p].used) { m.page[p].cls = c; return page_pop(p); }
    return NULL;
  }
  for (unsigned h = 0; h < NHUGE; h++)
    if (!m.huge[h].p) {
      void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return NULL;
      m.huge[h].p = p;
      m.huge[h].size = n;
      m.in_use += n;
      return p;
    }
  return NULL;
}

size_t tsr_usable_size(const void *p) {
  if (!p) return 0;
  if ((const uint8_t *)p >= m.base && (const uint8_t *)p < m.base + (size_t)NPAGES * PAGE)
    return (size_t)16 << m.page[((const uint8_t *)p - m.base) / PAGE].cls;
  for (unsigned h = 0; h < NHUGE; h++) if (m.huge[h].p == p) return m.huge[h].size;
  return 0;
}

void tsr_free(void *p) {
  if (!p) return;
  if ((uint8_t *)p >= m.base && (uint8_t *)p < m.base + (size_t)NPAGES * PAGE) {
    unsigned pg = (unsigned)(((uint8_t *)p - m.base) / PAGE);
    *(void **)p = m.page[pg].free;
    m.page[pg].free = p;
    m.in_use -= (size_t)16 << m.page[pg].cls;
    if (--m.page[pg].used == 0) { m.page[pg].free = NULL; m.page[pg].carved = 0; }
    return;
  }
  for (unsigned h = 0; h < NHUGE; h++)
    if (m.huge[h].p == p) { munmap(p, m.huge[h].size); m.in_use -= m.huge[h].size; m.huge[h].p = NULL; return; }
}

void *tsr_calloc(size_t k, size_t n) {
  if (n && k > SIZE_MAX / n) return NULL;
  void *p = tsr_malloc(k * n);
  if (p) memset(p, 0, k * n);
  return p;
}

void *tsr_realloc(void *p, size_t n) {
  if (!p) return tsr_malloc(n);
  if (!n) { tsr_free(p); return NULL; }
  size_t old = tsr_usable_size(p);
  if (n <= old && (n > 8192) == (old > 8192)) return p;
  void *q = tsr_malloc(n);
  if (q) { memcpy(q, p, old < n ? old : n); tsr_free(p); }
  return q;
}

void *tsr_aligned_alloc(size_t a, size_t n) { return tsr_malloc(n < a ? a : n); } /* power-of-two classes align naturally */

size_t tsr_heap_visit(bool (*visit)(const tsr_area_t *, void *), void *arg) {
  size_t n = 0;
  for (unsigned p = 0; p < NPAGES && m.base; p++) {
    tsr_area_t a = {0};
    a.start = (uintptr_t)(m.base + (size_t)p * PAGE);
    a.size = PAGE;
    if (m.page[p].used) {
      a.kind = TSR_AREA_SMALL_PAGE;
      a.block_size = (size_t)16 << m.page[p].cls;
      a.block_count = PAGE / a.block_size;
      a.used_count = m.page[p].used;
      a.size_class = m.page[p].cls;
    } else a.kind = TSR_AREA_FREE_SPAN;
    n++;
    if (!visit(&a, arg)) return n;
  }
  for (unsigned h = 0; h < NHUGE; h++)
    if (m.huge[h].p) {
      tsr_area_t a = {TSR_AREA_HUGE, (uintptr_t)m.huge[h].p, m.huge[h].size, m.huge[h].size, 1, 1, 0, 0, false};
      n++;
      if (!visit(&a, arg)) return n;
    }
  return n;
}

int tsr_stats_get(tsr_stats_t *s) {
  memset(s, 0, sizeof *s);
  s->version = TSR_STATS_VERSION;
  s->struct_size = sizeof *s;
  s->in_use_bytes = m.in_use;
  s->mapped_bytes = (m.base ? (uint64_t)NPAGES * PAGE : 0);
  for (unsigned h = 0; h < NHUGE; h++) if (m.huge[h].p) s->mapped_bytes += m.huge[h].size;
  s->class_count = 10;
  for (unsigned c = 0; c < 10; c++) s->class_block_size[c] = (uint64_t)16 << c;
  s->rss_bytes = 0;  /* the mock does not read /proc */
  return 0;
}

const char *tsr_version(void) { return "mock (tests/cli/mock_tessera.c)"; }
