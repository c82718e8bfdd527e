/* huge_pages.c -- does a huge block's mapping carry the transparent huge
 * page advice (TESSERA_HUGE_PAGES)? The advice is asked for when realloc
 * grows a huge block (a vector being filled), not when one is made. Makes
 * a 2 MiB block, prints "fresh advised 1|0" for its mapping, grows it to
 * 8 MiB with realloc, writes it, and prints "advised 1|0 anon-huge KB":
 * VmFlags has "hg" (MADV_HUGEPAGE) or not, and how much of it the kernel
 * backed with huge pages (that depends on free memory, so the test
 * asserts only on the advice).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The VmFlags advice of the mapping holding p (-1: not found); *huge_kb: its AnonHugePages. */
static int advice_of(const void *p, long *huge_kb) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return -1;
  char line[512];
  int inside = 0, advised = -1;
  *huge_kb = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strcspn(line, "-")) {
      if (advised >= 0) break;               /* past our mapping */
      inside = (unsigned long)p >= lo && (unsigned long)p < hi;
      continue;
    }
    if (!inside) continue;
    if (strncmp(line, "AnonHugePages:", 14) == 0) *huge_kb = strtol(line + 14, NULL, 10);
    if (strncmp(line, "VmFlags:", 8) == 0) advised = strstr(line, " hg") != NULL;
  }
  fclose(f);
  return advised;
}

int main(void) {
  long huge_kb;
  unsigned char *p = malloc((size_t)2 << 20);
  if (p == NULL) return 2;
  memset(p, 1, (size_t)2 << 20);
  int fresh = advice_of(p, &huge_kb);
  size_t n = (size_t)8 << 20;
  p = realloc(p, n);
  if (p == NULL) return 2;
  memset(p, 1, n);
  int grown = advice_of(p, &huge_kb);
  if (fresh < 0 || grown < 0) return 4;
  printf("fresh advised %d\n", fresh);
  printf("advised %d anon-huge %ld\n", grown, huge_kb);
  free(p);
  return 0;
}
