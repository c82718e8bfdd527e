/* replay_rep.c -- replay malloc-lab .rep traces through the process malloc.
 *
 * Usage: replay_rep [--check] [--strict] [--repeat N] [--header] [--isolate] FILE...
 * Prints one line per trace:
 *   name ops ops_per_s peak_live_bytes peak_rss_delta_bytes utilization
 * (utilization = peak live payload / peak RSS growth, see tools/trace.h).
 * Traces replayed in one process share the allocator's cached memory, which
 * hides RSS growth; --isolate replays each file in a freshly exec'd process.
 * Run it under LD_PRELOAD to replay through another allocator. Exit status 1
 * if any trace fails to parse or replay (the message names file and line),
 * 2 on a usage error. Parsing and replaying are tools/trace.c.
 */
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run this program again on one file (same options, same environment, so
 * the same LD_PRELOAD); returns its exit status. */
static int run_isolated(char **argv, int first_file, const char *file) {
  char *args[16];
  int n = 0;
  args[n++] = argv[0];
  for (int k = 1; k < first_file && n < 13; k++)
    if (strcmp(argv[k], "--isolate") != 0 && strcmp(argv[k], "--header") != 0) args[n++] = argv[k];
  args[n++] = "--";
  args[n++] = (char *)file;
  args[n] = NULL;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    execv("/proc/self/exe", args);
    perror("replay_rep: exec");
    _exit(127);
  }
  int st;
  if (waitpid(pid, &st, 0) < 0) return 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int usage(void) {
  fprintf(stderr, "usage: replay_rep [--check] [--strict] [--repeat N] [--header] [--isolate] FILE...\n");
  return 2;
}

int main(int argc, char **argv) {
  trace_replay_opts_t opts = {{NULL, NULL, NULL}, false, 1};
  bool strict = false, header = false, isolate = false;
  int i = 1, failed = 0;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    if (strcmp(argv[i], "--") == 0) { i++; break; }
    else if (strcmp(argv[i], "--check") == 0) opts.check = true;
    else if (strcmp(argv[i], "--strict") == 0) strict = true;
    else if (strcmp(argv[i], "--header") == 0) header = true;
    else if (strcmp(argv[i], "--isolate") == 0) isolate = true;
    else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
      char *end;
      long n = strtol(argv[++i], &end, 10);
      if (*end || n < 1 || n > 1000000) return usage();
      opts.repeat = (unsigned)n;
    } else return usage();
  }
  if (i >= argc) return usage();
  if (header) printf("# name ops ops_per_s peak_live_bytes peak_rss_delta_bytes utilization\n");
  if (isolate) {
    int first = i;
    for (; i < argc; i++)
      if (run_isolated(argv, first, argv[i]) != 0) failed++;
    return failed ? 1 : 0;
  }
  for (; i < argc; i++) {
    trace_t t;
    char err[512], warn[512];
    if (trace_load(argv[i], &t, strict, err, sizeof err, warn, sizeof warn) != 0) {
      fprintf(stderr, "replay_rep: %s\n", err);
      failed++;
      continue;
    }
    if (warn[0]) fprintf(stderr, "replay_rep: %s\n", warn);
    trace_result_t r;
    if (trace_replay(&t, &opts, &r, err, sizeof err) != 0) {
      fprintf(stderr, "replay_rep: %s\n", err);
      failed++;
    } else {
      printf("%s %llu %.0f %llu %llu %.3f\n", t.name, (unsigned long long)r.ops, r.ops_per_s,
             (unsigned long long)r.peak_live_bytes, (unsigned long long)r.peak_rss_delta_bytes, r.utilization);
      fflush(stdout);
    }
    trace_release(&t);
  }
  return failed ? 1 : 0;
}
