/* measure.c -- run one command and report what it used, for bench/run.py.
 *
 * Usage: measure [-c CPU] RESULT_FILE PROGRAM [ARG...]
 *        measure --speed CPU
 * Forks and execs PROGRAM (stdio inherited), waits for it with wait4 and
 * writes one line to RESULT_FILE:
 *   status WAITSTATUS wall SECONDS user SECONDS sys SECONDS maxrss KIB
 * It exists because Linux folds the peak RSS of the image an exec replaces
 * into ru_maxrss: a child forked straight from the Python runner (~20 MiB)
 * never reports less than the runner's size, which drowned every small
 * workload's RSS. Forked from this small process, the floor is about 1 MiB.
 * It does no timing-out: run.py kills the process group instead.
 * -c CPU runs PROGRAM (and whatever it starts) on that CPU only. --speed
 * CPU prints the seconds a fixed loop takes on that CPU. Both exist because
 * the CPUs of a virtual machine need not be equal: on the 2-core VM the
 * project is developed on, one CPU loses time to the host now and then
 * (the guest shows no steal time), and a 1-thread run took 0.19 s or
 * 0.35 s as the scheduler placed it, whatever the allocator (run.py:
 * pinned runs).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int pin(const char *cpu_text) {
  char *end;
  long cpu = strtol(cpu_text, &end, 10);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (*end != '\0' || cpu < 0 || cpu >= CPU_SETSIZE) {
    fprintf(stderr, "measure: bad CPU number %s\n", cpu_text);
    return -1;
  }
  CPU_SET((int)cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    perror("measure: sched_setaffinity");
    return -1;
  }
  return 0;
}

/* A counter in memory, loaded, added to and stored each time round, for
 * about 0.1 s: long enough to see the time a CPU loses to the host (a
 * 15 ms loop ran alike on both CPUs above; this one 0.09 s on one and
 * 0.10-0.16 s on the other). */
static double speed(void) {
  volatile uint64_t counter = 0;
  double t0 = now();
  for (uint32_t i = 0; i < 300000000u; i++) counter += i;
  return now() - t0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--speed") == 0) {
    if (pin(argv[2]) != 0) return 2;
    printf("%.6f\n", speed());
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "-c") == 0) {
    if (argc < 3 || pin(argv[2]) != 0) return 2;
    argc -= 2;
    argv += 2;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: measure [-c CPU] RESULT_FILE PROGRAM [ARG...] | measure --speed CPU\n");
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
