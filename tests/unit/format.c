/* format.c -- tessera's own formatter (no stdio, no allocation) and the
 * option parser. */
#include "unit.h"

int main(void) {
  char buf[128];
  CHECK_SECTION("format");
  tsr_format(buf, sizeof buf, "%s %d %u %zu %lx %p %%", "a", -5, 7u, (size_t)42, 255ul, (void *)0x10);
  CHECKF(strcmp(buf, "a -5 7 42 ff 0x10 %") == 0, "got '%s'", buf);
  tsr_format(buf, sizeof buf, "[%5u|%-4s|%c]", 42u, "ab", 'z');
  CHECKF(strcmp(buf, "[   42|ab  |z]") == 0, "got '%s'", buf);
  size_t n = tsr_format(buf, 8, "%s", "0123456789");
  CHECK(n == 7 && strcmp(buf, "0123456") == 0);

  CHECK_SECTION("options");
  long v;
  CHECK(option_parse(KIND_SIZE, "64M", &v) && v == 64L << 20);
  CHECK(option_parse(KIND_SIZE, "3k", &v) && v == 3072);
  CHECK(option_parse(KIND_BOOL, "yes", &v) && v == 1);
  CHECK(option_parse(KIND_BOOL, "OFF", &v) && v == 0);
  CHECK(!option_parse(KIND_BOOL, "maybe", &v));
  CHECK(option_parse(KIND_LONG, "-1", &v) && v == -1);
  CHECK(!option_parse(KIND_LONG, "12x", &v));
  CHECK(tsr_option_long(TSR_OPT_PURGE_DELAY) == 100 || getenv("TESSERA_PURGE_DELAY") != NULL);
  return check_done("unit-format");
}
