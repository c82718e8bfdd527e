/* tsan_names.h -- force-included (cc -include) into a threaded test built
 * with ThreadSanitizer and tessera's sources: TSan's runtime owns malloc,
 * so the test reaches tessera through the tsr_* names instead. Only for
 * tests that use nothing but these five calls.
 */
#ifndef TSAN_NAMES_H
#define TSAN_NAMES_H
#define malloc tsr_malloc
#define calloc tsr_calloc
#define realloc tsr_realloc
#define free tsr_free
#define posix_memalign tsr_posix_memalign
#endif
