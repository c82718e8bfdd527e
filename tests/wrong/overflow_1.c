/* expect: heap-buffer-overflow
 * One byte past an odd-sized block: inside the alignment padding, so the
 * canary finds it at free. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(13));
  p[13] = 'x';
  free(p);
  return 0;
}
