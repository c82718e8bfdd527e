/* trace_bin.h -- the binary trace written by the recorder (libtessera-record.so)
 * and read by `tessera convert`, `replay` and `map`.
 *
 * Design: each thread encodes its calls into its own buffer and appends the
 * buffer to the file as one chunk (a single O_APPEND write), so threads never
 * share a cache line or a lock while recording. Records are delta-coded
 * against the previous record *of the same thread* (addresses, sizes and
 * time), and a field equal to the previous one costs no byte (a flag bit or
 * a code 0), so a malloc/free pair in a loop is 2 bytes; the decoder carries each
 * thread's delta state from one of its chunks to the next.
 * Time is the TSC, sampled once per TBIN_TIME_BYTES of a thread's records
 * only (a TBIN_TIME record): a clock read (rdtsc ~28 ns, clock_gettime more
 * on this kind of virtual machine) costs more than a whole malloc/free pair,
 * and version 1, which read it per call, slowed malloc loops 3x. So a call's
 * time is a span: from the latest sample its thread had seen (its own, or
 * another thread's, which it writes down as TBIN_SEEN when that changed
 * since its last call) to its own next sample (tbin_event_t.ns, late_us).
 * The header and every chunk carry a (tsc, CLOCK_MONOTONIC ns) pair to
 * convert ticks to ns; a chunk's pair is read when it is written, after all
 * its records, so it ends their spans.
 * Order across threads comes from time, repaired by meaning: a free is logged
 * before it is forwarded, an allocation or realloc after it returns, so an
 * address is never seen reused before it was freed; where the spans leave
 * the order open, the merge in trace_bin.c looks for one in which every
 * free finds its block.
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
 *     uint32   magic         TBIN_CHUNK ("TSRC"), TBIN_END ("TSRE") or
 *                            TBIN_PAD ("TSRP", version 4: payload_size bytes
 *                            of padding, every other field 0, to be skipped)
 *     uint32   thread        1, 2, ... in order of each thread's first call
 *                            (TSRE: number of threads seen)
 *     uint32   payload_size  bytes of records that follow (TSRE: 0)
 *     uint32   record_count  calls in the payload, time samples not counted
 *                            (TSRE: calls written before it; write-through
 *                            chunks may follow)
 *     uint64   tsc, mono_ns  a clock pair taken when the chunk was written
 *   A full buffer's chunk is followed by a TSRP chunk that ends the file at
 *   a multiple of TBIN_ALIGN (4 KiB), so that the next full buffer's write
 *   covers whole pages of the file: the kernel's buffered write of 128 KiB
 *   costs a quarter less page-aligned than 32 bytes off, and fallocate (the
 *   recorder reserves blocks ahead) another quarter (tools/record/overhead.md),
 *   for under 1% of padding (larson: 0.8%; a TSRP chunk is 32 to 4127 bytes).
 *   TSRE is written once at normal process exit; a file without it comes
 *   from a program that crashed or called _exit (buffered records are lost).
 *   The chunk headers alone give the number of calls and threads, so
 *   `tessera record` summarizes a trace without decoding its records.
 *
 * Record: a first byte, then fields (version 3). malloc and free, nearly
 * every call of real programs, have a compact form that says the length of
 * each field in the first byte, so a field costs its bytes and no length
 * bits of its own: version 2's prefix varints hold 7 bits per byte, which
 * cost larson about a byte per address (4.9 bytes per call then, 3.9 now),
 * and every byte is copied again by the kernel into the page cache
 * (tools/record/overhead.md).
 *   bit 0 clear: compact malloc or free
 *     bit 1      0 malloc, 1 free
 *     bits 2-4   malloc: size code; free: 0 (anything else is an error)
 *     bits 5-7   address code (the result of malloc, the ptr of free)
 *     then the size (if its code is not 0), then the address (same).
 *     Code 0: no field, the thread's previous size or address; 1-6: that
 *     many little-endian bytes; 7: 8 bytes.
 *   bit 0 set: any op, fields with lengths of their own. The byte is
 *     1 | op << 1 | flags, op = TBIN_OP_* (bits 1-4), flags TBIN_F_* (bits
 *     5-6; bit 7 is an error), then per op:
 *   MALLOC VALLOC PVALLOC          V size, A result
 *   CALLOC                         V count, V size, A result
 *   REALLOC                        A ptr, V size, A result
 *   REALLOCARRAY                   A ptr, V count, V size, A result
 *   POSIX_MEMALIGN ALIGNED_ALLOC MEMALIGN   byte log2(alignment), V size, A result
 *   FREE                           A ptr
 *   FREE_SIZED                     A ptr, V size
 *   FREE_ALIGNED_SIZED             A ptr, byte log2(alignment), V size
 *   or the byte TBIN_TIME, then V zigzag(TSC - the thread's previous sample;
 *   the first sample of a thread is absolute): a clock sample, not a call;
 *   or the byte TBIN_SEEN, then V zigzag(TSC - the thread's previous
 *   sample): the latest sample any thread had taken when this thread went
 *   on, so the calls after it happened no earlier (not a call).
 * V is a prefix varint (tbin_put_varint: the count of trailing zero bits of
 * the first byte says how many bytes follow, so it is written without a
 * loop). An address field, compact or V, holds tbin_addr_code(address, the
 * thread's previous address): their XOR rotated right by 4 bits. XOR, not a
 * difference: as short for addresses of one heap (it is below the highest
 * bit in which they differ) and it needs no sign, which saves the encoder
 * a third of its instructions per address (callgrind); the rotation drops
 * the 4 low bits, zero in both addresses when the allocator aligns blocks to
 * 16 bytes (two addresses whose low 4 bits differ cost 8 bytes, or 9 as V).
 * Every address field updates the previous address. "size" is the field
 * named so above (not a count); every size updates the thread's previous
 * size. TBIN_F_SAME_SIZE drops the size field
 * (it equals the previous size), TBIN_F_SAME_ADDR drops the first A field
 * (the address equals the previous address); on a record without such a
 * field the flag is an error. A failed call has result 0.
 * A record is at most TBIN_RECORD_MAX bytes, and the encoder may write up to
 * that many bytes past a record's start (whole 8-byte words).
 */
