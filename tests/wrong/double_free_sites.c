/* expect: double-free
 * Eight call sites allocate and free in turn, thousands of times, so the
 * per-thread memo of recent stacks (backtrace.c) holds more call sites
 * than it has ways in a set and keeps replacing them; then a block from
 * one site is freed twice. run.sh checks that the report's allocation and
 * free stacks name the right functions (a stale memo would name another). */
#include "wrong.h"
#define SITE(n) __attribute__((noinline)) static void *alloc_##n(void) { return opaque(malloc(16 + n)); } \
                __attribute__((noinline)) static void free_##n(void *p) { free(opaque(p)); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
int main(void) {
  void *(*const alloc[8])(void) = { alloc_0, alloc_1, alloc_2, alloc_3, alloc_4, alloc_5, alloc_6, alloc_7 };
  void (*const release[8])(void *) = { free_0, free_1, free_2, free_3, free_4, free_5, free_6, free_7 };
  for (int i = 0; i < 20000; i++) {
    int k = (i * 5) % 8;
    release[k](alloc[k]());
  }
  release[5](alloc[5]());   /* the memo now holds alloc_5 called from the loop's line */
  void *p = alloc_5();
  free_2(p);
  free_6(p);
  return 0;
}
