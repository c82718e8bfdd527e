#!/usr/bin/python3
"""docs_figures.py -- everything `make docs` writes (docs/docs.mk runs it).

  docs/figures/*.svg  pictures of tessera's heap from real runs: `tessera map`
                      replays a malloc-lab trace and writes an HTML page whose
                      script draws SVG; headless chromium runs that script and
                      we cut the drawn <svg> (with its legend) out of the page;
  docs/design.md      the captions of those figures, the fragmentation figures
                      of `tessera run --stats` on a real program and the
                      fast-path instruction counts;
  README.md           a `tessera check` report, and the comparison with the peer
                      allocators (from the newest complete bench/results/*.md)
                      and with ASan and Valgrind (the newest with a "Checking
                      mode" section).

Only text between <!-- docs:NAME --> and <!-- /docs:NAME --> is rewritten, so
a second run changes nothing but measured noise. No figure in those regions
is typed by hand. Addresses are made repeatable with `setarch -R` (no ASLR)
where the kernel allows it; RSS, and the pages and spans of a moment (purges
and housekeeping run on the clock), still vary a little from run to run.
Usage: scripts/docs_figures.py [--traces DIR] [--results DIR] [--only figures,stats,check,readme]
"""
import argparse
import glob
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = "build/tessera"
FIG_DIR = "docs/figures"

# ---- the figures: (file, trace, snapshot, part) ------------------------------------
# binary2-bal asks for three sizes only, so its pages are few and each one
# class; random-bal allocates blocks of many sizes, up to a peak of several
# MiB, and frees them all, which leaves free spans between pages.
# snapshot: "peak" (most live bytes), "end", or "most-free-spans" (the moment
# the heap held the most free spans between its pages). part: "map" is panel
# (a) of the page, the address space; "chart" is panel (b), memory over time.
FIGURES = [
    ("pages", "binary2-bal.rep", "peak", "map"),
    ("spans", "random-bal.rep", "most-free-spans", "map"),
    ("spans-end", "random-bal.rep", "end", "map"),
    ("memory", "random-bal.rep", "most-free-spans", "chart"),
]

# The real program whose exit statistics design.md quotes: perl keeps its
# data until exit (it skips its own teardown), so the heap is still full.
STATS_CMD = ["perl", "bench/programs/strings.pl", "3", "20000"]


def log(msg):
    print("docs: " + msg, file=sys.stderr)


def die(msg):
    log(msg)
    sys.exit(1)


def run(argv, **kw):
    """Run argv from the repository root; stop with its output if it fails."""
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)
    if r.returncode != 0:
        die("%s failed (status %d):\n%s" % (" ".join(argv), r.returncode, (r.stdout + r.stderr)[-3000:]))
    return r


def rel(path):
    return os.path.relpath(path, ROOT)


def human(b):
    """Bytes as the map page and the stats print them (1024-based, one decimal)."""
    units = ["B", "KiB", "MiB", "GiB"]
    i = 0
    b = float(b)
    while b >= 1024 and i < 3:
        b /= 1024
        i += 1
    return ("%.1f %s" % (b, units[i])) if i else ("%d B" % b)


# ---- marker regions -------------------------------------------------------------

def replace_region(path, name, body):
    """Replace what lies between <!-- docs:name --> and <!-- /docs:name -->."""
    full = os.path.join(ROOT, path)
    with open(full) as f:
        text = f.read()
    begin, end = "<!-- docs:%s -->" % name, "<!-- /docs:%s -->" % name
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        die("%s has no %s ... %s region" % (path, begin, end))
    new = text[:i + len(begin)] + "\n" + body.rstrip("\n") + "\n" + text[j:]
    if new != text:
        with open(full, "w") as f:
            f.write(new)
    return new != text


# ---- figures: tessera map, rendered by chromium -----------------------------------

def find_chromium():
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    die("chromium is needed to run the map page's script (apt-get install chromium, or make deps)")


def no_aslr_prefix():
    """setarch -R makes mmap addresses, hence the figures, repeatable."""
    try:
        if subprocess.run(["setarch", "-R", "true"], capture_output=True).returncode == 0:
            return ["setarch", "-R"]
    except OSError:
        pass
    return []


