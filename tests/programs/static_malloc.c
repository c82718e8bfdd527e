/* static_malloc.c -- a static executable linked with libtessera.a.
 *
 * No dynamic linker, no preload: tessera must replace glibc's malloc at
 * link time and work from the first call in libc's start-up code on. We
 * check that tsr_version answers and that malloc, calloc, realloc, the
 * aligned family and free move tessera's own counters (so glibc's malloc
 * is not the one in use), and that threads work.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera.h"

static void *thread_main(void *arg) {
  (void)arg;
  for (int i = 0; i < 10000; i++) {
    char *p = malloc((size_t)(i % 1000) + 1);
    if (!p) return (void *)1;
    p[0] = 1;
    free(p);
  }
  return NULL;
}

int main(void) {
  int bad = 0;
  const char *v = tsr_version();
  tsr_stats_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.struct_size = b.struct_size = sizeof a;
  tsr_stats_get(&a);
  enum { N = 1000 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = malloc((size_t)i * 13 + 1);
  void *c = calloc(10, 10), *r = realloc(NULL, 10), *al = aligned_alloc(4096, 100), *m = memalign(64, 10);
  void *pm = NULL;
  bad += posix_memalign(&pm, 256, 10) != 0;
  r = realloc(r, 100000);
  bad += !c || !r || !al || !m || ((unsigned long)al & 4095);
  tsr_stats_get(&b);
  for (int i = 0; i < N; i++) free(p[i]);
  free(c); free(r); free(al); free(m); free(pm);
  pthread_t t[4];
  void *res;
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, thread_main, NULL);
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], &res);
    bad += res != NULL;
  }
  /* printf/stdio buffers allocate through libc's internal calls too. */
  char *s = NULL;
  bad += asprintf(&s, "%s-%d", "static", 42) < 0 || strcmp(s, "static-42") != 0;
  free(s);
  int counted = b.malloc_count >= a.malloc_count + N && b.calloc_count > a.calloc_count &&
                b.aligned_count >= a.aligned_count + 3 && b.realloc_count >= a.realloc_count + 2;
  printf("static_malloc: tessera %s, malloc_count +%llu, %s\n", v ? v : "(none)",
         (unsigned long long)(b.malloc_count - a.malloc_count), counted ? "counted by tessera" : "NOT counted by tessera");
  return bad || !counted || !v ? 1 : 0;
}
