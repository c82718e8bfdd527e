/* record.c -- libtessera-record.so: a preload library that logs every call of
 * the C allocation API and forwards it to the next malloc (glibc by default).
 *
 * Per call: one TLS load, the forwarded call, and a few stores into the
 * thread's own buffer (format in ../trace_bin.h): no lock, no shared write,
 * no clock read but once per TBIN_TIME_BYTES of records, no loop. malloc
 * and free, nearly all calls, are compact records: 50 and 30 instructions
 * per call on larson, wrapper included (callgrind; 56 and 37 with their
 * rare cases inline and a pool test per free, 74 and 50 with version 2's
 * varints and subtracted addresses). A full buffer is appended to the
 * file as one chunk by its own thread: a writer thread took the kernel's
 * copy off the program's core, but cost 11-17% more CPU in all on this
 * 2-core machine under load (cross-core buffer traffic, wake-ups), and
 * 32 KiB to 1 MiB buffers measured alike (tools/record/overhead.md). Buffers are flushed at thread exit
 * (pthread key destructor) and at process exit (a destructor walks every
 * thread's buffer under that buffer's flush lock). After either, a thread
 * writes through (one chunk per call) so frees made by later destructors
 * are not lost. Model: KDE heaptrack's preload. Cost, measured by
 * overhead.py in this folder: see docs/tools.md.
 * Not recorded: forked children (their pid differs) and calls made while we
 * are inside a wrapped call (the real allocator calling itself).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "../trace_bin.h"

#define EXPORT __attribute__((visibility("default")))
#define TLS_IE __attribute__((tls_model("initial-exec")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define BUF_SIZE (128u << 10) /* per thread; a flush is one write of about this much */

/* ---- real functions and the bootstrap pool ----------------------------- */

/* dlsym allocates (its error buffer), before `real` is filled: serve those
 * calls from a static pool. Pool blocks are never freed. */
static _Alignas(64) char pool[64 << 10];
static size_t pool_used;
/* volatile: the compiler must not sink the store past dlsym (it can prove
 * dlsym cannot see a static whose address is never taken). */
static volatile int resolving;
static int resolved;

static void *pool_alloc(size_t n) {
  size_t need = (n + 15) & ~(size_t)15;
  if (pool_used + need + 16 > sizeof pool) return NULL;
  char *p = pool + pool_used + 16;
  memcpy(p - 16, &n, sizeof n);
  pool_used += need + 16;
  return p;
}
/* Usually the pool is never used (dlsym did not allocate): one load and a
 * branch. NULL and every address below the pool wrap to large values. */
static inline int in_pool(const void *p) {
  return UNLIKELY(pool_used != 0) && (uintptr_t)p - (uintptr_t)pool < sizeof pool;
}

static void resolve(void);

static void *boot_malloc(size_t n);
static void *boot_calloc(size_t k, size_t n);
static void *boot_realloc(void *p, size_t n);
static void *boot_reallocarray(void *p, size_t k, size_t n);
static void boot_free(void *p);
static int boot_posix_memalign(void **out, size_t a, size_t n);
static void *boot_aligned_alloc(size_t a, size_t n);
static void *boot_memalign(size_t a, size_t n);
static void *boot_valloc(size_t n);
static void *boot_pvalloc(size_t n);
static void boot_free_sized(void *p, size_t n);
static void boot_free_aligned_sized(void *p, size_t a, size_t n);

static struct {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void *(*reallocarray)(void *, size_t, size_t);
  void (*free)(void *);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*memalign)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
  void (*free_sized)(void *, size_t);
  void (*free_aligned_sized)(void *, size_t, size_t);
} real = {boot_malloc, boot_calloc, boot_realloc, boot_reallocarray, boot_free, boot_posix_memalign,
          boot_aligned_alloc, boot_memalign, boot_valloc, boot_pvalloc, boot_free_sized, boot_free_aligned_sized};


/* Until resolve() has run, each entry of `real` is a boot_* function that
 * resolves, then forwards (or serves dlsym from the pool). So the wrappers
 * call through `real` without testing whether it is filled. */
static void *boot_malloc(size_t n) {
  if (resolving) return pool_alloc(n);
  resolve();
  return real.malloc(n);
}
static void *boot_calloc(size_t k, size_t n) {
  /* The pool is static and never reused, so its bytes are still zero. */
  if (resolving) return (n && k > SIZE_MAX / n) ? NULL : pool_alloc(k * n);
  resolve();
  return real.calloc(k, n);
}
static void *boot_realloc(void *p, size_t n) {
  if (resolving) return pool_alloc(n);  /* p is NULL or a pool block here */
  resolve();
  return real.realloc(p, n);
}
static void boot_free(void *p) {
  if (resolving) return; /* dlsym's own frees leak */
  resolve();
  real.free(p);
}
#define BOOT(ret, name, params, args) \
  static ret boot_##name params {     \
    resolve();                        \
    return real.name args;            \
  }