def map_trace(trace, out):
    run(no_aslr_prefix() + [CLI, "map", trace, "-o", out])
    with open(out) as f:
        page = f.read()
    m = re.search(r'<script id="heap-data" type="application/json">(.*?)</script>', page, re.S)
    if not m:
        die("%s: no heap-data in the page tessera map wrote" % out)
    return page, json.loads(m.group(1))


def pick_snapshot(data, how):
    snaps = data["snapshots"]
    if how == "end":
        return len(snaps) - 1
    if how == "peak":
        return next(k for k, s in enumerate(snaps) if s["label"] and "peak" in s["label"].split())
    if how == "most-free-spans":
        counts = [sum(1 for a in s["areas"] if a[0] == 4) for s in snaps]
        return counts.index(max(counts))
    die("unknown snapshot %r" % how)


def render(chromium, page, snapshot, tmp):
    """The page's DOM after its script drew snapshot k (drawMap is the page's own)."""
    path = os.path.join(tmp, "page.html")
    with open(path, "w") as f:
        f.write(page.replace("</body>", "<script>drawMap(%d);</script>\n</body>" % snapshot))
    argv = [chromium, "--headless", "--disable-gpu", "--hide-scrollbars",
            "--user-data-dir=" + os.path.join(tmp, "profile"), "--dump-dom", "file://" + path]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")   # chromium refuses to run as root with its sandbox
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or "<svg" not in r.stdout:
        die("chromium could not render the map page:\n" + r.stderr[-2000:])
    return r.stdout


def cut(dom, tag, ident):
    m = re.search(r'<%s id="%s"[^>]*>.*?</%s>' % (tag, ident, tag), dom, re.S)
    if not m:
        die("the rendered page has no <%s id=%s>" % (tag, ident))
    return m.group(0)


def text_of(fragment):
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def legend_items(dom, ident):
    """(color, label) of the page's HTML legend, to draw it inside the SVG."""
    div = cut(dom, "div", ident)
    return [(c, html.unescape(t)) for c, t in
            re.findall(r'<span><i style="background:\s*([^;"]+)[^"]*"></i>([^<]*)</span>', div)]


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def compose(title, lines, svg, legend, width=1000):
    """One standalone SVG: a title, the page's own lines of text, the drawn
    panel, and the legend (only the colors the panel uses)."""
    w = re.search(r'\swidth="(\d+)"', svg.split(">", 1)[0])
    h = re.search(r'\sheight="([\d.]+)"', svg.split(">", 1)[0])
    body = svg.split(">", 1)[1]
    body = body[:body.rfind("</svg>")]
    out, y = [], 18
    out.append('<text x="0" y="%d" class="title">%s</text>' % (y, esc(title)))
    for line in lines:
        y += 15
        out.append('<text x="0" y="%d" class="note">%s</text>' % (y, esc(line)))
    y += 10
    panel_h = float(h.group(1)) if h else 40
    out.append('<svg x="0" y="%d" width="%s" height="%g">%s</svg>' % (y, w.group(1) if w else width, panel_h, body))
    y += panel_h + 8
    x = 0
    for color, label in legend:
        if color not in svg:
            continue
        item = 18 + 7 * len(label) + 12
        if x + item > width:
            x, y = 0, y + 16
        out.append('<rect x="%d" y="%g" width="12" height="12" fill="%s" stroke="#bbb" stroke-width="0.5"/>' %
                   (x, y, color))
        out.append('<text x="%d" y="%g" class="note">%s</text>' % (x + 16, y + 10, esc(label)))
        x += item
    y += 20
    doc = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">\n'
           '<style>text { font: 10px monospace; fill: #444; } .title { font: bold 13px sans-serif; fill: #222; }'
           ' .note { font: 11px sans-serif; fill: #444; }</style>\n'
           '<rect width="100%%" height="100%%" fill="#fff"/>\n%s\n</svg>\n' %
           (width, y, width, y, "\n".join(out)))
    ET.fromstring(doc)     # must be well-formed XML, or browsers show nothing
    return doc


