/* cmd_compare.c -- `tessera compare [--alloc LIST] [--runs N] -- CMD ARGS...`.
 *
 * Runs CMD under each allocator N times, interleaved (run 1 of every
 * allocator, then run 2, ...) so that drift of the machine (thermal, other
 * load) spreads over all of them instead of biasing one. Wall time from
 * CLOCK_MONOTONIC around fork..wait4, CPU time and peak RSS from wait4's
 * rusage of that child alone. Medians are reported, with ratios to the best.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

const char cmd_compare_help[] =
    "usage: tessera compare [--alloc LIST] [--runs N] [--show-output] -- CMD [ARGS...]\n"
    "\n"
    "Run CMD under each allocator in LIST, N times each, interleaved, and print\n"
    "the median wall time, CPU time (user+sys, from wait4) and peak RSS per\n"
    "allocator, each with its ratio to the best. CMD's stdout is discarded\n"
    "unless --show-output; its stderr is kept.\n"
    "\n"
    "  --alloc LIST    comma-separated: tessera, tessera-check, glibc, jemalloc,\n"
    "                  tcmalloc, mimalloc, or a path to a .so\n"
    "                  (default: tessera,glibc and whichever peers are installed)\n"
    "  --runs N        runs per allocator (default 5)\n"
    "\n"
    "Exit status 1 if CMD failed (non-zero status) under any allocator.\n";

typedef struct sample_s {
  double wall, cpu;
  long rss_kb;
  int status;
} sample_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int cmd_compare(int argc, char **argv) {
  const char *list = NULL;
  uint64_t runs = 5;
  bool show = false;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--alloc") == 0 && i + 1 < argc) list = argv[++i];
    else if (strncmp(a, "--alloc=", 8) == 0) list = a + 8;
    else if (strcmp(a, "--runs") == 0 && i + 1 < argc) {
      if (!cli_parse_uint(argv[++i], &runs) || runs == 0 || runs > 10000)
        return cli_usage("--runs wants a count from 1 to 10000, not '%s'", argv[i]);
    } else if (strcmp(a, "--show-output") == 0) show = true;
    else if (a[0] == '-') return cli_usage("unknown option or missing value: '%s'", a);
    else break;
  }
  if (i >= argc) return cli_usage("no command given (usage: tessera compare [--alloc LIST] -- CMD ARGS...)");
  char deflist[128];
  if (!list) {
    /* Peers that are not installed are left out of the default quietly. */
    snprintf(deflist, sizeof deflist, "tessera,glibc");
    static const char *const peers[][2] = {{"jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
                                           {"tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"},
                                           {"mimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"}};
    for (int k = 0; k < 3; k++)
      if (access(peers[k][1], R_OK) == 0) {
        strcat(deflist, ",");
        strcat(deflist, peers[k][0]);
      }
    list = deflist;
  }
  cli_alloc_t allocs[16];
  int n = cli_alloc_list(list, allocs, 16);
  if (n < 0) return 2;
  int nr = (int)runs;
  sample_t *s = calloc((size_t)n * (size_t)nr, sizeof *s);
  if (!s) return 1;
  char **cmd = argv + i;
  uint64_t total = (uint64_t)n * (uint64_t)nr, done = 0;
  for (int r = 0; r < nr; r++)
    for (int a = 0; a < n; a++) {
      char label[96];
      snprintf(label, sizeof label, "run %d of %.60s", r + 1, allocs[a].name);
      cli_progress(label, done, total);
      cli_progress_end();  /* the child may write to the terminal too */
      struct rusage ru;
      double t0 = cli_now();
      pid_t pid = cli_spawn(cmd, allocs[a].preload, NULL, !show);
      sample_t *x = &s[a * nr + r];
      if (pid < 0) {
        free(s);
        return 1;
      }
      x->status = cli_wait(pid, &ru);
      x->wall = cli_now() - t0;
      x->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec * 1e-6;
      x->rss_kb = ru.ru_maxrss;
      done++;
      cli_progress(label, done, total);
    }
  cli_progress_end();

  double *wall = calloc((size_t)n, sizeof *wall), *cpu = calloc((size_t)n, sizeof *cpu),
         *rss = calloc((size_t)n, sizeof *rss), *tmp = calloc((size_t)nr, sizeof *tmp);
  int failed = 0;
  for (int a = 0; a < n; a++) {
    for (int r = 0; r < nr; r++) tmp[r] = s[a * nr + r].wall;
    wall[a] = median(tmp, nr);
    for (int r = 0; r < nr; r++) tmp[r] = s[a * nr + r].cpu;
    cpu[a] = median(tmp, nr);
    for (int r = 0; r < nr; r++) tmp[r] = (double)s[a * nr + r].rss_kb * 1024;
    rss[a] = median(tmp, nr);
  }
  double bw = wall[0], bc = cpu[0], br = rss[0];
  for (int a = 1; a < n; a++) {
    if (wall[a] < bw) bw = wall[a];
    if (cpu[a] < bc) bc = cpu[a];
    if (rss[a] < br) br = rss[a];
  }
  printf("%s", cmd[0]);
  for (char **c = cmd + 1; *c; c++) printf(" %s", *c);
  printf(": median of %d run%s, ratio to the best in ()\n", nr, nr == 1 ? "" : "s");
  printf("  %-16s %18s %18s %20s\n", "allocator", "wall", "cpu (user+sys)", "peak RSS");
  for (int a = 0; a < n; a++) {
    char b[32], w[40], c[40], m[48];
    snprintf(w, sizeof w, "%.3f s (%.2f)", wall[a], bw > 0 ? wall[a] / bw : 1.0);
    snprintf(c, sizeof c, "%.3f s (%.2f)", cpu[a], bc > 0 ? cpu[a] / bc : 1.0);
    snprintf(m, sizeof m, "%s (%.2f)", cli_fmt_bytes(b, sizeof b, rss[a]), br > 0 ? rss[a] / br : 1.0);
    printf("  %-16s %18s %18s %20s", allocs[a].name, w, c, m);
    int bad = 0, st = 0;
    for (int r = 0; r < nr; r++)
      if (s[a * nr + r].status) bad++, st = s[a * nr + r].status;
    if (bad) {
      printf("  FAILED %d/%d (status %d)", bad, nr, st);
      failed = 1;
    }
    printf("\n");
  }
  free(wall);
  free(cpu);
  free(rss);
  free(tmp);
  free(s);
  return failed;
}
