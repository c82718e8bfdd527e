/* expect: clean
 * env: TESSERA_CHECK_GUARD=all
 * Guard pages stay within the memory-mapping limit: with every block asked
 * to be guarded, 100,000 live blocks must leave the process well below
 * vm.max_map_count (each guarded block costs up to two mappings). */
#include "wrong.h"
#define N 100000
static char *blocks[N];
static long count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  long n = 0;
  for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
  fclose(f);
  return n;
}
int main(void) {
  for (int i = 0; i < N; i++) { blocks[i] = malloc(32); memset(blocks[i], 1, 32); }
  long maps = count_lines("/proc/self/maps");
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  long max = 65530;
  if (f != NULL) { if (fscanf(f, "%ld", &max) != 1) max = 65530; fclose(f); }
  for (int i = 0; i < N; i++) free(blocks[i]);
  if (maps < 0 || maps > max / 2) { printf("%ld mappings, limit %ld\n", maps, max); return 1; }
  return 0;
}
