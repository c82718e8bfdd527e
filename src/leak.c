/* leak.c -- the conservative leak scan at exit (checking build only).
 *
 * Roots: the writable PT_LOAD segments (data and bss) of every loaded
 * object (dl_iterate_phdr), and every anonymous private read-write mapping
 * of /proc/self/maps that is not tessera's: thread stacks (the calling
 * thread's from its stack pointer up, after spilling the registers; other
 * threads' whole stacks, best effort, as they may still run), the brk heap,
 * and memory that programs manage themselves (Python's pymalloc arenas,
 * GCC's garbage-collected pages): a pointer kept there is a pointer kept.
 * Every 8-byte aligned word that points into a live block's bytes -- its
 * start or an interior address -- makes the block reachable; reachable
 * blocks are scanned in turn. Then, as Valgrind and LeakSanitizer do:
 *   still reachable   found from the roots
 *   indirectly lost   not reachable, but pointed to by another lost block
 *   definitely lost   the rest
 * Reports are grouped by allocation stack with block counts and bytes.
 * Other threads' registers: while the scan runs, every other thread of the
 * process is parked in a signal handler (STOP_SIGNAL, sent with tgkill to
 * each task of /proc/self/task) that copies its general and SSE registers
 * from the signal context into our memory, which the scan reads as a root;
 * the threads stand still meanwhile, so their stacks are consistent too.
 * Best effort: a thread that blocks the signal, or does not answer within
 * STOP_WAIT_MS, is scanned without its registers.
 * Not done: blocks kept only in a mapping we cannot read.
 */
#define _GNU_SOURCE
#include "check.h"

#if TSR_CHECK
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define RANGE_MAX  ((size_t)1 << 16)
#define MAPPING_SCAN_MAX ((size_t)1 << 30)   /* bigger read-write mappings are skipped */
#define LEAK_BACKED_MAX  (MAPPING_SCAN_MAX / TSR_OS_PAGE_SIZE)   /* pages of one mapping asked at once */

enum { MARK_NONE = 0, MARK_REACHABLE = 1, MARK_INDIRECT = 2 };

typedef struct leak_block_s { uintptr_t user; uint64_t size; uint32_t stack; uint32_t thread; uint8_t mark, family; bool guarded; } leak_block_t;
typedef struct range_s { uintptr_t lo, hi; } range_t;
typedef struct group_s { uint64_t bytes, count; uint32_t stack; uint8_t kind; } group_t;

static struct {
  range_t *ranges;
  size_t range_count;
  leak_block_t *blocks;
  size_t block_count;
  uint32_t *work;           /* indices of blocks to scan */
  size_t work_count;
  uintptr_t own_base;       /* this library's load address: its data is not a root */
  uintptr_t stack_sp;       /* the calling thread's stack pointer */
  uint8_t *backed;          /* per page of a root mapping: holds data (mapping_roots) */
} leak;

/* ---- other threads' registers ----------------------------------------------------------- */

#define STOP_MAX      1024                 /* threads whose registers we keep */
#define STOP_WAIT_MS  200
#define STOP_SIGNAL   (SIGRTMAX - 3)       /* the program's handler, if any, is put back after */
#define STOP_WORDS    (NGREG + 32)         /* general registers, then xmm0-15 as words */

static struct {
  uintptr_t (*regs)[STOP_WORDS];          /* one row per thread that answered */
  _Atomic size_t rows;
  _Atomic size_t answered;
  _Atomic bool resume;
} stop;

/* Runs in each other thread: copy the registers, wait for the scan to end. */
static void stop_handler(int sig, siginfo_t *info, void *ctx) {
  (void)sig; (void)info;
  int saved_errno = errno;
  const ucontext_t *uc = ctx;
  size_t row = atomic_fetch_add(&stop.rows, 1);
  if (row < STOP_MAX) {
    for (size_t i = 0; i < NGREG; i++) stop.regs[row][i] = (uintptr_t)uc->uc_mcontext.gregs[i];
    if (uc->uc_mcontext.fpregs != NULL) memcpy(&stop.regs[row][NGREG], uc->uc_mcontext.fpregs->_xmm, 32 * sizeof(uintptr_t));
  }
  atomic_fetch_add(&stop.answered, 1);
  while (!atomic_load(&stop.resume)) tsr_platform_yield();
  errno = saved_errno;
}

