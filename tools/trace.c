/* trace.c -- parse, validate and replay malloc-lab .rep traces (see trace.h).
 *
 * The parser validates everything up front (syntax, id range, liveness), so
 * a replay never meets a request it cannot execute and every message can
 * name the line. The replayer fills each block with a pattern derived from
 * (id, generation), word j of a block being key + j*ODD, so a block copied to
 * the wrong place, shifted, or mixed with another block is detected; realloc
 * is verified over the preserved prefix and the new tail is filled with the
 * continuation of the same pattern. Peak RSS comes from VmHWM (reset through
 * /proc/self/clear_refs before each replay) and from statm samples.
 */
#define _GNU_SOURCE
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---- the replayer's own memory ----------------------------------------------
 * The parsed trace, the file's text and the replay's tables come from mmap,
 * not from the malloc under test. Otherwise the parse's freed buffers (the
 * file, the growing request array: megabytes for the larger traces) sit in
 * that malloc's free lists before the RSS baseline is read: an allocator
 * that keeps freed memory then replays into pages the baseline already
 * counts (utilization above 1), and one that returns it pays for them again.
 * A 16-byte header keeps the mapping's size; zero-filled like calloc. */
static void *side_alloc(size_t n) {
  size_t total = (n + 16 + 4095) & ~(size_t)4095;
  void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  *(size_t *)m = total;
  return (char *)m + 16;
}

static void side_free(void *p) {
  if (p) munmap((char *)p - 16, *(size_t *)((char *)p - 16));
}

static void *side_realloc(void *p, size_t n) {
  if (!p) return side_alloc(n);
  char *m = (char *)p - 16;
  size_t total = (n + 16 + 4095) & ~(size_t)4095;
  void *q = mremap(m, *(size_t *)m, total, MREMAP_MAYMOVE);
  if (q == MAP_FAILED) return NULL;
  *(size_t *)q = total;
  return (char *)q + 16;
}


/* ---- messages ----------------------------------------------------------- */

