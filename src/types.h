/* types.h -- tessera's core objects and every build knob.
 *
 * Three objects, from big to small:
 *   segment  a TSR_SEGMENT_SIZE region, aligned to its size, so any pointer
 *            finds its segment by masking. Its first slice holds metadata:
 *            one page descriptor per slice (descriptor 0 is the segment header).
 *   span     a run of slices inside a segment; free spans are coalesced.
 *   page     a span in use: either blocks of one size class with free lists,
 *            or one large block. Huge blocks get a segment of their own.
 * "OS page" is the kernel's 4 KiB unit; "page" is always ours.
 * This header has no code and includes nothing from src/.
 */
#ifndef TSR_TYPES_H
#define TSR_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- build knobs (-D on the compiler line) ----------------------------- */
#ifndef TSR_CHECK
#define TSR_CHECK 0          /* 1: the checking build (libtessera-check.so) */
#endif
#ifndef TSR_DEBUG
#define TSR_DEBUG 0          /* 1: internal assertions; 2: also invariant walks */
#endif

/* ---- geometry -------------------------------------------------------------- */
#define TSR_SEGMENT_SHIFT   25                          /* 32 MiB segments */
#define TSR_SEGMENT_SIZE    ((size_t)1 << TSR_SEGMENT_SHIFT)
#define TSR_SEGMENT_MASK    (TSR_SEGMENT_SIZE - 1)
#define TSR_SLICE_SHIFT     16                          /* 64 KiB slices */
#define TSR_SLICE_SIZE      ((size_t)1 << TSR_SLICE_SHIFT)
#define TSR_SLICE_COUNT     (TSR_SEGMENT_SIZE / TSR_SLICE_SIZE)  /* 512 per segment */
#define TSR_PAGE_DESC_SHIFT 7                           /* descriptors are 128 bytes */
#define TSR_OS_PAGE_SIZE    4096
#define TSR_ADDRESS_BITS    47                          /* x86-64 user space */
#define TSR_SEGMAP_COUNT    ((size_t)1 << (TSR_ADDRESS_BITS - TSR_SEGMENT_SHIFT))

/* ---- size classes ---------------------------------------------------------- */
#define TSR_ALIGN           16      /* every block, as glibc */
#define TSR_DIRECT_MAX      1024    /* sizes served by the heap's direct table */
#define TSR_DIRECT_COUNT    (TSR_DIRECT_MAX / 16 + 1)
#define TSR_CLASS_MAX_SIZE  (128 * 1024)  /* largest block size kept in class pages */
#define TSR_CLASS_COUNT     89      /* classes 1..88; class 0 is unused */
#define TSR_LARGE_MAX_SIZE  ((size_t)1 << 20)     /* above: a huge block, own mapping (mremap, cached) */
#define TSR_PAGE_EXTEND_SIZE 4096   /* carve this many bytes of blocks at a time (RSS) */
#define TSR_SPAN_BIN_COUNT  32
#define TSR_REMOTE_BATCH_SLOTS 16   /* pages a thread batches remote frees for at once */
#define TSR_REMOTE_BATCH_COUNT 64   /* blocks per batch */
#define TSR_REUSE_CLASSES   49      /* classes 1..48 (blocks up to 4 KiB): reuse of other heaps' blocks */
#define TSR_REUSE_BYTES     32768   /* per class, bytes of other heaps' blocks a thread keeps for reuse */
#define TSR_REUSE_COUNT     256     /* per class, and at most this many */
#define TSR_XFER_SLOTS      8       /* per class, full reuse lists in the central transfer (page.c) */

/* ---- options that are compile-time ----------------------------------------- */
#define TSR_PURGE_MIN_GAP_MS       2   /* housekeeping runs at most this often per heap */
#define TSR_PURGE_DELAY_MAX_FACTOR 10  /* a heap's purge delay rises to at most this many times
                                            the option's while purged memory is soon reused (span.c) */
#define TSR_PURGE_STALE_FACTOR     10  /* a dirty slice free this many purge delays goes back
                                          though its free neighbours are newer (span.c) */
#define TSR_TAIL_DIRTY_SLOTS       16  /* per heap, new pages whose uncarved part may be resident */

