/* expect: heap-buffer-overflow
 * A threaded program is covered completely for its first 256 allocations
 * (guard.c, COMPLETE_THREADED): after a second thread has allocated, the
 * 200th block is still guarded, so a read past its end faults. */
#include "wrong.h"
#include <pthread.h>
static char *blocks[200];
static void *worker(void *arg) {
  (void)arg;
  free(opaque(malloc(32)));
  return NULL;
}
int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_join(t, NULL);
  for (int i = 0; i < 200; i++) blocks[i] = opaque(malloc(48));
  printf("%d\n", blocks[199][64]);
  for (int i = 0; i < 200; i++) free(blocks[i]);
  return 0;
}
