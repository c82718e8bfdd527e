#!/bin/sh
# gcc.sh -- the C compiler proper (cc1, one process) on a large generated
# file; the assembly it writes must be identical, and the program it makes
# must run. cc1 runs directly so that its statistics are not overwritten by
# those of the gcc driver, which execs it.
. "$(dirname "$0")/lib.sh"
CC1=$(gcc -print-prog-name=cc1)
[ -x "$CC1" ] || fail "cannot find cc1 ($CC1)"
python3 - "$W/big.c" <<'PY'
import sys
n = 1500
with open(sys.argv[1], "w") as f:
    f.write("int printf(const char *, ...);\n")  # no headers: cc1 runs without the driver's include paths
    for i in range(n):
        f.write(f"struct s{i} {{ int a; long b; char c[{i % 7 + 1}]; }};\n")
        f.write(f"static long f{i}(long x) {{ struct s{i} v = {{ (int)x, x * {i}, {{0}} }};\n")
        f.write(f"  for (int j = 0; j < {i % 5 + 1}; j++) v.b += (v.a ^ j) * {i + 3} + (long)sizeof v.c;\n")
        f.write(f"  switch (x % 4) {{ case 0: return v.b; case 1: return v.b - {i}; case 2: return v.b * 2; default: return -v.b; }} }}\n")
    f.write("int main(void) { long t = 0;\n")
    for i in range(n):
        f.write(f"  t += f{i}({i}L);\n")
    f.write('  printf("%ld\\n", t); return 0; }\n')
PY
plain cc "$CC1" -quiet -O2 "$W/big.c" -o "$W/plain.s"
tsr cc "$CC1" -quiet -O2 "$W/big.c" -o "$W/tsr.s"
cmp -s "$W/plain.s" "$W/tsr.s" || { diff "$W/plain.s" "$W/tsr.s" | head >&2; fail "cc1 produced different assembly under tessera"; }
gcc -o "$W/big" "$W/tsr.s" || fail "assembling/linking the tessera-compiled program"
r1=$("$W/big")
gcc -O0 -o "$W/big0" "$W/big.c" && r0=$("$W/big0")
[ "$r1" = "$r0" ] || fail "compiled program prints $r1, -O0 build prints $r0"
reached cc 10000
say "gcc: cc1 on $(wc -l <"$W/big.c") lines: identical assembly ($(wc -l <"$W/tsr.s") lines), program prints $r1"
