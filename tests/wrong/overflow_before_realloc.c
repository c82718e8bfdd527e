/* expect: heap-buffer-overflow
 * env: TESSERA_CHECK_GUARD=off
 * An overflow written before a realloc that could have stayed in place:
 * the realloc finds the changed canary instead of growing over it. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(20));
  p[20] = 'x';
  char *q = realloc(p, 24);
  free(q);
  return 0;
}
