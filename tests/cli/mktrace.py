#!/usr/bin/env python3
"""mktrace.py OUT SPEC -- write a small binary trace (format: tools/trace_bin.h,
version 2) for the CLI tests, encoded independently of the recorder.
SPEC: records separated by ';', each 'THREAD TSC OP ARGS...' with OP one of
malloc SIZE RESULT | calloc COUNT SIZE RESULT | free PTR |
realloc PTR SIZE RESULT | memalign LOG2 SIZE RESULT, and TSC either a number
(clock samples right before and after the call pin it there) or '-' (no
sample: the reader dates the call by the sample before it). Fields equal to the thread's previous size or address are
written as flags, as the recorder does. Records of one thread go into one
chunk, chunks in thread order, so a test can put a free's time stamp before
the malloc it depends on (clock skew between cores) and check the merge.
A thread's chunk is stamped 1e9 (the same clock as the header's 0: 1 tick = 1 ns)."""
import struct, sys

OPS = {"malloc": 1, "calloc": 2, "realloc": 3, "free": 5, "memalign": 8}
F_SAME_SIZE, F_SAME_ADDR, TIME = 0x20, 0x40, 0x0f

def varint(v):
    """Prefix varint: n bytes hold 7n bits, the first byte's low bits 1 << (n-1)."""
    if v >= 1 << 56:
        return b"\0" + struct.pack("<Q", v)
    n = max(1, (v.bit_length() + 6) // 7)
    return ((v << n) | (1 << (n - 1))).to_bytes(n, "little")

def zz(v):
    """Zigzag of v taken as a 64-bit two's complement difference, as in C."""
    v = ((v + (1 << 63)) % (1 << 64)) - (1 << 63)
    return (v << 1) if v >= 0 else ((-v) << 1) - 1

def encode(recs):
    st = {"tsc": 0, "addr": 0, "size": 0}
    out = bytearray()
    for tsc, op, a in recs:
        flags, body = 0, bytearray()
        def addr(x, first):
            nonlocal flags
            if first and x == st["addr"]:
                flags |= F_SAME_ADDR
                return
            body.extend(varint(zz(x - st["addr"])))
            st["addr"] = x
        def size(x):
            nonlocal flags
            if x == st["size"]:
                flags |= F_SAME_SIZE
                return
            body.extend(varint(x))
            st["size"] = x
        if op == "malloc":
            size(a[0]); addr(a[1], True)
        elif op == "calloc":
            body.extend(varint(a[0])); size(a[1]); addr(a[2], True)
        elif op == "memalign":
            body.append(a[0]); size(a[1]); addr(a[2], True)
        elif op == "free":
            addr(a[0], True)
        else:
            addr(a[0], True); size(a[1]); addr(a[2], False)
        sample = b""
        if tsc is not None:
            out += bytes([TIME]) + varint(zz(tsc - st["tsc"]))
            st["tsc"] = tsc
            sample = bytes([TIME]) + varint(0)
        out += bytes([OPS[op] | flags]) + body + sample
    return out

if __name__ == "__main__":
    out, spec = sys.argv[1], sys.argv[2]
    threads = {}
    for rec in filter(None, (r.strip() for r in spec.split(";"))):
        f = rec.split()
        tsc = None if f[1] == "-" else int(f[1])
        threads.setdefault(int(f[0]), []).append((tsc, f[2], [int(x, 0) for x in f[3:]]))
    data = bytearray(b"TSRTRACE" + struct.pack("<IIQQQII16s", 2, 64, 0, 0, 0, 1, 0, b"mktrace"))
    for t, recs in sorted(threads.items()):
        payload = encode(recs)
        data += struct.pack("<IIIIQQ", 0x43525354, t, len(payload), len(recs), 10**9, 10**9) + payload
    data += struct.pack("<IIIIQQ", 0x45525354, len(threads), 0, 0, 10**9, 10**9)
    open(out, "wb").write(data)