/* ---- the segment map: one byte per possible segment ------------------------ */
enum {
  TSR_SEGMAP_NONE = 0,       /* not ours */
  TSR_SEGMAP_SEGMENT = 1,    /* a segment of pages and spans */
  TSR_SEGMAP_HUGE = 2,       /* the first segment-sized slot of a huge mapping */
  TSR_SEGMAP_HUGE_TAIL = 3   /* a later slot of a huge mapping */
};

/* ---- pages ------------------------------------------------------------------ */
/* A free block's first two words. Every block is at least 16 bytes. */
typedef struct tsr_block_s {
  uintptr_t next_encoded;   /* next free block, XOR the process secret */
  uintptr_t free_mark;      /* the block's address XOR the secret while free; malloc clears it */
} tsr_block_t;

typedef enum tsr_page_kind_e {
  TSR_PAGE_FREE = 0,        /* part of a free span (or never used) */
  TSR_PAGE_SMALL = 1,       /* blocks of one size class */
  TSR_PAGE_LARGE = 2,       /* one large block */
  TSR_PAGE_META = 3         /* the segment's metadata slice */
} tsr_page_kind_t;

/* The remote list head: first block in the low 48 bits, block count above. */
#define TSR_REMOTE_PTR_MASK   (((uintptr_t)1 << 48) - 1)
#define TSR_REMOTE_COUNT_SHIFT 48

/* owner word: the owning heap's address, plus this flag while the page must
 * take the slow path on free (full pages and large blocks). */
#define TSR_OWNER_SLOW ((uintptr_t)1)

struct tsr_heap_s;

/* One descriptor per slice; only a span's first descriptor (its head) is live
 * metadata. Two cache lines, split by who writes them: the first holds what
 * is set when the page is made and read by every free, the owner's and other
 * threads' alike; the second what the owner writes on every malloc and free
 * (free, used), the remote list other threads push to, and the links. A
 * remote free then reads a line the owner does not keep writing: with free
 * and used on the first line, each remote free of a block of a page its
 * owner was allocating from missed in cache and took the line from it. */
typedef struct tsr_page_s {
  uintptr_t owner;                  /* heap | TSR_OWNER_SLOW; 0 for free spans, metadata */
  uint8_t  *area;                   /* first block; slice-aligned */
  uint64_t  block_magic;            /* UINT64_MAX / block_size + 1: divisibility test */
  uint32_t  carved_size;            /* bytes of the area carved into blocks so far */
  uint32_t  back_bytes;             /* distance back to this span's head descriptor */
  uint32_t  block_size;             /* bytes per block (span bytes for large) */
  uint32_t  capacity;               /* blocks carved */
  uint32_t  reserved;               /* blocks the area can hold */
  uint16_t  size_class;             /* 0 for large pages */
  uint8_t   kind;                   /* tsr_page_kind_t */
  uint8_t   is_zero : 1;            /* free span memory known to read as zero */
  uint8_t   is_purged : 1;          /* free span returned to the OS */
  uint8_t   was_purged : 1;         /* this slice is clean because a purge made it so (span.c) */
  uint8_t   is_queued : 1;          /* small page linked in its class queue */
  uint8_t   remote_deferred : 1;    /* remote list left uncollected; off the pending list */
  uint32_t  slice_count;            /* span length; also kept in a free span's last slice */
  uint32_t  requested_tail;         /* large: bytes requested (for slack stats) */
  uint8_t   resident_pages;         /* OS pages from the slice's start that may still hold
                                       data (dirty), 0..16: kept under the page that uses the
                                       slice, read when the slice is free (span.c) */
  uint16_t  dirty_lo, dirty_hi;     /* free span head: only its slices [lo, hi) may be dirty
                                       (span.c): purges and stats read no descriptor outside */
  /* -- second cache line: the owner's hot fields, remote frees, links -- */
  _Alignas(64) tsr_block_t *free;   /* local free list (owner thread only) */
  uint32_t  used;                   /* blocks allocated and not yet freed locally */
  _Atomic(uintptr_t) thread_free;   /* blocks freed by other threads (encoded links); the
                                       top 16 bits count them (a page holds < 65536 blocks) */
  struct tsr_page_s *pending_next;  /* link in the owner heap's pending list */
  struct tsr_page_s *next;          /* class queue or free-span bin */
  struct tsr_page_s *prev;
  tsr_block_t *spill;               /* collected remote frees, used when free runs out */
  uint64_t  free_time_ms;           /* free spans: when each slice became free; a used small page
                                       noted for its dirty tail: since when (page.c) */
} tsr_page_t;

