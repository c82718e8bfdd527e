/* platform_linux.c -- the only file that makes system calls for tessera.
 *
 * Everything goes through syscall(2) or plain libc wrappers that neither
 * allocate nor take locks, so these primitives work before libc has finished
 * starting, inside fork handlers and inside signal handlers.
 */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static struct {
  /* Fault injection (tests): requests to let through before failing (-1:
   * off), then how many to fail (-1: every one after). */
  _Atomic long fault_skip;
  _Atomic long fault_count;
} platform = { -1, 0 };

/* Returns true (errno ENOMEM) when fault injection says this request for
 * memory must fail. Every memory syscall asks, munmap and mprotect too: they
 * fail with ENOMEM when a split would exceed the kernel's mapping limit.
 * Off, it costs one load and a branch next to a system call. */
static bool fault_injected(void) {
  long n = atomic_load_explicit(&platform.fault_skip, memory_order_relaxed);
  if (__builtin_expect(n < 0, 1)) return false;
  while (n > 0)
    if (atomic_compare_exchange_weak_explicit(&platform.fault_skip, &n, n - 1, memory_order_relaxed,
                                              memory_order_relaxed)) return false;
  if (n < 0) return false;
  long c = atomic_load_explicit(&platform.fault_count, memory_order_relaxed);
  for (;;) {
    if (c == 0) return false;
    if (c < 0 || atomic_compare_exchange_weak_explicit(&platform.fault_count, &c, c - 1, memory_order_relaxed,
                                                       memory_order_relaxed)) break;
  }
  errno = ENOMEM;
  return true;
}

long tsr_platform_fault_inject(long skip, long count) {
  atomic_store(&platform.fault_count, count);
  return atomic_exchange(&platform.fault_skip, skip);
}

void tsr_platform_fail_after(long n) { tsr_platform_fault_inject(n, -1); }

