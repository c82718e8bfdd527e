/* faults_rlimit.c -- real limits (RLIMIT_AS, what `ulimit -v` sets) instead
 * of injected failures. tests/api/contract.c already fills the address space
 * with 1 MiB blocks once; this extends it:
 *   every kind  for each kind of block (small, class page, big class, large,
 *               huge) allocate until NULL, which must say ENOMEM, with the
 *               invariant walk passing at the limit; free everything, trim,
 *               and allocate at least as much again (the memory came back);
 *               then, without trim, freed blocks of one kind must make room
 *               for another kind (small blocks freed, huge ones allocated);
 *   threads     one thread fills the address space again and again while
 *               other threads keep allocating and freeing small blocks: none
 *               of theirs may fail (their heaps already hold the memory they
 *               churn), and they must make progress while the limit is hit.
 * Each runs in a forked child (the limit stays there) with an alarm. The
 * allocator is compiled in, for tsr_invariant_check().
 */
#include "../../src/unity.c"
#include "../api/check.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEADROOM ((size_t)192 << 20)   /* address space allowed above what is mapped at the start */

#define CHILD_FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); _exit(1); } while (0)

static void limit_address_space(size_t headroom) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f == NULL || fscanf(f, "%lu", &pages) != 1) CHILD_FAIL("cannot read /proc/self/statm");
  fclose(f);
  rlim_t limit = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + headroom;
  struct rlimit rl = { limit, limit };
  if (setrlimit(RLIMIT_AS, &rl) != 0) CHILD_FAIL("setrlimit(RLIMIT_AS) failed");
}

/* Blocks chained through their first word: no table to allocate at the limit. */
typedef struct chain_s { struct chain_s *next; } chain_t;

/* Allocate blocks of `size` until NULL (or max); returns how many. */
static size_t chain_fill(chain_t **head, size_t size, size_t max, int *err) {
  size_t n = 0;
  *err = 0;
  while (n < max) {
    errno = 0;
    chain_t *c = malloc(size);
    if (c == NULL) { *err = errno; break; }
    c->next = *head;
    ((uint8_t *)c)[size - 1] = (uint8_t)n;   /* touch both ends: the pages are really used */
    *head = c;
    n++;
  }
  return n;
}

static void chain_free(chain_t **head) {
  while (*head != NULL) { chain_t *c = *head; *head = c->next; free(c); }
}

/* ---- one thread, every kind of block ------------------------------------------ */

static void child_every_kind(void) {
  alarm(60);
  limit_address_space(HEADROOM);
  static const size_t sizes[] = { 48, 5000, 100000, 300000, 3u << 20 };
  enum { KINDS = sizeof sizes / sizeof sizes[0] };
  size_t first[KINDS];
  for (size_t k = 0; k < KINDS; k++) {
    size_t size = sizes[k], max = HEADROOM / size * 2;
    chain_t *head = NULL;
    int err;
    first[k] = chain_fill(&head, size, max, &err);
    if (first[k] == max) CHILD_FAIL("%zu-byte blocks: %zu allocated, no NULL under the limit", size, first[k]);
    if (err != ENOMEM) CHILD_FAIL("%zu-byte blocks: NULL with errno %d, not ENOMEM", size, err);
    if ((uint64_t)first[k] * size < HEADROOM / 4)
      CHILD_FAIL("%zu-byte blocks: NULL after only %zu bytes", size, first[k] * size);
    if (tsr_invariant_check() != 0) CHILD_FAIL("%zu-byte blocks: invariants broken at the limit", size);
    chain_free(&head);
    malloc_trim(0);
    if (tsr_invariant_check() != 0) CHILD_FAIL("%zu-byte blocks: invariants broken after freeing", size);
    size_t again = chain_fill(&head, size, first[k], &err);
    if (again < first[k])
      CHILD_FAIL("%zu-byte blocks: %zu before the limit, only %zu after freeing them", size, first[k], again);
    printf("%7zu-byte blocks: %zu (%zu MiB) until ENOMEM, as many again after free and trim\n", size, first[k],
           first[k] * size >> 20);
    chain_free(&head);
    malloc_trim(0);
  }
  /* Freed memory of one kind must serve another kind at the limit without
   * the program calling malloc_trim: tessera gives back what it holds free
   * (empty segments, cached huge mappings) before it returns NULL. */
  static const int pairs[][2] = { { 0, 4 }, { 3, 4 }, { 4, 1 }, { 1, 3 } };
  for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
    size_t a = sizes[pairs[k][0]], b = sizes[pairs[k][1]];
    chain_t *head = NULL;
    int err;
    chain_fill(&head, a, SIZE_MAX, &err);
    chain_free(&head);
    size_t got = chain_fill(&head, b, SIZE_MAX, &err);
    chain_free(&head);
    malloc_trim(0);
    if (got < first[pairs[k][1]] * 3 / 4)
      CHILD_FAIL("%zu-byte blocks after %zu-byte ones were freed: %zu (%zu MiB) until ENOMEM, %zu (%zu MiB) on their "
                 "own", b, a, got, got * b >> 20, first[pairs[k][1]], first[pairs[k][1]] * b >> 20);
    printf("%7zu-byte blocks after %zu-byte ones were freed (no trim): %zu, %zu on their own\n", b, a, got,
           first[pairs[k][1]]);
  }
  if (tsr_invariant_check() != 0) CHILD_FAIL("invariants broken at the end");
  fflush(stdout);
  _exit(0);
}

