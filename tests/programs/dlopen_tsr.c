/* dlopen_tsr.c -- load libtessera.so at run time and use tsr_malloc.
 *
 * The process malloc stays glibc's; tessera arrives late, after threads
 * exist (one thread is created before dlopen and uses tessera afterwards),
 * and must bootstrap its state and per-thread heaps on demand. Blocks move
 * between threads, so frees are remote. Usage: dlopen_tsr PATH/libtessera.so
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*t_malloc)(size_t);
static void (*t_free)(void *);
static size_t (*t_usable)(const void *);
static atomic_int loaded;
static atomic_long errors;

enum { THREADS = 4, OPS = 100000, XCHG = 256 };
static void *xchg[XCHG];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *run(void *arg) {
  unsigned s = (unsigned)(uintptr_t)arg * 7919u + 1;
  while (!atomic_load(&loaded)) {}
  void *mine[128] = {0};
  for (int i = 0; i < OPS; i++) {
    s = s * 1103515245u + 12345u;
    int k = (int)((s >> 8) & 127);
    if (mine[k]) {
      unsigned char *p = mine[k];
      if (p[0] != (unsigned char)k) atomic_fetch_add(&errors, 1);
      if ((s >> 20) % 4 == 0) {  /* trade with another thread */
        int x = (int)((s >> 4) % XCHG);
        pthread_mutex_lock(&lock);
        void *q = xchg[x];
        xchg[x] = p;
        pthread_mutex_unlock(&lock);
        if (q) t_free(q);
        mine[k] = NULL;
        continue;
      }
      t_free(p);
    }
    size_t n = (s >> 12) % 5 == 0 ? (s >> 4) % 70000 + 1 : (s >> 4) % 300 + 1;
    unsigned char *p = t_malloc(n);
    if (!p || t_usable(p) < n || ((uintptr_t)p & 15)) {
      atomic_fetch_add(&errors, 1);
      mine[k] = NULL;
      continue;
    }
    memset(p, k, n);
    mine[k] = p;
  }
  for (int k = 0; k < 128; k++)
    if (mine[k]) t_free(mine[k]);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: dlopen_tsr PATH/libtessera.so\n");
    return 2;
  }
  pthread_t early;
  pthread_create(&early, NULL, run, (void *)(uintptr_t)99);  /* exists before the library */
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "dlopen_tsr: dlopen: %s\n", dlerror());
    atomic_store(&loaded, 1);
    return 1;
  }
  t_malloc = (void *(*)(size_t))dlsym(h, "tsr_malloc");
  t_free = (void (*)(void *))dlsym(h, "tsr_free");
  t_usable = (size_t(*)(const void *))dlsym(h, "tsr_usable_size");
  const char *(*ver)(void) = (const char *(*)(void))dlsym(h, "tsr_version");
  if (!t_malloc || !t_free || !t_usable || !ver) {
    fprintf(stderr, "dlopen_tsr: missing tsr_ symbols\n");
    return 1;
  }
  /* The process malloc is still glibc's: tessera loaded RTLD_LOCAL cannot
   * interpose symbols bound before it came. */
  int process_is_tessera = dlsym(RTLD_DEFAULT, "tsr_version") != NULL;
  atomic_store(&loaded, 1);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, run, (void *)(uintptr_t)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  pthread_join(early, NULL);
  for (int x = 0; x < XCHG; x++)
    if (xchg[x]) t_free(xchg[x]);
  /* glibc malloc and tessera side by side. */
  void *g = malloc(100), *ts = t_malloc(100);
  free(g);
  t_free(ts);
  long e = atomic_load(&errors);
  printf("dlopen_tsr: %s loaded at run time (%s), %d threads, %ld errors\n", ver(),
         process_is_tessera ? "also the process malloc" : "process malloc unchanged", THREADS + 1, e);
  return e ? 1 : 0;
}
