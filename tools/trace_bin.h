/* trace_bin.h -- the binary trace written by the recorder (libtessera-record.so)
 * and read by `tessera convert`, `replay` and `map`.
 *
 * Design: each thread encodes its calls into its own buffer and appends the
 * buffer to the file as one chunk (a single O_APPEND write), so threads never
 * share a cache line or a lock while recording. Records are varint-coded and
 * delta-coded against the previous record *of the same thread* (addresses and
 * time), which keeps a malloc/free pair near 10 bytes; the decoder carries
 * each thread's delta state from one of its chunks to the next.
 * Time is the TSC (rdtsc, ~20 cycles, where clock_gettime costs 3x that);
 * the header and every chunk carry a (tsc, CLOCK_MONOTONIC ns) pair to
 * convert it. Order across threads comes from time: a free is logged before
 * it is forwarded, an allocation or realloc after it returns, so an address
 * is not seen reused before it was freed; small skews (TSC between cores)
 * are repaired when threads are merged (trace_bin.c, MERGE_WINDOW_NS).
 *
 * File layout (all integers little-endian):
 *   file header, 64 bytes:
 *     char     magic[8]      "TSRTRACE"
 *     uint32   version       TBIN_VERSION
 *     uint32   header_size   64
 *     uint64   tsc0, mono_ns0    a clock pair at start
 *     uint64   real_ns0          CLOCK_REALTIME at start (informational)
 *     uint32   pid, reserved
 *     char     comm[16]      program name, NUL-padded
 *   then chunks, each a 32-byte chunk header + payload:
 *     uint32   magic         TBIN_CHUNK ("TSRC") or TBIN_END ("TSRE")
 *     uint32   thread        1, 2, ... in order of each thread's first call
 *                            (TSRE: number of threads seen)
 *     uint32   payload_size  bytes of records that follow (TSRE: 0)
 *     uint32   record_count  records in the payload (TSRE: total records)
 *     uint64   tsc, mono_ns  a clock pair taken when the chunk was written
 *   TSRE is written once at normal process exit; a file without it comes
 *   from a program that crashed or called _exit (buffered records are lost).
 *
 * Record: byte op (TBIN_OP_*), then zigzag varint dt (TSC ticks since the
 * previous record of this thread; signed in case of TSC skew on migration),
 * then per op (A = zigzag varint of address minus the thread's previous
 * address; every A updates the previous address):
 *   MALLOC VALLOC PVALLOC          varint size, A result
 *   CALLOC                         varint count, varint size, A result
 *   REALLOC                        A ptr, varint size, A result
 *   REALLOCARRAY                   A ptr, varint count, varint size, A result
 *   POSIX_MEMALIGN ALIGNED_ALLOC MEMALIGN   byte log2(alignment), varint size, A result
 *   FREE                           A ptr
 *   FREE_SIZED                     A ptr, varint size
 *   FREE_ALIGNED_SIZED             A ptr, byte log2(alignment), varint size
 * A failed call has result 0. A record is at most TBIN_RECORD_MAX bytes.
 */
#ifndef TSR_TRACE_BIN_H
#define TSR_TRACE_BIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TBIN_MAGIC       "TSRTRACE"
#define TBIN_VERSION     1u
#define TBIN_HEADER_SIZE 64u
#define TBIN_CHUNK       0x43525354u  /* "TSRC" */
#define TBIN_END         0x45525354u  /* "TSRE" */
#define TBIN_CHUNK_HEADER_SIZE 32u
#define TBIN_RECORD_MAX  64u          /* op byte + at most 5 varints of <= 10 bytes, rounded up */

enum tbin_op_e {
  TBIN_OP_MALLOC = 1,
  TBIN_OP_CALLOC,
  TBIN_OP_REALLOC,
  TBIN_OP_REALLOCARRAY,
  TBIN_OP_FREE,
  TBIN_OP_POSIX_MEMALIGN,
  TBIN_OP_ALIGNED_ALLOC,
  TBIN_OP_MEMALIGN,
  TBIN_OP_VALLOC,
  TBIN_OP_PVALLOC,
  TBIN_OP_FREE_SIZED,
  TBIN_OP_FREE_ALIGNED_SIZED,
  TBIN_OP_COUNT
};

