/* cmd_help.c -- `tessera help [SUBCOMMAND | options]`.
 *
 * The options table is printed from src/options.h itself (the X-macro the
 * library reads), so it cannot drift from what the library accepts. Help
 * goes to stdout and exits 0; an unknown topic is a usage error.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"

const char cmd_help_help[] =
    "usage: tessera help [SUBCOMMAND | options]\n"
    "\n"
    "Without an argument, list the subcommands. With a subcommand, show its\n"
    "usage. 'tessera help options' prints the run-time options of the library:\n"
    "each is read from the environment variable TESSERA_<NAME>.\n";

static void print_options(void) {
  printf("Run-time options of libtessera, read from the environment (tessera run\n"
         "passes the environment through). Booleans: on/off, 1/0, yes/no, true/false;\n"
         "sizes accept K, M and G. A bad value gets one warning and the default.\n\n");
  printf("%-22s %-32s %-6s %-10s %s\n", "NAME", "ENVIRONMENT VARIABLE", "KIND", "DEFAULT", "MEANING");
#define PRINT_OPTION(id, name, kind, def, doc) \
  printf("%-22s %-32s %-6s %-10s %s\n", #id, "TESSERA_" name, #kind, (def)[0] ? (def) : "\"\"", doc);
  TSR_OPTIONS(PRINT_OPTION)
#undef PRINT_OPTION
}

int cmd_help(int argc, char **argv) {
  if (argc > 2) return cli_usage("too many arguments");
  if (argc == 2) {
    if (strcmp(argv[1], "options") == 0) {
      print_options();
      return 0;
    }
    const cli_cmd_t *c = cli_find(argv[1]);
    if (!c) return cli_usage("no help for '%s': not a subcommand (nor 'options')", argv[1]);
    fputs(c->help, stdout);
    return 0;
  }
  printf("usage: tessera SUBCOMMAND [ARGS...]\n\n"
         "tessera %s: a malloc replacement and its tools.\n\nSubcommands:\n",
         TSR_CLI_VERSION);
  for (const cli_cmd_t *c = cli_cmds; c->name; c++) printf("  %-9s %s\n", c->name, c->summary);
  printf("\n'tessera help SUBCOMMAND' shows its usage; 'tessera help options' lists the\n"
         "TESSERA_* environment options. See also tessera(1) and docs/tools.md.\n");
  return 0;
}