BOOT(void *, reallocarray, (void *p, size_t k, size_t n), (p, k, n))
BOOT(int, posix_memalign, (void **out, size_t a, size_t n), (out, a, n))
BOOT(void *, aligned_alloc, (size_t a, size_t n), (a, n))
BOOT(void *, memalign, (size_t a, size_t n), (a, n))
BOOT(void *, valloc, (size_t n), (n))
BOOT(void *, pvalloc, (size_t n), (n))
#undef BOOT
static void boot_free_sized(void *p, size_t n) {
  resolve();
  real.free_sized(p, n);
}
static void boot_free_aligned_sized(void *p, size_t a, size_t n) {
  resolve();
  real.free_aligned_sized(p, a, n);
}

/* Stand-ins for functions the next malloc lacks (glibc before 2.40, 2.26).
 * They call `real`, not our wrappers: one call, one record. */
static void *fallback_reallocarray(void *p, size_t k, size_t n) {
  if (n && k > SIZE_MAX / n) {
    errno = ENOMEM;
    return NULL;
  }
  return real.realloc(p, k * n);
}
static void fallback_free_sized(void *p, size_t n) {
  (void)n;
  real.free(p);
}
static void fallback_free_aligned_sized(void *p, size_t a, size_t n) {
  (void)a;
  (void)n;
  real.free(p);
}

/* real.free when dlsym took blocks from the pool: they must not reach the
 * next free. Then, and only then, the check is paid per free (and such a
 * block's free is recorded, as a free of an address the trace never saw
 * allocated, which readers skip and count); the common free path tests
 * nothing (2 instructions less). */
static void (*next_free)(void *);
static void free_unless_pool(void *p) {
  if (!in_pool(p)) next_free(p);
}

static void resolve(void) {
  if (resolved || resolving) return;
  resolving = 1;
  /* Each entry is replaced only by what dlsym found: a NULL must not be
   * called by a thread that races us here. malloc, free, calloc and realloc
   * first: what the later lookups allocate (glibc before 2.34 allocates an
   * error message for each symbol it lacks) then comes from the next malloc,
   * and the pool serves only lookups that find what they look for. */
#define R(f, fallback)                         \
  do {                                         \
    void *f_ = dlsym(RTLD_NEXT, #f);           \
    if (!f_) f_ = (void *)(fallback);          \
    if (f_) *(void **)&real.f = f_;            \
  } while (0)
  R(malloc, NULL); R(free, NULL); R(calloc, NULL); R(realloc, NULL); R(reallocarray, fallback_reallocarray);
  R(posix_memalign, NULL); R(aligned_alloc, NULL); R(memalign, NULL); R(valloc, NULL); R(pvalloc, NULL);
  R(free_sized, fallback_free_sized); R(free_aligned_sized, fallback_free_aligned_sized);
#undef R
  resolving = 0;
  resolved = 1;
  if (real.free == boot_free || real.malloc == boot_malloc) {
    static const char m[] = "libtessera-record: cannot find the next malloc\n";
    if (write(2, m, sizeof m - 1) < 0) _exit(127);
    _exit(127);
  }
  /* Until here no thread has a state (recording starts after resolve), so
   * every free went through free_slow, which drops pool blocks itself. */
  if (pool_used) {
    next_free = real.free;
    real.free = free_unless_pool;
  }
}

/* ---- recording state ---------------------------------------------------- */

typedef struct tstate_s {
  /* The owner's per-call fields first: one cache line. */
  _Atomic(uint8_t *) cur;      /* the next free byte of buf; the owner publishes each record by
                                  storing it (release), so the exit flusher sees whole records */
  _Atomic(uint8_t *) slow_at;  /* rec_slow (a clock sample, a flush when past limit) runs when a
                                  record ends at or past this: the next TBIN_TIME_BYTES boundary,
                                  or buf (every record) when writing through */
  uint32_t count;              /* calls recorded since the owner's last flush, owner only */
  uint64_t last_addr, last_size;   /* delta bases (trace_bin.h), owner only */
  uint64_t seen;               /* the last clock_seen written (or sampled) by this thread */
  uint8_t *buf;
  _Atomic uint32_t limit;      /* at rec_slow, flush when bytes exceed this; 0: write through */
  uint32_t thread;
  uint64_t last_tsc;           /* delta base of time samples, owner only */
  atomic_flag lock;            /* serializes flushes: owner vs. the exit flusher */
  uint32_t flushed, flushed_count; /* written to the file so far: bytes, calls (under lock) */
  struct tstate_s *next;           /* all states, under rec.list_lock */
} tstate_t;

/* Room, past the limit, for the records up to the next KiB boundary (a
 * call's record and the TBIN_SEEN before it count as one) and a time sample. */
#define BUF_LIMIT (BUF_SIZE - TBIN_TIME_BYTES - 3 * TBIN_RECORD_MAX)
/* A thread's mapping: the state's page, then its chunk header (page-aligned),
 * the BUF_SIZE bytes of records, and room for a padding chunk behind them. */
#define STATE_MAP_SIZE (4096 + TBIN_CHUNK_HEADER_SIZE + BUF_SIZE + TBIN_ALIGN + TBIN_CHUNK_HEADER_SIZE)

static struct {
  _Atomic int active;          /* this process records */
  _Atomic int exiting;         /* process exit flush done: new states write through */
  int fd;
  _Atomic uint32_t threads;
  _Atomic uint64_t written;    /* calls written, for the end marker */
  _Atomic uint64_t file_end;   /* bytes written to the file: its size, as every write appends */
  _Atomic uint64_t falloc_end; /* the file's blocks are allocated up to here */
  pthread_key_t key;
  pthread_mutex_t list_lock;
  tstate_t *list;
} rec = {0, 0, -1, 0, 0, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER, NULL};

/* The latest clock sample of any thread. A thread that finds it changed
 * since its last call writes it down (TBIN_SEEN): a lower bound on the time
 * of its next calls, as tight as the other threads sample, which a thread
 * of its own cannot give after it slept or was preempted. Written every
 * TBIN_TIME_BYTES of some thread's records, read per call (one shared line
 * that rarely changes). Tried instead: the sampling thread "poking" the
 * others (their tls.state set to a marker that sends their next call to
 * the slow path), 3 instructions less per malloc and free; but a poke is
 * lost while the thread is inside a forwarded call, and prodcons -t 2/-t 4
 * traces then left 300 to 9000 frees unmatched by the merge, against 0 to
 * 120 with this compare. */
static _Alignas(64) _Atomic uint64_t clock_seen;

/* One thread-local struct, so a wrapper finds both pointers through one
 * GOT entry. */
static __thread struct {
  tstate_t *state;   /* NULL until the thread's first recorded call, and while a wrapped call
                        runs (rec_hold): one test on entry covers both */
  tstate_t *home;    /* the thread's state once created */
} tls TLS_IE;
static __thread int tls_creating TLS_IE;      /* in state_create: its own allocations pass through */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One writev with O_APPEND: chunks of different threads never interleave.
 * A short write (disk full) loses the rest; the decoder then reports a
 * truncated chunk rather than misreading it. */
static void write_all(const struct iovec *iov, int n) {
  ssize_t got;
  do got = writev(rec.fd, iov, n);
  while (got < 0 && errno == EINTR);
  if (got > 0) atomic_fetch_add_explicit(&rec.file_end, (uint64_t)got, memory_order_relaxed);
}

static void lock(tstate_t *s) {
  while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire)) sched_yield();
}
static void unlock(tstate_t *s) { atomic_flag_clear_explicit(&s->lock, memory_order_release); }