/* Signal every other thread and wait for their answers; false if the
 * handler could not be installed. The caller scans stop.regs, then calls
 * threads_resume (when this returned true). */
static bool threads_stop(struct sigaction *previous) {
  stop.regs = tsr_check_map(STOP_MAX * sizeof *stop.regs, "tessera check leak registers");
  if (stop.regs == NULL) return false;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = stop_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(STOP_SIGNAL, &sa, previous) != 0) { stop.regs = NULL; return false; }
  long pid = tsr_platform_process_id(), self = tsr_platform_thread_id();
  size_t sent = 0;
  int fd = tsr_platform_open_read("/proc/self/task");
  if (fd >= 0) {
    char buf[4096];
    for (;;) {
      long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        const struct dirent64 *d = (const struct dirent64 *)(buf + off);
        off += d->d_reclen;
        long tid = 0;
        const char *c = d->d_name;
        for (; *c >= '0' && *c <= '9'; c++) tid = tid * 10 + (*c - '0');
        if (*c != 0 || tid == 0 || tid == self) continue;
        if (syscall(SYS_tgkill, pid, tid, STOP_SIGNAL) == 0) sent++;
      }
    }
    tsr_platform_close(fd);
  }
  uint64_t deadline = tsr_platform_clock_ms() + STOP_WAIT_MS;
  while (atomic_load(&stop.answered) < sent && tsr_platform_clock_ms() < deadline) tsr_platform_yield();
  return true;
}

static void threads_resume(const struct sigaction *previous) {
  atomic_store(&stop.resume, true);
  /* A thread that had the signal blocked would get it later: ignoring it
   * discards it everywhere, then the program's own action comes back. */
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(STOP_SIGNAL, &ign, NULL);
  sigaction(STOP_SIGNAL, previous, NULL);
}

/* ---- roots --------------------------------------------------------------------------- */

static void range_add(uintptr_t lo, uintptr_t hi) {
  lo = (lo + 7) & ~(uintptr_t)7;
  if (hi <= lo || leak.range_count >= RANGE_MAX) return;
  leak.ranges[leak.range_count].lo = lo;
  leak.ranges[leak.range_count].hi = hi;
  leak.range_count++;
}

static int object_roots(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size; (void)arg;
  if (info->dlpi_addr == leak.own_base) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
      range_add(info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
  }
  return 0;
}

/* [lo, hi) of a root mapping, without tessera's segments and tables. */
static void mapping_range_roots(uintptr_t lo, uintptr_t hi) {
  while (lo < hi) {
    uintptr_t chunk_end = (lo | TSR_SEGMENT_MASK) + 1;
    if (chunk_end > hi || chunk_end == 0) chunk_end = hi;
    if (tsr_segmap_kind(lo) == TSR_SEGMAP_NONE) {
      /* Skip our own tables page by page (they are few and page-aligned). */
      uintptr_t start = lo;
      for (uintptr_t p = lo; p < chunk_end; p += TSR_OS_PAGE_SIZE) {
        if (tsr_check_is_own_memory(p)) { range_add(start, p); start = p + TSR_OS_PAGE_SIZE; }
      }
      range_add(start, chunk_end);
    }
    lo = chunk_end;
  }
}

/* Anonymous read-write private mappings: the pages of each that hold data
 * (mapping_range_roots splits them at our segments and tables). */
