/* expect: double-free
 * Two threads free the same block, one after the other. */
#include <pthread.h>
#include "wrong.h"
static void *shared;
static void *worker(void *arg) { (void)arg; free(shared); return NULL; }
int main(void) {
  shared = opaque(malloc(64));
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, worker, NULL);
  pthread_join(t, NULL);
  return 0;
}
