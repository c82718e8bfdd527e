// cxx_new.cpp -- every replaceable operator new/delete, through the process malloc.
//
// Calls each variant explicitly (plain, [], nothrow, sized, aligned,
// aligned+nothrow, sized+aligned) and through new-expressions, checks
// alignment and contents, the bad_alloc / nullptr / new_handler contract on
// failure, and, when tessera is the malloc (tsr_stats_get resolves through
// dlsym), that the calls reached it: its counters must move by at least the
// number of calls made. Built with -std=c++17 -faligned-new.
#include <dlfcn.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>

#include "tessera.h"

static int failures, checks;
#define EXPECT(c)                                                        \
  do {                                                                   \
    checks++;                                                            \
    if (!(c)) {                                                          \
      failures++;                                                        \
      std::fprintf(stderr, "cxx_new: FAIL line %d: %s\n", __LINE__, #c); \
    }                                                                    \
  } while (0)

static void *volatile sink[64];  // escapes, so no new/delete pair is elided

static void use(void *p, std::size_t n, std::size_t align) {
  EXPECT(p != nullptr);
  if (!p) return;
  EXPECT(reinterpret_cast<std::uintptr_t>(p) % (align > 16 ? align : 16) == 0);
  std::memset(p, 0x5c, n);
  sink[n % 64] = p;
}

struct alignas(256) Over {
  char c[300];
};

static int handler_calls;
static void handler() {
  handler_calls++;
  std::set_new_handler(nullptr);  // next failure throws
}

typedef int (*stats_get_fn)(tsr_stats_t *);

static tsr_stats_t snapshot(stats_get_fn get) {
  tsr_stats_t s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  if (get) get(&s);
  return s;
}

int main() {
  stats_get_fn get = reinterpret_cast<stats_get_fn>(dlsym(RTLD_DEFAULT, "tsr_stats_get"));
  tsr_stats_t before = snapshot(get);
  const std::size_t al = 128;
  const std::align_val_t A = static_cast<std::align_val_t>(al);
  int plain = 0, aligned = 0, frees = 0;
  for (int round = 0; round < 100; round++) {
    std::size_t n = static_cast<std::size_t>(16 + round * 40);
    void *p;
    p = ::operator new(n); use(p, n, 0); ::operator delete(p); plain++; frees++;
    p = ::operator new[](n); use(p, n, 0); ::operator delete[](p); plain++; frees++;
    p = ::operator new(n, std::nothrow); use(p, n, 0); ::operator delete(p, std::nothrow); plain++; frees++;
    p = ::operator new[](n, std::nothrow); use(p, n, 0); ::operator delete[](p, std::nothrow); plain++; frees++;
    p = ::operator new(n); use(p, n, 0); ::operator delete(p, n); plain++; frees++;
    p = ::operator new[](n); use(p, n, 0); ::operator delete[](p, n); plain++; frees++;
    p = ::operator new(n, A); use(p, n, al); ::operator delete(p, A); aligned++; frees++;
    p = ::operator new[](n, A); use(p, n, al); ::operator delete[](p, A); aligned++; frees++;
    p = ::operator new(n, A, std::nothrow); use(p, n, al); ::operator delete(p, A, std::nothrow); aligned++; frees++;
    p = ::operator new[](n, A, std::nothrow); use(p, n, al); ::operator delete[](p, A, std::nothrow); aligned++; frees++;
    p = ::operator new(n, A); use(p, n, al); ::operator delete(p, n, A); aligned++; frees++;
    p = ::operator new[](n, A); use(p, n, al); ::operator delete[](p, n, A); aligned++; frees++;
    // new-expressions: the compiler picks the sized/aligned forms itself.
    int *i = new int(round); EXPECT(*i == round); sink[0] = i; delete i; plain++; frees++;
    long *la = new long[round + 1]; la[round] = 1; sink[1] = la; delete[] la; plain++; frees++;
    Over *o = new Over; use(o, sizeof *o, alignof(Over)); delete o; aligned++; frees++;
    Over *oa = new Over[3]; use(oa, 3 * sizeof *oa, alignof(Over)); delete[] oa; aligned++; frees++;
    Over *on = new (std::nothrow) Over; use(on, sizeof *on, alignof(Over)); delete on; aligned++; frees++;
  }
  // Large alignments too.
  for (std::size_t a = 16; a <= (1u << 20); a *= 4) {
    void *p = ::operator new(100, static_cast<std::align_val_t>(a));
    use(p, 100, a);
    ::operator delete(p, 100, static_cast<std::align_val_t>(a));
    aligned++;
    frees++;
  }
  // Failure: plain new throws, nothrow returns nullptr, the handler is called.
  volatile std::size_t huge = SIZE_MAX / 2;
  bool threw = false;
  try { sink[2] = ::operator new(huge); } catch (const std::bad_alloc &) { threw = true; }
  EXPECT(threw);
  threw = false;
  try { sink[2] = ::operator new(huge, A); } catch (const std::bad_alloc &) { threw = true; }
  EXPECT(threw);
  EXPECT(::operator new(huge, std::nothrow) == nullptr);
  EXPECT(::operator new[](huge, A, std::nothrow) == nullptr);
  std::set_new_handler(handler);
  threw = false;
  try { sink[2] = ::operator new(huge); } catch (const std::bad_alloc &) { threw = true; }
  EXPECT(threw && handler_calls == 1);

  Dl_info info;
  void *(*opnew)(std::size_t) = &::operator new;
  const char *from = dladdr(reinterpret_cast<void *>(opnew), &info) && info.dli_fname ? info.dli_fname : "?";
  if (get) {
    tsr_stats_t after = snapshot(get);
    // Every operator new is a malloc-family call and every delete a free in
    // tessera's counters, whether tessera defines the operators or
    // libstdc++'s call its malloc.
    EXPECT(after.malloc_count + after.aligned_count >= before.malloc_count + before.aligned_count + plain + aligned);
    EXPECT(after.aligned_count >= before.aligned_count + aligned);
    EXPECT(after.free_count >= before.free_count + frees);
    std::printf("cxx_new: tessera counted malloc +%llu aligned +%llu free +%llu (made %d plain, %d aligned, %d deletes)\n",
                (unsigned long long)(after.malloc_count - before.malloc_count),
                (unsigned long long)(after.aligned_count - before.aligned_count),
                (unsigned long long)(after.free_count - before.free_count), plain, aligned, frees);
  }
  std::printf("cxx_new: operator new from %s; %d checks, %d failed\n", from, checks, failures);
  return failures ? 1 : 0;
}
