/* cli.c -- helpers shared by the subcommands (see cli.h).
 *
 * Libraries are found relative to /proc/self/exe, never through the current
 * directory or a compiled-in path, so build/tessera uses build/lib*.so and an
 * installed bin/tessera uses lib/. Children inherit our environment plus
 * LD_PRELOAD prepended (a user's own preload keeps working behind ours).
 * The progress bar writes only when stderr is a terminal, so logs and pipes
 * stay byte-for-byte free of it.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *cli_name = "tessera";

/* ---- messages ---------------------------------------------------------- */

static void vmsg(const char *kind, const char *fmt, va_list ap) {
  cli_progress_end();
  fprintf(stderr, "%s: %s", cli_name, kind);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void cli_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg("", fmt, ap);
  va_end(ap);
}

void cli_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg("warning: ", fmt, ap);
  va_end(ap);
}

int cli_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg("", fmt, ap);
  va_end(ap);
  const char *sp = strchr(cli_name, ' ');
  fprintf(stderr, "try 'tessera help%s' for usage\n", sp ? sp : "");
  return 2;
}

/* ---- libraries --------------------------------------------------------- */

const char *cli_exe_dir(void) {
  static char dir[PATH_MAX];
  if (dir[0]) return dir;
  ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
  if (n <= 0) {
    strcpy(dir, ".");
    return dir;
  }
  dir[n] = '\0';
  char *slash = strrchr(dir, '/');
  if (slash == dir) slash[1] = '\0';
  else if (slash) *slash = '\0';
  return dir;
}

const char *cli_lib_path(const char *file) {
  static char path[PATH_MAX + 64];
  const char *dir = cli_exe_dir();
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (access(path, R_OK) == 0) return path;
  snprintf(path, sizeof path, "%s/../lib/%s", dir, file);
  if (access(path, R_OK) == 0) {
    char *real = realpath(path, NULL);
    if (real) {
      snprintf(path, sizeof path, "%s", real);
      free(real);
    }
    return path;
  }
  cli_err("cannot find %s next to %s or in %s/../lib (build it with 'make')", file, dir, dir);
  return NULL;
}

/* Peers as Debian 12 installs them (scripts/deps.sh). */
static const struct {
  const char *name, *file, *package;
} peers[] = {
    {"jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "libjemalloc2"},
    {"tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"},
    {"mimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "libmimalloc2.0"},
};

static int alloc_one(const char *name, size_t len, cli_alloc_t *a) {
  char buf[4096];
  if (len == 0 || len >= sizeof buf) {
    cli_err("empty or overlong allocator name in the list");
    return -1;
  }
  memcpy(buf, name, len);
  buf[len] = '\0';
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%.63s", buf);
  if (strcmp(buf, "glibc") == 0 || strcmp(buf, "system") == 0) return 0;
  if (strcmp(buf, "tessera") == 0 || strcmp(buf, "tessera-check") == 0) {
    const char *p = cli_lib_path(buf[7] ? "libtessera-check.so" : "libtessera.so");
    if (!p) return -1;
    snprintf(a->preload, sizeof a->preload, "%s", p);
    return 0;
  }
  for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
    if (strcmp(buf, peers[i].name) != 0) continue;
    if (access(peers[i].file, R_OK) != 0) {
      cli_err("allocator %s: %s not found (install %s, e.g. with 'make deps')", buf, peers[i].file,
              peers[i].package);
      return -1;
    }
    snprintf(a->preload, sizeof a->preload, "%s", peers[i].file);
    return 0;
  }
  if (strchr(buf, '/') || strstr(buf, ".so")) {
    if (access(buf, R_OK) != 0) {
      cli_err("allocator library %s: %s", buf, strerror(errno));
      return -1;
    }
    char *real = realpath(buf, NULL);
    snprintf(a->preload, sizeof a->preload, "%s", real ? real : buf);
    free(real);
    const char *base = strrchr(buf, '/');
    snprintf(a->name, sizeof a->name, "%.63s", base ? base + 1 : buf);
    return 0;
  }
  cli_err("unknown allocator '%s' (use tessera, tessera-check, glibc, jemalloc, tcmalloc, mimalloc or a path to a .so)",
          buf);
  return -1;
}

int cli_alloc_list(const char *list, cli_alloc_t *out, int max) {
  int n = 0;
  const char *p = list;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (n == max) {
      cli_err("too many allocators (at most %d)", max);
      return -1;
    }
    if (alloc_one(p, len, &out[n]) != 0) return -1;
    for (int i = 0; i < n; i++)
      if (strcmp(out[i].name, out[n].name) == 0) {
        cli_err("allocator '%s' named twice", out[n].name);
        return -1;
      }
    n++;
    if (!comma) break;
    p = comma + 1;
  }
  return n;
}