static bool mapping_roots(const tsr_maps_entry_t *e, void *arg) {
  (void)arg;
  if (strcmp(e->perms, "rw-p") != 0) return true;
  bool anonymous = e->name[0] == 0 || strcmp(e->name, "[heap]") == 0 || strcmp(e->name, "[stack]") == 0 ||
                   (strncmp(e->name, "[anon:", 6) == 0 && strncmp(e->name, "[anon:tessera", 13) != 0);
  if (!anonymous || e->hi - e->lo > MAPPING_SCAN_MAX) return true;
  uintptr_t lo = e->lo, hi = e->hi;
  if (leak.stack_sp >= lo && leak.stack_sp < hi) lo = leak.stack_sp & ~(uintptr_t)7;   /* our stack: live part only */
  /* Pages that were never written (or were given back) read as zero and
   * hold no pointer: skip them. Reading them is not free: on a kernel that
   * gives read faults pages of their own, scanning the whole 8 MiB stacks
   * of exited threads that glibc keeps for reuse took micro-hot under
   * check from 2.8 to 8.2 MiB of peak RSS (larson/2t 6.6 -> 36 MiB). A page
   * swapped out is scanned (read back in). */
  uintptr_t page_lo = lo & ~(uintptr_t)(TSR_OS_PAGE_SIZE - 1);
  size_t pages = (hi - page_lo) / TSR_OS_PAGE_SIZE;
  if (leak.backed != NULL && pages > 1 && pages <= LEAK_BACKED_MAX &&
      tsr_platform_pages_backed(page_lo, pages, leak.backed)) {
    for (size_t i = 0; i < pages;) {
      if (!leak.backed[i]) { i++; continue; }
      size_t j = i + 1;
      while (j < pages && leak.backed[j]) j++;
      uintptr_t a = page_lo + i * TSR_OS_PAGE_SIZE, b = page_lo + j * TSR_OS_PAGE_SIZE;
      mapping_range_roots(a < lo ? lo : a, b);
      i = j;
    }
    return true;
  }
  mapping_range_roots(lo, hi);
  return true;
}

/* ---- marking ---------------------------------------------------------------------------- */

static leak_block_t *block_containing(uintptr_t w) {
  size_t lo = 0, hi = leak.block_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (leak.blocks[mid].user <= w) lo = mid + 1; else hi = mid;
  }
  if (lo == 0) return NULL;
  leak_block_t *b = &leak.blocks[lo - 1];
  return w < b->user + (b->size ? b->size : 1) ? b : NULL;
}

/* Scan [lo, hi): every word pointing into a block with mark `from` sets `to`
 * (and queues it when to is REACHABLE). skip: a block that does not count. */
static void scan_words(uintptr_t lo, uintptr_t hi, uint8_t from, uint8_t to, const leak_block_t *skip) {
  uintptr_t first = leak.blocks[0].user, last = leak.blocks[leak.block_count - 1].user + leak.blocks[leak.block_count - 1].size;
  for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
    uintptr_t guard_user;
    if ((p & (TSR_OS_PAGE_SIZE - 1)) == 0 && tsr_guard_lookup(p, &guard_user)) {
      /* A guarded block's own pages: scanned as a block, not as a root. */
      if (skip == NULL) { p += TSR_OS_PAGE_SIZE - 8; continue; }
    }
    uintptr_t w = *(const uintptr_t *)p;
    if (w < first || w > last) continue;
    leak_block_t *b = block_containing(w);
    if (b == NULL || b == skip || b->mark != from) continue;
    b->mark = to;
    if (to == MARK_REACHABLE) leak.work[leak.work_count++] = (uint32_t)(b - leak.blocks);
  }
}

static void drain(void) {
  while (leak.work_count > 0) {
    leak_block_t *b = &leak.blocks[leak.work[--leak.work_count]];
    scan_words(b->user, b->user + (b->size & ~(uint64_t)7), MARK_NONE, MARK_REACHABLE, b);
  }
}

/* ---- sorting (in place, no allocation) ------------------------------------------------------ */

#define HEAPSORT(name, type, less)                                                   \
  static void name(type *a, size_t n) {                                              \
    for (size_t start = n / 2; start-- > 0;) name##_sift(a, start, n);               \
    for (size_t end = n; end-- > 1;) { type t = a[0]; a[0] = a[end]; a[end] = t; name##_sift(a, 0, end); } \
  }
#define SIFT(name, type, less)                                                       \
  static void name##_sift(type *a, size_t root, size_t n) {                          \
    for (;;) {                                                                       \
      size_t child = 2 * root + 1;                                                   \
      if (child >= n) return;                                                        \
      if (child + 1 < n && less(&a[child], &a[child + 1])) child++;                  \
      if (!less(&a[root], &a[child])) return;                                        \
      type t = a[root]; a[root] = a[child]; a[child] = t; root = child;              \
    }                                                                                \
  }
