/* expect: use-after-free
 * env: TESSERA_CHECK_GUARD=off TESSERA_CHECK_QUARANTINE=4K
 * A write to the last poisoned byte of a freed 256-byte block, found when it
 * leaves a small quarantine: the poison check's wide loop (32 bytes a load
 * where the CPU has AVX2) must reach the end of the poison. */
#include "wrong.h"
int main(void) {
  unsigned char *p = opaque(malloc(256));
  free(p);
  p[255] = 0;
  for (int i = 0; i < 1000; i++) free(opaque(malloc(64)));
  return 0;
}
