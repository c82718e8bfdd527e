/* trace_bin.c -- decode the recorder's binary traces (format in trace_bin.h)
 * and reduce them to replayable operations (rops) or a malloc-lab .rep.
 *
 * Decoding validates as it goes and stops at the first problem, naming the
 * record number and byte offset, so a damaged file never yields a partial
 * result. Events of all threads are then merged by time (stable, so one
 * thread's order is kept). Ids are assigned per live address: a fresh id per
 * allocation; a free of an address that is not live (allocated before the
 * recorder started, or by a path we do not see) is skipped and counted.
 */
#define _GNU_SOURCE
#include "trace_bin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void msg(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg(char *buf, size_t len, const char *fmt, ...) {
  if (!buf || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

static const char *const op_names[TBIN_OP_COUNT] = {
    "?", "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "free_sized", "free_aligned_sized"};

const char *tbin_op_name(unsigned op) { return op < TBIN_OP_COUNT ? op_names[op] : "?"; }

bool tbin_is_binary(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char m[8];
  bool yes = fread(m, 1, 8, f) == 8 && memcmp(m, TBIN_MAGIC, 8) == 0;
  fclose(f);
  return yes;
}

static int read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    msg(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  size_t cap = 1 << 20, n = 0;
  uint8_t *b = malloc(cap);
  for (;;) {
    if (!b) {
      fclose(f);
      msg(err, errlen, "%s: out of memory reading the file", path);
      return -1;
    }
    n += fread(b + n, 1, cap - n, f);
    if (n < cap) break;
    uint8_t *nb = realloc(b, cap * 2);
    if (!nb) free(b);
    b = nb;
    cap *= 2;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(b);
    msg(err, errlen, "%s: read error", path);
    return -1;
  }
  *out = b;
  *len = n;
  return 0;
}

/* Per-thread decode state, carried across that thread's chunks. */
typedef struct tdec_s {
  uint64_t tsc, addr, size;   /* delta bases: previous sample, address, size */
  uint64_t last_tsc;          /* time of the thread's previous event (kept monotonic) */
  uint64_t lo;                /* no call from here on happened earlier: the latest own sample
                                 or TBIN_SEEN */
  bool seen;
} tdec_t;

typedef struct reader_s {
  const uint8_t *p, *end;
} reader_t;

/* Prefix varint (trace_bin.h): the first byte's trailing zeros give the length. */
static bool get_varint(reader_t *r, uint64_t *v) {
  if (r->p >= r->end) return false;
  uint8_t b = *r->p;
  size_t n = b ? (size_t)__builtin_ctz(b) + 1 : 9;
  if ((size_t)(r->end - r->p) < n) return false;
  uint64_t w = 0;
  if (n == 9) {
    memcpy(&w, r->p + 1, 8);
    *v = w;
  } else {
    memcpy(&w, r->p, n);
    *v = w >> n;
  }
  r->p += n;
  return true;
}

static bool get_addr(reader_t *r, tdec_t *d, uint64_t *v) {
  uint64_t z;
  if (!get_varint(r, &z)) return false;
  d->addr = tbin_addr_decode(z, d->addr);
  *v = d->addr;
  return true;
}

/* A compact field of `code` (trace_bin.h): 0 none, 1-6 bytes, 7: 8 bytes. */
static bool get_compact(reader_t *r, unsigned code, uint64_t *v) {
  size_t n = code == 7 ? 8 : code;
  if ((size_t)(r->end - r->p) < n) return false;
  uint64_t w = 0;
  memcpy(&w, r->p, n);
  *v = w;
  r->p += n;
  return true;
}

/* The first address field of a record: absent when TBIN_F_SAME_ADDR. */
static bool get_addr1(reader_t *r, tdec_t *d, uint8_t flags, uint64_t *v) {
  if (flags & TBIN_F_SAME_ADDR) {
    *v = d->addr;
    return true;
  }
  return get_addr(r, d, v);
}

static bool get_size(reader_t *r, tdec_t *d, uint8_t flags, uint64_t *v) {
  if (!(flags & TBIN_F_SAME_SIZE) && !get_varint(r, &d->size)) return false;
  *v = d->size;
  return true;
}

static bool get_byte(reader_t *r, uint8_t *v) {
  if (r->p >= r->end) return false;
  *v = *r->p++;
  return true;
}

static uint64_t mul_sat(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Decode one record into ev; NULL on success, else what is wrong. *timed
 * says it was a clock record, not a call: 1 TBIN_TIME (an own sample,
 * d->tsc is its time), 2 TBIN_SEEN; both raise d->lo. */
static const char *decode_record(reader_t *r, tdec_t *d, tbin_event_t *ev, int *timed) {
  uint8_t b, op, al = 0;
  uint64_t dt, a = 0, res = 0, n = 0, k = 0;
  if (!get_byte(r, &b)) return "truncated record";
  *timed = b == TBIN_TIME ? 1 : b == TBIN_SEEN ? 2 : 0;
  if (*timed) {
    if (!get_varint(r, &dt)) return "truncated record (time)";
    uint64_t t = d->tsc + (uint64_t)tbin_unzigzag(dt);
    if (b == TBIN_TIME) d->tsc = t;
    if (t > d->lo) d->lo = t;
    return NULL;
  }
  if (!(b & TBIN_GENERAL)) {  /* compact malloc or free */
    unsigned sc = (b >> TBIN_C_SIZE_SHIFT) & 7, ac = b >> TBIN_C_ADDR_SHIFT;
    uint64_t u = 0;
    bool is_free = b & TBIN_C_FREE;
    if (is_free && sc) return "size code on a compact free";
    if (sc) {
      if (!get_compact(r, sc, &d->size)) return "truncated record";
    }
    if (ac) {
      if (!get_compact(r, ac, &u)) return "truncated record";
      d->addr = tbin_addr_decode(u, d->addr);
    }
    ev->op = is_free ? TBIN_OP_FREE : TBIN_OP_MALLOC;
    ev->ptr = is_free ? d->addr : 0;
    ev->result = is_free ? 0 : d->addr;
    ev->size = is_free ? 0 : d->size;
    ev->align_log2 = 0;
    ev->early_us = ev->late_us = 0;
    return NULL;
  }
  op = (b & TBIN_OP_MASK) >> TBIN_OP_SHIFT;
  if (op == 0 || op >= TBIN_OP_COUNT || (b & ~(TBIN_GENERAL | TBIN_OP_MASK | TBIN_F_SAME_SIZE | TBIN_F_SAME_ADDR)))
    return "unknown operation code";
  switch (op) {
  case TBIN_OP_MALLOC: case TBIN_OP_VALLOC: case TBIN_OP_PVALLOC:
    if (!get_size(r, d, b, &n) || !get_addr1(r, d, b, &res)) return "truncated record";
    break;
  case TBIN_OP_CALLOC:
    if (!get_varint(r, &k) || !get_size(r, d, b, &n) || !get_addr1(r, d, b, &res)) return "truncated record";
    n = mul_sat(k, n);
    break;
  case TBIN_OP_REALLOC:
    if (!get_addr1(r, d, b, &a) || !get_size(r, d, b, &n) || !get_addr(r, d, &res)) return "truncated record";
    break;
  case TBIN_OP_REALLOCARRAY:
    if (!get_addr1(r, d, b, &a) || !get_varint(r, &k) || !get_size(r, d, b, &n) || !get_addr(r, d, &res))
      return "truncated record";
    n = mul_sat(k, n);
    break;
  case TBIN_OP_POSIX_MEMALIGN: case TBIN_OP_ALIGNED_ALLOC: case TBIN_OP_MEMALIGN:
    if (!get_byte(r, &al) || !get_size(r, d, b, &n) || !get_addr1(r, d, b, &res)) return "truncated record";
    if (al > 40) return "alignment out of range";
    break;
  case TBIN_OP_FREE:
    if (b & TBIN_F_SAME_SIZE) return "size flag on a free without a size";
    if (!get_addr1(r, d, b, &a)) return "truncated record";
    break;
  case TBIN_OP_FREE_SIZED:
    if (!get_addr1(r, d, b, &a) || !get_size(r, d, b, &n)) return "truncated record";
    break;
  case TBIN_OP_FREE_ALIGNED_SIZED:
    if (!get_addr1(r, d, b, &a) || !get_byte(r, &al) || !get_size(r, d, b, &n)) return "truncated record";
    if (al > 40) return "alignment out of range";
    break;
  }
  ev->op = op;
  ev->ptr = a;
  ev->result = res;
  ev->size = n;
  ev->align_log2 = al;
  ev->early_us = ev->late_us = 0;
  return NULL;
}

/* Slack in units of 1024 ticks until pass 2 converts it to us (slack_us). */
#define SLACK_SHIFT 10
static uint32_t tick_slack(uint64_t ticks) {
  uint64_t k = (ticks + (1u << SLACK_SHIFT) - 1) >> SLACK_SHIFT;
  return k > UINT32_MAX ? UINT32_MAX : (uint32_t)k;
}

/* Events [from, to) of one thread, each stamped with the lower bound of its
 * time (ns, in ticks), end before the clock read hi: keep how much later
 * each may be. */
static void close_span(tbin_event_t *ev, size_t from, size_t to, uint64_t hi) {
  for (size_t i = from; i < to; i++) ev[i].late_us = tick_slack(hi > ev[i].ns ? hi - ev[i].ns : 0);
}

typedef struct calib_s {
  uint64_t tsc0, ns0, tsc1, ns1;
} calib_t;

static uint64_t tsc_to_ns(const calib_t *c, uint64_t tsc) {
  if (c->tsc1 <= c->tsc0 || tsc <= c->tsc0) return 0;
  return (uint64_t)((long double)(tsc - c->tsc0) * (long double)(c->ns1 - c->ns0) / (long double)(c->tsc1 - c->tsc0));
}

static uint32_t slack_us(uint32_t units, long double us_per_unit) {
  long double us = (long double)units * us_per_unit;
  return us >= (long double)UINT32_MAX ? UINT32_MAX : (uint32_t)us + (units != 0);
}

typedef struct sort_key_s {
  uint64_t ns;
  size_t i;
} sort_key_t;

static int cmp_key(const void *x, const void *y) {
  const sort_key_t *a = x, *b = y;
  if (a->ns != b->ns) return a->ns < b->ns ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}

/* The magic and the version of a header both readers have read: 0, or -1
 * with the reason in err. */
static int header_check(const tbin_header_t *h, const char *path, char *err, size_t errlen) {
  if (memcmp(h->magic, TBIN_MAGIC, 8) != 0) {
    msg(err, errlen, "%s: not a tessera binary trace (no TSRTRACE magic)", path);
    return -1;
  }
  if (h->version < TBIN_VERSION_READ_MIN && h->header_size == TBIN_HEADER_SIZE) {
    /* Version 2 differs in its records only, but the recorder that wrote it
     * is gone: one reader to keep tested, not two. Version 3 is read: it is
     * version 4 without padding chunks. */
    msg(err, errlen, "%s: binary trace version %u, written by an older recorder; this tessera reads versions %u to %u: "
        "record the program again", path, h->version, TBIN_VERSION_READ_MIN, TBIN_VERSION);
    return -1;
  }
  if (h->version > TBIN_VERSION || h->header_size != TBIN_HEADER_SIZE) {
    msg(err, errlen, "%s: binary trace version %u (header %u bytes); this tessera reads versions %u to %u", path,
        h->version, h->header_size, TBIN_VERSION_READ_MIN, TBIN_VERSION);
    return -1;
  }
  return 0;
}

int tbin_load(const char *path, tbin_t *out, char *err, size_t errlen, char *warn, size_t warnlen) {
  memset(out, 0, sizeof *out);
  if (warn && warnlen) warn[0] = '\0';
  uint8_t *buf;
  size_t len;
  if (read_file(path, &buf, &len, err, errlen)) return -1;
  tbin_header_t h;
  if (len < TBIN_HEADER_SIZE) {
    msg(err, errlen, "%s: truncated header: %zu bytes, a binary trace starts with %u", path, len, TBIN_HEADER_SIZE);
    goto fail;
  }
  memcpy(&h, buf, sizeof h);
  if (header_check(&h, path, err, errlen) != 0) goto fail;

  /* Pass 1: walk the chunks, decode records into events (tsc for now). */
  size_t cap = 1024, n = 0;
  tbin_event_t *ev = malloc(cap * sizeof *ev);
  tdec_t *dec = NULL;
  uint32_t dec_cap = 0;
  calib_t cal = {h.tsc0, h.mono_ns0, h.tsc0, h.mono_ns0};
  size_t off = TBIN_HEADER_SIZE;
  uint64_t recno = 0;
  if (!ev) goto oom;
  while (off < len) {
    tbin_chunk_t c;
    if (len - off < TBIN_CHUNK_HEADER_SIZE) {
      msg(err, errlen, "%s: record %llu (byte offset %zu): truncated chunk header (%zu of %u bytes)", path,
          (unsigned long long)recno + 1, off, len - off, TBIN_CHUNK_HEADER_SIZE);
      goto fail_ev;
    }
    memcpy(&c, buf + off, sizeof c);
    if (c.magic == TBIN_END) {
      out->has_end = true;
      if (c.tsc > cal.tsc1) cal.tsc1 = c.tsc, cal.ns1 = c.mono_ns;
      off += TBIN_CHUNK_HEADER_SIZE;
      continue;
    }
    if (c.magic == TBIN_PAD && h.version >= 4) {
      if (c.payload_size > len - off - TBIN_CHUNK_HEADER_SIZE) {
        msg(err, errlen, "%s: record %llu (byte offset %zu): truncated padding: %u bytes announced, %zu present",
            path, (unsigned long long)recno + 1, off, c.payload_size, len - off - TBIN_CHUNK_HEADER_SIZE);
        goto fail_ev;
      }
      off += TBIN_CHUNK_HEADER_SIZE + c.payload_size;
      continue;
    }
    if (c.magic != TBIN_CHUNK) {
      msg(err, errlen, "%s: record %llu (byte offset %zu): bad chunk magic 0x%08x", path,
          (unsigned long long)recno + 1, off, c.magic);
      goto fail_ev;
    }
    if (c.thread == 0 || c.thread > 65535) {
      msg(err, errlen, "%s: record %llu (byte offset %zu): thread number %u out of range (1..65535)", path,
          (unsigned long long)recno + 1, off, c.thread);
      goto fail_ev;
    }
    if (c.payload_size > len - off - TBIN_CHUNK_HEADER_SIZE) {
      msg(err, errlen, "%s: record %llu (byte offset %zu): truncated chunk: %u payload bytes announced, %zu present",
          path, (unsigned long long)recno + 1, off, c.payload_size, len - off - TBIN_CHUNK_HEADER_SIZE);
      goto fail_ev;
    }
    if (c.tsc > cal.tsc1) cal.tsc1 = c.tsc, cal.ns1 = c.mono_ns;
    if (c.thread > dec_cap) {
      uint32_t nc = c.thread * 2;
      tdec_t *nd = realloc(dec, nc * sizeof *nd);
      if (!nd) goto oom;
      memset(nd + dec_cap, 0, (nc - dec_cap) * sizeof *nd);
      dec = nd;
      dec_cap = nc;
    }
    tdec_t *d = &dec[c.thread - 1];
    if (!d->seen) {
      d->seen = true;
      d->last_tsc = d->lo = h.tsc0;
      if (c.thread > out->thread_count) out->thread_count = c.thread;
    }
    reader_t r = {buf + off + TBIN_CHUNK_HEADER_SIZE, buf + off + TBIN_CHUNK_HEADER_SIZE + c.payload_size};
    uint32_t got = 0;
    size_t first = n, pend = n;  /* pend: first event since the thread's last own sample */
    while (r.p < r.end) {
      size_t at = (size_t)(r.p - buf);
      if (n == cap) {
        tbin_event_t *ne = realloc(ev, cap * 2 * sizeof *ev);
        if (!ne) goto oom;
        ev = ne;
        cap *= 2;
      }
      int timed;
      const char *bad = decode_record(&r, d, &ev[n], &timed);
      recno++;
      if (bad) {
        msg(err, errlen, "%s: record %llu (thread %u, byte offset %zu): %s", path, (unsigned long long)recno,
            c.thread, at, bad);
        goto fail_ev;
      }
      if (timed) {  /* an own sample ends the spans of the calls before it */
        if (timed == 1) {
          close_span(ev, pend, n, d->tsc);
          pend = n;
        }
        continue;
      }
      ev[n].ns = d->lo;  /* raw tsc until calibrated below */
      ev[n].thread = c.thread;
      n++;
      got++;
    }
    /* The chunk's clock pair was read after its last record. */
    close_span(ev, pend, n, c.tsc);
    /* A thread's calls happened in file order, whatever the TSC of the core
     * it migrated to says: keep its times monotonic so the sort keeps it. */
    for (size_t i = first; i < n; i++) {
      if (ev[i].ns < d->last_tsc) ev[i].ns = d->last_tsc;
      d->last_tsc = ev[i].ns;
    }
    if (got != c.record_count) {
      msg(err, errlen, "%s: chunk at byte offset %zu (thread %u): %u records announced, %u decoded", path, off,
          c.thread, c.record_count, got);
      goto fail_ev;
    }
    off += TBIN_CHUNK_HEADER_SIZE + c.payload_size;
  }
  if (!out->has_end)
    msg(warn, warnlen,
        "%s: warning: no end marker: the program did not exit normally (crash, signal or _exit); "
        "records still buffered in its threads were lost",
        path);

  /* Pass 2: tsc -> ns, then merge the threads by time; ties keep file
   * order (qsort is not stable, so the index breaks them). */
  long double us_per_slack = cal.tsc1 > cal.tsc0 ? (long double)(cal.ns1 - cal.ns0) * (1u << SLACK_SHIFT) /
                                                      (long double)(cal.tsc1 - cal.tsc0) / 1000.0L
                                                : 0.0L;
  for (size_t i = 0; i < n; i++) {
    ev[i].ns = tsc_to_ns(&cal, ev[i].ns);
    ev[i].early_us = slack_us(ev[i].early_us, us_per_slack);
    ev[i].late_us = slack_us(ev[i].late_us, us_per_slack);
  }
  {
    sort_key_t *keys = malloc((n ? n : 1) * sizeof *keys);
    tbin_event_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!keys || !sorted) {
      free(keys);
      free(sorted);
      goto oom;
    }
    for (size_t i = 0; i < n; i++) keys[i] = (sort_key_t){ev[i].ns, i};
    qsort(keys, n, sizeof *keys, cmp_key);
    for (size_t i = 0; i < n; i++) sorted[i] = ev[keys[i].i];
    free(keys);
    free(ev);
    ev = sorted;
  }
  free(dec);
  free(buf);
  out->events = ev;
  out->event_count = n;
  out->header = h;
  out->path = strdup(path);
  return 0;

oom:
  msg(err, errlen, "%s: out of memory", path);
fail_ev:
  free(ev);
  free(dec);
fail:
  free(buf);
  memset(out, 0, sizeof *out);
  return -1;
}

void tbin_release(tbin_t *t) {
  free(t->events);
  free(t->path);
  memset(t, 0, sizeof *t);
}

/* ---- the summary: chunk headers only ------------------------------------ */

int tbin_summarize(const char *path, tbin_summary_t *out, char *err, size_t errlen, char *warn, size_t warnlen) {
  memset(out, 0, sizeof *out);
  if (warn && warnlen) warn[0] = '\0';
  FILE *f = fopen(path, "rb");
  if (!f) {
    msg(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  int rc = -1;
  tbin_header_t h;
  if (fseeko(f, 0, SEEK_END) != 0) goto io;
  off_t len = ftello(f);
  if (len < 0 || fseeko(f, 0, SEEK_SET) != 0) goto io;
  out->file_size = (uint64_t)len;
  if ((uint64_t)len < TBIN_HEADER_SIZE || fread(&h, sizeof h, 1, f) != 1) {
    msg(err, errlen, "%s: truncated header: %lld bytes, a binary trace starts with %u", path, (long long)len,
        TBIN_HEADER_SIZE);
    goto done;
  }
  if (header_check(&h, path, err, errlen) != 0) goto done;
  uint64_t off = TBIN_HEADER_SIZE, last_ns = h.mono_ns0;
  while (off < (uint64_t)len) {
    tbin_chunk_t c;
    if ((uint64_t)len - off < TBIN_CHUNK_HEADER_SIZE) {
      msg(err, errlen, "%s: chunk at byte offset %llu: truncated chunk header (%llu of %u bytes)", path,
          (unsigned long long)off, (unsigned long long)((uint64_t)len - off), TBIN_CHUNK_HEADER_SIZE);
      goto done;
    }
    if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(&c, sizeof c, 1, f) != 1) goto io;
    if (c.magic == TBIN_END) {
      out->has_end = true;
    } else if (c.magic == TBIN_PAD && h.version >= 4) {
      if (c.payload_size > (uint64_t)len - off - TBIN_CHUNK_HEADER_SIZE) {
        msg(err, errlen, "%s: chunk at byte offset %llu: truncated padding: %u bytes announced, %llu present", path,
            (unsigned long long)off, c.payload_size, (unsigned long long)((uint64_t)len - off - TBIN_CHUNK_HEADER_SIZE));
        goto done;
      }
      off += c.payload_size;
    } else if (c.magic != TBIN_CHUNK) {
      msg(err, errlen, "%s: chunk at byte offset %llu: bad chunk magic 0x%08x", path, (unsigned long long)off,
          c.magic);
      goto done;
    } else if (c.payload_size > (uint64_t)len - off - TBIN_CHUNK_HEADER_SIZE) {
      msg(err, errlen, "%s: chunk at byte offset %llu: truncated chunk: %u payload bytes announced, %llu present",
          path, (unsigned long long)off, c.payload_size,
          (unsigned long long)((uint64_t)len - off - TBIN_CHUNK_HEADER_SIZE));
      goto done;
    } else {
      out->chunk_count++;
      out->call_count += c.record_count;
      if (c.thread > out->thread_count) out->thread_count = c.thread;
      off += c.payload_size;
    }
    if (c.mono_ns > last_ns) last_ns = c.mono_ns;
    off += TBIN_CHUNK_HEADER_SIZE;
  }
  out->duration_ns = last_ns - h.mono_ns0;
  if (!out->has_end)
    msg(warn, warnlen,
        "%s: warning: no end marker: the program did not exit normally (crash, signal or _exit); "
        "records still buffered in its threads were lost",
        path);
  rc = 0;
  goto done;
io:
  msg(err, errlen, "%s: read error: %s", path, strerror(errno));
done:
  fclose(f);
  return rc;
}

/* ---- events -> replayable operations ------------------------------------ */

/* Open-addressing map from live address to (id, size); deletions use
 * backward-shift so probes stay short with millions of live blocks. */
typedef struct amap_s {
  uint64_t *key;     /* address, 0 = empty */
  uint32_t *id;
  uint64_t *size;
  size_t cap, count; /* cap: power of two */
} amap_t;

static size_t amap_hash(uint64_t a, size_t cap) { return (size_t)((a >> 4) * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1); }

static bool amap_grow(amap_t *m) {
  amap_t n = {0};
  n.cap = m->cap ? m->cap * 2 : 1024;
  n.key = calloc(n.cap, sizeof *n.key);
  n.id = malloc(n.cap * sizeof *n.id);
  n.size = malloc(n.cap * sizeof *n.size);
  if (!n.key || !n.id || !n.size) {
    free(n.key);
    free(n.id);
    free(n.size);
    return false;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->key[i]) continue;
    size_t j = amap_hash(m->key[i], n.cap);
    while (n.key[j]) j = (j + 1) & (n.cap - 1);
    n.key[j] = m->key[i];
    n.id[j] = m->id[i];
    n.size[j] = m->size[i];
  }
  n.count = m->count;
  free(m->key);
  free(m->id);
  free(m->size);
  *m = n;
  return true;
}

static size_t amap_find(const amap_t *m, uint64_t a) {
  if (!m->cap) return SIZE_MAX;
  for (size_t j = amap_hash(a, m->cap);; j = (j + 1) & (m->cap - 1)) {
    if (m->key[j] == a) return j;
    if (!m->key[j]) return SIZE_MAX;
  }
}

static bool amap_put(amap_t *m, uint64_t a, uint32_t id, uint64_t size) {
  if ((m->count + 1) * 2 > m->cap && !amap_grow(m)) return false;
  size_t j = amap_hash(a, m->cap);
  while (m->key[j] && m->key[j] != a) j = (j + 1) & (m->cap - 1);
  if (!m->key[j]) m->count++;
  m->key[j] = a;
  m->id[j] = id;
  m->size[j] = size;
  return true;
}

static bool addr_live(const amap_t *m, uint64_t a) { return amap_find(m, a) != SIZE_MAX; }

static void amap_del(amap_t *m, size_t j) {
  m->key[j] = 0;
  m->count--;
  for (size_t k = (j + 1) & (m->cap - 1); m->key[k]; k = (k + 1) & (m->cap - 1)) {
    size_t home = amap_hash(m->key[k], m->cap);
    /* Move k back to j if j lies cyclically in [home, k). */
    if (((k - home) & (m->cap - 1)) >= ((k - j) & (m->cap - 1))) {
      m->key[j] = m->key[k];
      m->id[j] = m->id[k];
      m->size[j] = m->size[k];
      m->key[k] = 0;
      j = k;
    }
  }
}

/* ---- merging the threads ------------------------------------------------- */
/* A call's time is known as a span [ns, ns + late_us]: ns is the latest
 * clock sample its thread had seen (its own, every TBIN_TIME_BYTES of its
 * records, or TBIN_SEEN: another thread's), the end its own next sample.
 * Threads are merged by ns, and repaired by meaning: when the next event
 * cannot have happened yet (it frees an address that is not live, or gets
 * an address that is still live), an event of another thread that can
 * happen, and whose span starts before the next one's ends (plus
 * MERGE_WINDOW_NS of TSC skew between cores), goes first. Without
 * TBIN_SEEN, a thread that slept or was preempted had spans of milliseconds
 * and their events were taken at the wrong moment (larson: 50 frees of
 * 400,000 left unmatched). Only when no event can go is the next taken as
 * it is (an unknown free: skipped and counted). */
#define MERGE_WINDOW_NS 1000000ull

static uint64_t ev_hi(const tbin_event_t *e) { return e->ns + e->late_us * 1000ull; }

typedef struct merger_s {
  const tbin_event_t *ev;
  size_t *order;             /* event indices grouped by thread, time order kept */
  size_t *next, *end;        /* per thread: cursor and end in order[] */
  uint32_t *heap, *popped;   /* threads with events left, min-heap by head time */
  size_t heap_count;
} merger_t;

static const tbin_event_t *mg_head(const merger_t *g, uint32_t t) { return &g->ev[g->order[g->next[t]]]; }

static bool mg_less(const merger_t *g, uint32_t a, uint32_t b) {
  uint64_t x = mg_head(g, a)->ns, y = mg_head(g, b)->ns;
  return x != y ? x < y : a < b;
}

static void mg_push(merger_t *g, uint32_t t) {
  size_t i = g->heap_count++;
  g->heap[i] = t;
  while (i && mg_less(g, g->heap[i], g->heap[(i - 1) / 2])) {
    uint32_t tmp = g->heap[i];
    g->heap[i] = g->heap[(i - 1) / 2];
    g->heap[(i - 1) / 2] = tmp;
    i = (i - 1) / 2;
  }
}

static uint32_t mg_pop(merger_t *g) {
  uint32_t top = g->heap[0];
  g->heap[0] = g->heap[--g->heap_count];
  for (size_t i = 0;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < g->heap_count && mg_less(g, g->heap[l], g->heap[m])) m = l;
    if (r < g->heap_count && mg_less(g, g->heap[r], g->heap[m])) m = r;
    if (m == i) break;
    uint32_t tmp = g->heap[i];
    g->heap[i] = g->heap[m];
    g->heap[m] = tmp;
    i = m;
  }
  return top;
}

static int mg_init(merger_t *g, const tbin_t *t) {
  uint32_t nt = t->thread_count ? t->thread_count : 1;
  memset(g, 0, sizeof *g);
  g->ev = t->events;
  g->order = malloc((t->event_count ? t->event_count : 1) * sizeof *g->order);
  g->next = calloc(nt + 1, sizeof *g->next);
  g->end = calloc(nt + 1, sizeof *g->end);
  g->heap = malloc(nt * sizeof *g->heap);
  g->popped = malloc(nt * sizeof *g->popped);
  if (!g->order || !g->next || !g->end || !g->heap || !g->popped) return -1;
  for (size_t i = 0; i < t->event_count; i++) {
    g->end[t->events[i].thread - 1]++;  /* counts */
  }
  size_t at = 0;
  for (uint32_t k = 0; k < nt; k++) {
    size_t c = g->end[k];
    g->next[k] = at;
    g->end[k] = at;  /* filled below */
    at += c;
  }
  for (size_t i = 0; i < t->event_count; i++) g->order[g->end[t->events[i].thread - 1]++] = i;
  for (uint32_t k = 0; k < nt; k++)
    if (g->next[k] < g->end[k]) mg_push(g, k);
  return 0;
}

static void mg_free(merger_t *g) {
  free(g->order);
  free(g->next);
  free(g->end);
  free(g->heap);
  free(g->popped);
}

static bool addr_live(const amap_t *m, uint64_t a);

/* Could e happen now, given the live addresses? */
static bool mg_valid(const amap_t *m, const tbin_event_t *e) {
  switch (e->op) {
  case TBIN_OP_FREE: case TBIN_OP_FREE_SIZED: case TBIN_OP_FREE_ALIGNED_SIZED:
    return !e->ptr || addr_live(m, e->ptr);
  case TBIN_OP_REALLOC: case TBIN_OP_REALLOCARRAY:
    return (!e->ptr || addr_live(m, e->ptr)) && (!e->result || e->result == e->ptr || !addr_live(m, e->result));
  default:
    return !e->result || !addr_live(m, e->result);
  }
}

/* The next event to convert (see the banner). */
static const tbin_event_t *mg_next(merger_t *g, const amap_t *m) {
  uint32_t first = mg_pop(g), pick = first;
  const tbin_event_t *e0 = mg_head(g, first);
  size_t np = 0;
  if (!mg_valid(m, e0)) {
    uint64_t bound = ev_hi(e0) + MERGE_WINDOW_NS;
    while (g->heap_count && mg_head(g, g->heap[0])->ns <= bound) {
      uint32_t t = mg_pop(g);
      g->popped[np++] = t;
      if (mg_valid(m, mg_head(g, t))) {
        pick = t;
        break;
      }
    }
  }
  const tbin_event_t *e = mg_head(g, pick);
  g->next[pick]++;
  if (pick != first) mg_push(g, first);
  for (size_t k = 0; k < np; k++)
    if (g->popped[k] != pick) mg_push(g, g->popped[k]);
  if (g->next[pick] < g->end[pick]) mg_push(g, pick);
  return e;
}

int tbin_to_rops(const tbin_t *t, rops_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  amap_t m = {0};
  merger_t g;
  rop_t *ops = malloc((t->event_count ? t->event_count : 1) * sizeof *ops);
  if (mg_init(&g, t) != 0 || !ops) goto oom;
  size_t n = 0;
  uint32_t next_id = 0;
  uint64_t live = 0;
  for (size_t i = 0; i < t->event_count; i++) {
    const tbin_event_t *e = mg_next(&g, &m);
    rop_t o = {e->size, -1, (uint16_t)(e->thread - 1), 0, e->align_log2};
    switch (e->op) {
    case TBIN_OP_FREE: case TBIN_OP_FREE_SIZED: case TBIN_OP_FREE_ALIGNED_SIZED: {
      o.kind = ROP_FREE;
      o.size = 0;
      o.align_log2 = 0;
      if (e->ptr) {
        size_t j = amap_find(&m, e->ptr);
        if (j == SIZE_MAX) {
          out->unknown_free_count++;
          continue;
        }
        o.id = (int32_t)m.id[j];
        live -= m.size[j];
        amap_del(&m, j);
      }
      break;
    }
    case TBIN_OP_REALLOC: case TBIN_OP_REALLOCARRAY: {
      o.kind = ROP_REALLOC;
      o.align_log2 = 0;
      uint32_t id = next_id;
      size_t j = e->ptr ? amap_find(&m, e->ptr) : SIZE_MAX;
      if (e->ptr && j == SIZE_MAX) {
        /* Unknown old block: replay as a fresh allocation of the new size. */
        out->unknown_free_count++;
        if (!e->result) continue;
        o.kind = ROP_MALLOC;
      }
      if (j != SIZE_MAX) {
        if (!e->result && e->size) {  /* failed: the old block stays */
          out->failed_count++;
          continue;
        }
        id = m.id[j];
        live -= m.size[j];
        amap_del(&m, j);
      } else if (!e->result) {
        out->failed_count++;
        continue;
      } else {
        next_id++;
      }
      o.id = (int32_t)id;
      if (e->result && (e->size || j == SIZE_MAX)) {
        size_t old = amap_find(&m, e->result);
        if (old != SIZE_MAX) {  /* the free of the block there was not seen */
          out->unknown_free_count++;
          live -= m.size[old];
          amap_del(&m, old);
        }
        if (!amap_put(&m, e->result, id, e->size)) goto oom;
        live += e->size;
      } else if (e->result && !e->size) {
        /* realloc(p, 0) returned a minimal block (not glibc): keep the id
         * freed, as the .rep semantics say, and ignore the block. */
      }
      break;
    }
    default: {
      if (!e->result) {
        out->failed_count++;
        continue;
      }
      o.kind = e->op == TBIN_OP_CALLOC ? ROP_CALLOC
               : (e->op == TBIN_OP_MALLOC ? ROP_MALLOC : ROP_ALIGNED);
      if (e->op == TBIN_OP_VALLOC || e->op == TBIN_OP_PVALLOC) o.align_log2 = 12;
      if (e->op == TBIN_OP_PVALLOC) o.size = (o.size + 4095) & ~(uint64_t)4095;
      size_t j = amap_find(&m, e->result);
      if (j != SIZE_MAX) {  /* the old block's free was not seen */
        out->unknown_free_count++;
        live -= m.size[j];
        amap_del(&m, j);
      }
      o.id = (int32_t)next_id++;
      if (!amap_put(&m, e->result, (uint32_t)o.id, e->size)) goto oom;
      live += e->size;
      break;
    }
    }
    if (next_id > INT32_MAX) {
      msg(err, errlen, "%s: more than %d allocations: too many for a replay", t->path, INT32_MAX);
      goto fail;
    }
    ops[n++] = o;
    if (live > out->peak_live_bytes) out->peak_live_bytes = live;
  }
  out->live_at_end_count = m.count;
  mg_free(&g);
  free(m.key);
  free(m.id);
  free(m.size);
  out->ops = ops;
  out->op_count = n;
  out->id_count = next_id;
  out->thread_count = t->thread_count ? t->thread_count : 1;
  out->duration_ns = t->event_count ? t->events[t->event_count - 1].ns : 0;
  return 0;
oom:
  msg(err, errlen, "%s: out of memory converting the trace", t->path);
fail:
  mg_free(&g);
  free(ops);
  free(m.key);
  free(m.id);
  free(m.size);
  memset(out, 0, sizeof *out);
  return -1;
}

void rops_release(rops_t *r) {
  free(r->ops);
  memset(r, 0, sizeof *r);
}

int rops_write_rep(const rops_t *r, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f) {
    msg(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    return -1;
  }
  /* Header: heap hint (peak live payload), ids, requests, weight 1. */
  fprintf(f, "%llu\n%u\n%zu\n1\n", (unsigned long long)r->peak_live_bytes, r->id_count, r->op_count);
  for (size_t i = 0; i < r->op_count; i++) {
    const rop_t *o = &r->ops[i];
    switch (o->kind) {
    case ROP_FREE: fprintf(f, "f %d\n", o->id); break;
    case ROP_REALLOC: fprintf(f, "r %d %llu\n", o->id, (unsigned long long)o->size); break;
    default: fprintf(f, "a %d %llu\n", o->id, (unsigned long long)o->size); break;
    }
  }
  if (fclose(f) != 0) {
    msg(err, errlen, "%s: write error: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}
