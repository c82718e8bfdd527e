#!/usr/bin/env python3
"""overhead.py -- the recorder's slowdown: `tessera record -- W` against plain W.

Both sides use the same allocator: the recorder forwards to the next malloc,
which is glibc's when nothing else is preloaded, and W runs plain on glibc.
Runs are interleaved (plain, record, plain, record, ...) so that load on a
shared machine hits both sides alike; the table shows medians of wall time and
of user+sys CPU time (of the whole `tessera record` command, children included,
so the summary it prints after the run is counted). The previous run's trace
is deleted before each recorded run, untimed: overwriting it would charge the
recorded side with truncating 150 MiB of page cache (about 0.015 s, 2-3% of
larson), a cost of the file left behind, not of recording.

With --preload, a third column runs W with the recorder preloaded directly
(what `tessera record` runs, without the summary it prints afterwards).

usage: overhead.py [--runs N] [--scale S] [--only REGEX] [--keep DIR]
                   [--tessera PATH] [--preload]
Run from the repository root after `make all bench-bins`.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = [
    ("micro-hot", ["build/bench/micro", "hot"]),
    ("micro-batch", ["build/bench/micro", "batch"]),
    ("larson", ["build/bench/larson"]),
    ("churn", ["build/bench/churn"]),
    ("prodcons/2t", ["build/bench/prodcons", "-t", "2"]),
]


def run(argv, env=None, remove=None):
    """Wall seconds and user+sys CPU seconds of argv and its children; the
    file `remove` is deleted first, untimed."""
    if remove and os.path.exists(remove):
        os.unlink(remove)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit("overhead.py: %s exited with %d:\n%s" % (" ".join(argv), p.returncode, err))
    return wall, ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scale", default="1")
    ap.add_argument("--only", default="")
    ap.add_argument("--keep", default="", help="folder for the traces (default: a temporary one)")
    ap.add_argument("--tessera", default="build/tessera", help="the CLI to measure (its recorder next to it)")
    ap.add_argument("--preload", action="store_true", help="also time W with the recorder preloaded directly")
    ap.add_argument("--preload-only", action="store_true",
                    help="time W preloaded instead of `tessera record -- W` (an old CLI's summary can need GiBs)")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    lib = os.path.join(os.path.dirname(os.path.abspath(args.tessera)), "libtessera-record.so")
    tmp = args.keep or tempfile.mkdtemp(prefix="tsr-overhead-")
    rows = []
    for name, argv in WORKLOADS:
        if args.only and not re.search(args.only, name):
            continue
        w = argv[:1] + ["-s", args.scale] + argv[1:]
        trace = os.path.join(tmp, name.replace("/", "-") + ".trace.bin")
        rec = [args.tessera, "record", "-o", trace, "--"] + w
        env = dict(os.environ, LD_PRELOAD=lib, TESSERA_RECORD_FILE=trace)
        env.pop("TESSERA_RECORD_PID", None)
        plain, recorded, preloaded = [], [], []
        for _ in range(args.runs):
            plain.append(run(w))
            if not args.preload_only:
                recorded.append(run(rec, remove=trace))
            if args.preload or args.preload_only:
                preloaded.append(run(w, env, remove=trace))
        if not recorded:
            recorded = preloaded
        pw = statistics.median(x[0] for x in plain)
        pc = statistics.median(x[1] for x in plain)
        rw = statistics.median(x[0] for x in recorded)
        rc = statistics.median(x[1] for x in recorded)
        size = os.path.getsize(trace)
        if not args.keep:
            os.unlink(trace)
        lw = statistics.median(x[0] for x in preloaded) if preloaded else 0
        lc = statistics.median(x[1] for x in preloaded) if preloaded else 0
        rows.append((name, " ".join(w), pw, rw, rw / pw, pc, rc, rc / pc, size, lc / pc if lc else 0))
        print("%-12s wall %.3f -> %.3f s (%.2fx)  cpu %.3f -> %.3f s (%.2fx)  trace %.1f MiB"
              % (name, pw, rw, rw / pw, pc, rc, rc / pc, size / 2**20), flush=True)
        if preloaded:
            print("%-12s   preloaded, no summary: wall %.3f s (%.2fx)  cpu %.3f s (%.2fx)"
                  % ("", lw, lw / pw, lc, lc / pc), flush=True)
    if not args.keep:
        os.rmdir(tmp)
    print()
    extra = args.preload and not args.preload_only
    print("| workload | command | wall plain | wall recorded | ratio | CPU plain | CPU recorded | ratio |"
          + (" CPU ratio, preloaded |" if extra else "") + " trace |")
    print("|---|---|---|---|---|---|---|---|" + ("---|" if extra else "") + "---|")
    for r in rows:
        print("| %s | `%s` | %.2f s | %.2f s | %.2fx | %.2f s | %.2f s | %.2fx |"
              % (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
              + (" %.2fx |" % r[9] if extra else "") + " %.0f MiB |" % (r[8] / 2**20))
    print("\nmedians of %d interleaved runs each; both sides on glibc malloc%s"
          % (args.runs, "; recorded = W preloaded, no summary" if args.preload_only else ""))
    # What overhead.md records with a table: when, which commit, how loaded.
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("%s, commit %s%s, load average %.1f at the start, %.1f at the end"
          % (time.strftime("%Y-%m-%d %H:%M"), commit or "?",
             "" if subprocess.run(["git", "diff", "--quiet", "HEAD"]).returncode == 0 else " (modified)",
             load_start, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
