/* guard.c -- guard-page blocks and the SIGSEGV handler (checking build only).
 *
 * A guarded block gets a mapping of its own: data pages, then one
 * inaccessible guard page. The block ends at the guard, rounded up to 16
 * bytes for alignment: the first access past the 16-byte boundary faults at
 * the instruction itself; overflows inside the alignment padding (up to 15
 * bytes) are caught by the canary at free instead. When the block is freed
 * its data pages are released and made inaccessible while it sits in the
 * quarantine, so a use after free (read or write) faults too.
 * Budget: each guarded block costs two kernel mappings and one OS page, so
 * "auto" guards every block until GUARD_BUDGET guarded mappings were made
 * (small programs are covered completely), then samples 1 allocation in
 * SAMPLE_RATE while fewer than the budget are in use. The budget is 1/8 of
 * vm.max_map_count (two mappings each: a quarter of the limit), capped so
 * that the pages it pins stay small next to a program's own memory.
 * The handler looks the faulting address up in a page table of guarded
 * blocks, reports the access stack (RIP, then the RBP chain of the
 * ucontext), lifts the protection so the program can go on, and returns;
 * a fault that is not ours goes to the handler that was there before us.
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
#define GUARD_BUDGET_CAP 2048                   /* pinned pages: 8 MiB at most */
#define SAMPLE_RATE      256
#define PAGE_SLOTS       ((size_t)1 << 18)      /* page -> block table */
#define ALTSTACK_SIZE    ((size_t)64 << 10)

typedef struct page_entry_s { uintptr_t page; uintptr_t user; } page_entry_t;

static struct {
  int mode;                  /* 0 off, 1 all, 2 auto, 3 sampled 1/rate */
  size_t rate;
  size_t budget;
  _Atomic size_t made;       /* guarded blocks ever made */
  _Atomic size_t in_use;     /* guarded mappings now (live or quarantined) */
  _Atomic size_t counter;
  page_entry_t *pages;       /* open addressing by page number (TSR_LOCK_CHECK) */
  size_t page_count;
  struct sigaction previous;
  pthread_key_t altstack_key;
  bool has_key;
  bool ready;
} guard;

/* ---- options -------------------------------------------------------------------------- */

static void guard_configure(void) {
  const char *text = tsr_option_text(TSR_OPT_CHECK_GUARD);
  guard.rate = SAMPLE_RATE;
  if (strcmp(text, "off") == 0 || strcmp(text, "no") == 0 || strcmp(text, "0") == 0) guard.mode = 0;
  else if (strcmp(text, "all") == 0) guard.mode = 1;
  else if (text[0] >= '1' && text[0] <= '9') {
    guard.mode = 3;
    guard.rate = 0;
    for (const char *s = text; *s >= '0' && *s <= '9'; s++) guard.rate = guard.rate * 10 + (size_t)(*s - '0');
    if (guard.rate == 0) guard.rate = 1;
  } else guard.mode = 2;
  long max_maps = 65530;
  int fd = tsr_platform_open_read("/proc/sys/vm/max_map_count");
  if (fd >= 0) {
    char buf[32];
    long n = tsr_platform_read(fd, buf, sizeof buf - 1);
    tsr_platform_close(fd);
    if (n > 0) {
      long v = 0;
      for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
      if (v > 0) max_maps = v;
    }
  }
  guard.budget = (size_t)max_maps / 8;
  if (guard.budget > GUARD_BUDGET_CAP && guard.mode != 1) guard.budget = GUARD_BUDGET_CAP;
  guard.ready = true;
}

bool tsr_guard_wanted(size_t size, size_t alignment) {
  if (tsr_unlikely(!guard.ready)) return false;    /* before the constructor: no guards yet */
  if (guard.mode == 0 || size > GUARD_SIZE_MAX || alignment > PAGE) return false;
  size_t in_use = atomic_load_explicit(&guard.in_use, memory_order_relaxed);
  if (in_use >= guard.budget) return false;
  if (guard.mode == 1) return true;
  if (guard.mode == 2 && atomic_load_explicit(&guard.made, memory_order_relaxed) < guard.budget) return true;
  return atomic_fetch_add_explicit(&guard.counter, 1, memory_order_relaxed) % guard.rate == 0;
}

