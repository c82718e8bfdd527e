/* cmd_check.c -- `tessera check [options] -- CMD ARGS...`.
 *
 * Runs CMD with the checking build (libtessera-check.so) prepended to
 * LD_PRELOAD. Every option is a TESSERA_CHECK_* variable of the library
 * (src/options.h), so the flags here only set the environment; the library
 * reports and, when it reported an error, makes the program exit with the
 * error exit code. We wait for the child and pass its status on (a signal
 * death gives 128+signal).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cmd_check_help[] =
    "usage: tessera check [options] -- CMD [ARGS...]\n"
    "\n"
    "Run CMD with the checking build of tessera (libtessera-check.so): redzones,\n"
    "quarantine of freed blocks, guard pages, double/invalid free diagnosis, C++\n"
    "new/delete mismatches and a leak report at exit. Every report line starts\n"
    "with 'tessera:'. A run in which nothing was found prints nothing and exits\n"
    "with CMD's own status; otherwise CMD exits with the error exit code.\n"
    "\n"
    "  --error-exitcode=N   exit status when an error was reported (default 23;\n"
    "                       0 keeps the program's own status)\n"
    "  --log-file=F         write reports to F instead of stderr\n"
    "  --json               reports as JSON lines\n"
    "  --leaks=MODE         no, definite (definitely and indirectly lost; the\n"
    "                       default) or all (also still reachable)\n"
    "  --quarantine=SIZE    bytes of freed blocks held back (K/M/G suffixes)\n"
    "  --guard=MODE[,SIDE]  guard pages: off, all, auto (default) or N (1 in N);\n"
    "                       SIDE: overflow, underflow or both (default: overflow\n"
    "                       while every block is guarded, then both)\n"
    "  --redzone=N          canary bytes on each side of a block (default 16)\n"
    "  --stack-depth=N      frames kept per stack (default 12)\n"
    "\n"
    "The same settings are TESSERA_CHECK_* variables: see 'tessera help options'\n"
    "and docs/check.md.\n";

/* --name=value flags and the variables they set. */
static const struct {
  const char *flag;
  const char *env;
} check_flags[] = {
    {"--error-exitcode=", "TESSERA_CHECK_ERROR_EXITCODE"},
    {"--log-file=", "TESSERA_CHECK_LOG_FILE"},
    {"--leaks=", "TESSERA_CHECK_LEAKS"},
    {"--quarantine=", "TESSERA_CHECK_QUARANTINE"},
    {"--guard=", "TESSERA_CHECK_GUARD"},
    {"--redzone=", "TESSERA_CHECK_REDZONE"},
    {"--stack-depth=", "TESSERA_CHECK_STACK_DEPTH"},
};
#define FLAG_COUNT (sizeof check_flags / sizeof check_flags[0])

static bool is_number(const char *s) {
  if (!*s) return false;
  for (; *s; s++) if (*s < '0' || *s > '9') return false;
  return true;
}

int cmd_check(int argc, char **argv) {
  static char env[FLAG_COUNT + 2][4200];
  char *extra[FLAG_COUNT + 2];
  size_t n = 0;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "--json") == 0) {
      snprintf(env[n], sizeof env[n], "TESSERA_CHECK_JSON=1");
      extra[n] = env[n]; n++;
      continue;
    }
    size_t f = 0;
    for (; f < FLAG_COUNT; f++) if (strncmp(a, check_flags[f].flag, strlen(check_flags[f].flag)) == 0) break;
    if (f == FLAG_COUNT) {
      if (a[0] == '-') return cli_usage("unknown option '%s'", a);
      break;   /* the command itself, without "--" */
    }
    const char *value = a + strlen(check_flags[f].flag);
    if (strcmp(check_flags[f].flag, "--leaks=") == 0 && strcmp(value, "no") != 0 && strcmp(value, "definite") != 0 &&
        strcmp(value, "all") != 0)
      return cli_usage("--leaks takes no, definite or all, not '%s'", value);
    if ((strcmp(check_flags[f].flag, "--error-exitcode=") == 0 || strcmp(check_flags[f].flag, "--redzone=") == 0 ||
         strcmp(check_flags[f].flag, "--stack-depth=") == 0) && !is_number(value))
      return cli_usage("%s takes a number, not '%s'", check_flags[f].flag, value);
    if (n >= FLAG_COUNT + 1) return cli_usage("too many options");
    snprintf(env[n], sizeof env[n], "%s=%s", check_flags[f].env, value);
    extra[n] = env[n]; n++;
  }
  extra[n] = NULL;
  if (i >= argc) return cli_usage("no command given (usage: tessera check [options] -- CMD ARGS...)");
  const char *lib = cli_lib_path("libtessera-check.so");
  if (!lib) return 1;
  char copy[4096];
  snprintf(copy, sizeof copy, "%s", lib);
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  pid_t pid = cli_spawn(argv + i, copy, extra, false);
  if (pid < 0) return 127;
  return cli_wait(pid, NULL);
}
