/* replay_mt.c -- the replayer for recorded operations (see replay_mt.h).
 *
 * Threads: each recorded thread runs its own operations in order; an
 * operation on a block waits until the block's previous operation (on any
 * thread) is done, using a per-block counter (release/acquire), so blocks
 * handed between threads are freed after they were allocated. Deadlock is
 * impossible: a dependency always points earlier in the merged order, so
 * the earliest pending operation can always run. Waiting spins briefly,
 * then yields (the machine may have fewer cores than the trace threads).
 */
#define _GNU_SOURCE
#include "replay_mt.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void msg(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg(char *buf, size_t len, const char *fmt, ...) {
  if (!buf || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

/* ---- patterns: word j of a block holds key + j*STEP -------------------- */

#define STEP 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

static inline uint8_t pat_byte(uint64_t key, size_t i) { return (uint8_t)((key + (i >> 3) * STEP) >> ((i & 7) * 8)); }

static void pat_fill(uint8_t *p, uint64_t key, size_t from, size_t to) {
  size_t i = from;
  for (; i < to && (i & 7); i++) p[i] = pat_byte(key, i);
  uint64_t w = key + (i >> 3) * STEP;
  for (; i + 8 <= to; i += 8, w += STEP) memcpy(p + i, &w, 8);
  for (; i < to; i++) p[i] = pat_byte(key, i);
}

static size_t pat_bad(const uint8_t *p, uint64_t key, size_t to) {
  size_t i = 0;
  uint64_t w = key;
  for (; i + 8 <= to; i += 8, w += STEP) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v != w) break;
  }
  for (; i < to; i++)
    if (p[i] != pat_byte(key, i)) return i;
  return SIZE_MAX;
}

/* ---- RSS ---------------------------------------------------------------- */

/* statm, VmHWM: the helpers of trace.c (the .rep replayer measures the same way). */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the replay state --------------------------------------------------- */

typedef struct slot_s {
  uint8_t *p;
  uint64_t size;
  uint64_t key;
} slot_t;

typedef struct rx_s {
  const rops_t *r;
  const char *path;
  rx_alloc_t a;
  slot_t *slots;
  uint32_t *gen;
  uint32_t *ord;            /* per op: its ordinal among the ops on its block */
  _Atomic uint32_t *done;   /* per block: ops on it completed (this pass) */
  _Atomic int failed;
  char *err;
  size_t errlen;
} rx_t;

static void *d_malloc(size_t n) { return malloc(n); }
static void *d_calloc(size_t k, size_t n) { return calloc(k, n); }
static void *d_realloc(void *p, size_t n) { return realloc(p, n); }
static void d_free(void *p) { free(p); }
static void *d_aligned(size_t a, size_t n) {
  void *p = NULL;
  return posix_memalign(&p, a < sizeof(void *) ? sizeof(void *) : a, n) ? NULL : p;
}

