/* larson.c -- server simulation after Larson and Krishnan (1998).
 *
 * Each of THREADS lineages owns an array of 1000 slots holding blocks of
 * 16..1024 bytes. A thread replaces random slots for one round, then starts
 * a successor thread that inherits the array and exits: the successor frees
 * blocks its predecessor allocated, as a server's worker threads free
 * requests that other threads built, and thread exits keep abandoning heaps.
 * Work per lineage is fixed (weak scaling); check = bytes allocated, which
 * depends on the seeds only.
 */
#include "wl.h"

#include <stdatomic.h>

#define SLOTS 1000
#define MIN_SIZE 16
#define MAX_SIZE 1024

typedef struct lineage_s {
  void *slot[SLOTS];
  uint32_t size[SLOTS];
  uint64_t key[SLOTS];
  wl_rng_t rng;
  uint64_t rounds_left, ops, check, serial;
} lineage_t;

static uint64_t per_round;
static atomic_int lineages_left;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;

static void *lineage_round(void *arg) {
  lineage_t *l = arg;
  for (uint64_t i = 0; i < per_round; i++) {
    size_t k = (size_t)(wl_rand(&l->rng) % SLOTS);
    size_t n = wl_range(&l->rng, MIN_SIZE, MAX_SIZE);
    if (l->slot[k]) {
      if (!wl_tag_ok(l->slot[k], l->size[k], l->key[k])) wl_fail("larson block damaged", l->slot[k], l->size[k]);
      free(l->slot[k]);
    }
    l->slot[k] = wl_xmalloc(n);
    l->size[k] = (uint32_t)n;
    l->key[k] = ++l->serial;
    wl_tag(l->slot[k], n, l->key[k]);
    l->check += n;
  }
  l->ops += per_round;
  if (--l->rounds_left > 0) {
    pthread_t next;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&next, &attr, lineage_round, l) != 0) wl_fail("pthread_create", NULL, 0);
    pthread_attr_destroy(&attr);
    return NULL;
  }
  pthread_mutex_lock(&done_lock);
  if (atomic_fetch_sub(&lineages_left, 1) == 1) pthread_cond_signal(&done_cond);
  pthread_mutex_unlock(&done_lock);
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv);
  uint64_t rounds = wl_n(&a, 40);
  per_round = wl_n(&a, 500000);
  if (rounds < 2) rounds = 2;  /* at least one hand-over, even in QUICK runs */
  lineage_t *l = calloc((size_t)a.threads, sizeof *l);
  if (!l) wl_fail("out of memory", NULL, 0);
  atomic_store(&lineages_left, a.threads);
  double t0 = wl_now();
  for (int i = 0; i < a.threads; i++) {
    l[i].rng = wl_rng(3000 + (uint64_t)i);
    l[i].rounds_left = rounds;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, lineage_round, &l[i]) != 0) wl_fail("pthread_create", NULL, 0);
    pthread_attr_destroy(&attr);
  }
  pthread_mutex_lock(&done_lock);
  while (atomic_load(&lineages_left) > 0) pthread_cond_wait(&done_cond, &done_lock);
  pthread_mutex_unlock(&done_lock);
  double dt = wl_now() - t0;
  uint64_t ops = 0, check = 0;
  for (int i = 0; i < a.threads; i++) {
    for (size_t k = 0; k < SLOTS; k++) {
      if (!l[i].slot[k]) continue;
      if (!wl_tag_ok(l[i].slot[k], l[i].size[k], l[i].key[k])) wl_fail("larson block damaged", l[i].slot[k], 0);
      free(l[i].slot[k]);
    }
    ops += l[i].ops;
    check += l[i].check;
  }
  free(l);
  wl_result(ops, check, dt, 1);
  return 0;
}
