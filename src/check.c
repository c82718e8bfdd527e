/* check.c -- the checking layer. The release build keeps only
 * tsr_check_heap as an invariant walk of the caller's heap. The checking
 * build (TSR_CHECK=1, libtessera-check.so) wraps every allocation call:
 *
 *   core block = [pad canary | header 32 | left canary | user bytes | right canary]
 *
 * The header (check_header_t) is the block's checked metadata: the user
 * address XOR a key, the size, state, family and alignment, the depot ids
 * of the allocation and free stacks, the thread numbers, and a 16-bit
 * check over all of it. It always sits tsr_check_left_min bytes before the
 * user bytes (the pad canary, before it, exists only for alignments above
 * 16). A pointer is trusted only through the core's own page metadata
 * (header_of): the core page holding the would-be header must be in use,
 * the header's first word must be the pointer XOR the key, and the core
 * page must say a block starts where the header says the block starts; so
 * invalid frees of arbitrary addresses are diagnosed without trusting the
 * memory before the pointer, and no lock or table is touched. A free moves
 * the state LIVE -> FREEING with a compare-and-swap (a double free racing on
 * another thread sees the block not live), poisons the first bytes, then
 * writes the free stack and FREED. The canaries start at the exact ends of
 * the requested bytes, so 1 byte past an odd-sized block is caught. Freed
 * blocks are held, through per-thread batches, in per-thread FIFO
 * quarantines of TESSERA_CHECK_QUARANTINE bytes in all (see pending_flush);
 * their header, poison and redzones are
 * verified when they leave it, and the header's first word is cleared
 * before the core gets the block back. Guarded blocks (guard.c) live in
 * memory of their own, which no core page vouches for: they alone are kept
 * in the block table (open addressing keyed by user address, split in
 * shards with a lock each). The leak scan and the heap check walk the
 * core's pages for valid headers (tsr_check_blocks_each). Nothing here
 * allocates from the heap it checks, and reports are written only after
 * any shard lock and TSR_LOCK_CHECK are released.
 * Cost of a checked malloc/free pair: see docs/check.md ("Cost").
 * Not done here: guard pages (guard.c), the leak scan (leak.c).
 */
#define _GNU_SOURCE
#include "check.h"

#if !TSR_CHECK

/* Walk the calling thread's heap invariants; returns the number of broken ones. */
tsr_public size_t tsr_check_heap(void) {
  tsr_heap_t *heap = tsr_heap_get();
  if (heap == &tsr_heap_empty) return 0;
  tsr_heap_t *entered = tsr_heap_enter(heap);   /* no peer changes the queues meanwhile */
  size_t errors = 0;
  if (!tsr_span_check(heap)) { tsr_message("heap check: segment/span invariants broken (heap %u)", heap->id); errors++; }
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) {
    for (tsr_page_t *page = heap->queue[c].first; page != NULL; page = page->next) {
      uint32_t free_count = 0;
      for (tsr_block_t *b = page->free; b != NULL && free_count <= page->capacity;
           b = tsr_decode(heap->secret, b->next_encoded)) {
        uintptr_t off = (uintptr_t)b - (uintptr_t)page->area;
        if (off >= page->carved_size || off % page->block_size != 0) { errors++; break; }
        free_count++;
      }
      if (free_count > page->capacity) errors++;
      if (page->size_class != c || page->kind != TSR_PAGE_SMALL) errors++;
    }
  }
  tsr_heap_leave(entered);
  if (errors != 0) tsr_message("heap check: %zu invariant(s) broken", errors);
  return errors;
}

#else /* TSR_CHECK */

#include <cpuid.h>
#include <dlfcn.h>
#include <emmintrin.h>
#include <immintrin.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* From here on the tsr_* names are the checked public API (internal.h
 * renamed the core's to tsr_core_*); override.c, after us, aliases these. */
#undef tsr_malloc
#undef tsr_calloc
#undef tsr_realloc
#undef tsr_reallocarray
#undef tsr_free
#undef tsr_free_sized
#undef tsr_free_aligned_sized
#undef tsr_posix_memalign
#undef tsr_aligned_alloc
#undef tsr_usable_size
#undef tsr_alloc_aligned
void *tsr_core_alloc_aligned(size_t alignment, size_t size) tsr_hidden;
void *tsr_alloc_aligned(size_t alignment, size_t size) tsr_hidden;
void *tsr_check_alloc(size_t size, size_t alignment, int family, bool zero, uintptr_t fp) tsr_hidden;
void  tsr_check_free(void *p, int family, size_t size, size_t alignment, uintptr_t fp) tsr_hidden;

#define OWN_MAP_MAX 64
#define THREAD_MAX  ((size_t)1 << 20)

/* One shard of the block table (see shard_of): its own cache line. */
typedef struct shard_s {
  _Atomic int held;             /* the shard's lock (a leaf: see shard_of) */
  tsr_check_block_t *table;     /* open addressing, linear probing, keyed by user; NULL until first used */
  size_t capacity;              /* slots, a power of two */
  size_t count;                 /* slots holding a block */
  size_t tombstones;            /* slots of removed blocks (TABLE_TOMBSTONE) */
} __attribute__((aligned(64))) shard_t;
/* A removed block's slot: probes go on past it, an insertion reuses it.
 * Removal by backward shift walked (and rewrote) the rest of the cluster,
 * on lines of a table bigger than the caches: 8% of python-malloc (perf),
 * 5% of micro-hot. Never a user address (those are 16-byte aligned). */
#define TABLE_TOMBSTONE ((uintptr_t)1)
#define SHARD_FIRST_SLOTS ((size_t)1 << 12)   /* 128 KiB, touched as used: at 1024 slots pool-local ran at half load, its removals 5x dearer */

/* A quarantined block: its address (| RING_GUARDED for a guarded block)
 * and the cost it was counted with. */
typedef struct ring_entry_s { uintptr_t user; size_t cost; } ring_entry_t;
/* The segment map cannot tell: the last segment-sized slot of a huge
 * mapping (HUGE_TAIL) also covers whatever the kernel mapped after it, a
 * guarded block's own mapping included, whose header is not readable. */
#define RING_GUARDED ((uintptr_t)1)
/* A FIFO of quarantined blocks: each thread's own, and the orphans that
 * exited threads left (under TSR_LOCK_CHECK). Storage mapped on first use. */
typedef struct ring_s {
  ring_entry_t *entry;
  size_t capacity, head, count;   /* capacity: 0 or a power of two */
  size_t bytes;                   /* the entries' cost, exactly */
} ring_t;

static shard_t shards[TSR_CHECK_SHARD_COUNT];
#define SHARD_MAP_COUNT ((size_t)1 << (TSR_ADDRESS_BITS - TSR_SEGMENT_SHIFT))
#define SHARD_EMPTY (TSR_CHECK_SHARD_COUNT - 1)
static _Atomic uint8_t *shard_map;   /* per segment: shard index + 1 (0: none yet); mapped by check_init; see shard_of */

static struct {
  ring_t orphans;                /* under TSR_LOCK_CHECK: the quarantines of exited threads */
  size_t quarantine_limit;
  /* Lock-free: */
  _Atomic size_t orphan_count;  /* orphans.count as last stored under the lock */
  _Atomic size_t quarantine_total;    /* cost held by every quarantine, orphans included */
  _Atomic size_t quarantine_holders;  /* threads whose own quarantine holds blocks */
  _Atomic size_t live_bytes;    /* cost of the live blocks (block_cost), per-thread deltas added in: bounds the quarantine */
  tsr_check_thread_t *threads;  /* registry: every thread seen, in order */
  _Atomic size_t thread_count;
  struct { uintptr_t start, size; } own[OWN_MAP_MAX];   /* our mappings (leak scan skips them) */
  size_t redzone;               /* bytes of canary on each side, at least */
  _Atomic bool redzone_fixed;   /* a block was allocated: the redzone no longer changes */
  _Atomic bool aligned_used;    /* a core block of alignment above 16 was made: headers may sit past a block's start */
  size_t stack_depth;
  int log_fd;
  bool json;
  _Atomic bool ready;
} check;

_Atomic size_t tsr_check_error_count;
static __thread tsr_check_thread_t *thread_self;
static __thread bool thread_registering;

/* The poison as 32 bytes, copied over freed blocks (see poison_fill). */
static uint8_t poison_pattern[32];

static void patterns_init(void) { memset(poison_pattern, TSR_CHECK_POISON, sizeof poison_pattern); }

/* ---- our own memory -------------------------------------------------------------- */

void *tsr_check_map(size_t size, const char *name) {
  void *p = tsr_platform_map(size, NULL);
  if (p == NULL) return NULL;
  tsr_platform_name(p, size, name);
  for (size_t i = 0; i < OWN_MAP_MAX; i++) {
    if (__atomic_load_n(&check.own[i].start, __ATOMIC_RELAXED) == 0) {
      check.own[i].size = size;
      __atomic_store_n(&check.own[i].start, (uintptr_t)p, __ATOMIC_RELEASE);
      break;
    }
  }
  return p;
}

void tsr_check_unmap(void *p, size_t size) {
  for (size_t i = 0; i < OWN_MAP_MAX; i++)
    if (check.own[i].start == (uintptr_t)p) { __atomic_store_n(&check.own[i].start, 0, __ATOMIC_RELEASE); break; }
  tsr_platform_unmap(p, size);
}

bool tsr_check_is_own_memory(uintptr_t addr) {
  for (size_t i = 0; i < OWN_MAP_MAX; i++) {
    uintptr_t s = __atomic_load_n(&check.own[i].start, __ATOMIC_ACQUIRE);
    if (s != 0 && addr >= s && addr < s + check.own[i].size) return true;
  }
  return false;
}

/* ---- initialization --------------------------------------------------------------- */

/* The redzone is read once, before the first block: every block's layout
 * (and the start derived from it, tsr_check_base) depends on it. */
static void options_load(void) {
  if (!check.redzone_fixed) {
    long redzone = tsr_option_long(TSR_OPT_CHECK_REDZONE);
    check.redzone = redzone < 0 ? 0 : redzone > 4096 ? 4096 : (size_t)redzone;
    tsr_check_left_min = TSR_CHECK_HEADER_SIZE + ((check.redzone + 15) & ~(size_t)15);
  }
  long q = tsr_option_long(TSR_OPT_CHECK_QUARANTINE);
  check.quarantine_limit = q < 0 ? 0 : (size_t)q;
  long depth = tsr_option_long(TSR_OPT_CHECK_STACK_DEPTH);
  check.stack_depth = depth < 1 ? 1 : depth > TSR_CHECK_MAX_FRAMES ? TSR_CHECK_MAX_FRAMES : (size_t)depth;
  check.json = tsr_option_long(TSR_OPT_CHECK_JSON) != 0;
}

static void cpu_features_read(void);

/* Lazy, from the first call (possibly before libc is ready): raw mappings only. */
static tsr_cold void check_init(void) {
  tsr_init_process();
  tsr_lock(TSR_LOCK_CHECK);
  if (!atomic_load(&check.ready)) {
    options_load();
    patterns_init();
    cpu_features_read();
    check.log_fd = -1;
    check.threads = tsr_check_map(THREAD_MAX * sizeof(tsr_check_thread_t), "tessera check threads");
    shard_map = tsr_check_map(SHARD_MAP_COUNT, "tessera check shard map");
    if (check.threads == NULL || shard_map == NULL) {
      tsr_message("check: cannot map the checking layer's tables");
      tsr_platform_abort();
    }
    atomic_store(&check.ready, true);
  }
  tsr_unlock(TSR_LOCK_CHECK);
}

static inline void check_ready(void) {
  if (tsr_unlikely(!atomic_load_explicit(&check.ready, memory_order_acquire))) check_init();
}

/* ---- the block table: shards by address, each under its own lock ------------------------ */

/* A block's shard: blocks of one 32 MiB segment share one, the shard of the
 * thread that first allocated a checked block there (thread number modulo
 * 64), kept for the life of the process in shard_map. A segment serves one
 * thread's heap at a time, so threads mostly take their own shard's lock
 * (larson/2t spent a quarter of its time spinning on the one lock every
 * call took before), and a single-threaded program has one table: shards
 * picked by a hash of the segment gave python-malloc two big tables, 5 MB
 * more at its peak. Addresses of segments never assigned map to the last
 * shard, which stays empty, so a lookup there finds nothing. A shard lock
 * is a leaf: nothing else is taken while it is held, and TSR_LOCK_CHECK is
 * never held while taking it, so the two need no order (fork:
 * check_fork_prepare takes them all). */

static inline shard_t *shard_of(uintptr_t user) {
  uintptr_t seg = user >> TSR_SEGMENT_SHIFT;
  if (tsr_unlikely(seg >= SHARD_MAP_COUNT)) return &shards[SHARD_EMPTY];
  unsigned k = atomic_load_explicit(&shard_map[seg], memory_order_relaxed);
  return &shards[k != 0 ? k - 1 : SHARD_EMPTY];
}

/* The shard for a new block at user: its segment's, assigned to the
 * calling thread's on first use. */
static inline shard_t *shard_for_new(uintptr_t user, uint32_t thread) {
  uintptr_t seg = user >> TSR_SEGMENT_SHIFT;
  uint8_t k = atomic_load_explicit(&shard_map[seg], memory_order_relaxed);
  if (tsr_unlikely(k == 0)) {
    uint8_t mine = (uint8_t)((thread & ((1u << TSR_CHECK_SHARD_SHIFT) - 1)) + 1);
    if (atomic_compare_exchange_strong(&shard_map[seg], &k, mine)) k = mine;   /* else k holds the winner's */
  }
  return &shards[k - 1];
}

static inline void shard_lock(shard_t *s) {
  for (unsigned spins = 0;; spins++) {
    if (!atomic_load_explicit(&s->held, memory_order_relaxed) &&
        !atomic_exchange_explicit(&s->held, 1, memory_order_acquire)) return;
    if (spins > 64) tsr_platform_yield(); else __builtin_ia32_pause();
  }
}
static inline void shard_unlock(shard_t *s) { atomic_store_explicit(&s->held, 0, memory_order_release); }

