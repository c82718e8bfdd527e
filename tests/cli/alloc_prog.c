/* alloc_prog.c -- the program the CLI tests record, replay and compare.
 *
 * alloc_prog THREADS ITERS: each thread makes, per iteration, one call of
 * every function of the allocation API (so the recorder's counts can be
 * checked exactly: ITERS posix_memalign calls per thread, ...), writes the
 * blocks it gets, and frees half of a batch that main allocated (blocks
 * crossing threads). Built with -fno-builtin: gcc would otherwise elide
 * an allocation that is only written and freed. alloc_prog bench N: a single-threaded malloc/free loop
 * over a window of live blocks, each block written, for the overhead check.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long iters;
static void *shared[64][256];

static uint32_t rnd(uint32_t *s) { *s = *s * 1103515245u + 12345u; return *s >> 8; }

static void *worker(void *arg) {
  long t = (long)arg;
  uint32_t seed = (uint32_t)t + 1;
  for (long i = 0; i < iters; i++) {
    size_t n = 1 + rnd(&seed) % 2000;
    char *a = malloc(n);
    memset(a, 1, n);
    char *b = calloc(4, n);
    b[0] = 2;
    a = realloc(a, n * 2);
    memset(a, 3, n * 2);
    void *c = NULL;
    if (posix_memalign(&c, 64, n) == 0) memset(c, 4, n);
    char *d = aligned_alloc(128, 256);
    d[0] = 5;
    char *e = memalign(32, n);
    e[0] = 6;
    char *f = valloc(100);
    f[0] = 7;
    char *g = reallocarray(NULL, 3, 10);
    g[0] = 8;
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(f);
    free(g);
  }
  for (int k = 0; k < 256; k++) free(shared[t][k]);  /* allocated by main */
  return NULL;
}

static int bench(long n) {
  enum { WINDOW = 1024 };
  static char *live[WINDOW];
  uint32_t seed = 7;
  unsigned long sum = 0;
  for (long i = 0; i < n; i++) {
    unsigned k = rnd(&seed) % WINDOW;
    free(live[k]);
    size_t sz = 16 + rnd(&seed) % 512;
    live[k] = malloc(sz);
    memset(live[k], (int)i, sz);  /* a real program uses what it allocates */
    sum += (unsigned char)live[k][sz / 2];
  }
  for (unsigned k = 0; k < WINDOW; k++) free(live[k]);
  return sum == 1;  /* keep the work observable */
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "bench") == 0) return bench(atol(argv[2]));
  if (argc != 3) {
    fprintf(stderr, "usage: alloc_prog THREADS ITERS | alloc_prog bench N\n");
    return 2;
  }
  long threads = atol(argv[1]);
  iters = atol(argv[2]);
  if (threads < 1 || threads > 64) return 2;
  pthread_t tid[64];
  for (long t = 0; t < threads; t++)
    for (int k = 0; k < 256; k++) shared[t][k] = malloc(24 + (size_t)k);
  for (long t = 0; t < threads; t++) pthread_create(&tid[t], NULL, worker, (void *)t);
  for (long t = 0; t < threads; t++) pthread_join(tid[t], NULL);
  return 0;
}
