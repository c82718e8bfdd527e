/* expect: invalid-free */
#include "wrong.h"
int main(void) {
  free(opaque((void *)0x100000));
  return 0;
}
