/* large.c -- the huge cache: freed huge mappings come back as parts of a
 * bigger block (moved, not faulted in again) or, a block that takes most of
 * a piece, in place; such a block of several kernel mappings grows, shrinks
 * and is freed like any other, and the cache stays within the program's own
 * peak. With huge pages on, mappings of 4 MiB or more are whole 2 MiB pages
 * and advised (not calloc's). The invariant walk (which
 * checks that every huge mapping's extents tile it) runs after each step. */
#include "unit.h"

#include <sys/resource.h>

#define MIB ((size_t)1 << 20)

static long minor_faults(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 4096) p[i] = (unsigned char)(seed + i / 4096);
  p[n - 1] = (unsigned char)seed;
}

static bool filled(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 4096)
    if (p[i] != (unsigned char)(seed + i / 4096)) return false;
  return true;
}

/* The line of /proc/self/smaps that starts with key, in the entry of the
 * kernel mapping holding p; false if there is none. */
static bool vma_field(const void *p, const char *key, char *line, size_t size) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return false;
  bool inside = false, found = false;
  while (!found && fgets(line, (int)size, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else found = inside && strncmp(line, key, strlen(key)) == 0;
  }
  fclose(f);
  return found;
}

/* Does the kernel mapping holding p carry this VmFlags flag ("hg":
 * MADV_HUGEPAGE)? */
static bool vma_has_flag(const void *p, const char *flag) {
  char line[512];
  if (!vma_field(p, "VmFlags:", line, sizeof line)) return false;
  for (char *t = strtok(line + 8, " \n"); t != NULL; t = strtok(NULL, " \n"))
    if (strcmp(t, flag) == 0) return true;
  return false;
}

/* The resident KiB of the kernel mapping holding p (smaps "Rss:"). */
static long vma_rss_kib(const void *p) {
  char line[512];
  long rss = -1;
  if (vma_field(p, "Rss:", line, sizeof line)) (void)sscanf(line, "Rss: %ld kB", &rss);
  return rss;
}

static uint32_t extent_count(void *p) {
  tsr_segment_t *s = tsr_huge_segment_of(p);
  return s != NULL ? extents_of(s)->count : 0;
}

