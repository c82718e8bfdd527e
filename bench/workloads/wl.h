/* wl.h -- scaffolding shared by the benchmark workloads (header only).
 *
 * Each workload is one process: it parses "-t THREADS -s SCALE [MODE]", runs,
 * verifies its own blocks, and prints one line
 *   RESULT ops=N check=HEX [mops=X]
 * A damaged block prints "FAIL ..." and exits 1, so the runner tells a wrong
 * answer from a slow one. check depends on the workload's inputs only, never
 * on addresses, timing or thread interleaving, so the runner compares it
 * across allocators. SCALE multiplies the work (QUICK runs use ~0.02).
 */
#ifndef WL_H
#define WL_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct wl_args_s {
  int threads;        /* -t, >= 1 */
  double scale;       /* -s, work multiplier */
  const char *mode;   /* first non-option argument, or NULL */
} wl_args_t;

static inline wl_args_t wl_parse(int argc, char **argv) {
  wl_args_t a = {1, 1.0, NULL};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) a.threads = atoi(argv[++i]);
    else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) a.scale = atof(argv[++i]);
    else if (argv[i][0] != '-' && !a.mode) a.mode = argv[i];
    else {
      fprintf(stderr, "usage: %s [-t THREADS] [-s SCALE] [MODE]\n", argv[0]);
      exit(2);
    }
  }
  if (a.threads < 1 || a.threads > 1024 || !(a.scale > 0)) {
    fprintf(stderr, "%s: bad -t or -s\n", argv[0]);
    exit(2);
  }
  return a;
}

/* Work counts scale but never reach zero: a QUICK run must still execute
 * every path once. */
static inline uint64_t wl_n(const wl_args_t *a, double base) {
  double n = base * a->scale;
  return n < 1 ? 1 : (uint64_t)n;
}

static inline double wl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- randomness: splitmix64, cheap and seedable per thread ---------------- */
typedef struct wl_rng_s { uint64_t s; } wl_rng_t;

static inline uint64_t wl_rand(wl_rng_t *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static inline wl_rng_t wl_rng(uint64_t seed) {
  wl_rng_t r = {seed * 0x2545F4914F6CDD1Dull + 1};
  wl_rand(&r);
  return r;
}
/* Uniform in [lo, hi]. */
static inline size_t wl_range(wl_rng_t *r, size_t lo, size_t hi) {
  return lo + (size_t)(wl_rand(r) % (hi - lo + 1));
}
/* Log-uniform in [lo, hi]: as many blocks near lo as near hi in log scale,
 * the shape of real programs' request sizes. */
static inline size_t wl_logrange(wl_rng_t *r, size_t lo, size_t hi) {
  int lb = 63 - __builtin_clzll(lo), hb = 63 - __builtin_clzll(hi);
  int b = lb + (int)(wl_rand(r) % (uint64_t)(hb - lb + 1));
  size_t base = (size_t)1 << b;
  size_t v = base + (size_t)(wl_rand(r) & (base - 1));
  return v < lo ? lo : v > hi ? hi : v;
}

/* ---- block tags: what a workload writes into each block and checks before
 * freeing it. Head word = key, last byte = a function of the key, and one
 * byte per 4 KiB so that big blocks become resident as in real programs. */
static inline unsigned char wl_tail(uint64_t key) { return (unsigned char)(key * 0x9Dull >> 7) | 1; }

static inline void wl_tag(void *p, size_t size, uint64_t key) {
  unsigned char *b = p;
  if (size >= 8) memcpy(b, &key, 8);
  else b[0] = (unsigned char)key;
  for (size_t off = 4096; off < size; off += 4096) b[off] = (unsigned char)(key >> 8);
  b[size - 1] = wl_tail(key);
}

static inline int wl_tag_ok(const void *p, size_t size, uint64_t key) {
  const unsigned char *b = p;
  if (size >= 8) {
    uint64_t k;
    memcpy(&k, b, 8);
    if (k != key) return 0;
  } else if (b[0] != (unsigned char)key && size > 1) {
    return 0;
  }
  for (size_t off = 4096; off < size - 1; off += 4096)
    if (b[off] != (unsigned char)(key >> 8)) return 0;
  return b[size - 1] == wl_tail(key);
}

static inline void wl_fail(const char *what, const void *p, size_t size) {
  printf("FAIL %s (block %p, %zu bytes)\n", what, p, size);
  fflush(stdout);
  exit(1);
}

static inline void *wl_xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) wl_fail("malloc returned NULL", NULL, n);
  return p;
}

/* ---- threads: start together so the first thread does not finish before
 * the last one is created. */
typedef struct wl_thread_s {
  int index;
  int count;
  void *shared;
  void *(*fn)(struct wl_thread_s *);
  pthread_barrier_t *start;
  uint64_t ops, check;  /* per-thread results, summed by wl_run */
} wl_thread_t;

static inline void *wl_trampoline(void *arg) {
  wl_thread_t *t = arg;
  pthread_barrier_wait(t->start);
  t->fn(t);
  return NULL;
}

/* Run fn on n threads (the first on the calling thread, so -t 1 measures a
 * single-threaded program without pthread_create in the way) and sum the
 * results. Returns the wall time of the parallel part. */
static inline double wl_run(int n, void *(*fn)(wl_thread_t *), void *shared, uint64_t *ops, uint64_t *check) {
  wl_thread_t *t = calloc((size_t)n, sizeof *t);
  pthread_t *tid = calloc((size_t)n, sizeof *tid);
  pthread_barrier_t start;
  if (!t || !tid) wl_fail("out of memory for threads", NULL, 0);
  pthread_barrier_init(&start, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) t[i] = (wl_thread_t){i, n, shared, fn, &start, 0, 0};
  for (int i = 1; i < n; i++)
    if (pthread_create(&tid[i], NULL, wl_trampoline, &t[i]) != 0) wl_fail("pthread_create", NULL, 0);
  double t0 = wl_now();
  wl_trampoline(&t[0]);
  for (int i = 1; i < n; i++) pthread_join(tid[i], NULL);
  double dt = wl_now() - t0;
  for (int i = 0; i < n; i++) {
    *ops += t[i].ops;
    *check += t[i].check;
  }
  pthread_barrier_destroy(&start);
  free(t);
  free(tid);
  return dt;
}

static inline void wl_result(uint64_t ops, uint64_t check, double seconds, int with_mops) {
  if (with_mops)
    printf("RESULT ops=%llu check=%016llx mops=%.3f\n", (unsigned long long)ops, (unsigned long long)check,
           seconds > 0 ? (double)ops / seconds / 1e6 : 0.0);
  else
    printf("RESULT ops=%llu check=%016llx\n", (unsigned long long)ops, (unsigned long long)check);
}

#endif /* WL_H */