static inline size_t slot_of(uintptr_t user, size_t capacity) { return tsr_check_slot_of(user, capacity); }

/* The slot of user in s, or NULL (shard lock held). */
static inline tsr_check_block_t *table_find(shard_t *s, uintptr_t user) {
  if (tsr_unlikely(s->table == NULL)) return NULL;
  size_t mask = s->capacity - 1;
  for (size_t i = slot_of(user, s->capacity);; i = (i + 1) & mask) {
    tsr_check_block_t *b = &s->table[i];
    if (b->user == user) return b;
    if (b->user == 0) return NULL;
  }
}

static void table_put_raw(tsr_check_block_t *table, size_t capacity, const tsr_check_block_t *block) {
  size_t mask = capacity - 1;
  for (size_t i = slot_of(block->user, capacity);; i = (i + 1) & mask) {
    if (table[i].user == 0 || table[i].user == block->user) { table[i] = *block; return; }
  }
}

/* When blocks and tombstones fill 0.7 of a shard's table it is rebuilt
 * without the tombstones: at twice the size when the blocks alone fill
 * more than half of it, else at the same size, with room for a fifth of it
 * in tombstones before the next rebuild (mapped here: no lock is taken).
 * Doubling once the blocks filled 0.35 made python-malloc's table twice as
 * big as with the backward-shift removal in about one run in two (86 MB of
 * RSS against 70). false: no memory for it. Shard lock held. */
static tsr_noinline bool table_grow(shard_t *s) {
  size_t capacity = s->capacity == 0 ? SHARD_FIRST_SLOTS
                    : (s->count + 1) * 2 > s->capacity ? s->capacity * 2 : s->capacity;
  tsr_check_block_t *table = tsr_check_map(capacity * sizeof(tsr_check_block_t), "tessera check blocks");
  if (table == NULL) return false;
  for (size_t i = 0; i < s->capacity; i++)
    if (s->table[i].user > TABLE_TOMBSTONE) table_put_raw(table, capacity, &s->table[i]);
  if (s->table != NULL) tsr_check_unmap(s->table, s->capacity * sizeof(tsr_check_block_t));
  s->table = table;
  s->capacity = capacity;
  s->tombstones = 0;
  return true;
}

/* The slot for user, to be written whole by the caller: the first empty
 * or tombstone slot of its probe, or its own entry met before that (a
 * block's entry leaves the table before the core gets its memory back, so
 * there is none); NULL: no memory for a bigger table (the block goes
 * unchecked). Shard lock held. */
static inline tsr_check_block_t *table_slot_for(shard_t *s, uintptr_t user) {
  if (tsr_unlikely((s->count + s->tombstones + 1) * 10 > s->capacity * 7) && !table_grow(s)) return NULL;
  size_t mask = s->capacity - 1;
  for (size_t i = slot_of(user, s->capacity);; i = (i + 1) & mask) {
    tsr_check_block_t *b = &s->table[i];
    if (b->user == 0) { s->count++; return b; }
    if (b->user == TABLE_TOMBSTONE) { s->count++; s->tombstones--; return b; }
    if (b->user == user) return b;
  }
}

static inline bool table_insert(shard_t *s, const tsr_check_block_t *block) {
  tsr_check_block_t *b = table_slot_for(s, block->user);
  if (b != NULL) *b = *block;
  return b != NULL;
}

/* The slot becomes a tombstone (its other fields zero: state 0 is neither
 * live nor freed). Shard lock held. */
static inline void table_remove(shard_t *s, tsr_check_block_t *b) {
  *b = (tsr_check_block_t){ .user = TABLE_TOMBSTONE };
  s->count--;
  s->tombstones++;
}

/* Start fetching user's home slot (no lock: a prefetch cannot fault, and
 * a stale table only wastes it). The slot is a cache miss on every call
 * (random by design) and each path has other work to overlap it with. */
static inline void table_prefetch(uintptr_t user) {
  shard_t *s = shard_of(user);
  tsr_check_block_t *table = __atomic_load_n(&s->table, __ATOMIC_RELAXED);
  size_t capacity = __atomic_load_n(&s->capacity, __ATOMIC_RELAXED);
  if (table != NULL) __builtin_prefetch(&table[slot_of(user, capacity)], 1);
}

/* Copy user's entry to *out and take it out of the table; false if absent. */
static bool table_take(uintptr_t user, tsr_check_block_t *out) {
  shard_t *s = shard_of(user);
  shard_lock(s);
  tsr_check_block_t *b = table_find(s, user);
  if (b != NULL) { *out = *b; table_remove(s, b); }
  shard_unlock(s);
  return b != NULL;
}

/* Copy user's entry to *out; false if absent. */
static bool table_get(uintptr_t user, tsr_check_block_t *out) {
  shard_t *s = shard_of(user);
  shard_lock(s);
  tsr_check_block_t *b = table_find(s, user);
  if (b != NULL) *out = *b;
  shard_unlock(s);
  return b != NULL;
}

tsr_check_block_t *tsr_check_shard_table(size_t shard, size_t *capacity) {
  *capacity = shards[shard].capacity;
  return shards[shard].table;
}

void tsr_check_shards_lock(void) { for (size_t i = 0; i < TSR_CHECK_SHARD_COUNT; i++) shard_lock(&shards[i]); }
void tsr_check_shards_unlock(void) { for (size_t i = TSR_CHECK_SHARD_COUNT; i-- > 0;) shard_unlock(&shards[i]); }

/* From the SIGSEGV handler: copy user's entry and mark it unprotected, if
 * its shard's lock can be had within a bounded wait (the faulting thread
 * may hold it). false: not found or not locked. */
bool tsr_check_block_unprotect(uintptr_t user, tsr_check_block_t *out) {
  shard_t *s = shard_of(user);
  bool locked = false;
  for (unsigned i = 0; i < (1u << 20) && !locked; i++) {
    locked = !atomic_exchange_explicit(&s->held, 1, memory_order_acquire);
    if (!locked) __builtin_ia32_pause();
  }
  if (!locked) return false;
  tsr_check_block_t *b = table_find(s, user);
  if (b != NULL) { b->flags |= TSR_BLOCK_UNPROTECTED; *out = *b; }
  shard_unlock(s);
  return b != NULL;
}

/* fork: every shard lock is held across it (none is ever held while taking
 * another lock, so taking them before the core's locks cannot deadlock). */
static void check_fork_prepare(void) { tsr_check_shards_lock(); }
static void check_fork_parent(void) { tsr_check_shards_unlock(); }
static void quarantine_fork_child(void);
static void check_fork_child(void) {
  for (size_t i = 0; i < TSR_CHECK_SHARD_COUNT; i++) atomic_store(&shards[i].held, 0);
  quarantine_fork_child();
}

/* ---- threads ------------------------------------------------------------------------ */

/* ---- /proc/self/maps, read raw (no stdio: may run before libc is ready) ---- */

static uintptr_t hex_field(const char **s) {
  uintptr_t v = 0;
  for (;; (*s)++) {
    char c = **s;
    if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
    else if ((c | 32) >= 'a' && (c | 32) <= 'f') v = v * 16 + (uintptr_t)((c | 32) - 'a' + 10);
    else return v;
  }
}

bool tsr_check_maps_each(bool (*fn)(const tsr_maps_entry_t *e, void *arg), void *arg) {
  int fd = tsr_platform_open_read("/proc/self/maps");
  if (fd < 0) return false;
  char buf[8192];
  size_t have = 0;
  bool stopped = false;
  while (!stopped) {
    long n = tsr_platform_read(fd, buf + have, sizeof buf - 1 - have);
    if (n <= 0) break;
    have += (size_t)n;
    char *line = buf, *nl;
    while (!stopped && (nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
      *nl = 0;
      tsr_maps_entry_t e;
      const char *s = line;
      e.lo = hex_field(&s);
      if (*s == '-') s++;
      e.hi = hex_field(&s);
      while (*s == ' ') s++;
      memcpy(e.perms, s, 4);
      e.perms[4] = 0;
      for (int field = 0; field < 4 && *s; field++) { while (*s && *s != ' ') s++; while (*s == ' ') s++; }
      e.name = s;
      if (!fn(&e, arg)) stopped = true;
      line = nl + 1;
    }
    have -= (size_t)(line - buf);
    memmove(buf, line, have);
    if (have + 1 >= sizeof buf) have = 0;   /* an absurd line: drop it */
  }
  tsr_platform_close(fd);
  return true;
}

typedef struct maps_hit_s { uintptr_t addr, lo, hi; char perms[5]; char name[256]; bool found; } maps_hit_t;

static bool maps_hit_fn(const tsr_maps_entry_t *e, void *arg) {
  maps_hit_t *hit = arg;
  if (hit->addr < e->lo || hit->addr >= e->hi) return true;
  hit->found = true; hit->lo = e->lo; hit->hi = e->hi;
  memcpy(hit->perms, e->perms, 5);
  tsr_format(hit->name, sizeof hit->name, "%s", e->name);
  return false;
}

/* The /proc/self/maps line containing addr. */
static void maps_find(uintptr_t addr, maps_hit_t *hit) {
  memset(hit, 0, sizeof *hit);
  hit->addr = addr;
  tsr_check_maps_each(maps_hit_fn, hit);
}

static tsr_cold tsr_check_thread_t *thread_register(void) {
  static tsr_check_thread_t unknown = { 0, 0, 0, 0 };
  if (thread_registering) return &unknown;   /* pthread_getattr_np allocating: no recursion */
  thread_registering = true;
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0), lo = 0, hi = 0;
  long tid = tsr_platform_thread_id();
  if (tid == tsr_platform_process_id()) {
    maps_hit_t hit;
    maps_find(sp, &hit);
    if (hit.found) { lo = hit.lo; hi = hit.hi; }
  } else {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      void *addr; size_t size;
      if (pthread_attr_getstack(&attr, &addr, &size) == 0) { lo = (uintptr_t)addr; hi = lo + size; }
      pthread_attr_destroy(&attr);
    }
    tsr_guard_thread_init();
  }
  size_t index = atomic_fetch_add(&check.thread_count, 1);
  tsr_check_thread_t *t = index < THREAD_MAX ? &check.threads[index] : &unknown;
  t->tid = tid;
  t->stack_lo = lo;
  t->stack_hi = hi;
  t->number = (uint32_t)index + 1;
  thread_self = t;
  thread_registering = false;
  return t;
}

bool tsr_check_threaded(void) { return atomic_load_explicit(&check.thread_count, memory_order_relaxed) > 1; }

tsr_check_thread_t *tsr_check_thread_self(void) {
  tsr_check_thread_t *t = thread_self;
  return tsr_likely(t != NULL) ? t : thread_register();
}

const tsr_check_thread_t *tsr_check_thread_at(size_t index) {
  size_t n = atomic_load(&check.thread_count);
  return index < n && index < THREAD_MAX ? &check.threads[index] : NULL;
}

const tsr_check_thread_t *tsr_check_thread_of_stack(uintptr_t addr) {
  for (size_t i = atomic_load(&check.thread_count); i-- > 0;) {
    if (i >= THREAD_MAX) continue;
    const tsr_check_thread_t *t = &check.threads[i];
    if (addr >= t->stack_lo && addr < t->stack_hi) return t;
  }
  return NULL;
}

/* Capture the caller's stack (fp: the public entry's own frame) into the
 * depot: the memo's stack inline (tsr_bt_memo_match), else stack_walk. */
static tsr_noinline uint32_t stack_walk(uintptr_t fp, uintptr_t pc0) {
  tsr_check_thread_t *self = tsr_check_thread_self();
  uintptr_t here = (uintptr_t)__builtin_frame_address(0);
  if (tsr_likely(self->stack_hi != 0 && fp >= here && fp < self->stack_hi)) {
    size_t n;
    uint32_t id = tsr_bt_capture(fp, here, self->stack_hi, check.stack_depth, &n);
    /* Short walks are normal in code without frame pointers; now and then
     * one may mean a library loaded since the code ranges were read. */
    static __thread unsigned short_walks;
    if (n < check.stack_depth && tsr_unlikely(++short_walks % 64 == 0) && tsr_bt_text_refresh())
      id = tsr_bt_capture(fp, here, self->stack_hi, check.stack_depth, &n);
    return id;
  }
  uintptr_t frames[TSR_CHECK_MAX_FRAMES];
  size_t n = tsr_bt_walk(frames, check.stack_depth, pc0, 0, 0, 0);
  return tsr_depot_put(frames, n);
}
/* A memo hit is a stack seen before, so its short walk needs no new look at
 * the code ranges; every 4096th capture still takes the full walk, and
 * every 64th short full walk refreshes them (rate-limited): about as often
 * as every 4096th short capture did before the memo hit was inline. */
static __attribute__((always_inline)) inline uint32_t stack_capture(uintptr_t fp, uintptr_t pc0) {
  static __thread unsigned captures;
  tsr_check_thread_t *self = thread_self;
  if (tsr_likely(self != NULL) && tsr_likely(++captures % 4096 != 0)) {
    uint32_t id = tsr_bt_memo_match(fp, (uintptr_t)__builtin_frame_address(0), self->stack_hi, check.stack_depth);
    if (tsr_likely(id != 0)) return id;
  }
  return stack_walk(fp, pc0);
}
#define CAPTURE() stack_capture((uintptr_t)__builtin_frame_address(0), (uintptr_t)__builtin_return_address(0))

/* ---- layout ------------------------------------------------------------------------- */

/* The header, then the left canary (TESSERA_CHECK_REDZONE rounded up to
 * 16): 48 bytes by default. The header no longer doubles as the canary (it
 * did when it held only two words and the table held the rest): a short
 * underflow damages the canary and leaves the header, with the block's
 * stacks, readable for the report. */
