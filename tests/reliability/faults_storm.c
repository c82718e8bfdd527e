/* faults_storm.c -- OS failures while threads race. faults.c numbers the
 * requests of one workload, so its threads run one phase at a time; here
 * 4 threads allocate, reallocate, free each other's blocks and trim at
 * random (every kind of block, up to 9 MiB) while the main thread keeps
 * re-arming the injection: a few requests let through, then one to three
 * failing, now and then every request failing for half a millisecond; a
 * thread is created and exits meanwhile. Every NULL must say ENOMEM, every
 * block keep its first and last bytes, and tsr_invariant_check() must pass
 * after each round, once the threads are joined.
 * Usage: faults_storm [ROUNDS] (default 10). The allocator is compiled in.
 */
#include "../../src/unity.c"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define THREADS 4
#define SLOTS 512
#define ARMINGS 200          /* per round, 0.5 ms apart */

static _Atomic(uint8_t *) slots[SLOTS];   /* blocks any thread may free: remote frees */
static _Atomic bool stop;
static _Atomic long ops, nulls, bad_errno, damaged;

static const size_t sizes[] = { 32, 100, 1000, 5000, 40000, 200000, 900000, 3u << 20, 9u << 20 };

/* A block keeps its size in its second word, and its size's low byte in its
 * first and last bytes (every size here is at least 32). */
static void mark(uint8_t *p, size_t n) {
  *(size_t *)(p + 8) = n;
  p[0] = p[n - 1] = (uint8_t)n;
}
static bool intact(const uint8_t *p) {
  size_t n = *(const size_t *)(p + 8);
  return p[0] == (uint8_t)n && p[n - 1] == (uint8_t)n;
}
static void check_and_free(uint8_t *p) {
  if (p == NULL) return;
  if (!intact(p)) damaged++;
  free(p);
}

static void on_null(void) {
  nulls++;
  if (errno != ENOMEM) bad_errno++;
}

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
  while (!atomic_load(&stop)) {
    unsigned r = (unsigned)rand_r(&seed);
    unsigned i = r % SLOTS;
    size_t n = sizes[(r >> 12) % 9] + (r >> 20) % 64;
    uint8_t *p = atomic_exchange(&slots[i], NULL);
    if (p != NULL && (r >> 10) % 3 == 0) {
      if (!intact(p)) damaged++;
      size_t old = *(size_t *)(p + 8);
      errno = 0;
      uint8_t *q = realloc(p, n);
      if (q == NULL) {
        on_null();
        check_and_free(p);   /* the old block must be intact */
      } else {
        if (q[0] != (uint8_t)old || *(size_t *)(q + 8) != old || (n >= old && q[old - 1] != (uint8_t)old)) damaged++;
        free(q);
      }
    } else if (p != NULL) {
      check_and_free(p);
    } else {
      errno = 0;
      p = (r >> 8) & 1 ? malloc(n) : aligned_alloc(4096, n);
      if (p == NULL) {
        on_null();
      } else {
        mark(p, n);
        check_and_free(atomic_exchange(&slots[i], p));
      }
    }
    if ((r & 1023) == 0) malloc_trim(0);
    ops++;
  }
  return NULL;
}

static void *short_lived(void *arg) {
  void *p = malloc(100);
  free(p);
  return arg;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 10;
  unsigned seed = (unsigned)getpid();
  for (int round = 0; round < rounds; round++) {
    atomic_store(&stop, false);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(round * THREADS + i + 1));
    for (int k = 0; k < ARMINGS; k++) {
      tsr_platform_fault_inject(rand_r(&seed) % 8, k % 7 == 0 ? -1 : 1 + rand_r(&seed) % 3);
      usleep(500);
      if (k % 50 == 0) {
        pthread_t e;
        if (pthread_create(&e, NULL, short_lived, NULL) == 0) pthread_join(e, NULL);
      }
    }
    tsr_platform_fault_inject(-1, 0);
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    size_t broken = tsr_invariant_check();
    if (broken != 0 || bad_errno != 0 || damaged != 0) {
      printf("faults_storm: round %d: %zu invariants broken, %ld NULLs without ENOMEM, %ld blocks damaged\n", round,
             broken, bad_errno, damaged);
      return 1;
    }
  }
  for (int i = 0; i < SLOTS; i++) check_and_free(atomic_exchange(&slots[i], NULL));
  malloc_trim(0);
  if (tsr_invariant_check() != 0) { printf("faults_storm: invariants broken at the end\n"); return 1; }
  if (nulls == 0) { printf("faults_storm: no call failed: the injection never reached the threads\n"); return 1; }
  printf("faults_storm: %d rounds, %ld calls by %d threads, %ld returned NULL (ENOMEM), no block damaged, "
         "invariants whole after every round\n", rounds, ops, THREADS, nulls);
  return 0;
}
