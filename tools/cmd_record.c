/* cmd_record.c -- `tessera record [-o FILE] [--export-rep FILE] -- CMD ARGS...`.
 *
 * Runs CMD with libtessera-record.so preloaded, telling it (through
 * TESSERA_RECORD_FILE/TESSERA_RECORD_PID) to record only CMD's own process:
 * forked children are not recorded, an exec in the same process starts the
 * recording again. Afterwards a summary is printed from the chunk headers
 * alone (tbin_summarize), which also catches a truncated file; decoding every
 * record took up to 50x the recorded run on malloc loops, so only
 * --export-rep does. Exit status: CMD's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "trace_bin.h"

const char cmd_record_help[] =
    "usage: tessera record [-o FILE] [--export-rep FILE.rep] -- CMD [ARGS...]\n"
    "\n"
    "Run CMD under the recorder (libtessera-record.so, which forwards to the\n"
    "next malloc, glibc's by default) and write every call of malloc, calloc,\n"
    "realloc, reallocarray, free, posix_memalign, aligned_alloc, memalign,\n"
    "valloc, pvalloc, free_sized and free_aligned_sized made by CMD's threads\n"
    "to FILE (default: CMD.trace.bin): function, thread, size, alignment,\n"
    "result address and time. The binary format is documented in\n"
    "tools/trace_bin.h. Only CMD's own process is recorded, not its children.\n"
    "\n"
    "  -o FILE             the binary trace to write\n"
    "  --export-rep FILE   also write a malloc-lab .rep (see 'tessera convert')\n"
    "\n"
    "Prints a one-line summary to stderr (from the trace's chunk headers; the\n"
    "records themselves are checked by 'tessera convert --counts').\n"
    "The exit status is CMD's.\n";

int cmd_record(int argc, char **argv) {
  const char *out = NULL, *rep = NULL;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) out = argv[++i];
    else if (strcmp(a, "--export-rep") == 0 && i + 1 < argc) rep = argv[++i];
    else if (a[0] == '-') return cli_usage("unknown option or missing value: '%s'", a);
    else break;
  }
  if (i >= argc) return cli_usage("no command given (usage: tessera record [-o FILE] -- CMD ARGS...)");
  char defname[512];
  if (!out) {
    const char *base = strrchr(argv[i], '/');
    snprintf(defname, sizeof defname, "%s.trace.bin", base ? base + 1 : argv[i]);
    out = defname;
  }
  const char *lib = cli_lib_path("libtessera-record.so");
  if (!lib) return 1;
  char libcopy[4096];
  snprintf(libcopy, sizeof libcopy, "%s", lib);
  /* Fail early on an unwritable output, before running the program. */
  FILE *probe = fopen(out, "w");
  if (!probe) {
    cli_err("cannot write %s: %s", out, strerror(errno));
    return 1;
  }
  fclose(probe);

  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    cli_err("fork: %s", strerror(errno));
    return 1;
  }
  if (pid == 0) {
    char pidbuf[32];
    snprintf(pidbuf, sizeof pidbuf, "%ld", (long)getpid());
    setenv("TESSERA_RECORD_FILE", out, 1);
    setenv("TESSERA_RECORD_PID", pidbuf, 1);
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    cli_preload_env(libcopy);
    execvp(argv[i], argv + i);
    int e = errno;
    fprintf(stderr, "%s: cannot run %s: %s\n", cli_name, argv[i], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  int status = cli_wait(pid, NULL);
  if (status == 126 || status == 127) {
    struct stat st;
    if (stat(out, &st) == 0 && st.st_size == 0) {
      unlink(out);
      return status;
    }
  }

  struct stat st;
  if (stat(out, &st) == 0 && st.st_size == 0) {
    cli_err("%s: nothing was recorded: %s did not load the recorder (statically linked, or LD_PRELOAD cleared?)", out,
            argv[i]);
    return status ? status : 1;
  }
  tbin_summary_t sum;
  char err[1024], warn[1024];
  if (tbin_summarize(out, &sum, err, sizeof err, warn, sizeof warn) != 0) {
    cli_err("%s", err);
    return status ? status : 1;
  }
  if (warn[0]) cli_warn("%s", warn);
  char sz[32];
  fprintf(stderr, "%s: %llu calls in %u thread%s recorded to %s (%s, %.1f bytes/call, %.2f s)\n", cli_name,
          (unsigned long long)sum.call_count, sum.thread_count, sum.thread_count == 1 ? "" : "s", out,
          cli_fmt_bytes(sz, sizeof sz, (double)sum.file_size),
          sum.call_count ? (double)(sum.file_size - TBIN_HEADER_SIZE) / (double)sum.call_count : 0.0,
          (double)sum.duration_ns * 1e-9);
  if (rep) {
    tbin_t t;
    rops_t r;
    if (tbin_load(out, &t, err, sizeof err, NULL, 0) != 0) {
      cli_err("%s", err);
      return status ? status : 1;
    }
    int rc = tbin_to_rops(&t, &r, err, sizeof err);
    tbin_release(&t);
    if (rc != 0 || rops_write_rep(&r, rep, err, sizeof err) != 0) {
      rops_release(&r);
      cli_err("%s", err);
      return status ? status : 1;
    }
    fprintf(stderr, "%s: wrote %s: %zu requests, %u ids", cli_name, rep, r.op_count, r.id_count);
    if (r.unknown_free_count) fprintf(stderr, ", %llu frees of unknown addresses skipped", (unsigned long long)r.unknown_free_count);
    fputc('\n', stderr);
    rops_release(&r);
  }
  return status;
}
