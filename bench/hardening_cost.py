#!/usr/bin/env python3
"""hardening_cost.py -- what each piece of tessera's default hardening costs
on the benchmark's workloads (`make hardening-cost`).

The default library (build/libtessera.so) runs against variants built from
the same sources with one piece taken out by a test-only switch of
src/internal.h (build/variants/<name>/libtessera.so, rules in bench/bench.mk),
and the default library with TESSERA_SECURE=1 runs against the default.
The workloads, their arguments and their check values are bench/run.py's,
imported from it. Two measures:
  - instructions executed in user space, counted by callgrind (one run
    each: repeatable where the path does not depend on thread timing or the
    clock; perf's hardware counters are not available on every machine, the
    2-core development VM included), at a reduced scale: C workloads at
    --ir-scale, traces at that fraction of their calibrated repeat count
    (at least one replay; the realloc traces left out, --ir-skip), the real
    programs at run.py's QUICK sizes;
  - user+sys CPU time and wall time, medians of --rounds interleaved rounds
    at the bench's own scale, the configuration order rotated every round.
A piece's cost on a workload is (with the piece) / (without it); the
summary is the geometric mean over the workloads. About 40 minutes on the
2-core machine with the defaults (callgrind half of it). Standard library only.
"""
import argparse
import copy
import datetime
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ in the working tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: workloads, runner, helpers)

ROOT = bench.ROOT
# name -> (library, extra environment)
CONFIGS = {
    "default": ("build/libtessera.so", {}),
    "no-free-checks": ("build/variants/no-free-checks/libtessera.so", {}),
    "no-link-encoding": ("build/variants/no-link-encoding/libtessera.so", {}),
    "no-guard-pages": ("build/variants/no-guard-pages/libtessera.so", {}),
    "secure": ("build/libtessera.so", {"TESSERA_SECURE": "1"}),
}
# (piece, configuration with it, configuration without it)
PIECES = [
    ("invalid/double-free checks", "default", "no-free-checks"),
    ("link encoding", "default", "no-link-encoding"),
    ("guard pages", "default", "no-guard-pages"),
    ("TESSERA_SECURE=1", "secure", "default"),
]
PIECE_NOTES = {
    "invalid/double-free checks": "-DTSR_HARDEN_NO_FREE_CHECKS: free's fast-path block-start and free-mark "
                                  "tests, the mark's store in free and its clear in malloc",
    "link encoding": "-DTSR_HARDEN_NO_LINK_ENCODING: free-list links XOR the secret",
    "guard pages": "-DTSR_HARDEN_NO_GUARD_PAGES: the PROT_NONE page after each 32 MiB segment",
    "TESSERA_SECURE=1": "the default library with TESSERA_SECURE=1 (random block order, zero on free, "
                        "no huge-block cache) against it without",
}
BAR = 1.03  # the bound on a piece's geometric-mean cost

# bench/run.py starts every measured child as `measure RES argv`; WRAP, when
# set, goes between the two (callgrind for the instruction counts).
WRAP = []
_measured = bench.measured


def measured(argv, res_path):
    return _measured(WRAP + argv, res_path)


bench.measured = measured
log = bench.log


def with_env(w, env):
    v = copy.copy(w)
    v.env = dict(w.env, **env)
    return v


def alloc_of(name):
    lib, _ = CONFIGS[name]
    return {"name": name, "preload": os.path.join(ROOT, lib)}


def run_config(w, name, timeout):
    return bench.run_once(with_env(w, CONFIGS[name][1]), alloc_of(name), timeout)