/* Reserve the file's blocks ahead of a full buffer's write that ends at
 * `end` from `start`: ext4's buffered write into blocks fallocate allocated costs about a
 * quarter less than delayed allocation, block by block (tools/record/
 * overhead.md). FALLOC_FL_KEEP_SIZE leaves the file's size alone; the
 * blocks past the end are given back at exit (trim_preallocation); a crash
 * leaves up to PREALLOC_STEP of them allocated past the end of the file.
 * One thread claims each step; a file system without fallocate is not asked
 * again. */
#define PREALLOC_STEP (8u << 20)
static void preallocate(uint64_t start, uint64_t end) {
  uint64_t fa = atomic_load_explicit(&rec.falloc_end, memory_order_relaxed);
  if (end <= fa) return;
  uint64_t from = fa >= start ? fa : start & ~(uint64_t)(TBIN_ALIGN - 1);
  uint64_t to = ((end + PREALLOC_STEP - 1) & ~(uint64_t)(PREALLOC_STEP - 1)) + PREALLOC_STEP;
  if (!atomic_compare_exchange_strong_explicit(&rec.falloc_end, &fa, to, memory_order_relaxed, memory_order_relaxed))
    return;
  if (fallocate(rec.fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(to - from)) != 0)
    atomic_store_explicit(&rec.falloc_end, UINT64_MAX, memory_order_relaxed);
}

/* Append s's unwritten records up to end as one chunk of `calls` calls.
 * With `align` (a full buffer, written from its start), the chunk header goes
 * in front of the records and a TBIN_PAD chunk behind them, so that one write
 * of whole pages ends the file at a multiple of TBIN_ALIGN: the kernel's
 * buffered write costs a quarter less when it starts and ends on page
 * boundaries (tools/record/overhead.md). The file's end is known from
 * rec.file_end; a write of another thread landing between our read of it and
 * our write only misaligns this chunk, and the next full buffer's padding
 * aligns the file again. Caller holds s->lock. */
