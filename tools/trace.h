/* trace.h -- malloc-lab .rep allocation traces: parse, validate, replay.
 *
 * Shared by the trace tests (tests/programs/replay_rep.c), the benchmark
 * helper and the CLI (`tessera replay`). The parser reads the whole file and
 * reports the first problem as "FILE:LINE: what is wrong"; the replayer runs
 * the requests through a pluggable allocator (the process malloc by default),
 * writes every byte of every block with a pattern derived from the block id
 * and checks that realloc keeps contents. Depends on libc only; not
 * thread-safe per trace (one replay per trace at a time), reentrant otherwise.
 */
#ifndef TSR_TRACE_H
#define TSR_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Format (see ../shared/traces/README.md): four header integers (heap size
 * hint, id count, request count, weight), then one request per line:
 *   a ID SIZE   malloc(SIZE) becomes block ID (ID must not be live)
 *   f ID        free(block ID); ID -1 is free(NULL); ID must be live
 *   r ID SIZE   realloc(block ID, SIZE); a block not live means
 *               realloc(NULL, SIZE); SIZE 0 frees the block
 * CR/LF line ends, blank lines and a missing final newline are accepted.
 * A request count that differs from the header is a warning (several
 * published traces carry one extra request), or an error when strict. */

typedef enum trace_kind_e {
  TRACE_ALLOC   = 'a',
  TRACE_FREE    = 'f',
  TRACE_REALLOC = 'r'
} trace_kind_t;

typedef struct trace_op_s {
  uint64_t size;    /* bytes; 0 for TRACE_FREE */
  int32_t  id;      /* block id, 0..id_count-1; -1 only for free(NULL) */
  uint32_t line;    /* 1-based line in the file, for messages */
  char     kind;    /* a trace_kind_t */
} trace_op_t;

typedef struct trace_s {
  char       *path;           /* as given to trace_load */
  const char *name;           /* file name without folders and ".rep" (points into name_buf) */
  char       *name_buf;
  uint64_t    heap_hint;      /* header field 1, unused by the replayer */
  uint32_t    id_count;       /* header field 2: ids are 0..id_count-1 */
  uint64_t    declared_count; /* header field 3 */
  uint64_t    weight;         /* header field 4, unused */
  trace_op_t *ops;
  size_t      op_count;       /* requests actually read */
  uint64_t    max_size;       /* largest size requested */
} trace_t;

/* Load and validate path into *out. Returns 0, or -1 with a one-line
 * message "path:line: problem" in err (errlen bytes) and *out left empty.
 * Warnings (request count mismatch) go to warn if non-NULL, else are
 * dropped; strict turns them into errors. */
int  trace_load(const char *path, trace_t *out, bool strict,
                char *err, size_t errlen, char *warn, size_t warnlen);
/* The same from a buffer already in memory (tests, the recorder). */
int  trace_parse(const char *path, const char *text, size_t text_size,
                 trace_t *out, bool strict,
                 char *err, size_t errlen, char *warn, size_t warnlen);
void trace_release(trace_t *t);

/* The allocator a replay drives. NULL members mean the process's malloc,
 * free and realloc. */
typedef struct trace_allocator_s {
  void *(*malloc_fn)(size_t size);
  void  (*free_fn)(void *ptr);
  void *(*realloc_fn)(void *ptr, size_t size);
} trace_allocator_t;

typedef struct trace_replay_opts_s {
  trace_allocator_t alloc;
  bool     check;     /* verify a block's whole contents before each free */
  unsigned repeat;    /* replay the trace this many times (0 means 1) */
} trace_replay_opts_t;

typedef struct trace_result_s {
  uint64_t ops;                  /* requests executed (all repeats) */
  double   seconds;              /* wall time of the replay loops, fills included */
  double   ops_per_s;
  uint64_t peak_live_bytes;      /* peak sum of requested sizes of live blocks */
  uint64_t peak_rss_delta_bytes; /* peak RSS minus the RSS before the replay */
  double   utilization;          /* peak_live / peak_rss_delta (RSS based); 0 if no RSS growth */
  uint64_t errors;               /* content mismatches found (each reported once) */
} trace_result_t;

/* Replay t. Returns 0 on success, -1 when the allocator failed (NULL result)
 * or contents were damaged; err then says which request (file:line) and how.
 * Every block still live at the end is freed (after checking, with check). */
int  trace_replay(const trace_t *t, const trace_replay_opts_t *opts,
                  trace_result_t *res, char *err, size_t errlen);

/* RSS now, in bytes, from /proc/self/statm (0 if unreadable). */
uint64_t trace_rss_bytes(void);
/* RSS from an open /proc/self/statm (read with pread, so the fd is reused). */
uint64_t trace_statm_rss(int fd);
/* Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; false if not allowed. */
bool trace_hwm_reset(void);
/* VmHWM in bytes, 0 if unreadable. */
uint64_t trace_hwm_read(void);

#endif /* TSR_TRACE_H */
