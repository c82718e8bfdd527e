/* fuzz_api.c -- libFuzzer harness: the input is a program of allocation
 * calls (every tsr_* entry point, sizes from 0 to SIZE_MAX, valid and
 * invalid alignments, frees in any order, realloc chains, frees and
 * allocations on a second thread, OS failures injected) run against a model
 * of every live block. The model fills each block's usable bytes with a
 * pattern derived from its id and checks, on every call: the contents
 * (before a free, after a realloc for the kept prefix, after a trim), the
 * alignment, usable size >= requested size, no two live blocks overlapping
 * (an address-sorted array), and the error contract (NULL with ENOMEM for an
 * impossible size or overflowing count*size, EINVAL for a bad alignment, the
 * old block intact when realloc fails). Any violation aborts with a message.
 *
 * The allocator is compiled into this program (build/fuzz/unity.o), so it is
 * also the malloc of libFuzzer itself. Live bytes are capped so an input
 * cannot exhaust the machine; sizes between the cap and the "impossible"
 * threshold are skipped, since whether the kernel grants them is not
 * tessera's contract. Not checked here: multi-threaded races (the stress and
 * TSan tests do that); the worker thread runs in lock step with the main one.
 */
#define _GNU_SOURCE
#include "tessera.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The test-only fault-injection hook of platform_linux.c (hidden, but in the
 * same link): after `skip` OS requests, `count` fail (-1: all); skip -1 ends
 * it. Weak so the harness still links if the hook goes away. */
long tsr_platform_fault_inject(long skip, long count) __attribute__((weak));

/* ---- limits ---------------------------------------------------------------- */
#define LIVE_MAX      4096                 /* live blocks in the model */
#define LIVE_CAP      ((size_t)96 << 20)   /* usable bytes live at once */
#define BLOCK_CAP     ((size_t)40 << 20)   /* larger (but possible) requests are skipped */
#define FAIL_MIN      ((size_t)1 << 48)    /* from here on a request must fail: more than the address space */
#define ALIGN_FAIL_MIN ((size_t)1 << 41)   /* a power-of-two alignment this large must fail */
#define WORKER_BATCH  64
#define EXACT_GOOD_MAX ((size_t)1 << 20)   /* up to here (class pages, large spans) usable == good_size */

/* ---- failure ----------------------------------------------------------------- */
/* Report without stdio's buffers (the heap under test may be what broke). */
__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  if (write(2, "fuzz_api: ", 10) < 0 || write(2, buf, (size_t)n) < 0) { /* nothing left to tell */ }
  abort();
}

/* ---- input ------------------------------------------------------------------ */
typedef struct {
  const uint8_t *p;
  size_t left;
} input_t;

static uint8_t in_u8(input_t *in) {
  if (in->left == 0) return 0;
  in->left--;
  return *in->p++;
}
static uint16_t in_u16(input_t *in) { return (uint16_t)(in_u8(in) | in_u8(in) << 8); }
static uint32_t in_u32(input_t *in) { return (uint32_t)in_u16(in) | (uint32_t)in_u16(in) << 16; }

/* Sizes near the boundaries of tessera's ranges and of size_t. */
static const size_t edge_sizes[] = {
  0, 1, 15, 16, 17, 255, 256, 257, 1023, 1024, 1025, 4095, 4096, 4097,
  8191, 8192, 8193, 65535, 65536, 65537, 131071, 131072, 131073,
  1048575, 1048576, 1048577, 2097152, ((size_t)32 << 20) - 4096, (size_t)32 << 20,
  ((size_t)32 << 20) + 1,
};
/* Requests no allocator can grant: NULL with ENOMEM. */
static const size_t impossible_sizes[] = {
  SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX - 4096, SIZE_MAX / 2, SIZE_MAX / 2 + 1,
  (size_t)1 << 62, (size_t)1 << 48, ((size_t)1 << 48) + 1, PTRDIFF_MAX - ((size_t)64 << 20),
};
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* One size, spread over every range tessera treats differently. */
static size_t in_size(input_t *in) {
  uint8_t sel = in_u8(in);
  switch (sel % 16) {
  case 0: case 1: case 2: case 3: return in_u8(in);                       /* tiny */
  case 4: case 5: case 6: return in_u16(in) % 4097;                        /* small */
  case 7: return in_u32(in) % (128 * 1024 + 1);                            /* class pages */
  case 8: return edge_sizes[in_u8(in) % COUNT_OF(edge_sizes)];
  case 9: return 128 * 1024 + in_u32(in) % (1024 * 1024 - 128 * 1024 + 1); /* large: 128 KiB - 1 MiB */
  case 10: return 1024 * 1024 + in_u32(in) % (8u << 20);                  /* huge: 1 - 9 MiB */
  case 11: {                                                               /* around a power of two */
    uint8_t b = in_u8(in);
    return ((size_t)1 << (b % 24)) + (size_t)(b / 24 % 3) - 1;
  }
  case 12: {
    uint8_t b = in_u8(in);
    size_t s = impossible_sizes[b % COUNT_OF(impossible_sizes)];
    return b >= 128 ? s - in_u16(in) : s;
  }
  default: return in_u16(in) % 1025;
  }
}