static void flush_locked(tstate_t *s, uint8_t *end, uint32_t calls, int align) {
  uint32_t pos = (uint32_t)(end - s->buf);
  if (pos == s->flushed || rec.fd < 0 || !atomic_load_explicit(&rec.active, memory_order_relaxed)) return;
  tbin_chunk_t h = {TBIN_CHUNK, s->thread, pos - s->flushed, calls, __rdtsc(), mono_ns()};
  if (align && s->flushed == 0) {
    uint64_t at = atomic_load_explicit(&rec.file_end, memory_order_relaxed);
    uint32_t pad = (uint32_t)(-(at + sizeof h + pos) & (TBIN_ALIGN - 1));
    if (pad && pad < TBIN_CHUNK_HEADER_SIZE) pad += TBIN_ALIGN;
    preallocate(at, at + sizeof h + pos + pad);
    memcpy(s->buf - sizeof h, &h, sizeof h);
    if (pad) {
      tbin_chunk_t ph = {TBIN_PAD, 0, pad - TBIN_CHUNK_HEADER_SIZE, 0, 0, 0};
      memcpy(end, &ph, sizeof ph);
      memset(end + sizeof ph, 0, pad - sizeof ph);
    }
    struct iovec iov = {s->buf - sizeof h, sizeof h + pos + pad};
    write_all(&iov, 1);
  } else {
    struct iovec iov[2] = {{&h, sizeof h}, {s->buf + s->flushed, pos - s->flushed}};
    write_all(iov, 2);
  }
  s->flushed = pos;
  s->flushed_count += calls;
  atomic_fetch_add_explicit(&rec.written, calls, memory_order_relaxed);
}

/* At exit, with every writer held off: give back the blocks preallocate
 * reserved past the end (ext4 frees blocks past the size when the size is
 * set, even to the same value). */
static void trim_preallocation(void) {
  uint64_t fa = atomic_load_explicit(&rec.falloc_end, memory_order_relaxed);
  struct stat st;
  if (fa == 0 || fa == UINT64_MAX || fstat(rec.fd, &st) != 0) return;
  if (ftruncate(rec.fd, st.st_size) != 0) return;
  atomic_store_explicit(&rec.falloc_end, 0, memory_order_relaxed);
}

/* Owner: write the buffer out (aligned in the file if `align`) and start it
 * again. */
static void flush_owner(tstate_t *s, int align) {
  lock(s);
  flush_locked(s, atomic_load_explicit(&s->cur, memory_order_relaxed), s->count - s->flushed_count, align);
  s->flushed = s->flushed_count = 0;
  s->count = 0;
  atomic_store_explicit(&s->cur, s->buf, memory_order_release);
  unlock(s);
}

/* Calls among the whole records in [p, end): the exit flusher's count for a
 * thread that may still be recording (its `count` is the owner's alone).
 * Field lists per op, as in trace_bin.h: S size, A first address, V other
 * varint, B byte. */
static uint32_t count_calls(const uint8_t *p, const uint8_t *end) {
  static const char *const fields[TBIN_OP_COUNT] = {
      [TBIN_OP_MALLOC] = "SA", [TBIN_OP_CALLOC] = "VSA", [TBIN_OP_REALLOC] = "ASV",
      [TBIN_OP_REALLOCARRAY] = "AVSV", [TBIN_OP_FREE] = "A", [TBIN_OP_POSIX_MEMALIGN] = "BSA",
      [TBIN_OP_ALIGNED_ALLOC] = "BSA", [TBIN_OP_MEMALIGN] = "BSA", [TBIN_OP_VALLOC] = "SA",
      [TBIN_OP_PVALLOC] = "SA", [TBIN_OP_FREE_SIZED] = "AS", [TBIN_OP_FREE_ALIGNED_SIZED] = "ABS"};
  static const uint8_t compact_bytes[8] = {0, 1, 2, 3, 4, 5, 6, 8};
  uint32_t calls = 0;
  while (p < end) {
    unsigned b = *p++;
    if (!(b & TBIN_GENERAL)) {
      calls++;
      p += compact_bytes[(b >> TBIN_C_SIZE_SHIFT) & 7] + compact_bytes[b >> TBIN_C_ADDR_SHIFT];
      continue;
    }
    const char *f = b == TBIN_TIME || b == TBIN_SEEN ? "V" : fields[(b & TBIN_OP_MASK) >> TBIN_OP_SHIFT];
    if (b != TBIN_TIME && b != TBIN_SEEN) calls++;
    for (; *f; f++) {
      if ((*f == 'S' && (b & TBIN_F_SAME_SIZE)) || (*f == 'A' && (b & TBIN_F_SAME_ADDR))) continue;
      p += *f == 'B' ? 1 : (*p ? (unsigned)__builtin_ctz(*p) + 1 : 9);
    }
  }
  return calls;
}

/* Owner: append a time sample (TBIN_TIME record; not a call). */
static void rec_time(tstate_t *s) {
  uint8_t *p = atomic_load_explicit(&s->cur, memory_order_relaxed);
  uint64_t t = __rdtsc();
  *p++ = TBIN_TIME;
  p = tbin_put_varint(p, tbin_zigzag((int64_t)(t - s->last_tsc)));
  s->last_tsc = s->seen = t;
  atomic_store_explicit(&s->cur, p, memory_order_release);
  atomic_store_explicit(&clock_seen, t, memory_order_relaxed);
}

/* Owner: another thread sampled the clock since this one's last record. */
static __attribute__((noinline)) void rec_seen(tstate_t *s, uint64_t g) {
  uint8_t *p = atomic_load_explicit(&s->cur, memory_order_relaxed);
  *p++ = TBIN_SEEN;
  p = tbin_put_varint(p, tbin_zigzag((int64_t)(g - s->last_tsc)));
  s->seen = g;
  atomic_store_explicit(&s->cur, p, memory_order_release);
}

