/* guard.c -- guard-page blocks and the SIGSEGV handler (checking build only).
 *
 * A guarded block sits next to an inaccessible guard page: by default it ends
 * where the guard starts (rounded up to 16 bytes for alignment), so the first
 * access past that boundary faults at the instruction; overflows inside the
 * alignment padding (up to 15 bytes) are caught by the canary at free
 * instead. A block placed on the underflow side starts right after a guard
 * page, so the first access before it faults. When the block is freed its
 * pages are released and made inaccessible while it sits in the quarantine,
 * so a use after free (read or write) faults too.
 *
 * Where blocks go: blocks that fit one OS page take a slot of the guard pool,
 * one mapping reserved inaccessible at start-up in which data pages and guard
 * pages alternate ([G][D][G][D]...[G]): allocating a slot is one mprotect,
 * freeing it one mprotect (and one madvise before it, unless the page is
 * kept: RESIDENT_FREE_MAX), and no mapping is ever created or destroyed --
 * 2 or 3 syscalls and one TLB flush per guarded block, against 5 plus a TLB
 * shootdown for a mapping of its own. Bigger blocks (up to GUARD_SIZE_MAX)
 * still get a mapping of their own, data then guard (or guard then data).
 *
 * How many: the first COMPLETE_COUNT allocations of a process are all guarded
 * (small programs are covered completely; COMPLETE_THREADED once a second
 * thread has called the allocator, see there), then one allocation in about
 * SAMPLE_RATE, at random intervals so that no allocation pattern of the
 * program aliases with the sampling, and per thread at least
 * SAMPLE_MIN_CYCLES apart (a bound on their syscalls' share of a tight
 * allocation loop). Limits: guarded blocks in use (live or
 * quarantined) stay below the budget, 1/8 of vm.max_map_count (each costs at
 * most two kernel mappings: a quarter of the limit), capped at BUDGET_CAP;
 * live guarded blocks stay below LIVE_MAX, since each pins an OS page (4 MiB
 * at most). --guard=all lifts the cap and LIVE_MAX, not the map-count budget.
 *
 * The handler looks the faulting address up (pool arithmetic, or the page
 * table of the other guarded blocks), reports the access stack (RIP, then the
 * RBP chain of the ucontext), lifts the protection so the program can go on,
 * and returns; a fault that is not ours goes to the handler that was there
 * before us.
 */
#define _GNU_SOURCE
#include "check.h"

#if TSR_CHECK
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#define PAGE             ((size_t)TSR_OS_PAGE_SIZE)
#define GUARD_SIZE_MAX   ((size_t)256 << 10)    /* larger blocks are not guarded */
#define BUDGET_CAP       2048                   /* guarded blocks in use (auto, N) */
#define COMPLETE_COUNT   1024                   /* auto: the first allocations all guarded */
/* ... or this many in a process that has run a second thread. A guarded
 * block's free is a TLB flush, and with threads each flush interrupts every
 * core that runs one: 75 us a guarded block in larson/2t on the 2-core VM,
 * against 37 us with one thread, so the complete phase alone was a quarter
 * of its checked run (0.06 s of 0.31). A small threaded program still has
 * its first 256 blocks guarded, and sampling covers the rest as it does for
 * any large program. */
#define COMPLETE_THREADED 256
#define LIVE_MAX         1024                   /* live guarded blocks: 4 MiB of pinned pages */
#define SAMPLE_RATE      1024                   /* auto: then one allocation in about this many */
#define PAGE_SLOTS       ((size_t)1 << 16)      /* page -> block table (own-mapping blocks) */
#define ALTSTACK_SIZE    ((size_t)64 << 10)
/* Pool slots whose data page stays in memory while the block is
 * quarantined and then free: its free only makes it inaccessible, its
 * release and the next allocation of the slot need no purge. Syscalls are
 * the guards' whole cost: micro hot ran 20% faster with --guard=off when a
 * guarded block took three (protect, purge, protect); now two. Past this
 * many, a freed block's page is purged at its free, before it loses its
 * access: the purge's TLB flush then also covers the protection (a page
 * that is not present needs none), where purging at the release took a
 * second flush. A flush interrupts every core the program runs on: with
 * two threads each was about 40 us on this VM (larson/2t: 2,100 mprotect
 * and 1,000 madvise calls for the first 1,024 blocks, 0.24 s of system
 * time against 0.02 s with one thread). */
