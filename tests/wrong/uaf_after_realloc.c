/* expect: use-after-free
 * env: TESSERA_CHECK_GUARD=off
 * A stale pointer kept across realloc (which always moves under check). */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(16));
  char *q = realloc(p, 32);
  p[0] = 'x';
  free(q);
  return 0;
}
