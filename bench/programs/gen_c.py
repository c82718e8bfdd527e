# gen_c.py -- write a large, deterministic C file for the gcc benchmark.
#
# Many functions with big switch statements, local structs and initialised
# tables keep gcc's parser, GIMPLE and RTL passes allocating; the file is the
# same for every allocator, so its object code must be too.
# Usage: python3 gen_c.py FUNCTIONS OUT.c
import sys


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    lines = ["#include <stddef.h>", "struct pt { long x, y; double w; };"]
    for f in range(n):
        lines.append("static const int tab%d[] = {%s};" % (f, ",".join(str((f * 31 + i * 17) % 997) for i in range(64))))
        lines.append("long fn%d(long a, long b, struct pt *p) {" % f)
        lines.append("  long acc = a ^ %d;" % f)
        lines.append("  for (int i = 0; i < 64; i++) {")
        lines.append("    switch ((a + i) %% %d) {" % (8 + f % 9))
        for c in range(8 + f % 9):
            lines.append("    case %d: acc += tab%d[i] * %d + (b >> %d); p->x += acc; break;" % (c, f, c + 1, c % 7))
        lines.append("    default: acc -= i; p->y ^= acc;")
        lines.append("    }")
        lines.append("  }")
        lines.append("  p->w += (double)acc / %d.0;" % (f + 1))
        lines.append("  return acc + (a > b ? fn%d(a - 1, b, p) : 0);" % (f - 1) if f else "  return acc;")
        lines.append("}")
    lines.append("long run_all(long a, long b, struct pt *p) {")
    lines.append("  long s = 0;")
    for f in range(n):
        lines.append("  s += fn%d(a, b, p);" % f)
    lines.append("  return s;")
    lines.append("}")
    with open(out, "w") as fh:
        fh.write("\n".join(lines) + "\n")


main()