#define RESIDENT_FREE_MAX 16

enum { SIDE_OVERFLOW = 0, SIDE_UNDERFLOW = 1, SIDE_BOTH = 2, SIDE_AUTO = 3 };

typedef struct page_entry_s { uintptr_t page; uintptr_t user; } page_entry_t;

static struct {
  int mode;                  /* 0 off, 1 all, 2 auto, 3 sampled 1/rate */
  int side;                  /* SIDE_*: which end of a block touches the guard */
  size_t rate;
  size_t budget;             /* guarded blocks in use at once */
  size_t live_max;
  _Atomic size_t made;       /* guarded blocks ever made */
  _Atomic size_t in_use;     /* live or quarantined */
  _Atomic size_t live;
  _Atomic size_t flip;       /* SIDE_BOTH: alternates */
  /* The pool (TSR_LOCK_CHECK for the free list and slot_user). */
  uintptr_t pool;            /* first guard page; slot i's data page is pool + (2i+1) pages */
  size_t pool_slots;
  uintptr_t *slot_user;      /* per slot: user address | 1 when on the underflow side; 0 free */
  uint32_t *free_slots;      /* stack of free slot indices */
  size_t free_count;
  uint32_t resident_slots[RESIDENT_FREE_MAX];   /* free slots whose data page was kept: taken first */
  size_t resident_free;
  size_t kept;               /* slots whose page is kept: quarantined ones and resident_free */
  uint8_t *slot_kept;        /* per slot: 1 while its freed block's page is kept */
  page_entry_t *pages;       /* open addressing by page number (TSR_LOCK_CHECK) */
  size_t page_count;
  struct sigaction previous;
  pthread_key_t altstack_key;
  bool has_key;
  bool ready;
} guard;

/* auto: a thread's sampled guarded blocks are also at least this many TSC
 * cycles apart (about 0.3 ms at 3 GHz), and at least SAMPLE_COST_FACTOR
 * times what a guarded block's syscalls were measured to cost (guard_cost).
 * Each costs two mprotect calls and their TLB flushes: about 7 us on this
 * 2-core VM in a single-threaded program, where one per 1024 allocations
 * was 10% of a tight allocation loop (micro-hot: 0.14 s of system time in
 * 1.4 s). In a threaded program each flush interrupts the other cores:
 * larson/2t measured 40 us a call, and the fixed spacing let the guards
 * take 0.25 s of its 0.5 s. So the spacing follows the measured cost, and
 * the sampled guards take at most about 2% of any thread's time. A
 * program that allocates fewer than ~3 million blocks a second per thread
 * keeps the 1-in-1024 rate; a tighter loop gets fewer guarded blocks (the
 * first COMPLETE_COUNT are all guarded either way; `--guard=N` is exact). */
#define SAMPLE_MIN_CYCLES ((uint64_t)1 << 20)
#define SAMPLE_COST_FACTOR 50
static __thread uint64_t sample_last_tsc;
/* TSC cycles a guarded block spends in its three steps (allocation, free,
 * release), each a running average over the recent blocks; written
 * without atomics (a lost update only ages the average). */
enum { COST_ALLOC, COST_FREED, COST_RELEASE, COST_STEPS };
static _Atomic uint64_t guard_cost[COST_STEPS];
static inline void cost_add(int step, uint64_t started) {
  uint64_t cycles = __builtin_ia32_rdtsc() - started;
  uint64_t average = atomic_load_explicit(&guard_cost[step], memory_order_relaxed);
  atomic_store_explicit(&guard_cost[step], average - average / 8 + cycles / 8, memory_order_relaxed);
}
static inline bool sample_time_ok(void) {
  uint64_t now = __builtin_ia32_rdtsc();
  uint64_t spacing = SAMPLE_COST_FACTOR * (atomic_load_explicit(&guard_cost[COST_ALLOC], memory_order_relaxed) +
                                           atomic_load_explicit(&guard_cost[COST_FREED], memory_order_relaxed) +
                                           atomic_load_explicit(&guard_cost[COST_RELEASE], memory_order_relaxed));
  if (spacing < SAMPLE_MIN_CYCLES) spacing = SAMPLE_MIN_CYCLES;
  if (now - sample_last_tsc < spacing) return false;
  sample_last_tsc = now;
  return true;
}

