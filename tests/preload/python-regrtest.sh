#!/bin/sh
# python-regrtest.sh -- a few CPython regression tests (libpython3.11-testsuite)
# under tessera. Timings vary, so only the verdict is compared.
. "$(dirname "$0")/lib.sh"
if ! python3 -c 'import test.test_dict' 2>/dev/null; then
    echo "python-regrtest: libpython3.11-testsuite not installed; skipped (scripts/deps.sh installs it)"
    exit 0
fi
export PYTHONDONTWRITEBYTECODE=1
TESTS="test_dict test_list test_set test_string test_bytes test_unicode test_deque"
cd "$W"
plain rt python3 -m test -q $TESTS
tsr rt python3 -m test -q $TESTS
grep -q "Tests result: SUCCESS" "$W/rt.plain" || fail "regrtest without tessera: $(tail -3 "$W/rt.plain")"
grep -q "Tests result: SUCCESS" "$W/rt.tsr" || fail "regrtest under tessera: $(tail -20 "$W/rt.tsr")"
reached rt 10000
say "python-regrtest: $TESTS: SUCCESS in both runs"
