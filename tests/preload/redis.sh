#!/bin/sh
# redis.sh -- redis-server on 127.0.0.1 (a free port) with redis-benchmark
# and redis-cli commands whose replies must match.
#
# Debian's redis-server links libjemalloc.so.2 and calls it by the standard
# names (malloc, calloc, realloc, free, malloc_usable_size) plus mallctl,
# nallocx and malloc_stats_print. Under LD_PRELOAD the standard names bind
# to tessera, which comes first in the lookup order, so redis's data does
# live in tessera; jemalloc stays loaded and answers mallctl (the INFO
# allocator_* fields then describe jemalloc's nearly empty heap). The test
# checks exactly that: tessera counts the mallocs, and redis's own
# used_memory (from malloc_usable_size) far exceeds jemalloc's
# allocator_allocated; in the baseline run (jemalloc) the two agree.
# Active defragmentation needs jemalloc's internals and stays off.
. "$(dirname "$0")/lib.sh"
nm -D /usr/bin/redis-server | grep -q ' U malloc$' || fail "redis-server does not import malloc by name; this test's premise is wrong"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cli_script() {
    p=$1
    redis-cli -p "$p" flushall
    for i in $(seq 1 50); do echo "SET key$i value$i"; echo "RPUSH list $i"; echo "HSET hash f$i $((i * i))"; echo "SADD set m$((i % 17))"; done |
        redis-cli -p "$p" >/dev/null
    redis-cli -p "$p" mget key1 key25 key50 nokey
    redis-cli -p "$p" lrange list 0 9
    redis-cli -p "$p" hget hash f7
    redis-cli -p "$p" hlen hash
    redis-cli -p "$p" scard set
    redis-cli -p "$p" incrby counter 41
    redis-cli -p "$p" append key1 -suffix
    redis-cli -p "$p" get key1
    redis-cli -p "$p" eval "local t = {} for i = 1, 10000 do t[i] = tostring(i) end return #table.concat(t, ',')" 0
    redis-cli -p "$p" set big "$(head -c 100000 /dev/zero | tr '\0' x)" >/dev/null
    redis-cli -p "$p" strlen big
    redis-cli -p "$p" sort list desc limit 0 5
    redis-benchmark -p "$p" -q -n 20000 -t set,get,incr,lpush,rpush,lpop,sadd,hset,lrange_100,mset >"$W/bench.$p" 2>&1 ||
        echo "redis-benchmark failed"
    grep -c "requests per second" "$W/bench.$p"
    redis-cli -p "$p" dbsize
    redis-cli -p "$p" keys '*' | sort
    redis-cli -p "$p" info memory | grep -E '^(used_memory|allocator_allocated):' | tr -d '\r' >"$W/mem.$p"
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
}

# serve NAME WRAP: start redis-server (WRAP is plain or tsr), run the
# commands, wait for the server to exit (statistics are written at exit).
serve() {
    name=$1 wrap=$2 port=$(free_port)
    (cd "$W" && $wrap "$name" redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$W" --daemonize no --logfile "$W/$name.log") &
    spid=$!
    KILL_ON_EXIT="$KILL_ON_EXIT $spid"
    i=0
    until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do
        i=$((i + 1))
        [ $i -lt 100 ] || { kill $spid 2>/dev/null; fail "$name: redis-server did not start: $(tail -3 "$W/$name.log")"; }
        sleep 0.1
    done
    cli_script "$port" >"$W/$name.replies" 2>&1
    wait $spid || fail "$name: redis-server exited with $?: $(tail -3 "$W/$name.log")"
    sed "s/^/$name: /" "$W/mem.$port"
    used=$(sed -n 's/used_memory://p' "$W/mem.$port")
    jem=$(sed -n 's/allocator_allocated://p' "$W/mem.$port")
    eval "${name}_used=\$used ${name}_jem=\$jem"
}

serve plainrun plain
serve tsrrun tsr
if ! cmp -s "$W/plainrun.replies" "$W/tsrrun.replies"; then
    diff "$W/plainrun.replies" "$W/tsrrun.replies" | head -20 >&2
    fail "redis replies differ under tessera"
fi
grep -q "redis-benchmark failed" "$W/tsrrun.replies" && fail "redis-benchmark failed under tessera"
# Baseline: jemalloc holds redis's data.
[ "$plainrun_jem" -ge $((plainrun_used / 2)) ] ||
    fail "baseline: jemalloc allocated $plainrun_jem < half of used_memory $plainrun_used"
if [ -n "$TSR_LIB" ]; then
    reached tsrrun 10000
    [ "$tsrrun_jem" -lt $((tsrrun_used / 4)) ] ||
        fail "under tessera jemalloc still allocated $tsrrun_jem of used_memory $tsrrun_used: redis's allocations did not move to tessera"
    say "redis: allocations reached tessera (jemalloc holds $tsrrun_jem of $tsrrun_used bytes); replies identical"
else
    say "redis: replies identical (no TSR_LIB: both runs used jemalloc)"
fi
