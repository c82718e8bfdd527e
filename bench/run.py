#!/usr/bin/env python3
"""run.py -- run the tessera benchmarks against the peer allocators and report.

Every workload runs once per allocator per round, allocators interleaved
(tessera, glibc, jemalloc, tcmalloc, mimalloc, then the next workload), so a
machine that drifts slows everyone alike; we report medians. One-thread
workloads run pinned to the CPU that is fastest just before them
(choose_cpu), all allocators on the same one. Each run is a
child process started through build/bench/measure, which reports its wall
time and its wait4 rusage (user+sys CPU, peak RSS of the child and the
children it reaped). A run that crashes, times out, or prints
another check value than the glibc run of the same workload is a failure,
and any failure makes the exit status 1 after the report is written.
Raw runs go to a JSON file; `--report FILE.json` regenerates the Markdown
and the SVG charts from it. Standard library only; no network.
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ["tessera", "glibc", "jemalloc", "tcmalloc", "mimalloc"]
PEERS = ["glibc", "jemalloc", "tcmalloc", "mimalloc"]
COLORS = {"tessera": "#d62728", "glibc": "#7f7f7f", "jemalloc": "#1f77b4",
          "tcmalloc": "#2ca02c", "mimalloc": "#ff7f0e"}
# name -> (soname looked up with ldconfig, Debian package for the version)
PEER_LIBS = {"jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
             "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
             "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0")}
REPLAY = ["build/tests/replay_rep"]  # set from --replay; a list so workloads built later see it
BIG_TRACE_REQUESTS = 4000  # traces at least this long enter the trace geomean,
BIG_TRACE_LIVE = 1 << 20   # and at least this many bytes live at their peak: below that, the
                           # utilization measures page granularity and memory resident before the
                           # baseline more than the allocator (glibc above 1 on several traces,
                           # and 0.1 apart between runs on the same trace)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---- allocators -------------------------------------------------------------

def ldconfig_path(soname):
    for line in sh(["/sbin/ldconfig", "-p"]).splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split()[0] == soname and "x86-64" in parts[0]:
            return parts[1]
    return None


def dpkg_version(pkg):
    """The package's version; on a machine without it (the lent one), the
    version bench/device_scaling.sh --bundle recorded with the copied peers."""
    v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
    if v:
        return v
    try:
        for item in open(os.path.join(ROOT, "build", "peers", "VERSIONS")).read().split(","):
            name, _, version = item.strip().partition(" ")
            if name == pkg:
                return version + " (copied in)"
    except OSError:
        pass
    return "?"


def discover_allocators(wanted):
    """The allocators to run, in ORDER. tessera joins when build/libtessera.so
    exists; a missing peer is left out with a note (make bench installs them)."""
    out, notes = [], []
    for name in ORDER:
        if wanted and name not in wanted:
            continue
        if name == "tessera":
            lib = os.path.join(ROOT, "build", "libtessera.so")
            if not os.path.exists(lib):
                notes.append("tessera: build/libtessera.so not built, left out")
                continue
            hdr = open(os.path.join(ROOT, "include", "tessera.h")).read()
            m = re.search(r'TSR_VERSION_STRING\s+"([^"]+)"', hdr)
            out.append({"name": name, "preload": lib, "shown": "build/libtessera.so",
                        "version": (m.group(1) if m else "?") + " (" + git_commit() + ")"})
        elif name == "glibc":
            out.append({"name": name, "preload": None, "shown": "(none)", "version": dpkg_version("libc6")})
        else:
            soname, pkg = PEER_LIBS[name]
            path = ldconfig_path(soname)
            if not path:
                notes.append("%s: %s not installed, left out (run make deps)" % (name, soname))
                continue
            out.append({"name": name, "preload": path, "shown": soname, "version": dpkg_version(pkg)})
    return out, notes


def git_commit():
    """The commit measured. A lent machine's copy of the tree may carry a
    stale HEAD: there bench/device_scaling.sh passes the one the library
    was built from (TSR_BENCH_COMMIT, recorded by --bundle)."""
    if os.environ.get("TSR_BENCH_COMMIT"):
        return os.environ["TSR_BENCH_COMMIT"]
    c = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "nogit"
    if sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]):
        c += "+dirty"
    return c


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


# ---- workloads --------------------------------------------------------------

class Workload:
    """One row of the report. argv is relative to the repository root; kind is
    'proc' (run argv), 'redis' (server under test, client unpreloaded) or
    'trace' (replay_rep). signature() extracts what must match glibc's run."""

    def __init__(self, name, argv, kind="proc", threads=None, group="alloc", stdin=None,
                 env=None, post=None, glibc_preload=None, trace=None, shown=None):
        self.name, self.argv, self.kind, self.threads, self.group = name, argv, kind, threads, group
        self.stdin, self.env, self.post, self.glibc_preload, self.trace = stdin, env or {}, post, glibc_preload, trace
        self.shown = shown

    @property
    def label(self):
        return "%s/%dt" % (self.name, self.threads) if self.threads else self.name

    @property
    def pinned(self):
        """Runs on one CPU, chosen just before it (choose_cpu): a one-thread
        workload, a trace replay or a program (redis, a server and its
        client, not)."""
        return self.threads == 1 or (self.threads is None and self.kind in ("proc", "trace"))

    def cmdline(self):
        if self.shown:
            return self.shown
        env = " ".join("%s=%s" % kv for kv in sorted(self.env.items()))
        s = " ".join(self.argv)
        if self.stdin:
            s += " < " + self.stdin
        return (env + " " if env else "") + s


def c_workloads(threads, scale, nproc):
    base = [("micro-hot", "micro", "hot", 1), ("micro-batch", "micro", "batch", 1),
            ("micro-calloc", "micro", "calloc", 1), ("micro-realloc-vec", "micro", "realloc-vec", 1),
            ("micro-realloc-str", "micro", "realloc-str", 1),
            ("larson", "larson", None, 1), ("prodcons", "prodcons", None, 2),
            ("cache-scratch", "cache", "scratch", 1), ("cache-thrash", "cache", "thrash", 1),
            ("churn", "churn", None, 1), ("bigblock", "bigblock", None, 1),
            ("pool-shared", "pool", "shared", 1), ("pool-local", "pool", "local", 1)]
    out = []
    for name, binary, mode, min_threads in base:
        for t in threads:
            if t < min_threads:
                continue
            argv = ["build/bench/" + binary, "-t", str(t), "-s", "%g" % scale] + ([mode] if mode else [])
            out.append(Workload(name, argv, threads=t, group="micro" if name.startswith("micro") else "alloc"))
    return out


