/* wrong.h -- helpers for the deliberately buggy programs of tests/wrong.
 * Each program states what `tessera check` must report on a line
 *   expect: CLASS          (the class word of the report; "clean": nothing)
 * and, optionally, the settings it runs with:
 *   env: NAME=VALUE ...
 * tests/wrong/run.sh reads both. Programs are built -O0 with frame pointers,
 * and pass pointers through opaque() so the compiler cannot see the bug. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile opaque_slot;
static inline void *opaque(void *p) { opaque_slot = p; return opaque_slot; }

/* Overwrite the dead stack below the caller's frame. A conservative leak
 * scan (tessera's, LeakSanitizer's, Valgrind's) reads the stack at exit,
 * where the exit's own frames reuse the memory of the program's finished
 * calls and leave some of their slots unwritten: a copy of a lost block's
 * address that the allocator's frames left there makes the block look
 * reachable. How often depends on frame sizes and the stack's alignment
 * (one build of the checker missed leak_aligned's block in 9 runs of 30).
 * The leak programs call this before they return, so that they test the
 * scan, not that luck. */
__attribute__((noinline, unused)) static void scrub_stack(void) {
  volatile char dead[16384];
  for (size_t i = 0; i < sizeof dead; i++) dead[i] = 0;
}
