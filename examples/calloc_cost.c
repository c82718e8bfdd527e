/* calloc_cost.c -- why calloc can be cheaper than malloc + memset.
 *
 * Memory that comes fresh from the OS (mmap, or the break moved up) is
 * already zero: the kernel clears every page before a process first sees it,
 * and it does that lazily, at the first touch of each page. A calloc that
 * knows its block is fresh can skip clearing it, so the pages stay untouched:
 * no time spent and no RSS. malloc + memset writes every byte, which faults
 * every page in (RSS) and costs time. Reading untouched pages costs no RSS
 * either where the kernel maps them all to one shared page of zeros, as
 * Linux does unless configured otherwise; the first line says which kind
 * of kernel this is, from a plain mapping read the same way.
 * The last step shows the limit: a calloc that reuses memory a previous
 * block dirtied must clear it.
 */
#include "measure.h"

#include <sys/mman.h>

#define SIZE (64 * MiB)

static size_t count_nonzero(const unsigned char *p, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++) count += p[i] != 0;
  return count;
}

int main(void) {
  ex_init();
  printf("malloc: %s, block size %zu MiB\n", malloc_name(), SIZE / MiB);

  size_t probe = 4 * MiB;
  unsigned char *fresh = mmap(NULL, probe, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh != MAP_FAILED) {
    size_t before = rss_bytes();
    size_t zeros = probe - count_nonzero(fresh, probe);
    printf("kernel: reading a fresh %zu MiB mapping (%zu zero bytes): RSS %+ld KiB\n", probe / MiB, zeros,
           rss_delta_kib(before, rss_bytes()));
    munmap(fresh, probe);
  }

  size_t rss0 = rss_bytes();
  double t0 = now_ms();
  unsigned char *c = calloc(1, SIZE);
  double t1 = now_ms();
  size_t rss1 = rss_bytes();
  printf("calloc:          %8.3f ms, RSS %+7ld KiB\n", t1 - t0, rss_delta_kib(rss0, rss1));

  size_t nonzero = count_nonzero(c, SIZE);
  size_t rss2 = rss_bytes();
  printf("  reading all of it: %zu non-zero bytes, RSS %+ld KiB\n", nonzero,
         rss_delta_kib(rss1, rss2));

  rss0 = rss_bytes();
  t0 = now_ms();
  unsigned char *m = malloc(SIZE);
  memset(m, 0, SIZE);
  t1 = now_ms();
  rss1 = rss_bytes();
  printf("malloc + memset: %8.3f ms, RSS %+7ld KiB\n", t1 - t0, rss_delta_kib(rss0, rss1));

  /* Free both, then ask again: the allocator may hand back m's dirty pages. */
  free(c);
  m[0] = 1;
  free(m);
  rss0 = rss_bytes();
  t0 = now_ms();
  unsigned char *again = calloc(1, SIZE);
  t1 = now_ms();
  rss1 = rss_bytes();
  printf("calloc after free of a written block: %.3f ms, RSS %+ld KiB, %zu non-zero bytes\n",
         t1 - t0, rss_delta_kib(rss0, rss1), count_nonzero(again, SIZE));
  free(again);
  return 0;
}