size_t tsr_check_left_min = TSR_CHECK_HEADER_SIZE + 16;

static inline size_t left_size(size_t alignment) {
  size_t left = tsr_check_left_min;
  if (alignment > 16) left = (left + alignment - 1) & ~(alignment - 1);
  return left;
}
static inline size_t right_size(size_t size) { return (((size + 15) & ~(size_t)15) - size) + check.redzone; }

size_t tsr_check_left_size(size_t alignment) { return left_size(alignment); }
size_t tsr_check_right_size(size_t size) { return right_size(size); }

/* Redzones are short: two overlapping 16-byte stores cover up to 32 bytes
 * (the right redzone at the default 16 is 16 to 31) without a memset call. */
static inline void canary_fill(uint8_t *p, size_t n) {
  if (n < 16 || n > 32) { memset(p, TSR_CHECK_CANARY, n); return; }
  __m128i pattern = _mm_set1_epi8((char)TSR_CHECK_CANARY);
  _mm_storeu_si128((__m128i *)p, pattern);
  _mm_storeu_si128((__m128i *)(p + n - 16), pattern);
}

/* Canary bytes after the user bytes: up to the guard page for guarded blocks. */
static size_t right_of(const tsr_check_block_t *b) {
  if (b->flags & TSR_BLOCK_GUARDED)
    return (size_t)(tsr_check_base(b) + tsr_guard_map_size(b) - TSR_OS_PAGE_SIZE - b->user - b->size);
  return tsr_check_right_size(b->size);
}

/* First byte in [p, p+n) that is not value, or NULL. */
static const uint8_t *bytes_damaged_slow(const uint8_t *p, size_t n, uint8_t value) {
  uint64_t word = 0x0101010101010101ULL * value;
  size_t i = 0;
  while (i < n && ((uintptr_t)(p + i) & 7) != 0) { if (p[i] != value) return p + i; i++; }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != word) break;
  }
  for (; i < n; i++) if (p[i] != value) return p + i;
  return NULL;
}
/* Redzones are a few words: compared inline, the last word overlapping. */
static inline bool small_intact(const uint8_t *p, size_t n, uint8_t value) {
  uint64_t word = 0x0101010101010101ULL * value, acc = 0, w;
  if (n < 8) {
    for (size_t i = 0; i < n; i++) acc |= p[i] ^ value;
    return acc == 0;
  }
  for (size_t i = 0; i + 8 <= n; i += 8) { memcpy(&w, p + i, 8); acc |= w ^ word; }
  memcpy(&w, p + n - 8, 8);
  return (acc | (w ^ word)) == 0;
}

/* Longer ranges (poison, guarded blocks' padding): 16 bytes per load with
 * SSE2, which every x86-64 has; libc's memcmp against a pattern cost a call
 * and twice the loads (pool-local: a sixth of the run in memcmp). Four
 * loads per step: the loop's own counting was a third of its instructions
 * (callgrind, micro-hot). */
static inline __m128i differs16(const uint8_t *p, __m128i pattern) {
  return _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), pattern);
}
static inline bool wide_intact(const uint8_t *p, size_t n, uint8_t value) {
  __m128i pattern = _mm_set1_epi8((char)value), acc = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 64 <= n; i += 64)
    acc = _mm_or_si128(acc, _mm_or_si128(_mm_or_si128(differs16(p + i, pattern), differs16(p + i + 16, pattern)),
                                         _mm_or_si128(differs16(p + i + 32, pattern), differs16(p + i + 48, pattern))));
  for (; i + 16 <= n; i += 16) acc = _mm_or_si128(acc, differs16(p + i, pattern));
  if (i < n) acc = _mm_or_si128(acc, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + n - 16)), pattern));
  return _mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) == 0xffff;
}

/* The same 32 bytes per load where the CPU and the kernel have AVX2
 * (check_init): a freed block's poison, verified as it leaves the
 * quarantine, is the longest range a checked pair reads (256 bytes), and
 * half the loads and compares took 30 of a pair's instructions off
 * (callgrind, micro-hot). Out of line: the rest of the library is built
 * for the x86-64 baseline. */
static bool have_avx2;
__attribute__((target("avx2"))) static tsr_noinline bool wide_intact_avx2(const uint8_t *p, size_t n, uint8_t value) {
  __m256i pattern = _mm256_set1_epi8((char)value), acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)), pattern);
    __m256i b = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i + 32)), pattern);
    __m256i c = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i + 64)), pattern);
    __m256i d = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i + 96)), pattern);
    acc = _mm256_or_si256(acc, _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)));
  }
  for (; i + 32 <= n; i += 32) acc = _mm256_or_si256(acc, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)), pattern));
  if (i < n) acc = _mm256_or_si256(acc, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + n - 32)), pattern));
  return _mm256_testz_si256(acc, acc);
}
static void cpu_features_read(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX)) return;
  unsigned xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 6) != 6) return;   /* the kernel saves the YMM state */
  if (__get_cpuid_max(0, NULL) < 7) return;
  __cpuid_count(7, 0, a, b, c, d);
  have_avx2 = (b & bit_AVX2) != 0;
}

static inline const uint8_t *bytes_damaged(const uint8_t *p, size_t n, uint8_t value) {
  bool intact = n < 16 ? small_intact(p, n, value) : n >= 64 && have_avx2 ? wide_intact_avx2(p, n, value)
                                                                          : wide_intact(p, n, value);
  return intact ? NULL : bytes_damaged_slow(p, n, value);
}
static const uint8_t *bytes_damaged_last(const uint8_t *p, size_t n, uint8_t value) {
  for (size_t i = n; i-- > 0;) if (p[i] != value) return p + i;
  return NULL;
}

/* ---- the in-block header ---------------------------------------------------------------- */

/* A core block's checked metadata, TSR_CHECK_HEADER_SIZE bytes at
 * user - tsr_check_left_min. The first word is written last at allocation
 * (release) and cleared before the core gets the block back, so a header
 * whose first word is its own user address XOR the key is a checked block
 * (live or quarantined). The check covers every field but the state (which
 * a free changes with one compare-and-swap): a wild write into the header,
 * or an underflow past the left canary, is seen as damage instead of
 * trusted. */
typedef struct check_header_s {
  _Atomic uintptr_t user_key;   /* user ^ TSR_CHECK_KEY; 0 once released */
  _Atomic uint64_t info;        /* size (48 bits) | state << 48 | family << 52 | align_shift << 56 */
  uint64_t stacks;              /* depot ids: allocation | free << 32 */
  uint64_t tail;                /* allocating thread (24 bits) | freeing thread << 24 | check << 48 */
} check_header_t;
_Static_assert(sizeof(check_header_t) == TSR_CHECK_HEADER_SIZE, "the header is TSR_CHECK_HEADER_SIZE bytes");
#define STATE_FREEING 3                              /* between a free's compare-and-swap and its last write */
#define INFO_SIZE_MASK (((uint64_t)1 << 48) - 1)
#define INFO_STATE_MASK ((uint64_t)15 << 48)
#define TAIL_THREADS_MASK (((uint64_t)1 << 48) - 1)

static inline uint64_t info_make(size_t size, unsigned state, unsigned family, unsigned shift) {
  return (uint64_t)size | (uint64_t)state << 48 | (uint64_t)family << 52 | (uint64_t)shift << 56;
}
static inline unsigned info_state(uint64_t info) { return (unsigned)(info >> 48) & 15; }
static inline unsigned info_family(uint64_t info) { return (unsigned)(info >> 52) & 15; }
static inline unsigned info_shift(uint64_t info) { return (unsigned)(info >> 56); }
static inline uint64_t info_with_state(uint64_t info, unsigned state) { return (info & ~INFO_STATE_MASK) | (uint64_t)state << 48; }

/* The header's 16-bit check (its top 16 bits of tail), over what the
 * allocation wrote: the user address, the info word but its state, the
 * allocation stack and thread. The free's fields (free stack, freeing
 * thread) are outside it, so a free writes them and its state without a
 * new check, and the quarantine's exit trusts the info word by the cost it
 * was queued with (quarantine_leave): of four checks a malloc/free pair
 * computed, each on the way of the next step, two are left (micro-hot
 * ran 9% faster with none at all). While the block is live, its free
 * fields must be zero (header_sane), so a write there is still seen.
 * One multiply: the fields are folded at different rotations (so no two
 * share their low bits), and the product's top 16 bits depend on every bit
 * below them; a wild write changing a field is missed about once in 65536. */
#define HEADER_ALLOC_STACK_MASK 0xffffffffULL   /* stacks: the allocation's depot id; the free's above */
#define HEADER_ALLOC_THREAD_MASK 0xffffffULL    /* tail: the allocating thread; the freeing one above */
static inline uint64_t header_sum(uintptr_t user, uint64_t info, uint64_t stacks, uint64_t tail) {
  uint64_t x = (user ^ TSR_CHECK_KEY) ^ (info & ~INFO_STATE_MASK) ^ ((stacks & HEADER_ALLOC_STACK_MASK) << 21) ^
               ((tail & HEADER_ALLOC_THREAD_MASK) << 9);
  return (x * 0x9e3779b97f4a7c15ULL) >> 48;
}
static inline bool header_sane(uintptr_t user, uint64_t info, uint64_t stacks, uint64_t tail) {
  if (info_state(info) == TSR_BLOCK_LIVE && ((stacks >> 32) | (tail & TAIL_THREADS_MASK & ~HEADER_ALLOC_THREAD_MASK)) != 0)
    return false;   /* a live block has no free fields yet */
  return (tail >> 48) == header_sum(user, info, stacks, tail);
}
static inline check_header_t *header_at(uintptr_t user) { return (check_header_t *)(user - tsr_check_left_min); }

/* Write every word but the first; info last (release: a reader that sees
 * the new state sees the rest). tail: the thread numbers, check added here. */
static inline void header_store(check_header_t *h, uintptr_t user, uint64_t info, uint64_t stacks, uint64_t tail) {
  tail &= TAIL_THREADS_MASK;
  h->stacks = stacks;
  h->tail = tail | header_sum(user, info, stacks, tail) << 48;
  atomic_store_explicit(&h->info, info, memory_order_release);
}

/* A live header's free: its free stack and thread, then FREED (release).
 * The check stays valid (it does not cover these). */
static inline void header_store_free(check_header_t *h, uint64_t info, uint64_t stacks, uint64_t tail, uint32_t stack,
                                     uint32_t thread) {
  h->stacks = (stacks & HEADER_ALLOC_STACK_MASK) | (uint64_t)stack << 32;
  h->tail = (tail & ~(TAIL_THREADS_MASK & ~HEADER_ALLOC_THREAD_MASK)) | ((uint64_t)thread & HEADER_ALLOC_THREAD_MASK) << 24;
  atomic_store_explicit(&h->info, info_with_state(info, TSR_BLOCK_FREED), memory_order_release);
}

/* A copy of the header as a block; false when its check fails (written
 * over) or its state is no state. A block being freed (FREEING) is taken
 * as it is: its free stack may not be written yet. */
static bool header_read(const check_header_t *h, uintptr_t user, tsr_check_block_t *b) {
  uint64_t info = atomic_load_explicit(&h->info, memory_order_acquire), stacks = h->stacks, tail = h->tail;
  unsigned state = info_state(info);
  if (!header_sane(user, info, stacks, tail) || (state != TSR_BLOCK_LIVE && state != TSR_BLOCK_FREED && state != STATE_FREEING))
    return false;
  if (state == STATE_FREEING) stacks &= HEADER_ALLOC_STACK_MASK, tail &= HEADER_ALLOC_THREAD_MASK;
  *b = (tsr_check_block_t){ .user = user, .size = info & INFO_SIZE_MASK, .state = state, .family = info_family(info),
                            .align_shift = info_shift(info), .alloc_stack = (uint32_t)stacks,
                            .free_stack = (uint32_t)(stacks >> 32), .alloc_thread = (uint32_t)tail & 0xffffff,
                            .free_thread = (uint32_t)(tail >> 24) & 0xffffff };
  return true;
}

/* Redzones of a core block (not guarded), the common case of block_verify
 * inlined: the pad before the header (aligned blocks), the canary between
 * the header and the user bytes, the canary after them. */
/* A canary of 16 to 32 bytes (the left one and the right one at the
 * default redzone) in two overlapping 16-byte compares, inline: through
 * bytes_damaged, a call each, the redzones were a sixth of a checked pair's
 * instructions (callgrind, micro-hot). */
static inline bool canary_intact(const uint8_t *p, size_t n) {
  if (tsr_likely(n >= 16 && n <= 32)) {
    __m128i pattern = _mm_set1_epi8((char)TSR_CHECK_CANARY);
    __m128i acc = _mm_or_si128(_mm_xor_si128(_mm_loadu_si128((const __m128i *)p), pattern),
                               _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + n - 16)), pattern));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) == 0xffff;
  }
  return n == 0 || bytes_damaged(p, n, TSR_CHECK_CANARY) == NULL;
}

static inline bool redzones_intact(uintptr_t base, uintptr_t user, size_t size) {
  uintptr_t h = user - tsr_check_left_min;
  if (tsr_unlikely(h > base) && bytes_damaged((const uint8_t *)base, h - base, TSR_CHECK_CANARY) != NULL) return false;
  return canary_intact((const uint8_t *)h + TSR_CHECK_HEADER_SIZE, tsr_check_left_min - TSR_CHECK_HEADER_SIZE) &&
         canary_intact((const uint8_t *)user + size, right_size(size));
}
static inline bool block_intact(const tsr_check_block_t *b) { return redzones_intact(tsr_check_base(b), b->user, b->size); }

/* The core block that contains addr, or 0 (tessera's own heap layout);
 * *size: its bytes. */
