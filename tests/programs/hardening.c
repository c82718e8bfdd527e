/* hardening.c -- the default build's and TESSERA_SECURE=1's protections,
 * observed from a program (run under LD_PRELOAD=libtessera.so):
 *
 *   hardening order    64 blocks of 48 bytes from a fresh page: how many are
 *                      adjacent in allocation order. Prints "adjacent N/63";
 *                      the test runner expects 63 by default and few (< 16)
 *                      under TESSERA_SECURE=1 (random order within a page).
 *   hardening zero     a freed 48-byte block's bytes past its link words
 *                      (16..47) read back: "nonzero N". Reading freed memory
 *                      is what an attacker does after a use-after-free; the
 *                      runner expects 0 under TESSERA_SECURE=1.
 *   hardening guard    fills a segment with 1 KiB blocks and writes past
 *                      the highest one: must die of SIGSEGV on the guard page
 *                      after the segment (exit status 0 from the parent if
 *                      so, 1 if the write went through).
 * Built with -fno-builtin so the compiler keeps every call and access.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int order(void) {
  char *p[64];
  int adjacent = 0;
  for (int i = 0; i < 64; i++) p[i] = malloc(48);
  for (int i = 1; i < 64; i++) adjacent += (p[i] - p[i - 1] == 48);
  printf("adjacent %d/63\n", adjacent);
  for (int i = 0; i < 64; i++) free(p[i]);
  return 0;
}

static int zero(void) {
  volatile unsigned char *b = malloc(48);
  memset((void *)b, 0x77, 48);
  free((void *)b);
  int nonzero = 0;
  for (int i = 16; i < 48; i++) nonzero += b[i] != 0;
  printf("nonzero %d\n", nonzero);
  return 0;
}

static int guard(void) {
  pid_t pid = fork();
  if (pid == 0) {
    char *last = NULL;
    /* 40,000 KiB > one 32 MiB segment: the highest block ends a segment. */
    for (int i = 0; i < 40000; i++) {
      char *p = malloc(1024);
      if (p > last) last = p;
    }
    memset(last, 1, 1024 + 65536);
    _exit(3);   /* the write went through */
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) {
    printf("guard: overflow past a segment's end stopped by SIGSEGV\n");
    return 0;
  }
  printf("guard: overflow past a segment's end NOT stopped (status %d)\n", status);
  return 1;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "order") == 0) return order();
  if (argc == 2 && strcmp(argv[1], "zero") == 0) return zero();
  if (argc == 2 && strcmp(argv[1], "guard") == 0) return guard();
  fprintf(stderr, "usage: hardening order|zero|guard\n");
  return 2;
}
