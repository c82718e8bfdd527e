/* override.c -- the shim: the standard C allocation API, the glibc extras
 * and __libc_* names, and the C++ operators by mangled name, all aliases of
 * the tsr_* functions (no wrapper call on the fast path).
 *
 * These are the only standard names tessera defines. Everything glibc's
 * malloc offers is replaced -- a block from one allocator freed by the other
 * is a crash -- so mallinfo, malloc_trim, malloc_stats and mallopt are here
 * too. operator new that fails calls the program's new_handler and then
 * throws std::bad_alloc through libstdc++ (weak references: a C program
 * never loads libstdc++ for us).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#ifdef TSR_UNITY
#define TSR_ALIAS(target) __attribute__((alias(#target), visibility("default"), used))
#define ALIAS_VOID(name, params, target, args) void name params TSR_ALIAS(target);
#define ALIAS_RET(type, name, params, target, args) type name params TSR_ALIAS(target);
#else
/* Compiled alone (the per-file check build), aliases cannot reach into
 * other files: call through instead. */
#define ALIAS_VOID(name, params, target, args) tsr_public void name params { target args; }
#define ALIAS_RET(type, name, params, target, args) tsr_public type name params { return target args; }
#endif

/* ---- the C API -------------------------------------------------------------- */
ALIAS_RET(void *, malloc, (size_t size), tsr_malloc, (size))
ALIAS_RET(void *, calloc, (size_t count, size_t size), tsr_calloc, (count, size))
ALIAS_RET(void *, realloc, (void *p, size_t size), tsr_realloc, (p, size))
ALIAS_RET(void *, reallocarray, (void *p, size_t count, size_t size), tsr_reallocarray, (p, count, size))
ALIAS_VOID(free, (void *p), tsr_free, (p))
ALIAS_VOID(cfree, (void *p), tsr_free, (p))
ALIAS_VOID(free_sized, (void *p, size_t size), tsr_free_sized, (p, size))
ALIAS_VOID(free_aligned_sized, (void *p, size_t alignment, size_t size), tsr_free_aligned_sized, (p, alignment, size))
ALIAS_RET(int, posix_memalign, (void **out, size_t alignment, size_t size), tsr_posix_memalign, (out, alignment, size))
ALIAS_RET(void *, aligned_alloc, (size_t alignment, size_t size), tsr_aligned_alloc, (alignment, size))
ALIAS_RET(void *, memalign, (size_t alignment, size_t size), tsr_aligned_alloc, (alignment, size))
ALIAS_RET(size_t, malloc_usable_size, (void *p), tsr_usable_size, (p))

ALIAS_RET(void *, __libc_malloc, (size_t size), tsr_malloc, (size))
ALIAS_RET(void *, __libc_calloc, (size_t count, size_t size), tsr_calloc, (count, size))
ALIAS_RET(void *, __libc_realloc, (void *p, size_t size), tsr_realloc, (p, size))
ALIAS_VOID(__libc_free, (void *p), tsr_free, (p))
ALIAS_VOID(__libc_cfree, (void *p), tsr_free, (p))
ALIAS_RET(void *, __libc_memalign, (size_t alignment, size_t size), tsr_aligned_alloc, (alignment, size))

tsr_public void *valloc(size_t size) { return tsr_alloc_aligned(TSR_OS_PAGE_SIZE, size); }
tsr_public void *pvalloc(size_t size) {
  if (size > SIZE_MAX - TSR_OS_PAGE_SIZE) { errno = ENOMEM; return NULL; }
  size_t rounded = (size + TSR_OS_PAGE_SIZE - 1) & ~(size_t)(TSR_OS_PAGE_SIZE - 1);
  return tsr_alloc_aligned(TSR_OS_PAGE_SIZE, rounded == 0 ? TSR_OS_PAGE_SIZE : rounded);
}
tsr_public void *__libc_valloc(size_t size) { return valloc(size); }
tsr_public void *__libc_pvalloc(size_t size) { return pvalloc(size); }

