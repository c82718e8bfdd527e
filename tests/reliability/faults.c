/* faults.c -- fault injection: the Nth request tessera makes to the OS for
 * memory (mmap, munmap, mremap, madvise, mprotect) fails, for every N over a
 * workload that takes every path: small, medium, large and huge blocks,
 * calloc, realloc growing and shrinking in place and moving, the aligned
 * family, the huge cache, other threads' heaps, remote frees, thread exit
 * and adoption, trim.
 *
 * First children run the workload with nothing failing and count the
 * requests (N_total: the most of three runs; threads make it vary a little).
 * Then one forked child per N (every N up to N_total, or all of the first
 * SWEEP_DENSE and an even sample of the rest when N_total is bigger than
 * SWEEP_MAX) runs it with request N failing, in two modes:
 *   once    only request N fails. At most one call may return NULL (tessera
 *           mostly trims and tries again itself); the same call made again
 *           must succeed.
 *   sticky  request N and every later one fail (the OS is out of memory);
 *           then injection stops and a second workload must run clean.
 * Every call that returns NULL must leave errno ENOMEM (posix_memalign:
 * return it); a failed realloc must leave the old block intact and usable;
 * block contents are checked at every step; tsr_invariant_check() must pass
 * after every NULL (worker threads: after they are joined) and at the end.
 * A child that crashes, or hangs past its alarm, fails the test with its N.
 *
 * The allocator is compiled in (unity build), with the purge and huge-cache
 * delays at -1 so the request sequence does not depend on the clock (purges
 * then happen in trim, which the workload calls).
 * Usage: faults [-n N] [-m once|sticky] [-r RUNS] [-d MS]
 * (-n: run only that N in the foreground, for a debugger; -r: at most about
 * RUNS runs per mode, the first quarter of them dense; -d: both delays, so
 * housekeeping purges and releases as it goes, at times that vary).
 */
#include "../../src/unity.c"

#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SWEEP_MAX   3000     /* default: sweep every N up to this many requests, */
#define SWEEP_DENSE 400      /* else every N up to this, then a sample (-r changes both) */
#define CHILD_ALARM_S 20
#define MAX_BLOCKS 2048
#define WORKERS 3

/* ---- reporting without stdio (the heap under test may be failing) ---------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);   /* glibc's vsnprintf does not allocate for these */
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  if (write(2, line, (size_t)n) < 0) {}
}

static struct {
  bool once;                 /* mode: only request N fails (else N and all after) */
  long n;                    /* the request that fails, 1-based; 0: none */
  _Atomic long nulls;        /* calls that returned NULL */
  _Atomic long retried;      /* NULLs whose call succeeded when made again */
  _Atomic long checks;       /* invariant walks */
  _Atomic long worker_nulls; /* NULLs in worker threads, checked after the join */
} run;

static __thread bool is_worker;

#define DIE(...) do { say("faults: N=%ld (%s): ", run.n, run.once ? "once" : "sticky"); say(__VA_ARGS__); _exit(1); } while (0)

static void invariants(const char *when) {
  run.checks++;
  size_t broken = tsr_invariant_check();
  if (broken != 0) DIE("%zu invariants broken %s", broken, when);
}

/* A call returned NULL: it must say ENOMEM, and the heap must be whole. */
static void on_null(const char *what, size_t size, int err) {
  if (err != ENOMEM) DIE("%s(%zu) returned NULL with errno %d, not ENOMEM", what, size, err);
  run.nulls++;
  if (run.once && run.nulls > 1) DIE("%s(%zu): a second call returned NULL after a single injected failure", what, size);
  if (is_worker) run.worker_nulls++;
  else invariants(what);
}

static void on_retry(const char *what, size_t size, bool ok) {
  if (ok) { run.retried++; return; }
  if (run.once) DIE("%s(%zu) failed again after the one injected failure", what, size);
}

/* ---- block contents ------------------------------------------------------------ */

/* Sparse pattern: the first 256 bytes, one byte per 64 KiB and the last 64:
 * enough to see a lost copy or a stray overlap, and cheap on a 12 MiB block
 * (the page faults of touching every OS page were most of a run's time). */
#define PATTERN_STRIDE 65536
static inline uint8_t pattern_at(uint8_t seed, size_t i) { return (uint8_t)(seed + i * 7 + (i >> 16)); }

/* The bytes of a `written`-byte block that carry the pattern, below `limit`
 * (a realloc that shrank keeps only a prefix). */
