/* cmd_map.c -- `tessera map (TRACE | -- CMD ARGS...) -o heap.html`.
 *
 * Replays the trace in this process against libtessera.so opened with
 * dlopen (RTLD_LOCAL: our own mallocs stay glibc's, so the snapshots show
 * only the trace's blocks) through its tsr_* names, and at sampled moments
 * walks the heap with tsr_heap_visit and reads tsr_stats_get. The page
 * (tools/map_page.html, embedded at build time) gets the numbers as JSON
 * and draws them itself: the address space as tiles (one per page or span,
 * colored by size class, filled by occupancy), memory over time and a size
 * histogram. Recorded threads are replayed in their merged order on one
 * thread: the map shows layout, not concurrency.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "map_page.h"
#include "replay_mt.h"
#include "tessera.h"
#include "trace.h"
#include "trace_bin.h"

const char cmd_map_help[] =
    "usage: tessera map [-o FILE.html] [--snapshots N] [--lib PATH] TRACE\n"
    "       tessera map [-o FILE.html] [--snapshots N] [--lib PATH] -- CMD [ARGS...]\n"
    "\n"
    "Replay TRACE (.rep or a binary recording) against tessera inside this\n"
    "process and write a self-contained HTML page (inline SVG and a little JS,\n"
    "no network) showing\n"
    "  (a) tessera's address space: one tile per page or span, colored by size\n"
    "      class and filled by occupancy, at the peak of live bytes, at the end,\n"
    "      and at N moments in between (a slider);\n"
    "  (b) bytes live vs. in use vs. mapped vs. RSS over the trace;\n"
    "  (c) a histogram of requested sizes.\n"
    "With '-- CMD', CMD is recorded first (see 'tessera record'), then replayed.\n"
    "\n"
    "  -o FILE        output (default heap.html)\n"
    "  --snapshots N  moments on the slider besides peak and end (default 40)\n"
    "  --lib PATH     the tessera library to open (default: libtessera.so next\n"
    "                 to this program, or ../lib)\n";

/* The library's entry points, by their tessera names. */
static struct {
  void *(*malloc_fn)(size_t);
  void *(*calloc_fn)(size_t, size_t);
  void *(*realloc_fn)(void *, size_t);
  void (*free_fn)(void *);
  void *(*aligned_fn)(size_t, size_t);
  size_t (*visit)(bool (*)(const tsr_area_t *, void *), void *);
  int (*stats_get)(tsr_stats_t *);
  const char *(*version)(void);
} lib;

/* ---- sampling ----------------------------------------------------------- */

typedef struct snap_s {
  size_t at;                 /* op index */
  uint64_t live;
  tsr_stats_t st;
  tsr_area_t *areas;
  size_t count;
  const char *label;         /* "peak", "end" or NULL */
} snap_t;

typedef struct point_s {
  size_t at;
  uint64_t live, in_use, mapped, rss;
} point_t;

typedef struct sampler_s {
  size_t *targets;           /* snapshot op indices, ascending, unique */
  const char **labels;
  size_t ntargets, next;
  snap_t *snaps;
  size_t nsnaps;
  point_t *pts;
  size_t npts, cap_pts, every;
  size_t total;              /* op count: the end always gets a point */
  bool oom;
} sampler_t;

typedef struct areas_s {
  tsr_area_t *a;
  size_t n, cap;
  bool oom;
} areas_t;

/* Visitor: called by tessera; we allocate from glibc only. */
static bool collect(const tsr_area_t *area, void *arg) {
  areas_t *v = arg;
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 256;
    tsr_area_t *na = realloc(v->a, nc * sizeof *na);
    if (!na) {
      v->oom = true;
      return false;
    }
    v->a = na;
    v->cap = nc;
  }
  v->a[v->n++] = *area;
  return true;
}

static void stats_now(tsr_stats_t *st) {
  memset(st, 0, sizeof *st);
  st->struct_size = sizeof *st;
  lib.stats_get(st);
}

static void on_sample(void *arg, size_t i, uint64_t live) {
  sampler_t *s = arg;
  if (s->every && (i % s->every == 0 || i == s->total)) {
    if (s->npts == s->cap_pts) {
      size_t nc = s->cap_pts ? s->cap_pts * 2 : 512;
      point_t *np = realloc(s->pts, nc * sizeof *np);
      if (!np) {
        s->oom = true;
        return;
      }
      s->pts = np;
      s->cap_pts = nc;
    }
    tsr_stats_t st;
    stats_now(&st);
    s->pts[s->npts++] = (point_t){i, live, st.in_use_bytes, st.mapped_bytes, st.rss_bytes};
  }
  while (s->next < s->ntargets && s->targets[s->next] == i) {
    snap_t *sn = &s->snaps[s->nsnaps++];
    areas_t v = {0};
    lib.visit(collect, &v);
    if (v.oom) s->oom = true;
    sn->at = i;
    sn->live = live;
    stats_now(&sn->st);
    sn->areas = v.a;
    sn->count = v.n;
    sn->label = s->labels[s->next];
    s->next++;
    cli_progress("replaying against tessera", s->next, s->ntargets);
  }
}

