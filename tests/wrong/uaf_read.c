/* expect: use-after-free
 * A read of a freed block: caught at the instruction by the guard page. */
#include "wrong.h"
int main(void) {
  int *p = opaque(malloc(sizeof(int) * 4));
  p[0] = 42;
  free(p);
  printf("%d\n", p[0]);
  return 0;
}