def sha1_of(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def program_workloads(quick):
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
    rows = 20000 if quick else 1000000
    sql = "build/bench/sqlite-%d.sql" % rows
    with open(os.path.join(ROOT, sql), "w") as f:
        f.write(SQLITE_SCRIPT.replace("@ROWS@", str(rows)))
    funcs = 20 if quick else 300
    gen = "build/bench/gen-%d.c" % funcs
    if not os.path.exists(os.path.join(ROOT, gen)):
        subprocess.run([sys.executable, "bench/programs/gen_c.py", str(funcs), gen], cwd=ROOT, check=True)
    pyargs = ["1", "2000"] if quick else ["8", "40000"]
    plargs = ["1", "2000"] if quick else ["15", "30000"]
    return [
        Workload("python", [py, "bench/programs/objects.py"] + pyargs, group="program",
                 env={"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}),
        Workload("python-malloc", [py, "bench/programs/objects.py"] + pyargs, group="program",
                 env={"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONMALLOC": "malloc"}),
        Workload("sqlite", ["sqlite3", ":memory:"], stdin=sql, group="program"),
        # redis-server links libjemalloc itself: preloading libc.so.6 for the
        # glibc column puts glibc's malloc in front of it (checked with INFO).
        Workload("redis", ["redis-server"], kind="redis", group="program", glibc_preload="libc.so.6",
                 env={"REQUESTS": "2000" if quick else "100000"},
                 shown="redis-server --port PORT --bind 127.0.0.1 --save '' --appendonly no "
                       "--daemonize no, then the redis client below (REQUESTS=%s)" % ("2000" if quick else "100000")),
        Workload("gcc", ["gcc", "-O1", "-c", gen, "-o", "$TMP/gen.o"], group="program",
                 post=lambda tmp: "CHECK " + sha1_of(os.path.join(tmp, "gen.o"))),
        Workload("perl", ["perl", "bench/programs/strings.pl"] + plargs, group="program"),
    ]


SQLITE_SCRIPT = """CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @ROWS@)
INSERT INTO t SELECT x, (x * 7919) % 1000, printf('name-%08d-%s', (x * 104729) % 1000003, hex(x)), (x % 977) * 0.5 FROM c;
CREATE INDEX t_grp ON t(grp, name);
SELECT 'CHECK', count(*), sum(cnt), max(m) FROM (SELECT grp, count(*) AS cnt, max(name) AS m FROM t GROUP BY grp);
SELECT 'CHECK', count(DISTINCT substr(name, 6, 3)), sum(length(name)) FROM t WHERE val > 100;
SELECT 'CHECK', name FROM t ORDER BY name DESC LIMIT 1 OFFSET @ROWS@ / 2;
"""


def trace_requests(path):
    with open(path) as f:
        head = f.read(200).split()
    return int(head[2]) if len(head) >= 3 else 0


def trace_workloads(trace_dir, quick, target_s):
    """One workload per .rep file. Outside QUICK the repeat count is
    calibrated once with glibc so each replay runs about target_s."""
    rel = os.path.relpath(os.path.abspath(os.path.join(ROOT, trace_dir)), ROOT)
    files = sorted(f for f in os.listdir(os.path.join(ROOT, rel)) if f.endswith(".rep"))
    out = []
    for f in files:
        path = os.path.join(rel, f)
        repeat = 1
        if not quick:
            r = run_once(Workload(f, [REPLAY[0], "--check", "--repeat", "1", path], kind="trace"), None, 120)
            if r["status"] == "ok" and r.get("trace_seconds"):
                repeat = max(1, min(20000, int(round(target_s / max(r["trace_seconds"], 1e-6)))))
        w = Workload(f, [REPLAY[0], "--check", "--repeat", str(repeat), path],
                     kind="trace", group="trace")
        w.trace = {"requests": trace_requests(os.path.join(ROOT, path)), "repeat": repeat}
        out.append(w)
    return out


# ---- running one measurement ------------------------------------------------

def child_env(w, alloc):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["LC_ALL"] = "C"
    env.update(w.env)
    pre = alloc["preload"] if alloc else None
    if alloc and alloc["name"] == "glibc" and w.glibc_preload:
        pre = w.glibc_preload
    if pre:
        env["LD_PRELOAD"] = pre
    return env


def spawn(argv, env, stdin_path, out_path, err_path, cwd):
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    with open(out_path, "wb") as o, open(err_path, "wb") as e:
        p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=o, stderr=e, cwd=cwd, start_new_session=True)
    if stdin_path:
        stdin.close()
    return p


MEASURE = "build/bench/measure"


def measured(argv, res_path, cpu=None):
    """argv wrapped in build/bench/measure (see bench/measure.c for why the
    wait4 happens there and not here), on that one CPU if cpu is not None."""
    return [os.path.join(ROOT, MEASURE)] + (["-c", str(cpu)] if cpu is not None else []) + [res_path] + argv


# The CPU that one-thread runs are pinned to now (choose_cpu).
PIN = {"cpu": None}
PIN_CPUS_MAX = 4   # CPUs tried before each workload: each try costs 0.1 s


def choose_cpu():
    """(the CPU that runs measure's --speed loop fastest now, the loop's time
    by CPU), or (None, {}) with fewer than two CPUs. The CPUs of a virtual
    machine need not be equal: on the 2-core VM this was written on, either
    CPU loses time to the host for minutes at a time (the guest shows no
    steal time), and a one-thread run left to the scheduler took 0.19 s or
    0.35 s as it was placed, which no median of three hides. So each
    workload's runs, every allocator's, go to the CPU that was fastest just
    before them. The first PIN_CPUS_MAX CPUs only, where there are more:
    the choice is about a noisy neighbour, not about which CPU."""
    cpus = sorted(os.sched_getaffinity(0))[:PIN_CPUS_MAX]
    if len(cpus) < 2:
        return None, {}
    speeds = {}
    for c in cpus:
        try:
            out = subprocess.run([os.path.join(ROOT, MEASURE), "--speed", str(c)], capture_output=True,
                                 text=True, timeout=30).stdout
            speeds[c] = float(out)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    if not speeds:
        return None, {}
    return min(speeds, key=speeds.get), speeds


def pin_workload(w, pins, rnd):
    """Before a workload's runs: its CPU, if it is pinned; kept for the report."""
    PIN["cpu"] = None
    if not w.pinned:
        return
    cpu, speeds = choose_cpu()
    PIN["cpu"] = cpu
    if cpu is not None:
        pins.append({"round": rnd, "label": w.label, "cpu": cpu, "speeds": {str(c): round(t, 4) for c, t in speeds.items()}})


def pins_text(pins, subject="One-thread workloads, trace replays and programs (not redis)"):
    """A sentence on where the pinned runs (subject) ran, for the reports."""
    pins = [p for p in (pins or []) if p["cpu"] is not None]
    if not pins:
        return ""
    cpus = sorted({c for p in pins for c in p["speeds"]}, key=int)
    parts = []
    for c in cpus:
        t = sorted(p["speeds"][c] for p in pins if c in p["speeds"])
        parts.append("CPU %s chosen for %d of %d workloads, its loop %.3f s median, %.3f s at most" %
                     (c, sum(1 for p in pins if str(p["cpu"]) == c), len(pins), statistics.median(t), t[-1]))
    return ("%s ran pinned to one CPU: before each "
            "workload's runs (every allocator's), the CPU that ran a fixed 0.1 s loop fastest just then "
            "(`build/bench/measure --speed`). The CPUs of a virtual machine need not be equal, and left to the "
            "scheduler a one-thread run lands on either. Here: %s." % (subject, "; ".join(parts)))


def read_measure(res_path, status, timed_out):
    """(status text, wall, cpu, maxrss KiB) from measure's result line; the
    runner's own status when it left none (killed by the watchdog)."""
    try:
        f = open(res_path).read().split()
        kv = dict(zip(f[0::2], f[1::2]))
        st = int(kv["status"])
        return (describe_status(st, timed_out), float(kv["wall"]), float(kv["user"]) + float(kv["sys"]),
                int(kv["maxrss"]))
    except (OSError, KeyError, ValueError, IndexError):
        return describe_status(status, timed_out) if timed_out or status else "fail (no measurement)", None, None, None


def reap(p, timeout):
    """wait4 the child with a watchdog that kills its whole process group.
    Returns (status, rusage, timed_out)."""
    fired = []

    def kill():
        fired.append(1)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
    return status, ru, bool(fired)


def describe_status(status, timed_out):
    if timed_out:
        return "timeout"
    if os.WIFSIGNALED(status):
        return "crash (signal %d)" % os.WTERMSIG(status)
    if os.WEXITSTATUS(status) != 0:
        return "fail (exit %d)" % os.WEXITSTATUS(status)
    return "ok"


def read_tail(path, n=2000):
    """The end of a captured output, with this checkout's path made relative:
    results are committed and must not name folders of this machine."""
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace").replace(ROOT + "/", "").replace(ROOT, ".")
    except OSError:
        return ""


def run_once(w, alloc, timeout):
    tmp = tempfile.mkdtemp(prefix="tsr-bench-")
    try:
        if w.kind == "redis":
            return run_redis(w, alloc, timeout, tmp)
        argv = [a.replace("$TMP", tmp) for a in w.argv]
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        stdin = os.path.join(ROOT, w.stdin) if w.stdin else None
        res = os.path.join(tmp, "measure")
        try:
            p = spawn(measured(argv, res, PIN["cpu"] if w.pinned else None), child_env(w, alloc), stdin, out, err, ROOT)
        except OSError as e:
            return {"status": "fail (%s)" % e, "stderr": str(e)}
        status, _, timed_out = reap(p, timeout)
        st, wall, cpu, rss = read_measure(res, status, timed_out)
        r = {"status": st, "wall": wall, "cpu": cpu, "rss_kb": rss}
        text = read_tail(out, 1 << 16)
        r["stderr"] = read_tail(err)
        parse_output(w, text, r)
        if r["status"] == "ok" and w.post:
            try:
                r["signature"] = w.post(tmp)
            except OSError as e:
                r["status"] = "fail (%s)" % e
        if r["status"] == "ok" and "FAIL" in text:
            r["status"] = "fail (self-check)"
        if r["status"] != "ok":
            r["stdout"] = text[-1000:]
        return r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_output(w, text, r):
    if w.kind == "trace":
        for line in text.splitlines():
            f = line.split()
            if len(f) == 6 and not line.startswith("#"):
                ops, ops_s = int(f[1]), float(f[2])
                r.update(ops=ops, trace_mops=ops_s / 1e6, trace_seconds=ops / ops_s if ops_s else 0,
                         peak_live=int(f[3]), rss_delta=int(f[4]), util=float(f[5]))
                r["signature"] = "%s %s" % (f[1], f[3])  # requests and peak live: allocator independent
        if "signature" not in r and r["status"] == "ok":
            r["status"] = "fail (no result line)"
        return
    m = re.search(r"^RESULT ops=(\d+) check=([0-9a-f]+)(?: mops=([0-9.]+))?", text, re.M)
    if m:
        r["ops"] = int(m.group(1))
        r["signature"] = m.group(2)
        if m.group(3):
            r["mops"] = float(m.group(3))
        return
    checks = [l.strip() for l in text.splitlines() if l.startswith("CHECK")]
    if checks:
        r["signature"] = " | ".join(checks)
    elif w.group != "program" and r["status"] == "ok":
        r["status"] = "fail (no RESULT line)"


# ---- redis: the server is the process under test --------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def resp(port, *args, timeout=5.0):
    """Send one command in RESP and return its reply: a status, error or
    integer line, or the payload of a bulk string (None for a null bulk)."""
    msg = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(msg.encode())
        data = b""
        while True:
            if b"\r\n" in data:
                head, rest = data.split(b"\r\n", 1)
                if not head.startswith(b"$"):
                    return head.decode("utf-8", "replace")
                n = int(head[1:])
                if n < 0:
                    return None
                if len(rest) >= n + 2:
                    return rest[:n].decode("utf-8", "replace")
            chunk = s.recv(65536)
            if not chunk:
                return data.decode("utf-8", "replace")
            data += chunk


def run_redis(w, alloc, timeout, tmp):
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--loglevel", "warning", "--dir", tmp]
    out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    env = child_env(w, alloc)
    env.pop("REQUESTS", None)
    res = os.path.join(tmp, "measure")
    try:
        p = spawn(measured(argv, res), env, None, out, err, tmp)
    except OSError as e:
        return {"status": "fail (%s)" % e, "stderr": str(e)}
    r = {"status": "ok"}
    try:
        deadline = time.time() + 10
        while True:
            try:
                if resp(port, "PING", timeout=1) == "+PONG":
                    break
            except OSError:
                pass
            if p.poll() is not None or time.time() > deadline:
                r["status"] = "fail (server did not start)"
                break
            time.sleep(0.02)
        if r["status"] == "ok":
            client = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", w.env["REQUESTS"], "-c", "20",
                      "-P", "16", "-q", "-d", "64", "-r", "100000",
                      "-t", "set,get,incr,lpush,rpop,sadd,hset,lrange_100"]
            cenv = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
            t0 = time.perf_counter()
            try:
                c = subprocess.run(client, env=cenv, capture_output=True, timeout=timeout)
                r["wall"] = time.perf_counter() - t0
                if c.returncode != 0:
                    r["status"] = "fail (redis-benchmark exit %d)" % c.returncode
            except subprocess.TimeoutExpired:
                r["status"] = "timeout"
            if r["status"] == "ok":
                value = "tessera-bench-" + "x" * 300
                resp(port, "SET", "bench:check", value)
                got = resp(port, "GET", "bench:check")
                size = resp(port, "DBSIZE") or ""
                r["signature"] = "CHECK get=%s dbsize>0=%s" % (got == value, size.startswith(":") and size != ":0")
        try:
            resp(port, "SHUTDOWN", "NOSAVE", timeout=2)
        except OSError:
            pass
    finally:
        status, _, timed_out = reap(p, 20)
    st, _, cpu, rss = read_measure(res, status, timed_out)
    if r["status"] == "ok" and st != "ok":
        r["status"] = st
    r.update(cpu=cpu, rss_kb=rss, stderr=read_tail(err))
    return r


# ---- the whole run ------------------------------------------------------------

def parse_threads(spec, nproc):
    if not spec:
        return sorted({1, 2, nproc})
    out = sorted({int(x) for x in spec.replace(" ", "").split(",") if x})
    if not out or out[0] < 1:
        raise SystemExit("THREADS must be a list like 1,2,4")
    return out


def run_all(args):
    nproc = len(os.sched_getaffinity(0))
    commit = git_commit()  # now: the library under test was built from this tree
    threads = parse_threads(args.threads, nproc)
    allocs, notes = discover_allocators(args.allocators.split(",") if args.allocators else None)
    if not any(a["name"] == "glibc" for a in allocs):
        raise SystemExit("glibc must be among the allocators: it is the reference for the checks")
    scale = args.scale if args.scale else (0.02 if args.quick else 1.0)
    rounds = args.rounds if args.rounds else (1 if args.quick else 3)
    timeout = 60 if args.quick else 120
    glibc = next(a for a in allocs if a["name"] == "glibc")

    workloads = []
    groups = args.groups.split(",") if args.groups else ["micro", "alloc", "program", "trace", "check"]
    if "micro" in groups or "alloc" in groups:
        workloads += [w for w in c_workloads(threads, scale, nproc) if w.group in groups]
    if "program" in groups:
        workloads += program_workloads(args.quick)
    if "trace" in groups:
        if os.path.isdir(os.path.join(ROOT, args.traces)):
            if not args.quick:
                log("calibrating trace repeat counts with glibc ...")
            workloads += trace_workloads(args.traces, args.quick, 0.1)
        else:
            notes.append("traces: %s not found, trace replay left out" % args.traces)
    if args.only:
        workloads = [w for w in workloads if re.search(args.only, w.label)]

    for n in notes:
        log("note: " + n)
    log("allocators: %s; %d workloads x %d rounds; threads %s" %
        (", ".join(a["name"] for a in allocs), len(workloads), rounds, ",".join(map(str, threads))))
    runs = {}
    pins = []
    started = time.time()
    for rnd in range(rounds):
        for w in workloads:
            pin_workload(w, pins, rnd)
            cells, failed = [], False
            for a in allocs:
                r = run_once(w, a, timeout)
                r["round"] = rnd
                runs.setdefault(w.label, {}).setdefault(a["name"], []).append(r)
                failed |= r["status"] != "ok"
                cells.append("%s %s" % (a["name"], ("%.2fs" % r["wall"]) if r["status"] == "ok" else r["status"].upper()))
            if w.group != "trace" or failed or not args.quick:
                log("[%d/%d %4.0fs] %-22s %s" % (rnd + 1, rounds, time.time() - started, w.label, "  ".join(cells)))

    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": commit, "nproc": nproc, "cpu": cpu_model(), "kernel": os.uname().release,
        "quick": args.quick, "rounds": rounds, "scale": scale, "threads": threads,
        "argv": "make bench" + (" QUICK=1" if args.quick else "") + (" THREADS=" + args.threads if args.threads else "") +
                (" ROUNDS=%d" % args.rounds if args.rounds else "") + (" BENCH_ONLY='%s'" % args.only if args.only else "") +
                (" TRACES=" + args.traces if args.traces != "../shared/traces" else "") +
                (" BENCH_GROUPS=" + args.groups if args.groups else "") +
                (" (bench/run.py --scale %g)" % args.scale if args.scale else ""),
        "allocators": [{k: a[k] for k in ("name", "shown", "version")} for a in allocs],
        "notes": ([args.note] if args.note else []) + notes, "seconds": round(time.time() - started), "pinned": pins,
        "glibc_preload_for": [w.label for w in workloads if w.glibc_preload],
    }
    wl = [{"label": w.label, "name": w.name, "group": w.group, "threads": w.threads, "cmd": w.cmdline(),
           "trace": w.trace} for w in workloads]
    data = {"meta": meta, "workloads": wl, "runs": runs}
    validate(data)
    if "check" in groups:
        if os.path.exists(os.path.join(ROOT, "build", "libtessera-check.so")):
            data["check"] = check_section(args)
        else:
            log("note: build/libtessera-check.so not built, checking mode left out")
    if args.fastpath and not args.quick and workloads:
        data["fastpath"] = fastpath(allocs)
    return data


