/* platform.h -- the OS contract. platform_linux.c is the only file that makes
 * system calls for memory, time, files and threads' identities; everything
 * above talks to the OS through these primitives.
 *
 * Conventions: every function is async-signal-safe, never allocates and never
 * calls back into tessera. Functions returning a pointer return NULL on
 * failure and leave errno as the kernel set it; int-returning ones return 0
 * on success and an errno value on failure.
 */
#ifndef TSR_PLATFORM_H
#define TSR_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reserve and commit size bytes of zeroed read-write memory anywhere; the
 * kernel commits lazily on first touch. NULL if the OS refuses. */
void *tsr_platform_map(size_t size, void *hint);
/* Reserve size bytes with no access (guards, address-space holds). */
void *tsr_platform_map_none(size_t size, void *hint);
int   tsr_platform_unmap(void *addr, size_t size);
/* Give the physical memory back; the range stays mapped and reads zero after. */
int   tsr_platform_purge(void *addr, size_t size);
int   tsr_platform_protect(void *addr, size_t size, bool accessible);
/* mremap: grow or shrink in place (may_move false), or move to target (fixed).
 * Returns the block's new address or NULL. */
void *tsr_platform_remap(void *addr, size_t old_size, size_t new_size, void *fixed_target);
/* Ask for transparent huge pages over a range (best effort; no fault
 * injection: it changes how memory is backed, not whether it is). */
void  tsr_platform_advise_huge_pages(void *addr, size_t size);
/* Name a mapping in /proc/self/maps ("[anon:tessera ...]"); best effort. */
void  tsr_platform_name(void *addr, size_t size, const char *name);

/* Time and identity. */
uint64_t tsr_platform_clock_ms(void);      /* monotonic milliseconds */
uint64_t tsr_platform_clock_ns(void);
long     tsr_platform_thread_id(void);     /* gettid() */
long     tsr_platform_process_id(void);
bool     tsr_platform_is_setuid(void);
uint64_t tsr_platform_random(void);        /* getrandom(), or a mix of clock and addresses */

/* Raw I/O that never touches stdio. */
void     tsr_platform_write(int fd, const char *buf, size_t len);
int      tsr_platform_open_write(const char *path);   /* O_CREAT|O_TRUNC; -1 on failure */
int      tsr_platform_open_read(const char *path);
long     tsr_platform_read(int fd, char *buf, size_t len);
void     tsr_platform_close(int fd);
size_t   tsr_platform_rss_bytes(void);     /* from /proc/self/statm; 0 if unknown */
/* Whether each of `pages` OS pages from page-aligned `start` holds data: in
 * memory or swapped out (out[i] = 1), or neither, so it reads as zero or
 * from its file (0). From /proc/self/pagemap; false if that cannot be read. */
bool     tsr_platform_pages_backed(uintptr_t start, size_t pages, uint8_t *out);
size_t   tsr_platform_rss_peak_bytes(void);/* getrusage ru_maxrss */
void     tsr_platform_yield(void);
/* Make every running thread of this process pass a full memory barrier
 * (membarrier, private expedited; registered on first use). 0 on success;
 * an errno value where the kernel lacks it or a sandbox forbids it. */
int      tsr_platform_barrier_all_threads(void);
int      tsr_platform_dup_high(int fd);    /* close-on-exec copy at a high number; -1 on failure */
_Noreturn void tsr_platform_abort(void);   /* raise SIGABRT, with a core where enabled */

/* Test-only fault injection (tests/reliability/faults.c): every primitive
 * above that makes a memory system call (map, map_none, unmap, purge,
 * protect, remap) counts as one request. After `skip` more requests succeed,
 * the next `count` fail with ENOMEM (count -1: all that follow); skip -1
 * turns injection off. Returns the requests that were still to be let
 * through, so skip = LONG_MAX counts the requests a workload makes. */
long     tsr_platform_fault_inject(long skip, long count);
void     tsr_platform_fail_after(long n);  /* the nth request and all after fail; -1: never */

#endif /* TSR_PLATFORM_H */
