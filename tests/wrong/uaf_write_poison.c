/* expect: use-after-free
 * env: TESSERA_CHECK_GUARD=off
 * A write to a freed block, found by its poison (at exit, still quarantined). */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(100));
  free(p);
  p[50] = 'x';
  return 0;
}
