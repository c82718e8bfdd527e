#!/bin/sh
# bench/device_scaling.sh -- the thread-scaling part of `make bench`, for a
# lent many-core machine that has no network (the device tool's).
#
# Prepared here, run there in one go:
#   here:   make all bench-bins && sh bench/device_scaling.sh --bundle
#           (copies the peers' libraries, installed here by `make deps`, into
#           build/peers, so they can travel with build/)
#   there:  sh bench/device_scaling.sh OUTDIR
#           (installs build/peers into /usr/local/lib when the machine lacks
#           the peers, then runs bench/run.py on the threaded workloads with
#           THREADS=1,2,4,8,16; the report goes to OUTDIR)
# THREADS, ROUNDS, SCALE and ONLY override the defaults below; SCALE < 1
# shortens every workload so that all five allocators at five thread counts,
# three rounds, fit in the machine's few minutes.
set -e

PEERS="libjemalloc.so.2 libtcmalloc_minimal.so.4 libmimalloc.so.2"

if [ "$1" = "--bundle" ]; then
  mkdir -p build/peers
  for so in $PEERS; do
    path=$(/sbin/ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ { print $NF; exit }')
    [ -n "$path" ] || { echo "device_scaling: $so not installed here (make deps)" >&2; exit 1; }
    cp -L "$path" "build/peers/$so"
  done
  versions=""
  for pkg in libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0; do
    versions="$versions $pkg $(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo '?'),"
  done
  echo "${versions%,}" | sed 's/^ //' > build/peers/VERSIONS
  # The lent machine's copy of the tree can carry a stale HEAD: say here
  # which commit build/ was made from.
  c=$(git rev-parse --short HEAD)
  [ -z "$(git status --porcelain --untracked-files=no)" ] || c="$c+dirty"
  echo "$c" > build/peers/COMMIT
  ls -l build/peers
  exit 0
fi

OUTDIR=${1:-bench/results}
missing=0
for so in $PEERS; do /sbin/ldconfig -p | grep -q "^[[:space:]]*$so " || missing=1; done
if [ "$missing" = 1 ] && [ -d build/peers ]; then
  cp build/peers/*.so* /usr/local/lib/ && /sbin/ldconfig
fi
for so in $PEERS; do ldd "/usr/local/lib/$so" 2>/dev/null | grep "not found" || true; done

versions=$(cat build/peers/VERSIONS 2>/dev/null || echo "unknown versions")
[ -f build/peers/COMMIT ] && TSR_BENCH_COMMIT=$(cat build/peers/COMMIT) && export TSR_BENCH_COMMIT
python3 bench/run.py --groups micro,alloc --no-fastpath \
  --threads "${THREADS:-1,2,4,8,16}" --rounds "${ROUNDS:-3}" --scale "${SCALE:-0.4}" \
  --only "${ONLY:-^(?!micro-calloc|micro-realloc)}" \
  --suffix="-$(nproc)cores" --out "$OUTDIR" \
  --note "Run on a lent $(nproc)-core machine through the device tool, by bench/device_scaling.sh (no network there: the peers are the Debian 12 packages of the preparing machine, copied in: $versions; glibc is the lent machine's own). Workloads at scale ${SCALE:-0.4} of the usual length so that five allocators, five thread counts and three rounds fit the machine's time."
