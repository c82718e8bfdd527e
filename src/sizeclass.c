/* sizeclass.c -- size -> class -> block size.
 *
 * Classes step by 16 bytes up to 256, then 8 classes per doubling up to
 * 128 KiB (88 classes). Every block size is a multiple of 16, so every block
 * is 16-byte aligned. Waste bound: below 256 a block is at most 15 bytes
 * larger than the request (16-byte alignment allows no less); from 256 up at
 * most 1/8 of the block (12.5 %). Power-of-two classes serve alignments up to
 * 64 KiB without padding (pages start slice-aligned).
 */
#include "internal.h"

#define C16(n) (16u * (n))
#define DOUBLING(k) \
  (1u << (k)) + 1 * (1u << ((k) - 3)), (1u << (k)) + 2 * (1u << ((k) - 3)), \
  (1u << (k)) + 3 * (1u << ((k) - 3)), (1u << (k)) + 4 * (1u << ((k) - 3)), \
  (1u << (k)) + 5 * (1u << ((k) - 3)), (1u << (k)) + 6 * (1u << ((k) - 3)), \
  (1u << (k)) + 7 * (1u << ((k) - 3)), (1u << ((k) + 1))

const uint32_t tsr_class_size[TSR_CLASS_COUNT] = {
  0,
  C16(1), C16(2), C16(3), C16(4), C16(5), C16(6), C16(7), C16(8),
  C16(9), C16(10), C16(11), C16(12), C16(13), C16(14), C16(15), C16(16),
  DOUBLING(8), DOUBLING(9), DOUBLING(10), DOUBLING(11), DOUBLING(12),
  DOUBLING(13), DOUBLING(14), DOUBLING(15), DOUBLING(16)
};
_Static_assert(sizeof(tsr_class_size) / sizeof(tsr_class_size[0]) == TSR_CLASS_COUNT, "class table");

static inline unsigned class_compute(size_t size) {
  if (size <= 256) return size <= 16 ? 1u : (unsigned)((size + 15) >> 4);
  size_t s = size - 1;
  unsigned k = 63u - (unsigned)__builtin_clzl(s);      /* 2^k <= s < 2^(k+1), k >= 8 */
  return 16u + (k - 8u) * 8u + (unsigned)((s >> (k - 3)) - 8u) + 1u;
}


unsigned tsr_size_class(size_t size) { return class_compute(size); }

/* The smallest class whose blocks are all aligned to `alignment` (<= 64 KiB):
 * block size a multiple of the alignment, since page areas are slice-aligned. */
unsigned tsr_size_class_aligned(size_t size, size_t alignment) {
  if (size > TSR_CLASS_MAX_SIZE || alignment > TSR_SLICE_SIZE) return 0;
  for (unsigned c = class_compute(size < alignment ? alignment : size); c < TSR_CLASS_COUNT; c++)
    if ((tsr_class_size[c] & (alignment - 1)) == 0) return c;
  return 0;
}

/* Pages hold at least 8 blocks up to 8 KiB (so a page is not retired and
 * re-made for every other call), up to 16 slices; blocks are carved lazily,
 * so a big page costs address space, not memory. */
uint32_t tsr_class_slices(unsigned size_class) {
  /* Classes above 8 KiB hold a few blocks per page, so a page empties (and
   * goes back to the OS) soon after its blocks are freed. */
  size_t per_page = tsr_class_size[size_class] <= 8192 ? 8 : 3;
  size_t want = (size_t)tsr_class_size[size_class] * per_page;
  uint32_t slices = (uint32_t)((want + TSR_SLICE_SIZE - 1) >> TSR_SLICE_SHIFT);
  return slices < 1 ? 1 : slices > 16 ? 16 : slices;
}

size_t tsr_good_size_internal(size_t size) {
  if (size <= TSR_CLASS_MAX_SIZE) return tsr_class_size[class_compute(size)];
  if (size <= TSR_LARGE_MAX_SIZE) return (size + TSR_SLICE_SIZE - 1) & ~(size_t)(TSR_SLICE_SIZE - 1);
  if (size > SIZE_MAX - TSR_OS_PAGE_SIZE) return size;
  return (size + TSR_OS_PAGE_SIZE - 1) & ~(size_t)(TSR_OS_PAGE_SIZE - 1);
}
