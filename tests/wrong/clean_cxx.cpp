// expect: clean
// new/delete, new[]/delete[], aligned new, and the standard containers.
#include <map>
#include <string>
#include <vector>
struct alignas(64) wide { char b[64]; };
int main() {
  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 1000; i++) m[std::to_string(i)].push_back(i);
  int *a = new int[10];
  delete[] a;
  wide *w = new wide;
  delete w;
  wide *ws = new wide[3];
  delete[] ws;
  return m.size() == 1000 ? 0 : 1;
}
