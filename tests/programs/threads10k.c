/* threads10k.c -- 10,000 short-lived threads, in waves of 64.
 *
 * Each thread allocates and frees a few blocks of assorted sizes (its first
 * malloc is the first operation on a new thread) and hands two blocks to
 * the main thread, which frees them only after the thread has exited: the
 * allocator must keep memory of dead threads valid and reclaim their heaps.
 * Usage: threads10k [THREADS] [WAVE]. Exit 1 on any damaged block.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job_s {
  int index;
  unsigned char *give[2];
  size_t give_size[2];
  int bad;
} job_t;

static void *run(void *arg) {
  job_t *j = arg;
  static const size_t sizes[] = {8, 24, 100, 640, 4000, 33000, 300000};
  void *keep[7];
  for (int i = 0; i < 7; i++) {
    keep[i] = malloc(sizes[(i + j->index) % 7]);
    if (!keep[i]) { j->bad++; return NULL; }
    memset(keep[i], j->index & 0xff, sizes[(i + j->index) % 7]);
  }
  for (int i = 0; i < 7; i += 2) free(keep[i]);
  for (int i = 1; i < 7; i += 2) free(keep[i]);
  for (int k = 0; k < 2; k++) {
    j->give_size[k] = (size_t)(16 + (j->index * 37 + k * 1000) % 5000);
    j->give[k] = malloc(j->give_size[k]);
    if (!j->give[k]) { j->bad++; return NULL; }
    memset(j->give[k], (j->index + k) & 0xff, j->give_size[k]);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int total = argc > 1 ? atoi(argv[1]) : 10000, wave = argc > 2 ? atoi(argv[2]) : 64;
  if (total < 1 || wave < 1) return 2;
  job_t *jobs = calloc((size_t)wave, sizeof *jobs);
  pthread_t *tid = calloc((size_t)wave, sizeof *tid);
  int started = 0, bad = 0;
  while (started < total) {
    int n = total - started < wave ? total - started : wave;
    for (int i = 0; i < n; i++) {
      memset(&jobs[i], 0, sizeof jobs[i]);
      jobs[i].index = started + i;
      if (pthread_create(&tid[i], NULL, run, &jobs[i]) != 0) {
        fprintf(stderr, "threads10k: pthread_create failed at thread %d\n", started + i);
        return 1;
      }
    }
    for (int i = 0; i < n; i++) pthread_join(tid[i], NULL);
    /* The threads are gone; their blocks must still be intact and freeable. */
    for (int i = 0; i < n; i++) {
      bad += jobs[i].bad;
      for (int k = 0; k < 2; k++) {
        unsigned char *p = jobs[i].give[k];
        if (!p) continue;
        for (size_t b = 0; b < jobs[i].give_size[k]; b++)
          if (p[b] != ((jobs[i].index + k) & 0xff)) {
            if (bad++ < 5) fprintf(stderr, "threads10k: block of thread %d damaged at %zu\n", jobs[i].index, b);
            break;
          }
        free(p);
      }
    }
    started += n;
  }
  free(jobs);
  free(tid);
  printf("threads10k: %d threads in waves of %d, %d errors\n", total, wave, bad);
  return bad ? 1 : 0;
}
