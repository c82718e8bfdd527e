/* expect: memory-leak
 * env: TESSERA_CHECK_GUARD=off
 * A lost block of alignment 64: the leak scan finds its header past the pad. */
#include "wrong.h"
int main(void) {
  void *p = opaque(aligned_alloc(64, 200));
  memset(p, 1, 200);
  p = NULL;
  opaque(NULL);
  scrub_stack();
  return 0;
}
