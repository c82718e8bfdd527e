/* alloca_runtime.c -- what alloca does with a size known only at run time,
 * and why no malloc can see it.
 *
 * alloca(n) is not a library call: the compiler turns it into "move the
 * stack pointer down by n, rounded up to 16" inside the caller's frame (see
 * the disassembly `make examples` prints). The block is part of the frame,
 * so it is gone when the function returns, and nothing (no malloc, no
 * tessera check, no free) ever hears of it. A size larger than the stack
 * has room for crashes the program: there is no NULL to test for.
 * Usage: alloca_runtime N...  (sizes in bytes, read at run time)
 */
#include "measure.h"

#include <alloca.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* noinline: keeps the printing out of use_alloca's disassembly. */
__attribute__((noinline)) static void report(size_t n, const char *block, const char *local) {
  printf("alloca(%6zu) = %p in %s, %6ld bytes below the frame's local at %p\n", n,
         (void *)block, region_of(block), (long)(local - block), (void *)local);
}

__attribute__((noinline)) static void use_alloca(size_t n) {
  char marker = 0;           /* a local of this frame, above the alloca'd block */
  char *block = alloca(n);
  memset(block, 'a', n);     /* touch it all: it is real memory */
  report(n, block, &marker);
}

/* In a child process, so the crash is measured instead of ending the demo.
 * The child sets the usual 8 MiB stack limit first: under `ulimit -s
 * unlimited` the stack could grow into the 64 MiB. */
static void alloca_too_big(size_t n) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit limit;
    getrlimit(RLIMIT_STACK, &limit);
    if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max > 8 * MiB) limit.rlim_cur = 8 * MiB;
    setrlimit(RLIMIT_STACK, &limit);
    use_alloca(n);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    printf("alloca(%zu MiB) in a child with an 8 MiB stack limit: killed by signal %d (%s)\n", n / MiB,
           WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    printf("alloca(%zu MiB) in a child with an 8 MiB stack limit: exited with status %d\n", n / MiB,
           WEXITSTATUS(status));
}

int main(int argc, char **argv) {
  ex_init();
  struct mallinfo2 before = mallinfo2();
  for (int i = 1; i < argc; i++) use_alloca(strtoul(argv[i], NULL, 0));
  struct mallinfo2 after = mallinfo2();
  printf("malloc's bytes in use before %zu, after %zu (mallinfo2): malloc saw none of it\n",
         before.uordblks, after.uordblks);
  alloca_too_big(64 * MiB);
  return 0;
}