def validate(data):
    """Mark runs whose signature differs from glibc's for the same workload
    (or from the most common one when glibc failed) as wrong."""
    for label, by_alloc in data["runs"].items():
        sigs = [r.get("signature") for rs in by_alloc.values() for r in rs if r["status"] == "ok"]
        ref = [r.get("signature") for r in by_alloc.get("glibc", []) if r["status"] == "ok"]
        pool = ref or sigs
        if not pool:
            continue
        want = max(set(pool), key=pool.count)
        for name, rs in by_alloc.items():
            for r in rs:
                if r["status"] == "ok" and r.get("signature") != want:
                    r["status"] = "wrong output"
                    r["stdout"] = "got %r, glibc gave %r" % (r.get("signature"), want)


# ---- fast path: instruction counts under callgrind ---------------------------------

FASTPATH_N = {"a": (100000, 200000, 1), "b": (200, 400, 256)}


def callgrind_ir(alloc, loop, n):
    with tempfile.TemporaryDirectory(prefix="tsr-cg-") as tmp:
        out = os.path.join(tmp, "cg.out")
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        if alloc["preload"]:
            env["LD_PRELOAD"] = alloc["preload"]
        subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                        os.path.join(ROOT, "build/bench/fastpath"), loop, str(n)],
                       env=env, capture_output=True, check=True, timeout=600)
        for line in open(out):
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in callgrind output")


