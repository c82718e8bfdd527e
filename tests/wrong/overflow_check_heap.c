/* expect: heap-buffer-overflow
 * env: TESSERA_CHECK_GUARD=off
 * On demand: tsr_check_heap() (found with dlsym: it exists only in tessera). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "wrong.h"
int main(void) {
  char *p = opaque(malloc(10));
  p[12] = 1;
  size_t (*check)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "tsr_check_heap");
  size_t errors = check ? check() : 0;
  printf("tsr_check_heap found %zu\n", errors);
  p[12] = (char)0xcb;   /* repaired: only the on-demand check saw it */
  free(p);
  return errors == 1 ? 0 : 1;
}