/* An alignment: mostly valid powers of two up to 64 MiB, some invalid ones
 * (EINVAL) and some absurd powers of two (ENOMEM). */
static size_t in_align(input_t *in) {
  static const size_t invalid[] = { 0, 3, 6, 12, 24, 48, 100, 4097, 65535, (1u << 20) + 16, SIZE_MAX, SIZE_MAX / 2 };
  uint8_t sel = in_u8(in), b = in_u8(in);
  switch (sel % 8) {
  case 5: return (size_t)1 << (21 + b % 6);              /* 2 - 64 MiB: huge alignments */
  case 6: return invalid[b % COUNT_OF(invalid)];
  case 7: return (size_t)1 << (41 + b % 23);
  default: return (size_t)1 << (b % 21);
  }
}

static bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* ---- the model ------------------------------------------------------------- */
typedef struct {
  uintptr_t addr;
  size_t    size;     /* requested bytes */
  size_t    usable;   /* tsr_usable_size at allocation: the bytes filled */
  size_t    align;    /* 0: malloc family; else the aligned call's alignment */
  uint64_t  id;
} block_t;

static struct {
  block_t  live[LIVE_MAX];   /* sorted by address */
  size_t   count;
  size_t   live_bytes;       /* sum of usable */
  uint64_t next_id;
  bool     may_fail;         /* OS failure injected: any allocation may return NULL */
  bool     is_check_build;   /* libtessera-check's sources: usable size is the request */
  uintptr_t input_start, input_end;  /* libFuzzer's copy of the input: live, from tessera too */
} model;

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

/* Byte i of block id's pattern: word i/8 of an arithmetic sequence from a
 * per-id start, so a block copied to the wrong offset or from another block
 * shows. Blocks up to PATTERN_FULL_MAX bytes are filled whole; larger ones
 * at their ends and across every 64 KiB (slice) boundary -- touching every
 * OS page of a 9 MiB block would make the fuzzer ten times slower, and the
 * overlap check does not need the bytes. */
#define PATTERN_STEP     0x9e3779b97f4a7c15ULL
#define PATTERN_FULL_MAX ((size_t)256 << 10)
#define PATTERN_EDGE     ((size_t)16 << 10)
#define PATTERN_STRIDE   ((size_t)64 << 10)
#define PATTERN_STRIPE   64

enum { PATTERN_FILL, PATTERN_VERIFY, PATTERN_ZERO };

static void pattern_span(int what, uintptr_t addr, size_t from, size_t to, uint64_t id, const char *when) {
  uint64_t base = mix64(id);
  uint8_t *m = (uint8_t *)addr;
  for (size_t i = from; i < to; i++) {
    if ((i & 7) == 0 && i + 8 <= to) {                  /* whole words */
      uint64_t w = what == PATTERN_ZERO ? 0 : base + (i >> 3) * PATTERN_STEP, got;
      if (what == PATTERN_FILL) { memcpy(m + i, &w, 8); i += 7; continue; }
      memcpy(&got, m + i, 8);
      if (got == w) { i += 7; continue; }
    }
    uint8_t want = what == PATTERN_ZERO ? 0 : (uint8_t)((base + (i >> 3) * PATTERN_STEP) >> (8 * (i & 7)));
    if (what == PATTERN_FILL) m[i] = want;
    else if (m[i] != want)
      fail("%s: block %#lx (id %lu) byte %zu is %#x, expected %#x", when, (unsigned long)addr,
           (unsigned long)id, i, m[i], want);
  }
}

