/* stack_frame.c -- how a call's stack frame is laid out, and where
 * callee-saved and caller-saved registers come in (x86-64 System V ABI,
 * CS:APP 3.7).
 *
 * `call` pushes the return address; the callee pushes the caller's %rbp
 * (the frame pointer) and points %rbp at it, so [%rbp] is the saved frame
 * pointer, [%rbp+8] the return address, and the locals sit below %rbp.
 * show_frame prints those slots read from memory next to what the compiler
 * says they should be (__builtin_frame_address, __builtin_return_address).
 *
 * A call may overwrite the caller-saved registers (%rax, %rcx, %rdx, %rsi,
 * %rdi, %r8-%r11): sum_of_squares needs `b` and the first square after a
 * call, so it keeps them in callee-saved registers (%rbx, %rbp, %r12-%r15),
 * which it must push on entry and pop before `ret` -- see its disassembly,
 * printed by `make examples`. square calls nothing and uses caller-saved
 * registers only: no frame at all.
 *
 * Built with -O2 and frame pointers; noipa keeps GCC from inlining the
 * functions or using its knowledge of what square clobbers (it would then
 * keep values in caller-saved registers across the call, which the ABI
 * does not allow in general).
 */
#include "measure.h"

__attribute__((noipa)) long square(long x) {
  return x * x;
}

__attribute__((noipa)) long sum_of_squares(long a, long b) {
  long sa = square(a);
  long sb = square(b);
  return sa + sb;
}

int main(void);

__attribute__((noipa)) void show_frame(long arg) {
  volatile long local[2] = {arg, arg + 1};
  void **fp = __builtin_frame_address(0);
  printf("show_frame's frame pointer %%rbp = %p\n", (void *)fp);
  printf("  [%%rbp + 8] = %p  return address (__builtin_return_address(0) = %p, main + %ld)\n",
         fp[1], __builtin_return_address(0), (long)((uintptr_t)fp[1] - (uintptr_t)&main));
  printf("  [%%rbp + 0] = %p  main's frame pointer, saved by `push %%rbp`\n", fp[0]);
  printf("  local[1] at %%rbp %+ld, local[0] at %%rbp %+ld: the locals are below\n",
         (long)((char *)&local[1] - (char *)fp), (long)((char *)&local[0] - (char *)fp));
}

int main(void) {
  ex_init();
  volatile long here = 0;
  printf("main's frame pointer = %p (a local of main at %p)\n", __builtin_frame_address(0),
         (void *)&here);
  show_frame(7);
  printf("sum_of_squares(3, 4) = %ld\n", sum_of_squares(3, 4));
  return 0;
}