def callgrind_run(w, name, timeout):
    """One run under callgrind, children traced (gcc's cc1 and as); the
    instruction count is the sum over every process's totals."""
    out = tempfile.mkdtemp(prefix="tsr-hcg-")
    WRAP[:] = ["valgrind", "--tool=callgrind", "--trace-children=yes",
               "--callgrind-out-file=" + os.path.join(out, "cg.%p")]
    try:
        r = run_config(w, name, timeout)
        total = 0
        files = os.listdir(out)
        for f in files:
            for line in open(os.path.join(out, f)):
                if line.startswith(("summary:", "totals:")):
                    total += int(line.split()[1])
                    break
        r["ir"] = total if files and r["status"] == "ok" else None
        r["processes"] = len(files)
        return r
    finally:
        WRAP[:] = []
        shutil.rmtree(out, ignore_errors=True)


def scaled_repeat(w, factor):
    """A trace workload with its --repeat count scaled by factor (at least 1)."""
    v = copy.copy(w)
    v.argv = list(w.argv)
    i = v.argv.index("--repeat") + 1
    v.argv[i] = str(max(1, int(round(int(v.argv[i]) * factor))))
    return v


def validate(runs):
    """A run whose check value differs from the default's is wrong."""
    for label, by in runs.items():
        ref = [r.get("signature") for r in by.get("default", []) if r["status"] == "ok"]
        pool = ref or [r.get("signature") for rs in by.values() for r in rs if r["status"] == "ok"]
        if not pool:
            continue
        want = max(set(pool), key=pool.count)
        for rs in by.values():
            for r in rs:
                if r["status"] == "ok" and r.get("signature") != want:
                    r["status"] = "wrong output"
                    r["stdout"] = "got %r, default gave %r" % (r.get("signature"), want)


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def run_all(args):
    missing = [lib for lib, _ in CONFIGS.values() if not os.path.exists(os.path.join(ROOT, lib))]
    if missing:
        raise SystemExit("not built: %s (make hardening-variants all)" % ", ".join(missing))
    nproc = len(os.sched_getaffinity(0))
    threads = bench.parse_threads(args.threads, nproc)
    commit = bench.git_commit()
    started = time.time()
    load0 = loadavg()
    names = list(CONFIGS)

    full = bench.c_workloads(threads, args.scale, nproc) + bench.program_workloads(False)
    small = bench.c_workloads(threads, args.ir_scale, nproc) + bench.program_workloads(True)
    if os.path.isdir(os.path.join(ROOT, args.traces)):
        log("calibrating trace repeat counts with glibc ...")
        # Only the traces that enter the bench's trace geomean (run.py's
        # BIG_TRACE_REQUESTS): the shorter ones are mostly process start-up.
        traces = [w for w in bench.trace_workloads(args.traces, False, 0.1)
                  if w.trace["requests"] >= bench.BIG_TRACE_REQUESTS]
        full += traces
        small += [scaled_repeat(w, args.ir_scale) for w in traces]
    if args.ir_skip:
        small = [w for w in small if not re.search(args.ir_skip, w.label)]
    if args.only:
        full = [w for w in full if re.search(args.only, w.label)]
        small = [w for w in small if re.search(args.only, w.label)]

    # Instructions: one run each, deterministic up to thread interleaving.
    ir_runs = {}
    if args.ir and shutil.which("valgrind"):
        log("instructions under callgrind: %d workloads x %d configurations" % (len(small), len(names)))
        for w in small:
            cells = []
            for n in names:
                r = callgrind_run(w, n, args.ir_timeout)
                ir_runs.setdefault(w.label, {}).setdefault(n, []).append(r)
                cells.append("%s %s" % (n, ("%.4g" % r["ir"]) if r.get("ir") else r["status"].upper()))
            log("[ir %4.0fs] %-22s %s" % (time.time() - started, w.label, "  ".join(cells)))
        validate(ir_runs)
    elif args.ir:
        log("note: valgrind not installed, instruction counts left out")

    # Fast-path loops: make fastpath's callgrind counts for every configuration.
    fp = None
    if args.ir and shutil.which("valgrind"):
        fp = {}
        for n in names:
            saved = dict(os.environ)
            os.environ.update(CONFIGS[n][1])
            try:
                res = bench.fastpath([alloc_of(n)])
                fp[n] = res["counts"][n] if res else None
            finally:
                os.environ.clear()
                os.environ.update(saved)

    # Time: interleaved rounds at the bench's scale.
    t_runs = {}
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for w in full:
            cells = []
            for n in order:
                r = run_config(w, n, 120)
                r["round"] = rnd
                t_runs.setdefault(w.label, {}).setdefault(n, []).append(r)
                cells.append("%s %s" % (n, ("%.2f" % r["cpu"]) if r["status"] == "ok" and r.get("cpu") else
                                        r["status"].upper()))
            log("[%d/%d %4.0fs] %-22s %s" % (rnd + 1, args.rounds, time.time() - started, w.label, "  ".join(cells)))
    validate(t_runs)

    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "commit": commit, "nproc": nproc,
            "cpu": bench.cpu_model(), "kernel": os.uname().release, "rounds": args.rounds, "scale": args.scale,
            "ir_scale": args.ir_scale, "ir_skip": args.ir_skip, "threads": threads, "load_start": load0, "load_end": loadavg(),
            "seconds": round(time.time() - started),
            "argv": "make hardening-cost" + (" ROUNDS=%d" % args.rounds) +
                    (" THREADS=" + args.threads if args.threads else "") +
                    (" BENCH_ONLY='%s'" % args.only if args.only else "") +
                    (" HARDEN_ARGS='--ir-scale %g'" % args.ir_scale if args.ir_scale != 0.05 else "")}
    wl = [{"label": w.label, "group": w.group, "cmd": w.cmdline(), "trace": w.trace} for w in full]
    return {"meta": meta, "workloads": wl, "ir_runs": ir_runs, "time_runs": t_runs, "fastpath": fp}


