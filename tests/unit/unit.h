/* unit.h -- the unit tests compile the whole allocator into the test (the
 * unity build, with UBSan), so they can call its internal functions and
 * check its structures directly. The test process itself runs on tessera.
 */
#ifndef TSR_UNIT_H
#define TSR_UNIT_H
#include "../../src/unity.c"
#include "../api/check.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#endif
