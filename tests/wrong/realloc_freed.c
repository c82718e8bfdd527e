/* expect: realloc-after-free */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(30));
  free(p);
  p = realloc(p, 60);
  printf("%p\n", (void *)p);
  return 0;
}
