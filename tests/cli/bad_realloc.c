/* bad_realloc.c -- a deliberately broken allocator for the CLI tests: its
 * realloc moves every block and flips the first byte it copies, so `tessera replay`
 * must report lost contents (proof that the check can fail). Everything
 * else is glibc's, reached through the __libc_* names.
 */
#include <stddef.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern size_t malloc_usable_size(void *);

void *realloc(void *p, size_t n) {
  if (!p) return __libc_malloc(n);
  if (!n) {
    __libc_free(p);
    return NULL;
  }
  void *q = __libc_malloc(n);
  if (!q) return NULL;
  size_t old = malloc_usable_size(p);
  size_t keep = old < n ? old : n;
  memcpy(q, p, keep);
  if (keep) ((unsigned char *)q)[0] ^= 0xff;  /* the damage: first byte flipped */
  __libc_free(p);
  return q;
}
