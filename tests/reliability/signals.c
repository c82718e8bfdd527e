/* signals.c -- signals that land inside malloc and free.
 *
 * exit: ROUNDS times, a child runs THREADS threads in malloc/free loops
 *   (small to huge blocks) while an interval timer sends SIGALRM every
 *   100 us; the handler counts the signals that interrupted a call into
 *   the allocator (a thread-local flag set around each call) and, at the
 *   HITS-th, calls _exit(EXIT_CODE) from inside the handler, locks held or
 *   not. The child must end with exactly that status, never hang (the parent
 *   kills it after a deadline) and never crash.
 * safe: in this process, every thread (main included) keeps allocating and
 *   checking its blocks for SECONDS while SIGALRM arrives every 100 us; the
 *   handler only does async-signal-safe work (counts, a write(2) to a pipe,
 *   errno saved and restored). No block may be damaged, no allocation fail,
 *   and the handler must have interrupted the allocator many times.
 * Usage: signals exit [ROUNDS] | signals safe [SECONDS]. Exit 0 on success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { THREADS = 4, HITS = 20, EXIT_CODE = 42, SLOTS = 512, DEADLINE_S = 20 };

static __thread volatile sig_atomic_t in_alloc;   /* this thread is inside malloc/free */
static atomic_long signals_seen, signals_in_alloc, errors, allocations;
static atomic_int stop;
static int pipe_fd[2];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void timer_every_us(long us) {
  struct itimerval it = {{0, us}, {0, us}};
  setitimer(ITIMER_REAL, &it, NULL);
}

static unsigned next_rand(unsigned *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return *seed >> 1;
}

/* Mostly small, some large, a few huge (their own mapping, mremap). */
static size_t pick_size(unsigned *seed) {
  unsigned k = next_rand(seed) % 1000, r = next_rand(seed);
  if (k < 900) return 1 + r % 1024;
  if (k < 990) return 1024 + r % (255 * 1024);
  return (1u << 20) + r % (3u << 20);
}

/* ---- the loops the signals interrupt ------------------------------------------ */

/* Replace random slots; each block holds its size and a byte pattern, checked
 * before its free. Every allocator call is bracketed by in_alloc. */
static void churn(unsigned seed, int check) {
  unsigned char *slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    unsigned i = next_rand(&seed) % SLOTS;
    if (slot[i] && check) {
      unsigned char want = (unsigned char)(size[i] * 7);
      if (slot[i][0] != want || slot[i][size[i] - 1] != want || slot[i][size[i] / 2] != want) {
        if (atomic_fetch_add(&errors, 1) < 5) fprintf(stderr, "signals: block %p damaged\n", (void *)slot[i]);
      }
    }
    size_t n = pick_size(&seed);
    in_alloc = 1;
    free(slot[i]);
    unsigned char *p = next_rand(&seed) % 4 ? malloc(n) : realloc(NULL, n);
    in_alloc = 0;
    slot[i] = p;
    size[i] = n;
    if (!p) { atomic_fetch_add(&errors, 1); continue; }
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    unsigned char v = (unsigned char)(n * 7);
    p[0] = p[n / 2] = p[n - 1] = v;
  }
  in_alloc = 1;
  for (int i = 0; i < SLOTS; i++) free(slot[i]);
  in_alloc = 0;
}

static void *churn_thread(void *arg) {
  churn((unsigned)(uintptr_t)arg, 1);
  return NULL;
}

/* ---- exit: _exit from a handler that interrupted malloc ----------------------- */

static void exit_handler(int sig) {
  (void)sig;
  /* Never interrupted inside the allocator: a failure, not a hang. */
  if (atomic_fetch_add(&signals_seen, 1) > 1000000) _exit(5);
  if (!in_alloc) return;
  if (atomic_fetch_add(&signals_in_alloc, 1) + 1 >= HITS) _exit(EXIT_CODE);
}

static void exit_child(unsigned round) {
  struct sigaction sa = {0};
  sa.sa_handler = exit_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, churn_thread, (void *)(uintptr_t)(round * 31 + (unsigned)i + 1)) != 0) _exit(3);
  timer_every_us(100);
  churn(round * 31, 1);    /* the handler ends the process; this never returns */
  _exit(4);
}

static int run_exit(int rounds) {
  int ok = 0;
  double worst = 0;
  for (int r = 0; r < rounds; r++) {
    double start = now_s();
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) exit_child((unsigned)r + 1);
    int st = 0;
    pid_t done;
    while ((done = waitpid(pid, &st, WNOHANG)) == 0 && now_s() - start < DEADLINE_S) usleep(1000);
    double took = now_s() - start;
    if (took > worst) worst = took;
    if (done == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      fprintf(stderr, "signals: round %d: child still running after %d s (deadlock?)\n", r, DEADLINE_S);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_CODE) {
      ok++;
    } else {
      fprintf(stderr, "signals: round %d: child ended with status 0x%x, not exit %d\n", r, st, EXIT_CODE);
    }
  }
  printf("signals: exit: %d of %d children ended by _exit from a handler that interrupted malloc/free"
         " (%d hits each), slowest %.2f s\n", ok, rounds, HITS, worst);
  return ok == rounds ? 0 : 1;
}

/* ---- safe: an async-signal-safe handler while everyone allocates ---------------- */

static void safe_handler(int sig) {
  (void)sig;
  int saved = errno;
  atomic_fetch_add_explicit(&signals_seen, 1, memory_order_relaxed);
  if (in_alloc) atomic_fetch_add_explicit(&signals_in_alloc, 1, memory_order_relaxed);
  char c = 's';
  if (write(pipe_fd[1], &c, 1) < 0) {}   /* a full pipe is fine: non-blocking */
  errno = saved;
}

static void *drain(void *arg) {
  (void)arg;
  char buf[4096];
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  while (!atomic_load(&stop)) {
    if (read(pipe_fd[0], buf, sizeof buf) <= 0) usleep(1000);
  }
  return NULL;
}

static void *stopper(void *arg) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  usleep((useconds_t)(*(double *)arg * 1e6));
  atomic_store(&stop, 1);
  return NULL;
}

static int run_safe(double seconds) {
  if (pipe2(pipe_fd, O_NONBLOCK) != 0) { perror("pipe2"); return 1; }
  struct sigaction sa = {0};
  sa.sa_handler = safe_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  pthread_t t[THREADS], d, s;
  pthread_create(&d, NULL, drain, NULL);
  pthread_create(&s, NULL, stopper, &seconds);
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, churn_thread, (void *)(uintptr_t)(i + 100));
  timer_every_us(100);
  churn(99, 1);
  timer_every_us(0);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  pthread_join(d, NULL);
  pthread_join(s, NULL);
  long seen = atomic_load(&signals_seen), hit = atomic_load(&signals_in_alloc), bad = atomic_load(&errors);
  /* A timer at 10 kHz delivers thousands of signals a second even on a
   * loaded machine; the threads spend much of their time in the allocator. */
  int ok = bad == 0 && seen >= 100 && hit >= 10;
  printf("signals: safe: %.1f M allocations in %.0f s by %d threads, %ld signals, %ld inside malloc/free,"
         " %ld damaged blocks or failed allocations: %s\n",
         atomic_load(&allocations) / 1e6, seconds, THREADS + 1, seen, hit, bad, ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "exit")) return run_exit(argc > 2 ? atoi(argv[2]) : 50);
  if (argc >= 2 && !strcmp(argv[1], "safe")) return run_safe(argc > 2 ? atof(argv[2]) : 5);
  fprintf(stderr, "usage: signals exit [ROUNDS] | signals safe [SECONDS]\n");
  return 2;
}
