/* realloc_shrink.c -- does realloc really shrink a block, and does the memory
 * go back to the OS?
 *
 * Blocks shrunk with realloc: a small one, twice (does it stay where it is,
 * and how big is it now: malloc_usable_size), a 120 KiB one with another
 * block after it (the case where glibc's heap keeps the freed tail), and a
 * 64 MiB one (a block mapped on its own). For the two big ones the program
 * touches every byte, then prints how the RSS (anonymous resident memory)
 * changes at each step.
 * Run it as is (glibc) and with LD_PRELOAD=build/libtessera.so.
 */
#include "measure.h"

#include <malloc.h>

static void shrink_small(size_t new_size) {
  char *p = malloc(1000);
  memset(p, 'x', 1000);
  uintptr_t old = (uintptr_t)p;
  size_t old_usable = malloc_usable_size(p);
  char *q = realloc(p, new_size);
  printf("small block: malloc(1000) -> usable %zu bytes; realloc to %zu -> usable %zu bytes, %s\n",
         old_usable, new_size, malloc_usable_size(q),
         (uintptr_t)q == old ? "same address" : "moved");
  free(q);
}

/* Lets a delayed return of memory happen: tessera gives free spans back
 * TESSERA_PURGE_DELAY ms (100 by default) after they were freed, at a later
 * call. glibc has no such delay; the call changes nothing there. */
static void wait_and_call(int ms) {
  usleep((useconds_t)ms * 1000);
  free(malloc(1));
}

/* A block in the middle of the heap: `pin`, allocated after it, keeps an
 * allocator that grows one region upwards (sbrk) from simply lowering its top. */
static void shrink_middle(void) {
  size_t size = 120 * KiB;
  char *p = malloc(size);
  char *pin = malloc(64);
  size_t rss0 = rss_bytes();
  memset(p, 'x', size);
  size_t rss1 = rss_bytes();
  uintptr_t old = (uintptr_t)p;
  char *q = realloc(p, 1 * KiB);
  size_t rss2 = rss_bytes();
  wait_and_call(150);
  size_t rss3 = rss_bytes();
  malloc_trim(0);
  size_t rss4 = rss_bytes();
  printf("120 KiB block: touching it: RSS %+ld KiB\n", rss_delta_kib(rss0, rss1));
  printf("  realloc to 1 KiB: %s, RSS %+ld KiB; 150 ms later %+ld KiB; after malloc_trim(0) %+ld KiB\n",
         (uintptr_t)q == old ? "same address" : "moved", rss_delta_kib(rss1, rss2),
         rss_delta_kib(rss1, rss3), rss_delta_kib(rss1, rss4));
  free(q);
  free(pin);
}

/* A block big enough that both allocators map it on its own. */
static void shrink_huge(void) {
  size_t size = 64 * MiB;
  char *p = malloc(size);
  size_t rss0 = rss_bytes();
  memset(p, 'x', size);
  size_t rss1 = rss_bytes();
  uintptr_t old = (uintptr_t)p;
  size_t old_usable = malloc_usable_size(p);
  char *q = realloc(p, 4 * MiB);
  size_t rss2 = rss_bytes();
  printf("64 MiB block: usable %zu KiB; touching it: RSS %+ld KiB\n", old_usable / KiB,
         rss_delta_kib(rss0, rss1));
  printf("  realloc to 4 MiB: %s, usable %zu KiB, RSS %+ld KiB\n",
         (uintptr_t)q == old ? "same address" : "moved", malloc_usable_size(q) / KiB,
         rss_delta_kib(rss1, rss2));
  free(q);
  size_t rss3 = rss_bytes();
  wait_and_call(150);
  size_t rss4 = rss_bytes();
  malloc_trim(0);
  size_t rss5 = rss_bytes();
  printf("  free: RSS %+ld KiB; 150 ms later %+ld KiB; then malloc_trim(0): %+ld KiB\n",
         rss_delta_kib(rss2, rss3), rss_delta_kib(rss2, rss4), rss_delta_kib(rss2, rss5));
}

int main(void) {
  ex_init();
  printf("malloc: %s\n", malloc_name());
  shrink_small(600);
  shrink_small(100);
  shrink_middle();
  shrink_huge();
  return 0;
}
