/* tessera.h -- the public interface of the tessera memory allocator.
 *
 * tessera replaces the C allocation API (malloc, free, ...) under its standard
 * names; this header adds the tsr_* extensions: the same operations under
 * tessera's own names (usable when another malloc is the process default),
 * statistics, trimming, a heap walker and the checking-mode entry points.
 * Every function here is thread-safe and never calls back into user code
 * except the visitor callback of tsr_heap_visit.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_VERSION_MAJOR 0
#define TSR_VERSION_MINOR 1
#define TSR_VERSION_PATCH 0
#define TSR_VERSION_STRING "0.1.0"

/* ---- allocation: the C API under tessera's names --------------------- */
void  *tsr_malloc(size_t size);
void  *tsr_calloc(size_t count, size_t size);
void  *tsr_realloc(void *ptr, size_t size);
void  *tsr_reallocarray(void *ptr, size_t count, size_t size);
void   tsr_free(void *ptr);
void   tsr_free_sized(void *ptr, size_t size);
void   tsr_free_aligned_sized(void *ptr, size_t alignment, size_t size);
int    tsr_posix_memalign(void **out, size_t alignment, size_t size);
void  *tsr_aligned_alloc(size_t alignment, size_t size);
size_t tsr_usable_size(const void *ptr);     /* 0 for NULL */
size_t tsr_good_size(size_t size);           /* the block size malloc(size) would give */

/* Return free memory to the OS now (all heaps, not only the caller's).
 * Returns 1 if any memory was released, as malloc_trim does. */
int    tsr_trim(void);

/* ---- statistics ------------------------------------------------------- */
/* One list generates the struct, the text report and the JSON report.
 * X(name, kind, meaning): kind is COUNT (a running total), BYTES or GAUGE. */
#define TSR_STATS_FIELDS(X)                                                      \
  X(malloc_count,        COUNT, "calls of malloc (and new, valloc, ...)")        \
  X(calloc_count,        COUNT, "calls of calloc")                               \
  X(realloc_count,       COUNT, "calls of realloc and reallocarray")             \
  X(aligned_count,       COUNT, "calls of the aligned family")                   \
  X(free_count,          COUNT, "calls of free (and delete) with a non-NULL block") \
  X(remote_free_count,   COUNT, "frees of a block owned by another thread")      \
  X(realloc_inplace_count, COUNT, "reallocs resolved without moving the block")  \
  X(requested_bytes,     BYTES, "bytes requested in total")                      \
  X(in_use_bytes,        BYTES, "bytes in live blocks now (block sizes)")        \
  X(page_bytes,          BYTES, "bytes of pages and large blocks in use now")   \
  X(page_peak_bytes,     BYTES, "peak of page_bytes: an upper bound of the peak in use") \
  X(slack_bytes,         BYTES, "internal fragmentation: block size minus request, live blocks (estimate)") \
  X(free_block_bytes,    BYTES, "external fragmentation: free blocks inside used pages") \
  X(free_span_bytes,     BYTES, "free spans still mapped and not yet returned to the OS") \
  X(mapped_bytes,        BYTES, "bytes mapped from the OS now")                  \
  X(mapped_peak_bytes,   BYTES, "peak of mapped_bytes")                          \
  X(metadata_bytes,      BYTES, "allocator metadata (segment headers, heaps)")   \
  X(purged_bytes,        BYTES, "bytes returned to the OS with madvise, in total") \
  X(os_map_count,        COUNT, "mmap calls")                                    \
  X(os_unmap_count,      COUNT, "munmap calls")                                  \
  X(os_purge_count,      COUNT, "madvise calls that returned memory")            \
  X(huge_count,          GAUGE, "huge blocks live now (mapped on their own)")    \
  X(heap_count,          GAUGE, "thread heaps in existence")                     \
  X(abandoned_heap_count, GAUGE, "heaps of exited threads waiting for a new owner") \
  X(rss_bytes,           BYTES, "resident set size of the process now")          \
  X(rss_peak_bytes,      BYTES, "peak resident set size of the process")

#define TSR_STATS_CLASS_MAX 128  /* room for the size-class histogram */

typedef struct tsr_stats_s {
  uint32_t version;       /* TSR_STATS_VERSION */
  uint32_t struct_size;   /* sizeof(tsr_stats_t) as compiled by the caller */
#define TSR_STATS_MEMBER(name, kind, doc) uint64_t name;
  TSR_STATS_FIELDS(TSR_STATS_MEMBER)
#undef TSR_STATS_MEMBER
  uint32_t class_count;                         /* size classes in use below */
  uint64_t class_block_size[TSR_STATS_CLASS_MAX]; /* block size of class i */
  uint64_t class_live_count[TSR_STATS_CLASS_MAX]; /* live blocks of class i */
  uint64_t class_page_count[TSR_STATS_CLASS_MAX]; /* pages of class i */
} tsr_stats_t;
#define TSR_STATS_VERSION 1

/* Fill *out (set out->struct_size first, or 0 for "this header's size").
 * Returns 0, or -1 if the struct is too small. Merges every thread's counters. */
int  tsr_stats_get(tsr_stats_t *out);
/* Write the human-readable report (json: the JSON one) to file descriptor fd. */
void tsr_stats_print(int fd, bool json);

/* ---- heap walking ----------------------------------------------------- */
typedef enum tsr_area_kind_e {
  TSR_AREA_SMALL_PAGE = 1,  /* a page of equal blocks of one size class */
  TSR_AREA_LARGE      = 2,  /* a span holding one large block */
  TSR_AREA_HUGE       = 3,  /* a block mapped on its own */
  TSR_AREA_FREE_SPAN  = 4,  /* a free span inside a segment */
  TSR_AREA_METADATA   = 5   /* a segment's header page */
} tsr_area_kind_t;

typedef struct tsr_area_s {
  tsr_area_kind_t kind;
  uintptr_t start;          /* first byte of the area */
  size_t    size;           /* bytes */
  size_t    block_size;     /* 0 for free spans and metadata */
  size_t    block_count;    /* blocks the area can hold */
  size_t    used_count;     /* blocks live (approximate while other threads run) */
  unsigned  size_class;     /* class index; 0 where not a small page */
  unsigned  heap_id;        /* owning heap (thread) number */
  bool      is_purged;      /* free span already returned to the OS */
} tsr_area_t;

/* Calls visit(area, arg) for every area of every segment; stops early when
 * visit returns false. Returns the number of areas visited. The callback must
 * not allocate from tessera. */
size_t tsr_heap_visit(bool (*visit)(const tsr_area_t *area, void *arg), void *arg);

/* ---- checking mode (libtessera-check.so) ------------------------------- */
/* Verify every live block's redzones and every quarantined block's poison
 * now; report what is wrong. Returns the number of errors found. In the
 * release library it walks the allocator's own invariants instead. */
size_t tsr_check_heap(void);

/* The version string, e.g. "0.1.0 release" or "0.1.0 check". */
const char *tsr_version(void);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_H */