static void pattern_each(uint8_t *p, size_t written, size_t limit, uint8_t seed, bool write_it, const char *what) {
  for (size_t i = 0; i < written && i < limit;) {
    if (write_it) p[i] = pattern_at(seed, i);
    else if (p[i] != pattern_at(seed, i)) DIE("%s: block %p of %zu bytes: byte %zu damaged", what, (void *)p, written, i);
    if (i < 256) i++;
    else if (i + 64 < written) i = (i + PATTERN_STRIDE < written - 64) ? i + PATTERN_STRIDE : written - 64;
    else i++;
  }
}

typedef struct block_s { uint8_t *p; size_t size; uint8_t seed; } block_t;

static block_t blocks[MAX_BLOCKS];
static size_t block_count;
static uint8_t next_seed = 1;

static void keep(void *p, size_t size) {
  if (p == NULL) return;
  if (block_count == MAX_BLOCKS) DIE("test: block table full");
  block_t *b = &blocks[block_count++];
  b->p = p; b->size = size; b->seed = next_seed++;
  pattern_each(b->p, size, size, b->seed, true, "fill");
}

static void release(size_t i) {
  block_t *b = &blocks[i];
  if (b->p == NULL) return;
  pattern_each(b->p, b->size, b->size, b->seed, false, "before free");
  free(b->p);
  b->p = NULL;
}

static void release_all(void) {
  for (size_t i = 0; i < block_count; i++) release(i);
  block_count = 0;
}

/* ---- the calls, each checked ------------------------------------------------------- */

static void *t_malloc(size_t size) {
  errno = 0;
  void *p = malloc(size);
  if (p == NULL) {
    on_null("malloc", size, errno);
    p = malloc(size);
    on_retry("malloc", size, p != NULL);
  }
  if (p != NULL && malloc_usable_size(p) < size) DIE("malloc(%zu): usable size %zu", size, malloc_usable_size(p));
  return p;
}

static void *t_calloc(size_t count, size_t size) {
  errno = 0;
  uint8_t *p = calloc(count, size);
  if (p == NULL) {
    on_null("calloc", count * size, errno);
    p = calloc(count, size);
    on_retry("calloc", count * size, p != NULL);
  }
  if (p != NULL)
    for (size_t i = 0; i < count * size; i += (i < 4096 ? 1 : 4093))
      if (p[i] != 0) DIE("calloc(%zu, %zu): byte %zu is %u", count, size, i, p[i]);
  return p;
}

static void *t_aligned(size_t alignment, size_t size, int how) {
  void *p = NULL;
  for (int attempt = 0; attempt < 2; attempt++) {
    errno = 0;
    int err;
    if (how == 0) {
      int saved = errno = 12345;
      err = posix_memalign(&p, alignment, size);
      if (err == 0 && p == NULL) DIE("posix_memalign: 0 with no block");
      if (err != 0) { p = NULL; if (errno != saved) DIE("posix_memalign changed errno to %d", errno); }
    } else {
      p = how == 1 ? aligned_alloc(alignment, size) : memalign(alignment, size);
      err = errno;
    }
    if (p != NULL) { if (attempt) on_retry("aligned", size, true); break; }
    if (attempt == 0) on_null(how == 0 ? "posix_memalign" : "aligned_alloc", size, err);
    else on_retry("aligned", size, false);
  }
  if (p != NULL && ((uintptr_t)p & (alignment - 1)) != 0) DIE("aligned(%zu, %zu) = %p", alignment, size, p);
  return p;
}

/* realloc of blocks[i] to size: on failure the old block must be intact and
 * still usable (freed later by the caller's normal path). */
static void t_realloc(size_t i, size_t size) {
  block_t *b = &blocks[i];
  if (b->p == NULL) return;
  for (int attempt = 0; attempt < 2; attempt++) {
    errno = 0;
    uint8_t *q = realloc(b->p, size);
    if (q != NULL) {
      pattern_each(q, b->size, size, b->seed, false, "after realloc");
      if (malloc_usable_size(q) < size) DIE("realloc(%zu): usable size %zu", size, malloc_usable_size(q));
      b->p = q;
      b->size = size;
      pattern_each(q, size, size, b->seed, true, "fill");
      if (attempt) on_retry("realloc", size, true);
      return;
    }
    pattern_each(b->p, b->size, b->size, b->seed, false, "after a failed realloc");
    if (attempt == 0) on_null("realloc", size, errno);
    else on_retry("realloc", size, false);
  }
}

