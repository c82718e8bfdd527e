/* expect: free-size-mismatch
 * free_sized (C23) with the wrong size; looked up at run time (glibc 2.36
 * does not have it). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "wrong.h"
int main(void) {
  void (*free_sized)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  void *p = malloc(40);
  if (free_sized) free_sized(p, 48); else free(p);
  return 0;
}
