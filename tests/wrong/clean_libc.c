/* expect: clean
 * libc functions that allocate: strdup, getline, qsort, printf, asprintf, fopen. */
#define _GNU_SOURCE
#include "wrong.h"
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
int main(void) {
  char *words[100];
  for (int i = 0; i < 100; i++) { char buf[32]; snprintf(buf, sizeof buf, "word%d", (i * 37) % 100); words[i] = strdup(buf); }
  qsort(words, 100, sizeof words[0], cmp);
  FILE *f = tmpfile();
  for (int i = 0; i < 100; i++) fprintf(f, "%s %d %f\n", words[i], i, i / 3.0);
  rewind(f);
  char *line = NULL;
  size_t cap = 0;
  long total = 0;
  while (getline(&line, &cap, f) > 0) total += (long)strlen(line);
  free(line);
  fclose(f);
  char *msg;
  if (asprintf(&msg, "%ld bytes", total) < 0) return 1;
  printf("%s %s\n", msg, words[0]);
  free(msg);
  for (int i = 0; i < 100; i++) free(words[i]);
  return 0;
}
