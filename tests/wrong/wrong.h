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