/* ---- the page table (TSR_LOCK_CHECK held) ------------------------------------------------ */

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

bool tsr_guard_lookup(uintptr_t addr, uintptr_t *user) {
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
  size_t lead = tsr_check_left_size(alignment) + (alignment > 16 ? alignment : 0);
  return (lead + rounded + PAGE - 1) & ~(PAGE - 1);
}

size_t tsr_guard_map_size(const tsr_check_block_t *b) {
  return data_size_for(b->size, (size_t)1 << b->align_shift) + PAGE;
}

bool tsr_guard_alloc(tsr_check_block_t *b, size_t size, size_t alignment) {
  size_t data = data_size_for(size, alignment);
  uint8_t *map = tsr_platform_map(data + PAGE, NULL);
  if (map == NULL) return false;
  if (tsr_platform_protect(map + data, PAGE, false) != 0) { tsr_platform_unmap(map, data + PAGE); return false; }
  uintptr_t end = (uintptr_t)map + data;
  uintptr_t user = (end - ((size + 15) & ~(size_t)15)) & ~(uintptr_t)(alignment - 1);
  b->base = (uintptr_t)map;
  b->user = user;
  memset(map, TSR_CHECK_CANARY, user - (uintptr_t)map);
  memset((uint8_t *)user + size, TSR_CHECK_CANARY, end - user - size);
  bool ok = true;
  tsr_lock(TSR_LOCK_CHECK);
  if ((guard.page_count + data / PAGE + 1) * 2 > PAGE_SLOTS) ok = false;
  for (uintptr_t p = (uintptr_t)map / PAGE; ok && p <= end / PAGE; p++) ok = pages_insert(p, user);
  if (!ok) for (uintptr_t p = (uintptr_t)map / PAGE; p <= end / PAGE; p++) pages_remove(p);
  tsr_unlock(TSR_LOCK_CHECK);
  if (!ok) { tsr_platform_unmap(map, data + PAGE); return false; }
  atomic_fetch_add(&guard.made, 1);
  atomic_fetch_add(&guard.in_use, 1);
  return true;
}

void tsr_guard_protect_freed(const tsr_check_block_t *b) {
  size_t data = tsr_guard_map_size(b) - PAGE;
  tsr_platform_purge((void *)b->base, data);
  tsr_platform_protect((void *)b->base, data, false);
}

void tsr_guard_release(const tsr_check_block_t *b) {
  size_t map_size = tsr_guard_map_size(b);
  tsr_lock(TSR_LOCK_CHECK);
  for (uintptr_t p = b->base / PAGE; p < (b->base + map_size) / PAGE; p++) pages_remove(p);
  tsr_unlock(TSR_LOCK_CHECK);
  tsr_platform_unmap((void *)b->base, map_size);
  atomic_fetch_sub(&guard.in_use, 1);
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
    if (tsr_guard_lookup(addr, &user)) {
      size_t capacity;
      tsr_check_block_t *table = tsr_check_table(&capacity);
      for (size_t i = (size_t)(((user >> 4) * 0x9e3779b97f4a7c15ULL) >> 20) & (capacity - 1);; i = (i + 1) & (capacity - 1)) {
        if (table[i].user == user) { b = table[i]; found = true; table[i].flags |= TSR_BLOCK_UNPROTECTED; break; }
        if (table[i].user == 0) break;
      }
    }
    tsr_unlock(TSR_LOCK_CHECK);
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
  if (b.state == TSR_BLOCK_FREED) {
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
  /* Lift the protection so the program goes on (reported once per block). */
  size_t map_size = tsr_guard_map_size(&b);
  tsr_platform_protect((void *)b.base, map_size, true);
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
