/* expect: free-alignment-mismatch
 * free_aligned_sized with an alignment other than the block's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "wrong.h"
int main(void) {
  void (*fas)(void *, size_t, size_t) = (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
  void *p = aligned_alloc(64, 128);
  if (fas) fas(p, 128, 128); else free(p);
  return 0;
}
