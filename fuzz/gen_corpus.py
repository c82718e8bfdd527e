#!/usr/bin/env python3
"""gen_corpus.py -- write the seed corpus of fuzz/fuzz_api.c: one small
input per operation and per range of sizes and alignments, plus a few mixed
programs, so the fuzzer starts from inputs that reach every entry point.

The encoding below mirrors fuzz_api.c's decoder (op byte, then its
arguments); if the decoder changes, the seeds stay valid inputs but may
mean other calls: regenerate them (`make fuzz-corpus`).
Usage: gen_corpus.py DIR   (replaces DIR's *.bin files)
"""
import os
import random
import struct
import sys

(MALLOC, CALLOC, REALLOC, REALLOCARRAY, FREE, FREE_SIZED, POSIX_MEMALIGN,
 ALIGNED_ALLOC, REALLOC_CHAIN, FREE_MANY, USABLE, GOOD_SIZE, TRIM, CHECK_HEAP,
 REMOTE_FREE, REMOTE_ALLOC, WORKER_EXIT, FAULT) = range(18)

KIB, MIB = 1024, 1024 * 1024


def u16(v):
    return struct.pack('<H', v & 0xffff)


def u32(v):
    return struct.pack('<I', v & 0xffffffff)


# ---- sizes (in_size) ----
def tiny(n):            # 0..255
    return bytes([0, n])


def small(n):           # 0..4096
    return bytes([4]) + u16(n)


def klass(n):           # 0..128 KiB
    return bytes([7]) + u32(n)


def edge(i):            # index into edge_sizes
    return bytes([8, i])


def large(n):           # 128 KiB .. 1 MiB
    return bytes([9]) + u32(n - 128 * KIB)


def huge(n):            # 1 MiB .. 9 MiB
    return bytes([10]) + u32(n - MIB)


def pow2(k, delta=0):   # 2^k + delta, delta in -1..1
    return bytes([11, k + 24 * (delta + 1)])


def impossible(i, minus=None):   # impossible_sizes[i] (10 of them), optionally minus a u16
    if minus is None:
        return bytes([12, i])
    return bytes([12, 130 + i]) + u16(minus)


def any_size(n):
    if n <= 255:
        return tiny(n)
    if n <= 4096:
        return small(n)
    if n <= 128 * KIB:
        return klass(n)
    if n <= MIB:
        return large(n)
    return huge(n)


# ---- alignments (in_align) ----
def align(k):           # 2^k, k <= 20
    return bytes([0, k])


def align_big(k):       # 2^(21+k), k < 6
    return bytes([5, k])


def align_invalid(i):
    return bytes([6, i])


def align_absurd(k):    # 2^(41+k)
    return bytes([7, k])


# ---- count and size (in_count_size) ----
def cs_plain(count, size):
    return bytes([0, count]) + size


def cs_overflow(k, b=1, c=1):
    return bytes([1 + 4 * k, b]) + u16(c)


def cs_size_count(size, b):
    return bytes([2]) + size + bytes([b])


def cs_zero(count, big=False, x=0):
    return bytes([3, count, 1 if big else 0]) + (bytes([x]) if big else b'')


# ---- operations ----
def malloc(size):
    return bytes([MALLOC]) + size


def calloc(cs):
    return bytes([CALLOC]) + cs


def realloc(i, size):
    return bytes([REALLOC, 2]) + u16(i) + size


def realloc_null(size):
    return bytes([REALLOC, 0]) + size


def realloc_zero(i):
    return bytes([REALLOC, 1]) + u16(i)


def reallocarray(i, cs):
    return bytes([REALLOCARRAY]) + u16(i) + cs


def free(i=0):
    return bytes([FREE]) + u16(i)


def free_sized(i=0):
    return bytes([FREE_SIZED]) + u16(i)


def posix_memalign(a, size):
    return bytes([POSIX_MEMALIGN]) + a + size


def aligned_alloc(a, size):
    return bytes([ALIGNED_ALLOC]) + a + size


def realloc_chain(i, sizes):
    return bytes([REALLOC_CHAIN]) + u16(i) + bytes([len(sizes)]) + b''.join(sizes)


def free_many(step, top=False, sized=False):
    return bytes([FREE_MANY, (step - 1) | (0x80 if top else 0) | (0x40 if sized else 0)])


def usable(i=0):
    return bytes([USABLE]) + u16(i)


