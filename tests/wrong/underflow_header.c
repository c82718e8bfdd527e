/* expect: heap-buffer-underflow
 * env: TESSERA_CHECK_GUARD=off
 * A write 40 bytes before the block: past the 16-byte left canary, into the
 * checking header that holds the block's size and stacks. The header's
 * check finds it at free (the report says the size and stacks are lost). */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(64));
  p[-40] = 1;
  free(p);
  return 0;
}