/* ---- loading ------------------------------------------------------------ */

/* .rep -> rops: one thread; the ids are the trace's own. */
static int rep_to_rops(const trace_t *t, rops_t *r) {
  memset(r, 0, sizeof *r);
  r->ops = malloc((t->op_count ? t->op_count : 1) * sizeof *r->ops);
  if (!r->ops) return -1;
  for (size_t i = 0; i < t->op_count; i++) {
    const trace_op_t *o = &t->ops[i];
    r->ops[i] = (rop_t){o->size, o->id, 0,
                        (uint8_t)(o->kind == TRACE_ALLOC ? ROP_MALLOC : o->kind == TRACE_FREE ? ROP_FREE : ROP_REALLOC),
                        0};
  }
  r->op_count = t->op_count;
  r->id_count = t->id_count;
  r->thread_count = 1;
  r->peak_live_bytes = rops_peak_live(r);
  return 0;
}

static int load(const char *path, rops_t *r) {
  char err[1024], warn[1024];
  if (tbin_is_binary(path)) {
    tbin_t t;
    if (tbin_load(path, &t, err, sizeof err, warn, sizeof warn) != 0) {
      cli_err("%s", err);
      return -1;
    }
    if (warn[0]) cli_warn("%s", warn);
    int rc = tbin_to_rops(&t, r, err, sizeof err);
    tbin_release(&t);
    if (rc) cli_err("%s", err);
    return rc;
  }
  trace_t t;
  if (trace_load(path, &t, false, err, sizeof err, warn, sizeof warn) != 0) {
    cli_err("%s", err);
    return -1;
  }
  if (warn[0]) cli_warn("%s", warn);
  int rc = rep_to_rops(&t, r);
  trace_release(&t);
  if (rc) cli_err("%s: out of memory", path);
  return rc;
}

static int open_lib(const char *path) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    cli_err("cannot open %s: %s", path, dlerror());
    return -1;
  }
#define SYM(field, name)                                             \
  if (!(*(void **)&lib.field = dlsym(h, name))) {                    \
    cli_err("%s does not export %s: not a tessera library?", path, name); \
    return -1;                                                       \
  }
  SYM(malloc_fn, "tsr_malloc");
  SYM(calloc_fn, "tsr_calloc");
  SYM(realloc_fn, "tsr_realloc");
  SYM(free_fn, "tsr_free");
  SYM(aligned_fn, "tsr_aligned_alloc");
  SYM(visit, "tsr_heap_visit");
  SYM(stats_get, "tsr_stats_get");
  SYM(version, "tsr_version");
#undef SYM
  return 0;
}

