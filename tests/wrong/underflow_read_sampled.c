/* expect: heap-buffer-underflow
 * A large program under the default settings: after the first allocations
 * (all guarded) come blocks guarded by sampling, on either side; an
 * underflow read repeated over many allocations meets one of them. */
#include "wrong.h"
static char *early[4096];
int main(void) {
  for (int i = 0; i < 4096; i++) early[i] = opaque(malloc(32));   /* past the complete phase */
  for (int i = 0; i < 4096; i++) free(early[i]);
  long sum = 0;
  for (int i = 0; i < 400000; i++) {
    char *p = opaque(malloc(24));
    sum += p[-8];   /* inside the left redzone, or the guard page before a sampled block */
    free(p);
  }
  printf("%ld\n", sum);
  return 0;
}
