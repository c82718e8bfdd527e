/* os.c -- policy above the platform: aligned regions, purging, accounting,
 * the segment map and the metadata bump allocator.
 *
 * The segment map has one byte per 32 MiB slot of the 47-bit address space
 * (4 MiB of zero-initialized bss; only the touched OS pages cost memory). It
 * lets free() tell in two instructions whether a pointer is in a tessera
 * segment, before touching any memory the pointer claims to be ours.
 * Nothing here knows about heaps, pages or size classes.
 */
#include "internal.h"

#include <errno.h>

uint8_t tsr_segmap[TSR_SEGMAP_COUNT];
tsr_os_counters_t tsr_os_counters;
tsr_lock_t tsr_locks[TSR_LOCK_COUNT];

static struct {
  uint8_t *meta_next;      /* bump pointer in the current metadata chunk */
  uint8_t *meta_end;
  uintptr_t hint;          /* where the last aligned mapping ended: try there next */
} os;

#define META_CHUNK_SIZE ((size_t)256 * 1024)

void tsr_os_account_map(long delta_bytes) {
  uint64_t now = atomic_fetch_add_explicit(&tsr_os_counters.mapped_bytes, (uint64_t)delta_bytes,
                                           memory_order_relaxed) + (uint64_t)delta_bytes;
  uint64_t peak = atomic_load_explicit(&tsr_os_counters.mapped_peak_bytes, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak(&tsr_os_counters.mapped_peak_bytes, &peak, now)) {}
}

void tsr_os_account_pages(long delta_bytes) {
  uint64_t now = atomic_fetch_add_explicit(&tsr_os_counters.page_bytes, (uint64_t)delta_bytes,
                                           memory_order_relaxed) + (uint64_t)delta_bytes;
  uint64_t peak = atomic_load_explicit(&tsr_os_counters.page_peak_bytes, memory_order_relaxed);
  while (delta_bytes > 0 && now > peak &&
         !atomic_compare_exchange_weak(&tsr_os_counters.page_peak_bytes, &peak, now)) {}
}

/* Map size bytes aligned to alignment (a power of two, >= OS page). First
 * try where the last region ended (usually aligned: no waste, one syscall);
 * else over-map by the alignment and trim both ends. errno ENOMEM on failure. */
void *tsr_os_map_aligned(size_t size, size_t alignment) {
  if (size == 0 || size > ((size_t)1 << TSR_ADDRESS_BITS)) { errno = ENOMEM; return NULL; }
  uintptr_t hint = __atomic_load_n(&os.hint, __ATOMIC_RELAXED);
  uint8_t *p = NULL;
  if (hint != 0 && (hint & (alignment - 1)) == 0) {
    p = tsr_platform_map(size, (void *)hint);
    if (p != NULL && ((uintptr_t)p & (alignment - 1)) != 0) {
      tsr_platform_unmap(p, size);
      p = NULL;
    }
  }
  if (p == NULL) {
    size_t over = size + alignment;
    if (over < size) { errno = ENOMEM; return NULL; }
    uint8_t *raw = tsr_platform_map(over, NULL);
    if (raw == NULL) { errno = ENOMEM; return NULL; }
    p = (uint8_t *)(((uintptr_t)raw + alignment - 1) & ~(uintptr_t)(alignment - 1));
    if (p > raw) tsr_platform_unmap(raw, (size_t)(p - raw));
    uint8_t *end = p + size, *raw_end = raw + over;
    if (raw_end > end) tsr_platform_unmap(end, (size_t)(raw_end - end));
  }
  __atomic_store_n(&os.hint, (uintptr_t)p + size, __ATOMIC_RELAXED);   /* only a hint: any thread's will do */
  atomic_fetch_add_explicit(&tsr_os_counters.map_count, 1, memory_order_relaxed);
  tsr_os_account_map((long)size);
  return p;
}

void tsr_os_unmap(void *addr, size_t size) {
  if (tsr_platform_unmap(addr, size) == 0) {
    atomic_fetch_add_explicit(&tsr_os_counters.unmap_count, 1, memory_order_relaxed);
    tsr_os_account_map(-(long)size);
  }
}

/* Returns false if the OS refused; the memory is then simply kept. */
bool tsr_os_purge(void *addr, size_t size) {
  if (tsr_platform_purge(addr, size) != 0) return false;
  atomic_fetch_add_explicit(&tsr_os_counters.purge_count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&tsr_os_counters.purged_bytes, size, memory_order_relaxed);
  return true;
}

/* Mark [start, start+size) in the segment map: the first slot gets `first`,
 * the following ones `rest`. Readers are lock-free; a byte store is atomic. */
void tsr_os_segmap_set(uintptr_t start, size_t size, uint8_t first, uint8_t rest) {
  size_t i = start >> TSR_SEGMENT_SHIFT;
  size_t end = (start + size + TSR_SEGMENT_MASK) >> TSR_SEGMENT_SHIFT;
  for (size_t k = i; k < end && k < TSR_SEGMAP_COUNT; k++)
    atomic_store_explicit((_Atomic uint8_t *)&tsr_segmap[k], k == i ? first : rest, memory_order_release);
}

/* Metadata that lives as long as the process (heaps). Zeroed, 64-byte aligned. */
void *tsr_os_meta_alloc(size_t size) {
  size = (size + 63) & ~(size_t)63;
  tsr_lock(TSR_LOCK_META);
  if (os.meta_next == NULL || (size_t)(os.meta_end - os.meta_next) < size) {
    size_t chunk = size > META_CHUNK_SIZE ? (size + TSR_OS_PAGE_SIZE - 1) & ~(size_t)(TSR_OS_PAGE_SIZE - 1)
                                          : META_CHUNK_SIZE;
    uint8_t *p = tsr_platform_map(chunk, NULL);
    if (p == NULL) { tsr_unlock(TSR_LOCK_META); errno = ENOMEM; return NULL; }
    tsr_platform_name(p, chunk, "tessera meta");
    atomic_fetch_add_explicit(&tsr_os_counters.map_count, 1, memory_order_relaxed);
    tsr_os_account_map((long)chunk);
    os.meta_next = p;
    os.meta_end = p + chunk;
  }
  void *result = os.meta_next;
  os.meta_next += size;
  atomic_fetch_add_explicit(&tsr_os_counters.metadata_bytes, size, memory_order_relaxed);
  tsr_unlock(TSR_LOCK_META);
  return result;
}