/* ---- output ------------------------------------------------------------- */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c == '<') fputs("\\u003c", f);  /* never close the <script> early */
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static void write_json(FILE *f, const char *name, const rops_t *r, const sampler_t *s, size_t peak_at) {
  fprintf(f, "{\"version\":1,\"trace\":");
  json_str(f, name);
  fprintf(f, ",\"library\":");
  json_str(f, lib.version());
  fprintf(f, ",\"ops\":%zu,\"threads\":%u,\"peak_at\":%zu,\"peak_live\":%llu,\"page_size\":%ld", r->op_count,
          r->thread_count, peak_at, (unsigned long long)r->peak_live_bytes, sysconf(_SC_PAGESIZE));
  /* Size classes as the library reports them at the end. */
  const tsr_stats_t *last = &s->snaps[s->nsnaps - 1].st;
  fprintf(f, ",\"classes\":[");
  for (uint32_t c = 0; c < last->class_count && c < TSR_STATS_CLASS_MAX; c++)
    fprintf(f, "%s%llu", c ? "," : "", (unsigned long long)last->class_block_size[c]);
  fprintf(f, "],\n\"snapshots\":[");
  for (size_t k = 0; k < s->nsnaps; k++) {
    const snap_t *sn = &s->snaps[k];
    fprintf(f, "%s\n{\"at\":%zu,\"label\":", k ? "," : "", sn->at);
    if (sn->label) json_str(f, sn->label);
    else fputs("null", f);
    fprintf(f, ",\"live\":%llu,\"in_use\":%llu,\"mapped\":%llu,\"rss\":%llu,\"areas\":[",
            (unsigned long long)sn->live, (unsigned long long)sn->st.in_use_bytes,
            (unsigned long long)sn->st.mapped_bytes, (unsigned long long)sn->st.rss_bytes);
    /* [kind, start, size, block_size, block_count, used_count, class, heap, purged] */
    for (size_t j = 0; j < sn->count; j++) {
      const tsr_area_t *a = &sn->areas[j];
      fprintf(f, "%s[%d,%llu,%zu,%zu,%zu,%zu,%u,%u,%d]", j ? "," : "", (int)a->kind, (unsigned long long)a->start,
              a->size, a->block_size, a->block_count, a->used_count, a->size_class, a->heap_id, a->is_purged ? 1 : 0);
    }
    fprintf(f, "]}");
  }
  fprintf(f, "],\n\"series\":[");
  for (size_t k = 0; k < s->npts; k++) {
    const point_t *p = &s->pts[k];
    fprintf(f, "%s[%zu,%llu,%llu,%llu,%llu]", k ? "," : "", p->at, (unsigned long long)p->live,
            (unsigned long long)p->in_use, (unsigned long long)p->mapped, (unsigned long long)p->rss);
  }
  /* Histogram of requested sizes: bucket b holds sizes in [2^(b-1), 2^b). */
  uint64_t hist[65] = {0};
  for (size_t i = 0; i < r->op_count; i++) {
    const rop_t *o = &r->ops[i];
    if (o->kind == ROP_FREE || (o->kind == ROP_REALLOC && o->size == 0)) continue;
    hist[o->size ? 64 - __builtin_clzll(o->size) : 0]++;
  }
  int hi = 64;
  while (hi > 0 && !hist[hi]) hi--;
  fprintf(f, "],\n\"histogram\":[");
  for (int b = 0; b <= hi; b++) fprintf(f, "%s%llu", b ? "," : "", (unsigned long long)hist[b]);
  fprintf(f, "]}\n");
}

/* Record CMD into the temporary folder by running our own `record`. */
static int record_first(char **cmd, char *out, size_t outlen) {
  const char *dir = cli_tmpdir();
  if (!dir) return -1;
  snprintf(out, outlen, "%s/map.trace.bin", dir);
  int n = 0;
  while (cmd[n]) n++;
  char **argv = calloc((size_t)n + 6, sizeof *argv);
  if (!argv) return -1;
  argv[0] = "/proc/self/exe";
  argv[1] = "record";
  argv[2] = "-o";
  argv[3] = out;
  argv[4] = "--";
  memcpy(argv + 5, cmd, (size_t)n * sizeof *argv);
  pid_t pid = cli_spawn(argv, "", NULL, false);
  free(argv);
  if (pid < 0) return -1;
  int st = cli_wait(pid, NULL);
  if (access(out, R_OK) != 0) {
    cli_err("recording %s failed (status %d)", cmd[0], st);
    return -1;
  }
  if (st) cli_warn("%s exited with status %d; mapping what was recorded", cmd[0], st);
  return 0;
}