def good_size(size):
    return bytes([GOOD_SIZE]) + size


def trim():
    return bytes([TRIM])


def check_heap():
    return bytes([CHECK_HEAP])


def remote_free(picks):
    return bytes([REMOTE_FREE, len(picks) - 1]) + b''.join(u16(i) for i in picks)


def remote_alloc(n, size):
    return bytes([REMOTE_ALLOC, n - 1]) + size


def worker_exit():
    return bytes([WORKER_EXIT])


def fault(n, op):
    return bytes([FAULT, n]) + op


def seeds():
    s = {}
    s['malloc-tiny'] = b''.join(malloc(tiny(n)) for n in (0, 1, 8, 15, 16, 17, 100, 255)) + free(3) + free(0)
    s['malloc-small'] = b''.join(malloc(small(n)) for n in (256, 257, 512, 1000, 1024, 1025, 3000, 4096))
    s['malloc-class'] = b''.join(malloc(klass(n)) for n in (5000, 8192, 16 * KIB + 1, 65536, 100000, 128 * KIB))
    s['malloc-edges'] = b''.join(malloc(edge(i)) for i in range(30))
    s['malloc-large'] = b''.join(malloc(large(n)) for n in (128 * KIB + 1, 200000, 512 * KIB, MIB)) + free(1)
    s['malloc-huge'] = b''.join(malloc(huge(n)) for n in (MIB + 1, 2 * MIB, 5 * MIB + 123)) + free(0)
    s['malloc-pow2'] = b''.join(malloc(pow2(k, d)) for k in (4, 10, 16, 17, 20, 21) for d in (-1, 0, 1))
    s['malloc-impossible'] = b''.join(malloc(impossible(i)) for i in range(10)) + malloc(impossible(0, 4096))
    s['calloc'] = (calloc(cs_plain(10, tiny(10))) + calloc(cs_plain(3, klass(50000))) +
                   calloc(cs_size_count(large(300000), 3)) + calloc(cs_plain(1, huge(3 * MIB))))
    s['calloc-overflow'] = (calloc(cs_overflow(0)) + calloc(cs_overflow(31, 255, 65535)) +
                            calloc(cs_zero(0)) + calloc(cs_zero(3, True, 0)) + calloc(cs_zero(1, True, 7)))
    s['calloc-reuse'] = (malloc(small(1000)) + free(0) + calloc(cs_plain(1, small(1000))) +
                         malloc(large(400000)) + free(1) + calloc(cs_plain(1, large(400000))))
    s['realloc-grow'] = malloc(tiny(10)) + b''.join(realloc(0, any_size(n)) for n in
                                                   (20, 100, 1000, 5000, 20000, 200000, 900000, 2 * MIB, 6 * MIB))
    s['realloc-shrink'] = malloc(huge(4 * MIB)) + b''.join(realloc(0, any_size(n)) for n in
                                                          (3 * MIB, 800000, 130000, 70000, 1000, 10, 0))
    s['realloc-null-zero'] = realloc_null(small(300)) + realloc_zero(0) + realloc_null(tiny(0)) + realloc(0, tiny(0))
    s['realloc-impossible'] = malloc(small(500)) + realloc(0, impossible(0)) + realloc(0, impossible(5)) + usable(0)
    s['reallocarray'] = (malloc(tiny(40)) + reallocarray(0, cs_plain(10, tiny(40))) +
                         reallocarray(0, cs_overflow(3)) + reallocarray(0, cs_zero(0)) +
                         reallocarray(5, cs_plain(2, small(2000))))
    s['realloc-chain'] = (malloc(tiny(1)) + malloc(tiny(1)) +
                          realloc_chain(0, [any_size(n) for n in (16, 64, 4000, 70000, 140000, 1500000, 100, 0)]))
    s['realloc-inplace-large'] = (malloc(large(140000)) + realloc(0, large(500000)) + realloc(0, large(1000000)) +
                                  realloc(0, large(200000)) + realloc(0, huge(3 * MIB)) + realloc(0, huge(8 * MIB)))
    s['free-sized'] = (malloc(tiny(24)) + calloc(cs_plain(4, tiny(9))) + posix_memalign(align(6), small(300)) +
                       aligned_alloc(align(12), small(4096)) + free_sized(3) + free_sized(2) + free_sized(1) +
                       free_sized(0))
    s['posix-memalign'] = b''.join(posix_memalign(align(k), any_size(n)) for k, n in
                                   ((3, 1), (4, 0), (5, 100), (7, 1000), (12, 5000), (16, 70000), (17, 100),
                                    (17, 0), (18, 300000), (20, 2 * MIB)))
    s['posix-memalign-invalid'] = (b''.join(posix_memalign(align_invalid(i), tiny(16)) for i in range(12)) +
                                   posix_memalign(align(0), tiny(8)) + posix_memalign(align(2), tiny(8)) +
                                   posix_memalign(align_absurd(0), tiny(8)) + posix_memalign(align(4), impossible(2)))
    s['aligned-alloc'] = b''.join(aligned_alloc(align(k), any_size(n)) for k, n in
                                  ((0, 5), (1, 5), (4, 48), (6, 64), (9, 512), (13, 9000), (15, 40000),
                                   (16, 65536), (19, 600000), (20, 3 * MIB)))
    s['aligned-alloc-big'] = b''.join(aligned_alloc(align_big(k), tiny(100)) for k in range(6)) + free(1)
    # Regression: a 0-byte block with a large or huge alignment (0 slices;
    # a huge block pointing past its own mapping).
    s['aligned-zero'] = (b''.join(aligned_alloc(align(k), tiny(0)) for k in range(15, 21)) +
                         b''.join(posix_memalign(align_big(k), tiny(0)) for k in range(6)) +
                         b''.join(usable(i) for i in range(12)) + free_many(2) + check_heap())
    s['aligned-alloc-invalid'] = (b''.join(aligned_alloc(align_invalid(i), tiny(32)) for i in range(12)) +
                                  b''.join(aligned_alloc(align_absurd(k), tiny(32)) for k in (0, 10, 22)) +
                                  aligned_alloc(align(8), impossible(1)))
    s['free-many'] = (b''.join(malloc(tiny(n)) for n in range(1, 40)) + free_many(3) + free_many(2, top=True) +
                      free_many(1, sized=True))
    s['usable-good-size'] = (malloc(small(777)) + usable(0) + usable(0) + good_size(tiny(0)) +
                             good_size(klass(100000)) + good_size(large(300001)) + good_size(huge(2 * MIB + 1)) +
                             good_size(impossible(0)))
    s['trim-check'] = (malloc(huge(2 * MIB)) + malloc(large(600000)) + malloc(small(100)) + free(0) + trim() +
                       check_heap() + free(0) + trim() + check_heap())
    s['remote-free'] = (b''.join(malloc(tiny(32)) for _ in range(20)) + malloc(large(200000)) +
                        remote_free(list(range(10))) + malloc(tiny(32)) + remote_free([0, 0]))
    s['remote-alloc'] = remote_alloc(30, tiny(48)) + free_many(2) + remote_alloc(2, large(300000)) + free(0)
    s['worker-exit'] = (remote_alloc(20, tiny(64)) + worker_exit() + free_many(3) + malloc(tiny(64)) +
                        remote_alloc(5, small(2000)) + worker_exit() + free_many(1))
    s['fault'] = (malloc(tiny(10)) + fault(0, malloc(huge(2 * MIB))) + fault(0, malloc(large(300000))) +
                  fault(1, malloc(klass(70000))) + fault(0, realloc(0, huge(3 * MIB))) +
                  fault(0, posix_memalign(align(20), tiny(10))) + fault(2, calloc(cs_plain(5, klass(20000)))) +
                  fault(0, free(0)) + fault(0, trim()))
    rng = random.Random(6)
    ops = [malloc(tiny(17)), malloc(small(700)), malloc(klass(30000)), malloc(large(250000)), free(1), free(3),
           realloc(1, small(2000)), realloc(2, tiny(5)), calloc(cs_plain(7, tiny(13))), free_sized(2),
           posix_memalign(align(6), small(100)), aligned_alloc(align(14), tiny(1)), usable(4), check_heap()]
    for k in range(4):
        s['mixed-%d' % k] = b''.join(rng.choice(ops) for _ in range(60))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith('.bin'):
            os.remove(os.path.join(out, name))
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name + '.bin'), 'wb') as f:
            f.write(data)
    print('gen_corpus: %d seeds in %s' % (len(seeds()), out))


if __name__ == '__main__':
    main()
