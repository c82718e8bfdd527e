/* init.c -- process life cycle: initialization (eager from a constructor,
 * lazy from the first slow path), fork handlers, and the exit report.
 *
 * We may be called before libc is ready (preloaded, or from another
 * library's constructor), so lazy init touches nothing but raw syscalls and
 * `environ`; the steps that need libc (a pthread key for thread exit, the
 * fork handlers) run in the constructor. Only the initializing thread may
 * recurse into the allocator during init; others wait.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <pthread.h>

uintptr_t tsr_secret;
uintptr_t tsr_owner_extra;
_Atomic int tsr_init_state;

void tsr_init_process(void) {
  if (tsr_likely(atomic_load_explicit(&tsr_init_state, memory_order_acquire) == 2)) return;
  int expected = 0;
  if (atomic_compare_exchange_strong(&tsr_init_state, &expected, 1)) {
    uintptr_t secret = (uintptr_t)tsr_platform_random();
    tsr_secret = secret | 1;       /* never zero: a zero secret would make links plain */
    tsr_options_init();
    /* Secure mode sends every free through the slow path (where blocks are
     * zeroed) by marking every page's owner slow: the fast paths stay as
     * they are, with no mode test. */
    if (tsr_option_long(TSR_OPT_SECURE)) tsr_owner_extra = TSR_OWNER_SLOW;
    atomic_store_explicit(&tsr_init_state, 2, memory_order_release);
    return;
  }
  /* Another thread is initializing (a few syscalls): wait for it. The same
   * thread cannot get here: nothing above allocates. */
  while (atomic_load_explicit(&tsr_init_state, memory_order_acquire) != 2) tsr_platform_yield();
}

/* ---- fork: take every lock in rank order, so the child finds them free ---- */

static void fork_prepare(void) {
  for (int r = 0; r < TSR_LOCK_COUNT; r++) tsr_lock((tsr_lock_rank_t)r);
}
static void fork_parent(void) {
  for (int r = TSR_LOCK_COUNT - 1; r >= 0; r--) tsr_unlock((tsr_lock_rank_t)r);
}
/* In the child only the forking thread exists. Other threads' heaps stay
 * owned by threads that no longer exist: their memory is not reused, but
 * their state may be mid-update, so adopting them would be unsafe. */
static void fork_child(void) {
  for (int r = 0; r < TSR_LOCK_COUNT; r++) atomic_store(&tsr_locks[r].held, 0);
  tsr_heap_fork_child();
}

__attribute__((constructor(101))) static void tsr_init_constructor(void) {
  tsr_init_process();
  /* Options read before libc set environ: read them again now. */
  tsr_options_init();
  tsr_heap_process_ready();
  tsr_stats_init();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  if (tsr_heap_get() == &tsr_heap_empty) tsr_heap_init_thread();
}

__attribute__((destructor(101))) static void tsr_fini_destructor(void) {
  tsr_stats_exit_report();
}

tsr_public const char *tsr_version(void) {
  return TSR_CHECK ? TSR_VERSION_STRING " check" : TSR_VERSION_STRING " release";
}

#if TSR_DEBUG
_Noreturn void tsr_assert_fail(const char *what, const char *file, int line) {
  tsr_message("assertion failed: %s (%s:%d)", what, file, line);
  tsr_platform_abort();
}
#endif
