/* expect: heap-buffer-overflow
 * env: TESSERA_CHECK_GUARD=off
 * The block is never freed: the redzone check at exit finds the write. */
#include "wrong.h"
char *keep;
int main(void) {
  keep = opaque(malloc(40));
  keep[41] = 1;
  return 0;
}