/* Owner, each time its records reach a TBIN_TIME_BYTES boundary (every
 * call when writing through): flush if the buffer is past its limit, then
 * sample the clock. One compare per call covers both, and a chunk always
 * starts with a time sample. Returns ret, so that the caller's result need
 * not live in a callee-saved register. */
static __attribute__((noinline)) void *rec_slow(tstate_t *s, void *ret) {
  uint32_t limit = atomic_load_explicit(&s->limit, memory_order_relaxed);
  if (atomic_load_explicit(&s->cur, memory_order_relaxed) - s->buf > (ptrdiff_t)limit) flush_owner(s, limit != 0);
  rec_time(s);
  uintptr_t pos = (uintptr_t)(atomic_load_explicit(&s->cur, memory_order_relaxed) - s->buf);
  atomic_store_explicit(&s->slow_at, limit ? s->buf + ((pos | (TBIN_TIME_BYTES - 1)) + 1) : s->buf,
                        memory_order_relaxed);
  return ret;
}

/* A thread's first call: a state from mmap (never from malloc). NULL while
 * this process does not record (before the constructor, after a fork,
 * without TESSERA_RECORD_FILE), so such calls come here every time, and for
 * the allocations pthread_setspecific makes while we are here. */
static __attribute__((noinline)) tstate_t *state_create(void) {
  if (!atomic_load_explicit(&rec.active, memory_order_relaxed) || tls_creating || tls.home) return NULL;
  tls_creating = 1;
  tstate_t *s = NULL;
  void *m = mmap(NULL, STATE_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m != MAP_FAILED) {
    s = m;
    s->buf = (uint8_t *)m + 4096 + TBIN_CHUNK_HEADER_SIZE;
    atomic_flag_clear(&s->lock);
    s->thread = atomic_fetch_add(&rec.threads, 1) + 1;
    int through = atomic_load(&rec.exiting);
    atomic_store(&s->cur, s->buf);
    atomic_store(&s->limit, through ? 0 : BUF_LIMIT);
    atomic_store(&s->slow_at, through ? s->buf : s->buf + TBIN_TIME_BYTES);
    rec_time(s);
    pthread_mutex_lock(&rec.list_lock);
    s->next = rec.list;
    rec.list = s;
    pthread_mutex_unlock(&rec.list_lock);
    pthread_setspecific(rec.key, s);
    tls.state = tls.home = s;
  }
  tls_creating = 0;
  return s;
}

/* Thread exit: flush, then write through for the thread's remaining calls
 * (other TLS destructors may still free). The state stays allocated: the
 * thread may record again until it is really gone. */
static void state_thread_exit(void *arg) {
  tstate_t *s = arg;
  atomic_store(&s->limit, 0);
  atomic_store(&s->slow_at, s->buf);
  flush_owner(s, 0);
}

/* The calling thread's state if this call is to be recorded; NULL if it is
 * nested in a wrapped call or this process does not record. */
static inline tstate_t *rec_enter(void) {
  tstate_t *s = tls.state;
  if (UNLIKELY(!s)) return state_create();
  return s;
}
/* Around the forwarded call: calls the real allocator makes of the API
 * while it runs find no state and pass through unrecorded. */
static inline void rec_hold(void) { tls.state = NULL; }
static inline void rec_release(tstate_t *s) { tls.state = s; }
/* rec_release(tls.home), returning it, after a call: the initial-exec
 * sequence by hand, so that the compiler loads the GOT entry again instead
 * of keeping it in a register saved across the call (a push, a pop and the
 * stack alignment: 3 instructions per malloc). */
static inline tstate_t *rec_release_home(void) {
  tstate_t *s;
  uintptr_t off;
  __asm__ volatile("movq tls@gottpoff(%%rip), %1\n\t"
                   "movq %%fs:%c2(%1), %0\n\t"
                   "movq %0, %%fs:(%1)"
                   : "=&r"(s), "=&r"(off)
                   : "i"(offsetof(__typeof__(tls), home))
                   : "memory");
  return s;
}

/* ---- encoding ----------------------------------------------------------- */
/* A record is built behind its first byte, whose codes or flags are known
 * only at the end. Per call: a few loads and stores, no loop, no clock read
 * (rec_slow reads it once per TBIN_TIME_BYTES of records), and a field equal
 * to the thread's previous one costs no byte. malloc and free, nearly every
 * call, take the compact form (rec_compact: one table load per field, the
 * field's length in the first byte); the other calls the general one. */

typedef struct cursor_s {
  tstate_t *s;
  uint8_t *start, *p;          /* the record's first byte, the next free byte */
  unsigned op;                 /* the first byte so far */
} cursor_t;

