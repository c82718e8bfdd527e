/* expect: invalid-free
 * The seed's bug: a function returns a pointer to its local array. */
#include "wrong.h"
__attribute__((noinline)) static char *make_name(void) {
  char name[32];
  strcpy(name, "local");
  return opaque(name);
}
int main(void) {
  char *n = make_name();
  free(n);
  return 0;
}