#ifndef TSR_TRACE_BIN_H
#define TSR_TRACE_BIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TBIN_MAGIC       "TSRTRACE"
#define TBIN_VERSION     4u           /* 3: no padding chunks; 2: no compact records, addresses
                                         in bytes */
#define TBIN_VERSION_READ_MIN 3u      /* version 3 is version 4 without padding chunks */
#define TBIN_HEADER_SIZE 64u
#define TBIN_CHUNK       0x43525354u  /* "TSRC" */
#define TBIN_END         0x45525354u  /* "TSRE" */
#define TBIN_PAD         0x50525354u  /* "TSRP": padding, payload ignored (version 4) */
#define TBIN_ALIGN       4096u        /* the recorder pads a full buffer's chunk to end the file
                                         at a multiple of this */
#define TBIN_CHUNK_HEADER_SIZE 32u
#define TBIN_RECORD_MAX  64u          /* op byte + time + 4 varints of <= 9 bytes + a byte, and the
                                         encoder's word stores past the last field */
#define TBIN_TIME_BYTES  1024u        /* the recorder samples the clock each time a thread's records
                                         cross a KiB boundary (150 to 1000 calls), at its first call
                                         and after each flush; readers accept any spacing */

/* A record's first byte (see the head comment). */
#define TBIN_GENERAL     0x01u        /* set: 1 | op << 1 | flags; clear: compact malloc/free */
#define TBIN_OP_SHIFT    1
#define TBIN_OP_MASK     0x1eu        /* op << TBIN_OP_SHIFT */
#define TBIN_F_SAME_SIZE 0x20u        /* no size field: the thread's previous size */
#define TBIN_F_SAME_ADDR 0x40u        /* no first address field: the thread's previous address */
#define TBIN_TIME        0x1fu        /* a clock sample, not a call */
#define TBIN_SEEN        0x1du        /* another thread's latest sample, not a call */
#define TBIN_C_FREE      0x02u        /* compact: a free (else a malloc) */
#define TBIN_C_SIZE_SHIFT 2           /* compact: size code, bits 2-4 (tbin_compact[TBIN_CSIZE]) */
#define TBIN_C_ADDR_SHIFT 5           /* compact: address code, bits 5-7 (tbin_compact[TBIN_CADDR]) */
#define TBIN_GENERAL_BYTE(op) (TBIN_GENERAL | (unsigned)(op) << TBIN_OP_SHIFT)

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
/* Prefix varint: n = 1..8 bytes hold 7n bits of v, the low n bits of the
 * first byte being 1 << (n-1); a first byte 0 is followed by 8 raw bytes.
 * One 8-byte store, no loop: a LEB128 loop mispredicts on random addresses.
 * Writes 8 bytes at p (9 for v >= 2^56) whatever n is: the caller keeps
 * TBIN_RECORD_MAX bytes of room. Little-endian hosts only (x86-64). */
/* Length of the prefix varint by the index of the highest set bit. */
static const uint8_t tbin_varint_len[64] = {
    1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9};
