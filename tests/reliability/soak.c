/* soak.c -- a server-like workload for a while, RSS sampled every 100 ms,
 * then two 1 GiB bursts that must be given back.
 *
 * Churn (larson-style): THREADS workers each own an array of slots and
 * replace a random slot's block again and again (mostly small, some up to
 * 128 KiB); one replacement in 8 goes through a shared exchange,
 * so another thread frees it; every round a worker's successor thread takes
 * its slots over (the old thread exits with its blocks live, as in larson).
 * Flat: after the warm-up (a quarter of the churn), the highest RSS of the
 * churn's last half must stay within FLAT_PCT of the highest RSS of the
 * warm-up: a leak or a heap that fragments without bound grows past it.
 * Burst: BURST_THREADS threads allocate 1 GiB between them (small, medium,
 * large and huge blocks, every byte written), free half their own blocks
 * and half of a neighbour's (cross-thread), then sit idle, as a request
 * pool does after a spike, while the churn goes on. RSS must fall back
 * within BURST_PCT of the level before the burst within BURST_MS; after
 * the second burst, malloc_trim(0) from the main thread must do it at once.
 * Usage: soak [-s CHURN_SECONDS] [-t THREADS] [-b BURST_MIB] [-a idle|exit|own|trim]
 * [-B enforce|report] [-F FLAT_PCT]. -a: what the bursters do after their frees (own: no
 * cross-thread frees; trim: each calls malloc_trim(0)), to find where memory
 * stays. Exit 1 if a criterion fails (with -B report, not the burst ones) or
 * a block comes back damaged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tessera.h"

#define FLAT_PCT 10          /* late churn max over warm-up max (-F changes it) */
#define BURST_PCT 10         /* the bar */
#define BURST_MS 1000        /* the bar */
#define BURST_THREADS 4
#define SLOTS 4096           /* per churn worker */
#define EXCHANGE 1024
#define ROUND_MS 250         /* a churn worker's life before its successor takes over */
#define MIB (1024.0 * 1024.0)

static struct {
  int threads;
  double churn_s, warm_s;
  int flat_pct;              /* -F: the flat criterion's limit */
  size_t burst_bytes;
  const char *after;         /* what bursters do after their frees (-a) */
  int burst_enforced;        /* 0 (-B report): burst criteria printed, not in the exit status */
  atomic_int stop;
  atomic_long errors, ops, rounds;
  _Atomic(void *) exchange[EXCHANGE];
} soak;

/* ---- clock and RSS --------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* Resident bytes from /proc/self/statm; no allocation, so sampling does not
 * disturb what it measures. */
