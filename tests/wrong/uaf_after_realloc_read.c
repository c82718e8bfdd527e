/* expect: use-after-free
 * A read through a stale pointer after realloc moved the block (guard page). */
#include "wrong.h"
int main(void) {
  int *p = opaque(malloc(4 * sizeof(int)));
  p[1] = 7;
  int *q = realloc(p, 400 * sizeof(int));
  printf("%d %d\n", q[1], p[1]);
  free(q);
  return 0;
}
