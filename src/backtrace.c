/* backtrace.c -- stack capture that never allocates, the stack depot, and
 * symbols for reports (checking build only).
 *
 * Capture walks the frame-pointer chain (the check library is built with
 * -fno-omit-frame-pointer) and accepts a frame only while it stays inside
 * the thread's stack and grows upward, so code built without frame pointers
 * gives a short or noisy stack, never a fault. We do not use libgcc's
 * unwinder: loading it allocates, and it is not a dependency of ours.
 * The depot stores each distinct stack once (hash of frames -> id) in
 * memory mapped here; entries never change once written, so readers need
 * no lock. Symbols come from dladdr and, at report time only and where it is
 * installed, from addr2line run in a child (vfork + execve, its output read
 * through a pipe into a stack buffer): file:line without ever touching the
 * heap we check. Deliberately absent: DWARF parsing of our own.
 */
#define _GNU_SOURCE
#include "check.h"

#if TSR_CHECK
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEPOT_ARENA_SIZE  ((size_t)256 << 20)   /* frames, reserved lazily */
#define DEPOT_SLOT_SHIFT  22                    /* 4M hash slots (16 MiB, lazily touched) */
#define DEPOT_SLOT_COUNT  ((size_t)1 << DEPOT_SLOT_SHIFT)

static struct {
  uintptr_t *arena;        /* [hash|count] word, then the frames; id = word index + 1 */
  size_t     arena_used;   /* words */
  uint32_t  *slots;        /* open addressing: depot ids */
  size_t     slot_used;
  uintptr_t  own_lo, own_hi;   /* this library's mapped range (for skipping our frames) */
} depot;

/* ---- code ranges ------------------------------------------------------------------ */

/* The executable segments of the loaded objects. Code built without frame
 * pointers keeps other values in RBP, and a chain through them yields
 * "return addresses" that are heap or stack words: every such stack is new
 * to the depot, which then grew by an entry per allocation (pool-local: 5 MB
 * of depot, a lock and a miss per call). A frame is accepted only when it
 * points into code. Rebuilt from dl_iterate_phdr when a walk meets an
 * unknown address (dlopen), at most every TEXT_REFRESH_MS. Readers take no
 * lock: a walk racing a rebuild may stop early, never fault. */
#define TEXT_MAX 256
#define TEXT_REFRESH_MS 200
static struct {
  uintptr_t lo[TEXT_MAX], hi[TEXT_MAX];
  uintptr_t span_lo, span_hi;   /* the lowest lo and the highest hi */
  _Atomic size_t count;
  _Atomic size_t generation;   /* bumped by every rebuild */
  uint64_t refreshed_ms;
  _Atomic bool busy;
} text;

static int text_add(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  size_t *n = arg;
  for (int i = 0; i < info->dlpi_phnum && *n < TEXT_MAX; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    text.lo[*n] = info->dlpi_addr + ph->p_vaddr;
    text.hi[*n] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    (*n)++;
  }
  return 0;
}

static __thread size_t text_hint;   /* the range of the last hit: most frames share a few */
/* The last value refused, and the ranges' generation then: a walk out of a
 * function built without frame pointers meets the same stray word on every
 * call, and refusing it cost a scan of all the ranges (pool local: 20
 * instructions a capture). */
static __thread uintptr_t text_miss;
static __thread size_t text_miss_generation;

static inline bool text_contains(uintptr_t pc) {
  size_t n = atomic_load_explicit(&text.count, memory_order_acquire);
  if (n == 0) return true;   /* not known yet: accept, as before */
  size_t h = text_hint;
  if (h < n && pc >= text.lo[h] && pc < text.hi[h]) return true;
  size_t generation = atomic_load_explicit(&text.generation, memory_order_relaxed);
  if (pc < text.span_lo || pc >= text.span_hi) return false;   /* counters, stack and most heap words */
  if (pc == text_miss && generation == text_miss_generation) return false;
  for (size_t i = 0; i < n; i++) if (pc >= text.lo[i] && pc < text.hi[i]) { text_hint = i; return true; }
  text_miss = pc;
  text_miss_generation = generation;
  return false;
}

