/* expect: clean
 * A realloc chain that grows and shrinks, contents kept. */
#include "wrong.h"
int main(void) {
  char *p = NULL;
  for (size_t n = 1; n < 300000; n = n * 3 / 2 + 1) {
    p = realloc(p, n);
    p[n - 1] = (char)n;
    p[0] = 'a';
  }
  for (size_t n = 300000; n > 1; n /= 2) p = realloc(p, n);
  if (p[0] != 'a') return 1;
  free(p);
  return 0;
}
