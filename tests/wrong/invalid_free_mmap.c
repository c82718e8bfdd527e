/* expect: invalid-free */
#include <sys/mman.h>
#include "wrong.h"
int main(void) {
  void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  free(p);
  munmap(p, 8192);
  return 0;
}
