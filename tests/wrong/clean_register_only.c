/* expect: clean
 * A thread keeps the only pointer to a block in a register (r12) and spins
 * while the program exits: the leak scan must read other threads'
 * registers, or the block looks definitely lost. The pointer never sits in
 * memory unmasked, and the thread wipes its stack below where malloc ran. */
#include "wrong.h"
#include <pthread.h>
#include <stdint.h>
#define MASK ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)
static volatile uintptr_t masked;
static volatile int ready;
static void wipe(void) {
  volatile char buf[32768];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}
static void allocate(void) { masked = (uintptr_t)malloc(64) ^ MASK; }
static void *worker(void *arg) {
  (void)arg;
  allocate();
  wipe();
  __asm__ volatile("mov %0, %%r12\n\t"
                   "xor %1, %%r12\n\t"
                   "movl $1, %2\n"
                   "1:\tpause\n\t"
                   "jmp 1b"
                   : : "r"(masked), "r"(MASK), "m"(ready) : "r12", "memory");
  return NULL;
}
int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  while (!ready) {}
  masked = 0;
  return 0;
}
