/* expect: heap-buffer-underflow
 * env: TESSERA_CHECK_GUARD=off
 * A loop that runs down to index -2 of an int array. */
#include "wrong.h"
int main(void) {
  int *a = opaque(malloc(10 * sizeof(int)));
  for (int i = 9; i >= -2; i--) a[i] = i;
  free(a);
  return 0;
}
