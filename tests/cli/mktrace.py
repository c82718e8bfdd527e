#!/usr/bin/env python3
"""mktrace.py OUT SPEC -- write a small binary trace (format: tools/trace_bin.h)
for the CLI tests. SPEC: records separated by ';', each
'THREAD TSC OP ARGS...' with OP one of malloc SIZE RESULT | free PTR |
realloc PTR SIZE RESULT. Records of one thread go into one chunk, chunks in
thread order, so a test can put a free's time stamp before the malloc it
depends on (clock skew between cores) and check the merge."""
import struct, sys

OPS = {"malloc": 1, "realloc": 3, "free": 5}

def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)

def zz(v):
    return (v << 1) ^ (v >> 63) if v >= 0 else ((-v) << 1) - 1

out, spec = sys.argv[1], sys.argv[2]
threads = {}
for rec in filter(None, (r.strip() for r in spec.split(";"))):
    f = rec.split()
    threads.setdefault(int(f[0]), []).append((int(f[1]), f[2], [int(x, 0) for x in f[3:]]))
data = bytearray(b"TSRTRACE" + struct.pack("<IIQQQII16s", 1, 64, 0, 0, 0, 1, 0, b"mktrace"))
for t, recs in sorted(threads.items()):
    payload, last_tsc, last_addr = bytearray(), 0, 0
    for tsc, op, a in recs:
        payload += bytes([OPS[op]]) + varint(zz(tsc - last_tsc))
        last_tsc = tsc
        def addr(x):
            global last_addr
            d = zz(x - last_addr)
            last_addr = x
            return varint(d)
        if op == "malloc":
            payload += varint(a[0]) + addr(a[1])
        elif op == "free":
            payload += addr(a[0])
        else:
            payload += addr(a[0]) + varint(a[1]) + addr(a[2])
    data += struct.pack("<IIIIQQ", 0x43525354, t, len(payload), len(recs), 10**9, 10**9) + payload
data += struct.pack("<IIIIQQ", 0x45525354, len(threads), 0, 0, 10**9, 10**9)
open(out, "wb").write(data)
