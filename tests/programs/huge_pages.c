/* huge_pages.c -- does a huge block's mapping carry the transparent huge
 * page advice (TESSERA_HUGE_PAGES)? Allocates and writes an 8 MiB block,
 * finds the mapping that holds it in /proc/self/smaps and prints
 * "advised 1|0 anon-huge KB": VmFlags has "hg" (MADV_HUGEPAGE) or not, and
 * how much of it the kernel backed with huge pages (that depends on free
 * memory, so the test asserts only on the advice).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  size_t n = (size_t)8 << 20;
  unsigned char *p = malloc(n);
  if (p == NULL) return 2;
  memset(p, 1, n);
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return 3;
  char line[512];
  int inside = 0, advised = -1;
  long huge_kb = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strcspn(line, "-")) {
      if (advised >= 0) break;               /* past our mapping */
      inside = (unsigned long)p >= lo && (unsigned long)p < hi;
      continue;
    }
    if (!inside) continue;
    if (strncmp(line, "AnonHugePages:", 14) == 0) huge_kb = strtol(line + 14, NULL, 10);
    if (strncmp(line, "VmFlags:", 8) == 0) advised = strstr(line, " hg") != NULL;
  }
  fclose(f);
  if (advised < 0) return 4;
  printf("advised %d anon-huge %ld\n", advised, huge_kb);
  free(p);
  return 0;
}