/* Per thread: allocations left before the next sampled one (0: draw anew). */
__thread size_t tsr_guard_countdown;   /* allocations left before the next sampled one (check.h) */
static __thread uint64_t sample_rng;

/* ---- options -------------------------------------------------------------------------- */

static long max_map_count(void) {
  long max_maps = 65530;
  int fd = tsr_platform_open_read("/proc/sys/vm/max_map_count");
  if (fd >= 0) {
    char buf[32];
    long n = tsr_platform_read(fd, buf, sizeof buf - 1);
    tsr_platform_close(fd);
    long v = 0;
    for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
    if (v > 0) max_maps = v;
  }
  return max_maps;
}

/* MODE[,SIDE]: MODE off|all|auto|N, SIDE overflow|underflow|both. */
static void guard_configure(void) {
  const char *text = tsr_option_text(TSR_OPT_CHECK_GUARD);
  char mode[32];
  size_t n = 0;
  while (text[n] && text[n] != ',' && n + 1 < sizeof mode) { mode[n] = text[n]; n++; }
  mode[n] = 0;
  const char *side = text[n] == ',' ? text + n + 1 : "auto";
  guard.rate = SAMPLE_RATE;
  if (strcmp(mode, "off") == 0 || strcmp(mode, "no") == 0 || strcmp(mode, "0") == 0) guard.mode = 0;
  else if (strcmp(mode, "all") == 0) guard.mode = 1;
  else if (mode[0] >= '1' && mode[0] <= '9') {
    guard.mode = 3;
    guard.rate = 0;
    for (const char *s = mode; *s >= '0' && *s <= '9'; s++) guard.rate = guard.rate * 10 + (size_t)(*s - '0');
    if (guard.rate == 0) guard.rate = 1;
  } else guard.mode = 2;
  if (strcmp(side, "overflow") == 0) guard.side = SIDE_OVERFLOW;
  else if (strcmp(side, "underflow") == 0) guard.side = SIDE_UNDERFLOW;
  else if (strcmp(side, "both") == 0) guard.side = SIDE_BOTH;
  else guard.side = SIDE_AUTO;
  guard.budget = (size_t)max_map_count() / 8;
  guard.live_max = guard.mode == 1 ? guard.budget : LIVE_MAX;
  if (guard.budget > BUDGET_CAP && guard.mode != 1) guard.budget = BUDGET_CAP;
  sample_rng = tsr_platform_random() | 1;
  guard.ready = true;
}

/* auto: still guarding every allocation. */
static inline bool complete_phase(void) {
  size_t made = atomic_load_explicit(&guard.made, memory_order_relaxed);
  return made < COMPLETE_THREADED || (made < COMPLETE_COUNT && !tsr_check_threaded());
}

bool tsr_guard_wanted(size_t size, size_t alignment) {
  if (tsr_unlikely(!guard.ready)) return false;    /* before the constructor: no guards yet */
  if (guard.mode == 0 || size > GUARD_SIZE_MAX || alignment > PAGE) return false;
  if (guard.mode == 2 && complete_phase()) return true;
  if (guard.mode != 1) {
    /* Random intervals with mean `rate` (xorshift, per thread, no atomics). */
    if (tsr_guard_countdown == 0) {
      if (sample_rng == 0) sample_rng = (uint64_t)(uintptr_t)&sample_rng | 1;
      sample_rng ^= sample_rng << 13; sample_rng ^= sample_rng >> 7; sample_rng ^= sample_rng << 17;
      tsr_guard_countdown = 1 + (size_t)(sample_rng % (2 * guard.rate));
    }
    if (--tsr_guard_countdown != 0) return false;
    if (guard.mode == 2 && !sample_time_ok()) return false;   /* the next call draws a new interval */
  }
  return atomic_load_explicit(&guard.in_use, memory_order_relaxed) < guard.budget &&
         atomic_load_explicit(&guard.live, memory_order_relaxed) < guard.live_max;
}

/* Which side this block goes on: auto is the overflow side while every
 * allocation is guarded (what a small program's bug most likely is), then
 * either side, alternately, among the sampled ones. */
static bool side_is_underflow(void) {
  int side = guard.side;
  if (side == SIDE_AUTO)
    side = guard.mode == 2 && complete_phase() ? SIDE_OVERFLOW
                                                                                                      : SIDE_BOTH;
  if (side == SIDE_BOTH) return (atomic_fetch_add_explicit(&guard.flip, 1, memory_order_relaxed) & 1) != 0;
  return side == SIDE_UNDERFLOW;
}