typedef struct tbin_header_s {
  char     magic[8];
  uint32_t version;
  uint32_t header_size;
  uint64_t tsc0, mono_ns0, real_ns0;
  uint32_t pid, reserved;
  char     comm[16];
} tbin_header_t;

typedef struct tbin_chunk_s {
  uint32_t magic, thread, payload_size, record_count;
  uint64_t tsc, mono_ns;
} tbin_chunk_t;

/* ---- encoding (the recorder; inline so it costs no call) --------------- */
static inline uint8_t *tbin_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}
static inline uint64_t tbin_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t tbin_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* ---- decoding (tools/trace_bin.c) --------------------------------------- */

/* One decoded call, in file order per thread. */
typedef struct tbin_event_s {
  uint64_t ns;        /* nanoseconds since the recording started */
  uint64_t ptr;       /* argument address (free, realloc), else 0 */
  uint64_t result;    /* returned address, 0 for failure and frees */
  uint64_t size;      /* bytes requested (count*size for calloc, saturated) */
  uint32_t thread;    /* recorder's thread number, 1-based */
  uint8_t  op;        /* TBIN_OP_* */
  uint8_t  align_log2;
} tbin_event_t;

typedef struct tbin_s {
  char         *path;
  tbin_header_t header;
  tbin_event_t *events;      /* sorted by (ns, thread, file order) */
  size_t        event_count;
  uint32_t      thread_count;
  bool          has_end;     /* TSRE seen: the program exited normally */
} tbin_t;

/* True if the file starts with the binary trace magic (else try .rep). */
bool tbin_is_binary(const char *path);
/* Read and validate path. Returns 0, or -1 with "path: record N (byte
 * offset X): problem" in err. A missing end marker is a warning in warn. */
int  tbin_load(const char *path, tbin_t *out, char *err, size_t errlen, char *warn, size_t warnlen);
void tbin_release(tbin_t *t);
const char *tbin_op_name(unsigned op);

/* ---- replayable operations ---------------------------------------------- */
/* Calls reduced to what a replayer executes: ids instead of addresses (a
 * fresh id per allocation, so ids are never reused), threads kept. */
typedef enum rop_kind_e {
  ROP_MALLOC  = 'a',
  ROP_CALLOC  = 'c',   /* like 'a', and the replayer checks the zeros */
  ROP_ALIGNED = 'm',   /* aligned allocation, align_log2 set */
  ROP_FREE    = 'f',   /* id -1: free(NULL) */
  ROP_REALLOC = 'r'    /* id not live: realloc(NULL); size 0 frees */
} rop_kind_t;

typedef struct rop_s {
  uint64_t size;
  int32_t  id;
  uint16_t thread;     /* 0-based */
  uint8_t  kind;       /* rop_kind_t */
  uint8_t  align_log2;
} rop_t;

typedef struct rops_s {
  rop_t   *ops;
  size_t   op_count;
  uint32_t id_count;
  uint32_t thread_count;
  uint64_t unknown_free_count;   /* frees/reallocs of addresses never seen allocated: skipped */
  uint64_t failed_count;         /* calls that returned NULL: skipped */
  uint64_t live_at_end_count;    /* blocks never freed */
  uint64_t peak_live_bytes;      /* peak sum of requested sizes of live blocks */
  uint64_t duration_ns;
} rops_t;

/* Assign ids to the events of t (ids per live address). Returns 0 or -1
 * (out of memory, message in err). */
int  tbin_to_rops(const tbin_t *t, rops_t *out, char *err, size_t errlen);
void rops_release(rops_t *r);

/* Write r as a malloc-lab .rep (aligned -> a, calloc -> a). Returns 0 or -1. */
int  rops_write_rep(const rops_t *r, const char *path, char *err, size_t errlen);

#endif /* TSR_TRACE_BIN_H */
