/* check.h -- a tiny check harness for the API tests (after mimalloc's
 * test/testhelper.h): CHECK counts a passed or failed condition and reports
 * a failure with its line; check_done() prints "PREFIX: N passed, M failed"
 * and gives the exit status. Header-only and single-threaded on purpose: a
 * test that needs threads or a crash runs them in a child process.
 */
#ifndef TSR_TEST_CHECK_H
#define TSR_TEST_CHECK_H

#include <stdio.h>

static int check_passed_count, check_failed_count;
static const char *check_section = "";

/* Name the group of checks that follow, for failure messages. */
#define CHECK_SECTION(name) (check_section = (name))

#define CHECK(cond) CHECKF(cond, "%s", "")

/* CHECKF(cond, fmt, ...): on failure also print the formatted detail. */
#define CHECKF(cond, ...)                                                       \
  do {                                                                         \
    if (cond) {                                                                \
      check_passed_count++;                                                    \
    } else {                                                                   \
      check_failed_count++;                                                    \
      fprintf(stderr, "FAIL %s:%d [%s] %s: ", __FILE__, __LINE__,              \
              check_section, #cond);                                           \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

static inline int check_done(const char *prefix) {
  fflush(stderr);
  printf("%s: %d passed, %d failed\n", prefix, check_passed_count, check_failed_count);
  fflush(stdout);
  return check_failed_count ? 1 : 0;
}

#endif /* TSR_TEST_CHECK_H */
