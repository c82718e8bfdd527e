/* sizeclass.c -- every size maps to a class whose block holds it, is a
 * multiple of 16, and wastes at most 15 bytes below 256 and 1/8 above;
 * aligned classes are aligned; good_size agrees with the allocator. */
#include "unit.h"

int main(void) {
  CHECK_SECTION("classes");
  unsigned previous = 0;
  size_t worst_percent_x100 = 0;
  for (size_t size = 1; size <= TSR_CLASS_MAX_SIZE; size++) {
    unsigned c = tsr_size_class(size);
    size_t block = tsr_class_size[c];
    if (c < 1 || c >= TSR_CLASS_COUNT || block < size || block % 16 != 0 || c < previous) {
      CHECKF(0, "size %zu -> class %u block %zu", size, c, block);
      break;
    }
    if (block < 256) CHECKF(block - size <= 15 || size < 1, "size %zu waste %zu", size, block - size);
    else if ((block - size) * 8 > block) { CHECKF(0, "size %zu block %zu wastes over 1/8", size, block); break; }
    if (block >= 256 && (block - size) * 10000 / block > worst_percent_x100) worst_percent_x100 = (block - size) * 10000 / block;
    if (c > 1) CHECK(size > tsr_class_size[c - 1] || size <= 16);
    previous = c;
  }
  CHECK(tsr_size_class(0) == 1 && tsr_size_class(16) == 1 && tsr_size_class(17) == 2);
  CHECK(tsr_class_size[TSR_CLASS_COUNT - 1] == TSR_CLASS_MAX_SIZE);
  CHECKF(worst_percent_x100 <= 1250, "worst waste above 256: %zu.%02zu%%", worst_percent_x100 / 100, worst_percent_x100 % 100);

  CHECK_SECTION("aligned classes");
  for (size_t align = 16; align <= TSR_SLICE_SIZE; align *= 2)
    for (size_t size = 1; size <= 4096; size = size * 3 + 1) {
      unsigned c = tsr_size_class_aligned(size, align);
      CHECKF(c != 0 && tsr_class_size[c] >= size && tsr_class_size[c] % align == 0, "size %zu align %zu", size, align);
    }

  CHECK_SECTION("pages");
  for (unsigned c = 1; c < TSR_CLASS_COUNT; c++) {
    uint32_t slices = tsr_class_slices(c);
    CHECK(slices >= 1 && slices <= 16);
    CHECKF(((size_t)slices << TSR_SLICE_SHIFT) / tsr_class_size[c] >= 3, "class %u holds < 3 blocks", c);
  }

  CHECK_SECTION("good_size");
  for (size_t size = 1; size < (1u << 22); size = size * 5 / 4 + 1) {
    size_t good = tsr_good_size(size);
    void *p = malloc(size);
    CHECKF(good >= size && malloc_usable_size(p) == good, "size %zu good %zu usable %zu", size, good, malloc_usable_size(p));
    free(p);
  }
  return check_done("unit-sizeclass");
}
