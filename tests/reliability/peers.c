/* peers.c -- other threads doing an idle owner's work on its heap, raced
 * against the owner.
 *
 * Peer collection (src/heap.c) lets any thread's housekeeping, and
 * malloc_trim, retire the pages of another live thread's heap once every
 * block in them is free, while that owner keeps running its lock-free fast
 * paths on the same heap. This test makes the two meet as often as it can:
 *   - OWNERS threads allocate blocks of every kind (direct-table classes,
 *     larger classes, large blocks), tag them, free half themselves (fast
 *     path) and hand half to the remote freers; between rounds they sleep
 *     long enough to look idle, or not at all;
 *   - FREERS threads free the handed blocks (remote frees), each after
 *     checking its tag;
 *   - a trimmer calls malloc_trim(0) (which claims every heap not inside a
 *     slow path) and makes pages of its own, so the periodic peer passes run.
 * Every block's first and last words carry its address XOR a round tag,
 * checked before every free: a page retired under a live block, or a block
 * handed out twice, shows as a broken tag. At the end tsr_invariant_check()
 * must pass with the threads joined, and peers must have retired pages
 * (where the kernel lacks membarrier the mechanism is off: said, not failed).
 * Usage: peers [SECONDS] (default 4). The allocator is compiled in; the
 * ThreadSanitizer build (-DPEERS_TSAN) links tessera's TSan objects.
 */
#ifdef PEERS_TSAN
/* The ThreadSanitizer build links tessera's objects and calls the tsr_*
 * names (tests/reliability/tsan_names.h is force-included). */
#include "internal.h"
#else
#include "../../src/unity.c"
#endif

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef PEERS_TSAN
#define malloc_trim(pad) tsr_heap_trim()
#endif

#define OWNERS 3
#define FREERS 2
#define BATCH 1500          /* blocks per owner round */
#define RING 8192           /* handed blocks waiting for a freer */

typedef struct { uint8_t *p; size_t n; } handed_t;
static handed_t ring[RING];
static unsigned ring_head, ring_tail;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool stop;
static _Atomic long damaged, blocks, rounds;

static const size_t sizes[] = { 16, 24, 48, 100, 256, 700, 1024, 1500, 3000, 8000, 20000, 70000, 300000 };

static void tag(uint8_t *p, size_t n) {
  uintptr_t t = (uintptr_t)p ^ 0x5eedf00dull ^ n;
  *(uintptr_t *)p = t;
  *(uintptr_t *)(p + ((n - sizeof t) & ~(sizeof t - 1))) = t;
}
static void check_free(uint8_t *p, size_t n) {
  uintptr_t t = (uintptr_t)p ^ 0x5eedf00dull ^ n;
  if (*(uintptr_t *)p != t || *(uintptr_t *)(p + ((n - sizeof t) & ~(sizeof t - 1))) != t) damaged++;
  free(p);
}

static bool hand(uint8_t *p, size_t n) {
  pthread_mutex_lock(&ring_lock);
  bool ok = ring_tail - ring_head < RING;
  if (ok) ring[ring_tail++ % RING] = (handed_t){ p, n };
  pthread_mutex_unlock(&ring_lock);
  return ok;
}

static void *owner(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
  static __thread uint8_t *mine[BATCH];
  static __thread size_t mine_n[BATCH];
  while (!atomic_load(&stop)) {
    unsigned kept = 0;
    for (unsigned i = 0; i < BATCH; i++) {
      unsigned r = (unsigned)rand_r(&seed);
      size_t n = sizes[r % (r % 7 == 0 ? 13 : 8)] + (r >> 16) % 16;
      uint8_t *p = malloc(n);
      if (p == NULL) { damaged++; continue; }
      tag(p, n);
      blocks++;
      if ((r >> 8) & 1 && hand(p, n)) continue;
      mine[kept] = p;
      mine_n[kept++] = n;
    }
    /* Look idle for a while (peer passes are 20 ms apart and want two
     * passes without a slow path), or not at all. */
    unsigned r = (unsigned)rand_r(&seed);
    if (r % 3 != 0) usleep(30000 + r % 40000);
    for (unsigned i = 0; i < kept; i++) check_free(mine[i], mine_n[i]);
    rounds++;
    if (r % 5 == 0) usleep(50000);   /* idle with everything freed */
  }
  return NULL;
}

static void *freer(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    handed_t h = { NULL, 0 };
    pthread_mutex_lock(&ring_lock);
    if (ring_head != ring_tail) h = ring[ring_head++ % RING];
    pthread_mutex_unlock(&ring_lock);
    if (h.p != NULL) check_free(h.p, h.n);
    else usleep(200);
  }
  return NULL;
}

static void *trimmer(void *arg) {
  (void)arg;
  unsigned k = 0;
  while (!atomic_load(&stop)) {
    if (k++ % 4 == 0) malloc_trim(0);
    /* A few fresh pages of a class nobody else uses: page_new runs the
     * peer pass every 8 pages. */
    void *p[40];
    for (int i = 0; i < 40; i++) p[i] = malloc(5000 + (size_t)(k % 3) * 2000);
    for (int i = 0; i < 40; i++) free(p[i]);
    usleep(3000);
  }
  return NULL;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 4;
  long barrier_ok = syscall(SYS_membarrier, 0 /* QUERY */, 0, 0);
  bool has_membarrier = barrier_ok > 0 && (barrier_ok & (1 << 3)) != 0;
  pthread_t o[OWNERS], f[FREERS], t;
  for (long i = 0; i < OWNERS; i++) pthread_create(&o[i], NULL, owner, (void *)(i + 1));
  for (long i = 0; i < FREERS; i++) pthread_create(&f[i], NULL, freer, NULL);
  pthread_create(&t, NULL, trimmer, NULL);
  usleep((useconds_t)(seconds * 1e6));
  atomic_store(&stop, true);
  for (int i = 0; i < OWNERS; i++) pthread_join(o[i], NULL);
  for (int i = 0; i < FREERS; i++) pthread_join(f[i], NULL);
  pthread_join(t, NULL);
  while (ring_head != ring_tail) { handed_t h = ring[ring_head++ % RING]; check_free(h.p, h.n); }
  size_t broken = tsr_invariant_check();
  uint64_t retired = atomic_load(&tsr_heap_peer_retired);
  printf("peers: %ld rounds, %ld blocks, %ld damaged, %zu invariants broken, %lu pages retired by peers%s\n",
         (long)rounds, (long)blocks, (long)damaged, broken, (unsigned long)retired,
         has_membarrier ? "" : " (no membarrier here: peer collection is off)");
  if (damaged != 0 || broken != 0) return 1;
  if (has_membarrier && retired == 0) { printf("peers: FAIL: no page was retired by a peer\n"); return 1; }
  return 0;
}
