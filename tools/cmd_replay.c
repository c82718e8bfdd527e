/* cmd_replay.c -- `tessera replay [--alloc LIST] [--repeat N] TRACE...`, and
 * the hidden `__replay-worker` that performs one replay.
 *
 * Every trace is parsed and validated first, so a malformed one stops the
 * command before any table is printed. Then each (trace, allocator) pair
 * runs in a fresh process: this binary re-executed with the allocator
 * preloaded, so allocators never share a heap or an RSS baseline. The
 * worker prints one line of numbers on stdout; errors go to its stderr.
 * .rep traces replay through tools/trace.c; binary recordings through
 * replay_mt.c, each recorded thread on its own thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "replay_mt.h"
#include "trace.h"
#include "trace_bin.h"

const char cmd_replay_help[] =
    "usage: tessera replay [--alloc LIST] [--repeat N] [--no-threads] TRACE...\n"
    "\n"
    "Replay allocation traces -- malloc-lab .rep files or binary recordings from\n"
    "'tessera record' -- against each allocator in LIST, each in a fresh process.\n"
    "Every byte of every block is written; realloc must keep contents, calloc\n"
    "must return zeros, and blocks are checked before they are freed.\n"
    "\n"
    "  --alloc LIST   comma-separated: tessera, tessera-check, glibc, jemalloc,\n"
    "                 tcmalloc, mimalloc, or a path to a .so (default: tessera)\n"
    "  --repeat N     replay each trace N times in the same process (default 1)\n"
    "  --no-threads   replay a multi-threaded recording on one thread\n"
    "\n"
    "Prints a table per trace: operations per second, peak live payload, peak\n"
    "RSS above the replayer's baseline (VmHWM after /proc/self/clear_refs) and\n"
    "utilization = peak live payload / that RSS. A malformed trace stops\n"
    "everything with 'FILE:LINE: problem' (or 'FILE: record N ...') and exit\n"
    "status 1, before any table. A replay that fails (NULL result, damaged\n"
    "contents, crash) is shown in its row and makes the exit status 1.\n";

/* The parent parses every trace once (validating it) and hands the worker
 * its operations as a flat file that the worker maps and touches before it
 * measures its RSS baseline. A worker that parsed for itself would start
 * with the parser's freed memory cached by the allocator under test, and
 * the replay would reuse it without a trace in RSS (tcmalloc showed 96 KiB
 * of growth for 3.7 MiB live). */
typedef struct ops_file_s {
  char     magic[8];     /* "TSROPS1" */
  uint32_t kind;         /* 1: trace_op_t (.rep), 2: rop_t (binary recording) */
  uint32_t id_count;
  uint32_t thread_count;
  uint32_t reserved;
  uint64_t op_count;
} ops_file_t;

typedef struct loaded_s {
  const char *path;
  char ops_path[4200];
  bool binary;
  size_t ops;
  uint32_t ids, threads;
  uint64_t skipped;
} loaded_t;

static int write_ops(loaded_t *l, int index, uint32_t kind, const void *ops, size_t size, size_t count) {
  const char *dir = cli_tmpdir();
  if (!dir) return -1;
  snprintf(l->ops_path, sizeof l->ops_path, "%s/%d.ops", dir, index);
  FILE *f = fopen(l->ops_path, "wb");
  ops_file_t h = {"TSROPS1", kind, l->ids, l->threads, 0, count};
  if (!f || fwrite(&h, sizeof h, 1, f) != 1 || (count && fwrite(ops, size, count, f) != count) || fclose(f) != 0) {
    cli_err("%s: cannot write %s: %s", l->path, l->ops_path, strerror(errno));
    return -1;
  }
  return 0;
}

static int load_any(const char *path, int index, loaded_t *l) {
  char err[1024], warn[1024];
  memset(l, 0, sizeof *l);
  l->path = path;
  if (tbin_is_binary(path)) {
    tbin_t t;
    rops_t r;
    if (tbin_load(path, &t, err, sizeof err, warn, sizeof warn) != 0) {
      cli_err("%s", err);
      return -1;
    }
    if (warn[0]) cli_warn("%s", warn);
    int rc = tbin_to_rops(&t, &r, err, sizeof err);
    tbin_release(&t);
    if (rc) {
      cli_err("%s", err);
      return -1;
    }
    l->binary = true;
    l->ops = r.op_count;
    l->ids = r.id_count;
    l->threads = r.thread_count;
    l->skipped = r.unknown_free_count;
    rc = write_ops(l, index, 2, r.ops, sizeof *r.ops, r.op_count);
    rops_release(&r);
    return rc;
  }
  trace_t t;
  if (trace_load(path, &t, false, err, sizeof err, warn, sizeof warn) != 0) {
    cli_err("%s", err);
    return -1;
  }
  if (warn[0]) cli_warn("%s", warn);
  l->ops = t.op_count;
  l->ids = t.id_count;
  l->threads = 1;
  int rc = write_ops(l, index, 1, t.ops, sizeof *t.ops, t.op_count);
  trace_release(&t);
  return rc;
}

