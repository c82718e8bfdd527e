#!/bin/sh
# demo.sh -- `make demo`: real workloads under glibc and under tessera.
#
# Runs the python3 object workload (scripts/demo/workload.py) and the
# sqlite3 workload (scripts/demo/workload.sql) once with the system malloc
# and once with LD_PRELOAD=build/libtessera.so, prints wall time and peak
# RSS (/usr/bin/time) side by side, checks that both runs print the same,
# and shows tessera's own statistics (TESSERA_STATS=1, text, at exit).
# Override the library with TSR_LIB=path; DEMO_SCALE scales the python run.
set -eu
cd "$(dirname "$0")/.."
LIB=${TSR_LIB:-build/libtessera.so}
[ -f "$LIB" ] || { echo "demo: $LIB not found; run make first" >&2; exit 1; }
LIB=$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")
[ -x /usr/bin/time ] || { echo "demo: /usr/bin/time missing; run make deps" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/tsr-demo.XXXXXX")
trap 'rm -rf "$W"' EXIT
SCALE=${DEMO_SCALE:-1}

# run TAG ALLOC CMD...: one timed run; "wall rss_kb" into $W/TAG.ALLOC.time.
run() {
    tag=$1 alloc=$2
    shift 2
    rm -f "$W"/*.db
    if [ "$alloc" = tessera ]; then
        # Statistics from the workload only, not from /usr/bin/time itself.
        env LD_PRELOAD="$LIB" /usr/bin/time -f "%e %M" -o "$W/$tag.$alloc.time" env TESSERA_STATS=1 "$@" \
            >"$W/$tag.$alloc.out" 2>"$W/$tag.$alloc.err"
    else
        /usr/bin/time -f "%e %M" -o "$W/$tag.$alloc.time" "$@" >"$W/$tag.$alloc.out" 2>"$W/$tag.$alloc.err"
    fi
}

row() {
    read -r wall rss <"$W/$1.$2.time"
    printf '%-16s %-8s %8s %12s   %s\n' "$3" "$2" "$wall" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" \
        "$(head -c 60 "$W/$1.$2.out" | head -n 1)"
}

echo "demo: building done; running workloads (glibc $(ldd --version | head -1 | awk '{print $NF}'), tessera $LIB)"
for alloc in glibc tessera; do
    run py "$alloc" /usr/bin/python3 scripts/demo/workload.py "$SCALE"
    run sql "$alloc" sqlite3 "$W/demo.db" ".read scripts/demo/workload.sql"
done

echo
printf '%-16s %-8s %8s %12s   %s\n' workload malloc "wall s" "peak RSS MiB" "output"
for tag in py sql; do
    name=python-objects
    [ $tag = sql ] && name=sqlite-400k-rows
    row $tag glibc $name
    row $tag tessera $name
    if ! cmp -s "$W/$tag.glibc.out" "$W/$tag.tessera.out"; then
        echo "demo: $name printed different results under tessera!" >&2
        diff "$W/$tag.glibc.out" "$W/$tag.tessera.out" | head >&2
        exit 1
    fi
done
echo
echo "tessera statistics, python workload (TESSERA_STATS=1):"
sed 's/^/  /' "$W/py.tessera.err"
echo
echo "tessera statistics, sqlite workload:"
sed 's/^/  /' "$W/sql.tessera.err"
