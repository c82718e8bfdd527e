#!/bin/sh
# test_measure.sh -- what run.py relies on in build/bench/measure: the result
# line, -c CPU pinning the program (and what it starts), --speed printing
# seconds, and a clear refusal of a CPU it cannot use. Part of bench-quick.
set -eu
m=build/bench/measure
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_measure: $*" >&2; exit 1; }

"$m" "$tmp/res" sh -c 'exit 3'
grep -q '^status 768 wall [0-9.]* user [0-9.]* sys [0-9.]* maxrss [0-9]*$' "$tmp/res" || fail "result line: $(cat "$tmp/res")"

# The last CPU this process may use, so the test holds in a restricted cpuset.
cpu=$(awk '/^Cpus_allowed_list/ { n = split($2, r, ","); split(r[n], a, "-"); print (a[2] != "" ? a[2] : a[1]) }' /proc/self/status)
"$m" -c "$cpu" "$tmp/res" sh -c 'grep Cpus_allowed_list /proc/self/status' > "$tmp/out"
got=$(awk '{ print $2 }' "$tmp/out")
[ "$got" = "$cpu" ] || fail "-c $cpu: the program may run on CPUs $got"

s=$("$m" --speed "$cpu")
echo "$s" | grep -Eq '^[0-9]+\.[0-9]+$' || fail "--speed printed '$s'"

if "$m" -c 100000 "$tmp/res" true 2> "$tmp/err"; then fail "-c 100000 ran"; fi
grep -q 'bad CPU number' "$tmp/err" || fail "-c 100000: $(cat "$tmp/err")"
echo "test_measure: ok (pinned to CPU $cpu; speed loop ${s} s)"
