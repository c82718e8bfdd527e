/* valgrind_classic.c -- the memory-error program of the Valgrind Quick Start
 * Guide (its f(): a heap block overrun and a leak), with three more classic
 * errors after it, to run under `tessera check` and under Valgrind side by
 * side. Each problem is numbered; the report of each tool names the line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void f(void)
{
   int* x = malloc(10 * sizeof(int));
   x[10] = 0;        // problem 1: heap block overrun
}                    // problem 2: memory leak -- x not freed

/* The compiler sees problems 3 and 5 too (GCC 12: -Wuse-after-free); the
 * pointer goes through a volatile slot so that the program still builds
 * with -Werror and the tools, not the compiler, find them. */
static char *volatile slot;

int main(void)
{
   setvbuf(stdout, NULL, _IOLBF, 0);  // each line at once, in order with the reports
   f();

   slot = malloc(16);
   strcpy(slot, "hello");
   free(slot);
   printf("s[0] after free: %d\n", slot[0]);   // problem 3: read of freed memory

   int *n = malloc(sizeof *n);
   if (*n > 0)                                  // problem 4: uninitialised value
      printf("*n is positive\n");
   free(n);

   free(slot);                                  // problem 5: double free
   return 0;
}