/* ---- glibc's extras ------------------------------------------------------------ */
tsr_public int tsr_trim(void) { return tsr_heap_trim() ? 1 : 0; }
tsr_public int malloc_trim(size_t pad) { (void)pad; return tsr_trim(); }

tsr_public struct mallinfo2 mallinfo2(void) {
  tsr_stats_t s;
  s.struct_size = sizeof s;
  tsr_stats_get(&s);
  struct mallinfo2 m;
  memset(&m, 0, sizeof m);
  m.arena = s.mapped_bytes;                 /* bytes mapped from the OS */
  m.hblks = s.huge_count;
  m.uordblks = s.in_use_bytes;
  m.fordblks = s.free_block_bytes + s.free_span_bytes;
  m.keepcost = s.free_span_bytes;
  m.usmblks = s.mapped_peak_bytes;
  return m;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

tsr_public struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m;
  memset(&m, 0, sizeof m);
  m.arena = clamp_int(m2.arena);
  m.hblks = clamp_int(m2.hblks);
  m.uordblks = clamp_int(m2.uordblks);
  m.fordblks = clamp_int(m2.fordblks);
  m.keepcost = clamp_int(m2.keepcost);
  m.usmblks = clamp_int(m2.usmblks);
  return m;
}

tsr_public void malloc_stats(void) { tsr_stats_print(2, false); }

/* glibc's tuning knobs do not apply; accept them so programs that set
 * M_ARENA_MAX or M_MMAP_THRESHOLD keep working. */
tsr_public int mallopt(int param, int value) { (void)param; (void)value; return 1; }

/* ---- C++ operators ----------------------------------------------------------------- */
typedef void (*tsr_new_handler_t)(void);
extern tsr_new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

/* operator new failed: call the new_handler until it gives up, then throw. */
static tsr_cold void *new_failed(size_t size, size_t alignment, bool nothrow) {
  for (;;) {
    tsr_new_handler_t handler = _ZSt15get_new_handlerv != NULL ? _ZSt15get_new_handlerv() : NULL;
    if (handler == NULL) break;
    handler();
    void *p = alignment <= TSR_ALIGN ? tsr_malloc(size) : tsr_alloc_aligned(alignment, size);
    if (p != NULL) return p;
  }
  if (nothrow) return NULL;
  if (_ZSt17__throw_bad_allocv != NULL) _ZSt17__throw_bad_allocv();
  tsr_message("out of memory in operator new (%zu bytes) and no C++ runtime to throw std::bad_alloc", size);
  tsr_platform_abort();
}

#if TSR_CHECK
/* The checking build records each block's family (malloc, new, new[],
 * aligned new) and reports a delete that does not match it (check.c). */
