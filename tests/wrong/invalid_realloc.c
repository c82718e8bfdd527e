/* expect: invalid-realloc */
#include "wrong.h"
int main(void) {
  int local[4];
  void *p = realloc(opaque(local), 64);
  printf("%p\n", p);
  return 0;
}
