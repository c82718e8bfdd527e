/* expect: memory-leak
 * A block whose only pointer is overwritten. */
#include "wrong.h"
char *last;
__attribute__((noinline)) static void lose(int i) {
  last = malloc(100 + (size_t)i);
  strcpy(last, "lost");
}
int main(void) {
  for (int i = 0; i < 5; i++) lose(i);
  last = NULL;
  scrub_stack();
  return 0;
}
