/* unity.c -- every source file in one translation unit: the shared and
 * static libraries are built from this, so the fast paths inline into the
 * exported entry points and override.c can alias instead of wrap.
 * Order follows the layers, bottom first.
 */
#define _GNU_SOURCE
#define TSR_UNITY 1
#include "platform_linux.c"
#include "os.c"
#include "sizeclass.c"
#include "span.c"
#include "page.c"
#include "large.c"
#include "heap.c"
#include "alloc.c"
#include "free.c"
#include "backtrace.c"
#include "check.c"
#include "guard.c"
#include "leak.c"
#include "options.c"
#include "stats.c"
#include "visit.c"
#include "invariant.c"
#include "init.c"
#include "override.c"
