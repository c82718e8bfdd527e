#!/bin/sh
# run.sh -- run every program of tests/wrong under `tessera check` and check
# the report: the class word named on the program's "expect:" line and the
# error exit status (23), or, for "expect: clean", no report at all and the
# program's own status (0). Then real programs (python3, sqlite3, cc1, perl)
# must run clean, and the CLI's options must reach the library.
# Usage: sh tests/wrong/run.sh BUILD_DIR (default build). Prints ok/FAIL
# lines; exit status 1 if anything failed.
B=${1:-build}
T=$B/tests/wrong
CLI=$B/tessera
fail=0
pass=0
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; sed -n '1,40p' "$W/out" | sed 's/^/     | /'; }

for src in tests/wrong/*.c tests/wrong/*.cpp; do
  name=$(basename "$src"); name=${name%.*}
  expect=$(sed -n 's/.*expect: *\([a-z-]*\).*/\1/p' "$src" | head -n 1)
  envs=$(sed -n 's/.*env: *\(.*\)$/\1/p' "$src" | head -n 1)
  [ -n "$expect" ] || continue
  # shellcheck disable=SC2086
  env $envs timeout 60 "$CLI" check -- "$T/$name" >"$W/out" 2>&1
  st=$?
  if [ "$expect" = clean ]; then
    if grep -q '^tessera:' "$W/out"; then bad "$name" "expected no report"
    elif [ $st -ne 0 ]; then bad "$name" "exit status $st, expected 0"
    else ok "$name (clean)"; fi
  else
    if ! grep -q "^tessera: $expect:" "$W/out"; then bad "$name" "no '$expect' report"
    elif [ $st -ne 23 ]; then bad "$name" "exit status $st, expected 23"
    elif grep -v '^tessera:' "$W/out" | grep -q 'tessera'; then bad "$name" "a report line without the 'tessera:' prefix"
    else ok "$name ($expect)"; fi
  fi
done

# Every report names the stacks: the bad call and the allocation, symbolized.
"$CLI" check -- "$T/double_free" >"$W/out" 2>&1
if grep -q 'in main .*double_free.c:' "$W/out" && grep -q 'allocated (malloc) by thread T1' "$W/out" &&
   grep -q 'freed by thread T1' "$W/out"; then ok "double_free stacks symbolized"; else bad "double_free stacks" "missing stack lines"; fi
"$CLI" check -- "$T/double_free_sites" >"$W/out" 2>&1
if grep -A1 'second free by this call' "$W/out" | grep -q 'in free_6 ' &&
   grep -A1 'was allocated (malloc)' "$W/out" | grep -q 'in alloc_5 ' &&
   grep -A2 'was allocated (malloc)' "$W/out" | grep -q 'in main .*double_free_sites.c:19' &&
   grep -A1 'and freed by' "$W/out" | grep -q 'in free_2 '; then ok "double_free_sites: each stack from its own call site"
else bad "double_free_sites" "a stack names another call site"; fi
"$CLI" check -- "$T/invalid_free_stack" >"$W/out" 2>&1
if grep -q "on thread T1's stack" "$W/out"; then ok "invalid_free_stack names the thread"; else bad "invalid_free_stack" "no thread"; fi
"$CLI" check -- "$T/invalid_free_global" >"$W/out" 2>&1
if grep -q "invalid_free_global" "$W/out" && grep -q "global\|static data" "$W/out"; then ok "invalid_free_global names the object"; else bad "invalid_free_global" "no object"; fi
"$CLI" check -- "$T/invalid_free_interior" >"$W/out" 2>&1
if grep -q "8 bytes inside a 100-byte block" "$W/out"; then ok "interior free: offset and size"; else bad "interior free" "no offset"; fi
TESSERA_CHECK_GUARD=off TESSERA_CHECK_QUARANTINE=4K "$CLI" check -- "$T/uaf_orphan" >"$W/out" 2>&1
if grep -q "found when the block left the quarantine" "$W/out"; then ok "uaf_orphan: an exited thread's quarantine is released by another"
else bad "uaf_orphan" "not found when the orphan left the quarantine"; fi
"$CLI" check -- "$T/overflow_1" >"$W/out" 2>&1
if grep -q "0 bytes after a 13-byte block" "$W/out"; then ok "overflow_1: offset and size"; else bad "overflow_1" "no offset"; fi
"$CLI" check -- "$T/leak_indirect" >"$W/out" 2>&1
if grep -q "32 bytes in 1 block is definitely lost" "$W/out" && grep -q "288 bytes in 9 blocks are indirectly lost" "$W/out"; then
  ok "leak_indirect: definite and indirect split"; else bad "leak_indirect" "wrong split"; fi