def snapshot_facts(data, k):
    """What the caption says about snapshot k, all read from the run's JSON."""
    s = data["snapshots"][k]
    kinds = {}
    for a in s["areas"]:
        kinds[a[0]] = kinds.get(a[0], 0) + 1
    classes = sorted({a[3] for a in s["areas"] if a[0] == 1})
    free = [a for a in s["areas"] if a[0] == 4]
    return {"at": s["at"], "ops": data["ops"], "label": s["label"], "live": s["live"], "in_use": s["in_use"],
            "mapped": s["mapped"], "rss": s["rss"], "pages": kinds.get(1, 0), "large": kinds.get(2, 0),
            "free_spans": len(free), "purged_spans": sum(1 for a in free if a[8]),
            "free_span_bytes": sum(a[2] for a in free), "classes": classes,
            "peak_live": data["peak_live"], "peak_at": data["peak_at"]}


def make_figures(traces):
    chromium = find_chromium()
    os.makedirs(os.path.join(ROOT, FIG_DIR), exist_ok=True)
    facts = {}
    with tempfile.TemporaryDirectory(prefix="tessera-docs-") as tmp:
        maps = {}
        for name, trace, how, part in FIGURES:
            path = os.path.join(traces, trace)
            if not os.path.exists(path):
                die("%s not found (set TRACES=dir, default ../shared/traces)" % rel(path))
            if trace not in maps:
                maps[trace] = map_trace(path, os.path.join(tmp, trace + ".html"))
            page, data = maps[trace]
            k = pick_snapshot(data, how)
            dom = render(chromium, page, k, tmp)
            when = text_of(cut(dom, "span", "when"))
            if part == "map":
                doc = compose("tessera map %s: address space" % trace, [when], cut(dom, "svg", "map"),
                              legend_items(dom, "legend"))
            else:
                doc = compose("tessera map %s: memory over the trace" % trace,
                              ["dashed line: the moment of the address-space picture (" + when.split(":")[0] + ")"],
                              cut(dom, "svg", "chart"), legend_items(dom, "chart-legend"))
            out = os.path.join(ROOT, FIG_DIR, name + ".svg")
            with open(out, "w") as f:
                f.write(doc)
            facts[name] = dict(snapshot_facts(data, k), trace=trace, when=when, file=FIG_DIR + "/" + name + ".svg")
            log("wrote %s (%s, snapshot %d: %s)" % (rel(out), trace, k, when))
    return facts


def fig_md(f, number, title, text):
    return ("![%s](%s)\n\n*Figure %d. %s* From `tessera map ../shared/traces/%s` (a malloc-lab trace replayed "
            "against `build/libtessera.so`), %s; `make docs` regenerates it, and the same command with "
            "`-o heap.html` gives the interactive page." %
            (title, f["file"].replace("docs/", ""), number, text, f["trace"], f["when"].split(":")[0]))


def figure_regions(facts):
    p = facts["pages"]
    sizes = ", ".join("%d" % c for c in p["classes"])
    slack = p["in_use"] - p["live"]
    rounding = ("the trace asks only for sizes that are block sizes, so the rounding costs nothing" if slack == 0
                else "the rounding to block sizes (internal fragmentation) costs %s" % human(slack))
    replace_region("docs/design.md", "fig-pages", fig_md(
        p, 1, "pages of one size class",
        "Pages of one size class each (block sizes %s bytes): %d pages holding %s of live payload in %s of "
        "blocks; %s. The dark tile is the segment's descriptors%s." %
        (sizes, p["pages"], human(p["live"]), human(p["in_use"]), rounding,
         ", the dashed one the rest of the segment: one free span, not resident"
         if p["free_spans"] == 1 and p["purged_spans"] == 1 else "")))
    s, e = facts["spans"], facts["spans-end"]
    replace_region("docs/design.md", "fig-spans", fig_md(
        s, 2, "free spans between pages",
        "Spans while blocks of many sizes are being freed: %d pages and %d free spans (grey; dashed outline: "
        "already returned to the OS, %d of them), %s of free spans in all. No two free spans are ever side by "
        "side: a span that becomes free merges with its free neighbours at once." %
        (s["pages"], s["free_spans"], s["purged_spans"], human(s["free_span_bytes"]))) + "\n\n" + fig_md(
        e, 3, "the same heap at the end",
        "The same run at its end, every block freed: %d pages%s are left, and between them %d free spans. "
        "The empty first page of a class is kept for the next malloc of that size, or until the next "
        "housekeeping (see \"Giving memory back\"), and until it goes, the free spans on either side of it "
        "cannot merge." % (e["pages"], (", all empty" if e["live"] == 0 else "") +
                          (", one per size class," if len(e["classes"]) == e["pages"] else ""), e["free_spans"])))
    m = facts["memory"]
    replace_region("docs/design.md", "fig-memory", fig_md(
        m, 4, "memory over the trace",
        "Bytes over the run of figures 2 and 3: live payload (what the trace holds), in use (tessera's block "
        "sizes: the gap is internal fragmentation), mapped (address space taken from the OS) and the process's "
        "RSS. At the dashed line, the moment of figure 2: live %s, in use %s, mapped %s, RSS %s; the trace's "
        "peak of live payload is %s." %
        (human(m["live"]), human(m["in_use"]), human(m["mapped"]), human(m["rss"]), human(m["peak_live"]))))


