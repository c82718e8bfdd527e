/* fork_threads.c -- fork while 8 threads allocate; the child allocates with
 * threads of its own and forks again while they run.
 *
 * The child of a threaded process must find the allocator usable: no lock
 * held by a thread that does not exist in the child, no heap of such a thread
 * handed to a new one mid-update. Each fork's child checks and frees blocks
 * that the parent's busy threads had published (their owners do not exist
 * in the child), allocates many sizes (small to huge) on its main thread and
 * on CHILD_THREADS threads, and while those run forks a grandchild, which
 * does the same with threads of its own. Every process must exit 0; alarm()
 * turns a deadlock into a failure. Usage: fork_threads [FORKS].
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { BUSY = 8, BUSY_SLOTS = 256, CHILD_THREADS = 4, DEADLINE_S = 30 };

static atomic_int stop;
/* Blocks of the busy threads, published after they are written: a slot is
 * emptied (exchange) before its block is freed, so a non-NULL slot in the
 * child's copy of memory is a live block. */
static _Atomic(unsigned char *) published[BUSY][BUSY_SLOTS];

/* Size, then a byte pattern that depends on it, at both ends (writing all
 * of every block would make the test a page-fault benchmark). */
static unsigned char *make_block(size_t n) {
  if (n < sizeof(size_t) + 1) n = sizeof(size_t) + 1;
  unsigned char *p = malloc(n);
  if (!p) return NULL;
  memcpy(p, &n, sizeof n);
  size_t end = n - sizeof n < 64 ? n - sizeof n : 64;
  memset(p + sizeof n, (int)(n % 251), end);
  memset(p + n - end, (int)(n % 251), end);
  return p;
}

/* 0 if the block is intact (then freed), 1 if not. */
static int check_free(unsigned char *p) {
  size_t n;
  memcpy(&n, p, sizeof n);
  if (p[sizeof n] != n % 251 || p[n - 1] != n % 251) return 1;
  free(p);
  return 0;
}

static void *busy(void *arg) {
  unsigned me = (unsigned)(uintptr_t)arg, seed = me + 1;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    unsigned i = (seed = seed * 1103515245u + 12345u) >> 8 & (BUSY_SLOTS - 1);
    unsigned char *old = atomic_exchange(&published[me][i], NULL);
    if (old && check_free(old)) _exit(8);
    size_t n = (seed >> 16) % 3 == 0 ? (seed % 100000) : (seed % 512);
    if ((seed >> 20) % 64 == 0) n = (size_t)(seed % 4) << 20 | 4096;   /* huge: own mapping */
    atomic_store(&published[me][i], make_block(n));
  }
  return NULL;
}

/* Blocks on their way from one thread of a process to another. */
static _Atomic(unsigned char *) pass[64];

/* Allocate, check and free a mix of sizes, a quarter of them freed by
 * another thread of the same process (through `pass`); 0 on success. */
static int work(int rounds, unsigned seed) {
  for (int r = 0; r < rounds; r++) {
    unsigned char *p[64];
    for (int i = 0; i < 64; i++) {
      seed = seed * 1103515245u + 12345u;
      size_t n = (seed >> 4) % (i % 8 == 0 ? 300000 : 2000) + 1;
      if (i == 63 && r % 10 == 0) n = (size_t)3 << 20;                  /* huge */
      if (!(p[i] = make_block(n))) return 1;
    }
    for (int i = 0; i < 64; i++) {
      if (i % 4 == 0) p[i] = atomic_exchange(&pass[(seed + (unsigned)i) % 64], p[i]);   /* cross-thread */
      if (p[i] && check_free(p[i])) return 2;
    }
  }
  return 0;
}

static void *work_thread(void *arg) {
  return (void *)(intptr_t)work(20, (unsigned)(uintptr_t)arg);
}

/* The parent's busy threads are gone in a forked process: free a third of
 * what they left (another third at each depth). */
static int free_inherited(int depth) {
  int bad = 0;
  for (int t = 0; t < BUSY; t++)
    for (int i = depth - 1; i < BUSY_SLOTS; i += 3) {
      unsigned char *p = atomic_exchange(&published[t][i], NULL);
      if (p) bad |= check_free(p);
    }
  return bad;
}

static int wait_ok(pid_t pid, const char *who) {
  int st;
  if (waitpid(pid, &st, 0) != pid) return 0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
  fprintf(stderr, "fork_threads: %s %d ended with status 0x%x%s\n", who, pid, st,
          WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (timed out: deadlock?)" : "");
  return 0;
}

/* A forked process (depth 1: child, 2: grandchild): threads of its own,
 * and at depth 1 a fork while they run. Exit status 0 on success. */
static int forked(int depth, unsigned seed) {
  alarm(DEADLINE_S);
  if (free_inherited(depth)) return 3;
  if (work(10, seed)) return 4;
  pthread_t t[CHILD_THREADS];
  for (int i = 0; i < CHILD_THREADS; i++)
    if (pthread_create(&t[i], NULL, work_thread, (void *)(uintptr_t)(seed * 7 + (unsigned)i)) != 0) return 5;
  pid_t g = 0;
  if (depth == 1) {
    usleep(500);
    g = fork();
    if (g == 0) _exit(forked(2, seed * 13));
  }
  int bad = work(10, seed + 1);
  for (int i = 0; i < CHILD_THREADS; i++) {
    void *res;
    pthread_join(t[i], &res);
    bad |= res != NULL;
  }
  for (int i = 0; i < 64; i++) {
    unsigned char *p = atomic_exchange(&pass[i], NULL);
    if (p) bad |= check_free(p);
  }
  if (bad) return 6;
  if (depth == 1 && (g < 0 || !wait_ok(g, "grandchild"))) return 7;
  return 0;
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 20, ok = 0;
  pthread_t t[BUSY];
  for (int i = 0; i < BUSY; i++) pthread_create(&t[i], NULL, busy, (void *)(uintptr_t)i);
  for (int f = 0; f < forks; f++) {
    usleep(2000);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) _exit(forked(1, (unsigned)f + 1));
    ok += wait_ok(pid, "child");
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < BUSY; i++) pthread_join(t[i], NULL);
  for (int k = 0; k < BUSY; k++)
    for (int i = 0; i < BUSY_SLOTS; i++) {
      unsigned char *p = atomic_exchange(&published[k][i], NULL);
      if (p && check_free(p)) { fprintf(stderr, "fork_threads: a busy thread's block was damaged\n"); return 1; }
    }
  printf("fork_threads: %d of %d forks from %d busy threads completed (child with %d threads forking a"
         " grandchild with %d threads, all allocating)\n", ok, forks, BUSY, CHILD_THREADS, CHILD_THREADS);
  return ok == forks ? 0 : 1;
}
