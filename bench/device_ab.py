#!/usr/bin/env python3
"""device_ab.py -- interleaved A/B runs of tessera variants against the peers
on the threaded workloads, for a lent many-core machine's few minutes
(docs/benchmarks.md, "16 cores"). make bench compares one tessera with the
peers; this compares several builds of tessera (or one build under several
TESSERA_* settings) with them, in one interleaved run. Workloads, peers and
measurement are bench/run.py's.

Usage (after `make all bench-bins && sh bench/device_scaling.sh --bundle`):
  python3 bench/device_ab.py [-r ROUNDS] [-t 4,8,16] [-s SCALE] [-w prodcons,larson]
                             NAME=LIB.so[:VAR=VALUE,...] ...
Each line printed: workload/threads, then per variant the median wall time
(s), its ratio to the best of jemalloc, tcmalloc and mimalloc on that line,
the median user+sys CPU time (s) and the median peak RSS (MiB). A peer is
looked up with ldconfig, else in build/peers (the bundle, not installed).
"""
import argparse, copy, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py)

TIMEOUT_S = 120


def peer(name):
    soname = run.PEER_LIBS[name][0]
    path = run.ldconfig_path(soname) or os.path.join(run.ROOT, "build", "peers", soname)
    if not os.path.exists(path):
        sys.exit("device_ab: %s not found (make deps, or device_scaling.sh --bundle)" % soname)
    return {"name": name, "preload": path, "env": {}}


def variant(spec):
    name, _, rest = spec.partition("=")
    lib, _, envs = rest.partition(":")
    if not name or not lib or not os.path.exists(lib):
        sys.exit("device_ab: bad variant %r (NAME=LIB.so[:VAR=VALUE,...], the library must exist)" % spec)
    return {"name": name, "preload": os.path.abspath(lib), "env": dict(kv.split("=", 1) for kv in envs.split(",") if kv)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-t", "--threads", default="4,8,16")
    ap.add_argument("-s", "--scale", type=float, default=0.3)
    ap.add_argument("-w", "--workloads", default="prodcons,pool-shared,larson,churn,micro-batch")
    ap.add_argument("variants", nargs="+")
    a = ap.parse_args()
    peers = [peer(n) for n in ("jemalloc", "tcmalloc", "mimalloc")]
    allocs = [variant(v) for v in a.variants] + peers
    wanted = a.workloads.split(",")
    threads = [int(t) for t in a.threads.split(",")]
    workloads = [w for w in run.c_workloads(threads, a.scale, os.cpu_count()) if w.name in wanted]
    for w in sorted(workloads, key=lambda w: (w.threads, wanted.index(w.name))):
        rs = {x["name"]: [] for x in allocs}
        for r in range(a.rounds):
            for x in allocs[r % len(allocs):] + allocs[:r % len(allocs)]:
                wx = copy.copy(w)
                wx.env = dict(w.env, **x["env"])
                res = run.run_once(wx, x, TIMEOUT_S)
                if res["status"] != "ok":
                    print("FAIL %s %s: %s" % (w.label, x["name"], res["status"]), flush=True)
                rs[x["name"]].append(res)
        best = min(run.med(rs[p["name"]], "wall") or float("inf") for p in peers)
        cells = []
        for x in allocs:
            wall, cpu, rss = (run.med(rs[x["name"]], k) for k in ("wall", "cpu", "rss_kb"))
            cells.append("%s %s (%s) cpu %s rss %s" % (x["name"], run.fmt(wall, 3), run.fmt(wall and wall / best),
                                                        run.fmt(cpu), run.fmt(rss and rss / 1024, 0)))
        print("%s: %s" % (w.label, "  ".join(cells)), flush=True)


if __name__ == "__main__":
    main()
