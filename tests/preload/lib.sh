# lib.sh -- shared by tests/preload/*.sh (sourced, not run).
#
# Each test runs a real program twice, plainly (the baseline: glibc's
# malloc, or whatever the program links) and under LD_PRELOAD=$TSR_LIB,
# compares what matters of their output, and checks through tessera's exit
# statistics (TESSERA_STATS=json, TESSERA_STATS_FILE) that the program's
# allocations reached tessera. Without TSR_LIB both runs are plain and the
# statistics checks are skipped (the glibc-only mode of tests/run.sh).
set -eu
: "${TSR_LIB:=}"
: "${ROOT:=$(pwd)}"
W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-preload.XXXXXX")
KILL_ON_EXIT=  # background servers to stop if the test ends early
cleanup() {
    for p in $KILL_ON_EXIT; do kill "$p" 2>/dev/null || :; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "$*"; }

# plain NAME CMD...: run CMD without tessera; stdout to $W/NAME.plain.
plain() {
    n=$1; shift
    "$@" >"$W/$n.plain" 2>"$W/$n.plain.err" || fail "$n (plain) exited $?: $(tail -5 "$W/$n.plain.err")"
}

# tsr NAME CMD...: run CMD under tessera; stdout to $W/NAME.tsr, statistics
# to $W/NAME.stats.json.
tsr() {
    n=$1; shift
    if [ -n "$TSR_LIB" ]; then
        env LD_PRELOAD="$TSR_LIB" TESSERA_STATS=json TESSERA_STATS_FILE="$W/$n.stats.json" "$@" \
            >"$W/$n.tsr" 2>"$W/$n.tsr.err" || fail "$n (tessera) exited $?: $(tail -5 "$W/$n.tsr.err")"
    else
        "$@" >"$W/$n.tsr" 2>"$W/$n.tsr.err" || fail "$n (second run) exited $?: $(tail -5 "$W/$n.tsr.err")"
    fi
}

# same NAME: the two runs printed the same.
same() {
    if ! cmp -s "$W/$1.plain" "$W/$1.tsr"; then
        diff "$W/$1.plain" "$W/$1.tsr" | head -20 >&2
        fail "$1: output differs between the plain run and the tessera run"
    fi
}

# stat_max FILE FIELD: the largest value of FIELD among the JSON objects in
# FILE (a process that forks or execs may add several); empty if none.
stat_max() {
    grep -o "\"$2\"[[:space:]]*:[[:space:]]*[0-9]*" "$1" 2>/dev/null |
        sed 's/.*:[[:space:]]*//' | sort -n | tail -n 1
}

# reached NAME MIN: tessera counted at least MIN mallocs in run NAME.
reached() {
    if [ -z "$TSR_LIB" ]; then
        say "$1: no TSR_LIB, statistics not checked"
        return 0
    fi
    f=$W/$1.stats.json
    [ -s "$f" ] || fail "$1: tessera wrote no statistics to TESSERA_STATS_FILE (did the program's allocations reach tessera?)"
    m=$(stat_max "$f" malloc_count)
    [ -n "$m" ] || fail "$1: no malloc_count in $(head -c 300 "$f")"
    [ "$m" -ge "$2" ] || fail "$1: tessera counted only $m mallocs (expected > $2)"
    say "$1: tessera counted $m mallocs"
}
