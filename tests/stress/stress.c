/* stress.c -- seeded randomized stress of malloc/calloc/realloc/aligned/free.
 *
 * Usage: stress [-t THREADS] [-n OPS_PER_THREAD] [-r ROUNDS] [-k SLOTS] [-s SEED]
 * Each thread owns a slot array and applies random operations (sizes skewed
 * small, up to 4 MiB); every block carries a pattern derived from its id,
 * verified before it is freed and after each realloc. Threads pass blocks to
 * each other through a locked exchange array, so frees are often remote, and
 * every round ends with all threads exiting while their blocks stay live for
 * the next round's threads to free. At intervals all threads meet at a
 * barrier and one of them checks that no two live blocks overlap. The
 * interleaving of threads is not deterministic; each thread's choices are.
 * Prints one summary line; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Hook for ThreadSanitizer runs that link the allocator's sources into
 * this program (see tests/tests.mk, TSR_TSAN_OBJS): the same test through
 * the tsr_* names, since under TSan the standard names are TSan's. */
#ifdef STRESS_TSR_API
#include "tessera.h"
#define malloc(n) tsr_malloc(n)
#define calloc(n, s) tsr_calloc(n, s)
#define realloc(p, n) tsr_realloc(p, n)
#define free(p) tsr_free(p)
#define posix_memalign(o, a, n) tsr_posix_memalign(o, a, n)
#define aligned_alloc(a, n) tsr_aligned_alloc(a, n)
#define memalign(a, n) tsr_aligned_alloc(a, n)
#define malloc_usable_size(p) tsr_usable_size(p)
#endif

typedef struct block_s {
  unsigned char *p;
  size_t size;
  size_t align;   /* requested alignment, 0 for none */
  uint64_t id;    /* unique; the pattern derives from it */
} block_t;

typedef struct thread_s {
  pthread_t tid;
  int index;
  uint64_t rng;
  uint64_t next_id;
  block_t *slots;         /* persists across rounds: a new thread inherits it */
  uint64_t n_alloc, n_free, n_realloc, n_xfer, n_aligned, n_calloc;
} thread_t;

static struct {
  int threads, rounds, slots, check_every;
  long ops;
  uint64_t seed;
  thread_t *t;
  block_t *exchange;      /* shared; guarded by lock */
  int exchange_count;
  pthread_mutex_t lock;
  pthread_barrier_t barrier;
  atomic_long errors;
  atomic_long checks;
  atomic_size_t live_bytes, peak_live_bytes;
} g;

/* ---- randomness and patterns --------------------------------------------- */

static uint64_t rnd(uint64_t *s) {  /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static uint64_t rnd_below(uint64_t *s, uint64_t n) { return rnd(s) % n; }

/* Sizes skewed small: most below 256 B, 1 in 200 up to 4 MiB (these
 * dominate the run time, since every byte is written and verified). */
static size_t rnd_size(uint64_t *s) {
  uint64_t r = rnd_below(s, 1000);
  if (r < 700) return (size_t)rnd_below(s, 257);
  if (r < 900) return 257 + (size_t)rnd_below(s, 8 << 10);
  if (r < 995) return (8 << 10) + (size_t)rnd_below(s, 120 << 10);
  return (256 << 10) + (size_t)rnd_below(s, (4 << 20) - (256 << 10));
}

#define STEP 0xD6E8FEB86659FD93ull
static uint64_t key_of(uint64_t id) { return id * 0x9E3779B97F4A7C15ull ^ 0xA5A5A5A5DEADBEEFull; }
static uint8_t pat_byte(uint64_t key, size_t i) { return (uint8_t)((key + (uint64_t)(i >> 3) * STEP) >> ((i & 7) * 8)); }

static void pat_fill(unsigned char *p, uint64_t id, size_t from, size_t to) {
  uint64_t key = key_of(id);
  size_t i = from;
  for (; i < to && (i & 7); i++) p[i] = pat_byte(key, i);
  uint64_t w = key + (uint64_t)(i >> 3) * STEP;
  for (; i + 8 <= to; i += 8, w += STEP) memcpy(p + i, &w, 8);
  for (; i < to; i++) p[i] = pat_byte(key, i);
}
static size_t pat_bad(const unsigned char *p, uint64_t id, size_t to) {
  uint64_t key = key_of(id), w = key;
  size_t i = 0;
  for (; i + 8 <= to; i += 8, w += STEP) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v != w) break;
  }
  for (; i < to; i++)
    if (p[i] != pat_byte(key, i)) return i;
  return SIZE_MAX;
}

