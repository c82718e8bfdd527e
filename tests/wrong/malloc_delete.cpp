// expect: alloc-dealloc-mismatch
// A malloc'd block released with delete.
#include <cstdlib>
static int *volatile keep;
int main() {
  keep = static_cast<int *>(std::malloc(sizeof(int) * 4));
  delete keep;
  return 0;
}
