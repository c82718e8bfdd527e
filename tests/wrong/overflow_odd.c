/* expect: heap-buffer-overflow
 * env: TESSERA_CHECK_GUARD=off
 * strcpy into a block one byte too small (the terminating NUL). */
#include "wrong.h"
int main(void) {
  const char *text = "hello, world";   /* 12 characters + NUL */
  char *p = opaque(malloc(strlen(text)));
  strcpy(p, text);
  printf("%s\n", p);
  free(p);
  return 0;
}
