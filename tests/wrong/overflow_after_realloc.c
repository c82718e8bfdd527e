/* expect: heap-buffer-overflow
 * env: TESSERA_CHECK_GUARD=off
 * A realloc that keeps the block in place (20 -> 24 bytes, the same size
 * class) moves the canary to the new end: one byte past it is caught. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(20));
  char *q = realloc(p, 24);
  if (q != p) return 0;   /* moved: not the case under test, and no report makes the test fail */
  memset(q, 'a', 24);
  q[24] = 'x';
  free(q);
  return 0;
}
