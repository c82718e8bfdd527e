/* expect: double-free */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(20));
  free(p);
  free(p);
  return 0;
}