# ---- fragmentation of a real program: tessera run --stats ---------------------------

def make_stats():
    with tempfile.TemporaryDirectory(prefix="tessera-docs-") as tmp:
        out = os.path.join(tmp, "stats.json")
        env = dict(os.environ, TESSERA_STATS_FILE=out)
        run([CLI, "run", "--stats=json", "--"] + STATS_CMD, env=env)
        with open(out) as f:
            s = json.loads(f.read())
    live = s["in_use_bytes"] - s["slack_bytes"]
    small = s["page_bytes"]
    rows = [
        ("live data (requested bytes of live blocks)", live, ""),
        ("size-class slack: **internal fragmentation**", s["slack_bytes"],
         "%.1f %% of the live blocks' bytes" % (100.0 * s["slack_bytes"] / max(1, s["in_use_bytes"]))),
        ("free blocks inside pages in use: **external fragmentation**", s["free_block_bytes"],
         "%.1f %% of the bytes of pages and large blocks (%s)" %
         (100.0 * s["free_block_bytes"] / max(1, small), human(small))),
        ("allocator metadata (segment headers, heaps)", s["metadata_bytes"], ""),
        ("returned to the OS with madvise during the run", s["purged_bytes"],
         "%d madvise calls, %d mmap, %d munmap" % (s["os_purge_count"], s["os_map_count"], s["os_unmap_count"])),
        ("process RSS at exit (program, libraries, stacks included)", s["rss_bytes"], ""),
    ]
    lines = ["`tessera run --stats -- %s` (run by `make docs`; %s), at exit: %d malloc, %d realloc, "
             "%d free calls." % (" ".join(STATS_CMD), s["tessera"], s["malloc_count"], s["realloc_count"],
                                 s["free_count"]), "",
             "| | bytes | |", "|---|---|---|"]
    for label, v, note in rows:
        lines.append("| %s | %s | %s |" % (label, human(v), note))
    replace_region("docs/design.md", "frag-stats", "\n".join(lines))
    log("fragmentation figures from: tessera run --stats -- " + " ".join(STATS_CMD))


# ---- a tessera check report, for the README ---------------------------------------

CHECK_PROG = "build/tests/wrong/double_free"   # tests/wrong/double_free.c: free(p) twice


