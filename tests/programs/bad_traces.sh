#!/bin/sh
# bad_traces.sh -- malformed .rep traces must be rejected precisely.
# Usage: bad_traces.sh PATH/replay_rep
# Each case writes a small trace, runs the replayer on it and expects a
# non-zero exit and a message "FILE:LINE: <what is wrong>" on stderr.
set -u
R=$1
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
n=0 bad=0

# case NAME EXPECTED-LINE EXPECTED-TEXT [replay_rep options] <<trace
case_() {
    name=$1 line=$2 text=$3
    shift 3
    f=$D/$name.rep
    cat >"$f"
    n=$((n + 1))
    if "$R" "$@" "$f" >"$D/out" 2>"$D/err"; then
        echo "FAIL $name: accepted (exit 0)"; bad=$((bad + 1)); return
    fi
    if ! grep -qF "$f:$line: $text" "$D/err"; then
        echo "FAIL $name: expected '$f:$line: $text', got: $(cat "$D/err")"; bad=$((bad + 1)); return
    fi
    echo "ok   $name: $(cat "$D/err")"
}

case_ unknown-op 6 "unknown request 'x'" <<'X'
1
4
3
1
a 0 10
x 1 5
f 0
X
case_ missing-size 2 "'a 0' request without a size" <<'X'
1 4 1 1
a 0
X
case_ missing-id 2 "'f' request without a block id" <<'X'
1 4 1 1
f
X
case_ id-out-of-range 7 "block id 4 out of range (the header declares 4 ids: 0..3)" <<'X'
1
4
3
1
a 0 10
a 3 10
a 4 10
X
case_ negative-id 5 "block id -2 out of range" <<'X'
1
4
1
1
a -2 10
X
case_ bad-size 6 "size '12x' is not a non-negative integer" <<'X'
1
4
2
1
a 0 10
r 0 12x
X
case_ negative-size 5 "size '-5' is not a non-negative integer" <<'X'
1
4
1
1
a 0 -5
X
case_ bad-id 5 "block id 'one' is not an integer" <<'X'
1
4
1
1
f one
X
case_ trailing 6 "unexpected '7' after the 'f' request" <<'X'
1
4
2
1
a 0 10
f 0 7
X
case_ truncated-header 3 "truncated header: expected 4 integers" <<'X'
1
4
X
case_ empty 1 "truncated header" </dev/null
case_ header-garbage 2 "header field 2 (id count): 'abc' is not a non-negative integer" <<'X'
1
abc
3
1
X
case_ realloc-free-order 7 "'f 1' frees block 1, which is not live" <<'X'
1
4
3
1
a 1 10
r 1 0
f 1
X
case_ double-alloc 6 "'a 2' allocates block 2, still live since line 5" <<'X'
1
4
2
1
a 2 10
a 2 20
X
case_ count-mismatch-strict 6 "the header declares 3 requests, the file has 2" --strict <<'X'
1
4
3
1
a 0 1
f 0
X
# A missing file names the file.
n=$((n + 1))
if "$R" "$D/nonexistent.rep" 2>"$D/err" >/dev/null || ! grep -qF "$D/nonexistent.rep: cannot open" "$D/err"; then
    echo "FAIL missing-file: $(cat "$D/err")"; bad=$((bad + 1))
else
    echo "ok   missing-file: $(cat "$D/err")"
fi
# A good trace after a bad one still replays, and the exit status says failure.
printf '1 2 2 1\na 0 5\nf 0\n' >"$D/good.rep"
printf '1 2 1 1\nq\n' >"$D/bad.rep"
n=$((n + 1))
if "$R" "$D/bad.rep" "$D/good.rep" >"$D/out" 2>/dev/null || ! grep -q '^good 2 ' "$D/out"; then
    echo "FAIL mixed: $(cat "$D/out")"; bad=$((bad + 1))
else
    echo "ok   mixed: bad trace reported, good one replayed: $(cat "$D/out")"
fi
# A count mismatch is only a warning without --strict.
printf '1 2 5 1\r\na 0 5\r\nf 0\r\n\r\n' >"$D/crlf.rep"
n=$((n + 1))
if ! "$R" "$D/crlf.rep" >"$D/out" 2>"$D/err" || ! grep -qF "$D/crlf.rep:3: warning: the header declares 5 requests, the file has 2" "$D/err"; then
    echo "FAIL lenient-count: $(cat "$D/err")"; bad=$((bad + 1))
else
    echo "ok   lenient-count: $(cat "$D/err")"
fi
echo "bad_traces: $((n - bad)) of $n cases behave"
[ $bad -eq 0 ]