/* ---- the worker: one replay, numbers on stdout -------------------------- */

/* Map the operations file and touch every page, so it is all in the RSS
 * baseline. Returns the header (the operations follow it) or NULL. */
static const ops_file_t *map_ops(const char *file, size_t elem) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(ops_file_t)) {
    cli_err("%s: cannot read the operations file", file);
    return NULL;
  }
  const ops_file_t *h = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  close(fd);
  if (h == MAP_FAILED || memcmp(h->magic, "TSROPS1", 8) != 0 ||
      (size_t)st.st_size != sizeof *h + h->op_count * elem) {
    cli_err("%s: not an operations file written by this tessera", file);
    return NULL;
  }
  volatile uint8_t sum = 0;
  for (size_t off = 0; off < (size_t)st.st_size; off += 4096) sum += ((const uint8_t *)h)[off];
  (void)sum;
  return h;
}

int cmd_replay_worker(int argc, char **argv) {
  cli_name = "tessera replay";
  unsigned repeat = 1;
  bool threads = true;
  const char *file = NULL, *name = NULL;
  for (int i = 1; i < argc; i++) {
    uint64_t v;
    if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc && cli_parse_uint(argv[i + 1], &v)) repeat = (unsigned)v, i++;
    else if (strcmp(argv[i], "--no-threads") == 0) threads = false;
    else if (strcmp(argv[i], "--threads") == 0) threads = true;
    else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) name = argv[++i];
    else file = argv[i];
  }
  if (!file) return 2;
  if (!name) name = file;
  char err[1024];
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  ops_file_t peek;
  if (fd < 0 || read(fd, &peek, sizeof peek) != (ssize_t)sizeof peek) {
    cli_err("%s: cannot read the operations file", file);
    return 1;
  }
  close(fd);
  if (peek.kind == 2) {
    const ops_file_t *h = map_ops(file, sizeof(rop_t));
    if (!h) return 1;
    rops_t r = {(rop_t *)(h + 1), h->op_count, h->id_count, h->thread_count, 0, 0, 0, 0, 0};
    rx_opts_t o = {{0}, repeat, threads, NULL, NULL, 0};
    rx_result_t res;
    if (rx_replay(&r, name, &o, &res, err, sizeof err) != 0) {
      cli_err("%s", err);
      return 1;
    }
    printf("%llu %.9f %llu %llu %u\n", (unsigned long long)res.ops, res.seconds,
           (unsigned long long)res.peak_live_bytes, (unsigned long long)res.peak_rss_delta_bytes, res.threads_used);
    return 0;
  }
  const ops_file_t *h = map_ops(file, sizeof(trace_op_t));
  if (!h) return 1;
  trace_t t;
  memset(&t, 0, sizeof t);
  t.path = (char *)name;
  t.name = name;
  t.id_count = h->id_count;
  t.ops = (trace_op_t *)(h + 1);
  t.op_count = h->op_count;
  trace_replay_opts_t o = {{NULL, NULL, NULL}, true, repeat};
  trace_result_t res;
  if (trace_replay(&t, &o, &res, err, sizeof err) != 0) {
    cli_err("%s", err);
    return 1;
  }
  printf("%llu %.9f %llu %llu 1\n", (unsigned long long)res.ops, res.seconds, (unsigned long long)res.peak_live_bytes,
         (unsigned long long)res.peak_rss_delta_bytes);
  return 0;
}

/* ---- the parent ---------------------------------------------------------- */

typedef struct row_s {
  bool ok;
  char why[160];
  unsigned long long ops, peak_live, peak_rss;
  unsigned threads;
  double seconds;
} row_t;

/* Run the worker for (path, alloc); capture its stdout line. */
static void run_worker(const loaded_t *l, const cli_alloc_t *a, unsigned repeat, bool threads, row_t *row) {
  memset(row, 0, sizeof *row);
  int fd[2];
  if (pipe(fd) != 0) {
    snprintf(row->why, sizeof row->why, "pipe: %s", strerror(errno));
    return;
  }
  char rep[24];
  snprintf(rep, sizeof rep, "%u", repeat);
  char *argv[] = {"/proc/self/exe", "__replay-worker", "--repeat", rep, threads ? "--threads" : "--no-threads",
                  "--name", (char *)l->path, (char *)l->ops_path, NULL};
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(row->why, sizeof row->why, "fork: %s", strerror(errno));
    close(fd[0]);
    close(fd[1]);
    return;
  }
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    cli_preload_env(a->preload);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(fd[1]);
  char buf[512];
  size_t n = 0;
  ssize_t got;
  while (n < sizeof buf - 1 && ((got = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0 || (got < 0 && errno == EINTR)))
    if (got > 0) n += (size_t)got;
  buf[n] = '\0';
  close(fd[0]);
  int st = cli_wait(pid, NULL);
  if (st > 128) {
    snprintf(row->why, sizeof row->why, "crashed: %s", strsignal(st - 128));
    return;
  }
  if (st != 0) {
    snprintf(row->why, sizeof row->why, "failed (see the message above)");
    return;
  }
  if (sscanf(buf, "%llu %lf %llu %llu %u", &row->ops, &row->seconds, &row->peak_live, &row->peak_rss, &row->threads) !=
      5) {
    snprintf(row->why, sizeof row->why, "no result from the worker");
    return;
  }
  row->ok = true;
}