/* ---- failures -------------------------------------------------------------- */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  long n = atomic_fetch_add(&g.errors, 1);
  if (n >= 10) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "stress: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void live_add(size_t n) {
  size_t now = atomic_fetch_add(&g.live_bytes, n) + n;
  size_t peak = atomic_load(&g.peak_live_bytes);
  while (now > peak && !atomic_compare_exchange_weak(&g.peak_live_bytes, &peak, now)) {}
}
static void live_sub(size_t n) { atomic_fetch_sub(&g.live_bytes, n); }

/* A block the allocator just returned: aligned, big enough. */
static bool fresh_ok(const char *what, const block_t *b) {
  if (!b->p) {
    fail("%s(%zu, align %zu) returned NULL (errno %d)", what, b->size, b->align, errno);
    return false;
  }
  if (((uintptr_t)b->p & 15) || (b->align && ((uintptr_t)b->p & (b->align - 1)))) {
    fail("%s(%zu, align %zu) = %p misaligned", what, b->size, b->align, (void *)b->p);
    return false;
  }
  size_t u = malloc_usable_size(b->p);
  if (u < b->size) {
    fail("%s(%zu) = %p has usable size %zu", what, b->size, (void *)b->p, u);
    return false;
  }
  return true;
}

static void verify_block(const block_t *b, const char *when) {
  size_t bad = pat_bad(b->p, b->id, b->size);
  if (bad != SIZE_MAX)
    fail("block id %llu at %p (%zu bytes) damaged %s: offset %zu is 0x%02x, expected 0x%02x",
         (unsigned long long)b->id, (void *)b->p, b->size, when, bad, b->p[bad], pat_byte(key_of(b->id), bad));
}

/* ---- operations ------------------------------------------------------------- */

static void op_alloc(thread_t *t, block_t *b) {
  b->size = rnd_size(&t->rng);
  b->align = 0;
  b->id = ((uint64_t)t->index << 48) | ++t->next_id;
  uint64_t r = rnd_below(&t->rng, 100);
  const char *what;
  bool zeroed = false;
  if (r < 60) {
    what = "malloc";
    b->p = malloc(b->size);
  } else if (r < 75) {
    what = "calloc";
    size_t n = 1 + rnd_below(&t->rng, 8), each = b->size / n + 1;
    b->size = n * each;
    b->p = calloc(n, each);
    zeroed = true;
    t->n_calloc++;
  } else if (r < 85) {
    what = "realloc(NULL)";
    b->p = realloc(NULL, b->size);
  } else {
    /* Alignments 16..64 KiB, rarely up to 1 MiB. */
    unsigned shift = 4 + (unsigned)rnd_below(&t->rng, rnd_below(&t->rng, 50) ? 13 : 17);
    b->align = (size_t)1 << shift;
    int how = (int)rnd_below(&t->rng, 3);
    t->n_aligned++;
    if (how == 0) {
      what = "posix_memalign";
      void *p = NULL;
      int e = posix_memalign(&p, b->align, b->size);
      b->p = e == 0 ? p : NULL;
    } else if (how == 1) {
      what = "aligned_alloc";
#ifdef __SANITIZE_ADDRESS__
      /* ASan insists on C11's "size is a multiple of the alignment". */
      b->size = (b->size + b->align - 1) / b->align * b->align;
#endif
      b->p = aligned_alloc(b->align, b->size);
    } else {
      what = "memalign";
      b->p = memalign(b->align, b->size);
    }
  }
  if (!fresh_ok(what, b)) {
    b->p = NULL;
    return;
  }
  if (zeroed)
    for (size_t i = 0; i < b->size; i++)
      if (b->p[i]) {
        fail("calloc(%zu) = %p not zero at %zu", b->size, (void *)b->p, i);
        break;
      }
  pat_fill(b->p, b->id, 0, b->size);
  live_add(b->size);
  t->n_alloc++;
}

static void op_free(thread_t *t, block_t *b) {
  verify_block(b, "before free");
  free(b->p);
  live_sub(b->size);
  b->p = NULL;
  t->n_free++;
}