def fastpath(allocs):
    if not shutil.which("valgrind"):
        log("note: valgrind not installed, fast-path counts left out")
        return None
    res = {}
    for a in allocs:
        res[a["name"]] = {}
        for loop, (n1, n2, per) in FASTPATH_N.items():
            try:
                i1, i2 = callgrind_ir(a, loop, n1), callgrind_ir(a, loop, n2)
                res[a["name"]][loop] = (i2 - i1) / ((n2 - n1) * per)
            except (subprocess.SubprocessError, RuntimeError, OSError) as e:
                log("fastpath %s %s failed: %s" % (a["name"], loop, e))
                res[a["name"]][loop] = None
        log("fastpath %-9s a=%s b=%s" % (a["name"], fmt(res[a["name"]]["a"], 1), fmt(res[a["name"]]["b"], 1)))
    return {"counts": res, "cmd": "valgrind --tool=callgrind build/bench/fastpath a|b N  "
            "(a: N = %d and %d; b: N = %d and %d rounds of 256)" % (FASTPATH_N["a"][:2] + FASTPATH_N["b"][:2])}


def fastpath_table(fp, names):
    if not fp:
        return []
    c = fp["counts"]
    names = [n for n in names if n in c]
    lines = ["| loop | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines.append("| (a) malloc/p[0]=x/free, sizes 16..256 (instr/iteration) | " +
                 " | ".join(fmt(c[n]["a"], 1) for n in names) + " |")
    lines.append("| (b) 256 random 8..1024 then shuffled frees (instr/pair) | " +
                 " | ".join(fmt(c[n]["b"], 1) for n in names) + " |")
    return lines


# ---- checking mode: tessera check against glibc, ASan and Valgrind ---------------------

# (label, binary, mode, threads): the allocation-heavy workloads. Every one
# runs under glibc (the reference), `tessera check` with its defaults, and,
# where it can, a copy of the workload built with -fsanitize=address
# (bench.mk: build/bench/asan/) and Valgrind memcheck at CHECK_VALGRIND_DIV
# times less work (it is ~77x slower), with its own glibc run at that scale.
CHECK_C = [("micro-hot", "micro", "hot", 1), ("micro-batch", "micro", "batch", 1),
           ("micro-realloc-str", "micro", "realloc-str", 1), ("larson", "larson", None, 2),
           ("churn", "churn", None, 1), ("pool-local", "pool", "local", 1),
           ("cache-scratch", "cache", "scratch", 1), ("prodcons", "prodcons", None, 2),
           ("bigblock", "bigblock", None, 1)]
