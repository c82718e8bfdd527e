/* expect: use-after-free
 * env: TESSERA_CHECK_GUARD=off TESSERA_CHECK_QUARANTINE=4K
 * A thread frees a block and exits; its quarantine joins the orphans. A
 * write to the block is found when another thread's frees push the orphan
 * out of the quarantine (run.sh checks that it is found then, not at exit). */
#include <pthread.h>
#include "wrong.h"
static char *block;
static void *worker(void *arg) {
  (void)arg;
  block = opaque(malloc(100));
  free(block);
  return NULL;
}
int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_join(t, NULL);
  block[7] = 'x';
  for (int i = 0; i < 1000; i++) free(opaque(malloc(64)));
  puts("after the frees");
  return 0;
}
