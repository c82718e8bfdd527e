/* expect: use-after-free
 * env: TESSERA_CHECK_GUARD=off
 * A stale pointer kept across a realloc that moves the block (under check
 * realloc moves unless the new size fits the block's size class: 16 -> 32
 * bytes does not). */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(16));
  char *q = realloc(p, 32);
  p[0] = 'x';
  free(q);
  return 0;
}
