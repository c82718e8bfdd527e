/* cache.c -- false sharing of small blocks, after Hoard's cache-scratch and
 * cache-thrash (Berger et al., 2000).
 *
 *   thrash   each thread repeatedly allocates an 8-byte block, writes it many
 *            times and frees it; an allocator that gives neighbouring blocks
 *            of one cache line to different threads makes them fight over it
 *   scratch  the main thread allocates one 8-byte block per thread, side by
 *            side, and hands them out; each thread frees its block and then
 *            runs the thrash loop. An allocator that recycles the freed block
 *            for the thread that freed it inherits the main thread's layout
 * The time is in the writes, so a good allocator shows the bare memory loop.
 * check = the sum of the final bytes, which depends on the counts only.
 */
#include "wl.h"

#define OBJ 8

static uint64_t iters, writes;
static void **handed;  /* scratch: one block per thread, allocated by main */

static void *run(wl_thread_t *t) {
  if (handed) free(handed[t->index]);
  uint64_t acc = 0;
  for (uint64_t i = 0; i < iters; i++) {
    volatile unsigned char *p = wl_xmalloc(OBJ);
    for (int k = 0; k < OBJ; k++) p[k] = (unsigned char)k;
    for (uint64_t w = 0; w < writes; w++)
      for (int k = 0; k < OBJ; k++) p[k]++;
    for (int k = 0; k < OBJ; k++) acc += p[k];
    free((void *)p);
  }
  t->ops = iters;
  t->check = acc;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv);
  const char *m = a.mode ? a.mode : "thrash";
  iters = wl_n(&a, 200000);
  writes = 1000;
  if (strcmp(m, "scratch") == 0) {
    handed = wl_xmalloc((size_t)a.threads * sizeof *handed);
    for (int i = 0; i < a.threads; i++) handed[i] = wl_xmalloc(OBJ);
  } else if (strcmp(m, "thrash") != 0) {
    fprintf(stderr, "cache: unknown mode %s\n", m);
    return 2;
  }
  uint64_t ops = 0, check = 0;
  double dt = wl_run(a.threads, run, NULL, &ops, &check);
  free(handed);
  wl_result(ops, check, dt, 0);
  return 0;
}
