/* expect: clean
 * The only reference to a block is an interior pointer (a string's middle,
 * a struct member): reachable, not a leak. */
#include "wrong.h"
struct header { long size; char payload[100]; };
char *middle;
char *payload;
int main(void) {
  char *s = malloc(64);
  strcpy(s, "prefix:value");
  middle = s + 7;
  struct header *h = malloc(sizeof *h);
  payload = h->payload;
  s = NULL; h = NULL;
  printf("%s\n", middle);
  return 0;
}