bool tsr_bt_text_refresh(void) {
  uint64_t now = tsr_platform_clock_ms();
  if (text.refreshed_ms != 0 && now - text.refreshed_ms < TEXT_REFRESH_MS) return false;
  if (atomic_exchange(&text.busy, true)) return false;
  text.refreshed_ms = now;
  size_t n = 0;
  atomic_store_explicit(&text.count, 0, memory_order_release);
  dl_iterate_phdr(text_add, &n);
  uintptr_t span_lo = UINTPTR_MAX, span_hi = 0;
  for (size_t i = 0; i < n; i++) {
    if (text.lo[i] < span_lo) span_lo = text.lo[i];
    if (text.hi[i] > span_hi) span_hi = text.hi[i];
  }
  text.span_lo = span_lo;
  text.span_hi = span_hi;
  atomic_store_explicit(&text.count, n, memory_order_release);
  atomic_fetch_add_explicit(&text.generation, 1, memory_order_relaxed);
  atomic_store(&text.busy, false);
  return true;
}

/* ---- capture ------------------------------------------------------------------- */

size_t tsr_bt_walk(uintptr_t *frames, size_t max, uintptr_t pc0, uintptr_t fp, uintptr_t lo, uintptr_t hi) {
  size_t n = 0;
  if (pc0 != 0 && n < max) frames[n++] = pc0;
  if (lo == 0 || hi == 0) return n;
  while (n < max) {
    if (fp < lo || hi < 16 || fp > hi - 16 || (fp & 7) != 0) break;
    uintptr_t next = ((uintptr_t *)fp)[0];
    uintptr_t ret = ((uintptr_t *)fp)[1];
    if (ret < 4096 || !text_contains(ret)) break;
    frames[n++] = ret;
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

/* ---- the depot ------------------------------------------------------------------- */

/* Stack hash: folded frame by frame, so the capture computes it while it
 * walks (tsr_bt_capture mirrors this loop), the count mixed in last. */
static inline uint64_t hash_step(uint64_t h, uintptr_t frame) {
  h ^= frame; h *= 0xff51afd7ed558ccdULL; return h ^ (h >> 32);
}
static inline uint64_t hash_end(uint64_t h, size_t count) {
  h ^= count; h *= 0x9e3779b97f4a7c15ULL; return h ^ (h >> 29);
}
static uint64_t frames_hash(const uintptr_t *frames, size_t count) {
  uint64_t h = 0;
  for (size_t i = 0; i < count; i++) h = hash_step(h, frames[i]);
  return hash_end(h, count);
}

/* Per-thread cache of recent stacks: a call site that repeats skips the lock
 * (its entry is compared frame by frame, so a hash collision costs a miss,
 * never a wrong stack). Small on purpose: static TLS is scarce for a library
 * that may be dlopen'ed. */
#define CACHE_COUNT 64
static __thread struct { uint64_t hash; uint32_t id; } depot_cache[CACHE_COUNT];

static inline size_t cache_index(uint64_t h) { return (size_t)(h >> 7) & (CACHE_COUNT - 1); }

/* The cached id of frames (hash h), or 0. */
static inline uint32_t cache_find(const uintptr_t *frames, size_t count, uint64_t h) {
  size_t c = cache_index(h);
  uint32_t id = depot_cache[c].id;
  if (depot_cache[c].hash != h || id == 0) return 0;
  const uintptr_t *entry = depot.arena + (id - 1);
  if ((entry[0] & 0xffffffffu) != count) return 0;
  for (size_t i = 0; i < count; i++) if (entry[1 + i] != frames[i]) return 0;
  return id;
}

static uint32_t depot_insert(const uintptr_t *frames, size_t count, uint64_t h);

/* An entry's first word: the stack hash's top half, then the frame count. */
static inline uintptr_t depot_head(uint64_t h, size_t count) { return ((uintptr_t)(uint32_t)(h >> 32) << 32) | count; }
static inline bool depot_entry_is(uint32_t id, uintptr_t head, const uintptr_t *frames, size_t count) {
  const uintptr_t *entry = depot.arena + (id - 1);
  return entry[0] == head && memcmp(entry + 1, frames, count * sizeof(uintptr_t)) == 0;
}

/* The depot's id of frames (hash h), 0 when it does not hold them; no
 * lock: a slot is written once, with release, after its entry, and the
 * arena is mapped before the slots are published. In python, whose stacks
 * past the first frame change from call to call (no frame pointers), the
 * per-thread cache missed on 482,000 of 3.7 million captures, each a trip
 * through TSR_LOCK_CHECK that found one of its 727 stacks already there. */
static uint32_t depot_find(const uintptr_t *frames, size_t count, uint64_t h) {
  uint32_t *slots = __atomic_load_n(&depot.slots, __ATOMIC_ACQUIRE);
  if (slots == NULL) return 0;
  uintptr_t head = depot_head(h, count);
  size_t mask = DEPOT_SLOT_COUNT - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {   /* ends: the table is never above 80% full */
    uint32_t e = __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
    if (e == 0) return 0;
    if (depot_entry_is(e, head, frames, count)) return e;
  }
}

/* The id of frames, from the cache, the depot, or a new depot entry (0:
 * the depot is full); the cache keeps it. */
static inline uint32_t depot_id(const uintptr_t *frames, size_t count, uint64_t h) {
  uint32_t id = cache_find(frames, count, h);
  if (id != 0) return id;
  id = depot_find(frames, count, h);
  if (id == 0) id = depot_insert(frames, count, h);
  depot_cache[cache_index(h)].hash = h;
  depot_cache[cache_index(h)].id = id;
  return id;
}

/* Per-thread memo of recent stacks, by their first return address: a
 * call site met again is recognised frame by frame during the walk itself,
 * and its frames need neither the code-range test nor the hash nor the
 * cache above (stack captures were 12% of micro-hot's run; these three
 * most of a capture's instructions, callgrind). Stacks up to MEMO_FRAMES
 * frames only; static TLS is scarce, as for the cache. */
#define MEMO_SETS 4
#define MEMO_FRAMES 14
/* stop: the word after the last frame that the walk refused as a return
 * address (0: it stopped for another reason). Code without frame pointers
 * leaves the same stray word there call after call; comparing it spares
 * the code-range test, whose one-entry miss cache two call sites (a malloc
 * and a free) evicted from each other (pool-local: 46 instructions a pair,
 * callgrind). */
typedef struct memo_s { uintptr_t frames[MEMO_FRAMES]; uintptr_t stop; uint32_t count, id; } memo_t;
/* Two ways a set: a malloc and a free a few bytes apart in one function
 * (larson) fell in one entry of a direct-mapped memo a quarter of the
 * time, and then each capture replaced the other's stack: every capture
 * took the full walk, the hash and the cache (larson/2t under check: 14%
 * of its time in the walk, perf). */
static __thread memo_t memo[MEMO_SETS][2];

static inline size_t memo_set(uintptr_t first) { return (size_t)((first * 0x9e3779b97f4a7c15ULL) >> 62); }
/* The entry whose stack starts at first, or the set's other way (which the
 * callers compare first against anyway). */
static inline memo_t *memo_of(uintptr_t first) {
  memo_t *set = memo[memo_set(first)];
  return set[0].frames[0] == first ? &set[0] : &set[1];
}

/* The common case of a capture, inline in check.c's stack_capture: the
 * memo's stack again, compared frame by frame without copying. The walk
 * of tsr_bt_capture would have stopped exactly where the memo ends (its
 * rules are repeated here), so the answer is the memo's id; 0: anything
 * else (tsr_bt_capture walks again from the start). A third of a capture's
 * instructions, and its call, saved (callgrind, micro-hot). */
/* fp and lo are frame addresses (never 0, 16-byte aligned). An entry is
 * either empty (frames[0] 0, never a return address: the first compare
 * fails) or written by tsr_bt_capture with an id and 1 to max frames (the
 * stack depth is fixed at start-up), so neither is tested again here. */
__attribute__((always_inline)) inline uint32_t tsr_bt_memo_match(uintptr_t fp, uintptr_t lo, uintptr_t hi, size_t max) {
  uintptr_t top = hi - 16;
  if (hi < 16 || fp < lo || fp > top) return 0;
  memo_t *m = memo_of(((uintptr_t *)fp)[1]);
  size_t count = m->count;
  for (size_t k = 0;; k++) {
    uintptr_t next = ((uintptr_t *)fp)[0];
    if (((uintptr_t *)fp)[1] != m->frames[k]) return 0;
    if (k + 1 == count) {
      if (count == max || next <= fp || next < lo || next > top || (next & 7) != 0) return m->id;
      uintptr_t ret = ((uintptr_t *)next)[1];
      if (ret == m->stop) return m->id;
      if (ret >= 4096 && text_contains(ret)) return 0;
      m->stop = ret;
      return m->id;
    }
    if (next <= fp || next < lo || next > top || (next & 7) != 0) return 0;
    fp = next;
  }
}

/* The capture of the hot paths: tsr_bt_walk from fp without a first pc,
 * compared with the memo of its first frame as it goes; on a difference,
 * the hash, then the cache, then the depot (and its lock) only on a miss.
 * *walked: the frame count. */
__attribute__((always_inline)) inline uint32_t tsr_bt_capture(uintptr_t fp, uintptr_t lo, uintptr_t hi, size_t max,
                                                               size_t *walked) {
  uintptr_t frames[TSR_CHECK_MAX_FRAMES];
  size_t n = 0;
  memo_t *m = NULL;
  uintptr_t stop = 0;
  bool same = true;   /* frames[0..n) are m's first n */
  if (hi >= 16 && lo != 0) {
    uintptr_t top = hi - 16;
    while (n < max) {
      if (fp < lo || fp > top || (fp & 7) != 0) break;
      uintptr_t next = ((uintptr_t *)fp)[0];
      uintptr_t ret = ((uintptr_t *)fp)[1];
      if (n == 0) m = memo_of(ret);
      if (!(same && n < m->count && m->frames[n] == ret)) {
        same = false;
        if (ret < 4096 || !text_contains(ret)) { stop = ret; break; }
      }
      frames[n++] = ret;
      if (next <= fp) break;
      fp = next;
    }
  }
  *walked = n;
  if (n == 0) return 0;
  if (same && n == m->count && m->id != 0) return m->id;
  uint64_t h = 0;
  for (size_t i = 0; i < n; i++) h = hash_step(h, frames[i]);
  h = hash_end(h, n);
  uint32_t id = depot_id(frames, n, h);
  /* An entry is replaced only by another call site (or when empty): past
   * the first frame, code without frame pointers gives stacks that differ
   * from call to call (stale words read as frames), and replacing the entry
   * at each of them cost pool-local 8% (its two variants alternated). */
  if (n <= MEMO_FRAMES && id != 0 && (m->count == 0 || m->frames[0] != frames[0])) {
    /* A new call site: into the first way, whose entry moves to the second. */
    memo_t *set = memo[memo_set(frames[0])];
    set[1] = set[0];
    memcpy(set[0].frames, frames, n * sizeof(uintptr_t));
    set[0].count = (uint32_t)n;
    set[0].id = id;
    set[0].stop = stop;
  }
  return id;
}

uint32_t tsr_depot_put(const uintptr_t *frames, size_t count) {
  if (count == 0) return 0;
  return depot_id(frames, count, frames_hash(frames, count));
}

/* The depot's id of frames (hash h), stored if new (another thread may
 * have stored it since depot_find); 0 when full. Takes TSR_LOCK_CHECK. */
static tsr_noinline uint32_t depot_insert(const uintptr_t *frames, size_t count, uint64_t h) {
  uintptr_t head = depot_head(h, count);
  uint32_t id = 0;
  tsr_lock(TSR_LOCK_CHECK);
  if (depot.slots == NULL) {
    uintptr_t *arena = depot.arena != NULL ? depot.arena : tsr_check_map(DEPOT_ARENA_SIZE, "tessera check stacks");
    depot.arena = arena;
    uint32_t *slots = arena != NULL ? tsr_check_map(DEPOT_SLOT_COUNT * sizeof(uint32_t), "tessera check stack slots") : NULL;
    if (slots == NULL) goto out;
    __atomic_store_n(&depot.slots, slots, __ATOMIC_RELEASE);   /* after the arena: depot_find */
  }
  size_t mask = DEPOT_SLOT_COUNT - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    uint32_t e = depot.slots[i];
    if (e == 0) {
      if (depot.slot_used * 10 > DEPOT_SLOT_COUNT * 8) break;            /* full: unknown stack */
      if ((depot.arena_used + count + 1) * sizeof(uintptr_t) > DEPOT_ARENA_SIZE) break;
      uintptr_t *entry = depot.arena + depot.arena_used;
      entry[0] = head;
      memcpy(entry + 1, frames, count * sizeof(uintptr_t));
      id = (uint32_t)(depot.arena_used + 1);
      __atomic_store_n(&depot.arena_used, depot.arena_used + count + 1, __ATOMIC_RELAXED);   /* read by tsr_depot_get */
      __atomic_store_n(&depot.slots[i], id, __ATOMIC_RELEASE);
      depot.slot_used++;
      break;
    }
    if (depot_entry_is(e, head, frames, count)) {
      id = e;
      break;
    }
  }
out:
  tsr_unlock(TSR_LOCK_CHECK);
  return id;
}

/* Bounded by the arena's used words: a freed block's free stack id is
 * outside its header's check (check.c, header_sum), so a wild write there
 * may give any id, and it must not read past the arena (a wrong stack at
 * worst). */
size_t tsr_depot_get(uint32_t id, const uintptr_t **frames) {
  *frames = NULL;
  size_t used = __atomic_load_n(&depot.arena_used, __ATOMIC_RELAXED);
  if (id == 0 || depot.arena == NULL || id > used) return 0;
  uintptr_t *entry = depot.arena + (id - 1);
  size_t count = (size_t)(entry[0] & 0xffffffffu);
  if (count > TSR_CHECK_MAX_FRAMES || id + count > used) return 0;
  *frames = entry + 1;
  return count;
}

/* ---- symbols -------------------------------------------------------------------- */

static int ehdr_marker;   /* any object of ours: dladdr gives our base */

bool tsr_bt_is_own(uintptr_t pc) {
  if (depot.own_lo == 0) {
    Dl_info info;
    if (dladdr(&ehdr_marker, &info) == 0) return false;
    depot.own_lo = (uintptr_t)info.dli_fbase;
    depot.own_hi = (uintptr_t)&ehdr_marker;   /* data comes after text in our layout */
  }
  return pc >= depot.own_lo && pc < depot.own_hi;
}

static const char *addr2line_path(void) {
  static const char *const paths[] = { "/usr/bin/addr2line", "/bin/addr2line", "/usr/local/bin/addr2line" };
  static int found = -2;
  if (found == -2) {
    found = -1;
    for (int i = 0; i < 3; i++) if (access(paths[i], X_OK) == 0) { found = i; break; }
  }
  return found >= 0 ? paths[found] : NULL;
}

/* Run addr2line -f -C -e object addrs...; output into out (NUL-terminated).
 * false if it could not run. No allocation: argv and env live on our stack. */
static bool addr2line_run(const char *object, const uintptr_t *offsets, size_t count, char *out, size_t size) {
  const char *tool = addr2line_path();
  if (tool == NULL || count == 0) return false;
  char text[TSR_CHECK_MAX_FRAMES][24];
  char *argv[TSR_CHECK_MAX_FRAMES + 8];
  size_t a = 0;
  argv[a++] = (char *)"addr2line";
  argv[a++] = (char *)"-f";
  argv[a++] = (char *)"-C";
  argv[a++] = (char *)"-e";
  argv[a++] = (char *)object;
  for (size_t i = 0; i < count && i < TSR_CHECK_MAX_FRAMES; i++) {
    tsr_format(text[i], sizeof text[i], "0x%lx", (unsigned long)offsets[i]);
    argv[a++] = text[i];
  }
  argv[a] = NULL;
  char *envp[] = { NULL };   /* no LD_PRELOAD: addr2line must not run under us */
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  pid_t pid = vfork();
  if (pid == 0) {
    dup2(fds[1], 1);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    execve(tool, argv, envp);
    _exit(127);
  }
  close(fds[1]);
  size_t used = 0;
  if (pid > 0) {
    for (;;) {
      ssize_t n = read(fds[0], out + used, size - 1 - used);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      used += (size_t)n;
      if (used + 1 >= size) break;
    }
  }
  close(fds[0]);
  out[used] = 0;
  if (pid > 0) { int status; while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {} }
  return pid > 0 && used > 0;
}

/* Next line of text (in place); NULL at the end. */
static char *next_line(char **cursor) {
  char *s = *cursor;
  if (s == NULL || *s == 0) return NULL;
  char *e = strchr(s, '\n');
  if (e != NULL) { *e = 0; *cursor = e + 1; } else *cursor = s + strlen(s);
  return s;
}

/* An object's load offset for addr2line: executables linked at a fixed
 * address (ET_EXEC) take the address itself. */
static uintptr_t object_offset(const Dl_info *info, uintptr_t pc) {
  const unsigned char *ehdr = info->dli_fbase;
  uint16_t type = ehdr != NULL ? (uint16_t)(ehdr[16] | (ehdr[17] << 8)) : 3;
  return type == 2 /* ET_EXEC */ ? pc : pc - (uintptr_t)info->dli_fbase;
}

void tsr_bt_symbolize(const uintptr_t *frames, size_t count, bool skip_own, bool first_is_pc,
                      void (*line)(const char *text, void *arg), void *arg) {
  if (count > TSR_CHECK_MAX_FRAMES) count = TSR_CHECK_MAX_FRAMES;
  /* Skip our own leading frames (the public entry and helpers). */
  size_t first = 0;
  while (skip_own && first + 1 < count && tsr_bt_is_own(frames[first])) first++;
  Dl_info info[TSR_CHECK_MAX_FRAMES];
  bool known[TSR_CHECK_MAX_FRAMES];
  char func[TSR_CHECK_MAX_FRAMES][96];
  char where[TSR_CHECK_MAX_FRAMES][160];
  for (size_t i = first; i < count; i++) {
    /* A return address points after its call: look up the call itself. */
    uintptr_t pc = i == 0 && first_is_pc ? frames[i] : frames[i] - 1;
    known[i] = dladdr((void *)pc, &info[i]) != 0 && info[i].dli_fname != NULL;
    func[i][0] = where[i][0] = 0;
  }
  /* One addr2line run per object. */
  bool done[TSR_CHECK_MAX_FRAMES] = { false };
  for (size_t i = first; i < count; i++) {
    if (!known[i] || done[i]) continue;
    size_t idx[TSR_CHECK_MAX_FRAMES], n = 0;
    uintptr_t offsets[TSR_CHECK_MAX_FRAMES];
    for (size_t j = i; j < count; j++) {
      if (!known[j] || done[j] || info[j].dli_fbase != info[i].dli_fbase) continue;
      done[j] = true;
      idx[n] = j;
      offsets[n++] = object_offset(&info[j], j == 0 && first_is_pc ? frames[j] : frames[j] - 1);
    }
    const char *object = info[i].dli_fname;
    char exe[512];
    if (object[0] == 0) {   /* the main program: dladdr gives "" on some systems */
      ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
      exe[len > 0 ? len : 0] = 0;
      object = exe;
    }
    char out[8192];
    if (!addr2line_run(object, offsets, n, out, sizeof out)) continue;
    char *cursor = out;
    for (size_t k = 0; k < n; k++) {
      char *fn = next_line(&cursor), *fl = next_line(&cursor);
      if (fn == NULL || fl == NULL) break;
      if (strcmp(fn, "??") != 0) tsr_format(func[idx[k]], sizeof func[0], "%s", fn);
      if (strncmp(fl, "??", 2) != 0) {
        char *disc = strstr(fl, " (discriminator");
        if (disc != NULL) *disc = 0;
        tsr_format(where[idx[k]], sizeof where[0], "%s", fl);
      }
    }
  }
  for (size_t i = first; i < count; i++) {
    char text[512];
    const char *object = known[i] ? info[i].dli_fname : "";
    const char *slash = strrchr(object, '/');
    const char *base_name = slash != NULL ? slash + 1 : object;
    if (func[i][0] == 0 && known[i] && info[i].dli_sname != NULL)
      tsr_format(func[i], sizeof func[0], "%s+0x%lx", info[i].dli_sname,
                 (unsigned long)(frames[i] - (uintptr_t)info[i].dli_saddr));
    if (where[i][0] != 0)
      tsr_format(text, sizeof text, "#%zu 0x%lx in %s %s", i - first, (unsigned long)frames[i],
                 func[i][0] ? func[i] : "??", where[i]);
    else
      tsr_format(text, sizeof text, "#%zu 0x%lx in %s (%s)", i - first, (unsigned long)frames[i],
                 func[i][0] ? func[i] : "??", base_name[0] ? base_name : "unknown object");
    line(text, arg);
  }
}
#endif /* TSR_CHECK */