/* ---- one thread exhausts, the others keep working ---------------------------------- */

#define WORKERS 3
#define HOG_ROUNDS 6

static struct {
  _Atomic int ready;          /* workers warmed up */
  _Atomic bool limited;       /* the limit is set: go */
  _Atomic bool at_limit;      /* the hog holds everything it could get */
  _Atomic bool done;
  _Atomic long ops;           /* worker malloc/free pairs */
  _Atomic long ops_at_limit;  /* of them, while the hog was at the limit */
  _Atomic long worker_nulls;
  _Atomic long hog_nulls;
  _Atomic int hog_bad_errno;
} storm;

static void churn(unsigned *seed, int id) {
  void *held[64];
  size_t sizes[64];
  for (int i = 0; i < 64; i++) {
    sizes[i] = 16 + rand_r(seed) % 2032;
    held[i] = malloc(sizes[i]);
    if (held[i] == NULL) { atomic_fetch_add(&storm.worker_nulls, 1); continue; }
    memset(held[i], id, sizes[i]);
  }
  for (int i = 0; i < 64; i++) {
    if (held[i] == NULL) continue;
    if (((uint8_t *)held[i])[sizes[i] - 1] != (uint8_t)id) CHILD_FAIL("worker %d: block damaged", id);
    free(held[i]);
    atomic_fetch_add(&storm.ops, 1);
    if (atomic_load(&storm.at_limit)) atomic_fetch_add(&storm.ops_at_limit, 1);
  }
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned seed = (unsigned)id * 7919u + 1;
  churn(&seed, id);   /* the heap's pages exist before the limit */
  atomic_fetch_add(&storm.ready, 1);
  while (!atomic_load(&storm.limited)) sched_yield();
  while (!atomic_load(&storm.done)) churn(&seed, id);
  return NULL;
}

static void *hog(void *arg) {
  (void)arg;
  while (!atomic_load(&storm.limited)) sched_yield();
  static const size_t sizes[] = { 1u << 20, 300000, 4u << 20, 200000 };
  for (int round = 0; round < HOG_ROUNDS; round++) {
    chain_t *head = NULL;
    int err;
    size_t size = sizes[round % 4];
    chain_fill(&head, size, SIZE_MAX, &err);
    atomic_fetch_add(&storm.hog_nulls, 1);
    if (err != ENOMEM) atomic_store(&storm.hog_bad_errno, err);
    /* Hold it all while the workers run a while: they must not notice. */
    long before = atomic_load(&storm.ops);
    atomic_store(&storm.at_limit, true);
    for (int spin = 0; spin < 200000 && atomic_load(&storm.ops) < before + 20000; spin++) sched_yield();
    atomic_store(&storm.at_limit, false);
    chain_free(&head);
    malloc_trim(0);
  }
  return NULL;
}

static void child_threads(void) {
  alarm(60);
  pthread_t w[WORKERS], h;
  for (int i = 0; i < WORKERS; i++) pthread_create(&w[i], NULL, worker, (void *)(intptr_t)(i + 1));
  pthread_create(&h, NULL, hog, NULL);
  while (atomic_load(&storm.ready) < WORKERS) sched_yield();
  limit_address_space(HEADROOM);
  atomic_store(&storm.limited, true);
  pthread_join(h, NULL);
  atomic_store(&storm.done, true);
  for (int i = 0; i < WORKERS; i++) pthread_join(w[i], NULL);
  if (storm.hog_bad_errno != 0) CHILD_FAIL("the hog's NULL came with errno %d, not ENOMEM", storm.hog_bad_errno);
  if (storm.worker_nulls != 0) CHILD_FAIL("%ld small allocations failed in the other threads", storm.worker_nulls);
  if (storm.ops_at_limit < HOG_ROUNDS)
    CHILD_FAIL("the other threads made no progress while memory was exhausted (%ld ops)", storm.ops_at_limit);
  if (tsr_invariant_check() != 0) CHILD_FAIL("invariants broken after the storm");
  printf("threads: the hog hit ENOMEM %ld times; %d other threads made %ld malloc/free pairs, %ld of them at the "
         "limit, none failed\n", storm.hog_nulls, WORKERS, storm.ops, storm.ops_at_limit);
  fflush(stdout);
  _exit(0);
}

/* ---- driver ------------------------------------------------------------------------- */

static int run_child(void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) fn();
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) fprintf(stderr, "child killed by signal %d%s\n", WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (hung)" : "");
  return st;
}

int main(void) {
  CHECK_SECTION("every kind");
  int st = run_child(child_every_kind);
  CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
  CHECK_SECTION("threads");
  st = run_child(child_threads);
  CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
  return check_done("faults_rlimit");
}
