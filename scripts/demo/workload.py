# workload.py -- the demo's object-heavy python3 workload (about 3 s).
#
# Builds a few million short-lived and long-lived objects the way real
# programs do: a dict-of-records "database", string building and parsing,
# and a tree that is rebuilt in generations; prints a checksum so that runs
# under different allocators can be compared. Usage: workload.py [SCALE].
import sys
import zlib

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = int(200000 * scale)
crc = 0

# A table of records keyed by string, updated and partly deleted.
table = {}
for i in range(n):
    table["user:%07d" % i] = {"id": i, "name": "name-%d" % (i * 7 % 10007),
                              "tags": ["t%d" % (i % 13), "t%d" % (i % 7)], "score": i % 1000 / 10.0}
for i in range(0, n, 2):
    rec = table["user:%07d" % i]
    rec["tags"].append("even")
    rec["name"] = rec["name"].upper()
for i in range(0, n, 5):
    del table["user:%07d" % i]
crc = zlib.crc32(repr(sorted(table)[:: max(1, n // 1000)]).encode(), crc)

# Strings: build a CSV document, split and parse it back.
lines = ["%d,%s,%.1f,%s" % (r["id"], r["name"], r["score"], "|".join(r["tags"])) for r in table.values()]
doc = "\n".join(lines)
parsed = [line.split(",") for line in doc.split("\n")]
totals = {}
for f in parsed:
    for t in f[3].split("|"):
        totals[t] = totals.get(t, 0) + 1
crc = zlib.crc32(repr(sorted(totals.items())).encode(), crc)
del lines, doc, parsed

# Trees rebuilt in generations: many small objects, most die young.
class Node:
    __slots__ = ("key", "left", "right")
    def __init__(self, key):
        self.key = key
        self.left = self.right = None

def insert(root, key):
    node = root
    while True:
        if key < node.key:
            if node.left is None:
                node.left = Node(key)
                return
            node = node.left
        else:
            if node.right is None:
                node.right = Node(key)
                return
            node = node.right

for gen in range(3):
    root = Node(n // 2)
    for i in range(n // 2):
        insert(root, (i * 2654435761 + gen) % n)
    depth, stack, count = 0, [(root, 1)], 0
    while stack:
        node, d = stack.pop()
        count += 1
        depth = max(depth, d)
        if node.left:
            stack.append((node.left, d + 1))
        if node.right:
            stack.append((node.right, d + 1))
    crc = zlib.crc32(b"%d %d" % (count, depth), crc)

print("workload: %d records left, %d tags, checksum %08x" % (len(table), len(totals), crc))
