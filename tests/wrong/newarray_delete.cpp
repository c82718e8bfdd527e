// expect: alloc-dealloc-mismatch
// new[] released with scalar delete.
struct item { long v[4]; };
static item *volatile keep;
int main() {
  keep = new item[8];
  delete keep;
  return 0;
}
