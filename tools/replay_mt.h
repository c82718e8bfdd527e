/* replay_mt.h -- replay recorded operations (rops, trace_bin.h) through a
 * pluggable allocator, with the recorded threads or flattened to one.
 *
 * The CLI's replay of binary traces and `tessera map` use it; .rep traces go
 * through trace.c's replayer. Both measure the same way: every byte written
 * with a per-block pattern, contents checked across realloc and before free,
 * peak RSS from VmHWM (reset through /proc/self/clear_refs) and statm samples.
 */
#ifndef TSR_REPLAY_MT_H
#define TSR_REPLAY_MT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_bin.h"

typedef struct rx_alloc_s {
  void *(*malloc_fn)(size_t);
  void *(*calloc_fn)(size_t, size_t);
  void *(*realloc_fn)(void *, size_t);
  void (*free_fn)(void *);
  void *(*aligned_fn)(size_t align, size_t size);  /* aligned_alloc-like; size need not be a multiple */
} rx_alloc_t;

typedef struct rx_opts_s {
  rx_alloc_t alloc;        /* NULL members: the process's own functions */
  unsigned   repeat;       /* passes over the trace (0 means 1) */
  bool       threads;      /* replay each recorded thread on its own thread */
  /* Single-threaded only: called before op index i when i % sample_every == 0,
   * and once more at the end with i == op_count. live: payload bytes live. */
  void     (*sample)(void *arg, size_t i, uint64_t live);
  void      *sample_arg;
  size_t     sample_every;
} rx_opts_t;

typedef struct rx_result_s {
  uint64_t ops;
  double   seconds;
  double   ops_per_s;
  uint64_t peak_live_bytes;
  uint64_t peak_rss_delta_bytes;
  double   utilization;    /* peak_live / peak_rss_delta; 0 if RSS did not grow */
  uint32_t threads_used;
} rx_result_t;

/* Replay r (path names it in messages). Returns 0, or -1 with one line in
 * err: "path: operation N (thread T): what went wrong". */
int rx_replay(const rops_t *r, const char *path, const rx_opts_t *o, rx_result_t *res, char *err, size_t errlen);

/* Peak of live payload bytes over r in its recorded order. */
uint64_t rops_peak_live(const rops_t *r);

#endif /* TSR_REPLAY_MT_H */