static void msg(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void msg(char *buf, size_t len, const char *fmt, ...) {
  if (buf == NULL || len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

/* ---- tokenizer ---------------------------------------------------------- */

typedef struct lexer_s {
  const char *p, *end;
  uint32_t line;
} lexer_t;

/* A token: [start, start+len) on line `line`; len 0 at end of input. */
typedef struct token_s {
  const char *start;
  size_t len;
  uint32_t line;
} token_t;

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Next token on the current line; len 0 when the line (or input) ends. */
static token_t lex_word(lexer_t *lx) {
  while (lx->p < lx->end && is_space(*lx->p)) lx->p++;
  token_t t = {lx->p, 0, lx->line};
  while (lx->p < lx->end && !is_space(*lx->p) && *lx->p != '\n') lx->p++;
  t.len = (size_t)(lx->p - t.start);
  return t;
}

/* Skip to the start of the next line; false at end of input. */
static bool lex_next_line(lexer_t *lx) {
  while (lx->p < lx->end && *lx->p != '\n') lx->p++;
  if (lx->p >= lx->end) return false;
  lx->p++;
  lx->line++;
  return true;
}

/* Parse a decimal integer (optional '-' when allow_neg). Returns false on
 * anything else, including overflow past INT64_MAX. */
static bool parse_int(token_t t, bool allow_neg, int64_t *out) {
  size_t i = 0;
  bool neg = false;
  if (t.len == 0) return false;
  if (t.start[0] == '-' || t.start[0] == '+') {
    neg = t.start[0] == '-';
    if (neg && !allow_neg) return false;
    i = 1;
    if (t.len == 1) return false;
  }
  uint64_t v = 0;
  for (; i < t.len; i++) {
    char c = t.start[i];
    if (c < '0' || c > '9') return false;
    if (v > (uint64_t)(INT64_MAX - (c - '0')) / 10) return false;
    v = v * 10 + (uint64_t)(c - '0');
  }
  *out = neg ? -(int64_t)v : (int64_t)v;
  return true;
}

/* Quote a token for a message: at most 24 characters. */
static const char *tok_str(token_t t, char *buf, size_t len) {
  size_t n = t.len < 24 ? t.len : 24;
  if (n + 4 > len) n = len - 4;
  memcpy(buf, t.start, n);
  strcpy(buf + n, t.len > n ? "..." : "");
  return buf;
}

/* ---- parser ------------------------------------------------------------- */

static const char *const header_names[4] = {"heap size", "id count", "request count", "weight"};

int trace_parse(const char *path, const char *text, size_t text_size, trace_t *out, bool strict,
                char *err, size_t errlen, char *warn, size_t warnlen) {
  memset(out, 0, sizeof *out);
  if (warn && warnlen) warn[0] = '\0';
  lexer_t lx = {text, text + text_size, 1};
  char q[32];
  int64_t hdr[4];
  uint32_t *live_line = NULL;  /* per id: line of the request that made it live, 0 if not live */
  trace_op_t *ops = NULL;
  size_t cap = 0, n = 0;

  /* Header: four integers, any whitespace (usually one per line). */
  for (int i = 0; i < 4; i++) {
    token_t t = lex_word(&lx);
    while (t.len == 0) {
      if (!lex_next_line(&lx)) {
        msg(err, errlen, "%s:%u: truncated header: expected 4 integers (heap size, id count, request count, weight), found %d",
            path, lx.line, i);
        return -1;
      }
      t = lex_word(&lx);
    }
    if (!parse_int(t, false, &hdr[i])) {
      msg(err, errlen, "%s:%u: header field %d (%s): '%s' is not a non-negative integer", path, t.line, i + 1,
          header_names[i], tok_str(t, q, sizeof q));
      return -1;
    }
  }
  if (hdr[1] > INT32_MAX) {
    msg(err, errlen, "%s:%u: header id count %lld is too large (at most %d)", path, lx.line, (long long)hdr[1],
        INT32_MAX);
    return -1;
  }
  {
    token_t t = lex_word(&lx);
    if (t.len) {
      msg(err, errlen, "%s:%u: unexpected '%s' after the 4 header integers", path, t.line, tok_str(t, q, sizeof q));
      return -1;
    }
  }
  out->heap_hint = (uint64_t)hdr[0];
  out->id_count = (uint32_t)hdr[1];
  out->declared_count = (uint64_t)hdr[2];
  out->weight = (uint64_t)hdr[3];
  live_line = side_alloc((out->id_count ? out->id_count : 1) * sizeof *live_line);
  if (!live_line) {
    msg(err, errlen, "%s: out of memory for %u ids", path, out->id_count);
    return -1;
  }
  uint32_t last_line = lx.line;

  while (lex_next_line(&lx)) {
    token_t op = lex_word(&lx);
    if (op.len == 0) continue;  /* blank line */
    last_line = op.line;
    if (op.len != 1 || (op.start[0] != 'a' && op.start[0] != 'f' && op.start[0] != 'r')) {
      msg(err, errlen, "%s:%u: unknown request '%s' (expected a, f or r)", path, op.line, tok_str(op, q, sizeof q));
      goto fail;
    }
    char kind = op.start[0];
    token_t idt = lex_word(&lx);
    int64_t id, size = 0;
    if (idt.len == 0) {
      msg(err, errlen, "%s:%u: '%c' request without a block id", path, op.line, kind);
      goto fail;
    }
    if (!parse_int(idt, true, &id)) {
      msg(err, errlen, "%s:%u: block id '%s' is not an integer", path, op.line, tok_str(idt, q, sizeof q));
      goto fail;
    }
    bool null_free = kind == 'f' && id == -1;
    if (!null_free && (id < 0 || id >= (int64_t)out->id_count)) {
      msg(err, errlen, "%s:%u: block id %lld out of range (the header declares %u ids: 0..%lld)", path, op.line,
          (long long)id, out->id_count, (long long)out->id_count - 1);
      goto fail;
    }
    if (kind != 'f') {
      token_t st = lex_word(&lx);
      if (st.len == 0) {
        msg(err, errlen, "%s:%u: '%c %lld' request without a size", path, op.line, kind, (long long)id);
        goto fail;
      }
      if (!parse_int(st, false, &size)) {
        msg(err, errlen, "%s:%u: size '%s' is not a non-negative integer", path, op.line, tok_str(st, q, sizeof q));
        goto fail;
      }
    }
    token_t extra = lex_word(&lx);
    if (extra.len) {
      msg(err, errlen, "%s:%u: unexpected '%s' after the '%c' request", path, op.line, tok_str(extra, q, sizeof q),
          kind);
      goto fail;
    }
    /* Liveness: the replayer relies on it, and a trace that violates it was
     * recorded or edited wrongly. */
    if (kind == 'a' && live_line[id]) {
      msg(err, errlen, "%s:%u: 'a %lld' allocates block %lld, still live since line %u", path, op.line,
          (long long)id, (long long)id, live_line[id]);
      goto fail;
    }
    if (kind == 'f' && !null_free && !live_line[id]) {
      msg(err, errlen, "%s:%u: 'f %lld' frees block %lld, which is not live", path, op.line, (long long)id,
          (long long)id);
      goto fail;
    }
    if (!null_free) live_line[id] = (kind == 'f' || (kind == 'r' && size == 0)) ? 0 : op.line;

    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 1024;
      trace_op_t *nops = side_realloc(ops, ncap * sizeof *ops);
      if (!nops) {
        msg(err, errlen, "%s:%u: out of memory for %zu requests", path, op.line, ncap);
        goto fail;
      }
      ops = nops;
      cap = ncap;
    }
    ops[n++] = (trace_op_t){(uint64_t)size, (int32_t)id, op.line, kind};
    if ((uint64_t)size > out->max_size) out->max_size = (uint64_t)size;
  }

  if ((uint64_t)n != out->declared_count) {
    if (strict) {
      msg(err, errlen, "%s:%u: the header declares %llu requests, the file has %zu", path, last_line,
          (unsigned long long)out->declared_count, n);
      goto fail;
    }
    msg(warn, warnlen, "%s:%u: warning: the header declares %llu requests, the file has %zu; replaying all %zu",
        path, last_line, (unsigned long long)out->declared_count, n, n);
  }
  side_free(live_line);
  out->ops = ops;
  out->op_count = n;
  out->path = strdup(path);
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  out->name_buf = strdup(base);
  if (!out->path || !out->name_buf) {
    trace_release(out);
    msg(err, errlen, "%s: out of memory", path);
    return -1;
  }
  size_t bl = strlen(out->name_buf);
  if (bl > 4 && strcmp(out->name_buf + bl - 4, ".rep") == 0) out->name_buf[bl - 4] = '\0';
  out->name = out->name_buf;
  return 0;

fail:
  side_free(live_line);
  side_free(ops);
  memset(out, 0, sizeof *out);
  return -1;
}

int trace_load(const char *path, trace_t *out, bool strict, char *err, size_t errlen, char *warn, size_t warnlen) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) {
    msg(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (cap - len < 65536) {
      size_t ncap = cap ? cap * 2 : 1 << 20;
      char *nb = side_realloc(buf, ncap);
      if (!nb) {
        side_free(buf);
        fclose(f);
        msg(err, errlen, "%s: out of memory reading the file", path);
        return -1;
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  int rerr = ferror(f);
  fclose(f);
  if (rerr) {
    side_free(buf);
    msg(err, errlen, "%s: read error", path);
    return -1;
  }
  if (memchr(buf, '\0', len)) {
    size_t off = (size_t)((char *)memchr(buf, '\0', len) - buf);
    uint32_t line = 1;
    for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
    side_free(buf);
    msg(err, errlen, "%s:%u: NUL byte: not a text trace", path, line);
    return -1;
  }
  int r = trace_parse(path, buf, len, out, strict, err, errlen, warn, warnlen);
  side_free(buf);
  return r;
}

void trace_release(trace_t *t) {
  side_free(t->ops);
  free(t->path);
  free(t->name_buf);
  memset(t, 0, sizeof *t);
}

/* ---- content patterns --------------------------------------------------- */

#define PATTERN_STEP 0xD6E8FEB86659FD93ull /* odd: neighbouring words differ in every byte */

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static inline uint8_t pattern_byte(uint64_t key, size_t i) {
  uint64_t w = key + (uint64_t)(i >> 3) * PATTERN_STEP;
  return (uint8_t)(w >> ((i & 7) * 8));
}

/* Write the pattern of key over bytes [from, to) of block p. */
static void pattern_fill(unsigned char *p, uint64_t key, size_t from, size_t to) {
  size_t i = from;
  for (; i < to && (i & 7); i++) p[i] = pattern_byte(key, i);
  uint64_t w = key + (uint64_t)(i >> 3) * PATTERN_STEP;
  for (; i + 8 <= to; i += 8, w += PATTERN_STEP) memcpy(p + i, &w, 8);
  for (; i < to; i++) p[i] = pattern_byte(key, i);
}

/* First offset in [from, to) that does not hold key's pattern, or SIZE_MAX. */
static size_t pattern_find_bad(const unsigned char *p, uint64_t key, size_t from, size_t to) {
  size_t i = from;
  for (; i < to && (i & 7); i++)
    if (p[i] != pattern_byte(key, i)) return i;
  uint64_t w = key + (uint64_t)(i >> 3) * PATTERN_STEP;
  for (; i + 8 <= to; i += 8, w += PATTERN_STEP) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v != w)
      for (size_t k = i; k < i + 8; k++)
        if (p[k] != pattern_byte(key, k)) return k;
  }
  for (; i < to; i++)
    if (p[i] != pattern_byte(key, i)) return i;
  return SIZE_MAX;
}

/* ---- RSS ---------------------------------------------------------------- */

uint64_t trace_statm_rss(int fd) {
  char buf[128];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long long vsz = 0, rss = 0;
  if (sscanf(buf, "%llu %llu", &vsz, &rss) != 2) return 0;
  return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t trace_rss_bytes(void) {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t r = trace_statm_rss(fd);
  close(fd);
  return r;
}

/* Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; false if the
 * kernel does not allow it. */
bool trace_hwm_reset(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

/* VmHWM in bytes, 0 if unreadable. */
uint64_t trace_hwm_read(void) {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char *s = strstr(buf, "VmHWM:");
  unsigned long long kb = 0;
  if (!s || sscanf(s + 6, "%llu", &kb) != 1) return 0;
  return (uint64_t)kb * 1024;
}

/* ---- replay ------------------------------------------------------------- */

typedef struct slot_s {
  unsigned char *p;
  uint64_t size;
  uint64_t key;
} slot_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *std_malloc(size_t n) { return malloc(n); }
static void std_free(void *p) { free(p); }
static void *std_realloc(void *p, size_t n) { return realloc(p, n); }

#define RSS_SAMPLE_EVERY 1024         /* requests between statm samples */
#define RSS_SAMPLE_BIG   (1u << 20)   /* also sample after any block this big */

static bool check_block(const trace_t *t, const trace_op_t *op, const slot_t *s, uint64_t upto, const char *when,
                        char *err, size_t errlen) {
  size_t bad = pattern_find_bad(s->p, s->key, 0, (size_t)upto);
  if (bad == SIZE_MAX) return true;
  msg(err, errlen,
      "%s:%u: block %d (%llu bytes at %p) damaged %s: byte %zu is 0x%02x, expected 0x%02x", t->path, op->line,
      op->id, (unsigned long long)s->size, (void *)s->p, when, bad, s->p[bad], pattern_byte(s->key, bad));
  return false;
}

int trace_replay(const trace_t *t, const trace_replay_opts_t *opts, trace_result_t *res, char *err,
                 size_t errlen) {
  static const trace_replay_opts_t defaults = {{NULL, NULL, NULL}, false, 1};
  if (!opts) opts = &defaults;
  void *(*xmalloc)(size_t) = opts->alloc.malloc_fn ? opts->alloc.malloc_fn : std_malloc;
  void (*xfree)(void *) = opts->alloc.free_fn ? opts->alloc.free_fn : std_free;
  void *(*xrealloc)(void *, size_t) = opts->alloc.realloc_fn ? opts->alloc.realloc_fn : std_realloc;
  unsigned repeat = opts->repeat ? opts->repeat : 1;
  memset(res, 0, sizeof *res);
  if (err && errlen) err[0] = '\0';

  size_t slots_size = (t->id_count ? t->id_count : 1) * sizeof(slot_t);
  size_t gen_size = (t->id_count ? t->id_count : 1) * sizeof(uint32_t);
  slot_t *slots = side_alloc(slots_size);
  uint32_t *gen = side_alloc(gen_size);
  if (!slots || !gen) {
    side_free(slots);
    side_free(gen);
    msg(err, errlen, "%s: out of memory for the replay state", t->path);
    return -1;
  }
  /* Resident before the baseline: the replayer's tables are not the
   * allocator's memory. */
  memset(slots, 0, slots_size);
  memset(gen, 0, gen_size);
  int statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  bool have_hwm = trace_hwm_reset();
  /* A first read pages in the reading code itself (sscanf: about 128 KiB
   * of libc), which must not count as the allocator's growth. */
  if (statm >= 0) (void)trace_statm_rss(statm);
  uint64_t base_rss = statm >= 0 ? trace_statm_rss(statm) : 0;
  uint64_t peak_rss = base_rss, live = 0, peak_live = 0;
  int rc = 0;
  double t0 = now_s();

  for (unsigned rep = 0; rep < repeat && rc == 0; rep++) {
    for (size_t i = 0; i < t->op_count; i++) {
      const trace_op_t *op = &t->ops[i];
      slot_t *s = op->id >= 0 ? &slots[op->id] : NULL;
      switch (op->kind) {
      case TRACE_ALLOC: {
        unsigned char *p = xmalloc((size_t)op->size);
        if (!p) {
          msg(err, errlen, "%s:%u: malloc(%llu) for block %d returned NULL", t->path, op->line,
              (unsigned long long)op->size, op->id);
          rc = -1;
          break;
        }
        s->p = p;
        s->size = op->size;
        s->key = mix64(((uint64_t)++gen[op->id] << 32) ^ (uint64_t)op->id ^ 0x5bd1e995ull);
        pattern_fill(p, s->key, 0, (size_t)s->size);
        live += s->size;
        break;
      }
      case TRACE_FREE:
        if (!s) {
          xfree(NULL);
          break;
        }
        if (opts->check && !check_block(t, op, s, s->size, "before free", err, errlen)) {
          res->errors++;
          rc = -1;
          break;
        }
        xfree(s->p);
        live -= s->size;
        s->p = NULL;
        s->size = 0;
        break;
      case TRACE_REALLOC: {
        if (s->p && opts->check && !check_block(t, op, s, s->size, "before realloc", err, errlen)) {
          res->errors++;
          rc = -1;
          break;
        }
        unsigned char *p = xrealloc(s->p, (size_t)op->size);
        if (op->size == 0) {
          /* realloc(p, 0) frees p (glibc); the result, NULL or a new
           * minimal block, is ours to free. */
          if (p) xfree(p);
          live -= s->size;
          s->p = NULL;
          s->size = 0;
          break;
        }
        if (!p) {
          msg(err, errlen, "%s:%u: realloc(%p, %llu) for block %d returned NULL", t->path, op->line, (void *)s->p,
              (unsigned long long)op->size, op->id);
          rc = -1;
          break;
        }
        if (!s->p)
          s->key = mix64(((uint64_t)++gen[op->id] << 32) ^ (uint64_t)op->id ^ 0x5bd1e995ull);
        uint64_t keep = s->size < op->size ? s->size : op->size;
        s->p = p;
        if (keep) {
          size_t bad = pattern_find_bad(p, s->key, 0, (size_t)keep);
          if (bad != SIZE_MAX) {
            msg(err, errlen,
                "%s:%u: realloc of block %d from %llu to %llu bytes lost contents: byte %zu is 0x%02x, expected 0x%02x",
                t->path, op->line, op->id, (unsigned long long)s->size, (unsigned long long)op->size, bad, p[bad],
                pattern_byte(s->key, bad));
            res->errors++;
            rc = -1;
            s->size = op->size;
            break;
          }
        }
        if (op->size > s->size) pattern_fill(p, s->key, (size_t)s->size, (size_t)op->size);
        live = live - s->size + op->size;
        s->size = op->size;
        break;
      }
      }
      if (rc) break;
      res->ops++;
      if (live > peak_live) peak_live = live;
      if (statm >= 0 && ((i % RSS_SAMPLE_EVERY) == 0 || op->size >= RSS_SAMPLE_BIG)) {
        uint64_t r = trace_statm_rss(statm);
        if (r > peak_rss) peak_rss = r;
      }
    }
    if (statm >= 0) {
      uint64_t r = trace_statm_rss(statm);
      if (r > peak_rss) peak_rss = r;
    }
    /* End of a pass: free what the trace left live, so repeats start equal. */
    for (uint32_t id = 0; id < t->id_count; id++) {
      slot_t *s = &slots[id];
      if (!s->p) continue;
      if (rc == 0 && opts->check) {
        size_t bad = pattern_find_bad(s->p, s->key, 0, (size_t)s->size);
        if (bad != SIZE_MAX) {
          msg(err, errlen, "%s: block %u (%llu bytes) damaged at the end of the trace: byte %zu", t->path, id,
              (unsigned long long)s->size, bad);
          res->errors++;
          rc = -1;
        }
      }
      xfree(s->p);
      s->p = NULL;
      s->size = 0;
    }
    live = 0;
  }

  res->seconds = now_s() - t0;
  if (have_hwm) {
    uint64_t h = trace_hwm_read();
    if (h > peak_rss) peak_rss = h;
  }
  if (statm >= 0) close(statm);
  side_free(slots);
  side_free(gen);
  res->ops_per_s = res->seconds > 0 ? (double)res->ops / res->seconds : 0;
  res->peak_live_bytes = peak_live;
  res->peak_rss_delta_bytes = peak_rss > base_rss ? peak_rss - base_rss : 0;
  res->utilization = res->peak_rss_delta_bytes ? (double)peak_live / (double)res->peak_rss_delta_bytes : 0;
  return rc;
}