static char *fmt_rate(char *b, size_t n, double v) {
  if (v >= 1e9) snprintf(b, n, "%.2f G", v / 1e9);
  else if (v >= 1e6) snprintf(b, n, "%.2f M", v / 1e6);
  else if (v >= 1e3) snprintf(b, n, "%.1f k", v / 1e3);
  else snprintf(b, n, "%.0f", v);
  return b;
}

int cmd_replay(int argc, char **argv) {
  const char *list = "tessera";
  uint64_t repeat = 1;
  bool threads = true;
  int first = argc;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--alloc") == 0 && i + 1 < argc) list = argv[++i];
    else if (strncmp(a, "--alloc=", 8) == 0) list = a + 8;
    else if (strcmp(a, "--repeat") == 0 && i + 1 < argc) {
      if (!cli_parse_uint(argv[++i], &repeat) || repeat == 0 || repeat > 1000000)
        return cli_usage("--repeat wants a count from 1 to 1000000, not '%s'", argv[i]);
    } else if (strcmp(a, "--no-threads") == 0) threads = false;
    else if (strcmp(a, "--") == 0) {
      first = i + 1;
      break;
    } else if (a[0] == '-' && a[1]) return cli_usage("unknown option or missing value: '%s'", a);
    else {
      first = i;
      break;
    }
  }
  if (first >= argc) return cli_usage("no trace given");
  int ntraces = argc - first;
  cli_alloc_t allocs[16];
  int nalloc = cli_alloc_list(list, allocs, 16);
  if (nalloc < 0) return 2;

  loaded_t *tr = calloc((size_t)ntraces, sizeof *tr);
  if (!tr) return 1;
  for (int k = 0; k < ntraces; k++)
    if (load_any(argv[first + k], k, &tr[k]) != 0) {
      free(tr);
      return 1;
    }

  int failures = 0;
  uint64_t steps = (uint64_t)ntraces * (uint64_t)nalloc, step = 0;
  for (int k = 0; k < ntraces; k++) {
    row_t rows[16];
    for (int j = 0; j < nalloc; j++) {
      char label[128];
      snprintf(label, sizeof label, "%s on %s", tr[k].path, allocs[j].name);
      cli_progress(label, step, steps);
      run_worker(&tr[k], &allocs[j], (unsigned)repeat, threads, &rows[j]);
      step++;
      cli_progress(label, step, steps);
    }
    cli_progress_end();
    char b1[32], b2[32];
    printf("%s: %zu requests, %u ids", tr[k].path, tr[k].ops, tr[k].ids);
    if (tr[k].binary) printf(", %u thread%s", tr[k].threads, tr[k].threads == 1 ? "" : "s");
    if (tr[k].skipped) printf(", %llu unknown frees skipped", (unsigned long long)tr[k].skipped);
    if (repeat > 1) printf(", %llu passes", (unsigned long long)repeat);
    printf("\n  %-16s %10s %12s %12s %7s\n", "allocator", "ops/s", "peak live", "peak RSS+", "util");
    for (int j = 0; j < nalloc; j++) {
      row_t *r = &rows[j];
      if (!r->ok) {
        printf("  %-16s %s\n", allocs[j].name, r->why);
        failures++;
        continue;
      }
      char b3[32];
      double util = r->peak_rss ? (double)r->peak_live / (double)r->peak_rss : 0;
      printf("  %-16s %10s %12s %12s", allocs[j].name, fmt_rate(b3, sizeof b3, r->seconds > 0 ? r->ops / r->seconds : 0),
             cli_fmt_bytes(b1, sizeof b1, (double)r->peak_live), cli_fmt_bytes(b2, sizeof b2, (double)r->peak_rss));
      if (r->peak_rss) printf(" %6.1f%%\n", 100 * util);
      else printf(" %7s\n", "-");
    }
    printf("\n");
    fflush(stdout);
  }
  free(tr);
  return failures ? 1 : 0;
}