static inline void rec_begin(cursor_t *c, tstate_t *s, unsigned first) {
  uint64_t g = atomic_load_explicit(&clock_seen, memory_order_relaxed);
  if (UNLIKELY(g != s->seen)) rec_seen(s, g);
  c->s = s;
  c->start = atomic_load_explicit(&s->cur, memory_order_relaxed);
  c->p = c->start + 1;
  c->op = first;
}
/* Any address field but a general record's first (realloc's result). */
static inline void rec_addr(cursor_t *c, const void *a) {
  uint64_t v = (uint64_t)(uintptr_t)a;
  c->p = tbin_put_varint(c->p, tbin_addr_code(v, c->s->last_addr));
  c->s->last_addr = v;
}
static inline void rec_addr1(cursor_t *c, const void *a) {
  if ((uint64_t)(uintptr_t)a == c->s->last_addr) c->op |= TBIN_F_SAME_ADDR;
  else rec_addr(c, a);
}
static inline void rec_size(cursor_t *c, uint64_t v) {
  if (v == c->s->last_size) {
    c->op |= TBIN_F_SAME_SIZE;
    return;
  }
  c->p = tbin_put_varint(c->p, v);
  c->s->last_size = v;
}
static inline void rec_num(cursor_t *c, uint64_t v) { c->p = tbin_put_varint(c->p, v); }
static inline void rec_byte(cursor_t *c, unsigned v) { *c->p++ = (uint8_t)v; }
static inline unsigned log2_of(size_t a) { return a ? 63u - (unsigned)__builtin_clzll(a) : 0; }

/* Compact fields: code 0 (no byte) when equal to the thread's previous;
 * else 8 bytes stored, the field's length kept (trace_bin.h). */
static inline void rec_csize(cursor_t *c, uint64_t v) {
  if (v == c->s->last_size) return;
  uint64_t b = tbin_high_bit(v | 1);
  memcpy(c->p, &v, 8);
  c->p += tbin_compact[TBIN_CBYTES][b];
  c->op |= tbin_compact[TBIN_CSIZE][b];
  c->s->last_size = v;
}
static inline void rec_caddr(cursor_t *c, const void *a) {
  uint64_t v = (uint64_t)(uintptr_t)a;
  if (v == c->s->last_addr) return;
  uint64_t u = tbin_addr_code(v, c->s->last_addr);  /* not 0: v differs */
  uint64_t b = tbin_high_bit(u);
  memcpy(c->p, &u, 8);
  c->p += tbin_compact[TBIN_CBYTES][b];
  c->op |= tbin_compact[TBIN_CADDR][b];
  c->s->last_addr = v;
}

/* Returns ret: the wrapper's result passes through the rare slow call, so
 * it need not be kept in a callee-saved register (one push less). */
static inline void *rec_end(cursor_t *c, void *ret) {
  tstate_t *s = c->s;
  *c->start = (uint8_t)c->op;
  atomic_store_explicit(&s->cur, c->p, memory_order_release);
  s->count++;
  if (UNLIKELY(c->p >= atomic_load_explicit(&s->slow_at, memory_order_relaxed))) return rec_slow(s, ret);
  return ret;
}

/* ---- the wrapped API ---------------------------------------------------- */
/* Pattern: a call nested in a wrapped call (the real allocator calling
 * itself) or made while this process does not record goes straight
 * through; otherwise the real function runs under rec_hold and the call
 * is logged. Frees are logged before they are forwarded (the address may be
 * reused by another thread the moment it is freed), allocations after they
 * return. The free family forwards with a tail call, not under hold: no
 * malloc we know allocates in free, and half of all calls are frees. Pool
 * blocks (served while dlsym ran) are never freed. */

/* malloc of a thread without a state yet, or not recording. */
static __attribute__((noinline)) void *malloc_slow(size_t n) {
  tstate_t *s = rec_enter();
  if (!s) return real.malloc(n);
  rec_hold();
  void *r = real.malloc(n);
  rec_release(s);
  cursor_t c;
  rec_begin(&c, s, 0);
  rec_csize(&c, n);
  rec_caddr(&c, r);
  return rec_end(&c, r);
}

/* The rare case leaves by a tail call, and the state is found again after
 * the forwarded call rather than kept: only n lives across it (one saved
 * register). */
EXPORT void *malloc(size_t n) {
  if (UNLIKELY(!tls.state)) return malloc_slow(n);
  rec_hold();
  void *r = real.malloc(n);
  tstate_t *s = rec_release_home();
  cursor_t c;
  rec_begin(&c, s, 0);
  rec_csize(&c, n);
  rec_caddr(&c, r);
  return rec_end(&c, r);
}

EXPORT void *calloc(size_t k, size_t n) {
  tstate_t *s = rec_enter();
  if (!s) return real.calloc(k, n);
  rec_hold();
  void *r = real.calloc(k, n);
  cursor_t c;
  rec_begin(&c, s, TBIN_GENERAL_BYTE(TBIN_OP_CALLOC));
  rec_num(&c, k);
  rec_size(&c, n);
  rec_addr1(&c, r);
  rec_end(&c, NULL);
  rec_release(s);
  return r;
}

/* realloc of a pool block: move it to the real allocator (logged as malloc). */
static __attribute__((noinline)) void *pool_realloc(void *p, size_t n) {
  size_t old;
  memcpy(&old, (char *)p - 16, sizeof old);
  void *q = malloc(n);
  if (q) memcpy(q, p, old < n ? old : n);
  return q;
}

