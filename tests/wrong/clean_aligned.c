/* expect: clean
 * Every aligned allocator, every alignment up to 64 KiB. */
#include <malloc.h>
#include "wrong.h"
int main(void) {
  for (size_t al = 8; al <= 65536; al *= 2) {
    void *a = NULL;
    if (posix_memalign(&a, al, 100) != 0 || ((size_t)a & (al - 1))) return 1;
    memset(a, 1, 100);
    free(a);
    char *b = aligned_alloc(al, al * 2);
    if (((size_t)b & (al - 1))) return 1;
    memset(b, 2, al * 2);
    free(b);
    char *c = memalign(al, 33);
    memset(c, 3, 33);
    free(c);
  }
  free(valloc(5000));
  return 0;
}
