# objects.py -- an object-heavy Python program for the allocator benchmark.
#
# CPython serves objects up to 512 bytes from its own pymalloc arenas and asks
# malloc for the arenas, big containers, and strings over that size, so this
# script mixes all three: many small instances, dicts that keep resizing,
# long strings built and dropped, and lists sorted and sliced. It prints
# "CHECK <n>", a value of the computation only, so every allocator must agree.
# Usage: python3 objects.py [ROUNDS [NODES]]   (the runner scales both)
import sys


class Node:
    __slots__ = ("key", "name", "links", "attrs")

    def __init__(self, key):
        self.key = key
        self.name = "node-%d" % key
        self.links = []
        self.attrs = {"k": key, "sq": key * key % 1009, "tag": "t" * (key % 40)}


def one_round(seed, n):
    nodes = [Node((seed * 7919 + i * 104729) % 1000003) for i in range(n)]
    index = {nd.name: nd for nd in nodes}
    for i, nd in enumerate(nodes):
        for j in (1, 7, 31):
            nd.links.append(nodes[(i * j + seed) % n])
    total = 0
    for nd in nodes:
        total += sum(x.attrs["sq"] for x in nd.links)
        nd.attrs["blob"] = ",".join(str(x.key) for x in nd.links) * 3
    nodes.sort(key=lambda x: (x.attrs["sq"], x.key))
    text = "".join(nd.attrs["blob"] for nd in nodes[: n // 4])
    words = text.split(",")
    counts = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    total += len(counts) + sum(len(k) for k in index if k.endswith("7"))
    return total


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    nodes = int(sys.argv[2]) if len(sys.argv) > 2 else 40000
    check = 0
    for r in range(rounds):
        check = (check * 31 + one_round(r, nodes)) % (1 << 61)
    print("CHECK", check)


main()