static uintptr_t core_block_of(uintptr_t a, size_t *size) {
  uint8_t kind = tsr_segmap_kind(a);
  if (kind == TSR_SEGMAP_SEGMENT) {
    tsr_page_t *page = tsr_page_of((void *)a);
    if (tsr_page_owner(page) == 0 || page->area == NULL || page->block_size == 0) return 0;
    uintptr_t area = (uintptr_t)page->area;
    if (a < area) return 0;
    *size = page->block_size;
    if (page->kind == TSR_PAGE_LARGE) return a < area + page->block_size ? area : 0;
    if (page->kind != TSR_PAGE_SMALL || a - area >= page->carved_size) return 0;
    return area + (a - area) / page->block_size * page->block_size;
  }
  if (kind == TSR_SEGMAP_HUGE || kind == TSR_SEGMAP_HUGE_TAIL) {
    uintptr_t slot = a >> TSR_SEGMENT_SHIFT;
    for (int i = 0; i < 1 << 16 && slot > 0 && tsr_segmap[slot & (TSR_SEGMAP_COUNT - 1)] == TSR_SEGMAP_HUGE_TAIL; i++) slot--;
    if (tsr_segmap[slot & (TSR_SEGMAP_COUNT - 1)] != TSR_SEGMAP_HUGE) return 0;
    tsr_segment_t *segment = (tsr_segment_t *)(slot << TSR_SEGMENT_SHIFT);
    uintptr_t block = (uintptr_t)segment->huge_block;
    *size = segment->huge_size;
    return a >= block && a < block + segment->huge_size ? block : 0;
  }
  return 0;
}

/* The header of user when user is the start of a checked core block, live
 * or quarantined; else NULL. Trusted through the core's page metadata: the
 * would-be header must lie in the carved part of a page in use (so reading
 * it cannot fault), its first word must be user XOR the key, and the core
 * page must say a block starts where the header's alignment puts the
 * block's start (the divisibility test of the core's own free). */
static __attribute__((always_inline)) inline check_header_t *header_of(uintptr_t user) {
  uintptr_t hp = user - tsr_check_left_min;
  if (tsr_unlikely((user & 15) != 0 || user < tsr_check_left_min)) return NULL;
  uint8_t kind = tsr_segmap_kind(hp);
  if (tsr_likely(kind == TSR_SEGMAP_SEGMENT)) {
    if (tsr_segmap_kind(user) != TSR_SEGMAP_SEGMENT) return NULL;   /* not the same segment */
    tsr_page_t *page = tsr_page_of((void *)hp);
    uintptr_t area = (uintptr_t)page->area;
    if (tsr_unlikely(tsr_page_owner(page) == 0 || hp < area)) return NULL;
    uint8_t page_kind = page->kind;
    size_t extent = page_kind == TSR_PAGE_SMALL ? __atomic_load_n(&page->carved_size, __ATOMIC_RELAXED)
                    : page_kind == TSR_PAGE_LARGE ? page->block_size : 0;
    if (tsr_unlikely(hp - area >= extent || hp - area + TSR_CHECK_HEADER_SIZE > extent)) return NULL;
    check_header_t *h = (check_header_t *)hp;
    if (tsr_unlikely(atomic_load_explicit(&h->user_key, memory_order_acquire) != (user ^ TSR_CHECK_KEY))) return NULL;
    unsigned shift = info_shift(atomic_load_explicit(&h->info, memory_order_relaxed));
    if (tsr_likely(shift == 4)) {
      if (tsr_unlikely(page_kind == TSR_PAGE_LARGE ? hp != area : (hp - area) * page->block_magic >= page->block_magic)) return NULL;
      return h;
    }
    size_t alignment = shift < 64 ? (size_t)1 << shift : 0;
    uintptr_t base = user - left_size(alignment);
    if (alignment == 0 || base < area || base > hp) return NULL;
    if (page_kind == TSR_PAGE_LARGE ? base != area : (base - area) * page->block_magic >= page->block_magic) return NULL;
    return h;
  }
  if (kind == TSR_SEGMAP_HUGE || kind == TSR_SEGMAP_HUGE_TAIL) {
    size_t size;
    uintptr_t block = core_block_of(hp, &size);
    if (block == 0 || hp + TSR_CHECK_HEADER_SIZE > block + size) return NULL;
    check_header_t *h = (check_header_t *)hp;
    if (atomic_load_explicit(&h->user_key, memory_order_acquire) != (user ^ TSR_CHECK_KEY)) return NULL;
    unsigned shift = info_shift(atomic_load_explicit(&h->info, memory_order_relaxed));
    size_t alignment = shift < 64 ? (size_t)1 << shift : 0;
    return alignment != 0 && user - left_size(alignment) == block ? h : NULL;
  }
  return NULL;
}

/* The checked block whose header lies in the core block [base, base +
 * size): at base for blocks of alignment 16; past a pad for aligned ones,
 * looked for 16 bytes at a time when such blocks were ever made. fn gets
 * the first found; returns fn's answer (true when none is found). */
static bool core_block_probe(uintptr_t base, size_t size, bool aligned, bool (*fn)(check_header_t *h, uintptr_t user, void *arg),
                             void *arg) {
  size_t left = tsr_check_left_min;
  for (uintptr_t pos = base; pos + left <= base + size; pos += 16) {
    check_header_t *h = (check_header_t *)pos;
    uintptr_t user = pos + left;
    if (atomic_load_explicit(&h->user_key, memory_order_acquire) == (user ^ TSR_CHECK_KEY) && header_of(user) == h)
      return fn(h, user, arg);
    if (!aligned) break;
  }
  return true;
}

typedef struct walk_s {
  bool (*fn)(check_header_t *h, uintptr_t user, void *arg);
  void *arg;
  bool aligned, stopped;
} walk_t;

static void walk_huge(tsr_segment_t *segment, void *arg) {
  walk_t *w = arg;
  if (!w->stopped && !core_block_probe((uintptr_t)segment->huge_block, segment->huge_size, w->aligned, w->fn, w->arg))
    w->stopped = true;
}

/* Every core block with a valid header (live, quarantined or being freed),
 * heap by heap, segment by segment, page by page (the layout visit.c
 * walks), then the huge blocks. fn returns false to stop; it runs under
 * TSR_LOCK_HEAPS or TSR_LOCK_HUGE and takes no lock. Other threads may
 * change headers meanwhile: fn re-reads what it relies on. */
static bool core_blocks_walk(bool (*fn)(check_header_t *h, uintptr_t user, void *arg), void *arg) {
  walk_t w = { fn, arg, atomic_load(&check.aligned_used), false };
  tsr_lock(TSR_LOCK_HEAPS);
  for (tsr_heap_t *heap = tsr_heap_all; heap != NULL && !w.stopped; heap = heap->all_next) {
    for (tsr_segment_t *segment = heap->segments; segment != NULL && !w.stopped; segment = segment->next) {
      tsr_page_t *slices = (tsr_page_t *)segment;
      for (size_t i = 1; i < TSR_SLICE_COUNT && !w.stopped;) {
        tsr_page_t *page = &slices[i];
        uint32_t n = page->slice_count;
        if (n == 0 || i + n > TSR_SLICE_COUNT) n = 1;
        i += n;
        if (tsr_page_owner(page) == 0 || page->area == NULL || page->block_size == 0) continue;
        uintptr_t area = (uintptr_t)page->area;
        size_t bs = page->block_size;
        if (page->kind == TSR_PAGE_LARGE) {
          if (!core_block_probe(area, bs, w.aligned, fn, arg)) w.stopped = true;
        } else if (page->kind == TSR_PAGE_SMALL) {
          size_t carved = __atomic_load_n(&page->carved_size, __ATOMIC_RELAXED);
          for (size_t off = 0; off + bs <= carved && !w.stopped; off += bs)
            if (!core_block_probe(area + off, bs, w.aligned, fn, arg)) w.stopped = true;
        }
      }
    }
  }
  tsr_unlock(TSR_LOCK_HEAPS);
  if (!w.stopped) tsr_huge_each(walk_huge, &w);
  return !w.stopped;
}

typedef struct find_s { tsr_check_block_t *out; bool found; } find_t;
static bool find_fn(check_header_t *h, uintptr_t user, void *arg) {
  find_t *f = arg;
  f->found = header_read(h, user, f->out);
  return false;
}

bool tsr_check_find(uintptr_t addr, tsr_check_block_t *out) {
  check_ready();
  uintptr_t user = 0;
  tsr_lock(TSR_LOCK_CHECK);
  bool guarded = tsr_guard_lookup(addr, &user);
  tsr_unlock(TSR_LOCK_CHECK);
  if (guarded) return table_get(user, out);
  size_t size = 0;
  uintptr_t base = core_block_of(addr, &size);
  if (base == 0) return false;
  find_t f = { out, false };
  core_block_probe(base, size, atomic_load(&check.aligned_used), find_fn, &f);
  return f.found;
}

bool tsr_check_core_get(uintptr_t user, tsr_check_block_t *out) {
  check_header_t *h = header_of(user);
  return h != NULL && header_read(h, user, out);
}

/* user's block, wherever it is kept: its header, or the table for a
 * guarded block. *damaged: user has a header whose check fails. */
static bool block_get(uintptr_t user, tsr_check_block_t *out, bool *damaged) {
  *damaged = false;
  check_header_t *h = header_of(user);
  if (h != NULL) {
    if (header_read(h, user, out)) return true;
    *damaged = true;
    return false;
  }
  return table_get(user, out);
}

/* ---- reports -------------------------------------------------------------------------- */

static struct {
  char json[1 << 16];     /* one JSON report being assembled */
  size_t json_used;
  bool json_first;        /* no line added yet */
  bool in_report;
} report;

static int log_fd(void) {
  if (check.log_fd >= 0) return check.log_fd;
  const char *path = tsr_option_text(TSR_OPT_CHECK_LOG_FILE);
  int fd = path != NULL && path[0] ? tsr_platform_open_write(path) : -1;
  check.log_fd = fd >= 0 ? fd : 2;
  return check.log_fd;
}

static void json_put(const char *s) {
  for (; *s && report.json_used + 8 < sizeof report.json; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { report.json[report.json_used++] = '\\'; report.json[report.json_used++] = (char)c; }
    else if (c < 0x20) report.json_used += tsr_format(report.json + report.json_used, 8, "\\u%04x", c) ;
    else report.json[report.json_used++] = (char)c;
  }
}
static void json_raw(const char *s) {
  size_t n = strlen(s);
  if (report.json_used + n + 2 < sizeof report.json) { memcpy(report.json + report.json_used, s, n); report.json_used += n; }
}

static void out_line(const char *text) {
  if (check.json) {
    json_raw(report.json_first ? "\"" : ",\"");
    report.json_first = false;
    json_put(text);
    json_raw("\"");
    return;
  }
  char line[1200];
  size_t n = tsr_format(line, sizeof line - 1, "tessera: %s", text);
  line[n++] = '\n';
  tsr_platform_write(log_fd(), line, n);
}

void tsr_report_begin(const char *error_class, const char *fmt, ...) {
  tsr_lock(TSR_LOCK_REPORT);
  report.in_report = true;
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  tsr_format_va(text, sizeof text, fmt, ap);
  va_end(ap);
  if (check.json) {
    report.json_used = 0;
    json_raw("{\"tessera\":\"report\",\"class\":\"");
    json_put(error_class);
    json_raw("\",\"pid\":");
    char pid[32];
    tsr_format(pid, sizeof pid, "%ld", tsr_platform_process_id());
    json_raw(pid);
    json_raw(",\"message\":\"");
    json_put(text);
    json_raw("\",\"lines\":[");
    report.json_first = true;
    return;
  }
  char head[1200];
  tsr_format(head, sizeof head, "%s: %s", error_class, text);
  out_line(head);
}

void tsr_report_line(const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  tsr_format_va(text, sizeof text, fmt, ap);
  va_end(ap);
  out_line(text);
}

static void stack_line(const char *text, void *arg) {
  (void)arg;
  tsr_report_line("    %s", text);
}

void tsr_report_stack(const char *title, const uintptr_t *frames, size_t count, bool skip_own, bool first_is_pc) {
  tsr_report_line("  %s", title);
  if (count == 0) { tsr_report_line("    (no stack recorded)"); return; }
  tsr_bt_symbolize(frames, count, skip_own, first_is_pc, stack_line, NULL);
}

static const char *family_name(int family) {
  switch (family) {
  case TSR_FAMILY_NEW: return "operator new";
  case TSR_FAMILY_NEW_ARRAY: return "operator new[]";
  case TSR_FAMILY_NEW_ALIGNED: return "aligned operator new";
  case TSR_FAMILY_NEW_ARRAY_ALIGNED: return "aligned operator new[]";
  default: return "malloc";
  }
}

void tsr_report_block(const tsr_check_block_t *b) {
  const uintptr_t *frames;
  size_t n = tsr_depot_get(b->alloc_stack, &frames);
  char title[256];
  tsr_format(title, sizeof title, "the %zu-byte block 0x%lx was allocated (%s) by thread T%u at:", (size_t)b->size,
             (unsigned long)b->user, family_name(b->family), b->alloc_thread);
  tsr_report_stack(title, frames, n, false, false);
  if (b->state != TSR_BLOCK_LIVE) {
    n = tsr_depot_get(b->free_stack, &frames);
    tsr_format(title, sizeof title, "and freed by thread T%u at:", b->free_thread);
    tsr_report_stack(title, frames, n, false, false);
  }
}

void tsr_report_end(bool is_error) {
  if (check.json) {
    json_raw("]}\n");
    tsr_platform_write(log_fd(), report.json, report.json_used);
  }
  if (is_error) atomic_fetch_add(&tsr_check_error_count, 1);
  report.in_report = false;
  tsr_unlock(TSR_LOCK_REPORT);
}

/* ---- where is an address that is not a block? ---------------------------------------------- */

