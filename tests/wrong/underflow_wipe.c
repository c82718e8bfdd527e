/* expect: heap-buffer-underflow
 * env: TESSERA_CHECK_GUARD=off
 * A loop that clears the 48 bytes before the block: the left canary and
 * the whole checking header, its first word included, so the pointer no
 * longer finds a header; the damaged canary below it still says underflow
 * (not an invalid free). */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(64));
  for (int i = 1; i <= 48; i++) p[-i] = 0;
  free(p);
  return 0;
}
