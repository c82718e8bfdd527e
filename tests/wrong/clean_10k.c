/* expect: clean
 * 10,000 live blocks, kept reachable from a global until exit. */
#include "wrong.h"
static char *blocks[10000];
int main(void) {
  for (int i = 0; i < 10000; i++) { blocks[i] = malloc((size_t)(i % 500) + 1); blocks[i][0] = 1; }
  for (int i = 0; i < 10000; i += 2) free(blocks[i]);
  for (int i = 0; i < 10000; i += 2) blocks[i] = calloc(1, 64);
  return 0;
}
