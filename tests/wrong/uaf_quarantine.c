/* expect: use-after-free
 * env: TESSERA_CHECK_GUARD=off TESSERA_CHECK_QUARANTINE=4K
 * A write to a freed block, found when it leaves a small quarantine. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(100));
  free(p);
  p[7] = 'x';
  for (int i = 0; i < 1000; i++) free(opaque(malloc(64)));
  return 0;
}
