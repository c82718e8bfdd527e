/* bigblock.c -- big blocks, 64 KiB to 64 MiB.
 *
 * Each thread keeps a window of 4 live blocks with log-uniform sizes and
 * replaces one at a time; every OS page of a new block is written, as a
 * program that reads a file into a buffer would. One replacement in 4 grows
 * the old block with realloc instead. This is where an allocator decides
 * between caching freed spans (fast, more RSS) and returning them to the OS
 * (page faults on reuse), so read time together with peak RSS.
 * check = bytes allocated, which depends on the seeds only.
 */
#include "wl.h"

#define WIN 4
#define MIN_SIZE ((size_t)64 << 10)
#define MAX_SIZE ((size_t)64 << 20)

static uint64_t per_thread;

static void *run(wl_thread_t *t) {
  wl_rng_t r = wl_rng(6000 + (uint64_t)t->index);
  unsigned char *win[WIN] = {0};
  size_t size[WIN] = {0};
  uint64_t key[WIN] = {0};
  for (uint64_t i = 0; i < per_thread; i++) {
    size_t k = (size_t)(i % WIN), n = wl_logrange(&r, MIN_SIZE, MAX_SIZE);
    uint64_t nk = ((uint64_t)t->index << 40) | (i + 1);
    if (win[k] && !wl_tag_ok(win[k], size[k], key[k])) wl_fail("big block damaged", win[k], size[k]);
    if (win[k] && (wl_rand(&r) & 3) == 0 && n > size[k]) {
      unsigned char *p = realloc(win[k], n);
      if (!p) wl_fail("realloc returned NULL", win[k], n);
      if (!wl_tag_ok(p, size[k], key[k])) wl_fail("realloc lost contents", p, n);
      win[k] = p;
    } else {
      free(win[k]);
      win[k] = wl_xmalloc(n);
    }
    size[k] = n;
    key[k] = nk;
    wl_tag(win[k], n, nk);
    t->check += n;
  }
  for (size_t k = 0; k < WIN; k++) {
    if (win[k] && !wl_tag_ok(win[k], size[k], key[k])) wl_fail("big block damaged", win[k], size[k]);
    free(win[k]);
  }
  t->ops = per_thread;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv);
  per_thread = wl_n(&a, 150);
  uint64_t ops = 0, check = 0;
  double dt = wl_run(a.threads, run, NULL, &ops, &check);
  wl_result(ops, check, dt, 0);
  return 0;
}