void tsr_report_where(uintptr_t addr) {
  const tsr_check_thread_t *t = tsr_check_thread_of_stack(addr);
  if (t != NULL) {
    tsr_report_line("  address 0x%lx is on thread T%u's stack (tid %ld)%s", (unsigned long)addr, t->number, t->tid,
                    t == thread_self ? ", the calling thread: a pointer to a local variable?" : "");
    return;
  }
  uint8_t kind = tsr_segmap_kind(addr);
  if (kind != TSR_SEGMAP_NONE) {
    tsr_report_line("  address 0x%lx is inside tessera's heap but not in any block", (unsigned long)addr);
    return;
  }
  maps_hit_t hit;
  maps_find(addr, &hit);
  if (!hit.found) { tsr_report_line("  address 0x%lx is a wild pointer: nothing is mapped there", (unsigned long)addr); return; }
  if (strcmp(hit.name, "[stack]") == 0) {
    tsr_report_line("  address 0x%lx is on the main thread's stack (T1): a pointer to a local variable?", (unsigned long)addr);
    return;
  }
  Dl_info info;
  if (dladdr((void *)addr, &info) != 0 && info.dli_fname != NULL && hit.name[0] == '/') {
    if (info.dli_sname != NULL)
      tsr_report_line("  address 0x%lx is in the global '%s'+%lu of %s", (unsigned long)addr, info.dli_sname,
                      (unsigned long)(addr - (uintptr_t)info.dli_saddr), info.dli_fname[0] ? info.dli_fname : hit.name);
    else
      tsr_report_line("  address 0x%lx is in the static data of %s (a global variable)", (unsigned long)addr,
                      info.dli_fname[0] ? info.dli_fname : hit.name);
    return;
  }
  if (hit.name[0] == '/' || hit.name[0] == 0 || hit.name[0] == '[')
    tsr_report_line("  address 0x%lx is in an mmap'd region %lx-%lx (%s%s%s) that tessera never allocated",
                    (unsigned long)addr, (unsigned long)hit.lo, (unsigned long)hit.hi, hit.perms,
                    hit.name[0] ? " " : "", hit.name);
}

/* ---- verifying a block ---------------------------------------------------------------------- */

typedef enum { DAMAGE_NONE, DAMAGE_OVERFLOW, DAMAGE_UNDERFLOW, DAMAGE_FREED } damage_kind_t;

/* The canary below b's user bytes, as two ranges in address order. */
static void left_ranges(const tsr_check_block_t *b, const uint8_t *lo[2], size_t len[2]) {
  uintptr_t base = tsr_check_base(b);
  if (b->flags & TSR_BLOCK_GUARDED) {
    lo[0] = (const uint8_t *)base; len[0] = (size_t)(b->user - base);
    lo[1] = NULL; len[1] = 0;
    return;
  }
  uintptr_t h = b->user - tsr_check_left_min;
  lo[0] = (const uint8_t *)base; len[0] = (size_t)(h - base);
  lo[1] = (const uint8_t *)h + TSR_CHECK_HEADER_SIZE; len[1] = tsr_check_left_min - TSR_CHECK_HEADER_SIZE;
}
typedef struct damage_s { damage_kind_t kind; uintptr_t first, last; } damage_t;

/* Redzones of a live block, or the poison of a quarantined one. */
static damage_t block_verify(const tsr_check_block_t *b, bool freed) {
  damage_t d = { DAMAGE_NONE, 0, 0 };
  if (freed && (b->flags & TSR_BLOCK_GUARDED)) return d;   /* protected, its pages released */
  const uint8_t *user = (const uint8_t *)b->user;
  if (freed && !(b->flags & TSR_BLOCK_GUARDED)) {
    size_t poisoned = b->size < TSR_CHECK_POISON_MAX ? b->size : TSR_CHECK_POISON_MAX;
    const uint8_t *bad = bytes_damaged(user, poisoned, TSR_CHECK_POISON);
    if (bad != NULL) {
      d.kind = DAMAGE_FREED; d.first = (uintptr_t)bad;
      d.last = (uintptr_t)bytes_damaged_last(user, poisoned, TSR_CHECK_POISON);
      return d;
    }
  }
  size_t right = right_of(b);
  const uint8_t *bad = bytes_damaged(user + b->size, right, TSR_CHECK_CANARY);
  if (bad != NULL) {
    d.kind = DAMAGE_OVERFLOW; d.first = (uintptr_t)bad;
    d.last = (uintptr_t)bytes_damaged_last(user + b->size, right, TSR_CHECK_CANARY);
    return d;
  }
  /* The left redzone: a guarded block's canary below the user bytes; a
   * core block's pad before its header (aligned blocks) and canary between
   * the header and the user bytes (the header is checked by header_read). */
  const uint8_t *lo[2];
  size_t len[2];
  left_ranges(b, lo, len);
  const uint8_t *first = NULL, *last = NULL;
  for (int r = 0; r < 2; r++) {
    const uint8_t *f = len[r] != 0 ? bytes_damaged(lo[r], len[r], TSR_CHECK_CANARY) : NULL;
    if (f == NULL) continue;
    if (first == NULL) first = f;
    last = bytes_damaged_last(lo[r], len[r], TSR_CHECK_CANARY);
  }
  if (first == NULL) return d;
  d.kind = DAMAGE_UNDERFLOW; d.first = (uintptr_t)first; d.last = (uintptr_t)last;
  return d;
}

/* Repaint damaged redzones or poison, so the same damage is reported once. */
static void block_repair(const tsr_check_block_t *b, damage_t d) {
  if (d.kind == DAMAGE_FREED) memset((void *)b->user, TSR_CHECK_POISON, b->size < TSR_CHECK_POISON_MAX ? b->size : TSR_CHECK_POISON_MAX);
  else if (d.kind == DAMAGE_OVERFLOW) canary_fill((uint8_t *)b->user + b->size, right_of(b));
  else if (d.kind == DAMAGE_UNDERFLOW) {
    const uint8_t *lo[2];
    size_t len[2];
    left_ranges(b, lo, len);
    for (int r = 0; r < 2; r++) if (len[r] != 0) canary_fill((uint8_t *)lo[r], len[r]);
  }
}

/* Report damage found when (when: "at free", "at exit", ...); stack: the call that found it (0: none). */
static void damage_report(const tsr_check_block_t *b, damage_t d, const char *when, uint32_t stack) {
  const uintptr_t *frames;
  size_t n = tsr_depot_get(stack, &frames);
  if (d.kind == DAMAGE_FREED) {
    tsr_report_begin("use-after-free", "write to freed memory at 0x%lx, %zu bytes inside a freed %zu-byte block "
                     "(bytes %zu..%zu of the block were changed), found %s", (unsigned long)d.first,
                     (size_t)(d.first - b->user), (size_t)b->size, (size_t)(d.first - b->user), (size_t)(d.last - b->user), when);
  } else if (d.kind == DAMAGE_OVERFLOW) {
    tsr_report_begin("heap-buffer-overflow", "write at 0x%lx, %zu bytes after a %zu-byte block (the redzone was "
                     "changed up to %zu bytes after it), found %s", (unsigned long)d.first,
                     (size_t)(d.first - b->user - b->size), (size_t)b->size, (size_t)(d.last - b->user - b->size), when);
  } else {
    tsr_report_begin("heap-buffer-underflow", "write at 0x%lx, %zu bytes before a %zu-byte block (the redzone was "
                     "changed from %zu bytes before it), found %s", (unsigned long)d.last,
                     (size_t)(b->user - d.last), (size_t)b->size, (size_t)(b->user - d.first), when);
  }
  if (n != 0) tsr_report_stack("found by this call:", frames, n, true, false);
  tsr_report_block(b);
  tsr_report_end(true);
}

/* user has a header whose check fails: a write before the block (past its
 * left canary) or a wild write reached it. Its size and stacks cannot be
 * trusted, so the block is reported as it is and never given back to the
 * core (its layout is unknown); its header's first word is cleared, so it
 * is reported once (a later free of it is an invalid free). */
static tsr_noinline void header_damage_report(uintptr_t user, const char *when, uint32_t stack) {
  check_header_t *hdr = header_at(user);   /* a core block's (every caller knows): readable */
  if (atomic_load_explicit(&hdr->user_key, memory_order_relaxed) == (user ^ TSR_CHECK_KEY))
    atomic_store_explicit(&hdr->user_key, 0, memory_order_relaxed);
  const uintptr_t *frames;
  size_t n = tsr_depot_get(stack, &frames);
  uintptr_t h = (uintptr_t)hdr;
  tsr_report_begin("heap-buffer-underflow", "write before the block 0x%lx: its %d-byte checking header at 0x%lx..0x%lx "
                   "(%zu to %zu bytes before the block) was written over, found %s; the block's size and stacks were "
                   "kept there and are lost", (unsigned long)user, TSR_CHECK_HEADER_SIZE, (unsigned long)h,
                   (unsigned long)(h + TSR_CHECK_HEADER_SIZE - 1), tsr_check_left_min - TSR_CHECK_HEADER_SIZE + 1,
                   tsr_check_left_min, when);
  if (n != 0) tsr_report_stack("found by this call:", frames, n, true, false);
  tsr_report_end(true);
}

/* A pointer whose header is gone may still be a block's start: the core
 * says a block starts where its header would be (alignment 16) and the
 * canary just below it is damaged. Then an underflow ran over the canary
 * and the header's first word: report that rather than an invalid free. */
static bool header_destroyed(uintptr_t user) {
  size_t left = tsr_check_left_min - TSR_CHECK_HEADER_SIZE, size = 0;
  if ((user & 15) != 0 || left == 0 || user < tsr_check_left_min) return false;
  uintptr_t hp = user - tsr_check_left_min;
  if (tsr_segmap_kind(hp) == TSR_SEGMAP_NONE || core_block_of(hp, &size) != hp || size < tsr_check_left_min) return false;
  return bytes_damaged((const uint8_t *)user - left, left, TSR_CHECK_CANARY) != NULL;
}

/* ---- the quarantine -------------------------------------------------------------------------- */

/* The memory a block holds: its core block, or a guarded block's pages
 * and its table slot (at the table's ~0.5 load, two slots' worth). */
static inline size_t block_cost(const tsr_check_block_t *b) {
  if (tsr_unlikely(b->flags & TSR_BLOCK_GUARDED)) return tsr_guard_map_size(b) + 2 * sizeof(tsr_check_block_t);
  return left_size((size_t)1 << b->align_shift) + b->size + right_size(b->size);
}

/* Give a block that left the quarantine (or was never kept) back to the
 * core, its header's first word cleared first (no longer a checked block). */
static void block_release(const tsr_check_block_t *b) {
  if (b->flags & TSR_BLOCK_GUARDED) { tsr_guard_release(b); return; }
  atomic_store_explicit(&header_at(b->user)->user_key, 0, memory_order_relaxed);
  tsr_core_free((void *)tsr_check_base(b));
}

/* The live blocks' cost as last published (a transient negative sum, one
 * thread's frees published before another's allocations, reads as 0). */
static inline size_t live_bytes(void) {
  size_t v = atomic_load_explicit(&check.live_bytes, memory_order_relaxed);
  return v > ((size_t)1 << 62) ? 0 : v;
}

/* Room for `more` entries in r, doubling its storage; false: no memory. */
#define RING_FIRST_CAPACITY ((size_t)256)   /* 4 KiB: a thread's quarantine starts at one page */
static bool ring_reserve(ring_t *r, size_t more) {
  size_t capacity = r->capacity != 0 ? r->capacity : RING_FIRST_CAPACITY;
  while (capacity - r->count < more) capacity *= 2;
  ring_entry_t *entry = tsr_check_map(capacity * sizeof *entry, "tessera check quarantine");
  if (entry == NULL) return false;
  for (size_t i = 0; i < r->count; i++) entry[i] = r->entry[(r->head + i) & (r->capacity - 1)];
  if (r->entry != NULL) tsr_check_unmap(r->entry, r->capacity * sizeof *entry);
  r->entry = entry; r->capacity = capacity; r->head = 0;
  return true;
}

/* Append e[0..n) (cost: their sum) in at most two copies: pushed one by
 * one, with a capacity test and a byte sum each, the batch cost a free 25
 * instructions (callgrind, micro-hot). Returns how many did not fit (no
 * memory to grow the ring), copied to out to leave at once; *left_cost:
 * their cost. */
static size_t ring_push(ring_t *r, const ring_entry_t *e, size_t n, size_t cost, ring_entry_t *out, size_t *left_cost) {
  size_t left = 0;
  *left_cost = 0;
  if (tsr_unlikely(r->capacity - r->count < n) && !ring_reserve(r, n)) {
    size_t room = r->capacity - r->count;
    left = n - room;
    for (size_t i = 0; i < left; i++) { out[i] = e[room + i]; *left_cost += e[room + i].cost; }
    n = room;
  }
  if (n == 0) return left;
  size_t mask = r->capacity - 1, tail = (r->head + r->count) & mask;
  size_t first = r->capacity - tail < n ? r->capacity - tail : n;
  memcpy(r->entry + tail, e, first * sizeof *e);
  memcpy(r->entry, e + first, (n - first) * sizeof *e);
  r->count += n;
  r->bytes += cost - *left_cost;
  return left;
}

/* Pop r's oldest entries into out (at most out_max) while r holds more
 * than keep bytes. Returns how many; *cost: their sum. */
static size_t ring_pop(ring_t *r, size_t keep, ring_entry_t *out, size_t out_max, size_t *cost) {
  /* In locals: out may alias r's fields as far as the compiler knows, so
   * it reloaded and stored each of them per entry (a sixth of a checked
   * pair's ring work, callgrind, micro-hot). */
  size_t popped = 0, head = r->head, count = r->count, bytes = r->bytes, sum = 0, mask = r->capacity - 1;
  const ring_entry_t *entry = r->entry;
  while (bytes > keep && count > 0 && popped < out_max) {
    ring_entry_t e = entry[head];
    head = (head + 1) & mask;
    count--;
    bytes -= e.cost;
    sum += e.cost;
    out[popped++] = e;
  }
  r->head = head;
  r->count = count;
  r->bytes = bytes;
  *cost = sum;
  return popped;
}

