/* expect: double-free
 * env: TESSERA_CHECK_GUARD=off
 * A block of alignment 256 (its header sits past a pad, not at the core
 * block's start) freed twice. */
#include "wrong.h"
int main(void) {
  void *p = NULL;
  if (posix_memalign(&p, 256, 100) != 0) return 1;
  p = opaque(p);
  free(p);
  free(p);
  return 0;
}
