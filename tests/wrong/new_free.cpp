// expect: alloc-dealloc-mismatch
// A block from operator new given to free().
#include <cstdlib>
#include <cstdio>
struct point { int x, y; };
static point *volatile keep;
int main() {
  keep = new point{1, 2};
  std::free(keep);
  return 0;
}