void *tsr_platform_map(size_t size, void *hint) {
  if (fault_injected()) return NULL;
  /* No MAP_NORESERVE: the kernel's overcommit heuristic should refuse an
   * absurd request (malloc of terabytes) with ENOMEM, as it does for glibc. */
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void *tsr_platform_map_none(size_t size, void *hint) {
  if (fault_injected()) return NULL;
  void *p = mmap(hint, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

int tsr_platform_unmap(void *addr, size_t size) {
  if (fault_injected()) return ENOMEM;
  return munmap(addr, size) == 0 ? 0 : errno;
}

int tsr_platform_purge(void *addr, size_t size) {
  /* MADV_DONTNEED, not MADV_FREE: RSS must drop now (users and benchmarks
   * read RSS), and the range must read as zero so calloc can skip clearing. */
  if (fault_injected()) return ENOMEM;
  return madvise(addr, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

int tsr_platform_protect(void *addr, size_t size, bool accessible) {
  if (fault_injected()) return ENOMEM;
  return mprotect(addr, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0 ? 0 : errno;
}

void *tsr_platform_remap(void *addr, size_t old_size, size_t new_size, void *fixed_target) {
  if (fault_injected()) return NULL;
  void *p = fixed_target
    ? mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, fixed_target)
    : mremap(addr, old_size, new_size, 0);
  return p == MAP_FAILED ? NULL : p;
}

void tsr_platform_advise_huge_pages(void *addr, size_t size) {
  int saved = errno;
  madvise(addr, size, MADV_HUGEPAGE);
  errno = saved;
}

void tsr_platform_name(void *addr, size_t size, const char *name) {
  /* Naming is only a courtesy: a kernel without CONFIG_ANON_VMA_NAME says
   * EINVAL every time, so after one refusal we stop asking (a syscall per
   * huge block otherwise). */
  static _Atomic bool unsupported;
  if (atomic_load_explicit(&unsupported, memory_order_relaxed)) return;
  int saved = errno;
  if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)addr, size, (unsigned long)name) != 0 && errno == EINVAL)
    atomic_store_explicit(&unsupported, true, memory_order_relaxed);
  errno = saved;
}

uint64_t tsr_platform_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tsr_platform_clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

long tsr_platform_thread_id(void) { return syscall(SYS_gettid); }
long tsr_platform_process_id(void) { return syscall(SYS_getpid); }

bool tsr_platform_is_setuid(void) {
  return syscall(SYS_getuid) != syscall(SYS_geteuid) || syscall(SYS_getgid) != syscall(SYS_getegid);
}

uint64_t tsr_platform_random(void) {
  uint64_t r = 0;
  int saved = errno;
  long n = syscall(SYS_getrandom, &r, sizeof r, 1 /* GRND_NONBLOCK */);
  errno = saved;
  if (n != (long)sizeof r || r == 0) {
    /* No entropy yet (early boot): mix what differs between runs. */
    r = tsr_platform_clock_ns() ^ ((uint64_t)(uintptr_t)&r << 17) ^ (uint64_t)tsr_platform_process_id();
    r ^= r >> 33; r *= 0xff51afd7ed558ccdULL; r ^= r >> 33;
  }
  return r;
}

void tsr_platform_write(int fd, const char *buf, size_t len) {
  int saved = errno;
  while (len > 0) {
    long n = syscall(SYS_write, fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf += n; len -= (size_t)n;
  }
  errno = saved;
}

int tsr_platform_open_write(const char *path) {
  return (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

int tsr_platform_open_read(const char *path) {
  return (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
}

long tsr_platform_read(int fd, char *buf, size_t len) { return syscall(SYS_read, fd, buf, len); }
void tsr_platform_close(int fd) { syscall(SYS_close, fd); }

bool tsr_platform_pages_backed(uintptr_t start, size_t pages, uint8_t *out) {
  int saved = errno;
  int fd = tsr_platform_open_read("/proc/self/pagemap");
  if (fd < 0) { errno = saved; return false; }
  uint64_t entry[512];   /* bit 63: present in memory, bit 62: swapped */
  bool ok = true;
  for (size_t done = 0; done < pages && ok;) {
    size_t n = pages - done < 512 ? pages - done : 512;
    long got = syscall(SYS_pread64, fd, entry, n * sizeof entry[0],
                       (long)((start / 4096u + done) * sizeof entry[0]));
    if (got != (long)(n * sizeof entry[0])) { ok = false; break; }
    for (size_t i = 0; i < n; i++) out[done + i] = (uint8_t)((entry[i] >> 62) != 0);
    done += n;
  }
  tsr_platform_close(fd);
  errno = saved;
  return ok;
}

size_t tsr_platform_rss_bytes(void) {
  int saved = errno;
  char buf[128];
  size_t rss = 0;
  int fd = tsr_platform_open_read("/proc/self/statm");
  if (fd >= 0) {
    long n = tsr_platform_read(fd, buf, sizeof buf - 1);
    tsr_platform_close(fd);
    if (n > 0) {
      buf[n] = 0;
      const char *s = buf;
      while (*s && *s != ' ') s++;           /* skip the total size */
      while (*s == ' ') s++;
      while (*s >= '0' && *s <= '9') rss = rss * 10 + (size_t)(*s++ - '0');
      rss *= 4096u;
    }
  }
  errno = saved;
  return rss;
}

size_t tsr_platform_rss_peak_bytes(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (size_t)ru.ru_maxrss * 1024u;
}

void tsr_platform_yield(void) { syscall(SYS_sched_yield); }

/* Values of <linux/membarrier.h>, spelled here so the build needs no kernel
 * headers. A registration belongs to the address space: a forked child
 * starts unregistered and gets EPERM, so that is answered by registering. */
#define MEMBARRIER_PRIVATE_EXPEDITED          (1 << 3)
#define MEMBARRIER_REGISTER_PRIVATE_EXPEDITED (1 << 4)
int tsr_platform_barrier_all_threads(void) {
  int saved = errno;
  long r = syscall(SYS_membarrier, MEMBARRIER_PRIVATE_EXPEDITED, 0, 0);
  if (r != 0 && errno == EPERM && syscall(SYS_membarrier, MEMBARRIER_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
    r = syscall(SYS_membarrier, MEMBARRIER_PRIVATE_EXPEDITED, 0, 0);
  int result = r == 0 ? 0 : errno;
  errno = saved;
  return result;
}

int tsr_platform_dup_high(int fd) {
  int saved = errno;
  int copy = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 200);
  errno = saved;
  return copy;
}

_Noreturn void tsr_platform_abort(void) {
  /* Unblock and restore SIGABRT first: a program's own handler must not turn
   * a heap-corruption stop into a return into the corrupted heap. */
  struct sigaction sa = { .sa_handler = SIG_DFL };
  sigaction(SIGABRT, &sa, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGABRT);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), SIGABRT);
  syscall(SYS_exit_group, 134);
  __builtin_unreachable();
}
