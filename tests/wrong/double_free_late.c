/* expect: double-free
 * The second free comes after 10,000 intervening allocations. */
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(48));
  free(p);
  static void *blocks[10000];
  for (int i = 0; i < 10000; i++) blocks[i] = malloc((size_t)(i % 200) + 1);
  free(p);
  for (int i = 0; i < 10000; i++) free(blocks[i]);
  return 0;
}