/* ---- the page table of own-mapping blocks (TSR_LOCK_CHECK held) ---------------------------- */

static inline size_t page_slot(uintptr_t page) { return (size_t)((page * 0x9e3779b97f4a7c15ULL) >> 40) & (PAGE_SLOTS - 1); }

static bool pages_insert(uintptr_t page, uintptr_t user) {
  if (guard.pages == NULL) {
    guard.pages = tsr_check_map(PAGE_SLOTS * sizeof(page_entry_t), "tessera check guard pages");
    if (guard.pages == NULL) return false;
  }
  for (size_t i = page_slot(page);; i = (i + 1) & (PAGE_SLOTS - 1)) {
    if (guard.pages[i].page == 0 || guard.pages[i].page == page) {
      if (guard.pages[i].page == 0) guard.page_count++;
      guard.pages[i].page = page; guard.pages[i].user = user;
      return true;
    }
  }
}

static void pages_remove(uintptr_t page) {
  if (guard.pages == NULL) return;
  size_t mask = PAGE_SLOTS - 1, i = page_slot(page);
  for (;; i = (i + 1) & mask) {
    if (guard.pages[i].page == 0) return;
    if (guard.pages[i].page == page) break;
  }
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (guard.pages[j].page == 0) break;
    size_t home = page_slot(guard.pages[j].page);
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    guard.pages[i] = guard.pages[j];
    i = j;
  }
  guard.pages[i].page = guard.pages[i].user = 0;
  guard.page_count--;
}

static inline bool in_pool(uintptr_t addr) {
  return guard.pool != 0 && addr >= guard.pool && addr < guard.pool + (2 * guard.pool_slots + 1) * PAGE;
}

/* The block a pool address belongs to: a data page is its slot's; a guard
 * page belongs to the block whose end (overflow side) or start (underflow
 * side) touches it, the nearer one when both do. */
static bool pool_lookup(uintptr_t addr, uintptr_t *user) {
  size_t page = (addr - guard.pool) / PAGE;
  if (page & 1) {
    uintptr_t u = guard.slot_user[page / 2];
    if ((u & ~(uintptr_t)1) == 0) return false;   /* free, or being placed */
    *user = u & ~(uintptr_t)1;
    return true;
  }
  size_t after = page / 2;   /* the slot after this guard page; after - 1 is before it */
  uintptr_t below = after > 0 ? guard.slot_user[after - 1] : 0;
  uintptr_t above = after < guard.pool_slots ? guard.slot_user[after] : 0;
  bool below_ok = below > 1 && !(below & 1), above_ok = above > 1 && (above & 1);
  if (below_ok && above_ok) below_ok = (addr % PAGE) < PAGE / 2;
  if (below_ok) { *user = below; return true; }
  if (above_ok) { *user = above & ~(uintptr_t)1; return true; }
  return false;
}

bool tsr_guard_lookup(uintptr_t addr, uintptr_t *user) {
  if (in_pool(addr)) return pool_lookup(addr, user);
  if (guard.pages == NULL) return false;
  uintptr_t page = addr / PAGE;
  for (size_t i = page_slot(page);; i = (i + 1) & (PAGE_SLOTS - 1)) {
    if (guard.pages[i].page == page) { *user = guard.pages[i].user; return true; }
    if (guard.pages[i].page == 0) return false;
  }
}

/* ---- blocks ----------------------------------------------------------------------------------- */

static size_t data_size_for(size_t size, size_t alignment) {
  size_t rounded = (size + 15) & ~(size_t)15;
  size_t lead = alignment > 16 ? alignment : 0;
  return (lead + rounded + PAGE - 1) & ~(PAGE - 1);
}

/* The data pages and one guard page (pool slots share their guards). */
size_t tsr_guard_map_size(const tsr_check_block_t *b) {
  if (in_pool(tsr_guard_base(b))) return 2 * PAGE;
  return data_size_for(b->size, (size_t)1 << b->align_shift) + PAGE;
}

/* A guarded block's first data page, from its user address (the table
 * keeps no start): on the underflow side the block starts its data pages;
 * on the overflow side its data ends at the guard page, and the data pages
 * are one pool page, or data_size_for its size. */
