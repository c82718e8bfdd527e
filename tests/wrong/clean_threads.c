/* expect: clean
 * Threads that pass blocks to each other and free them. */
#include <pthread.h>
#include "wrong.h"
#define N 4
static void *slots[N][1000];
static void *work(void *arg) {
  long id = (long)arg;
  for (int i = 0; i < 1000; i++) slots[id][i] = malloc((size_t)(i % 300) + 1);
  return NULL;
}
static void *reap(void *arg) {
  long id = (long)arg;
  for (int i = 0; i < 1000; i++) free(slots[(id + 1) % N][i]);
  return NULL;
}
int main(void) {
  pthread_t t[N];
  for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, work, (void *)i);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, reap, (void *)i);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  return 0;
}