CHECK_SCALE = 0.3
CHECK_QUICK_SCALE = 0.01
CHECK_VALGRIND_DIV = 10
CHECK_VALGRIND_QUICK = ("micro-batch", "larson", "churn")  # QUICK: Valgrind's start-up alone is ~0.5 s a run
CHECK_MODES = ["glibc", "check", "asan", "valgrind"]


def check_workloads(quick):
    """(workload, asan argv or None, valgrind workload or None, its glibc twin)."""
    scale = CHECK_QUICK_SCALE if quick else CHECK_SCALE
    vscale = scale / CHECK_VALGRIND_DIV
    out = []
    for label, binary, mode, t in CHECK_C:
        def argv(prefix, s):
            return [prefix + binary, "-t", str(t), "-s", "%g" % s] + ([mode] if mode else [])
        w = Workload(label, argv("build/bench/", scale), threads=t, group="check")
        asan = argv("build/bench/asan/", scale) if os.path.exists(os.path.join(ROOT, "build/bench/asan", binary)) else None
        vg = Workload(label, argv("build/bench/", vscale), threads=t, group="check")
        if quick and label not in CHECK_VALGRIND_QUICK:
            vg = None
        out.append((w, asan, vg))
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
    pyargs = ["1", "2000"] if quick else ["2", "20000"]
    out.append((Workload("python-malloc", [py, "bench/programs/objects.py"] + pyargs, group="check",
                         env={"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONMALLOC": "malloc"}),
                None, None))
    rows = 20000 if quick else 100000
    sql = "build/bench/sqlite-%d.sql" % rows
    with open(os.path.join(ROOT, sql), "w") as f:
        f.write(SQLITE_SCRIPT.replace("@ROWS@", str(rows)))
    out.append((Workload("sqlite", ["sqlite3", ":memory:"], stdin=sql, group="check"), None, None))
    return out


def check_run(w, mode, asan_argv=None):
    """One measured run of w under mode (glibc, check, asan, valgrind)."""
    v = Workload(w.name, list(w.argv), threads=w.threads, group=w.group, stdin=w.stdin, env=dict(w.env))
    if mode == "check":
        v.argv = ["build/tessera", "check", "--"] + v.argv
    elif mode == "asan":
        v.argv = list(asan_argv)
        v.env["ASAN_OPTIONS"] = "detect_leaks=1"
    elif mode == "valgrind":
        v.argv = ["valgrind", "-q", "--error-exitcode=99"] + v.argv
    return run_once(v, None, 600)


def shown_with(w, prefix):
    """w's command line with prefix before the program (after its variables)."""
    env = " ".join("%s=%s" % kv for kv in sorted(w.env.items()))
    s = prefix + " " + " ".join(w.argv) + (" < " + w.stdin if w.stdin else "")
    return (env + " " if env else "") + s


def check_section(args):
    """Interleaved rounds (glibc, check, asan per workload), then one round
    of Valgrind with its own glibc run at the reduced scale."""
    rounds = args.rounds if args.rounds else (1 if args.quick else 3)
    items = check_workloads(args.quick)
    if args.only:
        items = [it for it in items if re.search(args.only, it[0].label)]
    has_vg = shutil.which("valgrind") is not None
    runs = {}
    pins = []
    started = time.time()
    for rnd in range(rounds):
        for w, asan, vg in items:
            pin_workload(w, pins, rnd)
            cells = []
            for mode in ("glibc", "check", "asan"):
                if mode == "asan" and not asan:
                    continue
                r = check_run(w, mode, asan)
                r["round"] = rnd
                runs.setdefault(w.label, {}).setdefault(mode, []).append(r)
                cells.append("%s %s" % (mode, ("%.2fs" % r["wall"]) if r["status"] == "ok" else r["status"].upper()))
            log("[check %d/%d %4.0fs] %-20s %s" % (rnd + 1, rounds, time.time() - started, w.label, "  ".join(cells)))
    for w, asan, vg in items:
        if vg is None or not has_vg:
            continue
        pin_workload(vg, pins, rounds)
        for mode in ("glibc-small", "valgrind"):
            r = check_run(vg, "glibc" if mode == "glibc-small" else "valgrind")
            runs[w.label].setdefault(mode, []).append(r)
        log("[check valgrind] %-20s glibc %s  valgrind %s" % (w.label, fmt(runs[w.label]["glibc-small"][0].get("wall")),
                                                              fmt(runs[w.label]["valgrind"][0].get("wall"))))
    # A mode is right when it computes what glibc computed at its scale.
    for label, by in runs.items():
        for ref, modes in (("glibc", ("check", "asan")), ("glibc-small", ("valgrind",))):
            want = [r.get("signature") for r in by.get(ref, []) if r["status"] == "ok"]
            for m in modes:
                for r in by.get(m, []):
                    if want and r["status"] == "ok" and r.get("signature") != want[0]:
                        r["status"] = "wrong output"
    return {"rounds": rounds, "scale": CHECK_QUICK_SCALE if args.quick else CHECK_SCALE, "valgrind_div": CHECK_VALGRIND_DIV,
            "pinned": pins,
            "seconds": round(time.time() - started), "has_valgrind": has_vg,
            "workloads": [{"label": w.label, "cmd": w.cmdline(), "check": shown_with(w, "build/tessera check --"),
                           "asan": "ASAN_OPTIONS=detect_leaks=1 " + " ".join(asan) if asan else None,
                           "valgrind": shown_with(vg, "valgrind -q --error-exitcode=99") if vg else None}
                          for w, asan, vg in items],
            "runs": runs}


