/* pool.c -- pool churn, reported in Mops/s.
 *
 *   shared  16,384 shared slots; each thread allocates a 16..1024-byte block,
 *           swaps it into a random slot with an atomic exchange and frees the
 *           block it took out. Most frees are remote as soon as there are two
 *           threads: the object caches and connection pools of servers
 *   local   each thread allocates 64 blocks of 16..1024 bytes, then frees
 *           them, over and over: thread-local batches, the best case
 * An op is one malloc/free pair. check = bytes allocated (seeds only).
 */
#include "wl.h"

#include <stdatomic.h>

#define SLOTS 16384
#define BATCH 64
#define MIN_SIZE 16
#define MAX_SIZE 1024

static _Atomic(uint64_t *) slot[SLOTS];
static uint64_t per_thread;

/* A block's first word is its key and the second its size, so the
 * freeing thread can check it without any side table. 16 bytes minimum. */
static void check_drop(uint64_t *b) {
  if (!b) return;
  size_t n = (size_t)(b[1] & 0xffff);
  if (n < MIN_SIZE || n > MAX_SIZE || !wl_tag_ok(b, n, b[0])) wl_fail("pool block damaged", b, n);
  free(b);
}

static void *run_shared(wl_thread_t *t) {
  wl_rng_t r = wl_rng(7000 + (uint64_t)t->index);
  uint64_t key = (uint64_t)t->index << 48;
  for (uint64_t i = 0; i < per_thread; i++) {
    uint64_t dice = wl_rand(&r);
    size_t n = MIN_SIZE + (size_t)(dice % (MAX_SIZE - MIN_SIZE + 1));
    uint64_t *b = wl_xmalloc(n);
    b[0] = ++key;
    b[1] = n;
    ((unsigned char *)b)[n - 1] = wl_tail(key);
    t->check += n;
    check_drop(atomic_exchange_explicit(&slot[(dice >> 32) % SLOTS], b, memory_order_acq_rel));
  }
  t->ops = per_thread;
  return NULL;
}

static void *run_local(wl_thread_t *t) {
  wl_rng_t r = wl_rng(8000 + (uint64_t)t->index);
  uint64_t *b[BATCH];
  uint64_t key = (uint64_t)t->index << 48;
  for (uint64_t i = 0; i < per_thread / BATCH; i++) {
    for (int k = 0; k < BATCH; k++) {
      size_t n = wl_range(&r, MIN_SIZE, MAX_SIZE);
      b[k] = wl_xmalloc(n);
      b[k][0] = ++key;
      b[k][1] = n;
      ((unsigned char *)b[k])[n - 1] = wl_tail(key);
      t->check += n;
    }
    for (int k = 0; k < BATCH; k++) check_drop(b[k]);
  }
  t->ops = per_thread / BATCH * BATCH;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv);
  const char *m = a.mode ? a.mode : "shared";
  void *(*fn)(wl_thread_t *);
  if (strcmp(m, "shared") == 0) fn = run_shared, per_thread = wl_n(&a, 1e7);
  else if (strcmp(m, "local") == 0) fn = run_local, per_thread = wl_n(&a, 3e7);
  else {
    fprintf(stderr, "pool: unknown mode %s\n", m);
    return 2;
  }
  if (per_thread < BATCH) per_thread = BATCH;
  uint64_t ops = 0, check = 0;
  double dt = wl_run(a.threads, fn, NULL, &ops, &check);
  for (size_t i = 0; i < SLOTS; i++) check_drop(atomic_load(&slot[i]));
  wl_result(ops, check, dt, 1);
  return 0;
}
