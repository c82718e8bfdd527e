/* churn.c -- random-size churn of long- and short-lived blocks, in the style
 * of xmalloc-test and mimalloc-bench's mstress.
 *
 * Each thread keeps 4000 long-lived blocks and replaces one now and then,
 * while most requests are short-lived blocks kept in a 32-deep FIFO. Sizes
 * are log-uniform over 24 B..16 KiB with 1 in 256 up to 256 KiB. One long-lived
 * replacement in 16 goes through a shared exchange array, so a thread later
 * frees blocks that another thread allocated, and memory moves between heaps.
 * Blocks carry their size and key in a header, so whoever frees them checks
 * them. check = bytes allocated, which depends on the seeds only.
 */
#include "wl.h"

#include <stdatomic.h>

#define LONG_SLOTS 4000
#define FIFO 32
#define XCHG 1024

static _Atomic(uint64_t *) exchange[XCHG];
static uint64_t per_thread;

static size_t pick_size(wl_rng_t *r) {
  if ((wl_rand(r) & 255) == 0) return wl_logrange(r, 16384, 256 * 1024);
  return wl_logrange(r, 24, 16384);  /* 24: header words plus the tail byte */
}

/* Header: word 0 = key (the tag), word 1 = size. */
static uint64_t *make(wl_rng_t *r, uint64_t key, wl_thread_t *t) {
  size_t n = pick_size(r);
  uint64_t *b = wl_xmalloc(n);
  wl_tag(b, n, key);
  b[1] = n;
  t->check += n;
  return b;
}

static void drop(uint64_t *b) {
  if (!b) return;
  size_t n = (size_t)b[1];
  if (n < 24 || !wl_tag_ok(b, n, b[0])) wl_fail("churn block damaged", b, n);
  free(b);
}

static void *run(wl_thread_t *t) {
  wl_rng_t r = wl_rng(5000 + (uint64_t)t->index);
  uint64_t *lng[LONG_SLOTS] = {0}, *fifo[FIFO] = {0};
  uint64_t key = (uint64_t)t->index << 48;
  for (size_t i = 0; i < LONG_SLOTS; i++) lng[i] = make(&r, ++key, t);
  for (uint64_t i = 0; i < per_thread; i++) {
    uint64_t dice = wl_rand(&r);
    if ((dice & 15) == 0) {
      size_t k = (size_t)((dice >> 8) % LONG_SLOTS);
      uint64_t *b = make(&r, ++key, t);
      if (((dice >> 4) & 15) == 0) {
        /* Park the fresh block for another thread and take what is parked. */
        b = atomic_exchange(&exchange[(dice >> 32) % XCHG], b);
      }
      drop(lng[k]);
      lng[k] = b;
    } else {
      size_t k = (size_t)(i % FIFO);
      drop(fifo[k]);
      fifo[k] = make(&r, ++key, t);
    }
  }
  for (size_t i = 0; i < LONG_SLOTS; i++) drop(lng[i]);
  for (size_t i = 0; i < FIFO; i++) drop(fifo[i]);
  t->ops = per_thread;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv);
  per_thread = wl_n(&a, 6e6);
  uint64_t ops = 0, check = 0;
  /* Filled up front so an exchange never comes back empty, whatever the
   * interleaving: that keeps check independent of scheduling. */
  wl_thread_t main_t = {0};
  wl_rng_t r = wl_rng(4999);
  for (size_t i = 0; i < XCHG; i++) atomic_store(&exchange[i], make(&r, (1ull << 62) | i, &main_t));
  check += main_t.check;
  double dt = wl_run(a.threads, run, NULL, &ops, &check);
  for (size_t i = 0; i < XCHG; i++) drop(atomic_load(&exchange[i]));
  wl_result(ops, check, dt, 1);
  return 0;
}
