/* expect: heap-buffer-overflow
 * A large block (1 MiB, not guarded), 1 byte past the end. */
#include "wrong.h"
int main(void) {
  size_t n = 1 << 20;
  char *p = opaque(malloc(n));
  memset(p, 0, n + 1);
  free(p);
  return 0;
}
