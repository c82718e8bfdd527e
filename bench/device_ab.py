#!/usr/bin/env python3
"""device_ab.py -- interleaved A/B runs of tessera variants against the peers
on the threaded workloads, for a lent many-core machine's few minutes
(docs/benchmarks.md, "16 cores"). make bench compares one tessera with the
peers; this compares several builds of tessera (or one build under several
TESSERA_* settings) with them, in one interleaved run.

Usage (after `make all bench-bins && sh bench/device_scaling.sh --bundle`):
  python3 bench/device_ab.py [-r ROUNDS] [-t 4,8,16] [-s SCALE] [-w prodcons,larson]
                             NAME=LIB.so[:VAR=VALUE,...] ...
Each line printed: workload/threads, then per variant the median wall time
(s), its ratio to the best of tcmalloc, mimalloc and jemalloc on that line,
the median user+sys CPU time (s) and the median peak RSS (MiB). The peers
are those of build/peers (or installed), found as device_scaling.sh does.
"""
import argparse, os, statistics, subprocess, sys, time

WORKLOADS = {"prodcons": ["build/bench/prodcons"], "pool-shared": ["build/bench/pool", "shared"],
             "pool-local": ["build/bench/pool", "local"], "larson": ["build/bench/larson"],
             "churn": ["build/bench/churn"], "micro-batch": ["build/bench/micro", "batch"],
             "micro-hot": ["build/bench/micro", "hot"], "cache-thrash": ["build/bench/cache", "thrash"],
             "cache-scratch": ["build/bench/cache", "scratch"], "bigblock": ["build/bench/bigblock"]}
PEERS = [("tcmalloc", "libtcmalloc_minimal.so.4"), ("mimalloc", "libmimalloc.so.2"), ("jemalloc", "libjemalloc.so.2")]


def peer_path(so):
    for d in ("/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "build/peers"):
        if os.path.exists(os.path.join(d, so)):
            return os.path.abspath(os.path.join(d, so))
    sys.exit("device_ab: %s not found (make deps, or device_scaling.sh --bundle)" % so)


def variant(spec):
    name, _, rest = spec.partition("=")
    lib, _, envs = rest.partition(":")
    if not name or not lib or not os.path.exists(lib):
        sys.exit("device_ab: bad variant %r (NAME=LIB.so[:VAR=VALUE,...], the library must exist)" % spec)
    env = dict(kv.split("=", 1) for kv in envs.split(",") if kv)
    return name, os.path.abspath(lib), env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-t", "--threads", default="4,8,16")
    ap.add_argument("-s", "--scale", default="0.3")
    ap.add_argument("-w", "--workloads", default="prodcons,pool-shared,larson,churn,micro-batch")
    ap.add_argument("variants", nargs="+")
    a = ap.parse_args()
    variants = [variant(v) for v in a.variants] + [(n, peer_path(so), {}) for n, so in PEERS]
    for threads in a.threads.split(","):
        for wl in a.workloads.split(","):
            argv = WORKLOADS[wl]
            wall = {v[0]: [] for v in variants}
            cpu = {v[0]: [] for v in variants}
            rss = {v[0]: [] for v in variants}
            for r in range(a.rounds):
                for name, lib, extra in variants[r % len(variants):] + variants[:r % len(variants)]:
                    env = dict(os.environ, LD_PRELOAD=lib, **extra)
                    t0 = time.time()
                    p = subprocess.Popen([argv[0], "-t", threads, "-s", a.scale] + argv[1:], env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    _, status, ru = os.wait4(p.pid, 0)
                    wall[name].append(time.time() - t0)
                    cpu[name].append(ru.ru_utime + ru.ru_stime)
                    rss[name].append(ru.ru_maxrss / 1024)
                    if status != 0:
                        print("FAIL %s/%st %s: status %d" % (wl, threads, name, status), flush=True)
            best = min(statistics.median(wall[n]) for n, _ in PEERS)
            print("%s/%st: " % (wl, threads) + "  ".join(
                "%s %.3f (%.2f) cpu %.2f rss %.0f" % (n, statistics.median(wall[n]), statistics.median(wall[n]) / best,
                                                      statistics.median(cpu[n]), statistics.median(rss[n]))
                for n, _, _ in variants), flush=True)


if __name__ == "__main__":
    main()
