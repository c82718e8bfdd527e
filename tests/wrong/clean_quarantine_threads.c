/* expect: clean
 * env: TESSERA_CHECK_GUARD=off TESSERA_CHECK_QUARANTINE=1M
 * Four threads each free 160 MiB of blocks while the others do: every
 * thread keeps a quarantine of its own, and together they must stay within
 * the 1 MiB limit (a share each), so peak RSS stays far below what an
 * unbounded quarantine would hold. Exit status 1 if it does not. */
#include <pthread.h>
#include <sys/resource.h>
#include "wrong.h"
#define THREADS 4
#define BLOCKS 40000
#define SIZE 4096
static void *work(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKS; i++) {
    char *p = malloc(SIZE);
    if (p == NULL) return (void *)1;
    p[0] = p[SIZE - 1] = (char)i;
    free(p);
  }
  return NULL;
}
int main(void) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, NULL);
  for (int i = 0; i < THREADS; i++) {
    void *r;
    pthread_join(t[i], &r);
    if (r != NULL) { fprintf(stderr, "malloc failed\n"); return 1; }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (ru.ru_maxrss > 64 * 1024) {   /* KiB */
    fprintf(stderr, "peak RSS %ld KiB: the quarantine was not bounded\n", ru.ru_maxrss);
    return 1;
  }
  return 0;
}