uintptr_t tsr_guard_base(const tsr_check_block_t *b) {
  if (b->flags & TSR_BLOCK_GUARD_BEFORE) return b->user;
  uintptr_t end = (b->user + (((size_t)b->size + 15) & ~(size_t)15) + PAGE - 1) & ~(PAGE - 1);
  return end - (in_pool(end - 1) ? PAGE : data_size_for(b->size, (size_t)1 << b->align_shift));
}

/* Place the user bytes in the data pages [data, data + size) and paint the rest. */
static void place(tsr_check_block_t *b, uintptr_t data, size_t data_size, size_t size, size_t alignment, bool under) {
  uintptr_t end = data + data_size;
  uintptr_t user = under ? data : (end - ((size + 15) & ~(size_t)15)) & ~(uintptr_t)(alignment - 1);
  b->user = user;
  if (under) b->flags |= TSR_BLOCK_GUARD_BEFORE;
  memset((void *)data, TSR_CHECK_CANARY, user - data);
  memset((uint8_t *)user + size, TSR_CHECK_CANARY, end - user - size);
}

static bool pool_init(void) {
  size_t slots = guard.budget;
  void *pool = tsr_platform_map_none((2 * slots + 1) * PAGE, NULL);
  if (pool == NULL) return false;
  tsr_platform_name(pool, (2 * slots + 1) * PAGE, "tessera check guard pool");
  guard.slot_user = tsr_check_map(slots * sizeof(uintptr_t), "tessera check guard slots");
  guard.free_slots = tsr_check_map(slots * sizeof(uint32_t), "tessera check guard slots");
  guard.slot_kept = tsr_check_map(slots, "tessera check guard slots");
  if (guard.slot_user == NULL || guard.free_slots == NULL || guard.slot_kept == NULL) { tsr_platform_unmap(pool, (2 * slots + 1) * PAGE); return false; }
  for (size_t i = 0; i < slots; i++) guard.free_slots[i] = (uint32_t)(slots - 1 - i);   /* lowest first */
  guard.free_count = slots;
  guard.pool_slots = slots;
  __atomic_store_n(&guard.pool, (uintptr_t)pool, __ATOMIC_RELEASE);
  return true;
}

static bool pool_alloc(tsr_check_block_t *b, size_t size, size_t alignment, bool under) {
  tsr_lock(TSR_LOCK_CHECK);
  if (guard.pool == 0 && !pool_init()) guard.budget = 0;   /* no pool: no more tries */
  size_t slot = guard.resident_free > 0 ? guard.resident_slots[--guard.resident_free]
              : guard.free_count > 0 ? guard.free_slots[--guard.free_count] : (size_t)-1;
  if (slot != (size_t)-1 && guard.slot_kept[slot]) { guard.slot_kept[slot] = 0; guard.kept--; }
  if (slot != (size_t)-1) guard.slot_user[slot] = 1;    /* taken; the address comes below */
  tsr_unlock(TSR_LOCK_CHECK);
  if (slot == (size_t)-1) return false;
  uintptr_t data = guard.pool + (2 * slot + 1) * PAGE;
  if (tsr_platform_protect((void *)data, PAGE, true) != 0) {
    tsr_lock(TSR_LOCK_CHECK);
    guard.slot_user[slot] = 0;
    guard.free_slots[guard.free_count++] = (uint32_t)slot;
    tsr_unlock(TSR_LOCK_CHECK);
    return false;
  }
  place(b, data, PAGE, size, alignment, under);
  __atomic_store_n(&guard.slot_user[slot], b->user | (under ? 1 : 0), __ATOMIC_RELEASE);
  return true;
}

/* A mapping of its own: [data][guard] on the overflow side, [guard][data] on the other. */
static bool own_alloc(tsr_check_block_t *b, size_t size, size_t alignment, bool under) {
  size_t data = data_size_for(size, alignment);
  uint8_t *map = tsr_platform_map_none(data + PAGE, NULL);
  if (map == NULL) return false;
  uint8_t *start = under ? map + PAGE : map;
  if (tsr_platform_protect(start, data, true) != 0) { tsr_platform_unmap(map, data + PAGE); return false; }
  place(b, (uintptr_t)start, data, size, alignment, under);
  bool ok = true;
  tsr_lock(TSR_LOCK_CHECK);
  if ((guard.page_count + data / PAGE + 1) * 2 > PAGE_SLOTS) ok = false;
  for (uintptr_t p = (uintptr_t)map / PAGE; ok && p < ((uintptr_t)map + data + PAGE) / PAGE; p++) ok = pages_insert(p, b->user);
  if (!ok) for (uintptr_t p = (uintptr_t)map / PAGE; p < ((uintptr_t)map + data + PAGE) / PAGE; p++) pages_remove(p);
  tsr_unlock(TSR_LOCK_CHECK);
  if (!ok) { tsr_platform_unmap(map, data + PAGE); b->flags &= (uint8_t)~TSR_BLOCK_GUARD_BEFORE; return false; }
  return true;
}