def check_report(chk):
    """The "Checking mode" section: medians and ratios to glibc."""
    L = ["", "## Checking mode: tessera check against glibc, ASan and Valgrind", ""]
    L.append("Each workload under plain glibc, under `build/tessera check --` with its default settings (leak scan "
             "included), and built with `-fsanitize=address` (ASan, default options, leak check on): %d "
             "interleaved round(s), medians, scale %g. Valgrind memcheck runs once at 1/%d of the work, against "
             "a glibc run at that same scale (its ratio includes Valgrind's startup). Cells: median, then the "
             "ratio to glibc in parentheses; the issue's bar is 3x on wall time and peak RSS." %
             (chk["rounds"], chk["scale"], chk["valgrind_div"]))
    if pins_text(chk.get("pinned")):
        L.append("")
        L.append(pins_text(chk["pinned"], "The one-thread rows, Valgrind's too,"))
    if not chk["has_valgrind"]:
        L.append("")
        L.append("Note: valgrind is not installed; its column is empty.")
    L.append("")

    def m(label, mode, key):
        rs = chk["runs"].get(label, {}).get(mode, [])
        bad = [r["status"] for r in rs if r["status"] != "ok"]
        if bad:
            return None, bad[0]
        v = med(rs, key)
        return (v / 1024 if v is not None and key == "rss_kb" else v), None

    ratios = {mode: {"wall": [], "cpu": [], "rss_kb": []} for mode in CHECK_MODES[1:]}
    for key, title, nd in (("wall", "wall time (s)", 3), ("cpu", "CPU time, user + sys (s)", 3),
                           ("rss_kb", "peak RSS (MiB)", 1)):
        L.append("| workload: %s | glibc | tessera check | ASan | glibc at 1/%d | Valgrind at 1/%d |" %
                 (title, chk["valgrind_div"], chk["valgrind_div"]))
        L.append("|---|---|---|---|---|---|")
        for w in chk["workloads"]:
            label = w["label"]
            g, _ = m(label, "glibc", key)
            gs, _ = m(label, "glibc-small", key)
            cells = [fmt(g, nd)]
            for mode, ref in (("check", g), ("asan", g), ("glibc-small", None), ("valgrind", gs)):
                v, bad = m(label, mode, key)
                if bad:
                    cells.append("**%s**" % bad.upper())
                elif v is None:
                    cells.append("-")
                elif ref:
                    cells.append("%s (%.2fx)" % (fmt(v, nd), v / ref))
                    ratios[mode][key].append(v / ref)
                else:
                    cells.append(fmt(v, nd))
            L.append("| %s | %s |" % (label, " | ".join(cells)))
        L.append("| **geomean of ratios** | | %s | %s | | %s |" %
                 tuple("**%s**" % fmt(geomean(ratios[mode][key]), 2) for mode in ("check", "asan", "valgrind")))
        L.append("")
    L.append("```")
    for w in chk["workloads"]:
        L.append("%-18s %s" % (w["label"], w["cmd"]))
        L.append("%-18s %s" % ("", w["check"]))
        if w["asan"]:
            L.append("%-18s %s" % ("", w["asan"]))
        if w["valgrind"]:
            L.append("%-18s %s  (and the same without valgrind)" % ("", w["valgrind"]))
    L.append("```")
    return L


# ---- report ------------------------------------------------------------------------

def fmt(x, nd=2):
    return "-" if x is None else ("%.*f" % (nd, x))


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def med(rs, key):
    v = [r[key] for r in rs if r["status"] == "ok" and r.get(key) is not None]
    return statistics.median(v) if v else None


def summarize(data):
    """Per workload label and allocator: medians and ratios to the best peer."""
    names = [a["name"] for a in data["meta"]["allocators"]]
    summ = {}
    for w in data["workloads"]:
        by = data["runs"].get(w["label"], {})
        row = {}
        for n in names:
            rs = by.get(n, [])
            bad = [r["status"] for r in rs if r["status"] != "ok"]
            row[n] = {"wall": med(rs, "wall"), "cpu": med(rs, "cpu"),
                      "rss": (med(rs, "rss_kb") or 0) / 1024 or None, "mops": med(rs, "mops"),
                      "trace_mops": med(rs, "trace_mops"), "util": med(rs, "util"), "ops": med(rs, "ops"),
                      "peak_live": med(rs, "peak_live"),
                      "bad": bad[0] if bad else None}
        for key in ("wall", "cpu", "rss", "trace_mops", "util"):
            higher_better = key in ("trace_mops", "util")
            peers = [row[n][key] for n in names if n in PEERS and row[n][key] and not row[n]["bad"]]
            best = (max(peers) if higher_better else min(peers)) if peers else None
            for n in names:
                v = row[n][key]
                row[n][key + "_ratio"] = (v / best if v and best else None)
        summ[w["label"]] = row
    return names, summ


def cell(row, key, nd):
    if row["bad"]:
        return "**%s**" % row["bad"].upper()
    v, r = row[key], row.get(key + "_ratio")
    if v is None:
        return "-"
    return "%s (%s)" % (fmt(v, nd), fmt(r, 2)) if r is not None else fmt(v, nd)


