/* expect: heap-buffer-overflow
 * env: TESSERA_CHECK_GUARD=off
 * An aligned block, one byte past its end. */
#include "wrong.h"
int main(void) {
  char *p = opaque(aligned_alloc(64, 100));
  p[100] = 1;
  free(p);
  return 0;
}