"$CLI" check -- "$T/double_free_threads" >"$W/out" 2>&1
if grep -q "freed by thread T2" "$W/out" && grep -q "double-free" "$W/out"; then ok "double free across threads names both"; else bad "double_free_threads" "threads"; fi

# The CLI's options.
"$CLI" check --error-exitcode=7 -- "$T/double_free" >"$W/out" 2>&1
[ $? -eq 7 ] && ok "--error-exitcode=7" || bad "--error-exitcode" "status"
"$CLI" check --log-file="$W/log" -- "$T/double_free" >"$W/out" 2>&1
if grep -q '^tessera: double-free' "$W/log" && ! grep -q '^tessera:' "$W/out"; then ok "--log-file"; else bad "--log-file" "not in the file"; fi
"$CLI" check --json -- "$T/double_free" >"$W/out" 2>&1
if grep -q '^{"tessera":"report","class":"double-free"' "$W/out" &&
   python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]' "$W/out"; then ok "--json"; else bad "--json" "not JSON"; fi
"$CLI" check --leaks=no -- "$T/leak_definite" >"$W/out" 2>&1
[ $? -eq 0 ] && ! grep -q '^tessera:' "$W/out" && ok "--leaks=no" || bad "--leaks=no" "reported"
"$CLI" check --leaks=all -- "$T/clean_10k" >"$W/out" 2>&1
[ $? -eq 0 ] && grep -q 'still reachable' "$W/out" && ok "--leaks=all (still reachable is not an error)" || bad "--leaks=all" "no still reachable"
"$CLI" check --guard=off -- "$T/overflow_64" >"$W/out" 2>&1
[ $? -eq 0 ] && ok "--guard=off (64 bytes past the end needs a guard page)" || bad "--guard=off" "status"
"$CLI" check -- sh -c 'exit 5' >"$W/out" 2>&1
[ $? -eq 5 ] && ! grep -q '^tessera:' "$W/out" && ok "a clean run keeps the program's status" || bad "status" "changed"

# Real programs: nothing to report (bounded time).
cat >"$W/work.py" <<'PY'
import json, re, collections
d = {i: str(i) * 3 for i in range(20000)}
c = collections.Counter(re.findall(r"\w+", json.dumps(d)))
print(len(c))
PY
real() {
  label=$1; shift
  timeout 120 "$CLI" check -- "$@" >"$W/out" 2>&1
  st=$?
  if grep -q '^tessera:' "$W/out"; then bad "$label" "reports"
  elif [ $st -ne 0 ]; then bad "$label" "exit status $st"
  else ok "$label"; fi
}
PY=/usr/bin/python3; [ -x $PY ] || PY=$(command -v python3)
if [ -n "$PY" ]; then real "python3 script" "$PY" "$W/work.py"; fi
if command -v sqlite3 >/dev/null; then
  real "sqlite3" sqlite3 "$W/db" "create table t(a, b); with recursive n(i) as (select 1 union all select i + 1 from n where i < 5000) insert into t select i, hex(randomblob(20)) from n; create index ti on t(b); select count(*), sum(a) from t;"
fi
CC1=$(gcc -print-prog-name=cc1 2>/dev/null)
if [ -x "$CC1" ]; then
  gcc -E tests/wrong/clean_libc.c -o "$W/in.i"
  real "cc1 on a small file" "$CC1" -quiet -fpreprocessed -O2 "$W/in.i" -o "$W/out.s"
fi
# perl skips its own teardown unless asked: PERL_DESTRUCT_LEVEL=2 (what perl's
# own sanitizer runs use) makes it free what it allocated.
if command -v perl >/dev/null; then
  PERL_DESTRUCT_LEVEL=2 real "perl" perl -e 'my %h; $h{$_} = $_ x 3 for 1 .. 20000; my @k = sort keys %h; print scalar(@k), "\n"'
fi

echo "tests/wrong: $pass passed, $fail failed"
[ $fail -eq 0 ]
