/* cli.h -- what the subcommands of `tessera` share: the command table entry,
 * locating the libraries, naming allocators, spawning a child under a
 * preload, a progress bar and small numeric/formatting helpers.
 *
 * Every subcommand lives in its own tools/cmd_<name>.c and exports
 * cmd_<name>() plus its help text; tessera.c only dispatches. Errors are
 * printed as "tessera NAME: what is wrong" and end the command with status 2
 * (usage) or 1 (failure); a child's own status is passed through by run.
 */
#ifndef TSR_CLI_H
#define TSR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* One subcommand: main-like entry point, a one-line summary for `tessera
 * help` and the full text for `tessera help NAME`. */
typedef struct cli_cmd_s {
  const char *name;
  int (*main)(int argc, char **argv); /* argv[0] is the subcommand name */
  const char *summary;
  const char *help;
} cli_cmd_t;

extern const cli_cmd_t cli_cmds[];   /* NULL-name terminated, in tessera.c */
const cli_cmd_t *cli_find(const char *name);

/* Commands (tools/cmd_<name>.c). */
int cmd_help(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_replay_worker(int argc, char **argv); /* hidden: one replay in a fresh process */
extern const char cmd_help_help[], cmd_run_help[], cmd_check_help[], cmd_record_help[], cmd_convert_help[],
    cmd_replay_help[], cmd_compare_help[], cmd_map_help[];

/* ---- messages ---------------------------------------------------------- */
extern const char *cli_name;  /* "tessera run", ... for messages */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error: message, then "try 'tessera help NAME'"; returns 2. */
int  cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- libraries and allocators ----------------------------------------- */
/* Path of one of our libraries ("libtessera.so", "libtessera-record.so",
 * ...): next to the executable, else ../lib. NULL (with a message) if
 * neither exists. The result is static storage, valid until the next call. */
const char *cli_lib_path(const char *file);
/* Folder of the running executable (static storage). */
const char *cli_exe_dir(void);

/* An allocator named on the command line: tessera, tessera-check, glibc,
 * jemalloc, tcmalloc, mimalloc or a path to a .so. preload is "" for glibc
 * (nothing to preload). */
typedef struct cli_alloc_s {
  char name[64];
  char preload[4096];
} cli_alloc_t;
/* Parse "a,b,c" into out[0..max); returns the count, or -1 after printing
 * what is wrong (unknown name, library missing). */
int cli_alloc_list(const char *list, cli_alloc_t *out, int max);

/* ---- children ---------------------------------------------------------- */
/* setenv LD_PRELOAD=lib:<old LD_PRELOAD> in the current environment
 * (the caller is a child about to exec); lib "" leaves it alone. */
void cli_preload_env(const char *lib);
/* fork + exec argv with lib preloaded and extra "NAME=VALUE" variables
 * (NULL-terminated, may be NULL); stdout_null sends the child's stdout to
 * /dev/null. Returns the pid, -1 on failure (message printed). */
pid_t cli_spawn(char **argv, const char *lib, char **extra_env, bool stdout_null);
/* Wait for pid; returns the shell-style status (exit code, or 128+signal),
 * and fills ru if non-NULL. */
int cli_wait(pid_t pid, struct rusage *ru);

/* ---- progress bar on stderr (only when stderr is a terminal) ----------- */
void cli_progress(const char *label, uint64_t done, uint64_t total);
void cli_progress_end(void);

/* ---- small helpers ----------------------------------------------------- */
double cli_now(void);                      /* CLOCK_MONOTONIC seconds */
char  *cli_fmt_bytes(char *buf, size_t len, double bytes); /* "1.5 MiB" */
bool   cli_parse_uint(const char *s, uint64_t *out);
/* Temporary folder for intermediate files (created once, removed at exit
 * unless TESSERA_KEEP_TMP is set). */
const char *cli_tmpdir(void);

#endif /* TSR_CLI_H */