static inline uint8_t *tbin_put_varint(uint8_t *p, uint64_t v) {
  unsigned n = tbin_varint_len[63 ^ __builtin_clzll(v | 1)];
  if (__builtin_expect(n == 9, 0)) {
    *p = 0;
    __builtin_memcpy(p + 1, &v, 8);
    return p + 9;
  }
  uint64_t w = ((v << 1) | 1) << (n - 1);
  __builtin_memcpy(p, &w, 8);
  return p + n;
}
static inline uint64_t tbin_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t tbin_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* An address as stored, against the thread's previous one, and back. */
static inline uint64_t tbin_addr_code(uint64_t a, uint64_t prev) {
  uint64_t x = a ^ prev;
  return x >> 4 | x << 60;
}
static inline uint64_t tbin_addr_decode(uint64_t u, uint64_t prev) { return prev ^ (u << 4 | u >> 60); }

/* Compact fields: by the index of the highest set bit of the value, the
 * length in bytes (1-6, else 8) and the code that says it, placed where the
 * size and the address code go in the first byte. Three rows of one table
 * rather than one packed entry: two loads from one base instead of five ALU
 * operations to split the entry. */
#define TBIN_CLEN_ROW(n) n, n, n, n, n, n, n, n
enum { TBIN_CBYTES, TBIN_CSIZE, TBIN_CADDR };
static const uint8_t tbin_compact[3][64] = {
    {TBIN_CLEN_ROW(1), TBIN_CLEN_ROW(2), TBIN_CLEN_ROW(3), TBIN_CLEN_ROW(4), TBIN_CLEN_ROW(5), TBIN_CLEN_ROW(6),
     TBIN_CLEN_ROW(8), TBIN_CLEN_ROW(8)},
    {TBIN_CLEN_ROW(1 << 2), TBIN_CLEN_ROW(2 << 2), TBIN_CLEN_ROW(3 << 2), TBIN_CLEN_ROW(4 << 2),
     TBIN_CLEN_ROW(5 << 2), TBIN_CLEN_ROW(6 << 2), TBIN_CLEN_ROW(7 << 2), TBIN_CLEN_ROW(7 << 2)},
    {TBIN_CLEN_ROW(1 << 5), TBIN_CLEN_ROW(2 << 5), TBIN_CLEN_ROW(3 << 5), TBIN_CLEN_ROW(4 << 5),
     TBIN_CLEN_ROW(5 << 5), TBIN_CLEN_ROW(6 << 5), TBIN_CLEN_ROW(7 << 5), TBIN_CLEN_ROW(7 << 5)}};
/* The index of the highest set bit of v, v != 0, as a 64-bit index: one
 * bsr, where 63 ^ __builtin_clzll gives an int that the compiler widens
 * again before it can index a table (one instruction per field). */
static inline uint64_t tbin_high_bit(uint64_t v) {
  uint64_t b;
  __asm__("bsr %1, %0" : "=r"(b) : "rm"(v) : "cc");
  return b;
}
#undef TBIN_CLEN_ROW

/* ---- decoding (tools/trace_bin.c) --------------------------------------- */

/* One decoded call, in file order per thread. */
typedef struct tbin_event_s {
  uint64_t ns;        /* nanoseconds since the recording started */
  uint64_t ptr;       /* argument address (free, realloc), else 0 */
  uint64_t result;    /* returned address, 0 for failure and frees */
  uint64_t size;      /* bytes requested (count*size for calloc, saturated) */
  uint32_t thread;    /* recorder's thread number, 1-based */
  uint32_t early_us, late_us;  /* the call happened in [ns - early, ns + late] (us, rounded
                                  up); the recorder's ns is a lower bound, so early is 0 */
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

/* What the chunk headers say, without decoding a record: cheap enough to
 * print after every recording (a full tbin_load of a 100-million-call trace
 * takes longer than the recorded run and gigabytes of memory). */
typedef struct tbin_summary_s {
  uint64_t call_count;     /* sum of the chunks' record counts */
  uint64_t chunk_count;
  uint64_t file_size;
  uint64_t duration_ns;    /* header's clock to the last chunk's */
  uint32_t thread_count;   /* highest thread number seen */
  bool     has_end;
} tbin_summary_t;

/* Walk path's header and chunk headers. Returns 0, or -1 with the same kind
 * of message as tbin_load (a truncated chunk, a bad magic); a missing end
 * marker is a warning. Records themselves are not checked. */
int  tbin_summarize(const char *path, tbin_summary_t *out, char *err, size_t errlen, char *warn, size_t warnlen);

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
