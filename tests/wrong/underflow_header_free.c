/* expect: heap-buffer-underflow
 * env: TESSERA_CHECK_GUARD=off
 * A write 26 bytes before a live block: past the left canary, into the
 * header word that will hold the free's stack id. The header's check does
 * not cover the free's fields (a free writes them without a new check),
 * so for a live block they must be zero: the write is found at free. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(64));
  p[-26] = 1;
  free(p);
  return 0;
}