# ---- report ---------------------------------------------------------------------

def ratio(by, with_, without, key):
    def val(n):
        rs = by.get(n, [])
        if not rs or any(r["status"] != "ok" for r in rs):
            return None
        return bench.med(rs, key)
    a, b = val(with_), val(without)
    return a / b if a and b else None


def bad_runs(by, names):
    for n in names:
        for r in by.get(n, []):
            if r["status"] != "ok":
                return "%s: %s" % (n, r["status"])
    return None


def noise_split(by):
    """Default's odd rounds over its even rounds (CPU medians): an A/A ratio."""
    rs = [r for r in by.get("default", []) if r["status"] == "ok" and r.get("cpu")]
    a = [r["cpu"] for r in rs if r["round"] % 2 == 0]
    b = [r["cpu"] for r in rs if r["round"] % 2 == 1]
    return statistics.median(a) / statistics.median(b) if a and b else None


def f3(x):
    return "-" if x is None else "%.3f" % x


def report(data):
    meta = data["meta"]
    wls = data["workloads"]
    ir, tr = data["ir_runs"], data["time_runs"]
    big = [w["label"] for w in wls if w["group"] == "trace" and w["trace"]["requests"] >= bench.BIG_TRACE_REQUESTS]
    main_rows = [w["label"] for w in wls if w["group"] != "trace"]
    rows = main_rows + big  # the bench's two geomeans cover these rows
    skipped = ("rows matching `%s` not counted (--ir-skip)" % meta["ir_skip"] if meta.get("ir_skip") is not None else
               "this run, before --ir-skip existed, counted realloc-bal.rep (over a minute per run) and had the other three realloc "
               "traces' runs stopped by hand")
    # Under callgrind, threads interleave differently from run to run, and
    # where they wait on each other (spinning, yielding, heap abandonment and
    # reclaim) the count varies: the rows of one thread are the exact ones.
    one = [l for l in rows if not re.search(r"/([2-9]|\d\d+)t$", l)]
    L = ["# Hardening cost, %s, commit %s" % (meta["date"], meta["commit"]), ""]
    L.append("Command: `%s` (%d s). Machine: %s, nproc %d, Linux %s; load average %s at the start, %s at "
             "the end (other engineers' jobs share it)." %
             (meta["argv"], meta["seconds"], meta["cpu"], meta["nproc"], meta["kernel"], meta["load_start"],
              meta["load_end"]))
    L.append("")
    L.append("Each cell is the cost of the piece on that workload: the measure with the piece over the measure "
             "without it (above 1: the piece costs). **Instructions**: user-space instructions counted by "
             "callgrind (`--trace-children=yes`, summed over processes), one run each, at reduced "
             "scale: C workloads at scale %g, traces replayed %g times their calibrated repeat count (at least "
             "once; %s), real programs at "
             "`make bench QUICK=1` sizes (their interpreter or compiler start-up included, which dilutes them). "
             "**CPU** (user + sys) and **wall**: medians of %d interleaved rounds at the bench's scale (%g), "
             "configuration order rotated each round. Geometric means over the %d workloads of `make bench`'s "
             "two geomeans: its %d non-trace rows and the %d traces of at least %d requests (the shorter "
             "traces are left out); the issue's bound is %.2f." % (meta["ir_scale"], meta["ir_scale"], skipped, meta["rounds"], meta["scale"], len(rows),
                           len(main_rows), len(big), bench.BIG_TRACE_REQUESTS, BAR))
    L.append("")
    L.append("| piece (with / without) | instructions | instructions, 1-thread rows | CPU time | wall time | "
             "CPU, non-trace rows | CPU, traces | largest instruction cost (1 thread) |")
    L.append("|---|---|---|---|---|---|---|---|")
    summary = {}
    for piece, w_, wo in PIECES:
        g = {}
        for key, src, sel in (("ir", ir, rows), ("ir_one", ir, one), ("cpu", tr, rows), ("wall", tr, rows),
                              ("cpu_main", tr, main_rows), ("cpu_trace", tr, big)):
            k = key.split("_")[0]
            g[key] = bench.geomean([ratio(src.get(l, {}), w_, wo, k) for l in sel])
        worst = max(((ratio(ir.get(l, {}), w_, wo, "ir") or 0, l) for l in one), default=(0, ""))
        summary[piece] = g
        L.append("| %s | **%s** | **%s** | **%s** | %s | %s | %s | %s (%s) |" %
                 (piece, f3(g["ir"]), f3(g["ir_one"]), f3(g["cpu"]), f3(g["wall"]), f3(g["cpu_main"]),
                  f3(g["cpu_trace"]), f3(worst[0] or None), worst[1]))
    aa = bench.geomean([noise_split(tr.get(l, {})) for l in rows])
    L.append("| (noise: default's even over odd rounds) | | | %s | | | | |" % f3(aa))
    L.append("")
    L.append("Reading the noise: the guard pages change no user-space code, so their instruction ratio on a row is "
             "that row's run-to-run variation under callgrind: 1.000 on most rows, not on those whose threads "
             "wait on each other (or start each other, as larson's lineages do) or whose path depends on the "
             "clock (time-based purging: micro-calloc). The last row compares the default library with itself "
             "(median of its even rounds over its odd rounds): the CPU-time noise floor of this run.")
    L.append("")
    for piece, _, _ in PIECES:
        L.append("- %s: %s." % (piece, PIECE_NOTES[piece]))
    if data.get("fastpath"):
        fp = data["fastpath"]
        L.append("")
        L.append("`make fastpath`'s two loops under callgrind, instructions per iteration: (a) malloc, write, "
                 "free of sizes 16..256; (b) 256 random 8..1024 then shuffled frees, per pair.")
        L.append("")
        L.append("| loop | " + " | ".join(CONFIGS) + " |")
        L.append("|---" * (len(CONFIGS) + 1) + "|")
        for loop in ("a", "b"):
            L.append("| (%s) | " % loop + " | ".join(f3(fp[n][loop]) if fp.get(n) and fp[n].get(loop) is not None
                                                    else "-" for n in CONFIGS) + " |")
    L.append("")
    L.append("## Per workload: instructions / CPU / wall, with over without")
    L.append("")
    L.append("| workload | " + " | ".join(p for p, _, _ in PIECES) + " |")
    L.append("|---" * (len(PIECES) + 1) + "|")
    for w in wls:
        l = w["label"]
        if w["group"] == "trace" and l not in big:
            continue
        cells = []
        for _, w_, wo in PIECES:
            cells.append(" / ".join("**x**" if bad_runs(src.get(l, {}), (w_, wo)) else
                                    f3(ratio(src.get(l, {}), w_, wo, k))
                                    for src, k in ((ir, "ir"), (tr, "cpu"), (tr, "wall"))))
        L.append("| %s | %s |" % (l, " | ".join(cells)))
    fails = [(what, l, n, r) for what, src in (("instructions", ir), ("time", tr)) for l, by in src.items()
             for n, rs in by.items() for r in rs if r["status"] != "ok"]
    if fails:
        L.append("")
        L.append("## Failures (**x** above)")
        L.append("")
        for what, l, n, r in fails:
            # The runner kills with SIGKILL; a SIGTERM came from outside it.
            st = "stopped from outside the runner (SIGTERM)" if r["status"] == "crash (signal 15)" else r["status"]
            L.append("- %s, %s under %s: %s `%s`" % (what, l, n, st, (r.get("stdout", "") + " " + r.get("stderr", ""))
                                                    .strip().replace("`", "'").replace("\n", " / ")[-120:]))
    L.append("")
    L.append("Command lines: as in `make bench` (bench/run.py), under `LD_PRELOAD=<library>`; the instruction "
             "counts prefix `valgrind --tool=callgrind --trace-children=yes`.")
    return "\n".join(L) + "\n", summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved CPU-time rounds (default 5)")
    ap.add_argument("--scale", type=float, default=1.0, help="C workloads' scale for the time rounds")
    ap.add_argument("--ir-scale", type=float, default=0.05, help="scale of the callgrind runs (default 0.05)")
    ap.add_argument("--ir-timeout", type=int, default=600, help="seconds per callgrind run (default 600)")
    # The realloc traces cannot be scaled down (one replay is their calibrated
    # repeat count) and are memcpy: over a minute per run under callgrind,
    # and realloc-bal.rep counted the same instructions, within 0.02 %, under
    # every configuration (commit f611ebc): the replayer's byte checks.
    ap.add_argument("--ir-skip", default=r"^realloc", help="rows left out of the callgrind runs (regex)")
    ap.add_argument("--no-ir", dest="ir", action="store_false", help="no callgrind counts")
    ap.add_argument("--threads", default=os.environ.get("THREADS", ""))
    ap.add_argument("--traces", default="../shared/traces")
    ap.add_argument("--replay", default=bench.REPLAY[0])
    ap.add_argument("--only", default="", help="regular expression on the row labels")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--report", default="", help="regenerate the Markdown from a raw -hardening.json")
    args = ap.parse_args()
    os.chdir(ROOT)
    bench.REPLAY[0] = args.replay
    if args.report:
        data = json.load(open(args.report))
        base = args.report[:-len(".json")]
    else:
        data = run_all(args)
        os.makedirs(args.out, exist_ok=True)
        base = os.path.join(args.out, "%s-%s-hardening" % (data["meta"]["date"].split()[0],
                                                            data["meta"]["commit"].replace("+", "-")))
        with open(base + ".json", "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
    md, _ = report(data)
    with open(base + ".md", "w") as f:
        f.write(md)
    print(md)
    log("results: %s.md" % os.path.relpath(base))
    bad = sum(1 for src in ("ir_runs", "time_runs") for by in data[src].values() for rs in by.values()
              for r in rs if r["status"] != "ok" and not (src == "ir_runs" and r["status"] == "timeout"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