/* Report the first failure only (threads may fail together). */
static void fail(rx_t *x, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(rx_t *x, size_t i, const char *fmt, ...) {
  int exp = 0;
  if (!atomic_compare_exchange_strong(&x->failed, &exp, 1)) return;
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  msg(x->err, x->errlen, "%s: operation %zu (thread %u): %s", x->path, i + 1, x->r->ops[i].thread + 1u, what);
}

static uint64_t new_key(rx_t *x, int32_t id) { return mix64(((uint64_t)++x->gen[id] << 32) ^ (uint64_t)id ^ 0x2545F491ull); }

/* Execute op i. Returns the change in live payload bytes; sets x->failed. */
static int64_t do_op(rx_t *x, size_t i) {
  const rop_t *o = &x->r->ops[i];
  if (o->id < 0) {
    x->a.free_fn(NULL);
    return 0;
  }
  slot_t *s = &x->slots[o->id];
  switch (o->kind) {
  case ROP_MALLOC: case ROP_CALLOC: case ROP_ALIGNED: {
    uint8_t *p;
    if (o->kind == ROP_CALLOC) p = x->a.calloc_fn(1, (size_t)o->size);
    else if (o->kind == ROP_ALIGNED) p = x->a.aligned_fn((size_t)1 << o->align_log2, (size_t)o->size);
    else p = x->a.malloc_fn((size_t)o->size);
    if (!p && o->size) {
      fail(x, i, "allocation of %llu bytes for block %d returned NULL", (unsigned long long)o->size, o->id);
      return 0;
    }
    if (o->kind == ROP_ALIGNED && ((uintptr_t)p & (((uintptr_t)1 << o->align_log2) - 1))) {
      fail(x, i, "block %d at %p is not aligned to %llu bytes", o->id, (void *)p, 1ull << o->align_log2);
      return 0;
    }
    if (o->kind == ROP_CALLOC)
      for (uint64_t k = 0; k < o->size; k++)
        if (p[k]) {
          fail(x, i, "calloc(%llu) for block %d: byte %llu is 0x%02x, not zero", (unsigned long long)o->size, o->id,
               (unsigned long long)k, p[k]);
          return 0;
        }
    s->p = p;
    s->size = o->size;
    s->key = new_key(x, o->id);
    pat_fill(p, s->key, 0, (size_t)o->size);
    return (int64_t)o->size;
  }
  case ROP_FREE: {
    size_t bad = pat_bad(s->p, s->key, (size_t)s->size);
    if (bad != SIZE_MAX) {
      fail(x, i, "block %d (%llu bytes at %p) damaged before free: byte %zu is 0x%02x, expected 0x%02x", o->id,
           (unsigned long long)s->size, (void *)s->p, bad, s->p[bad], pat_byte(s->key, bad));
      return 0;
    }
    x->a.free_fn(s->p);
    int64_t d = -(int64_t)s->size;
    s->p = NULL;
    s->size = 0;
    return d;
  }
  case ROP_REALLOC: {
    uint64_t old = s->p ? s->size : 0;
    if (!s->p) s->key = new_key(x, o->id);
    uint8_t *p = x->a.realloc_fn(s->p, (size_t)o->size);
    if (o->size == 0) {
      if (p) x->a.free_fn(p);
      s->p = NULL;
      s->size = 0;
      return -(int64_t)old;
    }
    if (!p) {
      fail(x, i, "realloc(%p, %llu) for block %d returned NULL", (void *)s->p, (unsigned long long)o->size, o->id);
      return 0;
    }
    uint64_t keep = old < o->size ? old : o->size;
    size_t bad = pat_bad(p, s->key, (size_t)keep);
    if (bad != SIZE_MAX) {
      fail(x, i, "realloc of block %d from %llu to %llu bytes lost contents: byte %zu is 0x%02x, expected 0x%02x",
           o->id, (unsigned long long)old, (unsigned long long)o->size, bad, p[bad], pat_byte(s->key, bad));
      s->p = p;  /* the old block is gone: free the new one at the end */
      s->size = o->size;
      return 0;
    }
    if (o->size > old) pat_fill(p, s->key, (size_t)old, (size_t)o->size);
    s->p = p;
    s->size = o->size;
    return (int64_t)o->size - (int64_t)old;
  }
  }
  return 0;
}

/* Free what a pass left live, checking it first. */
static void free_leftovers(rx_t *x) {
  for (uint32_t id = 0; id < x->r->id_count; id++) {
    slot_t *s = &x->slots[id];
    if (!s->p) continue;
    if (!atomic_load(&x->failed) && pat_bad(s->p, s->key, (size_t)s->size) != SIZE_MAX) {
      int exp = 0;
      if (atomic_compare_exchange_strong(&x->failed, &exp, 1))
        msg(x->err, x->errlen, "%s: block %u (%llu bytes) damaged at the end of the trace", x->path, id,
            (unsigned long long)s->size);
    }
    x->a.free_fn(s->p);
    s->p = NULL;
    s->size = 0;
  }
}

/* ---- threads ------------------------------------------------------------ */

typedef struct worker_s {
  rx_t *x;
  size_t *idx;   /* this thread's ops, in order */
  size_t count;
  pthread_t tid;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  rx_t *x = w->x;
  for (size_t k = 0; k < w->count && !atomic_load_explicit(&x->failed, memory_order_relaxed); k++) {
    size_t i = w->idx[k];
    int32_t id = x->r->ops[i].id;
    if (id >= 0) {
      unsigned spins = 0;
      while (atomic_load_explicit(&x->done[id], memory_order_acquire) != x->ord[i]) {
        if (atomic_load_explicit(&x->failed, memory_order_relaxed)) return NULL;
        if (++spins > 100) sched_yield();
      }
    }
    do_op(x, i);
    if (id >= 0) atomic_store_explicit(&x->done[id], x->ord[i] + 1, memory_order_release);
  }
  return NULL;
}

uint64_t rops_peak_live(const rops_t *r) {
  uint64_t *size = calloc(r->id_count ? r->id_count : 1, sizeof *size);
  if (!size) return r->peak_live_bytes;
  uint64_t live = 0, peak = 0;
  for (size_t i = 0; i < r->op_count; i++) {
    const rop_t *o = &r->ops[i];
    if (o->id < 0) continue;
    live -= size[o->id];
    size[o->id] = o->kind == ROP_FREE ? 0 : o->size;
    live += size[o->id];
    if (live > peak) peak = live;
  }
  free(size);
  return peak;
}

int rx_replay(const rops_t *r, const char *path, const rx_opts_t *o, rx_result_t *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  rx_t x = {r, path, o->alloc, NULL, NULL, NULL, NULL, 0, err, errlen};
  if (!x.a.malloc_fn) x.a.malloc_fn = d_malloc;
  if (!x.a.calloc_fn) x.a.calloc_fn = d_calloc;
  if (!x.a.realloc_fn) x.a.realloc_fn = d_realloc;
  if (!x.a.free_fn) x.a.free_fn = d_free;
  if (!x.a.aligned_fn) x.a.aligned_fn = d_aligned;
  unsigned repeat = o->repeat ? o->repeat : 1;
  uint32_t nthreads = o->threads && r->thread_count > 1 ? r->thread_count : 1;
  size_t ids = r->id_count ? r->id_count : 1;
  x.slots = calloc(ids, sizeof *x.slots);
  x.gen = calloc(ids, sizeof *x.gen);
  worker_t *w = NULL;
  size_t *idx = NULL;
  if (!x.slots || !x.gen) goto oom;
  if (nthreads > 1) {
    x.ord = malloc((r->op_count ? r->op_count : 1) * sizeof *x.ord);
    x.done = calloc(ids, sizeof *x.done);
    w = calloc(nthreads, sizeof *w);
    idx = malloc((r->op_count ? r->op_count : 1) * sizeof *idx);
    if (!x.ord || !x.done || !w || !idx) goto oom;
    uint32_t *count = (uint32_t *)x.gen;  /* borrowed as the per-block op counter, reset below */
    for (size_t i = 0; i < r->op_count; i++) {
      w[r->ops[i].thread].count++;
      x.ord[i] = r->ops[i].id >= 0 ? count[r->ops[i].id]++ : 0;
    }
    memset(x.gen, 0, ids * sizeof *x.gen);
    size_t at = 0;
    for (uint32_t t = 0; t < nthreads; t++) {
      w[t].x = &x;
      w[t].idx = idx + at;
      at += w[t].count;
      w[t].count = 0;
    }
    for (size_t i = 0; i < r->op_count; i++) {
      worker_t *t = &w[r->ops[i].thread];
      t->idx[t->count++] = i;
    }
  }

  int statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  bool have_hwm = trace_hwm_reset();
  if (statm >= 0) (void)trace_statm_rss(statm);   /* pages in the reading code first (trace.c) */
  uint64_t base = statm >= 0 ? trace_statm_rss(statm) : 0, peak_rss = base, live = 0, peak_live = 0;
  double t0 = now_s();
  for (unsigned pass = 0; pass < repeat && !atomic_load(&x.failed); pass++) {
    if (nthreads > 1) {
      for (size_t id = 0; id < ids; id++) atomic_store_explicit(&x.done[id], 0, memory_order_relaxed);
      /* Small stacks: a recording of thousands of threads replays with all
       * of them alive at once (any may wait for any other). */
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstacksize(&attr, 128u << 10);
      uint32_t started = 0;
      for (; started < nthreads; started++)
        if (w[started].count && pthread_create(&w[started].tid, &attr, worker_main, &w[started]) != 0) break;
      pthread_attr_destroy(&attr);
      if (started < nthreads) {
        int exp = 0;
        if (atomic_compare_exchange_strong(&x.failed, &exp, 1))
          msg(err, errlen, "%s: cannot start replay thread %u of %u: %s", path, started + 1, nthreads,
              strerror(errno));
      }
      /* Sample RSS while the workers run (they never touch statm). */
      for (uint32_t t = 0; t < started; t++) {
        if (!w[t].count) continue;
        while (pthread_tryjoin_np(w[t].tid, NULL) == EBUSY) {
          if (statm >= 0) {
            uint64_t v = trace_statm_rss(statm);
            if (v > peak_rss) peak_rss = v;
          }
          struct timespec ms = {0, 1000000};
          nanosleep(&ms, NULL);
        }
      }
      res->ops += r->op_count;
      peak_live = rops_peak_live(r);
    } else {
      for (size_t i = 0; i < r->op_count; i++) {
        if (o->sample && o->sample_every && i % o->sample_every == 0) o->sample(o->sample_arg, i, live);
        live += (uint64_t)do_op(&x, i);
        if (atomic_load_explicit(&x.failed, memory_order_relaxed)) break;
        if (live > peak_live) peak_live = live;
        if (statm >= 0 && ((i & 1023) == 0 || r->ops[i].size >= (1u << 20))) {
          uint64_t v = trace_statm_rss(statm);
          if (v > peak_rss) peak_rss = v;
        }
        res->ops++;
      }
      if (o->sample && !atomic_load(&x.failed)) o->sample(o->sample_arg, r->op_count, live);
    }
    if (statm >= 0) {
      uint64_t v = trace_statm_rss(statm);
      if (v > peak_rss) peak_rss = v;
    }
    free_leftovers(&x);
    live = 0;
  }
  res->seconds = now_s() - t0;
  if (have_hwm) {
    uint64_t h = trace_hwm_read();
    if (h > peak_rss) peak_rss = h;
  }
  if (statm >= 0) close(statm);
  res->ops_per_s = res->seconds > 0 ? (double)res->ops / res->seconds : 0;
  res->peak_live_bytes = peak_live;
  res->peak_rss_delta_bytes = peak_rss > base ? peak_rss - base : 0;
  res->utilization = res->peak_rss_delta_bytes ? (double)peak_live / (double)res->peak_rss_delta_bytes : 0;
  res->threads_used = nthreads;
  int rc = atomic_load(&x.failed) ? -1 : 0;
  free(x.slots);
  free(x.gen);
  free(x.ord);
  free((void *)x.done);
  free(w);
  free(idx);
  return rc;
oom:
  msg(err, errlen, "%s: out of memory for the replay state", path);
  free(x.slots);
  free(x.gen);
  free(x.ord);
  free((void *)x.done);
  free(w);
  free(idx);
  return -1;
}