static void op_realloc(thread_t *t, block_t *b) {
  size_t n = rnd_size(&t->rng);
  if (rnd_below(&t->rng, 4) == 0) n = b->size + rnd_below(&t->rng, 64);  /* small growth: in-place paths */
  verify_block(b, "before realloc");
  unsigned char *p = realloc(b->p, n);
  if (n == 0) {  /* glibc semantics: freed, NULL returned */
    if (p) free(p);
    live_sub(b->size);
    b->p = NULL;
    t->n_realloc++;
    return;
  }
  block_t nb = {p, n, 0, b->id};
  if (!fresh_ok("realloc", &nb)) return;  /* the old block is still ours */
  size_t keep = n < b->size ? n : b->size;
  size_t bad = pat_bad(p, b->id, keep);
  if (bad != SIZE_MAX)
    fail("realloc of id %llu from %zu to %zu lost contents at %zu", (unsigned long long)b->id, b->size, n, bad);
  if (n > b->size) pat_fill(p, b->id, b->size, n);
  live_sub(b->size);
  live_add(n);
  *b = nb;
  t->n_realloc++;
}

/* Swap a block (or an empty slot) with a random exchange slot. */
static void op_exchange(thread_t *t, block_t *b) {
  int i = (int)rnd_below(&t->rng, (uint64_t)g.exchange_count);
  pthread_mutex_lock(&g.lock);
  block_t tmp = g.exchange[i];
  g.exchange[i] = *b;
  *b = tmp;
  pthread_mutex_unlock(&g.lock);
  t->n_xfer++;
}

/* ---- the overlap check (one thread, the others wait at the barrier) ------- */

static int cmp_block(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const block_t *)a)->p, y = (uintptr_t)((const block_t *)b)->p;
  return x < y ? -1 : x > y;
}

static void check_overlap(void) {
  size_t cap = (size_t)g.threads * (size_t)g.slots + (size_t)g.exchange_count, n = 0;
  block_t *all = malloc(cap * sizeof *all);
  if (!all) {
    fail("no memory for the overlap check");
    return;
  }
  for (int ti = 0; ti < g.threads; ti++)
    for (int s = 0; s < g.slots; s++)
      if (g.t[ti].slots[s].p) all[n++] = g.t[ti].slots[s];
  for (int s = 0; s < g.exchange_count; s++)
    if (g.exchange[s].p) all[n++] = g.exchange[s];
  qsort(all, n, sizeof *all, cmp_block);
  for (size_t i = 1; i < n; i++) {
    /* Zero-size blocks still get distinct addresses. */
    size_t extent = all[i - 1].size ? all[i - 1].size : 1;
    if ((uintptr_t)all[i - 1].p + extent > (uintptr_t)all[i].p) {
      fail("blocks overlap: %p+%zu (id %llu) and %p+%zu (id %llu)", (void *)all[i - 1].p, all[i - 1].size,
           (unsigned long long)all[i - 1].id, (void *)all[i].p, all[i].size, (unsigned long long)all[i].id);
      break;
    }
  }
  free(all);
  atomic_fetch_add(&g.checks, 1);
}

/* ---- threads and rounds ---------------------------------------------------------- */