/* What all quarantines together may hold now: the option, and a quarter
 * of the live blocks' cost (see TSR_CHECK_QUARANTINE_LIVE_SHIFT), but
 * never below TSR_CHECK_QUARANTINE_MIN. */
static size_t quarantine_limit_now(void) {
  size_t limit = live_bytes() >> TSR_CHECK_QUARANTINE_LIVE_SHIFT;
  if (limit < TSR_CHECK_QUARANTINE_MIN) limit = TSR_CHECK_QUARANTINE_MIN;
  if (limit > check.quarantine_limit) limit = check.quarantine_limit;
  return limit;
}

/* Start fetching the lines a block leaving the quarantine is verified on:
 * its header, its poison (TSR_CHECK_POISON_MAX bytes at most) and its
 * right redzone. cost (block_cost) bounds where the block ends; for a
 * guarded block the guess is wrong and only wastes the prefetches (a
 * prefetch never faults). */
#define LEAVE_PREFETCH_AHEAD 8
/* The poison's lines are fetched whatever the block's size: a line past a
 * small block is its neighbour's, most likely in the same batch, and a
 * prefetch costs one instruction where the loop over exactly the block's
 * lines cost 20 a block (callgrind, micro-hot). */
_Static_assert(TSR_CHECK_POISON_MAX == 256, "block_prefetch fetches 256 bytes of poison");
static inline void block_prefetch(uintptr_t user, size_t cost) {
  __builtin_prefetch((const void *)(user - tsr_check_left_min));
  __builtin_prefetch((const void *)(user + 64));
  __builtin_prefetch((const void *)(user + 128));
  __builtin_prefetch((const void *)(user + 192));
  if (cost > TSR_CHECK_POISON_MAX + tsr_check_left_min) __builtin_prefetch((const void *)(user + cost - tsr_check_left_min - 1));
}

/* Blocks that left the quarantine: header, poison and redzones verified,
 * header cleared, back to the core. No lock held (guarded blocks: out of
 * the table, each under its shard's lock). */
static void quarantine_leave(const ring_entry_t *out, size_t n) {
  /* Their bytes are cold by now (the quarantine is bigger than the
   * caches): each block's lines are fetched a few blocks ahead of its
   * verification (only its first line was fetched before: python-malloc
   * waited on the rest of the poison, a fifth of quarantine_leave). */
  for (size_t i = 0; i < n && i < LEAVE_PREFETCH_AHEAD; i++) block_prefetch(out[i].user & ~RING_GUARDED, out[i].cost);
  /* The common case in place: a core block whose header, poison and
   * redzones are intact. The rest, and the core frees, after. */
  void *bases[64];
  uintptr_t slow[64];
  size_t base_count = 0, slow_count = 0;
  for (size_t i = 0; i < n && i < 64; i++) {
    uintptr_t user = out[i].user;
    if (i + LEAVE_PREFETCH_AHEAD < n)
      block_prefetch(out[i + LEAVE_PREFETCH_AHEAD].user & ~RING_GUARDED, out[i + LEAVE_PREFETCH_AHEAD].cost);
    if (tsr_likely(!(user & RING_GUARDED))) {
      check_header_t *h = header_at(user);
      uint64_t info = atomic_load_explicit(&h->info, memory_order_relaxed);
      size_t size = info & INFO_SIZE_MASK;
      /* Its size and alignment as queued (the cost): the header's check
       * is not recomputed here; a header that fails this goes the slow way,
       * where it is (header_read). */
      size_t left = info_shift(info) < 64 ? left_size((size_t)1 << info_shift(info)) : 0;
      if (tsr_likely(atomic_load_explicit(&h->user_key, memory_order_relaxed) == (user ^ TSR_CHECK_KEY) &&
                     info_state(info) == TSR_BLOCK_FREED && left != 0 && left + size + right_size(size) == out[i].cost)) {
        uintptr_t base = user - left;
        if (tsr_likely(bytes_damaged((const uint8_t *)user, size < TSR_CHECK_POISON_MAX ? size : TSR_CHECK_POISON_MAX,
                                     TSR_CHECK_POISON) == NULL && redzones_intact(base, user, size))) {
          atomic_store_explicit(&h->user_key, 0, memory_order_relaxed);
          bases[base_count++] = (void *)base;
          continue;
        }
      }
    }
    slow[slow_count++] = user;
  }
  for (size_t i = 0; i < base_count; i++) tsr_core_free(bases[i]);
  for (size_t i = 0; i < slow_count; i++) {
    tsr_check_block_t b;
    uintptr_t user = slow[i] & ~RING_GUARDED;
    if (!(slow[i] & RING_GUARDED)) {
      check_header_t *h = header_at(user);
      if (atomic_load_explicit(&h->user_key, memory_order_relaxed) != (user ^ TSR_CHECK_KEY) || !header_read(h, user, &b) ||
          b.state != TSR_BLOCK_FREED) {
        header_damage_report(user, "when the block left the quarantine", 0);
        continue;   /* its layout is unknown: kept */
      }
    } else if (!table_take(user, &b)) {
      continue;
    }
    damage_t d = block_verify(&b, true);
    if (d.kind != DAMAGE_NONE) damage_report(&b, d, "when the block left the quarantine", 0);
    block_release(&b);
  }
}

/* ---- allocation -------------------------------------------------------------------------------- */

static inline unsigned log2_of(size_t x) { return 63u - (unsigned)__builtin_clzll(x); }

/* Per-thread free batch and live-cost delta: see pending_flush. */
#define FREE_BATCH 32
_Static_assert(FREE_BATCH <= 64, "a batch that cannot join the quarantine leaves through pending_flush's out[64]");
#define FREE_BATCH_BYTES ((size_t)256 << 10)   /* big blocks go at once (bigblock: 31 blocks of up to 64 MiB held) */
#define LIVE_DELTA_MAX ((long)64 << 10)        /* published to check.live_bytes past this */
static __thread struct {
  ring_entry_t entry[FREE_BATCH];
  size_t count, bytes, cost;     /* cost: the entries' sum */
  long live_delta;               /* cost allocated minus cost freed here, not yet in check.live_bytes */
  bool keyed;
  bool holding;                  /* counted in check.quarantine_holders */
  ring_t own;                    /* this thread's quarantine */
} pending;
static pthread_key_t pending_key;
static bool pending_has_key;

static tsr_noinline void live_publish(void) {
  atomic_fetch_add_explicit(&check.live_bytes, (size_t)pending.live_delta, memory_order_relaxed);
  pending.live_delta = 0;
}

static inline void live_add(long cost) {
  pending.live_delta += cost;
  if (tsr_unlikely(pending.live_delta > LIVE_DELTA_MAX)) live_publish();
}

/* Start fetching what the next allocation of this size class will touch
 * first: the core block the core's fast path pops next (its link, then our
 * header). By then it has arrived (python-malloc: a sixth of
 * alloc_with_stack waited on the header). Reads the thread's own heap
 * (internal.h) without changing it; a stale guess only wastes the
 * prefetch. */
static inline void next_block_prefetch(size_t core_size) {
  if (core_size > TSR_DIRECT_MAX) return;
  tsr_heap_t *heap = tsr_heap_get();
  tsr_block_t *next = heap->direct[(core_size + 15) >> 4]->free;
  if (next != NULL) __builtin_prefetch(next, 1);
}

/* A guarded block (guard.c), or NULL when none can be made now. */
static tsr_noinline void *alloc_guarded(size_t size, size_t alignment, int family, bool zero, uint32_t stack) {
  tsr_check_block_t b;
  memset(&b, 0, sizeof b);
  b.size = size;
  b.family = (uint8_t)family;
  b.align_shift = (uint8_t)log2_of(alignment);
  b.alloc_thread = tsr_check_thread_self()->number;
  b.state = TSR_BLOCK_LIVE;
  b.alloc_stack = stack;
  if (!tsr_guard_alloc(&b, size, alignment)) return NULL;
  b.flags |= TSR_BLOCK_GUARDED;
  if (zero) memset((void *)b.user, 0, size);
  shard_t *s = shard_for_new(b.user, b.alloc_thread);
  shard_lock(s);
  bool ok = table_insert(s, &b);
  shard_unlock(s);
  if (!ok) { block_release(&b); errno = ENOMEM; return (void *)-1; }
  live_add((long)block_cost(&b));
  return (void *)b.user;
}

/* The checked allocation with its stack already captured: the core block,
 * its canaries, then its header, whose first word is stored last. */
static __attribute__((always_inline)) inline void *alloc_with_stack(size_t size, size_t alignment, int family, bool zero,
                                                                     uint32_t stack, uintptr_t fp) {
  if (alignment < 16) alignment = 16;
  if (tsr_unlikely(size > TSR_CHECK_SIZE_MAX - 8192 - alignment)) { errno = ENOMEM; return NULL; }
  if (tsr_unlikely(tsr_guard_wanted_now(size, alignment))) {
    void *p = alloc_guarded(size, alignment, family, zero, fp != 0 ? stack_capture(fp, 0) : stack);
    if (p == (void *)-1) return NULL;
    if (p != NULL) return p;
  }
  if (tsr_unlikely(!atomic_load_explicit(&check.redzone_fixed, memory_order_relaxed)))
    atomic_store(&check.redzone_fixed, true);
  size_t left = left_size(alignment), right = right_size(size);
  if (tsr_unlikely(alignment > 16) && !atomic_load_explicit(&check.aligned_used, memory_order_relaxed))
    atomic_store(&check.aligned_used, true);
  void *base = alignment <= 16 ? tsr_core_malloc(left + size + right) : tsr_core_alloc_aligned(alignment, left + size + right);
  if (base == NULL) return NULL;
  uintptr_t user = (uintptr_t)base + left;
  if (alignment <= 16) next_block_prefetch(left + size + right);
  check_header_t *h = header_at(user);
  if (tsr_unlikely(left > tsr_check_left_min)) canary_fill(base, left - tsr_check_left_min);
  if (tsr_check_left_min > TSR_CHECK_HEADER_SIZE) canary_fill((uint8_t *)(h + 1), tsr_check_left_min - TSR_CHECK_HEADER_SIZE);
  canary_fill((uint8_t *)user + size, right);
  if (zero) memset((void *)user, 0, size);
  if (fp != 0) stack = stack_capture(fp, 0);
  uint32_t thread = tsr_check_thread_self()->number;
  header_store(h, user, info_make(size, TSR_BLOCK_LIVE, (unsigned)family, log2_of(alignment)), stack, thread);
  atomic_store_explicit(&h->user_key, user ^ TSR_CHECK_KEY, memory_order_release);
  live_add((long)(left + size + right));
  return (void *)user;
}

/* The same out of line, for every other entry (aligned, calloc, C++,
 * realloc): inlined there as well, the bigger frames left stale copies of a
 * block's address where the exit's leak scan reads the stack, and a lost
 * aligned block went unreported in 9 runs of 30 (tests/wrong/leak_aligned). */
static tsr_noinline void *alloc_with_stack_call(size_t size, size_t alignment, int family, bool zero, uint32_t stack,
                                                uintptr_t fp) {
  return alloc_with_stack(size, alignment, family, zero, stack, fp);
}
/* inline_body: malloc's own path, the checked allocation in the caller;
 * false: through alloc_with_stack_call. */
static __attribute__((always_inline)) inline void *check_alloc(size_t size, size_t alignment, int family, bool zero,
                                                                uintptr_t fp, bool inline_body) {
  check_ready();
  return inline_body ? alloc_with_stack(size, alignment, family, zero, 0, fp)
                     : alloc_with_stack_call(size, alignment, family, zero, 0, fp);
}
void *tsr_check_alloc(size_t size, size_t alignment, int family, bool zero, uintptr_t fp) {
  return check_alloc(size, alignment, family, zero, fp, false);
}

/* ---- free -------------------------------------------------------------------------------------- */

static bool families_match(int alloc, int dealloc) { return alloc == dealloc; }

/* p is not a live block: say what it is. what: "free", "realloc", ... */
static void invalid_report(const char *what, uintptr_t p, uint32_t stack) {
  const uintptr_t *frames;
  size_t n = tsr_depot_get(stack, &frames);
  tsr_check_block_t inner;
  if (tsr_check_find(p, &inner) && inner.user != p) {
    const char *cls = strcmp(what, "free") == 0 ? "invalid-free" : "invalid-realloc";
    if (p >= inner.user && p < inner.user + inner.size)
      tsr_report_begin(cls, "%s of 0x%lx, %zu bytes inside a %s%zu-byte block (not its start)", what, (unsigned long)p,
                       (size_t)(p - inner.user), inner.state != TSR_BLOCK_LIVE ? "freed " : "", (size_t)inner.size);
    else if (p >= inner.user + inner.size)
      tsr_report_begin(cls, "%s of 0x%lx, %zu bytes after a %s%zu-byte block", what, (unsigned long)p,
                       (size_t)(p - inner.user - inner.size), inner.state != TSR_BLOCK_LIVE ? "freed " : "", (size_t)inner.size);
    else
      tsr_report_begin(cls, "%s of 0x%lx, %zu bytes before a %s%zu-byte block", what, (unsigned long)p,
                       (size_t)(inner.user - p), inner.state != TSR_BLOCK_LIVE ? "freed " : "", (size_t)inner.size);
    tsr_report_stack("at:", frames, n, true, false);
    tsr_report_block(&inner);
    tsr_report_end(true);
    return;
  }
  tsr_report_begin(strcmp(what, "free") == 0 ? "invalid-free" : "invalid-realloc",
                   "%s of 0x%lx, a pointer tessera never returned", what, (unsigned long)p);
  tsr_report_stack("at:", frames, n, true, false);
  tsr_report_where(p);
  tsr_report_end(true);
}

