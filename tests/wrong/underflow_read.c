/* expect: heap-buffer-underflow
 * env: TESSERA_CHECK_GUARD=auto,underflow
 * A read just before the block: the left canary only sees writes, so only a
 * guard page on the underflow side catches it (at the instruction). */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(40));
  memset(p, 'a', 40);
  printf("%d\n", p[-1]);
  free(p);
  return 0;
}
