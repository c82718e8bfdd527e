#!/bin/sh
# hardening.sh BIN LIB -- the protections of issue 6 point 5, as a program
# sees them (see hardening.c): random block order and zeroing only under
# TESSERA_SECURE=1, the guard page after every segment in both modes, and
# the secure mode passing the API contract test.
bin=$1 lib=$2 contract=$3
fail() { echo "hardening: $*"; exit 1; }
out=$(LD_PRELOAD=$lib "$bin" order) || fail "order run failed"
[ "$out" = "adjacent 63/63" ] || fail "default mode: expected blocks in address order, got '$out'"
out=$(TESSERA_SECURE=1 LD_PRELOAD=$lib "$bin" order) || fail "secure order run failed"
n=${out#adjacent }; n=${n%/63}
[ "$n" -lt 16 ] || fail "TESSERA_SECURE=1: blocks still mostly in address order ('$out')"
out=$(TESSERA_SECURE=1 LD_PRELOAD=$lib "$bin" zero) || fail "secure zero run failed"
[ "$out" = "nonzero 0" ] || fail "TESSERA_SECURE=1: a freed block kept its contents ('$out')"
LD_PRELOAD=$lib "$bin" guard || fail "default mode: no guard page after a segment"
TESSERA_SECURE=1 LD_PRELOAD=$lib "$bin" guard || fail "secure mode: no guard page after a segment"
TESSERA_SECURE=1 LD_PRELOAD=$lib "$contract" >/dev/null || fail "TESSERA_SECURE=1: the API contract test failed"
echo "hardening: default order 63/63 adjacent, secure $n/63, secure frees zeroed, segment guard pages fault, secure mode passes the contract test"