/* ---- threads ------------------------------------------------------------------- */

typedef struct worker_s {
  int index;
  void *handed[64];         /* blocks for the main thread to free (remote frees) */
  size_t handed_size[64];
  int handed_count;
} worker_t;

static worker_t workers[WORKERS];
static _Atomic bool go;    /* workers wait for it: all have allocated before any frees */
static _Atomic(void *) exchange[WORKERS][32];  /* blocks one worker leaves for the next to free */

static void *worker_own(worker_t *w, size_t size) {
  void *p = t_malloc(size);
  if (p != NULL) memset(p, w->index + 1, size < 64 ? size : 64);
  return p;
}

/* A worker: allocates a mix, frees some locally, passes blocks to the next
 * worker (remote frees between live heaps) and to the main thread (after it
 * has exited: frees to an abandoned heap). */
static void *worker_main(void *arg) {
  worker_t *w = arg;
  is_worker = true;
  static const size_t sizes[] = { 8, 24, 100, 640, 1500, 3000, 9000, 40000, 150000, 700000, 2u << 20 };
  void *mine[32] = { 0 };
  for (int k = 0; k < 32; k++) mine[k] = worker_own(w, sizes[k % 11] + (size_t)k);
  for (int k = 0; k < 32; k += 3) { free(mine[k]); mine[k] = NULL; }
  for (int k = 0; k < 32; k++) atomic_store(&exchange[w->index][k], worker_own(w, 48 + (size_t)k * 16));
  while (!atomic_load(&go)) sched_yield();
  int from = (w->index + 1) % WORKERS;
  for (int k = 0; k < 32; k++) free(atomic_exchange(&exchange[from][k], NULL));
  for (int k = 0; k < 32 && w->handed_count < 64; k++) {
    if (mine[k] == NULL) continue;
    w->handed[w->handed_count] = mine[k];
    w->handed_size[w->handed_count++] = sizes[k % 11] + (size_t)k;
  }
  for (int k = 0; k < 16; k++) {
    void *p = worker_own(w, 64 + (size_t)k * 32);
    if (p != NULL && w->handed_count < 64) { w->handed[w->handed_count] = p; w->handed_size[w->handed_count++] = 64; }
  }
  return NULL;
}

static void phase_threads(void) {
  pthread_t t[WORKERS];
  bool started[WORKERS];
  atomic_store(&go, false);
  for (int i = 0; i < WORKERS; i++) {
    workers[i].index = i;
    workers[i].handed_count = 0;
    /* pthread_create allocates (glibc's thread-local storage) through us and
     * may fail when we do: that thread then never runs. */
    started[i] = pthread_create(&t[i], NULL, worker_main, &workers[i]) == 0;
  }
  atomic_store(&go, true);
  for (int i = 0; i < WORKERS; i++)
    if (started[i]) pthread_join(t[i], NULL);
  for (int i = 0; i < WORKERS; i++)
    for (int k = 0; k < 32; k++) free(atomic_exchange(&exchange[i][k], NULL));
  invariants("after the workers exited");
  /* Free the exited threads' blocks: remote frees to abandoned heaps. */
  for (int i = 0; i < WORKERS; i++)
    for (int k = 0; k < workers[i].handed_count; k++) {
      uint8_t *p = workers[i].handed[k];
      size_t n = workers[i].handed_size[k] < 64 ? workers[i].handed_size[k] : 64;
      for (size_t j = 0; j < n; j++) if (p[j] != i + 1) DIE("worker %d's block %p damaged at %zu", i, (void *)p, j);
      free(p);
    }
  invariants("after remote frees to abandoned heaps");
  /* A new thread adopts an abandoned heap and collects those frees. */
  pthread_t adopter;
  workers[0].handed_count = 0;
  if (pthread_create(&adopter, NULL, worker_main, &workers[0]) == 0) {
    pthread_join(adopter, NULL);
    for (int k = 0; k < 32; k++) free(atomic_exchange(&exchange[0][k], NULL));
    for (int k = 0; k < workers[0].handed_count; k++) free(workers[0].handed[k]);
  }
}

/* ---- the workload ---------------------------------------------------------------- */

