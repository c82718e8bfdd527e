/* expect: invalid-free
 * free of a pointer 8 bytes inside a block. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(100));
  free(p + 8);
  free(p);
  return 0;
}