static size_t rss_bytes(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *s = strchr(buf, ' ');
  return s ? (size_t)strtoull(s + 1, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* ---- blocks that check themselves --------------------------------------------- */

/* Word 0: the size; word 1: address ^ size ^ key; the rest written (RSS
 * counts only touched memory). Freed through check_free. */
#define KEY ((uintptr_t)0x5eed5eed5eed5eedull)

static void *make_block(size_t n) {
  if (n < 16) n = 16;
  uintptr_t *p = malloc(n);
  if (!p) { atomic_fetch_add(&soak.errors, 1); return NULL; }
  memset(p + 2, (int)(n & 0xff), n - 16);
  p[0] = n;
  p[1] = (uintptr_t)p ^ n ^ KEY;
  return p;
}

static void check_free(void *block) {
  uintptr_t *p = block;
  if (!p) return;
  size_t n = p[0];
  if (p[1] != ((uintptr_t)p ^ n ^ KEY) || (n > 16 && ((unsigned char *)p)[n - 1] != (n & 0xff))) {
    if (atomic_fetch_add(&soak.errors, 1) < 5) fprintf(stderr, "soak: block %p damaged\n", block);
    return;
  }
  free(p);
}

static unsigned next_rand(unsigned *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return *seed >> 1;
}

/* The churn's size mix: mostly small, a tail up to 128 KiB. Large blocks
 * are left to the burst: a few of them live at a time would move the
 * churn's RSS by more than the burst criterion's margin. */
static size_t churn_size(unsigned *seed) {
  unsigned r = next_rand(seed), k = r % 1000;
  r = next_rand(seed);
  if (k < 900) return 16 + r % 497;
  if (k < 995) return 512 + r % (16 * 1024);
  return 16 * 1024 + r % (112 * 1024);
}

/* ---- churn ------------------------------------------------------------------------ */

typedef struct churn_s {
  void *slot[SLOTS];
  unsigned seed;
} churn_t;

/* One worker's life: replace random slots for ROUND_MS, then return; the
 * supervisor starts its successor on the same slots. */
static void *churn_round(void *arg) {
  churn_t *c = arg;
  double end = now_s() + ROUND_MS / 1000.0;
  long ops = 0;
  while (!atomic_load_explicit(&soak.stop, memory_order_relaxed)) {
    for (int k = 0; k < 256; k++, ops++) {
      unsigned i = next_rand(&c->seed) % SLOTS;
      void *old = c->slot[i];
      if (next_rand(&c->seed) % 8 == 0) {   /* someone else frees it */
        old = atomic_exchange(&soak.exchange[next_rand(&c->seed) % EXCHANGE], old);
      }
      check_free(old);
      c->slot[i] = make_block(churn_size(&c->seed));
    }
    if (now_s() >= end) break;
  }
  atomic_fetch_add(&soak.ops, ops);
  atomic_fetch_add(&soak.rounds, 1);
  return NULL;
}

static void *churn_supervise(void *arg) {
  while (!atomic_load(&soak.stop)) {
    pthread_t t;
    if (pthread_create(&t, NULL, churn_round, arg) != 0) { atomic_fetch_add(&soak.errors, 1); break; }
    pthread_join(t, NULL);
  }
  return NULL;
}

/* ---- RSS samples ------------------------------------------------------------------- */

typedef struct samples_s {
  double *t;
  size_t *rss;
  size_t count, cap;
} samples_t;

static void sample(samples_t *s, double t0) {
  if (s->count < s->cap) {
    s->t[s->count] = now_s() - t0;
    s->rss[s->count++] = rss_bytes();
  }
}

/* Highest RSS among samples with from <= t < to. */
static size_t max_between(const samples_t *s, double from, double to) {
  size_t m = 0;
  for (size_t i = 0; i < s->count; i++)
    if (s->t[i] >= from && s->t[i] < to && s->rss[i] > m) m = s->rss[i];
  return m;
}

/* Least-squares slope of RSS over [from, to), in MiB per minute. */
static double slope_between(const samples_t *s, double from, double to) {
  double n = 0, st = 0, sr = 0, stt = 0, str = 0;
  for (size_t i = 0; i < s->count; i++) {
    if (s->t[i] < from || s->t[i] >= to) continue;
    double x = s->t[i], y = (double)s->rss[i] / MIB;
    n++, st += x, sr += y, stt += x * x, str += x * y;
  }
  double d = n * stt - st * st;
  return n > 2 && d != 0 ? (n * str - st * sr) / d * 60.0 : 0.0;
}

/* ---- the burst ------------------------------------------------------------------------ */

typedef struct burster_s {
  int index;
  size_t budget;             /* bytes to allocate */
  void **block;
  size_t count;
  pthread_t tid;
} burster_t;

static struct {
  burster_t b[BURST_THREADS];
  pthread_barrier_t allocated, freed;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int release;               /* the bursters may exit */
} burst;

/* The burst's mix by bytes: 30 % small, 20 % medium, 25 % large, 25 % huge. */
static size_t burst_size(unsigned *seed, size_t done, size_t budget) {
  unsigned r = next_rand(seed);
  if (done < budget / 10 * 3) return 16 + r % 1009;
  if (done < budget / 10 * 5) return 1024 + r % (127 * 1024);
  if (done < budget / 20 * 15) return 128 * 1024 + r % (896 * 1024);
  return (1u << 20) + r % (7u << 20);
}

static void *burster(void *arg) {
  burster_t *b = arg;
  unsigned seed = 77u + (unsigned)b->index;
  size_t cap = b->budget / 16 / 1024 * 32 + 1024, done = 0;   /* > small blocks needed */
  b->block = malloc(cap * sizeof *b->block);
  b->count = 0;
  while (done < b->budget && b->count < cap && b->block) {
    size_t n = burst_size(&seed, done, b->budget);
    void *p = make_block(n);
    if (!p) break;
    b->block[b->count++] = p;
    done += n;
  }
  pthread_barrier_wait(&burst.allocated);
  /* Half of our blocks, and half of the next burster's: cross-thread frees. */
  burster_t *other = &burst.b[(b->index + 1) % BURST_THREADS];
  int cross = strcmp(soak.after, "own") != 0;
  for (size_t i = 0; i < b->count; i += cross ? 2 : 1) check_free(b->block[i]);
  for (size_t i = 1; cross && i < other->count; i += 2) check_free(other->block[i]);
  pthread_barrier_wait(&burst.freed);    /* the neighbour is done with our list */
  free(b->block);
  if (!strcmp(soak.after, "trim")) malloc_trim(0);
  pthread_barrier_wait(&burst.freed);
  if (!strcmp(soak.after, "exit")) return NULL;
  /* Idle, alive, holding whatever its heap kept. */
  pthread_mutex_lock(&burst.lock);
  while (!burst.release) pthread_cond_wait(&burst.wake, &burst.lock);
  pthread_mutex_unlock(&burst.lock);
  return NULL;
}

/* One burst: start the bursters, wait for their frees, return the time the
 * last free ended. RSS at its peak goes to *peak. */
static double burst_run(size_t *peak) {
  pthread_barrier_init(&burst.allocated, NULL, BURST_THREADS + 1);
  pthread_barrier_init(&burst.freed, NULL, BURST_THREADS + 1);
  for (int i = 0; i < BURST_THREADS; i++) {
    burst.b[i].index = i;
    burst.b[i].budget = soak.burst_bytes / BURST_THREADS;
    if (pthread_create(&burst.b[i].tid, NULL, burster, &burst.b[i]) != 0) atomic_fetch_add(&soak.errors, 1);
  }
  pthread_barrier_wait(&burst.allocated);
  *peak = rss_bytes();
  pthread_barrier_wait(&burst.freed);
  pthread_barrier_wait(&burst.freed);
  return now_s();
}

static void burst_join(void) {
  pthread_mutex_lock(&burst.lock);
  burst.release = 1;
  pthread_cond_broadcast(&burst.wake);
  pthread_mutex_unlock(&burst.lock);
  for (int i = 0; i < BURST_THREADS; i++) pthread_join(burst.b[i].tid, NULL);
  burst.release = 0;
  pthread_barrier_destroy(&burst.allocated);
  pthread_barrier_destroy(&burst.freed);
}

/* The RSS level before a burst: the median of a second of samples, so one
 * large block of the churn in flight does not set it. */
static size_t level_now(void) {
  size_t v[10];
  for (int i = 0; i < 10; i++) {
    v[i] = rss_bytes();
    sleep_s(0.1);
  }
  for (int i = 1; i < 10; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) { size_t x = v[j]; v[j] = v[j - 1]; v[j - 1] = x; }
  return (v[4] + v[5]) / 2;
}

/* Where tessera holds the memory now (when tessera is loaded): what the
 * report says when RSS does not fall. Found with dlsym, so the same
 * program runs against glibc. */
static void tessera_where(const char *when) {
  int (*get)(tsr_stats_t *) = (int (*)(tsr_stats_t *))dlsym(RTLD_DEFAULT, "tsr_stats_get");
  static tsr_stats_t st;
  if (!get) return;
  st.struct_size = sizeof st;
  if (get(&st) != 0) return;
  printf("soak:   tessera %s: in use %.1f MiB, pages %.1f MiB, free blocks in pages %.1f MiB,"
         " free spans not purged %.1f MiB, mapped %.1f MiB, huge blocks %lu, heaps %lu (%lu abandoned)\n",
         when, st.in_use_bytes / MIB, st.page_bytes / MIB, st.free_block_bytes / MIB, st.free_span_bytes / MIB,
         st.mapped_bytes / MIB, (unsigned long)st.huge_count, (unsigned long)st.heap_count,
         (unsigned long)st.abandoned_heap_count);
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  soak.churn_s = 20;
  soak.threads = 4;
  soak.burst_bytes = (size_t)1 << 30;
  soak.after = "idle";
  soak.burst_enforced = 1;
  soak.flat_pct = FLAT_PCT;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "-s")) soak.churn_s = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "-t")) soak.threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "-b")) soak.burst_bytes = (size_t)atol(argv[i + 1]) << 20;
    else if (!strcmp(argv[i], "-a")) soak.after = argv[i + 1];
    else if (!strcmp(argv[i], "-B")) soak.burst_enforced = strcmp(argv[i + 1], "report") != 0;
    else if (!strcmp(argv[i], "-F")) soak.flat_pct = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: soak [-s CHURN_SECONDS] [-t THREADS] [-b BURST_MIB] [-a idle|exit|own|trim] [-B enforce|report] [-F FLAT_PCT]\n");
      return 2;
    }
  }
  if (soak.churn_s < 4 || soak.threads < 1 || soak.burst_bytes < ((size_t)64 << 20)) {
    fprintf(stderr, "soak: need -s >= 4, -t >= 1, -b >= 64\n");
    return 2;
  }
  soak.warm_s = soak.churn_s / 4;
  pthread_mutex_init(&burst.lock, NULL);
  pthread_cond_init(&burst.wake, NULL);

  samples_t s = {0};
  s.cap = (size_t)(soak.churn_s * 10) + 64;
  s.t = calloc(s.cap, sizeof *s.t);
  s.rss = calloc(s.cap, sizeof *s.rss);
  churn_t *c = calloc((size_t)soak.threads, sizeof *c);
  pthread_t *sup = calloc((size_t)soak.threads, sizeof *sup);
  if (!s.t || !s.rss || !c || !sup) return 2;
  size_t rss_start = rss_bytes();
  double t0 = now_s();
  for (int i = 0; i < soak.threads; i++) {
    c[i].seed = 1u + (unsigned)i * 7919u;
    pthread_create(&sup[i], NULL, churn_supervise, &c[i]);
  }

  /* Churn: warm-up, then the flat phase. */
  while (now_s() - t0 < soak.churn_s) {
    sample(&s, t0);
    sleep_s(0.1);
  }
  double late_from = soak.warm_s + (soak.churn_s - soak.warm_s) / 2;
  size_t warm_max = max_between(&s, 0, soak.warm_s);
  size_t late_max = max_between(&s, late_from, soak.churn_s + 1);
  double slope = slope_between(&s, soak.warm_s, soak.churn_s + 1);
  int flat_ok = late_max <= warm_max + warm_max / 100 * (size_t)soak.flat_pct;
  size_t rss_min = SIZE_MAX, rss_max = 0;
  for (size_t i = 0; i < s.count; i++) {
    if (s.rss[i] < rss_min) rss_min = s.rss[i];
    if (s.rss[i] > rss_max) rss_max = s.rss[i];
  }
  printf("soak: churn %d threads x %d slots, %.0f s (warm-up %.1f s), %zu samples, RSS %.1f MiB at start,"
         " %.1f..%.1f MiB during churn\n",
         soak.threads, SLOTS, soak.churn_s, soak.warm_s, s.count, rss_start / MIB, rss_min / MIB, rss_max / MIB);
  printf("soak: flat: warm-up max %.1f MiB, last-half max %.1f MiB (%+.1f %%, limit +%d %%), slope after warm-up"
         " %+.2f MiB/min: %s\n",
         warm_max / MIB, late_max / MIB, 100.0 * ((double)late_max - (double)warm_max) / (double)warm_max, soak.flat_pct,
         slope, flat_ok ? "ok" : "FAIL");

  /* Burst 1: RSS must fall back by itself (the churn goes on). */
  size_t pre = level_now(), peak;
  size_t limit = pre + pre / 100 * BURST_PCT;
  double freed_at = burst_run(&peak);
  double fell_ms = -1;
  size_t rss_1s = 0, rss_last = 0;
  for (;;) {
    double dt = now_s() - freed_at;
    rss_last = rss_bytes();
    if (dt <= BURST_MS / 1000.0) rss_1s = rss_last;
    if (rss_last <= limit) { fell_ms = dt * 1000; break; }
    if (dt > 3.0) break;
    sleep_s(0.01);
  }
  int grew_ok = peak >= pre + soak.burst_bytes / 10 * 9;   /* the burst was real */
  int burst_ok = grew_ok && fell_ms >= 0 && fell_ms <= BURST_MS;
  printf("soak: burst %.0f MiB: RSS before %.1f MiB, peak %.1f MiB, %.1f MiB at %d ms after the frees",
         soak.burst_bytes / MIB, pre / MIB, peak / MIB, (rss_1s ? rss_1s : rss_last) / MIB, BURST_MS);
  if (fell_ms >= 0) printf(", within %d %% after %.0f ms", BURST_PCT, fell_ms);
  else printf(", still %.1f MiB (%+.0f %%) after 3 s", rss_last / MIB, 100.0 * ((double)rss_last - (double)pre) / (double)pre);
  printf(": %s\n", burst_ok ? "ok" : grew_ok ? "FAIL" : "FAIL (RSS did not grow by the burst)");
  if (!burst_ok) tessera_where("then");
  burst_join();

  /* Burst 2: malloc_trim(0) right after the frees must bring RSS back at
   * once. Start from a trimmed state, so burst 1's leftovers do not count. */
  malloc_trim(0);
  size_t pre2 = level_now(), peak2;
  size_t limit2 = pre2 + pre2 / 100 * BURST_PCT;
  burst_run(&peak2);
  double trim_start = now_s();
  malloc_trim(0);
  double trim_ms = (now_s() - trim_start) * 1000;
  size_t after_trim = rss_bytes();
  int grew2_ok = peak2 >= pre2 + soak.burst_bytes / 10 * 9;
  int trim_ok = grew2_ok && after_trim <= limit2;
  printf("soak: burst %.0f MiB + malloc_trim(0): RSS before %.1f MiB, peak %.1f MiB, %.1f MiB (%+.1f %%) right after"
         " the trim (%.0f ms): %s\n",
         soak.burst_bytes / MIB, pre2 / MIB, peak2 / MIB, after_trim / MIB,
         100.0 * ((double)after_trim - (double)pre2) / (double)pre2, trim_ms,
         trim_ok ? "ok" : grew2_ok ? "FAIL" : "FAIL (RSS did not grow by the burst)");
  if (!trim_ok) tessera_where("then");
  burst_join();

  atomic_store(&soak.stop, 1);
  for (int i = 0; i < soak.threads; i++) pthread_join(sup[i], NULL);
  for (int i = 0; i < soak.threads; i++)
    for (int k = 0; k < SLOTS; k++) check_free(c[i].slot[k]);
  for (int i = 0; i < EXCHANGE; i++) check_free(atomic_exchange(&soak.exchange[i], NULL));
  long errors = atomic_load(&soak.errors);
  int ok = flat_ok && errors == 0 && (!soak.burst_enforced || (burst_ok && trim_ok));
  printf("soak: %s%s: %.1f M churn ops in %ld thread lifetimes, %ld damaged blocks or failed allocations\n",
         ok ? "PASS" : "FAIL", soak.burst_enforced || (burst_ok && trim_ok) ? "" : " (burst criteria failed, reported only)",
         atomic_load(&soak.ops) / 1e6, atomic_load(&soak.rounds), errors);
  free(s.t);
  free(s.rss);
  free(c);
  free(sup);
  return ok ? 0 : 1;
}