#define BLOCK_LESS(x, y) ((x)->user < (y)->user)
#define GROUP_KEY_LESS(x, y) ((x)->mark != (y)->mark ? (x)->mark < (y)->mark : (x)->stack < (y)->stack)
#define GROUP_LESS(x, y) ((x)->kind != (y)->kind ? (x)->kind > (y)->kind : (x)->bytes < (y)->bytes)
SIFT(sort_blocks, leak_block_t, BLOCK_LESS)
HEAPSORT(sort_blocks, leak_block_t, BLOCK_LESS)
SIFT(sort_by_stack, leak_block_t, GROUP_KEY_LESS)
HEAPSORT(sort_by_stack, leak_block_t, GROUP_KEY_LESS)
SIFT(sort_groups, group_t, GROUP_LESS)
HEAPSORT(sort_groups, group_t, GROUP_LESS)

/* ---- the report ---------------------------------------------------------------------------- */

/* tsr_check_blocks_each: count the live blocks, or copy them while there is room. */
typedef struct collect_s { size_t count, room; leak_block_t *out; } collect_t;
static bool collect_fn(const tsr_check_block_t *b, void *arg) {
  collect_t *c = arg;
  if (b->state != TSR_BLOCK_LIVE) return true;
  if (c->out != NULL) {
    if (c->count >= c->room) return false;
    c->out[c->count] = (leak_block_t){ b->user, b->size, b->alloc_stack, b->alloc_thread, MARK_NONE, b->family,
                                       (b->flags & TSR_BLOCK_GUARDED) != 0 };
  }
  c->count++;
  return true;
}

static const char *const kind_text[] = { "definitely lost", "indirectly lost", "still reachable" };

