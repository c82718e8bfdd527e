/* measure.c -- run one command and report what it used, for bench/run.py.
 *
 * Usage: measure RESULT_FILE PROGRAM [ARG...]
 * Forks and execs PROGRAM (stdio inherited), waits for it with wait4 and
 * writes one line to RESULT_FILE:
 *   status WAITSTATUS wall SECONDS user SECONDS sys SECONDS maxrss KIB
 * It exists because Linux folds the peak RSS of the image an exec replaces
 * into ru_maxrss: a child forked straight from the Python runner (~20 MiB)
 * never reports less than the runner's size, which drowned every small
 * workload's RSS. Forked from this small process, the floor is about 1 MiB.
 * It does no timing-out: run.py kills the process group instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: measure RESULT_FILE PROGRAM [ARG...]\n");
    return 2;
  }
  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("measure: fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror("measure: exec");
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {}
  double wall = now() - t0;
  FILE *f = fopen(argv[1], "w");
  if (!f) {
    perror("measure: result file");
    return 2;
  }
  fprintf(f, "status %d wall %.6f user %.6f sys %.6f maxrss %ld\n", status, wall,
          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, ru.ru_maxrss);
  return fclose(f) == 0 ? 0 : 2;
}