_Static_assert(sizeof(tsr_page_t) == (1u << TSR_PAGE_DESC_SHIFT), "page descriptor size");

/* ---- segments ---------------------------------------------------------------- */
typedef enum tsr_segment_kind_e {
  TSR_SEGMENT_NORMAL = 1,
  TSR_SEGMENT_HUGE = 2
} tsr_segment_kind_t;

/* The header overlays descriptor 0 (slice 0 holds only metadata). Its first
 * 64 bytes must read as a page descriptor of kind META with no owner and no
 * back distance, so a pointer into slice 0 falls into free()'s slow path; the
 * header's own fields sit where a page keeps its second line, which no path
 * reads for a page of kind META. */
typedef struct tsr_segment_s {
  uint8_t  as_page[64];             /* descriptor 0's hot line: kind META, owner 0 */
  struct tsr_heap_s *heap;          /* owner (normal segments) */
  struct tsr_segment_s *next;       /* the heap's segment list */
  struct tsr_segment_s *prev;
  uint32_t kind;                    /* tsr_segment_kind_t */
  uint32_t free_slice_count;        /* slices in free spans */
  size_t   map_size;                /* bytes mapped for this segment */
  uint8_t *huge_block;              /* huge: the block */
  size_t   huge_size;               /* huge: usable bytes of the block */
  uint64_t empty_since_ms;          /* all slices free since; 0 if in use */
} tsr_segment_t;

_Static_assert(sizeof(tsr_segment_t) == sizeof(tsr_page_t), "segment header overlays descriptor 0");

/* ---- heaps -------------------------------------------------------------------- */
typedef struct tsr_page_queue_s {
  tsr_page_t *first;
  tsr_page_t *last;
} tsr_page_queue_t;

/* Counters kept per heap and merged on read; the owner writes them with plain
 * increments, readers may see them slightly stale. */
typedef struct tsr_heap_counters_s {
  uint64_t malloc_count, calloc_count, realloc_count, aligned_count, free_count;
  uint64_t remote_free_count, realloc_inplace_count, requested_bytes;
} tsr_heap_counters_t;

