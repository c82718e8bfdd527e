/* cmd_run.c -- `tessera run [--stats[=json]] -- CMD ARGS...`.
 *
 * Runs CMD with libtessera.so prepended to LD_PRELOAD and waits for it, so
 * that a signal death can be reported as 128+signal (the shell convention)
 * rather than killing us too. Statistics are printed by the library itself
 * at exit (TESSERA_STATS); this command only sets the variable.
 * `tessera check` lives in cmd_check.c.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cmd_run_help[] =
    "usage: tessera run [--stats[=json]] [--alloc NAME] -- CMD [ARGS...]\n"
    "\n"
    "Run CMD with tessera as its malloc (LD_PRELOAD, ahead of any LD_PRELOAD\n"
    "already set). The exit status is CMD's; a signal death gives 128+signal.\n"
    "\n"
    "  --stats        print tessera's statistics at exit (TESSERA_STATS=1)\n"
    "  --stats=json   the same as JSON (TESSERA_STATS=json)\n"
    "  --alloc NAME   preload another allocator instead (glibc, jemalloc,\n"
    "                 tcmalloc, mimalloc, tessera-check or a path to a .so)\n"
    "\n"
    "Other options are environment variables: see 'tessera help options'.\n";

/* Everything after "--" is the command. */
static int run_under(const char *lib, const char *stats, char **cmd) {
  char env_stats[64];
  char *extra[2] = {NULL, NULL};
  if (stats) {
    snprintf(env_stats, sizeof env_stats, "TESSERA_STATS=%s", stats);
    extra[0] = env_stats;
  }
  /* The child gets the terminal's signals; we outlive it to report them. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  pid_t pid = cli_spawn(cmd, lib, extra, false);
  if (pid < 0) return 127;
  return cli_wait(pid, NULL);
}

int cmd_run(int argc, char **argv) {
  const char *stats = NULL, *alloc = "tessera";
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--stats") == 0) stats = "1";
    else if (strcmp(a, "--stats=json") == 0) stats = "json";
    else if (strncmp(a, "--stats=", 8) == 0) return cli_usage("--stats takes 'json' or nothing, not '%s'", a + 8);
    else if (strcmp(a, "--alloc") == 0 && i + 1 < argc) alloc = argv[++i];
    else if (strncmp(a, "--alloc=", 8) == 0) alloc = a + 8;
    else if (a[0] == '-') return cli_usage("unknown option '%s'", a);
    else break;  /* the command itself, without "--" */
  }
  if (i >= argc) return cli_usage("no command given (usage: tessera run [--stats] -- CMD ARGS...)");
  cli_alloc_t al;
  if (cli_alloc_list(alloc, &al, 1) != 1) return 2;
  return run_under(al.preload, stats, argv + i);
}