EXPORT void *realloc(void *p, size_t n) {
  if (UNLIKELY(in_pool(p))) return pool_realloc(p, n);
  tstate_t *s = rec_enter();
  if (!s) return real.realloc(p, n);
  rec_hold();
  void *r = real.realloc(p, n);
  cursor_t c;
  rec_begin(&c, s, TBIN_GENERAL_BYTE(TBIN_OP_REALLOC));
  rec_addr1(&c, p);
  rec_size(&c, n);
  rec_addr(&c, r);
  rec_end(&c, NULL);
  rec_release(s);
  return r;
}

EXPORT void *reallocarray(void *p, size_t k, size_t n) {
  if (UNLIKELY(in_pool(p))) return (n && k > SIZE_MAX / n) ? NULL : pool_realloc(p, k * n);
  tstate_t *s = rec_enter();
  if (!s) return real.reallocarray(p, k, n);
  rec_hold();
  void *r = real.reallocarray(p, k, n);
  cursor_t c;
  rec_begin(&c, s, TBIN_GENERAL_BYTE(TBIN_OP_REALLOCARRAY));
  rec_addr1(&c, p);
  rec_num(&c, k);
  rec_size(&c, n);
  rec_addr(&c, r);
  rec_end(&c, NULL);
  rec_release(s);
  return r;
}

/* free's rare cases: a pool block, a thread without a state yet (or not
 * recording), another thread's clock sample to note first. */
static __attribute__((noinline)) void free_slow(void *p) {
  if (in_pool(p)) return;
  tstate_t *s = rec_enter();
  if (s) {
    cursor_t c;
    rec_begin(&c, s, TBIN_C_FREE);
    rec_caddr(&c, p);
    rec_end(&c, NULL);
  }
  real.free(p);
}
/* free's record reached a TBIN_TIME_BYTES boundary. */
static __attribute__((noinline)) void free_then_slow(void *p, tstate_t *s) {
  rec_slow(s, NULL);
  real.free(p);
}

/* Half of all calls. Each rare case leaves by a tail call, so that p stays
 * in its argument register: no register to save (4 instructions less). */
EXPORT void free(void *p) {
  tstate_t *s = tls.state;
  if (UNLIKELY(!s || atomic_load_explicit(&clock_seen, memory_order_relaxed) != s->seen)) return free_slow(p);
  cursor_t c;
  c.s = s;
  c.start = atomic_load_explicit(&s->cur, memory_order_relaxed);
  c.p = c.start + 1;
  c.op = TBIN_C_FREE;
  rec_caddr(&c, p);
  *c.start = (uint8_t)c.op;
  atomic_store_explicit(&s->cur, c.p, memory_order_release);
  s->count++;
  if (UNLIKELY(c.p >= atomic_load_explicit(&s->slow_at, memory_order_relaxed))) return free_then_slow(p, s);
  real.free(p);
}

EXPORT void free_sized(void *p, size_t n) {
  if (UNLIKELY(in_pool(p))) return;
  tstate_t *s = rec_enter();
  if (s) {
    cursor_t c;
    rec_begin(&c, s, TBIN_GENERAL_BYTE(TBIN_OP_FREE_SIZED));
    rec_addr1(&c, p);
    rec_size(&c, n);
    rec_end(&c, NULL);
  }
  real.free_sized(p, n);
}

EXPORT void free_aligned_sized(void *p, size_t a, size_t n) {
  if (UNLIKELY(in_pool(p))) return;
  tstate_t *s = rec_enter();
  if (s) {
    cursor_t c;
    rec_begin(&c, s, TBIN_GENERAL_BYTE(TBIN_OP_FREE_ALIGNED_SIZED));
    rec_addr1(&c, p);
    rec_byte(&c, log2_of(a));
    rec_size(&c, n);
    rec_end(&c, NULL);
  }
  real.free_aligned_sized(p, a, n);
}

/* The aligned and page-aligned allocations: op, then the fields of
 * trace_bin.h (log2 of the alignment first for the aligned ones). */
static inline void rec_aligned(tstate_t *s, unsigned op, size_t a, size_t n, void *r) {
  cursor_t c;
  rec_begin(&c, s, TBIN_GENERAL_BYTE(op));
  if (op != TBIN_OP_VALLOC && op != TBIN_OP_PVALLOC) rec_byte(&c, log2_of(a));
  rec_size(&c, n);
  rec_addr1(&c, r);
  rec_end(&c, NULL);
  rec_release(s);
}

EXPORT int posix_memalign(void **out, size_t a, size_t n) {
  tstate_t *s = rec_enter();
  if (!s) return real.posix_memalign(out, a, n);
  rec_hold();
  int e = real.posix_memalign(out, a, n);
  rec_aligned(s, TBIN_OP_POSIX_MEMALIGN, a, n, e ? NULL : *out);
  return e;
}

