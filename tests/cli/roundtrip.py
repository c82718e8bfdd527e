#!/usr/bin/env python3
"""roundtrip.py OUT.bin EXPECTED.rep [THREADS [EVENTS [SEED]]] -- a format
round trip for `tessera convert`: a random, valid history of many threads
(blocks handed across threads, reused addresses, repeated sizes, sizes and
addresses that need the 9-byte varint or 8-byte compact field, addresses
that are not multiples of 16, malloc and free in both forms), encoded by mktrace.py (independent of
the recorder, with version 4's padding chunks between them), and the .rep it
must convert to. Every call is pinned by clock
samples at a distinct time, so the merged order is the history's order; some
calls are left unpinned (inside a burst of one thread's calls between two pins
of that thread), to check that a thread's order survives the dating.
"""
import random, struct, sys
sys.path.insert(0, __import__("os").path.dirname(__file__))
import mktrace

out, expected = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 16
events = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 1)

HUGE = 1 << 40            # a 6-byte varint (addresses near 2^64 take the 9-byte one)
free_addrs = [0x10000 + 16 * i for i in range(512)] + [0xfff0_0000_0000_0010 + 16 * i for i in range(8)]
free_addrs += [0x30008 + 16 * i for i in range(8)] + [0x40003 + 32 * i for i in range(4)]  # not 16-aligned
live = {}                 # address -> (id, size)
next_id = 0
rep = []
per_thread = {t: [] for t in range(1, threads + 1)}
tsc = 1000000
last_size = {}
def one_call(t, pinned):
    """Append a random valid call of thread t to the history."""
    global next_id
    c = tsc if pinned else None
    if live and (rng.random() < 0.45 or not free_addrs):
        a = rng.choice(sorted(live))          # any thread may free any block
        bid, size = live.pop(a)
        if rng.random() < 0.2:
            n = rng.choice([size, size + 1, HUGE])
            b = a if rng.random() < 0.5 or not free_addrs else free_addrs.pop(rng.randrange(len(free_addrs)))
            if b != a:
                free_addrs.append(a)
            live[b] = (bid, n)
            per_thread[t].append((c, "realloc", [a, n, b]))
            rep.append("r %d %d" % (bid, n))
        else:
            free_addrs.append(a)
            per_thread[t].append((c, "free", [a]))
            rep.append("f %d" % bid)
        return
    a = free_addrs.pop(rng.randrange(len(free_addrs)))
    n = last_size[t] if t in last_size and rng.random() < 0.3 else rng.choice([1, 24, 100, 4000, 70000, HUGE])
    last_size[t] = n
    live[a] = (next_id, n)
    kind = rng.random()
    if kind < 0.1:
        per_thread[t].append((c, "calloc", [1, n, a]))
    elif kind < 0.2:
        per_thread[t].append((c, "memalign", [6, n, a]))
    else:
        per_thread[t].append((c, "malloc", [n, a]))
    rep.append("a %d %d" % (next_id, n))
    next_id += 1

# Bursts of one thread: its first and last calls pinned, the ones between
# not (the reader places them between those two samples, and no other
# thread's call lies there).
while len(rep) < events:
    t = rng.randint(1, threads)
    burst = rng.randint(1, 6)
    for k in range(burst):
        tsc += rng.randint(10000, 60000)  # ns apart: more than the readers round slack to (us)
        one_call(t, k == 0 or k == burst - 1)

# The .rep header: peak live payload is not checked here (first line), ids, requests, weight.
with open(expected, "w") as f:
    f.write("%d\n%d\n1\n" % (next_id, len(rep)))
    f.write("\n".join(rep) + "\n")

# Version 4 (mktrace.py writes 3, which other tests read): a padding chunk
# (TSRP) after each thread's chunk, of junk bytes the readers must skip.
data = bytearray(mktrace.header(b"roundtrip"))
data[8:12] = struct.pack("<I", 4)
for t, recs in sorted(per_thread.items()):
    if not recs:
        continue
    payload = mktrace.encode(recs, general_every=5)
    data += struct.pack("<IIIIQQ", 0x43525354, t, len(payload), len(recs), tsc + 1, tsc + 1) + payload
    pad = rng.choice([0, 1, 17, 4095])
    data += struct.pack("<IIIIQQ", 0x50525354, 0, pad, 0, 0, 0) + bytes([0xa5]) * pad
data += struct.pack("<IIIIQQ", 0x45525354, threads, 0, 0, tsc + 1, tsc + 1)
open(out, "wb").write(data)
