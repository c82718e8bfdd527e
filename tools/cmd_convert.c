/* cmd_convert.c -- `tessera convert IN.bin -o OUT.rep`.
 *
 * Binary trace -> malloc-lab .rep: ids are assigned per live address (a
 * fresh id per allocation), realloc/reallocarray become r, calloc and the
 * aligned family become a (the .rep format has no alignment), and frees of
 * addresses never seen allocated are skipped and counted. Threads are
 * merged by time. The result is re-read with the .rep parser as a check.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "trace.h"
#include "trace_bin.h"

const char cmd_convert_help[] =
    "usage: tessera convert IN.bin -o OUT.rep\n"
    "       tessera convert --counts IN.bin\n"
    "\n"
    "Convert a binary trace written by 'tessera record' to the malloc-lab .rep\n"
    "text format: 'a ID SIZE', 'f ID', 'r ID SIZE'. Ids are assigned per live\n"
    "address; realloc and reallocarray map to r; calloc and the aligned family\n"
    "map to a; threads are merged in time order; frees of addresses never seen\n"
    "allocated (made before recording started) are skipped, and counted in the\n"
    "summary on stderr.\n"
    "\n"
    "  --counts   print how many calls of each function each thread made (to\n"
    "             stdout) instead of converting\n";

/* --counts: a table of calls per function (rows) and thread (total). */
static int print_counts(const tbin_t *t) {
  uint64_t count[TBIN_OP_COUNT] = {0};
  for (size_t i = 0; i < t->event_count; i++) count[t->events[i].op]++;
  printf("%s: %zu calls, %u thread%s, pid %u (%.16s)%s\n", t->path, t->event_count, t->thread_count,
         t->thread_count == 1 ? "" : "s", t->header.pid, t->header.comm, t->has_end ? "" : ", no end marker");
  for (unsigned op = 1; op < TBIN_OP_COUNT; op++)
    printf("  %-20s %llu\n", tbin_op_name(op), (unsigned long long)count[op]);
  return 0;
}

int cmd_convert(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  bool counts = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out = argv[++i];
    else if (strcmp(argv[i], "--counts") == 0) counts = true;
    else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("unknown option or missing value: '%s'", argv[i]);
    else if (!in) in = argv[i];
    else return cli_usage("more than one input: '%s' and '%s'", in, argv[i]);
  }
  if (!in) return cli_usage("no input trace given");
  if (!out && !counts) return cli_usage("no output given (-o OUT.rep)");
  tbin_t t;
  char err[1024], warn[1024];
  if (tbin_load(in, &t, err, sizeof err, warn, sizeof warn) != 0) {
    cli_err("%s", err);
    return 1;
  }
  if (warn[0]) cli_warn("%s", warn);
  if (counts) {
    print_counts(&t);
    tbin_release(&t);
    return 0;
  }
  rops_t r;
  int rc = tbin_to_rops(&t, &r, err, sizeof err);
  tbin_release(&t);
  if (rc == 0) rc = rops_write_rep(&r, out, err, sizeof err);
  if (rc != 0) {
    cli_err("%s", err);
    return 1;
  }
  /* Round trip through the shared parser: what we write must load. */
  trace_t check;
  if (trace_load(out, &check, true, err, sizeof err, NULL, 0) != 0) {
    cli_err("internal error: the written trace does not parse: %s", err);
    rops_release(&r);
    return 1;
  }
  trace_release(&check);
  fprintf(stderr, "%s: wrote %s: %zu requests, %u ids, %u thread%s merged", cli_name, out, r.op_count, r.id_count,
          r.thread_count, r.thread_count == 1 ? "" : "s");
  if (r.unknown_free_count)
    fprintf(stderr, "; %llu frees of unknown addresses skipped", (unsigned long long)r.unknown_free_count);
  if (r.failed_count) fprintf(stderr, "; %llu failed calls skipped", (unsigned long long)r.failed_count);
  fputc('\n', stderr);
  rops_release(&r);
  return 0;
}