int main(void) {
  tsr_init_process();
  tsr_option_values[TSR_OPT_HUGE_CACHE_DELAY].number = -1;   /* kept until trimmed: the test decides */
  tsr_option_values[TSR_OPT_HUGE_PAGES].number = 0;          /* fault counts per 4 KiB page */

  CHECK_SECTION("pieces cached");
  unsigned char *a = malloc(3 * MIB), *b = malloc(5 * MIB), *c = malloc(9 * MIB);
  CHECK(a != NULL && b != NULL && c != NULL);
  fill(a, 3 * MIB, 1);
  fill(b, 5 * MIB, 2);
  fill(c, 9 * MIB, 3);
  CHECK(extent_count(a) == 1 && extent_count(c) == 1);
  free(a);
  free(b);
  free(c);
  CHECK(tsr_invariant_check() == 0);
  CHECKF(large.cache_bytes >= 17 * MIB, "cache holds %zu bytes", large.cache_bytes);

  CHECK_SECTION("a bigger block is assembled from them");
  long before = minor_faults();
  size_t dn = 15 * MIB;
  unsigned char *d = malloc(dn);
  CHECK(d != NULL);
  uint32_t extents = extent_count(d);
  CHECKF(extents >= 2, "extents %u", extents);
  memset(d, 0x5a, dn);
  long faults = minor_faults() - before;
  /* 3840 pages; all but the part the cache could not fill (none here) arrive resident */
  CHECKF(faults < (long)(dn / 4096) / 4, "%ld faults writing a %zu-byte block made of cached pages", faults, dn);
  CHECK(tsr_invariant_check() == 0);
  fill(d, dn, 4);

  CHECK_SECTION("it grows (in place or by a copy), keeping its bytes");
  size_t en = 40 * MIB;
  unsigned char *e = realloc(d, en);
  CHECK(e != NULL && filled(e, dn, 4));
  memset(e + dn, 0x33, en - dn);
  CHECK(tsr_invariant_check() == 0);

  CHECK_SECTION("it shrinks, keeping its bytes");
  unsigned char *f = realloc(e, 2 * MIB);
  CHECK(f != NULL && filled(f, 2 * MIB, 4));
  CHECK(malloc_usable_size(f) >= 2 * MIB && malloc_usable_size(f) < 3 * MIB);
  CHECK(tsr_invariant_check() == 0);

  CHECK_SECTION("a piece split, several times over");
  free(f);
  unsigned char *g[6];
  for (int i = 0; i < 6; i++) {
    g[i] = malloc((size_t)(1 + i) * MIB + 12345);
    CHECK(g[i] != NULL);
    fill(g[i], (size_t)(1 + i) * MIB + 12345, (unsigned)(10 + i));
  }
  for (int i = 0; i < 6; i++) CHECK(filled(g[i], (size_t)(1 + i) * MIB + 12345, (unsigned)(10 + i)));
  CHECK(tsr_invariant_check() == 0);
  for (int i = 0; i < 6; i++) free(g[i]);
  CHECK(tsr_invariant_check() == 0);

  CHECK_SECTION("the cache stays within the peak");
  size_t peak = large.peak_live_bytes;
  CHECKF(large.live_bytes + large.cache_bytes <= peak, "live %zu + cached %zu over the peak %zu", large.live_bytes,
         large.cache_bytes, peak);
  unsigned char *h = malloc(64 * MIB);   /* a new peak: the cache gives back what it held */
  CHECK(h != NULL);
  CHECKF(large.live_bytes + large.cache_bytes <= large.peak_live_bytes, "live %zu + cached %zu over the peak %zu",
         large.live_bytes, large.cache_bytes, large.peak_live_bytes);
  free(h);

  CHECK_SECTION("trim releases the cache");
  malloc_trim(0);
  CHECK(large.cache_bytes == 0);
  CHECK(tsr_invariant_check() == 0);

  CHECK_SECTION("a block that takes most of a piece stays where the piece is");
  size_t in = 10 * MIB, jn = 6 * MIB;
  unsigned char *i1 = malloc(in);
  CHECK(i1 != NULL);
  fill(i1, in, 20);
  free(i1);
  CHECKF(large.cache_bytes >= in, "cache holds %zu bytes", large.cache_bytes);
  before = minor_faults();
  unsigned char *j = malloc(jn);
  CHECKF(j == i1, "block at %p, the piece's was at %p", (void *)j, (void *)i1);
  memset(j, 0x77, jn);
  faults = minor_faults() - before;
  CHECKF(faults < (long)(jn / 4096) / 4, "%ld faults writing a %zu-byte block made of cached pages", faults, jn);
  CHECKF(large.cache_bytes > 3 * MIB && large.cache_bytes < in - jn + MIB, "the rest (%zu bytes) stays cached",
         large.cache_bytes);
  CHECK(tsr_invariant_check() == 0);
  unsigned char *k = malloc(3 * MIB);   /* takes that rest */
  CHECK(k != NULL);
  fill(k, 3 * MIB, 21);
  CHECK(tsr_invariant_check() == 0);
  free(j);
  free(k);
  malloc_trim(0);

  CHECK_SECTION("with huge pages, big mappings are whole 2 MiB pages, advised");
  tsr_option_values[TSR_OPT_HUGE_PAGES].number = 1;
  unsigned char *m = malloc(15 * MIB);     /* 15 MiB + the header page: rounded to 16 MiB */
  CHECK(m != NULL);
  CHECKF(malloc_usable_size(m) == 16 * MIB - 4096, "usable %zu", malloc_usable_size(m));
  CHECK(vma_has_flag(m, "hg"));
  unsigned char *z = calloc(1, 15 * MIB);  /* calloc's may be touched sparsely: not advised */
  CHECK(z != NULL && !vma_has_flag(z, "hg"));
  unsigned char *small = malloc(2 * MIB);  /* under 4 MiB: small pages, no rounding */
  CHECK(small != NULL && malloc_usable_size(small) == 2 * MIB && !vma_has_flag(small, "hg"));
  CHECK(tsr_invariant_check() == 0);
  free(m);
  free(z);
  free(small);
  malloc_trim(0);   /* nothing cached: the next block is a mapping of its own, its RSS its own */
  /* Rounded, 4 MiB behind the header page would take a third 2 MiB page
   * (+50 %): not rounded, yet advised, so its two whole 2 MiB ranges may be
   * 2 MiB pages and only the last 4 KiB stays a small page. */
  unsigned char *pow2 = malloc(4 * MIB);
  CHECKF(pow2 != NULL && malloc_usable_size(pow2) == 4 * MIB && vma_has_flag(pow2, "hg"), "usable %zu",
         pow2 ? malloc_usable_size(pow2) : 0);
  if (pow2 != NULL) memset(pow2, 0x5a, 4 * MIB);
  long pow2_rss = pow2 != NULL ? vma_rss_kib(pow2) : -1;
  CHECKF(pow2_rss >= 4096 && pow2_rss <= 4096 + 8, "a written 4 MiB block holds %ld KiB", pow2_rss);
  CHECK(tsr_invariant_check() == 0);
  free(pow2);
  malloc_trim(0);

  CHECK_SECTION("with huge pages, a cached piece is split on a 2 MiB boundary");
  unsigned char *big = malloc(15 * MIB);   /* a 16 MiB mapping of 2 MiB pages */
  CHECK(big != NULL);
  fill(big, 15 * MIB, 31);
  free(big);                               /* cached whole */
  CHECKF(large.cache_bytes == 16 * MIB, "cached %zu", large.cache_bytes);
  /* 8 MiB behind its header page is not rounded (that would add a
   * quarter): the piece is split in place after the block, but at 10 MiB,
   * not inside the fifth 2 MiB page, so the rest moves in whole 2 MiB
   * pages. */
  unsigned char *eight = malloc(8 * MIB);
  CHECK(eight == big);
  CHECKF(malloc_usable_size(eight) == 10 * MIB - 4096, "usable %zu", malloc_usable_size(eight));
  CHECKF(large.cache_bytes == 6 * MIB, "the rest cached: %zu", large.cache_bytes);
  CHECK(filled(eight, 8 * MIB, 31));       /* the pages stayed put */
  CHECK(tsr_invariant_check() == 0);
  free(eight);
  malloc_trim(0);
  return check_done("unit-large");
}
