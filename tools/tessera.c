/* tessera.c -- the `tessera` command: dispatch to one subcommand.
 *
 * The table below is the only list of subcommands; help, the man page and
 * the tests follow it. Each subcommand parses its own options (cmd_*.c).
 * `__replay-worker` is internal: replay and compare re-execute this binary
 * under an allocator's preload so each measurement gets a fresh process.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli.h"

const cli_cmd_t cli_cmds[] = {
    {"help", cmd_help, "show help for tessera, a subcommand, or the options table", cmd_help_help},
    {"run", cmd_run, "run a program with tessera as its malloc", cmd_run_help},
    {"check", cmd_check, "run a program with the checking build of tessera", cmd_check_help},
    {"record", cmd_record, "record every allocation call of a program to a binary trace", cmd_record_help},
    {"convert", cmd_convert, "convert a recorded binary trace to the malloc-lab .rep format", cmd_convert_help},
    {"replay", cmd_replay, "replay traces against allocators: speed, peak RSS, utilization", cmd_replay_help},
    {"compare", cmd_compare, "time a program under several allocators", cmd_compare_help},
    {"map", cmd_map, "draw tessera's heap over a trace as a self-contained HTML page", cmd_map_help},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd_t *cli_find(const char *name) {
  for (const cli_cmd_t *c = cli_cmds; c->name; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    char *help[] = {"help", NULL};
    cmd_help(1, help);
    return 2;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) return cmd_help(1, argv + 1);
  if (strcmp(sub, "--version") == 0 || strcmp(sub, "version") == 0) {
    printf("tessera %s\n", TSR_CLI_VERSION);
    return 0;
  }
  if (strcmp(sub, "__replay-worker") == 0) return cmd_replay_worker(argc - 1, argv + 1);
  const cli_cmd_t *c = cli_find(sub);
  if (!c) {
    fprintf(stderr, "tessera: unknown subcommand '%s'\ntry 'tessera help' for the list\n", sub);
    return 2;
  }
  static char name[64];
  snprintf(name, sizeof name, "tessera %s", c->name);
  cli_name = name;
  return c->main(argc - 1, argv + 1);
}
