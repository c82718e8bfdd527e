/* thread_exit_free.c -- blocks outlive the thread that allocated them.
 *
 * A producer thread allocates blocks, publishes them and exits; consumers
 * free them afterwards (some while the producer is still exiting), and keep
 * allocating, so the dead thread's heap is abandoned, then reclaimed or
 * reused. Repeated over several generations. Exit 1 on a damaged block.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCKS = 20000, CONSUMERS = 3, GENERATIONS = 6 };

static unsigned char *blocks[BLOCKS];
static size_t sizes[BLOCKS];
static atomic_int published;   /* blocks [0, published) are ready */
static atomic_long errors;
static int generation;

static void *producer(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKS; i++) {
    size_t n = (size_t)((i * 2654435761u + (unsigned)generation) % (i % 50 == 0 ? 200000 : 700)) + 1;
    unsigned char *p = malloc(n);
    if (!p) { atomic_fetch_add(&errors, 1); continue; }
    memset(p, (i ^ generation) & 0xff, n);
    sizes[i] = n;
    blocks[i] = p;
    atomic_store_explicit(&published, i + 1, memory_order_release);
  }
  return NULL;  /* exits with all its blocks live */
}

static void *consumer(void *arg) {
  int me = (int)(intptr_t)arg;
  void *mine[512] = {0};
  for (int i = me; i < BLOCKS; i += CONSUMERS) {
    while (atomic_load_explicit(&published, memory_order_acquire) <= i) {}
    unsigned char *p = blocks[i];
    if (!p) continue;
    for (size_t k = 0; k < sizes[i]; k += 61)
      if (p[k] != ((i ^ generation) & 0xff)) {
        if (atomic_fetch_add(&errors, 1) < 5)
          fprintf(stderr, "thread_exit_free: block %d damaged at %zu\n", i, k);
        break;
      }
    free(p);
    int s = i & 511;
    free(mine[s]);
    mine[s] = malloc((size_t)(i % 300) + 1);
  }
  for (int s = 0; s < 512; s++) free(mine[s]);
  return NULL;
}

int main(void) {
  for (generation = 0; generation < GENERATIONS; generation++) {
    atomic_store(&published, 0);
    pthread_t p, c[CONSUMERS];
    pthread_create(&p, NULL, producer, NULL);
    if (generation % 2) pthread_join(p, NULL);  /* odd: producer gone before any free */
    for (int i = 0; i < CONSUMERS; i++) pthread_create(&c[i], NULL, consumer, (void *)(intptr_t)i);
    if (generation % 2 == 0) pthread_join(p, NULL);  /* even: it exits while consumers free */
    for (int i = 0; i < CONSUMERS; i++) pthread_join(c[i], NULL);
  }
  long e = atomic_load(&errors);
  printf("thread_exit_free: %d generations of %d blocks, %ld errors\n", GENERATIONS, BLOCKS, e);
  return e ? 1 : 0;
}
