/* expect: heap-buffer-overflow
 * A read past the end: only the guard page sees reads. */
#include "wrong.h"
int main(void) {
  int *a = opaque(malloc(8 * sizeof(int)));
  long sum = 0;
  for (int i = 0; i <= 8; i++) sum += a[i] = i;   /* a[8] is past the end */
  printf("%ld\n", sum);
  free(a);
  return 0;
}