void tsr_leak_report(void) {
  const char *mode = tsr_option_text(TSR_OPT_CHECK_LEAKS);
  if (strcmp(mode, "no") == 0 || strcmp(mode, "off") == 0 || strcmp(mode, "0") == 0) return;
  bool all = strcmp(mode, "all") == 0;
  Dl_info self;
  if (dladdr((void *)tsr_leak_report, &self) != 0) leak.own_base = (uintptr_t)self.dli_fbase;
  leak.ranges = tsr_check_map(RANGE_MAX * sizeof(range_t), "tessera check leak roots");
  if (leak.ranges == NULL) return;
  leak.backed = tsr_check_map(LEAK_BACKED_MAX, "tessera check leak pages");   /* NULL: scan all */
  /* The objects' roots first, before the other threads are parked
   * (dl_iterate_phdr takes the loader's lock); the mappings' after. */
  __builtin_unwind_init();   /* callee-saved registers onto the stack, which we scan */
  leak.stack_sp = (uintptr_t)__builtin_frame_address(0);
  dl_iterate_phdr(object_roots, NULL);

  /* The live blocks: core blocks by their headers (walking the core's
   * pages, which takes the core's heap lock) and guarded ones from the
   * table, before the other threads are parked (one parked holding a lock
   * would stop the walk). Counted, then copied, with room for a few more
   * made meanwhile; once the threads are parked, each core block is read
   * again and kept only if still live. */
  collect_t c = { 0, 0, NULL };
  tsr_check_blocks_each(collect_fn, &c);
  size_t live = c.count + c.count / 8 + 64;
  group_t *groups = NULL;
  size_t group_count = 0;
  uint64_t bytes[3] = { 0, 0, 0 }, counts[3] = { 0, 0, 0 };
  struct sigaction previous;
  bool stopped = false;
  if (c.count == 0) goto unlock;
  leak.blocks = tsr_check_map(live * sizeof(leak_block_t), "tessera check leak blocks");
  leak.work = tsr_check_map(live * sizeof(uint32_t), "tessera check leak work");
  groups = tsr_check_map(live * sizeof(group_t), "tessera check leak groups");
  if (leak.blocks == NULL || leak.work == NULL || groups == NULL) goto unlock;
  c = (collect_t){ 0, live, leak.blocks };
  tsr_check_blocks_each(collect_fn, &c);
  stopped = threads_stop(&previous);
  /* The mappings once the other threads stand still: a thread that exited
   * meanwhile had its alternate signal stack unmapped (guard.c), and a
   * mapping read before was then scanned after its unmapping (larson/2t
   * under load: SIGSEGV in scan_words about once in 30 runs, in the table
   * build too). Raw reads: no lock a parked thread could hold. */
  tsr_check_maps_each(mapping_roots, NULL);
  for (size_t i = 0; i < c.count; i++) {
    leak_block_t *b = &leak.blocks[i];
    tsr_check_block_t now;
    if (b->guarded || (tsr_check_core_get(b->user, &now) && now.state == TSR_BLOCK_LIVE && now.size == b->size))
      leak.blocks[leak.block_count++] = *b;
  }
  if (leak.block_count == 0) goto unlock;
  sort_blocks(leak.blocks, leak.block_count);
  for (size_t r = 0; r < leak.range_count; r++) {
    scan_words(leak.ranges[r].lo, leak.ranges[r].hi, MARK_NONE, MARK_REACHABLE, NULL);
    drain();
  }
  if (stop.regs != NULL) {
    size_t rows = atomic_load(&stop.rows);
    if (rows > STOP_MAX) rows = STOP_MAX;
    scan_words((uintptr_t)stop.regs, (uintptr_t)(stop.regs + rows), MARK_NONE, MARK_REACHABLE, NULL);
    drain();
  }
  /* Blocks that lost blocks point to are indirectly lost. */
  for (size_t i = 0; i < leak.block_count; i++) {
    leak_block_t *b = &leak.blocks[i];
    if (b->mark == MARK_REACHABLE) continue;
    scan_words(b->user, b->user + (b->size & ~(uint64_t)7), MARK_NONE, MARK_INDIRECT, b);
  }
  /* Group by kind and allocation stack. Kind order: 0 definite, 1 indirect, 2 reachable. */
  sort_by_stack(leak.blocks, leak.block_count);
  for (size_t i = 0; i < leak.block_count; i++) {
    leak_block_t *b = &leak.blocks[i];
    uint8_t kind = b->mark == MARK_NONE ? 0 : b->mark == MARK_INDIRECT ? 1 : 2;
    bytes[kind] += b->size; counts[kind]++;
    if (group_count > 0 && groups[group_count - 1].kind == kind && groups[group_count - 1].stack == b->stack) {
      groups[group_count - 1].bytes += b->size; groups[group_count - 1].count++;
    } else {
      groups[group_count++] = (group_t){ b->size, 1, b->stack, kind };
    }
  }
  sort_groups(groups, group_count);   /* definite, then indirect, then reachable; biggest first */
unlock:
  if (stopped) threads_resume(&previous);
  size_t printed = 0;
  for (size_t g = group_count; g-- > 0;) {
    group_t *gr = &groups[g];
    if (gr->kind == 2 && !all) continue;
    if (printed++ >= 100) continue;
    const uintptr_t *frames;
    size_t n = tsr_depot_get(gr->stack, &frames);
    tsr_report_begin("memory-leak", "%lu bytes in %lu block%s %s %s", (unsigned long)gr->bytes, (unsigned long)gr->count,
                     gr->count == 1 ? "" : "s", gr->count == 1 ? "is" : "are", kind_text[gr->kind]);
    tsr_report_stack("allocated at:", frames, n, false, false);
    tsr_report_end(gr->kind != 2);
  }
  if (printed > 100) tsr_message("check: %zu more leak groups not shown", printed - 100);
  if (counts[0] + counts[1] != 0 || (all && counts[2] != 0)) {
    tsr_report_begin("leak-summary", "definitely lost: %lu bytes in %lu block(s); indirectly lost: %lu bytes in %lu block(s); "
                     "still reachable: %lu bytes in %lu block(s)", (unsigned long)bytes[0], (unsigned long)counts[0],
                     (unsigned long)bytes[1], (unsigned long)counts[1], (unsigned long)bytes[2], (unsigned long)counts[2]);
    tsr_report_end(false);
  }
}
#endif /* TSR_CHECK */