/* Apply `what` to the sampled bytes of a block of layout_len bytes, below limit. */
static void pattern_apply(int what, uintptr_t addr, size_t layout_len, size_t limit, uint64_t id, const char *when) {
#define SPAN(from, to) pattern_span(what, addr, (from), (to) < limit ? (to) : limit, id, when)
  if (layout_len <= PATTERN_FULL_MAX) { SPAN(0, layout_len); return; }
  SPAN(0, PATTERN_EDGE);
  for (size_t off = PATTERN_STRIDE; off + PATTERN_STRIPE < layout_len - PATTERN_EDGE; off += PATTERN_STRIDE)
    SPAN(off - PATTERN_STRIPE / 2, off + PATTERN_STRIPE / 2);
  SPAN(layout_len - PATTERN_EDGE, layout_len);
#undef SPAN
}

static void pattern_fill(uintptr_t addr, size_t len, uint64_t id) {
  pattern_apply(PATTERN_FILL, addr, len, len, id, "fill");
}
static void pattern_verify(uintptr_t addr, size_t len, uint64_t id, const char *when) {
  pattern_apply(PATTERN_VERIFY, addr, len, len, id, when);
}

/* Index of the first live block at an address >= addr. */
static size_t model_lower_bound(uintptr_t addr) {
  size_t lo = 0, hi = model.count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (model.live[mid].addr < addr) lo = mid + 1; else hi = mid;
  }
  return lo;
}

static bool model_has_room(size_t size) {
  return model.count < LIVE_MAX && size <= BLOCK_CAP && model.live_bytes + size <= LIVE_CAP;
}

/* A block tessera just returned: check it against the contract and every
 * other live block, then fill it. zeroed: calloc's promise for `size` bytes.
 * Returns its index. */
static size_t model_add(void *p, size_t size, size_t align, bool zeroed, const char *call) {
  uintptr_t a = (uintptr_t)p;
  size_t need = align > 16 ? align : 16;
  if (a & (need - 1)) fail("%s(%zu, align %zu) returned %p, not %zu-aligned", call, size, align, p, need);
  size_t usable = tsr_usable_size(p);
  if (usable < size) fail("%s(%zu) returned %p with usable size %zu", call, size, p, usable);
  if (usable > LIVE_CAP * 2) fail("%s(%zu) returned %p with absurd usable size %zu", call, size, p, usable);
  if (a < model.input_end && model.input_start < a + usable)
    fail("%s(%zu) returned %p..+%zu overlapping libFuzzer's live input buffer %#lx..%#lx", call, size, p, usable,
         (unsigned long)model.input_start, (unsigned long)model.input_end);
  size_t i = model_lower_bound(a);
  if (i < model.count && model.live[i].addr < a + usable)
    fail("%s(%zu) returned %p..+%zu overlapping live block %#lx (id %lu)", call, size, p, usable,
         (unsigned long)model.live[i].addr, (unsigned long)model.live[i].id);
  if (i > 0 && model.live[i - 1].addr + model.live[i - 1].usable > a)
    fail("%s(%zu) returned %p overlapping live block %#lx..+%zu (id %lu)", call, size, p,
         (unsigned long)model.live[i - 1].addr, model.live[i - 1].usable, (unsigned long)model.live[i - 1].id);
  if (zeroed) pattern_apply(PATTERN_ZERO, a, usable, size, 0, "calloc's zeroed bytes");
  memmove(&model.live[i + 1], &model.live[i], (model.count - i) * sizeof(block_t));
  block_t *b = &model.live[i];
  *b = (block_t){ .addr = a, .size = size, .usable = usable, .align = align, .id = model.next_id++ };
  model.count++;
  model.live_bytes += usable;
  pattern_fill(a, usable, b->id);
  return i;
}

/* Drop block i from the model, unchecked. */
static void model_drop(size_t i) {
  model.live_bytes -= model.live[i].usable;
  model.count--;
  memmove(&model.live[i], &model.live[i + 1], (model.count - i) * sizeof(block_t));
}

