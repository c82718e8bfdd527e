/* expect: heap-buffer-overflow
 * A small program is covered completely: the 900th allocation, with 899
 * others still live, is still guarded, so a read past its end faults. */
#include "wrong.h"
static char *blocks[900];
int main(void) {
  for (int i = 0; i < 900; i++) blocks[i] = opaque(malloc(48));
  printf("%d\n", blocks[899][64]);
  for (int i = 0; i < 900; i++) free(blocks[i]);
  return 0;
}
