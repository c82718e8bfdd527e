/* prodcons.c -- producer-consumer: every free is remote.
 *
 * THREADS (>= 2) threads form a ring. Each allocates blocks of 32..2048
 * bytes, tags them and passes them to the next thread through a
 * single-producer single-consumer queue; each frees only what it received.
 * So every block is freed by a thread other than the one that allocated it,
 * the pattern of pipelines and message-passing servers. A full queue makes
 * the producer drain its own inbox first, so the ring cannot deadlock.
 * check = bytes received, which depends on the seeds only.
 */
#include "wl.h"

#include <sched.h>
#include <stdatomic.h>

#define QCAP 4096   /* power of two */
#define MIN_SIZE 32   /* room for the tag and the header words */
#define MAX_SIZE 2048

typedef struct queue_s {
  _Alignas(64) atomic_size_t head;  /* consumer position */
  _Alignas(64) atomic_size_t tail;  /* producer position */
  _Alignas(64) void *item[QCAP];
} queue_t;

static queue_t *queues;
static uint64_t per_thread;

/* Free everything waiting in q; the block header says its size and key. */
static uint64_t drain(queue_t *q, wl_thread_t *t) {
  size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
  size_t e = atomic_load_explicit(&q->tail, memory_order_acquire);
  uint64_t got = 0;
  for (; h != e; h++) {
    uint64_t *b = q->item[h & (QCAP - 1)];
    size_t n = (size_t)b[1];
    if (!wl_tag_ok(b, n, b[0]) || b[2] != b[0] * 7) wl_fail("block damaged in transit", b, n);
    t->check += n;
    free(b);
    got++;
  }
  atomic_store_explicit(&q->head, h, memory_order_release);
  return got;
}

static void *run(wl_thread_t *t) {
  queue_t *out = &queues[t->index], *in = &queues[(t->index + t->count - 1) % t->count];
  wl_rng_t r = wl_rng(4000 + (uint64_t)t->index);
  uint64_t received = 0;
  for (uint64_t i = 0; i < per_thread; i++) {
    size_t n = wl_range(&r, MIN_SIZE, MAX_SIZE);
    uint64_t *b = wl_xmalloc(n);
    uint64_t key = ((uint64_t)t->index << 40) | i;
    wl_tag(b, n, key);
    b[1] = n;
    b[2] = key * 7;
    size_t tail = atomic_load_explicit(&out->tail, memory_order_relaxed);
    while (tail - atomic_load_explicit(&out->head, memory_order_acquire) >= QCAP) {
      uint64_t got = drain(in, t);
      if (got == 0) sched_yield();
      received += got;
    }
    out->item[tail & (QCAP - 1)] = b;
    atomic_store_explicit(&out->tail, tail + 1, memory_order_release);
    if ((i & 63) == 63) received += drain(in, t);
  }
  while (received < per_thread) {
    uint64_t got = drain(in, t);
    if (got == 0) sched_yield();
    received += got;
  }
  t->ops = per_thread;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv);
  if (a.threads < 2) {
    fprintf(stderr, "prodcons: needs at least 2 threads\n");
    return 2;
  }
  per_thread = wl_n(&a, 6e6);
  queues = aligned_alloc(64, sizeof(queue_t) * (size_t)a.threads);
  if (!queues) wl_fail("out of memory", NULL, 0);
  memset(queues, 0, sizeof(queue_t) * (size_t)a.threads);
  uint64_t ops = 0, check = 0;
  double dt = wl_run(a.threads, run, NULL, &ops, &check);
  free(queues);
  wl_result(ops, check, dt, 1);
  return 0;
}
