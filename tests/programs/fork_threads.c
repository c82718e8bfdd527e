/* fork_threads.c -- fork while 8 threads allocate, then fork again.
 *
 * The child of a threaded process must find the allocator usable: no lock
 * held by a thread that does not exist in the child. The child allocates,
 * starts a thread, forks a grandchild that allocates too; every process
 * exits 0. alarm() turns a deadlock into a failure. Usage: fork_threads [FORKS].
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

static atomic_int stop;

static void *busy(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void *slot[256] = {0};
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    unsigned i = (seed = seed * 1103515245u + 12345u) >> 8 & 255;
    free(slot[i]);
    size_t n = (seed >> 16) % 3 == 0 ? (seed % 100000) : (seed % 512);
    slot[i] = malloc(n);
    if (slot[i]) memset(slot[i], 1, n);
  }
  for (int i = 0; i < 256; i++) free(slot[i]);
  return NULL;
}

/* Allocate, check and free a mix of sizes; 0 on success. */
static int work(int rounds) {
  for (int r = 0; r < rounds; r++) {
    void *p[64];
    for (int i = 0; i < 64; i++) {
      size_t n = (size_t)(i * 997 + r * 31) % (i % 8 == 0 ? 300000 : 2000) + 1;
      p[i] = malloc(n);
      if (!p[i]) return 1;
      memset(p[i], i, n);
    }
    for (int i = 0; i < 64; i++) free(p[i]);
  }
  return 0;
}

static void *child_thread(void *arg) {
  (void)arg;
  return (void *)(intptr_t)work(50);
}

static int wait_ok(pid_t pid, const char *who) {
  int st;
  if (waitpid(pid, &st, 0) != pid) return 0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
  fprintf(stderr, "fork_threads: %s %d ended with status 0x%x%s\n", who, pid, st,
          WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (timed out: deadlock?)" : "");
  return 0;
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 20, ok = 0;
  pthread_t t[8];
  for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, busy, (void *)(uintptr_t)(i + 1));
  for (int f = 0; f < forks; f++) {
    usleep(2000);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
      alarm(20);
      if (work(100)) _exit(3);
      pthread_t ct;
      void *res;
      if (pthread_create(&ct, NULL, child_thread, NULL) != 0) _exit(4);
      pid_t g = fork();
      if (g == 0) {
        alarm(20);
        _exit(work(100) ? 5 : 0);
      }
      pthread_join(ct, &res);
      if (res) _exit(6);
      if (g < 0 || !wait_ok(g, "grandchild")) _exit(7);
      _exit(0);
    }
    ok += wait_ok(pid, "child");
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
  printf("fork_threads: %d of %d forks (with grandchildren) completed\n", ok, forks);
  return ok == forks ? 0 : 1;
}