static void workload(void) {
  /* Every size class (three blocks each: pages of 1 to 16 slices), and the
   * sizes just below a class boundary. */
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) {
    size_t size = tsr_class_size[c];
    for (int k = 0; k < 3; k++) keep(t_malloc(k == 1 ? size - 1 : size), k == 1 ? size - 1 : size);
  }
  for (size_t i = 0; i < block_count; i += 3) release(i);
  invariants("after the size classes");

  /* calloc: small, a class page, a large block, a huge block. */
  size_t first = block_count;
  keep(t_calloc(37, 100), 3700);
  keep(t_calloc(3, 5000), 15000);
  keep(t_calloc(1, 300000), 300000);
  keep(t_calloc(3, 1u << 20), 3u << 20);

  /* realloc along a path that takes every kind: in place in a class, moving
   * between classes, into a span of its own, growing and shrinking that span
   * in place, into a huge mapping, growing and shrinking it with mremap,
   * and back to a small block. */
  size_t r = block_count;
  keep(t_malloc(40), 40);
  static const size_t path[] = { 48, 1000, 20000, 200000, 70000, 900000, 3u << 20, 9u << 20, 2u << 20, 500, 30 };
  for (size_t k = 0; k < sizeof path / sizeof path[0]; k++) t_realloc(r, path[k]);
  keep(t_malloc(1u << 19), 1u << 19);
  t_realloc(block_count - 1, 5u << 20);   /* large to huge */
  t_realloc(block_count - 1, 6000);       /* huge to a class page */

  /* The aligned family: a class that fits, a large span aligned past a
   * slice, huge mappings aligned past a segment. */
  static const struct { size_t alignment, size; int how; } al[] = {
    { 64, 100, 0 }, { 4096, 5000, 1 }, { 65536, 70000, 2 }, { 1u << 20, 300000, 1 },
    { (size_t)16 << 20, 1000, 2 }, { (size_t)64 << 20, 3u << 20, 0 },
  };
  for (size_t k = 0; k < sizeof al / sizeof al[0]; k++) keep(t_aligned(al[k].alignment, al[k].size, al[k].how), al[k].size);

  /* Huge blocks through the cache: freed, then taken again in other sizes. */
  for (int k = 0; k < 3; k++) {
    keep(t_malloc((size_t)(4 + k) << 20), (size_t)(4 + k) << 20);
    release(block_count - 1);
  }
  keep(t_malloc(3u << 20), 3u << 20);
  keep(t_malloc(12u << 20), 12u << 20);

  /* Enough large blocks for a second segment, then all of them freed. */
  size_t big = block_count;
  for (int k = 0; k < 40; k++) keep(t_malloc(1u << 20), 1u << 20);
  for (size_t i = big; i < block_count; i++) release(i);
  invariants("after the large blocks");

  phase_threads();

  /* Trim: purges free spans, unmaps free segments and the huge cache. */
  malloc_trim(0);
  invariants("after trim");
  for (size_t i = first; i < block_count; i++) release(i);
  release_all();
  malloc_trim(0);
}

/* ---- one child per N ---------------------------------------------------------------- */

typedef struct result_s { long requests, nulls, retried, checks, worker_nulls; bool reached; } result_t;

static void child_run(long n, bool once, int fd) {
  alarm(CHILD_ALARM_S);   /* a deadlock fails the test with this N instead of hanging it */
  run.n = n;
  run.once = once;
  tsr_platform_fault_inject(n == 0 ? LONG_MAX : n - 1, once ? 1 : -1);
  workload();
  long left = tsr_platform_fault_inject(-1, 0);
  result_t res = { 0, run.nulls, run.retried, 0, run.worker_nulls, n != 0 && left == 0 };
  if (n == 0) res.requests = LONG_MAX - left;
  invariants("at the end");
  if (!once) {
    /* The OS has memory again: everything must work. */
    long before = run.nulls;
    workload();
    if (run.nulls != before) DIE("%ld calls failed after injection stopped", run.nulls - before);
    invariants("after the recovery workload");
  }
  res.checks = run.checks;
  if (fd >= 0 && write(fd, &res, sizeof res) != (ssize_t)sizeof res) _exit(3);
  _exit(0);
}

static int fork_run(long n, bool once, result_t *res) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) { close(fds[0]); child_run(n, once, fds[1]); }
  close(fds[1]);
  memset(res, 0, sizeof *res);
  ssize_t got = read(fds[0], res, sizeof *res);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) {
    say("faults: N=%ld (%s): child killed by signal %d%s", n, once ? "once" : "sticky", WTERMSIG(st),
        WTERMSIG(st) == SIGALRM ? " (hung)" : "");
    return 1;
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got != (ssize_t)sizeof *res) return 1;
  return 0;
}