/* Take block i out of the model after checking its bytes; returns a copy. */
static block_t model_remove(size_t i, const char *when) {
  block_t b = model.live[i];
  pattern_verify(b.addr, b.usable, b.id, when);
  model_drop(i);
  return b;
}

static void model_verify_all(const char *when) {
  for (size_t i = 0; i < model.count; i++) {
    block_t *b = &model.live[i];
    size_t usable = tsr_usable_size((void *)b->addr);
    if (usable != b->usable) fail("%s: usable size of %#lx changed from %zu to %zu", when, (unsigned long)b->addr, b->usable, usable);
    pattern_verify(b->addr, b->usable, b->id, when);
  }
}

/* An allocation returned NULL: fine only with errno ENOMEM, and only when
 * the request was impossible or the OS was made to fail. */
static void expect_enomem(bool impossible, const char *call, size_t size) {
  if (!impossible && !model.may_fail) fail("%s(%zu) returned NULL (errno %d) with %zu bytes live", call, size, errno, model.live_bytes);
  if (errno != ENOMEM) fail("%s(%zu) returned NULL with errno %d, not ENOMEM", call, size, errno);
}

/* ---- the worker thread: frees and allocations from another heap ---------------- */
enum { WORK_NONE, WORK_FREE, WORK_ALLOC, WORK_EXIT };
static struct {
  pthread_t       thread;
  bool            running;
  pthread_mutex_t lock;
  pthread_cond_t  cond;
  int             command;    /* WORK_*; WORK_NONE once done */
  void           *ptrs[WORKER_BATCH];
  int             errnos[WORKER_BATCH];   /* errno after a NULL from WORK_ALLOC */
  size_t          count;
  size_t          size;
} worker = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *worker_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&worker.lock);
  for (;;) {
    while (worker.command == WORK_NONE) pthread_cond_wait(&worker.cond, &worker.lock);
    int command = worker.command;
    if (command == WORK_FREE) {
      for (size_t i = 0; i < worker.count; i++) tsr_free(worker.ptrs[i]);
    } else if (command == WORK_ALLOC) {
      for (size_t i = 0; i < worker.count; i++) {
        errno = 0;
        worker.ptrs[i] = tsr_malloc(worker.size);
        worker.errnos[i] = errno;
      }
    }
    worker.command = WORK_NONE;
    pthread_cond_broadcast(&worker.cond);
    if (command == WORK_EXIT) break;
  }
  pthread_mutex_unlock(&worker.lock);
  return NULL;
}

/* Start the worker if it is not running. False only when the OS was made
 * to fail (pthread_create allocates, from tessera). */
static bool worker_start(void) {
  if (worker.running) return true;
  int r = pthread_create(&worker.thread, NULL, worker_main, NULL);
  if (r != 0 && !model.may_fail) fail("pthread_create failed: %d", r);
  worker.running = r == 0;
  return worker.running;
}

/* Run one command on the (started) worker and wait for it. */
static void worker_run(int command) {
  pthread_mutex_lock(&worker.lock);
  worker.command = command;
  pthread_cond_broadcast(&worker.cond);
  while (worker.command != WORK_NONE) pthread_cond_wait(&worker.cond, &worker.lock);
  pthread_mutex_unlock(&worker.lock);
  if (command == WORK_EXIT) {
    pthread_join(worker.thread, NULL);
    worker.running = false;
  }
}

/* ---- operations ------------------------------------------------------------- */
enum {
  OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOCARRAY, OP_FREE, OP_FREE_SIZED,
  OP_POSIX_MEMALIGN, OP_ALIGNED_ALLOC, OP_REALLOC_CHAIN, OP_FREE_MANY,
  OP_USABLE, OP_GOOD_SIZE, OP_TRIM, OP_CHECK_HEAP, OP_REMOTE_FREE, OP_REMOTE_ALLOC,
  OP_WORKER_EXIT, OP_FAULT, OP_COUNT
};

static void op_malloc(size_t size) {
  bool impossible = size >= FAIL_MIN;
  if (!impossible && !model_has_room(size)) return;
  errno = 0;
  void *p = tsr_malloc(size);
  if (p == NULL) { expect_enomem(impossible, "malloc", size); return; }
  if (impossible) fail("malloc(%zu) returned %p", size, p);
  model_add(p, size, 0, false, "malloc");
}