/* GCC turns a memset of at most 256 bytes into rep stos, whose start-up
 * was the biggest single cost of a free (pool-local, perf): 16-byte stores
 * of the pattern instead, the last one overlapping. */
static inline void poison_fill(uint8_t *p, size_t n) {
  if (n < 16) { memset(p, TSR_CHECK_POISON, n); return; }
  __m128i pattern = _mm_set1_epi8((char)TSR_CHECK_POISON);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {   /* four stores a step, as wide_intact loads */
    _mm_storeu_si128((__m128i *)(p + i), pattern);
    _mm_storeu_si128((__m128i *)(p + i + 16), pattern);
    _mm_storeu_si128((__m128i *)(p + i + 32), pattern);
    _mm_storeu_si128((__m128i *)(p + i + 48), pattern);
  }
  for (; i + 16 <= n; i += 16) _mm_storeu_si128((__m128i *)(p + i), pattern);
  _mm_storeu_si128((__m128i *)(p + n - 16), pattern);
}


/* Freed blocks enter the quarantine in per-thread batches: the pass
 * needs no table lookup, since a batched block is FREED already (double
 * frees are found), poisoned and carries its cost. Flushed when full, at
 * FREE_BATCH_BYTES, at thread exit, at exit and by tsr_check_heap.
 *
 * Each thread keeps its own quarantine and releases its own blocks, the
 * oldest first, down to its share of the limit (the limit divided among
 * the threads that hold blocks), so a block goes back to the core from
 * the thread that freed it, as it would without checking. One FIFO for
 * all threads had each thread release the others' blocks: they went into
 * its reuse lists, and two threads then allocated blocks of the same
 * cache lines (larson/2t: 0.09 s of CPU under glibc, 0.86 s checked,
 * three quarters of its free spent on the header's line; one thread:
 * 0.05 and 0.13). An exited thread's quarantine joins the orphans, which
 * any thread releases first while all quarantines together hold more than
 * the limit. Releases go 64 blocks per pass: one big block behind many
 * small ones may take many passes (sqlite: 118 MB held against a 64 MB
 * limit when a pass popped at most 64 blocks). */
static void orphans_release(size_t limit) {
  ring_entry_t out[64];
  while (atomic_load_explicit(&check.orphan_count, memory_order_relaxed) != 0) {
    size_t total = atomic_load_explicit(&check.quarantine_total, memory_order_relaxed);
    if (total <= limit) return;
    size_t cost;
    tsr_lock(TSR_LOCK_CHECK);
    size_t excess = total - limit, keep = check.orphans.bytes > excess ? check.orphans.bytes - excess : 0;
    size_t n = ring_pop(&check.orphans, keep, out, 64, &cost);
    atomic_store_explicit(&check.orphan_count, check.orphans.count, memory_order_relaxed);
    tsr_unlock(TSR_LOCK_CHECK);
    atomic_fetch_sub_explicit(&check.quarantine_total, cost, memory_order_relaxed);
    quarantine_leave(out, n);
    if (n == 0) return;
  }
}

static void pending_flush(void) {
  ring_entry_t out[64];
  size_t left_cost;
  ring_t *own = &pending.own;
  if (pending.live_delta != 0) live_publish();
  size_t n = ring_push(own, pending.entry, pending.count, pending.cost, out, &left_cost);   /* FREE_BATCH <= 64 */
  atomic_fetch_add_explicit(&check.quarantine_total, pending.cost - left_cost, memory_order_relaxed);
  pending.count = 0;
  pending.bytes = 0;
  pending.cost = 0;
  if (!pending.holding && own->count != 0) {
    pending.holding = true;
    atomic_fetch_add_explicit(&check.quarantine_holders, 1, memory_order_relaxed);
  }
  quarantine_leave(out, n);
  size_t limit = quarantine_limit_now();
  orphans_release(limit);
  size_t holders = atomic_load_explicit(&check.quarantine_holders, memory_order_relaxed);
  size_t share = holders > 1 ? limit / holders : limit;
  while (own->bytes > share) {
    size_t cost;
    n = ring_pop(own, share, out, 64, &cost);
    atomic_fetch_sub_explicit(&check.quarantine_total, cost, memory_order_relaxed);
    quarantine_leave(out, n);
  }
  if (pending.holding && own->count == 0) {
    pending.holding = false;
    atomic_fetch_sub_explicit(&check.quarantine_holders, 1, memory_order_relaxed);
  }
}

/* An exiting thread's quarantine joins the orphans, in its order. */
static void own_to_orphans(void) {
  ring_t *own = &pending.own;
  ring_entry_t chunk[64], out[64];
  while (own->count != 0) {
    size_t cost, left_cost;
    size_t n = ring_pop(own, 0, chunk, 64, &cost);
    tsr_lock(TSR_LOCK_CHECK);
    size_t left = ring_push(&check.orphans, chunk, n, cost, out, &left_cost);
    atomic_store_explicit(&check.orphan_count, check.orphans.count, memory_order_relaxed);
    tsr_unlock(TSR_LOCK_CHECK);
    atomic_fetch_sub_explicit(&check.quarantine_total, left_cost, memory_order_relaxed);
    quarantine_leave(out, left);
  }
  if (pending.holding) {
    pending.holding = false;
    atomic_fetch_sub_explicit(&check.quarantine_holders, 1, memory_order_relaxed);
  }
  if (own->entry != NULL) tsr_check_unmap(own->entry, own->capacity * sizeof(ring_entry_t));
  *own = (ring_t){ 0 };
}

/* The child has one thread: the other threads' quarantines stay where
 * they are, never released (their blocks stay FREED and are still
 * verified at exit), and no longer count against the limit. */
static void quarantine_fork_child(void) {
  atomic_store(&check.quarantine_holders, pending.holding ? 1 : 0);
  atomic_store(&check.quarantine_total, pending.own.bytes + check.orphans.bytes);
}

static void pending_thread_exit(void *arg) {
  (void)arg;
  if (pending.count != 0 || pending.live_delta != 0) pending_flush();
  own_to_orphans();
}

/* A freed block (FREED in the table, poisoned) into this thread's batch. */
static inline void pending_push(uintptr_t user, size_t cost, size_t size) {
  if (tsr_unlikely(!pending.keyed)) {
    pending.keyed = true;   /* first free of this thread: flush its batch when it exits */
    if (pending_has_key) pthread_setspecific(pending_key, &pending);
  }
  pending.entry[pending.count++] = (ring_entry_t){ user, cost };
  pending.live_delta -= (long)cost;
  pending.cost += cost;
  pending.bytes += size;
  if (pending.count == FREE_BATCH || pending.bytes >= FREE_BATCH_BYTES) pending_flush();
}

/* The rare cases of a free: anything but a live core block freed as it
 * was allocated with its header and redzones intact (free_with_stack).
 * h: p's header (header_of), NULL for guarded blocks and invalid pointers. */
static tsr_noinline void free_general(uintptr_t user, int family, size_t size, size_t alignment, uint32_t stack,
                                      check_header_t *h) {
  tsr_check_thread_t *self = tsr_check_thread_self();
  tsr_check_block_t b;
  damage_t d = { DAMAGE_NONE, 0, 0 };
  bool live = false;
  if (h != NULL) {
    for (;;) {
      if (!header_read(h, user, &b)) { header_damage_report(user, "at free", stack); return; }
      if (b.state != TSR_BLOCK_LIVE) break;   /* freed: a double free (also while another thread frees it) */
      uint64_t info = info_make(b.size, TSR_BLOCK_LIVE, b.family, b.align_shift);
      if (atomic_compare_exchange_strong(&h->info, &info, info_with_state(info, STATE_FREEING))) { live = true; break; }
    }
    if (live) {
      if (tsr_unlikely(!block_intact(&b))) {
        d = block_verify(&b, false);
        if (d.kind != DAMAGE_NONE) block_repair(&b, d);
      }
      poison_fill((uint8_t *)user, b.size < TSR_CHECK_POISON_MAX ? b.size : TSR_CHECK_POISON_MAX);
      header_store(h, user, info_make(b.size, TSR_BLOCK_FREED, b.family, b.align_shift),
                   b.alloc_stack | (uint64_t)stack << 32, b.alloc_thread | (uint64_t)self->number << 24);
    }
  } else {
    shard_t *s = shard_of(user);
    shard_lock(s);
    tsr_check_block_t *slot = table_find(s, user);
    if (slot != NULL) {
      b = *slot;
      if (b.state == TSR_BLOCK_LIVE) {
        live = true;
        slot->state = TSR_BLOCK_FREED;
        slot->free_stack = stack;
        slot->free_thread = self->number;
        if (tsr_unlikely(b.flags & TSR_BLOCK_GUARDED) || tsr_unlikely(!block_intact(&b))) {
          d = block_verify(&b, false);
          if (d.kind != DAMAGE_NONE) block_repair(&b, d);
        }
        if (!(b.flags & TSR_BLOCK_GUARDED)) poison_fill((uint8_t *)user, b.size < TSR_CHECK_POISON_MAX ? b.size : TSR_CHECK_POISON_MAX);
      }
    }
    shard_unlock(s);
    if (tsr_unlikely(slot == NULL)) {
      if (header_destroyed(user)) header_damage_report(user, "at free", stack);
      else invalid_report("free", user, stack);
      return;
    }
  }
  const uintptr_t *frames;
  size_t n = tsr_depot_get(stack, &frames);
  if (tsr_unlikely(!live)) {
    tsr_report_begin("double-free", "free of 0x%lx, a %zu-byte block that was already freed", (unsigned long)user, (size_t)b.size);
    tsr_report_stack("second free by this call:", frames, n, true, false);
    tsr_report_block(&b);
    tsr_report_end(true);
    return;
  }
  if (family >= 0 && !families_match(b.family, family)) {
    static const char *const dealloc[] = { "free", "operator delete", "operator delete[]", "aligned operator delete", "aligned operator delete[]" };
    tsr_report_begin("alloc-dealloc-mismatch", "%s of 0x%lx, a %zu-byte block allocated by %s", dealloc[family],
                     (unsigned long)user, (size_t)b.size, family_name(b.family));
    tsr_report_stack("at:", frames, n, true, false);
    tsr_report_block(&b);
    tsr_report_end(true);
  } else if (size != 0 && size != b.size) {
    tsr_report_begin("free-size-mismatch", "sized free of 0x%lx with size %zu, but the block has %zu bytes",
                     (unsigned long)user, size, (size_t)b.size);
    tsr_report_stack("at:", frames, n, true, false);
    tsr_report_block(&b);
    tsr_report_end(true);
  } else if (alignment != 0 && alignment > 16 && ((size_t)1 << b.align_shift) != alignment) {
    tsr_report_begin("free-alignment-mismatch", "aligned free of 0x%lx with alignment %zu, but the block was allocated "
                     "with alignment %zu", (unsigned long)user, alignment, (size_t)1 << b.align_shift);
    tsr_report_stack("at:", frames, n, true, false);
    tsr_report_block(&b);
    tsr_report_end(true);
  }
  b.state = TSR_BLOCK_FREED;
  b.free_stack = stack;
  b.free_thread = self->number;
  if (tsr_unlikely(d.kind != DAMAGE_NONE)) damage_report(&b, d, "at free", stack);
  if (tsr_unlikely(b.flags & TSR_BLOCK_GUARDED)) tsr_guard_protect_freed(&b);
  pending_push(user | ((b.flags & TSR_BLOCK_GUARDED) ? RING_GUARDED : 0), block_cost(&b), b.size);
}

/* Move a live block to FREEING: false if another thread's free won. A
 * compare-and-swap while the process has more than one thread; before,
 * a plain store (no other thread can be freeing it): the locked
 * instruction, which waits for the store buffer to drain, was a third of
 * free_with_stack (micro-hot, perf). The one window left: a thread's very
 * first call into the checker is a free of the block the first thread is
 * freeing at that instant (it registers before it reads the header). */
static inline bool state_claim(check_header_t *h, uint64_t info) {
  if (tsr_likely(atomic_load_explicit(&check.thread_count, memory_order_relaxed) <= 1)) {
    atomic_store_explicit(&h->info, info_with_state(info, STATE_FREEING), memory_order_relaxed);
    return true;
  }
  return atomic_compare_exchange_strong(&h->info, &info, info_with_state(info, STATE_FREEING));
}

/* The checked free with its stack already captured. The common case in
 * place, with no lock: a live core block (header_of), freed as it was
 * allocated, header and redzones intact; its state goes LIVE -> FREEING
 * by compare-and-swap (one free wins a race), its first bytes are
 * poisoned, then the free stack and FREED are written. Anything else:
 * free_general. */
static __attribute__((always_inline)) inline void free_with_stack(void *p, int family, size_t size, size_t alignment,
                                                                   uint32_t stack) {
  uintptr_t user = (uintptr_t)p;
  check_header_t *h = header_of(user);
  if (tsr_likely(h != NULL)) {
    uint64_t info = atomic_load_explicit(&h->info, memory_order_relaxed);
    uint64_t stacks = h->stacks, tail = h->tail;
    size_t bsize = info & INFO_SIZE_MASK;
    unsigned shift = info_shift(info);
    if (tsr_likely(info_state(info) == TSR_BLOCK_LIVE && info_family(info) == (unsigned)family &&
                   (size == 0 || size == bsize) && shift < 64 && (alignment <= 16 || ((size_t)1 << shift) == alignment) &&
                   header_sane(user, info, stacks, tail))) {
      size_t left = left_size((size_t)1 << shift);
      if (tsr_likely(redzones_intact(user - left, user, bsize)) && tsr_likely(state_claim(h, info))) {
        poison_fill((uint8_t *)user, bsize < TSR_CHECK_POISON_MAX ? bsize : TSR_CHECK_POISON_MAX);
        header_store_free(h, info, stacks, tail, stack, tsr_check_thread_self()->number);
        pending_push(user, left + bsize + right_size(bsize), bsize);
        return;
      }
    }
  }
  free_general(user, family, size, alignment, stack, h);
}