static void *worker(void *arg) {
  thread_t *t = arg;
  long per_round = g.ops / g.rounds;
  for (long i = 0; i < per_round; i++) {
    block_t *b = &t->slots[rnd_below(&t->rng, (uint64_t)g.slots)];
    uint64_t r = rnd_below(&t->rng, 100);
    if (!b->p) {
      if (g.threads > 1 && r < 10)
        op_exchange(t, b);  /* take whatever another thread left */
      else
        op_alloc(t, b);
    } else if (r < 45) {
      op_free(t, b);
    } else if (r < 75) {
      op_realloc(t, b);
    } else if (r < 85 && g.threads > 1) {
      op_exchange(t, b);
    } else {
      verify_block(b, "on a random check");
    }
    if ((i + 1) % g.check_every == 0) {
      if (pthread_barrier_wait(&g.barrier) == PTHREAD_BARRIER_SERIAL_THREAD) check_overlap();
      pthread_barrier_wait(&g.barrier);
    }
  }
  /* Exit with blocks live: the next round's thread, or main, frees them. */
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long arg_long(const char *s, long lo, long hi, const char *what) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 0);
  if (errno || *end || v < lo || v > hi) {
    fprintf(stderr, "stress: bad %s '%s' (%ld..%ld)\n", what, s, lo, hi);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  g.threads = 1;
  g.ops = 100000;
  g.rounds = 4;
  g.slots = 1000;
  g.seed = 42;
  int opt;
  while ((opt = getopt(argc, argv, "t:n:r:k:s:")) != -1) {
    switch (opt) {
    case 't': g.threads = (int)arg_long(optarg, 1, 256, "thread count"); break;
    case 'n': g.ops = arg_long(optarg, 1, 1L << 40, "operation count"); break;
    case 'r': g.rounds = (int)arg_long(optarg, 1, 10000, "round count"); break;
    case 'k': g.slots = (int)arg_long(optarg, 1, 1 << 24, "slot count"); break;
    case 's': g.seed = (uint64_t)arg_long(optarg, 0, LONG_MAX, "seed"); break;
    default:
      fprintf(stderr, "usage: stress [-t THREADS] [-n OPS_PER_THREAD] [-r ROUNDS] [-k SLOTS] [-s SEED]\n");
      return 2;
    }
  }
  if (g.ops < g.rounds) g.rounds = (int)g.ops;
  g.check_every = (int)(g.ops / g.rounds / 8 + 1);
  g.exchange_count = g.threads * 64;
  g.t = calloc((size_t)g.threads, sizeof *g.t);
  g.exchange = calloc((size_t)g.exchange_count, sizeof *g.exchange);
  pthread_mutex_init(&g.lock, NULL);
  for (int i = 0; i < g.threads; i++) {
    g.t[i].index = i;
    g.t[i].rng = g.seed * 1000003u + (uint64_t)i;
    g.t[i].slots = calloc((size_t)g.slots, sizeof(block_t));
  }
  double t0 = now_s();
  for (int round = 0; round < g.rounds; round++) {
    pthread_barrier_init(&g.barrier, NULL, (unsigned)g.threads);
    if (g.threads == 1) {
      worker(&g.t[0]);
    } else {
      for (int i = 0; i < g.threads; i++)
        if (pthread_create(&g.t[i].tid, NULL, worker, &g.t[i]) != 0) {
          fprintf(stderr, "stress: pthread_create failed\n");
          return 1;
        }
      for (int i = 0; i < g.threads; i++) pthread_join(g.t[i].tid, NULL);
    }
    pthread_barrier_destroy(&g.barrier);
    /* Hand each exited thread's slots to the next thread index, so the
     * blocks are freed by a different thread than their allocator. */
    if (g.threads > 1) {
      block_t *first = g.t[0].slots;
      for (int i = 0; i + 1 < g.threads; i++) g.t[i].slots = g.t[i + 1].slots;
      g.t[g.threads - 1].slots = first;
    }
  }
  check_overlap();
  /* Main frees whatever is left, checking it. */
  uint64_t leftover = 0;
  for (int i = 0; i < g.threads; i++) {
    for (int s = 0; s < g.slots; s++) {
      block_t *b = &g.t[i].slots[s];
      if (!b->p) continue;
      verify_block(b, "at the end");
      free(b->p);
      live_sub(b->size);
      leftover++;
    }
    free(g.t[i].slots);
  }
  for (int s = 0; s < g.exchange_count; s++)
    if (g.exchange[s].p) {
      verify_block(&g.exchange[s], "at the end (exchange)");
      free(g.exchange[s].p);
      live_sub(g.exchange[s].size);
      leftover++;
    }
  double secs = now_s() - t0;
  uint64_t na = 0, nf = 0, nr = 0, nx = 0, nal = 0, nc = 0;
  for (int i = 0; i < g.threads; i++) {
    na += g.t[i].n_alloc;
    nf += g.t[i].n_free;
    nr += g.t[i].n_realloc;
    nx += g.t[i].n_xfer;
    nal += g.t[i].n_aligned;
    nc += g.t[i].n_calloc;
  }
  if (atomic_load(&g.live_bytes) != 0) fail("live byte accounting off by %zu", atomic_load(&g.live_bytes));
  long errors = atomic_load(&g.errors);
  printf("stress: seed %llu threads %d rounds %d ops %ld allocs %llu (calloc %llu aligned %llu) frees %llu "
         "reallocs %llu exchanges %llu leftover %llu overlap-checks %ld peak-live %zu time %.2fs errors %ld %s\n",
         (unsigned long long)g.seed, g.threads, g.rounds, g.ops * g.threads, (unsigned long long)na,
         (unsigned long long)nc, (unsigned long long)nal, (unsigned long long)nf, (unsigned long long)nr,
         (unsigned long long)nx, (unsigned long long)leftover, atomic_load(&g.checks),
         atomic_load(&g.peak_live_bytes), secs, errors, errors ? "FAIL" : "ok");
  free(g.t);
  free(g.exchange);
  return errors ? 1 : 0;
}
