#!/bin/sh
# deps.sh -- install the Debian 12 packages that the tests, benchmarks and the
# demo need. Idempotent and quick when everything is present: dpkg -s decides
# what is missing, and `apt-get update` runs at most once, only then.
# `--check` only reports (exit 1 if something is missing), for `make test`.
# libpython3.11-testsuite is optional: the CPython regression tests are
# skipped (with a message) where the package does not exist.
set -eu

REQUIRED="build-essential g++ valgrind python3 sqlite3 perl git redis-server
redis-tools libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 time chromium
binutils clang libclang-rt-dev"
OPTIONAL="libpython3.11-testsuite"

missing() {
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || printf '%s\n' "$p"
    done
}

need=$(missing $REQUIRED)
want=$(missing $OPTIONAL)

if [ "${1:-}" = "--check" ]; then
    # An optional package counts as missing only if apt knows it, so a
    # release without it does not make every `make test` run apt-get.
    known=
    for p in $want; do
        apt-cache show "$p" >/dev/null 2>&1 && known="$known $p"
    done
    [ -z "$need" ] && [ -z "$known" ] && exit 0
    echo "deps: missing: $(echo $need $known)"
    exit 1
fi

if [ -z "$need" ] && [ -z "$want" ]; then
    echo "deps: all packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
echo "deps: installing: $(echo $need $want)"
$SUDO apt-get update -q
if [ -n "$need" ]; then
    $SUDO apt-get install -y -q --no-install-recommends $need
fi
for p in $want; do
    # Optional: the package may not exist on this release or architecture.
    if apt-cache show "$p" >/dev/null 2>&1; then
        $SUDO apt-get install -y -q --no-install-recommends "$p" ||
            echo "deps: optional package $p failed to install; its tests will be skipped"
    else
        echo "deps: optional package $p is not available; its tests will be skipped"
    fi
done
still=$(missing $REQUIRED)
if [ -n "$still" ]; then
    echo "deps: still missing: $(echo $still)" >&2
    exit 1
fi
echo "deps: done"