/* Out of line for every entry but free (see alloc_with_stack_call). */
static tsr_noinline void free_with_stack_call(void *p, int family, size_t size, size_t alignment, uint32_t stack) {
  free_with_stack(p, family, size, alignment, stack);
}
/* inline_body: free's own path, the checked free in the caller; false:
 * through free_with_stack_call. */
static __attribute__((always_inline)) inline void check_free(void *p, int family, size_t size, size_t alignment,
                                                              uintptr_t fp, bool inline_body) {
  if (p == NULL) return;
  check_ready();
  __builtin_prefetch((const void *)((uintptr_t)p - tsr_check_left_min));   /* the header, overlapped with the stack capture */
  uint32_t stack = stack_capture(fp, 0);
  if (inline_body) free_with_stack(p, family, size, alignment, stack);
  else free_with_stack_call(p, family, size, alignment, stack);
}
void tsr_check_free(void *p, int family, size_t size, size_t alignment, uintptr_t fp) {
  check_free(p, family, size, alignment, fp, false);
}

/* ---- the public API (aliased by override.c) ------------------------------------------------------- */

#define FP() ((uintptr_t)__builtin_frame_address(0))

tsr_public void *tsr_malloc(size_t size) { return check_alloc(size, 16, TSR_FAMILY_MALLOC, false, FP(), true); }

tsr_public void *tsr_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) { errno = ENOMEM; return NULL; }
  return tsr_check_alloc(total, 16, TSR_FAMILY_MALLOC, true, FP());
}

tsr_public void tsr_free(void *p) { check_free(p, TSR_FAMILY_MALLOC, 0, 0, FP(), true); }
tsr_public void tsr_free_sized(void *p, size_t size) { tsr_check_free(p, TSR_FAMILY_MALLOC, size, 0, FP()); }
tsr_public void tsr_free_aligned_sized(void *p, size_t alignment, size_t size) {
  tsr_check_free(p, TSR_FAMILY_MALLOC, size, alignment, FP());
}

static inline bool pow2_ok(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

void *tsr_alloc_aligned(size_t alignment, size_t size) {
  return tsr_check_alloc(size, alignment, TSR_FAMILY_MALLOC, false, FP());
}

tsr_public int tsr_posix_memalign(void **out, size_t alignment, size_t size) {
  if (!pow2_ok(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = tsr_check_alloc(size, alignment, TSR_FAMILY_MALLOC, false, FP());
  if (p == NULL) { errno = saved; return ENOMEM; }
  *out = p;
  return 0;
}

tsr_public void *tsr_aligned_alloc(size_t alignment, size_t size) {
  if (!pow2_ok(alignment)) { errno = EINVAL; return NULL; }
  return tsr_check_alloc(size, alignment, TSR_FAMILY_MALLOC, false, FP());
}

/* realloc in place, when the new size and its redzone still fit the core
 * block (its size class's spare bytes) and use more than half of it: the
 * block keeps its address, its canary is repainted after the new last
 * byte and its entry takes the new size and this call's stack. Growing a
 * string a byte at a time moved and copied the whole string on every call
 * (micro-realloc-str: 10x glibc, a third of it in memmove); a block now
 * moves once per size class it crosses. Only the plain case: a live,
 * unguarded malloc block of the default alignment whose redzones are
 * intact; anything else (and every report) takes the moving path. false:
 * not done. */
static bool realloc_in_place(uintptr_t user, size_t size, uint32_t stack) {
  if (tsr_unlikely(size > TSR_CHECK_SIZE_MAX - 8192)) return false;
  check_header_t *h = header_of(user);
  if (h == NULL) return false;
  uint64_t info = atomic_load_explicit(&h->info, memory_order_relaxed);
  if (info_state(info) != TSR_BLOCK_LIVE || info_family(info) != TSR_FAMILY_MALLOC || info_shift(info) != 4 ||
      !header_sane(user, info, h->stacks, h->tail))
    return false;
  size_t old = info & INFO_SIZE_MASK, left = tsr_check_left_min;
  uintptr_t base = user - left;
  size_t need = left + size + right_size(size);
  size_t usable = tsr_usable_size_internal((void *)base);   /* a live block of ours: no lock, no fault */
  if (need > usable || need * 2 <= usable || !redzones_intact(base, user, old)) return false;
  canary_fill((uint8_t *)user + size, right_size(size));
  header_store(h, user, info_make(size, TSR_BLOCK_LIVE, TSR_FAMILY_MALLOC, 4), stack, tsr_check_thread_self()->number);
  live_add((long)(size + right_size(size)) - (long)(old + right_size(old)));
  return true;
}

/* realloc moves the block unless it can stay (realloc_in_place): a stale
 * pointer to the old block is then caught. One stack capture serves the new
 * block's allocation and the old one's free. */
tsr_public void *tsr_realloc(void *p, size_t size) {
  uintptr_t fp = FP();
  if (p == NULL) return tsr_check_alloc(size, 16, TSR_FAMILY_MALLOC, false, fp);
  check_ready();
  uint32_t stack = stack_capture(fp, 0);
  if (size != 0 && realloc_in_place((uintptr_t)p, size, stack)) return p;
  tsr_check_block_t b;
  bool damaged;
  bool found = block_get((uintptr_t)p, &b, &damaged);
  if (!found || b.state != TSR_BLOCK_LIVE) {
    if (!found) {
      if (damaged || header_destroyed((uintptr_t)p)) header_damage_report((uintptr_t)p, "at realloc", stack);
      else invalid_report("realloc", (uintptr_t)p, stack);
      errno = ENOMEM;
      return NULL;
    }
    const uintptr_t *frames;
    size_t n = tsr_depot_get(stack, &frames);
    tsr_report_begin("realloc-after-free", "realloc of 0x%lx, a %zu-byte block that was already freed",
                     (unsigned long)p, (size_t)b.size);
    tsr_report_stack("at:", frames, n, true, false);
    tsr_report_block(&b);
    tsr_report_end(true);
    errno = ENOMEM;
    return NULL;
  }
  if (size == 0) { free_with_stack_call(p, TSR_FAMILY_MALLOC, 0, 0, stack); return NULL; }
  void *q = alloc_with_stack_call(size, (size_t)1 << b.align_shift, b.family, false, stack, 0);
  if (q == NULL) return NULL;
  memcpy(q, p, b.size < size ? b.size : size);
  free_with_stack_call(p, TSR_FAMILY_MALLOC, 0, 0, stack);
  return q;
}

tsr_public void *tsr_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) { errno = ENOMEM; return NULL; }
  return tsr_realloc(p, total);
}

/* The requested size, exactly: bytes after it belong to the redzone. */
tsr_public size_t tsr_usable_size(const void *p) {
  if (p == NULL) return 0;
  check_ready();
  tsr_check_block_t b;
  bool damaged;
  bool found = block_get((uintptr_t)p, &b, &damaged);
  bool freed = found && b.state != TSR_BLOCK_LIVE;
  if (!found || freed) {
    uint32_t stack = CAPTURE();
    if (damaged) { header_damage_report((uintptr_t)p, "at malloc_usable_size", stack); return 0; }
    const uintptr_t *frames;
    size_t n = tsr_depot_get(stack, &frames);
    if (freed) tsr_report_begin("use-after-free", "malloc_usable_size of 0x%lx, a freed %zu-byte block", (unsigned long)p, (size_t)b.size);
    else tsr_report_begin("invalid-pointer", "malloc_usable_size of 0x%lx, a pointer tessera never returned", (unsigned long)p);
    tsr_report_stack("at:", frames, n, true, false);
    if (freed) tsr_report_block(&b); else tsr_report_where((uintptr_t)p);
    tsr_report_end(true);
    return 0;
  }
  return b.size;
}

/* ---- whole-heap checks ------------------------------------------------------------------------------- */

/* What one pass of heap_verify found: at most 32 blocks, reported after
 * the walk (no report is written under TSR_LOCK_HEAPS). */
typedef struct verify_s {
  size_t n;
  tsr_check_block_t bad[32];
  damage_t damage[32];
  bool header[32];          /* the header itself was written over */
} verify_t;

/* One core block: its header's check, a live block's redzones or a freed
 * block's poison. Another thread may be changing the block: damage counts
 * only if the header is unchanged after the verification and a second
 * verification agrees. Damage is repaired (a damaged header: its first
 * word cleared, so the block is reported once and no longer trusted). */
static bool verify_one(check_header_t *h, uintptr_t user, void *arg) {
  verify_t *v = arg;
  uint64_t info = atomic_load_explicit(&h->info, memory_order_acquire);
  if (info_state(info) == STATE_FREEING) return true;
  tsr_check_block_t b;
  if (!header_read(h, user, &b)) {
    if (atomic_load_explicit(&h->info, memory_order_acquire) != info ||
        atomic_load_explicit(&h->user_key, memory_order_acquire) != (user ^ TSR_CHECK_KEY) || header_read(h, user, &b))
      return true;   /* changed meanwhile */
    memset(&v->bad[v->n], 0, sizeof v->bad[v->n]);
    v->bad[v->n].user = user;
    v->header[v->n++] = true;
    atomic_store_explicit(&h->user_key, 0, memory_order_relaxed);
    return v->n < 32;
  }
  damage_t d = block_verify(&b, b.state == TSR_BLOCK_FREED);
  if (d.kind == DAMAGE_NONE) return true;
  if (atomic_load_explicit(&h->info, memory_order_acquire) != info ||
      atomic_load_explicit(&h->user_key, memory_order_acquire) != (user ^ TSR_CHECK_KEY))
    return true;
  d = block_verify(&b, b.state == TSR_BLOCK_FREED);
  if (d.kind == DAMAGE_NONE) return true;
  v->bad[v->n] = b;
  v->damage[v->n] = d;
  v->header[v->n++] = false;
  block_repair(&b, d);
  return v->n < 32;
}

/* Live blocks' redzones and freed blocks' poison (every FREED block is
 * poisoned: see free_with_stack): the core's blocks through their headers,
 * then the guarded blocks of the table, shard by shard. Damage is repaired
 * as it is found, so a pass that stops after 32 finds the rest on the
 * next; reports are written without any lock. */
static size_t heap_verify(const char *when) {
  check_ready();
  size_t errors = 0;

  for (bool more = true; more;) {
    verify_t found;
    found.n = 0;
    more = !core_blocks_walk(verify_one, &found);
    for (size_t i = 0; i < found.n; i++) {
      if (found.header[i]) header_damage_report(found.bad[i].user, when, 0);
      else damage_report(&found.bad[i], found.damage[i], when, 0);
    }
    errors += found.n;
  }

  tsr_check_block_t bad[32];
  damage_t damage[32];
  for (size_t k = 0; k < TSR_CHECK_SHARD_COUNT; k++) {
    shard_t *s = &shards[k];
    size_t next = 0;
    for (bool more = true; more;) {
      size_t n = 0;
      shard_lock(s);
      for (; next < s->capacity && n < 32; next++) {
        tsr_check_block_t *b = &s->table[next];
        if (b->user <= TABLE_TOMBSTONE) continue;
        if ((b->flags & TSR_BLOCK_GUARDED) && b->state == TSR_BLOCK_FREED) continue;   /* protected */
        damage_t d = block_verify(b, b->state == TSR_BLOCK_FREED);
        if (d.kind != DAMAGE_NONE) {
          bad[n] = *b; damage[n++] = d;
          block_repair(b, d);
        }
      }
      more = next < s->capacity;
      shard_unlock(s);
      for (size_t i = 0; i < n; i++) damage_report(&bad[i], damage[i], when, 0);
      errors += n;
    }
  }
  return errors;
}

typedef struct each_s { bool (*fn)(const tsr_check_block_t *b, void *arg); void *arg; } each_t;
static bool each_fn(check_header_t *h, uintptr_t user, void *arg) {
  each_t *e = arg;
  tsr_check_block_t b;
  if (!header_read(h, user, &b) || b.state == STATE_FREEING) return true;
  return e->fn(&b, e->arg);
}

bool tsr_check_blocks_each(bool (*fn)(const tsr_check_block_t *b, void *arg), void *arg) {
  check_ready();
  each_t e = { fn, arg };
  if (!core_blocks_walk(each_fn, &e)) return false;
  for (size_t k = 0; k < TSR_CHECK_SHARD_COUNT; k++) {
    shard_t *s = &shards[k];
    bool go = true;
    shard_lock(s);
    for (size_t i = 0; i < s->capacity && go; i++)
      if (s->table[i].user > TABLE_TOMBSTONE) go = fn(&s->table[i], arg);
    shard_unlock(s);
    if (!go) return false;
  }
  return true;
}

tsr_public size_t tsr_check_heap(void) {
  if (pending.count != 0) pending_flush();   /* the caller's own recent frees leave the quarantine on time */
  return heap_verify("by tsr_check_heap()");
}

/* ---- process life cycle -------------------------------------------------------------------------------- */

__attribute__((constructor(102))) static void check_constructor(void) {
  check_ready();
  options_load();      /* the environment is readable now */
  tsr_bt_text_refresh();
  pending_has_key = pthread_key_create(&pending_key, pending_thread_exit) == 0;
  pthread_atfork(check_fork_prepare, check_fork_parent, check_fork_child);
  tsr_check_thread_self();
  tsr_guard_process_init();
}

/* After the program's own destructors (ours run late: priority 102 runs
 * before init.c's 101 stats report). Heap check, leak report, exit status. */
__attribute__((destructor(102))) static void check_destructor(void) {
  if (pending.count != 0) pending_flush();   /* this thread's last frees */
  heap_verify("at exit");
  tsr_leak_report();
  if (atomic_load(&tsr_check_error_count) != 0) {
    long code = tsr_option_long(TSR_OPT_CHECK_ERROR_EXITCODE);
    if (code != 0) {
      fflush(NULL);
      tsr_stats_exit_report();
      _exit((int)code);
    }
  }
}

#endif /* TSR_CHECK */
