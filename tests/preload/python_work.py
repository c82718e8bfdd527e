# python_work.py -- a deterministic dict/list/string-heavy workload for the
# preload test: its output (checksums of the structures built) must be the
# same under glibc and under tessera. Run with PYTHONHASHSEED=0.
import hashlib
import sys

scale = int(sys.argv[1]) if len(sys.argv) > 1 else 1
h = hashlib.sha256()

# Dicts of strings, grown, shrunk and rebuilt.
d = {}
for i in range(200000 * scale):
    d["key-%d-%s" % (i, "x" * (i % 17))] = [i, str(i * 7), (i, i + 1)]
for i in range(0, 200000 * scale, 3):
    del d["key-%d-%s" % (i, "x" * (i % 17))]
h.update(repr(sorted(d.items())[:1000]).encode())
h.update(str(len(d)).encode())

# Lists of lists, sorted, sliced, joined.
rows = [[(i * 2654435761) % 1000003, str(i)] for i in range(150000 * scale)]
rows.sort()
h.update("".join(r[1] for r in rows[::97]).encode())

# Strings: split, join, replace, formatting.
text = " ".join("word%d" % (i % 5000) for i in range(300000 * scale))
words = text.split()
counts = {}
for w in words:
    counts[w] = counts.get(w, 0) + 1
h.update(repr(sorted(counts.items())[:200]).encode())
h.update(text.replace("word1", "W").upper()[:100000].encode())

# Sets and small objects that die young.
class Node:
    __slots__ = ("v", "next")
    def __init__(self, v, nxt):
        self.v = v
        self.next = nxt
head = None
for i in range(200000 * scale):
    head = Node(i, head if i % 1000 else None)
s = set(range(0, 500000 * scale, 7)) ^ set(range(0, 500000 * scale, 11))
h.update(str(len(s)).encode())
h.update(str(sum(x for x in s if x % 13 == 0)).encode())

print("python_work:", scale, len(d), len(rows), len(counts), len(s), h.hexdigest())
