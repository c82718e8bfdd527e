/* expect: heap-buffer-overflow
 * A large program under the default settings: the same read past the end,
 * 8 bytes beyond the 16-byte rounding of a 24-byte block, repeated over
 * many allocations after the complete phase: a sampled block catches it. */
#include "wrong.h"
static char *early[4096];
int main(void) {
  for (int i = 0; i < 4096; i++) early[i] = opaque(malloc(32));
  for (int i = 0; i < 4096; i++) free(early[i]);
  long sum = 0;
  for (int i = 0; i < 400000; i++) {
    char *p = opaque(malloc(24));
    sum += p[40];
    free(p);
  }
  printf("%ld\n", sum);
  return 0;
}
