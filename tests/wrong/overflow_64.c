/* expect: heap-buffer-overflow
 * 64 bytes past the end: beyond the redzone, caught by the guard page. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(32));
  p[32 + 63] = 1;
  free(p);
  return 0;
}
