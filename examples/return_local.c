/* return_local.c -- what happens when a function returns a pointer to its
 * local variable, and what freeing that pointer does.
 *
 * make_counter's local lives in make_counter's stack frame. The frame is
 * popped by the function's `ret`, so the pointer it returns points below the
 * stack pointer, into memory the next call reuses for its own frame. Reading
 * through it is undefined behaviour: built with -O0, as here, it reads
 * whatever the next call left there. The pointer was never returned by
 * malloc, so free() of it is an invalid free.
 * Usage: return_local [free]  (with "free": pass the pointer to free()).
 */
#include "measure.h"

__attribute__((noinline)) static int *make_counter(void) {
  int counter = 42;
  /* `return &counter;` is what the bug looks like. GCC warns about it and
   * compiles it to `return NULL` (a crash at the first use instead of a
   * silent wrong value), so the address goes through a volatile variable the
   * compiler cannot see through. */
  int *volatile escaped = &counter;
  return escaped;
}

/* Any call of similar depth: its frame lands where make_counter's was. */
__attribute__((noinline)) static int other_call(int seed) {
  int scratch[4] = {seed, seed + 1, seed + 2, seed + 3};
  return scratch[0] + scratch[3];
}

int main(int argc, char **argv) {
  ex_init();
  int main_local = 0;
  int *p = make_counter();
  int right_after = *p;       /* read before any other call */
  int r = other_call(1000);
  int after_call = *p;
  int *heap = malloc(sizeof *heap);
  printf("make_counter() returned %p, in %s\n", (void *)p, region_of(p));
  printf("main's own local is at  %p: %ld bytes above it (the stack grows down)\n",
         (void *)&main_local, (long)((char *)&main_local - (char *)p));
  printf("a malloc'd int is at    %p, in %s\n", (void *)heap, region_of(heap));
  printf("*p right after the return: %d\n", right_after);
  printf("*p after one more call:    %d (other_call(1000) = %d put its own locals there)\n",
         after_call, r);
  free(heap);
  if (argc > 1 && strcmp(argv[1], "free") == 0) {
    printf("free(p)...\n");
    free(p);
    printf("free(p) returned\n");
  }
  return 0;
}