bool tsr_guard_alloc(tsr_check_block_t *b, size_t size, size_t alignment) {
  uint64_t started = __builtin_ia32_rdtsc();
  bool under = side_is_underflow();
  bool fits_slot = under ? size <= PAGE : data_size_for(size, alignment) <= PAGE;
  if (!(fits_slot ? pool_alloc(b, size, alignment, under) : own_alloc(b, size, alignment, under))) return false;
  cost_add(COST_ALLOC, started);
  atomic_fetch_add(&guard.made, 1);
  atomic_fetch_add(&guard.in_use, 1);
  atomic_fetch_add(&guard.live, 1);
  return true;
}

static size_t data_size_of(const tsr_check_block_t *b) { return tsr_guard_map_size(b) - PAGE; }

/* A kept pool slot's page only loses its access; another pool slot's page,
 * and a mapping of its own (up to GUARD_SIZE_MAX), is purged first (see
 * RESIDENT_FREE_MAX). */
void tsr_guard_protect_freed(const tsr_check_block_t *b) {
  uint64_t started = __builtin_ia32_rdtsc();
  uintptr_t base = tsr_guard_base(b);
  bool keep = false;
  if (in_pool(base)) {
    size_t slot = (base - guard.pool) / PAGE / 2;
    tsr_lock(TSR_LOCK_CHECK);
    keep = guard.kept < RESIDENT_FREE_MAX;
    if (keep) { guard.slot_kept[slot] = 1; guard.kept++; }
    tsr_unlock(TSR_LOCK_CHECK);
  }
  if (!keep) tsr_platform_purge((void *)base, data_size_of(b));
  tsr_platform_protect((void *)base, data_size_of(b), false);
  atomic_fetch_sub(&guard.live, 1);
  cost_add(COST_FREED, started);
}

void tsr_guard_release(const tsr_check_block_t *b) {
  uint64_t started = __builtin_ia32_rdtsc();
  uintptr_t base = tsr_guard_base(b);
  if (in_pool(base)) {
    size_t slot = (base - guard.pool) / PAGE / 2;
    /* The handler lifted a guard or the data page: make the slot whole again. */
    bool unprotected = (b->flags & TSR_BLOCK_UNPROTECTED) != 0;
    if (unprotected) {
      tsr_platform_purge((void *)base, PAGE);
      tsr_platform_protect((void *)(base - PAGE), 3 * PAGE, false);
    }
    /* A kept page stays (no syscall); the others were purged at the free. */
    tsr_lock(TSR_LOCK_CHECK);
    guard.slot_user[slot] = 0;
    if (guard.slot_kept[slot] && !unprotected) {
      guard.resident_slots[guard.resident_free++] = (uint32_t)slot;
    } else {
      if (guard.slot_kept[slot]) { guard.slot_kept[slot] = 0; guard.kept--; }
      guard.free_slots[guard.free_count++] = (uint32_t)slot;
    }
    tsr_unlock(TSR_LOCK_CHECK);
  } else {
    size_t data = data_size_of(b);
    uintptr_t map = b->flags & TSR_BLOCK_GUARD_BEFORE ? base - PAGE : base;
    tsr_lock(TSR_LOCK_CHECK);
    for (uintptr_t p = map / PAGE; p < (map + data + PAGE) / PAGE; p++) pages_remove(p);
    tsr_unlock(TSR_LOCK_CHECK);
    tsr_platform_unmap((void *)map, data + PAGE);
  }
  atomic_fetch_sub(&guard.in_use, 1);
  cost_add(COST_RELEASE, started);
}

/* ---- the SIGSEGV handler -------------------------------------------------------------------------- */