EXPORT void *aligned_alloc(size_t a, size_t n) {
  tstate_t *s = rec_enter();
  if (!s) return real.aligned_alloc(a, n);
  rec_hold();
  void *r = real.aligned_alloc(a, n);
  rec_aligned(s, TBIN_OP_ALIGNED_ALLOC, a, n, r);
  return r;
}

EXPORT void *memalign(size_t a, size_t n) {
  tstate_t *s = rec_enter();
  if (!s) return real.memalign(a, n);
  rec_hold();
  void *r = real.memalign(a, n);
  rec_aligned(s, TBIN_OP_MEMALIGN, a, n, r);
  return r;
}

EXPORT void *valloc(size_t n) {
  tstate_t *s = rec_enter();
  if (!s) return real.valloc(n);
  rec_hold();
  void *r = real.valloc(n);
  rec_aligned(s, TBIN_OP_VALLOC, 0, n, r);
  return r;
}

EXPORT void *pvalloc(size_t n) {
  tstate_t *s = rec_enter();
  if (!s) return real.pvalloc(n);
  rec_hold();
  void *r = real.pvalloc(n);
  rec_aligned(s, TBIN_OP_PVALLOC, 0, n, r);
  return r;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* fork: the child is another process; it must not write into our file. */
static void atfork_child(void) {
  atomic_store(&rec.active, 0);
  tls.state = NULL;  /* the parent's buffer: state_create now says "not recording" */
  if (rec.fd >= 0) close(rec.fd);
  rec.fd = -1;
}

static void read_comm(char out[16]) {
  int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, out, 15);
  close(fd);
  for (ssize_t i = 0; i < n; i++)
    if (out[i] == '\n') out[i] = '\0';
}

/* Record this process only if TESSERA_RECORD_PID names it; without the
 * variable, the first process records and names itself in the variable,
 * so an exec in the same process records again and its children do not. */
__attribute__((constructor)) static void recorder_init(void) {
  resolve();
  const char *path = getenv("TESSERA_RECORD_FILE");
  if (!path || !path[0]) return;
  const char *want = getenv("TESSERA_RECORD_PID");
  pid_t pid = getpid();
  if (want && want[0] && atol(want) != (long)pid) return;
  if (!want || !want[0]) {
    char buf[24];
    snprintf(buf, sizeof buf, "%ld", (long)pid);
    setenv("TESSERA_RECORD_PID", buf, 1);  /* not recorded: rec.active is still 0 */
  }
  /* No O_TRUNC on a file that is already empty (the CLI's probe emptied
   * it): ext4 takes a truncation to 0 for "replace via truncate" and, at
   * close, starts writeback of the whole new trace in our process
   * (auto_da_alloc): 6 ms CPU and 25 ms wall per 150 MiB, and the next run's
   * truncation then waits for those pages (tools/record/overhead.md). */
  rec.fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  struct stat st;
  if (rec.fd >= 0 && fstat(rec.fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && ftruncate(rec.fd, 0) != 0) {
    close(rec.fd);
    rec.fd = -1;
  }
  if (rec.fd < 0) {
    char m[512];
    int n = snprintf(m, sizeof m, "libtessera-record: cannot write %s: %s\n", path, strerror(errno));
    if (write(2, m, (size_t)n) < 0) return;
    return;
  }
  tbin_header_t h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, TBIN_MAGIC, 8);
  h.version = TBIN_VERSION;
  h.header_size = TBIN_HEADER_SIZE;
  h.tsc0 = __rdtsc();
  h.mono_ns0 = mono_ns();
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  h.real_ns0 = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
  h.pid = (uint32_t)pid;
  read_comm(h.comm);
  struct iovec iov = {&h, sizeof h};
  write_all(&iov, 1);  /* rec.file_end = the header's size */
  pthread_key_create(&rec.key, state_thread_exit);
  pthread_atfork(NULL, NULL, atfork_child);
  atomic_store(&rec.active, 1);
}

/* Process exit: flush every thread's buffer (threads still running keep
 * appending; flush_locked only writes what they have published), mark the
 * end, and from now on write through. Every buffer's lock is held until the
 * end marker is written and the preallocated blocks are given back, so that
 * no write lands past the size that trim reads. */
__attribute__((destructor)) static void recorder_fini(void) {
  if (!atomic_load(&rec.active)) return;
  atomic_store(&rec.exiting, 1);
  pthread_mutex_lock(&rec.list_lock);
  for (tstate_t *s = rec.list; s; s = s->next) {
    lock(s);
    atomic_store(&s->limit, 0);
    atomic_store_explicit(&s->slow_at, s->buf, memory_order_relaxed);
    uint8_t *end = atomic_load_explicit(&s->cur, memory_order_acquire);
    flush_locked(s, end, count_calls(s->buf + s->flushed, end), 0);
  }
  tbin_chunk_t h = {TBIN_END, atomic_load(&rec.threads), 0, (uint32_t)atomic_load(&rec.written), __rdtsc(),
                    mono_ns()};
  struct iovec iov = {&h, sizeof h};
  write_all(&iov, 1);
  trim_preallocation();
  for (tstate_t *s = rec.list; s; s = s->next) unlock(s);
  pthread_mutex_unlock(&rec.list_lock);
}