/* count and size for calloc / reallocarray: sometimes a product that overflows. */
static void in_count_size(input_t *in, size_t *count, size_t *size) {
  uint8_t sel = in_u8(in);
  switch (sel % 4) {
  case 0: *count = in_u8(in); *size = in_size(in); break;
  case 1: *count = ((size_t)1 << (32 + sel / 4 % 32)) + in_u8(in); *size = ((size_t)1 << 32) + in_u16(in); break;
  case 2: *count = in_size(in); *size = 1 + in_u8(in) % 64; break;
  default: *count = in_u8(in) % 4; *size = in_u8(in) % 2 ? SIZE_MAX / (1 + in_u8(in)) : 0; break;
  }
}

/* Classify count*size: 1 impossible (overflow or too big), 0 possible, -1 skip. */
static int product_kind(size_t count, size_t size, size_t *total) {
  if (__builtin_mul_overflow(count, size, total) || *total >= FAIL_MIN) return 1;
  return model_has_room(*total) ? 0 : -1;
}

static void op_calloc(size_t count, size_t size) {
  size_t total;
  int kind = product_kind(count, size, &total);
  if (kind < 0) return;
  errno = 0;
  void *p = tsr_calloc(count, size);
  if (p == NULL) { expect_enomem(kind == 1, "calloc", total); return; }
  if (kind == 1) fail("calloc(%zu, %zu) returned %p", count, size, p);
  model_add(p, total, 0, true, "calloc");
}

/* realloc (array: reallocarray(count, size)) of block i, or of NULL when
 * i is past the live blocks. Returns the new block's index, or SIZE_MAX
 * when there is none (freed, failed, skipped). */
static size_t do_realloc(size_t i, bool array, size_t count, size_t size) {
  const char *call = array ? "reallocarray" : "realloc";
  size_t total = size;
  int kind = array ? product_kind(count, size, &total) : (size >= FAIL_MIN ? 1 : model_has_room(size) ? 0 : -1);
  void *q;
  if (i >= model.count) {                               /* realloc(NULL, n) is malloc(n) */
    if (kind < 0) return SIZE_MAX;
    errno = 0;
    q = array ? tsr_reallocarray(NULL, count, size) : tsr_realloc(NULL, size);
    if (q == NULL) { expect_enomem(kind == 1, call, total); return SIZE_MAX; }
    if (kind == 1) fail("%s(NULL, %zu) returned %p", call, total, q);
    return model_add(q, total, 0, false, call);
  }
  block_t old = model.live[i];
  if (kind < 0 && total > old.usable) return SIZE_MAX;  /* shrinking needs no room */
  pattern_verify(old.addr, old.usable, old.id, "before realloc");
  errno = 0;
  q = array ? tsr_reallocarray((void *)old.addr, count, size) : tsr_realloc((void *)old.addr, size);
  if (kind != 1 && total == 0) {                        /* realloc(p, 0) frees p and returns NULL, as glibc's */
    if (q != NULL) fail("%s(%p, 0) returned %p, not NULL", call, (void *)old.addr, q);
    model_drop(i);
    return SIZE_MAX;
  }
  if (q == NULL) {
    expect_enomem(kind == 1, call, total);
    if (tsr_usable_size((void *)old.addr) != old.usable) fail("%s failed and changed the old block's usable size", call);
    pattern_verify(old.addr, old.usable, old.id, "after failed realloc");
    return i;
  }
  if (kind == 1) fail("%s(%p, %zu) returned %p", call, (void *)old.addr, total, q);
  size_t keep = old.size < total ? old.size : total;
  pattern_apply(PATTERN_VERIFY, (uintptr_t)q, old.usable, keep, old.id, "prefix kept by realloc");
  model_drop(i);
  return model_add(q, total, 0, false, call);
}