/* Not ours: hand the fault to whoever was there before us. */
static void chain(int sig, siginfo_t *info, void *ctx) {
  if (guard.previous.sa_flags & SA_SIGINFO) {
    if (guard.previous.sa_sigaction != NULL) { guard.previous.sa_sigaction(sig, info, ctx); return; }
  } else if (guard.previous.sa_handler != SIG_DFL && guard.previous.sa_handler != SIG_IGN) {
    guard.previous.sa_handler(sig);
    return;
  }
  /* Default action: restore it and return; the instruction faults again. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &dfl, NULL);
}

static bool lock_try_for_a_while(void) {
  for (unsigned i = 0; i < (1u << 20); i++) {
    if (!atomic_exchange_explicit(&tsr_locks[TSR_LOCK_CHECK].held, 1, memory_order_acquire)) return true;
    __builtin_ia32_pause();
  }
  return false;
}

static void segv_handler(int sig, siginfo_t *info, void *ctx) {
  int saved_errno = errno;
  uintptr_t addr = (uintptr_t)info->si_addr;
  tsr_check_block_t b;
  bool found = false;
  if (lock_try_for_a_while()) {
    uintptr_t user;
    bool ours = tsr_guard_lookup(addr, &user);
    tsr_unlock(TSR_LOCK_CHECK);   /* never held with a shard lock */
    found = ours && tsr_check_block_unprotect(user, &b);
  }
  if (!found) { chain(sig, info, ctx); errno = saved_errno; return; }
  ucontext_t *uc = ctx;
  uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
  uintptr_t rbp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
  uintptr_t rsp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
  bool is_write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
  tsr_check_thread_t *self = tsr_check_thread_self();
  uintptr_t frames[TSR_CHECK_MAX_FRAMES];
  size_t n = tsr_bt_walk(frames, 16, rip, rbp, rsp, self->stack_hi);
  const char *access = is_write ? "write" : "read";
  if (b.state != TSR_BLOCK_LIVE) {
    tsr_report_begin("use-after-free", "%s at 0x%lx, %zu bytes inside a freed %zu-byte block, caught at the instruction "
                     "(guard page)", access, (unsigned long)addr, (size_t)(addr - b.user), (size_t)b.size);
  } else if (addr >= b.user + b.size) {
    tsr_report_begin("heap-buffer-overflow", "%s at 0x%lx, %zu bytes after a %zu-byte block, caught at the instruction "
                     "(guard page)", access, (unsigned long)addr, (size_t)(addr - b.user - b.size), (size_t)b.size);
  } else {
    tsr_report_begin("heap-buffer-underflow", "%s at 0x%lx, %zu bytes before a %zu-byte block, caught at the instruction "
                     "(guard page)", access, (unsigned long)addr, (size_t)(b.user - addr), (size_t)b.size);
  }
  tsr_report_line("  thread T%u (tid %ld)", self->number, self->tid);
  tsr_report_stack("the access:", frames, n, false, true);
  tsr_report_block(&b);
  tsr_report_end(true);
  /* Lift the protection so the program goes on (reported once per block):
   * the data pages, and the guard page it touched. */
  uintptr_t base = tsr_guard_base(&b);
  tsr_platform_protect((void *)base, data_size_of(&b), true);
  if (addr < base || addr >= base + data_size_of(&b)) tsr_platform_protect((void *)(addr & ~(PAGE - 1)), PAGE, true);
  errno = saved_errno;
}

static void altstack_free(void *stack) {
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, NULL);
  tsr_platform_unmap(stack, ALTSTACK_SIZE);
}

/* A small alternate signal stack, so the handler runs even near the end of
 * the thread's stack; freed by a key destructor at thread exit. */
void tsr_guard_thread_init(void) {
  if (guard.mode == 0 || !guard.ready) return;
  stack_t old;
  if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) return;   /* the program has one */
  void *stack = tsr_platform_map(ALTSTACK_SIZE, NULL);
  if (stack == NULL) return;
  tsr_platform_name(stack, ALTSTACK_SIZE, "tessera check altstack");   /* ours: not a leak-scan root */
  stack_t ss = { .ss_sp = stack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0 };
  if (sigaltstack(&ss, NULL) != 0) { tsr_platform_unmap(stack, ALTSTACK_SIZE); return; }
  if (guard.has_key) pthread_setspecific(guard.altstack_key, stack);
}

void tsr_guard_process_init(void) {
  guard_configure();
  if (guard.mode == 0) return;
  guard.has_key = pthread_key_create(&guard.altstack_key, altstack_free) == 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &guard.previous);
  tsr_guard_thread_init();
}
#endif /* TSR_CHECK */
