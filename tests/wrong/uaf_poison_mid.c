/* expect: use-after-free
 * env: TESSERA_CHECK_GUARD=off TESSERA_CHECK_QUARANTINE=4K
 * A write to byte 140 of a freed 160-byte block (the poison check's second
 * 128-byte step would not exist; its 32-byte and overlapping last loads
 * must cover it), found when the block leaves a small quarantine. */
#include "wrong.h"
int main(void) {
  unsigned char *p = opaque(malloc(160));
  free(p);
  p[140] = 1;
  for (int i = 0; i < 1000; i++) free(opaque(malloc(64)));
  return 0;
}