int cmd_map(int argc, char **argv) {
  const char *out = "heap.html", *libpath = NULL, *trace = NULL;
  uint64_t nsnap = 40;
  char **cmd = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      if (i + 1 >= argc) return cli_usage("no command after '--'");
      cmd = argv + i + 1;
      break;
    }
    if (strcmp(a, "-o") == 0 && i + 1 < argc) out = argv[++i];
    else if (strcmp(a, "--lib") == 0 && i + 1 < argc) libpath = argv[++i];
    else if (strcmp(a, "--snapshots") == 0 && i + 1 < argc) {
      if (!cli_parse_uint(argv[++i], &nsnap) || nsnap > 1000)
        return cli_usage("--snapshots wants a count from 0 to 1000, not '%s'", argv[i]);
    } else if (a[0] == '-' && a[1]) return cli_usage("unknown option or missing value: '%s'", a);
    else if (!trace) trace = a;
    else return cli_usage("more than one trace: '%s' and '%s'", trace, a);
  }
  if (cmd && trace) return cli_usage("give a trace or '-- CMD', not both");
  if (!cmd && !trace) return cli_usage("no trace given (tessera map TRACE -o FILE.html, or -- CMD ARGS...)");

  char libbuf[4096];
  if (!libpath) {
    const char *p = cli_lib_path("libtessera.so");
    if (!p) return 1;
    snprintf(libbuf, sizeof libbuf, "%s", p);
    libpath = libbuf;
  }
  char recorded[4200];
  if (cmd) {
    if (record_first(cmd, recorded, sizeof recorded) != 0) return 1;
    trace = recorded;
  }
  rops_t r;
  if (load(trace, &r) != 0) return 1;
  if (open_lib(libpath) != 0) return 1;
  FILE *f = fopen(out, "w");
  if (!f) {
    cli_err("cannot write %s: %s", out, strerror(errno));
    return 1;
  }

  /* Where is the peak of live bytes? A dry pass over the sizes. */
  size_t peak_at = 0;
  {
    uint64_t *sz = calloc(r.id_count ? r.id_count : 1, sizeof *sz), live = 0, best = 0;
    if (!sz) return 1;
    for (size_t i = 0; i < r.op_count; i++) {
      const rop_t *o = &r.ops[i];
      if (o->id < 0) continue;
      live -= sz[o->id];
      sz[o->id] = o->kind == ROP_FREE ? 0 : o->size;
      live += sz[o->id];
      if (live > best) best = live, peak_at = i + 1;  /* the state after op i */
    }
    free(sz);
  }
  /* Snapshot targets: evenly spaced, plus the peak and the end. */
  size_t cap = (size_t)nsnap + 3;
  sampler_t s = {0};
  s.targets = calloc(cap, sizeof *s.targets);
  s.labels = calloc(cap, sizeof *s.labels);
  s.snaps = calloc(cap, sizeof *s.snaps);
  if (!s.targets || !s.labels || !s.snaps) return 1;
  for (size_t k = 0; k <= nsnap; k++) {
    size_t at = nsnap ? (size_t)((double)r.op_count * (double)k / (double)(nsnap + 1)) : 0;
    if (s.ntargets && s.targets[s.ntargets - 1] >= at) continue;
    s.targets[s.ntargets++] = at;
  }
  /* Insert the peak in order (or label an existing target). */
  size_t pos = 0;
  while (pos < s.ntargets && s.targets[pos] < peak_at) pos++;
  if (pos < s.ntargets && s.targets[pos] == peak_at) s.labels[pos] = "peak";
  else {
    memmove(s.targets + pos + 1, s.targets + pos, (s.ntargets - pos) * sizeof *s.targets);
    memmove(s.labels + pos + 1, s.labels + pos, (s.ntargets - pos) * sizeof *s.labels);
    s.targets[pos] = peak_at;
    s.labels[pos] = "peak";
    s.ntargets++;
  }
  if (s.targets[s.ntargets - 1] == r.op_count) s.labels[s.ntargets - 1] = s.labels[s.ntargets - 1] ? "peak end" : "end";
  else {
    s.targets[s.ntargets] = r.op_count;
    s.labels[s.ntargets++] = "end";
  }
  s.every = r.op_count / 400 ? r.op_count / 400 : 1;
  s.total = r.op_count;

  rx_opts_t o = {{lib.malloc_fn, lib.calloc_fn, lib.realloc_fn, lib.free_fn, lib.aligned_fn}, 1, false, on_sample, &s,
                 1};
  rx_result_t res;
  char err[1024];
  /* The progress bar follows the sampler: one tick per snapshot. */
  cli_progress("replaying against tessera", 0, s.ntargets);
  int rc = rx_replay(&r, trace, &o, &res, err, sizeof err);
  cli_progress_end();
  if (rc != 0) {
    cli_err("%s", err);
    fclose(f);
    unlink(out);
    return 1;
  }
  if (s.oom || s.nsnaps == 0) {
    cli_err("out of memory while sampling the heap");
    fclose(f);
    unlink(out);
    return 1;
  }
  const char *name = strrchr(trace, '/');
  name = cmd ? cmd[0] : name ? name + 1 : trace;
  /* The page, with the data spliced in at its placeholder. */
  const char *mark = strstr(map_page_html, "/*DATA*/");
  if (!mark) {
    cli_err("internal error: the page template has no data placeholder");
    return 1;
  }
  fwrite(map_page_html, 1, (size_t)(mark - map_page_html), f);
  write_json(f, name, &r, &s, peak_at);
  fputs(mark + 8, f);
  if (fclose(f) != 0) {
    cli_err("write error on %s", out);
    return 1;
  }
  size_t tiles = 0;
  for (size_t k = 0; k < s.nsnaps; k++)
    if (s.snaps[k].label && strncmp(s.snaps[k].label, "peak", 4) == 0) tiles = s.snaps[k].count;
  fprintf(stderr, "%s: wrote %s: %zu snapshots (%zu areas at the peak), %zu samples over %zu operations\n", cli_name,
          out, s.nsnaps, tiles, s.npts, r.op_count);
  for (size_t k = 0; k < s.nsnaps; k++) free(s.snaps[k].areas);
  free(s.snaps);
  free(s.targets);
  free(s.labels);
  free(s.pts);
  rops_release(&r);
  return 0;
}
