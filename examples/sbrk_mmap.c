/* sbrk_mmap.c -- what sbrk and mmap do, and what "mapping a file (or a
 * device) into memory" means.
 *
 * 1. sbrk moves the program break, the top of the one heap region ([heap] in
 *    /proc/self/maps); glibc's malloc moves it too, tessera's does not.
 * 2. mmap of anonymous memory: a new region anywhere in the address space,
 *    returned on its own with munmap.
 * 3. mmap of a file with MAP_SHARED: stores into the memory are stores into
 *    the file's pages in the kernel's page cache, so read() sees them at once,
 *    and they reach the disk without a single write() call.
 * 4. mmap of a device file, /dev/zero: the device decides what the memory
 *    is (here: zeros, which is how anonymous memory was asked for before
 *    MAP_ANONYMOUS).
 * Usage: sbrk_mmap FILE (FILE is created and overwritten).
 */
#include "measure.h"

#include <sys/mman.h>
#include <sys/stat.h>

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static void show_break(void) {
  char *brk0 = sbrk(0);
  void *small = malloc(100);
  char *brk1 = sbrk(0);
  printf("malloc(100) = %p in %s; the break moved by %ld KiB (%p -> %p)\n", small,
         region_of(small), (long)(brk1 - brk0) / 1024, (void *)brk0, (void *)brk1);

  size_t grow = 64 * KiB;
  char *old = sbrk((intptr_t)grow);  /* returns the old break: the new memory starts there */
  char *brk2 = sbrk(0);
  memset(old, 'x', grow);
  printf("sbrk(+64 KiB): new memory %p..%p in %s, break now %p\n", (void *)old,
         (void *)(old + grow), region_of(old), (void *)brk2);
  sbrk(-(intptr_t)grow);
  printf("sbrk(-64 KiB): break back at %p; only the top of the region can be given back\n",
         sbrk(0));
  free(small);
}

static void show_anonymous(void) {
  size_t size = 1 * MiB;
  size_t rss0 = rss_bytes();
  char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  size_t rss1 = rss_bytes();
  memset(p, 'x', size);
  size_t rss2 = rss_bytes();
  printf("mmap(1 MiB, anonymous) = %p in %s, %.1f TiB above the break\n", (void *)p,
         region_of(p), (double)((char *)p - (char *)sbrk(0)) / (double)(1ull << 40));
  printf("  RSS after mmap %+ld KiB, after writing every byte %+ld KiB\n",
         rss_delta_kib(rss0, rss1), rss_delta_kib(rss0, rss2));
  munmap(p, size);
  printf("  after munmap: RSS %+ld KiB, the address is %s\n", rss_delta_kib(rss0, rss_bytes()),
         region_of(p));
}

static void show_file(const char *path) {
  size_t size = 4096;
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
    perror(path);
    exit(1);
  }
  char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  printf("mmap(%s, MAP_SHARED) = %p, /proc/self/maps says: %s\n", base_name(path),
         (void *)map, base_name(region_of(map)));
  int n = snprintf(map, size, "written through memory at %p by process %d\n", (void *)map,
                   (int)getpid());
  printf("stored %d bytes with snprintf into the mapping (no write() call)\n", n);

  /* A second descriptor reads the same page-cache page the mapping points at. */
  char buf[128] = {0};
  int fd2 = open(path, O_RDONLY);
  ssize_t got = read(fd2, buf, (size_t)n);
  close(fd2);
  printf("read() before munmap: %zd bytes, %s\n", got,
         got == n && memcmp(buf, map, (size_t)n) == 0 ? "the same bytes" : "DIFFERENT");

  msync(map, size, MS_SYNC);  /* write the dirty page to the disk now */
  munmap(map, size);
  close(fd);

  memset(buf, 0, sizeof buf);
  fd = open(path, O_RDONLY);
  got = read(fd, buf, sizeof buf - 1);
  struct stat st;
  fstat(fd, &st);
  close(fd);
  printf("read() after munmap and close: file size %lld, first line: %s",
         (long long)st.st_size, buf);
}

static void show_device(void) {
  int fd = open("/dev/zero", O_RDONLY);
  size_t size = 64 * KiB;
  unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  size_t nonzero = 0;
  for (size_t i = 0; i < size; i++) nonzero += p[i] != 0;
  p[0] = 1;  /* private: the store changes this process's copy only */
  printf("mmap(/dev/zero, 64 KiB, MAP_PRIVATE) = %p in %s: %zu non-zero bytes\n", (void *)p,
         region_of(p), nonzero);
  munmap(p, size);
}

int main(int argc, char **argv) {
  ex_init();
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  printf("malloc: %s\n", malloc_name());
  show_break();  /* first: glibc's malloc must not have run yet */
  show_anonymous();
  show_file(argv[1]);
  show_device();
  return 0;
}