static void *idle_thread(void *arg) { return arg; }

int main(int argc, char **argv) {
  long only = -1;
  int modes = 3;   /* bit 0: once, bit 1: sticky */
  long sweep_max = SWEEP_MAX, sweep_dense = SWEEP_DENSE;
  long delay_ms = -1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) only = atol(argv[++i]);
    else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) { i++; modes = strcmp(argv[i], "once") == 0 ? 1 : 2; }
    else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) delay_ms = atol(argv[++i]);
    else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc && atol(argv[i + 1]) >= 4) {
      sweep_max = atol(argv[++i]);
      sweep_dense = sweep_max / 4;
    } else { fprintf(stderr, "usage: faults [-n N] [-m once|sticky] [-r RUNS] [-d MS]\n"); return 2; }
  }
  /* Purges and huge-cache releases only in trim: the sequence of requests
   * does not depend on time. */
  tsr_option_values[TSR_OPT_PURGE_DELAY].number = delay_ms;
  tsr_option_values[TSR_OPT_HUGE_CACHE_DELAY].number = delay_ms;
  if (only >= 0) child_run(only, modes & 1, -1);

  /* Threads that touch no heap, so glibc caches their stacks: the children's
   * threads reuse them instead of mapping stacks where the kernel likes,
   * which moved tessera's next mapping (a hint missed: three requests more)
   * in some runs and not others. */
  pthread_t idle[WORKERS + 1];
  for (int i = 0; i <= WORKERS; i++) pthread_create(&idle[i], NULL, idle_thread, NULL);
  for (int i = 0; i <= WORKERS; i++) pthread_join(idle[i], NULL);
  /* Threads still race for the next mapping's address now and then: the
   * sweep goes up to the most requests of three runs. */
  long total = 0, fewest = LONG_MAX;
  for (int i = 0; i < 3; i++) {
    result_t base;
    if (fork_run(0, true, &base) != 0) { say("faults: the workload fails with no fault injected"); return 1; }
    if (base.requests > total) total = base.requests;
    if (base.requests < fewest) fewest = base.requests;
  }
  if (total <= 0) { say("faults: the workload made no requests to the OS (is injection wired?)"); return 1; }
  long step = total <= sweep_max ? 1 : (total - sweep_dense) / (sweep_max - sweep_dense) + 1;
  printf("faults: %s%s: the workload makes %ld-%ld requests to the OS; ", tsr_version(),
         tsr_option_long(TSR_OPT_SECURE) ? " (secure)" : "", fewest, total);
  if (step == 1) printf("each is made to fail in turn\n");
  else printf("requests 1-%ld and every %ld-th after are made to fail in turn\n", sweep_dense, step);
  fflush(stdout);
  int failed = 0;
  long all_nulls = 0;
  for (int mode = 0; mode < 2; mode++) {
    if (!(modes & (1 << mode))) continue;
    bool once = mode == 0;
    long runs = 0, reached = 0, nulls = 0, retried = 0, checks = 0, worker_nulls = 0;
    for (long n = 1; n <= total; n += (n < sweep_dense ? 1 : step)) {
      result_t res;
      if (fork_run(n, once, &res) != 0) { failed++; if (failed > 20) break; continue; }
      runs++;
      reached += res.reached;
      nulls += res.nulls;
      retried += res.retried;
      checks += res.checks;
      worker_nulls += res.worker_nulls;
    }
    printf("faults: %s: %ld runs, failure reached in %ld, %ld calls returned NULL (%ld in worker threads), "
           "%ld retried successfully, %ld invariant walks\n", once ? "once" : "sticky", runs, reached, nulls,
           worker_nulls, retried, checks);
    fflush(stdout);
    if (reached * 4 < runs * 3) { say("faults: the failure was reached in only %ld of %ld runs", reached, runs); failed++; }
    all_nulls += nulls;
  }
  /* Once, a failure mostly does not reach the program (tessera trims and
   * tries again); from then on, it must. */
  if (all_nulls == 0) { say("faults: no call ever returned NULL: injection did not reach the API"); failed++; }
  printf("faults: %s\n", failed ? "FAILED" : "all runs clean");
  return failed ? 1 : 0;
}
