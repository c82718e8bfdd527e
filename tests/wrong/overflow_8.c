/* expect: heap-buffer-overflow
 * env: TESSERA_CHECK_GUARD=off
 * 8 bytes past the end, redzones only (no guard pages). */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(24));
  memset(p, 0, 24 + 8);
  free(p);
  return 0;
}