typedef struct tsr_heap_s {
  tsr_page_t *direct[TSR_DIRECT_COUNT];   /* size/16 -> page to pop from (fast path) */
  uintptr_t   secret;                     /* free-list encoding key (copy of the process one) */
  /* Odd while malloc's fast path pops from a page the direct table gave it;
   * malloc adds 2 per fast pop (so it counts them), calloc's pops 0. A peer
   * that took a first page out of the direct table reads it even after a
   * barrier: no pop is still at work on that page (heap.c, peer collection). */
  uint64_t    pop_seq;
  tsr_heap_counters_t count;
  tsr_page_queue_t queue[TSR_CLASS_COUNT];/* pages with free blocks, per class */
  tsr_page_t *span_bin[TSR_SPAN_BIN_COUNT]; /* free spans by length */
  uint32_t    span_bin_mask;              /* bit b set iff span_bin[b] is not empty */
  uint32_t    id;                         /* 1 for the main thread's heap */
  tsr_page_t *deferred[TSR_CLASS_COUNT];  /* per class, pages whose remote list waits (heap.c) */
  uint32_t    deferred_count;             /* pages on those lists */
  struct {                                /* this thread's frees to other heaps' pages, */
    tsr_page_t *page;                     /* batched per page: one CAS per batch */
    tsr_block_t *first;
    tsr_block_t *last;
    uint32_t    count;
  } remote[TSR_REMOTE_BATCH_SLOTS];
  uint32_t    remote_pending;             /* slots in use */
  uint32_t    page_new_count;             /* pages made, for periodic work */
  tsr_segment_t *segments;                /* segments owned by this heap */
  uint64_t    last_purge_ms;
  uint64_t    purge_due_ms;               /* earliest time a free span is due; 0: none */
  uint64_t    purge_delay_ms;             /* this heap's delay while above the option's: raised when
                                             purged memory is soon needed again (span.c) */
  uint64_t    purge_released_ms;          /* when a purge of this heap's spans last released memory */
  uint64_t    purge_regret_ms;            /* when purged memory was last needed again soon */
  uint64_t    shuffle_state;              /* secure mode: random block order within pages */
  struct { tsr_page_t *page; uint32_t carved; } tail_dirty[TSR_TAIL_DIRTY_SLOTS]; /* pages made on
                                             dirty spans, and how far they were carved (page.c) */
  uint32_t    tail_dirty_count;
  uint64_t    class_fills[(TSR_CLASS_COUNT + 63) / 64]; /* classes that carved a page to its end:
                                             their next page is expected to fill too (page.c) */
  tsr_page_t *class_slice[TSR_CLASS_COUNT]; /* per class, the one-slice page it last gave back: its
                                             next page goes there while that slice is free and
                                             dirty (page.c, page_new) */
  uint8_t     class_slice_pages[TSR_CLASS_COUNT]; /* the OS pages that page had carved */
  /* -- what other threads touch on their frees, on lines of its own: a
   *    remote free reads is_abandoned (free.c, reuse_push), and the one that
   *    makes a page's remote list non-empty pushes the page on pending.
   *    Beside the owner's busy_depth, that read missed in cache at every
   *    remote free and took the line from the owner's next slow-path entry
   *    (pool-shared/2t: 72 % of the remote free's time, in perf). -- */
  _Alignas(64) _Atomic(tsr_page_t *) pending;   /* pages with remote frees to collect */
  _Alignas(64) bool is_abandoned;         /* read-mostly from here to the next line */
  bool        is_initialized;
  struct tsr_heap_s *all_next;            /* registry of every heap */
  struct tsr_heap_s *abandoned_next;      /* abandoned list (thread exited) */
  /* -- peer collection (heap.c): another thread does an idle owner's
   *    slow-path work; the owner writes the first two, peers the rest -- */
  _Alignas(64) _Atomic uint32_t busy_depth; /* owner inside a slow path (nesting depth) */
  _Atomic uint64_t slow_entries;          /* owner's slow-path entries, to see it idle */
  _Atomic uint8_t  claimed;               /* a peer is working on this heap */
  uint64_t    peer_seen_entries;          /* slow_entries at the last peer pass */
  uint64_t    peer_seen_frees;            /* count.free_count when a peer last did this heap */
  uint64_t    peer_trim_round;            /* the malloc_trim that last did this heap */
  /* -- reuse of blocks freed here but owned by other heaps (free.c): the
   *    list fills on remote frees (owner's, or a peer's under a claim);
   *    malloc's slow path moves it into the class's reuse page, which the
   *    direct table then points at, so the fast path pops from it; a full
   *    list goes to the central transfer (page.c), whence a list may come
   *    into the reuse page too -- */
  tsr_block_t *reuse_list[TSR_REUSE_CLASSES];
  uint32_t    reuse_count[TSR_REUSE_CLASSES];
  uint32_t    reuse_total;                /* blocks on the lists */
  uint16_t    reuse_seen[TSR_REUSE_CLASSES]; /* list lengths at the last housekeeping */
  tsr_page_t  reuse_page[TSR_REUSE_CLASSES];
} tsr_heap_t;

/* ---- the central transfer (page.c) -------------------------------------------- */
/* Per reuse class, slots of whole reuse lists that a thread filled with
 * blocks it freed and did not allocate again, for the heap that owns them
 * or the one that put them there to take whole. A slot is one word, 0 when
 * empty: the list's first block / 16 in bits 0-42 (blocks are 16-aligned,
 * addresses below 2^47), its length - 1 in bits 43-50 (at most
 * TSR_REUSE_COUNT), and the low bits of two heap ids: the heap that owns
 * the first block in bits 51-56, the heap that put the list in 57-63. One
 * cache line per class. */
typedef struct tsr_xfer_class_s {
  _Alignas(64) _Atomic(uintptr_t) slot[TSR_XFER_SLOTS];
} tsr_xfer_class_t;

#endif /* TSR_TYPES_H */
