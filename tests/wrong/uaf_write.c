/* expect: use-after-free
 * A write to a freed block: caught at the instruction by the guard page. */
#include "wrong.h"
int main(void) {
  int *p = opaque(malloc(sizeof(int) * 4));
  free(p);
  p[2] = 42;
  return 0;
}
