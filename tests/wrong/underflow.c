/* expect: heap-buffer-underflow
 * One byte before the block. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(32));
  p[-1] = 1;
  free(p);
  return 0;
}
