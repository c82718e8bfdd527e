/* micro.c -- single-operation micro benchmarks, one mode per run.
 *
 *   hot          malloc/free pairs, one size class at a time (the fast path)
 *   batch        4096 random-size blocks allocated, then freed in random order
 *   calloc       calloc of mixed sizes; checks the zeroing, then dirties the
 *                block so a lazy allocator cannot pass by reusing clean memory
 *   realloc-vec  a vector pushed element by element, capacity doubling to 64 MiB
 *   realloc-str  64 strings grown one byte per realloc, round robin, so that
 *                in-place growth competes with neighbours
 * Every thread does the same work on its own blocks (weak scaling). Built with
 * -fno-builtin-malloc and friends so the compiler cannot drop a malloc/free pair.
 */
#include "wl.h"

volatile uint64_t wl_sink;  /* results escape here so no loop is dead */

static const size_t hot_sizes[] = {8, 16, 24, 32, 48, 64, 80, 96, 128, 160, 192, 256,
                                   320, 384, 512, 768, 1024, 2048, 4096, 8192};
#define HOT_COUNT (sizeof hot_sizes / sizeof hot_sizes[0])

static uint64_t iters;  /* per thread, per size or per round */

static void *run_hot(wl_thread_t *t) {
  uint64_t acc = 0;
  for (size_t k = 0; k < HOT_COUNT; k++) {
    size_t s = hot_sizes[k];
    for (uint64_t i = 0; i < iters; i++) {
      unsigned char *p = wl_xmalloc(s);
      p[0] = (unsigned char)i;
      p[s - 1] = (unsigned char)k;
      acc += p[0] + p[s - 1];
      free(p);
    }
    t->ops += iters;
  }
  t->check = acc;
  return NULL;
}

#define BATCH 4096
static void *run_batch(wl_thread_t *t) {
  wl_rng_t r = wl_rng(1000 + (uint64_t)t->index);
  void **p = wl_xmalloc(BATCH * sizeof *p);
  size_t *sz = wl_xmalloc(BATCH * sizeof *sz);
  uint32_t *order = wl_xmalloc(BATCH * sizeof *order);
  for (uint64_t round = 0; round < iters; round++) {
    for (uint32_t i = 0; i < BATCH; i++) {
      sz[i] = wl_range(&r, 16, 512);
      p[i] = wl_xmalloc(sz[i]);
      wl_tag(p[i], sz[i], round * BATCH + i);
      order[i] = i;
      t->check += sz[i];
    }
    for (uint32_t i = BATCH - 1; i > 0; i--) {
      uint32_t j = (uint32_t)(wl_rand(&r) % (i + 1)), x = order[i];
      order[i] = order[j];
      order[j] = x;
    }
    for (uint32_t i = 0; i < BATCH; i++) {
      uint32_t k = order[i];
      if (!wl_tag_ok(p[k], sz[k], round * BATCH + k)) wl_fail("batch block damaged", p[k], sz[k]);
      free(p[k]);
    }
    t->ops += BATCH;
  }
  free(p);
  free(sz);
  free(order);
  return NULL;
}

#define CWIN 64
static void *run_calloc(wl_thread_t *t) {
  wl_rng_t r = wl_rng(2000 + (uint64_t)t->index);
  unsigned char *win[CWIN] = {0};
  for (uint64_t i = 0; i < iters; i++) {
    size_t n = (wl_rand(&r) & 63) == 0 ? wl_logrange(&r, 16384, 1 << 20) : wl_logrange(&r, 8, 4096);
    size_t count = n / 8, k = i % CWIN;
    unsigned char *p = calloc(count, 8);
    if (!p) wl_fail("calloc returned NULL", NULL, n);
    size_t bytes = count * 8;
    /* Whole-block check for small blocks; head, one byte per OS page and
     * tail for big ones, which is where stale data would show. */
    size_t head = bytes < 512 ? bytes : 512;
    for (size_t j = 0; j < head; j++)
      if (p[j]) wl_fail("calloc block not zeroed", p, bytes);
    for (size_t j = 4096; j < bytes; j += 4096)
      if (p[j]) wl_fail("calloc block not zeroed (page)", p, bytes);
    if (p[bytes - 1]) wl_fail("calloc block not zeroed (tail)", p, bytes);
    memset(p, 0xA5, head);
    for (size_t j = 4096; j < bytes; j += 4096) p[j] = 0xA5;
    p[bytes - 1] = 0xA5;
    free(win[k]);
    win[k] = p;
    t->check += bytes;
  }
  for (size_t k = 0; k < CWIN; k++) free(win[k]);
  t->ops = iters;
  return NULL;
}

#define VEC_MAX ((size_t)64 << 20)
static void *run_realloc_vec(wl_thread_t *t) {
  for (uint64_t round = 0; round < iters; round++) {
    size_t cap = 2, len = 0;
    uint64_t *v = wl_xmalloc(cap * sizeof *v);
    while (len * sizeof *v < VEC_MAX) {
      if (len == cap) {
        cap *= 2;
        v = realloc(v, cap * sizeof *v);
        if (!v) wl_fail("realloc returned NULL", NULL, cap * sizeof *v);
        t->ops++;
      }
      v[len] = len * 3 + round;
      len++;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < len; i += 509) {
      if (v[i] != i * 3 + round) wl_fail("vector contents lost in realloc", v, cap * sizeof *v);
      sum += v[i];
    }
    t->check += sum;
    free(v);
  }
  return NULL;
}

#define STRS 64
#define STRLEN 4096
static void *run_realloc_str(wl_thread_t *t) {
  char *s[STRS];
  for (uint64_t round = 0; round < iters; round++) {
    for (int i = 0; i < STRS; i++) s[i] = NULL;
    for (size_t len = 1; len <= STRLEN; len++) {
      for (int i = 0; i < STRS; i++) {
        char *n = realloc(s[i], len + 1);
        if (!n) wl_fail("realloc returned NULL", s[i], len + 1);
        n[len - 1] = (char)('a' + (len + (size_t)i) % 26);
        n[len] = 0;
        s[i] = n;
      }
    }
    for (int i = 0; i < STRS; i++) {
      for (size_t len = 1; len <= STRLEN; len += 97)
        if (s[i][len - 1] != (char)('a' + (len + (size_t)i) % 26)) wl_fail("string contents lost in realloc", s[i], STRLEN);
      t->check += (unsigned char)s[i][STRLEN / 2] + strlen(s[i]);
      free(s[i]);
    }
    t->ops += (uint64_t)STRS * STRLEN;
  }
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv);
  void *(*fn)(wl_thread_t *);
  const char *m = a.mode ? a.mode : "hot";
  if (strcmp(m, "hot") == 0) fn = run_hot, iters = wl_n(&a, 4e6);
  else if (strcmp(m, "batch") == 0) fn = run_batch, iters = wl_n(&a, 3000);
  else if (strcmp(m, "calloc") == 0) fn = run_calloc, iters = wl_n(&a, 6e5);
  else if (strcmp(m, "realloc-vec") == 0) fn = run_realloc_vec, iters = wl_n(&a, 20);
  else if (strcmp(m, "realloc-str") == 0) fn = run_realloc_str, iters = wl_n(&a, 250);
  else {
    fprintf(stderr, "micro: unknown mode %s\n", m);
    return 2;
  }
  uint64_t ops = 0, check = 0;
  double dt = wl_run(a.threads, fn, NULL, &ops, &check);
  wl_sink = check;
  wl_result(ops, check, dt, 1);
  return 0;
}
