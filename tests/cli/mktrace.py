#!/usr/bin/env python3
"""mktrace.py OUT SPEC -- write a small binary trace (format: tools/trace_bin.h,
version 3) for the CLI tests, encoded independently of the recorder.
SPEC: records separated by ';', each 'THREAD TSC OP ARGS...' with OP one of
malloc SIZE RESULT | calloc COUNT SIZE RESULT | free PTR |
realloc PTR SIZE RESULT | memalign LOG2 SIZE RESULT, and TSC either a number
(clock samples right before and after the call pin it there) or '-' (no
sample: the reader dates the call by the sample before it). Fields equal to the thread's previous size or address are
written as flags or code 0, as the recorder does; malloc and free take the
compact form (encode(..., general_every=K) writes every K-th in the general
form instead, which the reader must accept too). Records of one thread go into one
chunk, chunks in thread order, so a test can put a free's time stamp before
the malloc it depends on (clock skew between cores) and check the merge.
A thread's chunk is stamped 1e9 (the same clock as the header's 0: 1 tick = 1 ns)."""
import struct, sys

VERSION = 3
OPS = {"malloc": 1, "calloc": 2, "realloc": 3, "free": 5, "memalign": 8}
F_SAME_SIZE, F_SAME_ADDR, TIME = 0x20, 0x40, 0x1f
C_FREE = 0x02

def general(op):
    """First byte of a record in the general form: 1 | op << 1."""
    return 1 | OPS[op] << 1

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

def addr_code(a, prev):
    """An address as stored: (a XOR the previous address) rotated right by 4."""
    x = (a ^ prev) % (1 << 64)
    return (x >> 4) | ((x & 15) << 60)

def compact(v):
    """(code, bytes) of a compact field: 1-6 bytes as needed, else code 7 and 8 bytes."""
    n = max(1, (v.bit_length() + 7) // 8)
    return (7, v.to_bytes(8, "little")) if n > 6 else (n, v.to_bytes(n, "little"))

def encode(recs, general_every=0):
    st = {"tsc": 0, "addr": 0, "size": 0}
    out = bytearray()
    count = 0
    for tsc, op, a in recs:
        flags, body = 0, bytearray()
        count += 1
        if op in ("malloc", "free") and not (general_every and count % general_every == 0):
            first = C_FREE if op == "free" else 0
            if op == "malloc" and a[0] != st["size"]:
                code, b = compact(a[0])
                first |= code << 2
                body += b
                st["size"] = a[0]
            x = a[0] if op == "free" else a[1]
            if x != st["addr"]:
                code, b = compact(addr_code(x, st["addr"]))
                first |= code << 5
                body += b
                st["addr"] = x
            out += pin(st, tsc) + bytes([first]) + body + (bytes([TIME]) + varint(0) if tsc is not None else b"")
            continue
        def addr(x, first):
            nonlocal flags
            if first and x == st["addr"]:
                flags |= F_SAME_ADDR
                return
            body.extend(varint(addr_code(x, st["addr"])))
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
        out += pin(st, tsc) + bytes([general(op) | flags]) + body
        if tsc is not None:
            out += bytes([TIME]) + varint(0)
    return out

def pin(st, tsc):
    """A clock sample right before a call (tsc None: none)."""
    if tsc is None:
        return b""
    b = bytes([TIME]) + varint(zz(tsc - st["tsc"]))
    st["tsc"] = tsc
    return b

def header(name):
    return b"TSRTRACE" + struct.pack("<IIQQQII16s", VERSION, 64, 0, 0, 0, 1, 0, name)

if __name__ == "__main__":
    out, spec = sys.argv[1], sys.argv[2]
    threads = {}
    for rec in filter(None, (r.strip() for r in spec.split(";"))):
        f = rec.split()
        tsc = None if f[1] == "-" else int(f[1])
        threads.setdefault(int(f[0]), []).append((tsc, f[2], [int(x, 0) for x in f[3:]]))
    data = bytearray(header(b"mktrace"))
    for t, recs in sorted(threads.items()):
        payload = encode(recs)
        data += struct.pack("<IIIIQQ", 0x43525354, t, len(payload), len(recs), 10**9, 10**9) + payload
    data += struct.pack("<IIIIQQ", 0x45525354, len(threads), 0, 0, 10**9, 10**9)
    open(out, "wb").write(data)