/* posix_memalign and aligned_alloc share the expectations. */
static void op_aligned(bool posix, size_t align, size_t size) {
  const char *call = posix ? "posix_memalign" : "aligned_alloc";
  bool invalid = !is_pow2(align) || (posix && align % sizeof(void *) != 0);
  bool impossible = !invalid && (size >= FAIL_MIN || align >= ALIGN_FAIL_MIN);
  if (!invalid && !impossible && !model_has_room(size)) return;
  void *p;
  errno = 0;
  if (posix) {
    void *sentinel = (void *)&model;
    p = sentinel;
    int saved = errno = 1234;
    int r = tsr_posix_memalign(&p, align, size);
    if (r != 0) {
      if (p != sentinel) fail("posix_memalign(%zu, %zu) failed (%d) but wrote %p", align, size, r, p);
      if (errno != saved) fail("posix_memalign(%zu, %zu) changed errno to %d", align, size, errno);
      if (invalid ? r != EINVAL : r != ENOMEM) fail("posix_memalign(%zu, %zu) returned %d", align, size, r);
      if (!invalid && !impossible && !model.may_fail) fail("posix_memalign(%zu, %zu) failed", align, size);
      return;
    }
  } else {
    p = tsr_aligned_alloc(align, size);
    if (p == NULL) {
      if (invalid) { if (errno != EINVAL) fail("aligned_alloc(%zu, %zu): errno %d, not EINVAL", align, size, errno); }
      else expect_enomem(impossible, call, size);
      return;
    }
  }
  if (invalid || impossible) fail("%s(%zu, %zu) returned %p", call, align, size, p);
  model_add(p, size, align, false, call);
}

/* Free block i by one of the three frees (sized: the size the block was asked with). */
static void do_free(size_t i, int how) {
  block_t b = model_remove(i, "before free");
  if (how == 0) tsr_free((void *)b.addr);
  else if (b.align != 0) tsr_free_aligned_sized((void *)b.addr, b.align, b.size);
  else tsr_free_sized((void *)b.addr, b.size);
}

/* A live block's index; always reads two bytes, so an input decodes the
 * same way whatever the model holds. */
static size_t pick(input_t *in) {
  uint16_t r = in_u16(in);
  return model.count == 0 ? 0 : r % model.count;
}

static void run_op(input_t *in, int depth);

