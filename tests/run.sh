#!/bin/sh
# run.sh -- run the test suite; one PASS/FAIL/SKIP line per test, then
# "tests: N passed, M failed"; exit 1 if anything failed.
#
# Environment: TSR_LIB  the libtessera.so to test (empty: glibc-only mode,
#                       where tests that need tessera are skipped);
#              TSR_BUILD the build folder (default build);
#              TRACES   folder of .rep traces (default ../shared/traces);
#              TESTS    names (shell patterns) of the tests to run (default all).
# Every test runs under `timeout`, with its output in $TSR_BUILD/tests/logs/.
# Tests needing the static library or dlopen are skipped in glibc mode.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
B=${TSR_BUILD:-build}
T=$B/tests
LOGS=$T/logs
TRACES=${TRACES:-../shared/traces}
TSR_LIB=${TSR_LIB-}
[ -n "$TSR_LIB" ] && TSR_LIB=$(cd "$(dirname "$TSR_LIB")" && pwd)/$(basename "$TSR_LIB")
export TSR_LIB ROOT
mkdir -p "$LOGS"
pass=0 fail=0 skip=0 failed_names=

selected() {
    [ -z "${TESTS:-}" ] && return 0
    for pat in $TESTS; do
        case "$1" in $pat) return 0 ;; esac
    done
    return 1
}

# t NAME SECONDS CMD...: run CMD with a time bound; its exit status decides.
t() {
    name=$1 secs=$2
    shift 2
    selected "$name" || return 0
    log=$LOGS/$name.log
    start=$(date +%s.%N)
    timeout -k 5 "$secs" "$@" >"$log" 2>&1
    rc=$?
    el=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1))
        summary=$(grep -v '^note:' "$log" | tail -n 1 | cut -c1-110)
        echo "PASS $name (${el}s) $summary"
    else
        fail=$((fail + 1))
        failed_names="$failed_names $name"
        why="exit $rc"
        [ $rc -eq 124 ] && why="timed out after ${secs}s"
        echo "FAIL $name ($why, ${el}s); log: $log"
        tail -n 15 "$log" | sed 's/^/    | /'
    fi
}

# s NAME REASON: a test that cannot run here.
s() {
    selected "$1" || return 0
    skip=$((skip + 1))
    echo "SKIP $1: $2"
}

# With tessera: preload it; without: run plain (the glibc baseline).
if [ -n "$TSR_LIB" ]; then
    PRE="env LD_PRELOAD=$TSR_LIB"
    mode="tessera ($TSR_LIB)"
    [ -f "$TSR_LIB" ] || { echo "run.sh: $TSR_LIB does not exist"; exit 1; }
else
    PRE=env
    mode="glibc only (no TSR_LIB)"
fi
echo "tests: mode: $mode"

# ---- API contract ------------------------------------------------------------
t api-glibc 120 $T/contract
if [ -n "$TSR_LIB" ]; then
    t api 120 $PRE $T/contract
    t api-tsr 120 $T/contract-tsr
else
    s api "needs TSR_LIB"
    s api-tsr "needs TSR_LIB"
fi

# ---- stress -------------------------------------------------------------------
t stress-1t 120 $PRE $T/stress -t 1 -n 100000 -s 1
t stress-4t 180 $PRE $T/stress -t 4 -n 60000 -s 2
t stress-4t-many-rounds 180 $PRE $T/stress -t 4 -n 40000 -r 20 -k 300 -s 3

# ---- sanitizers (against glibc; ASan brings its own allocator) -----------------
t asan-api 180 env ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0 $T/asan/contract
t asan-stress 180 env ASAN_OPTIONS=detect_leaks=1 $T/asan/stress -t 4 -n 20000 -s 4
# TSan of the allocator itself (its sources linked into the threaded stress
# test) belongs with the allocator's unit tests: tests/unit/unit.mk may
# define `test-tsan` (see tests/tests.mk).

# ---- programs -----------------------------------------------------------------
t threads10k 180 $PRE $T/threads10k 10000 64
t fork-threads 120 $PRE $T/fork_threads 20
t thread-exit-free 120 $PRE $T/thread_exit_free
t cxx-new 60 $PRE $T/cxx_new
if [ -n "$TSR_LIB" ]; then
    t static-link 60 $T/static_malloc
    t dlopen 120 $T/dlopen_tsr "$TSR_LIB"
    t hardening 120 sh tests/programs/hardening.sh $T/hardening "$TSR_LIB" $T/contract
    if [ -d /sys/kernel/mm/transparent_hugepage ]; then
        # TESSERA_HUGE_PAGES: a huge block that realloc grew is advised for 2 MiB pages (a new
        # one is not), and none is when the option is off.
        t huge-pages 60 sh -c "LD_PRELOAD=$TSR_LIB $T/huge_pages > $T/huge_pages.out && grep -q '^fresh advised 0' $T/huge_pages.out && grep -q '^advised 1 ' $T/huge_pages.out && TESSERA_HUGE_PAGES=0 LD_PRELOAD=$TSR_LIB $T/huge_pages | grep '^advised 0 '"
    else
        s huge-pages "kernel without transparent huge pages"
    fi
else
    s static-link "needs libtessera.a"
    s dlopen "needs TSR_LIB"
fi

# ---- traces ---------------------------------------------------------------------
if ls "$TRACES"/*.rep >/dev/null 2>&1; then
    t traces 300 $PRE $T/replay_rep --check "$TRACES"/*.rep
else
    s traces "no traces in $TRACES (set TRACES=)"
fi
t traces-malformed 60 sh tests/programs/bad_traces.sh $T/replay_rep

# ---- real programs under LD_PRELOAD ---------------------------------------------
for p in python python-regrtest sqlite perl gcc git redis; do
    t preload-$p 300 sh tests/preload/$p.sh
done

[ $skip -gt 0 ] && echo "tests: $skip skipped"
echo "tests: $pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "tests: failed:$failed_names"; exit 1; }
exit 0
