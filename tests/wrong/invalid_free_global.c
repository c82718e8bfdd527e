/* expect: invalid-free */
#include "wrong.h"
char table[64];
int main(void) {
  free(opaque(table + 8));
  return 0;
}