def make_check_example():
    if not os.access(os.path.join(ROOT, CHECK_PROG), os.X_OK):
        die("%s is missing (make %s)" % (CHECK_PROG, CHECK_PROG))
    r = subprocess.run(no_aslr_prefix() + [CLI, "check", "--", CHECK_PROG], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    out = ["```console", "$ tessera check -- " + CHECK_PROG]
    out += (r.stdout + r.stderr).rstrip("\n").splitlines()
    out += ["$ echo $?", str(r.returncode), "```"]
    replace_region("README.md", "check-example", "\n".join(out))
    log("check example from: tessera check -- " + CHECK_PROG)


# ---- bench results: the newest file with each part ---------------------------------

def results_files(folder):
    """The *.md reports of `make bench` in folder, newest first (by the run
    time they state: a checkout does not keep file times)."""
    out = []
    for path in glob.glob(os.path.join(folder, "*.md")):
        with open(path) as f:
            text = f.read()
        m = re.match(r"# Benchmark run (\d{4}-\d\d-\d\d \d\d:\d\d), commit (\S+)", text)
        if m:
            out.append((m.group(1), os.path.getmtime(path), path, m.group(2), text))
    return sorted(out, reverse=True)


def sections(text):
    parts = re.split(r"^## ", text, flags=re.M)
    return {p.split("\n", 1)[0].strip(): p for p in parts[1:]}


def cells(line):
    return [c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]


def table_rows(section, header_start=None):
    """(header cells, rows) of the first table in section (or the one whose
    header begins with header_start)."""
    lines = [l for l in section.splitlines()]
    for i, l in enumerate(lines):
        if l.startswith("|") and (header_start is None or l.startswith(header_start)):
            rows = []
            for r in lines[i + 2:]:
                if not r.startswith("|"):
                    break
                rows.append(cells(r))
            return cells(l), rows
    return None, None


def find_section(files, prefix, need=()):
    """The section whose title starts with prefix, from the newest file that
    has it and every section in need: one table never mixes runs (a partial
    run, BENCH_ONLY or another machine, lacks some parts and is passed over)."""
    for when, _, path, commit, text in files:
        secs = sections(text)
        if not all(any(t.startswith(n) for t in secs) for n in need):
            continue
        machine = re.search(r"^Machine: ([^,\n]+), nproc (\d+)", text, re.M)
        for title, body in secs.items():
            if title.startswith(prefix):
                return {"path": rel(path), "when": when, "commit": commit, "title": title, "body": body,
                        "machine": "%s, %s cores" % machine.groups() if machine else "machine not stated"}
    return None


def geomean_row(rows):
    return next((r for r in rows if r[0].startswith("geomean")), None)


def source(sec, doc="README.md"):
    """A link to the results file, relative to the document that shows it."""
    link = os.path.relpath(sec["path"], os.path.dirname(doc) or ".")
    return "[`%s`](%s) (%s, commit %s, %s)" % (os.path.basename(sec["path"]), link, sec["when"], sec["commit"],
                                              sec["machine"])


def make_readme(results):
    files = results_files(results)
    if not files:
        die("no bench/results/*.md: run make bench first")
    full = ("Wall time", "Peak RSS", "Trace replay", "Fast path")
    wall, rss = find_section(files, "Wall time", full), find_section(files, "Peak RSS", full)
    trace, fast = find_section(files, "Trace replay", full), find_section(files, "Fast path", full)
    check = find_section(files, "Checking mode")
    out = []
    if wall:
        head, rows = table_rows(wall["body"])
        names = head[1:]
        out.append("| | " + " | ".join(names) + " |")
        out.append("|---" * (len(names) + 1) + "|")

        def add(label, sec, pick):
            if sec is None:
                return
            h, rs = table_rows(sec["body"])
            vals = pick(h, rs)
            if vals:
                out.append("| %s | %s |" % (label, " | ".join(vals.get(n, "-") for n in names)))

        def geo(h, rs):
            g = geomean_row(rs)
            return dict(zip(h[1:], g[1:])) if g else None
        add("wall time: geomean of ratios to the best peer, %d workloads (lower is better)" %
            len([r for r in rows if not r[0].startswith("geomean")]), wall, geo)
        add("peak RSS: geomean of ratios to the best peer (lower is better)", rss, geo)
        if trace:
            n = re.search(r"cover the (\d+) traces", trace["body"])
            ntr = n.group(1) if n else "the larger"

            def tr(h, rs, suffix):
                g = geomean_row(rs)
                return {c[:-len(suffix)].strip(): v for c, v in zip(h, g) if c.endswith(suffix)} if g else None
            add("trace replay: M requests/s, geomean of %s traces (higher is better)" % ntr, trace,
                lambda h, rs: tr(h, rs, "Mops/s"))
            add("trace replay: utilization = peak live / peak RSS growth, geomean (higher is better)", trace,
                lambda h, rs: tr(h, rs, "util"))
        if fast:
            def fp(letter):
                def f(h, rs):
                    r = next((r for r in rs if r[0].startswith("(%s)" % letter)), None)
                    return dict(zip(h[1:], r[1:])) if r else None
                return f
            add("fast path: instructions per malloc + free + loop, sizes 16..256 (callgrind)", fast, fp("a"))
            add("fast path: instructions per pair, 256 random sizes freed shuffled (callgrind)", fast, fp("b"))
        srcs = []
        for sec in (wall, rss, trace, fast):
            if sec and source(sec) not in srcs:
                srcs.append(source(sec))
        out.append("")
        out.append("From " + ", ".join(srcs) + ", the newest complete `make bench` report; every workload "
                   "and command line is in that file, and `docs/benchmarks.md` explains them.")
    else:
        out.append("No `make bench` results in `bench/results/` yet.")
    out.append("")
    if check:
        body = check["body"]
        scale = re.search(r"at 1/(\d+) of the work", body)
        div = scale.group(1) if scale else "?"
        out.append("| checking | glibc | tessera check | ASan | Valgrind memcheck |")
        out.append("|---|---|---|---|---|")
        for what, key in (("wall time", "| workload: wall"), ("CPU time", "| workload: CPU"),
                          ("peak RSS", "| workload: peak RSS")):
            h, rs = table_rows(body, key)
            if not h:
                continue
            keys = ["label", "glibc", "check", "asan", "glibc-small", "valgrind"]
            col = dict(zip(keys, geomean_row(rs)))
            # Not every workload runs under ASan and Valgrind: count each column's own.
            count = {k: sum(1 for r in rs if not r[0].startswith("geomean") and len(r) > i and "(" in r[i])
                     for i, k in enumerate(keys)}
            out.append("| %s: geomean of ratios to glibc | 1.00 | %s | %s | %s |" %
                       (what, *("%s (%d workloads)" % (col[k], count[k]) if col.get(k) else "-"
                                for k in ("check", "asan", "valgrind"))))
        out.append("")
        out.append("From %s, section \"Checking mode\": tessera check with its defaults (leak scan included), "
                   "the same workloads built with `-fsanitize=address`, and Valgrind memcheck at 1/%s of the work "
                   "against glibc at that scale (so its ratio includes Valgrind's start-up). What each one "
                   "finds: `docs/check.md`." % (source(check), div))
    else:
        out.append("Checking mode (tessera check against ASan and Valgrind memcheck): no figures yet. No report in "
                   "`bench/results/` has the \"Checking mode\" section (the newest is %s); the next `make bench` "
                   "writes it. What each one finds: `docs/check.md`." % os.path.basename(files[0][2]))
    replace_region("README.md", "comparison", "\n".join(out))
    fast_line = "not measured yet (`make fastpath`)."
    if fast:
        h, rs = table_rows(fast["body"])
        r = next((r for r in rs if r[0].startswith("(a)")), None)
        if r:
            v = dict(zip(h[1:], r[1:]))
            fast_line = ("%s instructions per iteration of a malloc, one store, free loop (sizes 16..256, loop "
                         "and random numbers included), against %s." %
                         (v.get("tessera", "-"), ", ".join("%s %s" % (n, v[n]) for n in h[1:] if n != "tessera")))
            fast_line += " From %s." % source(fast, "docs/design.md")
    replace_region("docs/design.md", "fastpath", "`make fastpath` (callgrind) measured " + fast_line)
    log("README comparison from: " + ", ".join(sorted({s["path"] for s in (wall, rss, trace, fast, check) if s})))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traces", default=os.environ.get("TRACES", "../shared/traces"))
    ap.add_argument("--results", default="bench/results", help="folder of make bench reports")
    ap.add_argument("--only", default="figures,stats,check,readme")
    args = ap.parse_args()
    only = args.only.split(",")
    traces = args.traces if os.path.isabs(args.traces) else os.path.join(ROOT, args.traces)
    if not os.access(os.path.join(ROOT, CLI), os.X_OK):
        die("%s is missing: run make first" % CLI)
    if "figures" in only:
        figure_regions(make_figures(traces))
    if "stats" in only:
        make_stats()
    if "check" in only:
        make_check_example()
    if "readme" in only:
        make_readme(os.path.join(ROOT, args.results))


if __name__ == "__main__":
    main()
