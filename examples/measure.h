/* measure.h -- the few measurements the examples print: resident memory
 * (anonymous RSS, from /proc/self/statm), a monotonic clock, the region of
 * /proc/self/maps that holds an address, and which malloc is running.
 *
 * Nothing here calls malloc, so measuring does not disturb the heap being
 * measured: files are read with open/read into static buffers, and
 * ex_init() gives stdout a static buffer (stdio would otherwise malloc one
 * at the first printf, and that block would show up in the heap we study).
 */
#ifndef EXAMPLES_MEASURE_H
#define EXAMPLES_MEASURE_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Line-buffered stdout in a static buffer: output interleaves correctly with
 * reports written to stderr, and printf never allocates. */
static inline void ex_init(void) {
  static char buf[BUFSIZ];
  setvbuf(stdout, buf, _IOLBF, sizeof buf);
}

/* Anonymous resident memory in bytes: the pages of this process that are in
 * RAM now (statm's second field) less those backed by files (the third:
 * program and library code, whose pages fault in 64 KiB at a time the first
 * time a function runs). What is left is what malloc, the stack and mmap of
 * anonymous memory took from the OS. */
static inline size_t rss_bytes(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  unsigned long size_pages = 0, resident_pages = 0, file_pages = 0;
  sscanf(buf, "%lu %lu %lu", &size_pages, &resident_pages, &file_pages);
  return (resident_pages - file_pages) * (size_t)sysconf(_SC_PAGESIZE);
}

/* Signed RSS change in KiB, for "RSS +N KiB" lines. */
static inline long rss_delta_kib(size_t before, size_t after) {
  return ((long)after - (long)before) / 1024;
}

static inline double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* /proc/self/maps read into a static buffer; valid until the next call. */
static inline const char *maps_text(void) {
  static char maps[1 << 18];
  int fd = open("/proc/self/maps", O_RDONLY);
  size_t len = 0;
  ssize_t n;
  while (fd >= 0 && len < sizeof maps - 1 &&
         (n = read(fd, maps + len, sizeof maps - 1 - len)) > 0)
    len += (size_t)n;
  if (fd >= 0) close(fd);
  maps[len] = 0;
  return maps;
}

/* The name /proc/self/maps gives the mapping that contains p: "[heap]"
 * (the sbrk area), "[stack]", a file name, "[anon:NAME]" for a named
 * anonymous mapping, "anonymous" when unnamed, "unmapped" when none. The
 * returned string lives in a static buffer until the next call. */
static inline const char *region_of(const void *p) {
  static char name[256];
  uintptr_t a = (uintptr_t)p;
  for (const char *line = maps_text(); *line; ) {
    const char *end = strchr(line, '\n');
    if (!end) end = line + strlen(line);
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) {
      /* range, perms, offset, device, inode, then the name (may be empty) */
      const char *c = line;
      for (int field = 0; field < 5; field++) {
        while (c < end && *c != ' ') c++;
        while (c < end && *c == ' ') c++;
      }
      size_t k = (size_t)(end - c);
      if (k == 0) return "anonymous";
      if (k >= sizeof name) k = sizeof name - 1;
      memcpy(name, c, k);
      name[k] = 0;
      return name;
    }
    line = *end ? end + 1 : end;
  }
  return "unmapped";
}

/* Which malloc runs: tessera when libtessera.so or its checking build is
 * mapped (preloaded), glibc otherwise. Read from the maps, not with dlsym:
 * a failed dlsym allocates its error message, and that would be the first
 * malloc of the process. */
static inline const char *malloc_name(void) {
  const char *maps = maps_text();
  if (strstr(maps, "/libtessera-check.so")) return "tessera (checking build)";
  if (strstr(maps, "/libtessera.so")) return "tessera";
  return "glibc";
}

#endif
