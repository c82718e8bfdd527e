/* stack_heap_grow.c -- which way the stack and the heap grow.
 *
 * A recursive function prints the address of a local at each depth: every
 * call pushes a frame below its caller's, so the addresses go down. Then
 * successive malloc(32) calls print where each block landed and how far from
 * the previous one: the gap is the block size the allocator really uses
 * (glibc puts an 8-byte size header before each block and rounds to 16;
 * tessera keeps no header beside small blocks). Last, how each region grows
 * as a whole: the kernel extends the [stack] mapping downwards as deeper
 * frames touch it, and glibc moves the break (the top of [heap]) upwards.
 */
#include "measure.h"

#define DEPTH 5
#define BLOCKS 6

static uintptr_t frame_address[DEPTH];

__attribute__((noinline)) static void recurse(int depth) {
  volatile char local = (char)depth;  /* volatile: it must have an address in this frame */
  frame_address[depth] = (uintptr_t)&local;
  if (depth + 1 < DEPTH) recurse(depth + 1);
}

/* Lowest address of the [stack] mapping, from /proc/self/maps. */
static uintptr_t stack_low(void) {
  const char *line = strstr(maps_text(), "[stack]");
  while (line && line > maps_text() && line[-1] != '\n') line--;
  unsigned long lo = 0;
  if (line) sscanf(line, "%lx-", &lo);
  return lo;
}

/* Uses 64 KiB of stack per level. */
__attribute__((noinline)) static void recurse_big(int depth) {
  volatile char big[64 * 1024];
  big[0] = (char)depth;
  if (depth > 1) recurse_big(depth - 1);
  big[sizeof big - 1] = big[0];
}

int main(void) {
  ex_init();
  printf("malloc: %s\n", malloc_name());

  recurse(0);
  for (int d = 0; d < DEPTH; d++) {
    printf("recursion depth %d: local at %#lx", d, (unsigned long)frame_address[d]);
    if (d > 0) printf("  (%+ld bytes)", (long)(frame_address[d] - frame_address[d - 1]));
    printf("\n");
  }

  void *block[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) block[i] = malloc(32);
  for (int i = 0; i < BLOCKS; i++) {
    printf("malloc(32) #%d: %p", i + 1, block[i]);
    if (i > 0) printf("  (%+ld bytes)", (long)((char *)block[i] - (char *)block[i - 1]));
    printf("\n");
  }

  const char *heap_region = region_of(block[0]);
  printf("the blocks are in %s", heap_region);
  printf(", the frames in %s, %.1f TiB above the first block\n",
         region_of((void *)frame_address[0]),
         (double)(frame_address[0] - (uintptr_t)block[0]) / (double)(1ull << 40));

  uintptr_t low0 = stack_low();
  recurse_big(32);
  uintptr_t low1 = stack_low();
  printf("32 nested calls with 64 KiB of locals each: [stack] now starts %lu KiB lower\n",
         (unsigned long)(low0 - low1) / 1024);

  char *brk0 = sbrk(0);
  for (int i = 0; i < 4000; i++) (void)!malloc(64);  /* kept to the end: the break cannot come down */
  char *brk1 = sbrk(0);
  printf("4000 more malloc(64): the break (top of [heap]) moved up by %ld KiB\n",
         (long)(brk1 - brk0) / 1024);
  for (int i = 0; i < BLOCKS; i++) free(block[i]);
  return 0;
}