void *tsr_check_alloc(size_t size, size_t alignment, int family, bool zero, uintptr_t fp) tsr_hidden;
void  tsr_check_free(void *p, int family, size_t size, size_t alignment, uintptr_t fp) tsr_hidden;
#define FP() ((uintptr_t)__builtin_frame_address(0))
static inline void *cxx_new_family(size_t size, size_t alignment, int family, bool nothrow, uintptr_t fp) {
  void *p = tsr_check_alloc(size, alignment, family, false, fp);
  return tsr_likely(p != NULL) ? p : new_failed(size, alignment, nothrow);
}
tsr_public void *_Znwm(size_t n) { return cxx_new_family(n, 16, 1, false, FP()); }
tsr_public void *_Znam(size_t n) { return cxx_new_family(n, 16, 2, false, FP()); }
tsr_public void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return cxx_new_family(n, 16, 1, true, FP()); }
tsr_public void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return cxx_new_family(n, 16, 2, true, FP()); }
tsr_public void *_ZnwmSt11align_val_t(size_t n, size_t al) { return cxx_new_family(n, al, 3, false, FP()); }
tsr_public void *_ZnamSt11align_val_t(size_t n, size_t al) { return cxx_new_family(n, al, 4, false, FP()); }
tsr_public void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) { (void)nt; return cxx_new_family(n, al, 3, true, FP()); }
tsr_public void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) { (void)nt; return cxx_new_family(n, al, 4, true, FP()); }
tsr_public void _ZdlPv(void *p) { tsr_check_free(p, 1, 0, 0, FP()); }
tsr_public void _ZdaPv(void *p) { tsr_check_free(p, 2, 0, 0, FP()); }
tsr_public void _ZdlPvm(void *p, size_t n) { tsr_check_free(p, 1, n, 0, FP()); }
tsr_public void _ZdaPvm(void *p, size_t n) { tsr_check_free(p, 2, n, 0, FP()); }
tsr_public void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; tsr_check_free(p, 1, 0, 0, FP()); }
tsr_public void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; tsr_check_free(p, 2, 0, 0, FP()); }
tsr_public void _ZdlPvSt11align_val_t(void *p, size_t al) { tsr_check_free(p, 3, 0, al, FP()); }
tsr_public void _ZdaPvSt11align_val_t(void *p, size_t al) { tsr_check_free(p, 4, 0, al, FP()); }
tsr_public void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al) { tsr_check_free(p, 3, n, al, FP()); }
tsr_public void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al) { tsr_check_free(p, 4, n, al, FP()); }
tsr_public void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) { (void)nt; tsr_check_free(p, 3, 0, al, FP()); }
tsr_public void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) { (void)nt; tsr_check_free(p, 4, 0, al, FP()); }
#else
static inline void *cxx_new(size_t size) {
  void *p = tsr_malloc(size);
  return tsr_likely(p != NULL) ? p : new_failed(size, 0, false);
}
static inline void *cxx_new_nothrow(size_t size) {
  void *p = tsr_malloc(size);
  return tsr_likely(p != NULL) ? p : new_failed(size, 0, true);
}
static inline void *cxx_new_aligned(size_t size, size_t alignment, bool nothrow) {
  void *p = tsr_alloc_aligned(alignment, size);
  return tsr_likely(p != NULL) ? p : new_failed(size, alignment, nothrow);
}

tsr_public void *_Znwm(size_t n) { return cxx_new(n); }
tsr_public void *_Znam(size_t n) { return cxx_new(n); }
tsr_public void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return cxx_new_nothrow(n); }
tsr_public void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return cxx_new_nothrow(n); }
tsr_public void *_ZnwmSt11align_val_t(size_t n, size_t al) { return cxx_new_aligned(n, al, false); }
tsr_public void *_ZnamSt11align_val_t(size_t n, size_t al) { return cxx_new_aligned(n, al, false); }
tsr_public void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) { (void)nt; return cxx_new_aligned(n, al, true); }
tsr_public void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) { (void)nt; return cxx_new_aligned(n, al, true); }

ALIAS_VOID(_ZdlPv, (void *p), tsr_free, (p))
ALIAS_VOID(_ZdaPv, (void *p), tsr_free, (p))
ALIAS_VOID(_ZdlPvm, (void *p, size_t n), tsr_free_sized, (p, n))
ALIAS_VOID(_ZdaPvm, (void *p, size_t n), tsr_free_sized, (p, n))
tsr_public void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; tsr_free(p); }
tsr_public void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; tsr_free(p); }
tsr_public void _ZdlPvSt11align_val_t(void *p, size_t al) { tsr_free_aligned_sized(p, al, 0); }
tsr_public void _ZdaPvSt11align_val_t(void *p, size_t al) { tsr_free_aligned_sized(p, al, 0); }
tsr_public void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al) { tsr_free_aligned_sized(p, al, n); }
tsr_public void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al) { tsr_free_aligned_sized(p, al, n); }
tsr_public void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) { (void)nt; tsr_free_aligned_sized(p, al, 0); }
tsr_public void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) { (void)nt; tsr_free_aligned_sized(p, al, 0); }
#endif /* TSR_CHECK */
