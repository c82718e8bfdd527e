/* fastpath.c -- the two loops `make fastpath` counts instructions on.
 *
 *   fastpath a N   N times: p = malloc(s); p[0] = x; free(p), with s cycling
 *                  16, 32, 48, 64, 128, 256 (the hot path of small blocks)
 *   fastpath b N   N rounds of 256 mallocs of random sizes 8..1024, then
 *                  frees in shuffled order (free lists out of order)
 * Run under callgrind twice with different N: the difference of the two
 * totals divided by the difference of N cancels startup and teardown, and
 * leaves the loop's own cost (RNG and shuffle included) in the figure.
 * Built with -fno-builtin so the compiler cannot drop a malloc/free pair.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes[6] = {16, 32, 48, 64, 128, 256};
volatile uintptr_t fp_sink;  /* opaque: the loop's result escapes here */

static uint64_t xorshift64s(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;  /* xorshift64*: with it and i % 6 the peers land near the figures in docs/benchmarks.md */
  return x * 2685821657736338717ull;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "a") != 0 && strcmp(argv[1], "b") != 0)) {
    fprintf(stderr, "usage: fastpath a|b N\n");
    return 2;
  }
  long n = atol(argv[2]);
  uintptr_t acc = 0;
  if (argv[1][0] == 'a') {
    for (long i = 0; i < n; i++) {
      unsigned char *p = malloc(sizes[i % 6]);
      p[0] = (unsigned char)i;
      acc += (uintptr_t)p[0];
      free(p);
    }
  } else {
    void *p[256];
    uint64_t seed = 88172645463325252ull;
    for (long r = 0; r < n; r++) {
      for (int i = 0; i < 256; i++) {
        p[i] = malloc(8 + xorshift64s(&seed) % 1017);
        *(unsigned char *)p[i] = (unsigned char)i;
      }
      for (int i = 255; i > 0; i--) {
        int j = (int)(xorshift64s(&seed) % (uint64_t)(i + 1));
        void *t = p[i];
        p[i] = p[j];
        p[j] = t;
      }
      for (int i = 0; i < 256; i++) {
        acc += *(unsigned char *)p[i];
        free(p[i]);
      }
    }
  }
  fp_sink = acc;
  return 0;
}