static void run_op(input_t *in, int depth) {
  uint8_t op = in_u8(in) % OP_COUNT;
  switch (op) {
  case OP_MALLOC: op_malloc(in_size(in)); break;
  case OP_CALLOC: { size_t c, s; in_count_size(in, &c, &s); op_calloc(c, s); break; }
  case OP_REALLOC: {
    uint8_t sel = in_u8(in);
    size_t i = sel % 8 == 0 ? model.count : pick(in);   /* sometimes realloc(NULL, n) */
    do_realloc(i, false, 0, sel % 8 == 1 ? 0 : in_size(in));
    break;
  }
  case OP_REALLOCARRAY: {
    size_t i = pick(in), c, s;
    in_count_size(in, &c, &s);
    do_realloc(i, true, c, s);
    break;
  }
  case OP_FREE: case OP_FREE_SIZED: {
    size_t i = pick(in);
    if (model.count) do_free(i, op == OP_FREE ? 0 : 1); else tsr_free(NULL);
    break;
  }
  case OP_POSIX_MEMALIGN: case OP_ALIGNED_ALLOC: {
    size_t a = in_align(in);
    op_aligned(op == OP_POSIX_MEMALIGN, a, in_size(in));
    break;
  }
  case OP_REALLOC_CHAIN: {                               /* one block through several sizes */
    size_t i = pick(in);
    for (unsigned n = in_u8(in) % 16; n > 0 && i < model.count; n--) i = do_realloc(i, false, 0, in_size(in));
    break;
  }
  case OP_FREE_MANY: {                                    /* every k-th block, from the top or the bottom */
    uint8_t sel = in_u8(in);
    size_t step = 1 + (sel & 0x3f) % 7;
    int how = sel & 0x40 ? 1 : 0;
    if (sel & 0x80) {
      for (size_t k = model.count; k-- > 0;) if (k % step == 0) do_free(k, how);
    } else {
      for (size_t i = 0, k = 0; i < model.count; k++) { if (k % step == 0) do_free(i, how); else i++; }
    }
    break;
  }
  case OP_USABLE: {
    size_t i = pick(in);
    if (tsr_usable_size(NULL) != 0) fail("usable_size(NULL) != 0");
    if (model.count == 0) break;
    block_t *b = &model.live[i];
    size_t u = tsr_usable_size((void *)b->addr);
    if (u != b->usable) fail("usable_size(%#lx) changed from %zu to %zu", (unsigned long)b->addr, b->usable, u);
    break;
  }
  case OP_GOOD_SIZE: {            /* good_size is what malloc gives (the check build: exactly the request) */
    size_t size = in_size(in), good = tsr_good_size(size);
    if (good < size) fail("good_size(%zu) = %zu", size, good);
    if (size >= FAIL_MIN || !model_has_room(good)) break;
    errno = 0;
    void *p = tsr_malloc(size);
    if (p == NULL) { expect_enomem(false, "malloc", size); break; }
    size_t u = tsr_usable_size(p);
    if (!model.is_check_build && (u < good || (size <= EXACT_GOOD_MAX && u != good)))
      fail("malloc(%zu): usable size %zu, good_size %zu", size, u, good);
    model_add(p, size, 0, false, "malloc");
    break;
  }
  case OP_TRIM:
    tsr_trim();
    model_verify_all("after trim");
    break;
  case OP_CHECK_HEAP:
    if (tsr_check_heap() != 0) fail("tsr_check_heap found broken invariants");
    break;
  case OP_REMOTE_FREE: {                                  /* the worker frees blocks of this thread */
    size_t n = 1 + in_u8(in) % WORKER_BATCH;
    if (!worker_start()) break;
    worker.count = 0;
    while (worker.count < n && model.count > 0) worker.ptrs[worker.count++] = (void *)model_remove(pick(in), "before remote free").addr;
    if (worker.count) worker_run(WORK_FREE);
    break;
  }
  case OP_REMOTE_ALLOC: {                                 /* blocks of the worker's heap, freed here later */
    size_t n = 1 + in_u8(in) % WORKER_BATCH, size = in_size(in);
    if (size >= FAIL_MIN || !model_has_room(size * n) || model.count + n > LIVE_MAX || !worker_start()) break;
    worker.count = n;
    worker.size = size;
    worker_run(WORK_ALLOC);
    for (size_t k = 0; k < n; k++) {
      if (worker.ptrs[k] == NULL) {
        errno = worker.errnos[k];
        expect_enomem(false, "malloc on the worker", size);
        continue;
      }
      model_add(worker.ptrs[k], size, 0, false, "malloc on the worker");
    }
    break;
  }
  case OP_WORKER_EXIT:                                    /* its heap is abandoned, with blocks still live here */
    if (worker.running) worker_run(WORK_EXIT);
    break;
  case OP_FAULT: {                  /* in the next call, the OS refuses one request after the first n */
    uint8_t sel = in_u8(in);
    if (tsr_platform_fault_inject == NULL || depth > 0) break;
    /* One failure, not all that follow: a refused munmap leaves its range
     * mapped (accounted, but unreachable), so "all" leaks a few MiB per
     * call and a long run would end on libFuzzer's RSS limit. */
    model.may_fail = true;
    tsr_platform_fault_inject(sel % 8, 1);
    run_op(in, depth + 1);
    tsr_platform_fault_inject(-1, 0);
    model.may_fail = false;
    break;
  }
  }
}

/* FUZZ_LAST_INPUT=path: each input is written there before it runs. tessera
 * stops a corrupted process with a SIGABRT libFuzzer cannot catch (the
 * handler is reset first, on purpose), so libFuzzer saves no crash file;
 * this one is left holding the input that was running. */
static int last_input_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  model.is_check_build = strstr(tsr_version(), "check") != NULL;
  const char *path = getenv("FUZZ_LAST_INPUT");
  if (path != NULL && *path != '\0') {
    last_input_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (last_input_fd < 0) fail("cannot open FUZZ_LAST_INPUT %s", path);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (last_input_fd >= 0 && (ftruncate(last_input_fd, 0) != 0 || pwrite(last_input_fd, data, size, 0) != (ssize_t)size))
    fail("cannot write FUZZ_LAST_INPUT");
  input_t in = { data, size };
  model.input_start = (uintptr_t)data;
  model.input_end = (uintptr_t)data + (size ? size : 1);
  while (in.left > 0) run_op(&in, 0);
  model_verify_all("end of input");
  while (model.count > 0) do_free(model.count - 1, 0);
  if (tsr_check_heap() != 0) fail("tsr_check_heap found broken invariants at the end of the input");
  return 0;
}