def table(names, rows, summ, key, nd, title_col="workload"):
    lines = ["| %s | " % title_col + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label in rows:
        lines.append("| %s | " % label + " | ".join(cell(summ[label][n], key, nd) for n in names) + " |")
    gm = []
    for n in names:
        rs = [summ[l][n].get(key + "_ratio") for l in rows if not summ[l][n]["bad"]]
        gm.append(geomean([x for x in rs if x]))
    lines.append("| **geomean of ratios** | " + " | ".join("**%s**" % fmt(g, 2) for g in gm) + " |")
    return lines


def speedups(data, summ, names):
    """Throughput (ops / median wall) at each thread count over the smallest
    count the workload ran with (1, or 2 for prodcons)."""
    threads = data["meta"]["threads"]
    out = {}
    if len(threads) < 2:
        return out
    by_name = {}
    for w in data["workloads"]:
        if w["threads"]:
            by_name.setdefault(w["name"], {})[w["threads"]] = w["label"]
    for name, labels in by_name.items():
        if len(labels) < 2:
            continue  # prodcons starts at 2 threads: no baseline when THREADS=1,2
        t0 = min(labels)
        for n in names:
            base = summ[labels[t0]][n]
            if not base["wall"] or not base["ops"] or base["bad"]:
                continue
            tp0 = base["ops"] / base["wall"]
            pts = []
            for t in sorted(labels):
                s = summ[labels[t]][n]
                if s["wall"] and s["ops"] and not s["bad"]:
                    pts.append((t, (s["ops"] / s["wall"]) / tp0))
            out.setdefault(name, {})[n] = pts
    return out


def report(data, base):
    meta = data["meta"]
    names, summ = summarize(data)
    wls = data["workloads"]
    main_rows = [w["label"] for w in wls if w["group"] != "trace"]
    trace_rows = [w["label"] for w in wls if w["group"] == "trace"]
    def trace_live(label):   # the trace's peak live bytes: the same under every allocator
        return max([summ[label][n]["peak_live"] or 0 for n in names] or [0])
    big_traces = [w["label"] for w in wls if w["group"] == "trace" and w["trace"]["requests"] >= BIG_TRACE_REQUESTS
                  and trace_live(w["label"]) >= BIG_TRACE_LIVE]
    rel = os.path.basename(base)
    L = []
    L.append("# Benchmark run %s, commit %s%s" % (meta["date"], meta["commit"], " (QUICK smoke run)" if meta["quick"] else ""))
    L.append("")
    L.append("Command: `%s` (rounds: %d, allocators interleaved, medians; scale %g; %d s in all)." %
             (meta["argv"], meta["rounds"], meta["scale"], meta["seconds"]))
    L.append("Machine: %s, nproc %d, Linux %s. Thread counts: %s." %
             (meta["cpu"], meta["nproc"], meta["kernel"], ", ".join(map(str, meta["threads"]))))
    if pins_text(meta.get("pinned")):
        L.append("")
        L.append(pins_text(meta["pinned"]))
    L.append("")
    L.append("| allocator | preloaded | version |")
    L.append("|---|---|---|")
    for a in meta["allocators"]:
        L.append("| %s | %s | %s |" % (a["name"], a["shown"], a["version"]))
    for n in meta["notes"]:
        L.append("")
        L.append("Note: " + n)
    if meta.get("glibc_preload_for"):
        L.append("")
        L.append("For %s the glibc column preloads libc.so.6, because redis-server links libjemalloc itself." %
                 ", ".join(meta["glibc_preload_for"]))
    L.append("")
    L.append("Each cell: median, then in parentheses the ratio to the best peer (glibc, jemalloc, tcmalloc, "
             "mimalloc) for that row; lower is better. Failures are in capitals.")
    if main_rows:
        L.append("")
        L.append("![wall-time ratios](%s-ratios.svg)" % rel)
        L.append("")
        L.append("## Wall time (s)")
        L.append("")
        L += table(names, main_rows, summ, "wall", 3)
        L.append("")
        L.append("## CPU time, user + sys (s)")
        L.append("")
        L += table(names, main_rows, summ, "cpu", 3)
        L.append("")
        L.append("## Peak RSS (MiB)")
        L.append("")
        L += table(names, main_rows, summ, "rss", 1)
        mrows = [l for l in main_rows if any(summ[l][n]["mops"] for n in names)]
        if mrows:
            L.append("")
            L.append("## Throughput reported by the workloads (Mops/s, higher is better)")
            L.append("")
            L.append("| workload | " + " | ".join(names) + " |")
            L.append("|---" * (len(names) + 1) + "|")
            for l in mrows:
                L.append("| %s | " % l + " | ".join("-" if summ[l][n]["mops"] is None else "%.3g" % summ[l][n]["mops"]
                                                    for n in names) + " |")
    sp = speedups(data, summ, names)
    if sp:
        L.append("")
        L.append("## Scaling: throughput at N threads over the smallest thread count (1; 2 for prodcons)")
        L.append("")
        L.append("![scaling](%s-scaling.svg)" % rel)
        L.append("")
        ts = meta["threads"]
        L.append("| workload | allocator | " + " | ".join("%dt" % t for t in ts) + " |")
        L.append("|---" * (len(ts) + 2) + "|")
        for name, per in sp.items():
            for n in names:
                pts = dict(per.get(n, []))
                L.append("| %s | %s | " % (name, n) + " | ".join(fmt(pts.get(t), 2) for t in ts) + " |")
    if trace_rows:
        L.append("")
        L.append("## Trace replay (%d traces)" % len(trace_rows))
        L.append("")
        L.append("Replay throughput in M requests/s (each byte of each block written and checked) and "
                 "utilization = peak live payload / peak RSS growth over the replayer's baseline "
                 "(tools/trace.c); higher is better for both. The geomean rows cover the %d traces with at "
                 "least %d requests and %d MiB live at their peak (a smaller one measures page granularity and "
                 "memory resident before the baseline more than the allocator)." %
                 (len(big_traces), BIG_TRACE_REQUESTS, BIG_TRACE_LIVE >> 20))
        L.append("")
        L.append("| trace | requests x repeat | " + " | ".join("%s Mops/s" % n for n in names) + " | " +
                 " | ".join("%s util" % n for n in names) + " |")
        L.append("|---" * (2 * len(names) + 2) + "|")
        for w in wls:
            if w["group"] != "trace":
                continue
            s = summ[w["label"]]
            L.append("| %s | %d x %d | " % (w["label"], w["trace"]["requests"], w["trace"]["repeat"]) +
                     " | ".join(("**%s**" % s[n]["bad"].upper()) if s[n]["bad"] else fmt(s[n]["trace_mops"], 2) for n in names) + " | " +
                     " | ".join("" if s[n]["bad"] else fmt(s[n]["util"], 3) for n in names) + " |")
        gm_t = [geomean([summ[l][n]["trace_mops"] for l in big_traces if not summ[l][n]["bad"]]) for n in names]
        gm_u = [geomean([summ[l][n]["util"] for l in big_traces if not summ[l][n]["bad"]]) for n in names]
        L.append("| **geomean, larger traces** | | " + " | ".join("**%s**" % fmt(g, 2) for g in gm_t) + " | " +
                 " | ".join("**%s**" % fmt(g, 3) for g in gm_u) + " |")
    if data.get("check"):
        L += check_report(data["check"])
    if data.get("fastpath"):
        L.append("")
        L.append("## Fast path: instructions under callgrind")
        L.append("")
        L.append("`%s`; instructions per iteration by difference of the two runs, so startup cancels; "
                 "the loop, RNG and shuffle are included." % data["fastpath"]["cmd"])
        L.append("")
        L += fastpath_table(data["fastpath"], names)
    fails = [(l, n, r) for l, by in data["runs"].items() for n, rs in by.items() for r in rs if r["status"] != "ok"]
    if fails:
        L.append("")
        L.append("## Failures")
        L.append("")
        cmds = {w["label"]: w["cmd"] for w in wls}
        for l, n, r in fails:
            L.append("- %s under %s, round %d: %s. Command: `%s%s`; output: `%s`" %
                     (l, n, r.get("round", 0) + 1, r["status"],
                      "" if n == "glibc" else "LD_PRELOAD=<%s> " % n, cmds.get(l, "?"),
                      (r.get("stdout", "") + " " + r.get("stderr", "")).strip().replace("`", "'").replace("\n", " / ")[-400:]))
    L.append("")
    L.append("## Command lines")
    L.append("")
    L.append("Run from the repository root, each under `LD_PRELOAD=<library>` (none for glibc); "
             "`$TMP` is a fresh temporary folder per run.")
    L.append("")
    L.append("```")
    seen = set()
    for w in wls:
        if w["group"] == "trace":
            continue
        if w["cmd"] not in seen:
            seen.add(w["cmd"])
            L.append(("%-20s " % w["label"]) + w["cmd"])
    if trace_rows:
        L.append("%-20s %s --check --repeat R TRACE.rep   (R per trace in the table above)" % ("traces", REPLAY[0]))
    L.append("%-20s redis-benchmark -h 127.0.0.1 -p PORT -n REQUESTS -c 20 -P 16 -q -d 64 -r 100000 "
             "-t set,get,incr,lpush,rpop,sadd,hset,lrange_100   (client not preloaded)" % "redis client")
    L.append("```")
    return "\n".join(L) + "\n", names, summ, sp, main_rows


# ---- SVG charts, written by hand ------------------------------------------------

def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_ratios(names, summ, rows, title):
    lo, hi = 0.5, 2.0
    for l in rows:
        for n in names:
            r = summ[l][n].get("wall_ratio")
            if r:
                lo, hi = min(lo, r), max(hi, r)
    lo, hi = 2 ** math.floor(math.log2(lo)), min(2 ** math.ceil(math.log2(hi)), 64)
    rows = ["geomean"] + rows
    gm = {n: geomean([summ[l][n].get("wall_ratio") for l in rows[1:] if not summ[l][n]["bad"]]) for n in names}
    bar, gap, left, width = 7, 8, 190, 560
    group = bar * len(names) + gap
    top = 50
    H = top + group * len(rows) + 40
    W = left + width + 130

    def x(v):
        v = min(max(v, lo), hi)
        return left + (math.log2(v) - math.log2(lo)) / (math.log2(hi) - math.log2(lo)) * width
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="20" font-size="14">%s</text>' % (left, esc(title))]
    v = lo
    while v <= hi * 1.0001:
        o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>' % (x(v), top - 8, x(v), H - 35, "#000" if v == 1 else "#ddd"))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>' % (x(v), H - 20, v))
        v *= 2
    for i, l in enumerate(rows):
        y0 = top + i * group
        o.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y0 + group / 2, esc(l)))
        for j, n in enumerate(names):
            r = gm[n] if l == "geomean" else (None if summ[l][n]["bad"] else summ[l][n].get("wall_ratio"))
            y = y0 + j * bar
            if r is None:
                if l != "geomean" and summ[l][n]["bad"]:
                    o.append('<text x="%d" y="%d" fill="%s" font-size="8">%s</text>' % (left + 2, y + bar, COLORS[n], esc(summ[l][n]["bad"])))
                continue
            x0, x1 = x(min(r, 1)), x(max(r, 1))
            o.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s %.2f</title></rect>' %
                     (x0, y, max(x1 - x0, 1), bar - 1, COLORS[n], esc(l), n, r))
    for j, n in enumerate(names):
        o.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>' %
                 (left + width + 20, top + j * 16, COLORS[n], left + width + 34, top + j * 16 + 9, n))
    o.append('<text x="%d" y="%d" text-anchor="middle">wall time / best peer (log scale; left of 1 is faster than every peer)</text>' %
             (left + width / 2, H - 5))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def svg_scaling(sp, names, threads, title):
    panels = list(sp.items())
    cols = 4
    pw, ph, pad = 210, 170, 40
    W = cols * (pw + pad) + pad
    H = 50 + math.ceil(len(panels) / cols) * (ph + pad + 10) + 30
    ymax = max([t for t in threads] + [s for per in sp.values() for pts in per.values() for _, s in pts] + [2])
    xs = {t: i for i, t in enumerate(threads)}
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="10">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="20" font-size="14">%s</text>' % (pad, esc(title))]
    for j, n in enumerate(names):
        o.append('<rect x="%d" y="30" width="10" height="10" fill="%s"/><text x="%d" y="39">%s</text>' % (pad + j * 90, COLORS[n], pad + 14 + j * 90, n))
    for k, (name, per) in enumerate(panels):
        ox = pad + (k % cols) * (pw + pad)
        oy = 60 + (k // cols) * (ph + pad + 10)

        def px(t):
            return ox + (xs[t] / max(len(threads) - 1, 1)) * pw

        def py(s):
            return oy + ph - s / ymax * ph
        o.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (ox, oy, pw, ph))
        o.append('<text x="%d" y="%d" font-size="11">%s</text>' % (ox, oy - 4, esc(name)))
        t0 = min(t for pts in per.values() for t, _ in pts) if any(per.values()) else threads[0]
        o.append('<polyline fill="none" stroke="#bbb" stroke-dasharray="4 3" points="%s"/>' %
                 " ".join("%.1f,%.1f" % (px(t), py(t / t0)) for t in threads if t >= t0))
        for t in threads:
            o.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (px(t), oy + ph + 12, t))
        o.append('<text x="%d" y="%d" text-anchor="end">%g</text><text x="%d" y="%d" text-anchor="end">0</text>' %
                 (ox - 3, oy + 8, round(ymax, 1), ox - 3, oy + ph))
        for n in names:
            pts = per.get(n, [])
            if pts:
                o.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' %
                         (COLORS[n], " ".join("%.1f,%.1f" % (px(t), py(s)) for t, s in pts)))
    o.append('<text x="%d" y="%d">x: threads; y: throughput over the smallest thread count (dashed: linear)</text>' % (pad, H - 10))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def write_outputs(data, outdir, stem=None):
    os.makedirs(outdir, exist_ok=True)
    meta = data["meta"]
    stem = stem or "%s-%s" % (meta["date"].split()[0], meta["commit"].replace("+", "-"))
    base = os.path.join(outdir, stem)
    md, names, summ, sp, rows = report(data, base)
    with open(base + ".md", "w") as f:
        f.write(md)
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    if rows:
        with open(base + "-ratios.svg", "w") as f:
            f.write(svg_ratios(names, summ, rows, "Wall time relative to the best peer, median of %d rounds (%s)" %
                               (meta["rounds"], meta["commit"])))
    if sp:
        with open(base + "-scaling.svg", "w") as f:
            f.write(svg_scaling(sp, names, meta["threads"], "Scaling (%s, nproc %d)" % (meta["commit"], meta["nproc"])))
    return base, md


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run, 1 round")
    ap.add_argument("--threads", default=os.environ.get("THREADS", ""), help="thread counts, e.g. 1,2,4 (default 1,2,nproc)")
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--scale", type=float, default=0)
    ap.add_argument("--traces", default="../shared/traces", help="folder of .rep traces, relative to the repo root")
    ap.add_argument("--replay", default=REPLAY[0], help="the trace replayer (tests' replay_rep)")
    ap.add_argument("--allocators", default="", help="comma list, default all available")
    ap.add_argument("--groups", default="", help="comma list of micro,alloc,program,trace,check")
    ap.add_argument("--only", default="", help="regular expression on the row labels")
    ap.add_argument("--out", default="", help="results folder (default bench/results, QUICK build/bench/results)")
    ap.add_argument("--no-fastpath", dest="fastpath", action="store_false")
    ap.add_argument("--fastpath-only", action="store_true", help="only the callgrind instruction counts")
    ap.add_argument("--report", default="", help="regenerate Markdown and SVG from a raw .json")
    ap.add_argument("--note", default=os.environ.get("BENCH_NOTE", ""),
                    help="a sentence for the report's header: where and how it was run")
    ap.add_argument("--suffix", default="", help="appended to the results' file names, e.g. -16cores")
    args = ap.parse_args()
    os.chdir(ROOT)
    REPLAY[0] = args.replay
    if args.report:
        data = json.load(open(args.report))
        base, md = write_outputs(data, os.path.dirname(os.path.abspath(args.report)),
                                 os.path.basename(args.report)[:-5])
        print(md)
        return 0
    if args.fastpath_only:
        allocs, notes = discover_allocators(args.allocators.split(",") if args.allocators else None)
        for n in notes:
            log("note: " + n)
        fp = fastpath(allocs)
        lines = ["Fast path, instructions counted by callgrind (commit %s, %s)" % (git_commit(), cpu_model()), ""]
        lines += fastpath_table(fp, [a["name"] for a in allocs])
        os.makedirs("build/bench", exist_ok=True)
        with open("build/bench/fastpath.md", "w") as f:
            f.write("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0 if fp and all(v is not None for c in fp["counts"].values() for v in c.values()) else 1
    data = run_all(args)
    outdir = args.out or ("build/bench/results" if args.quick else "bench/results")
    base, md = write_outputs(data, outdir, "%s-%s%s" % (data["meta"]["date"].split()[0],
                                                         data["meta"]["commit"].replace("+", "-"), args.suffix))
    print(md)
    log("results: %s.md" % os.path.relpath(base))
    bad = sum(1 for by in data["runs"].values() for rs in by.values() for r in rs if r["status"] != "ok")
    bad += sum(1 for by in data.get("check", {}).get("runs", {}).values() for rs in by.values() for r in rs
               if r["status"] != "ok")
    if bad:
        log("%d run(s) failed; see the Failures section" % bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