/* ---- children ---------------------------------------------------------- */

void cli_preload_env(const char *lib) {
  if (!lib || !lib[0]) return;
  const char *old = getenv("LD_PRELOAD");
  if (!old || !old[0]) {
    setenv("LD_PRELOAD", lib, 1);
    return;
  }
  size_t n = strlen(lib) + strlen(old) + 2;
  char *v = malloc(n);
  if (!v) return;
  snprintf(v, n, "%s:%s", lib, old);
  setenv("LD_PRELOAD", v, 1);
  free(v);
}

pid_t cli_spawn(char **argv, const char *lib, char **extra_env, bool stdout_null) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    cli_err("fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    for (char **e = extra_env; e && *e; e++) putenv(*e);
    cli_preload_env(lib);
    if (stdout_null) {
      int fd = open("/dev/null", O_WRONLY);
      if (fd >= 0) dup2(fd, 1);
    }
    execvp(argv[0], argv);
    int e = errno;
    fprintf(stderr, "%s: cannot run %s: %s\n", cli_name, argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  return pid;
}

int cli_wait(pid_t pid, struct rusage *ru) {
  int st;
  struct rusage dummy;
  while (wait4(pid, &st, 0, ru ? ru : &dummy) < 0)
    if (errno != EINTR) return 127;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 127;
}

/* ---- progress ---------------------------------------------------------- */

static struct {
  int enabled;   /* -1 unknown, 0 no, 1 yes */
  bool shown;
  double last;
} prog = {-1, false, 0};

void cli_progress(const char *label, uint64_t done, uint64_t total) {
  if (prog.enabled < 0) prog.enabled = isatty(2) && !getenv("TESSERA_NO_PROGRESS");
  if (!prog.enabled) return;
  double t = cli_now();
  if (prog.shown && done < total && t - prog.last < 0.05) return;  /* don't flood the terminal */
  prog.last = t;
  int width = 30, fill = total ? (int)((double)done * width / (double)total) : 0;
  if (fill > width) fill = width;
  char bar[64];
  memset(bar, '#', (size_t)fill);
  memset(bar + fill, '.', (size_t)(width - fill));
  bar[width] = '\0';
  fprintf(stderr, "\r\033[K[%s] %llu/%llu %.40s", bar, (unsigned long long)done, (unsigned long long)total,
          label ? label : "");
  fflush(stderr);
  prog.shown = true;
}

void cli_progress_end(void) {
  if (!prog.shown) return;
  fprintf(stderr, "\r\033[K");
  fflush(stderr);
  prog.shown = false;
}

/* ---- helpers ----------------------------------------------------------- */

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *cli_fmt_bytes(char *buf, size_t len, double b) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    u++;
  }
  if (u == 0) snprintf(buf, len, "%.0f B", b);
  else snprintf(buf, len, "%.1f %s", b, unit[u]);
  return buf;
}

bool cli_parse_uint(const char *s, uint64_t *out) {
  if (!s || !*s || *s == '-' || *s == '+') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static char tmpdir[PATH_MAX];

/* The folder is ours (mkdtemp) and flat: unlink its files, then rmdir. */
static void tmpdir_remove(void) {
  if (!tmpdir[0] || getenv("TESSERA_KEEP_TMP")) return;
  DIR *d = opendir(tmpdir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
  }
  rmdir(tmpdir);
}

const char *cli_tmpdir(void) {
  if (tmpdir[0]) return tmpdir;
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/tessera-XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    cli_err("cannot create a temporary folder %s: %s", tmpdir, strerror(errno));
    tmpdir[0] = '\0';
    return NULL;
  }
  atexit(tmpdir_remove);
  return tmpdir;
}
