#!/bin/sh
# gen_tools_md.sh -- regenerate docs/tools.md: run each worked example and
# paste its real output. Run from the repository root after `make`:
#   sh tools/gen_tools_md.sh > docs/tools.md
# Paths of this machine are replaced by placeholders so the file is portable.
# Examples that need build/libtessera.so say so when it is not built yet.
set -u
T=build/tessera
TRACES=${TRACES:-../shared/traces}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export TESSERA_NO_PROGRESS=1
ROOT=$(pwd)

# show CMD...: print the command as typed, run it, print its output.
show() {
  printf '```console\n$ %s\n' "$(printf '%s' "$*" | clean)"
  (cd "$W" && eval "$@" 2>&1) | clean | sed -e 's/pid [0-9]*/pid N/'
  printf '```\n\n'
}
# clean: this machine's folders out, `tessera` for the binary's path.
clean() { sed -e "s|$ROOT/$T|tessera|g" -e "s|$W/||g" -e "s|$W|.|g" -e "s|$ROOT/||g" -e "s|$ROOT|.|g"; }
have_lib() { [ -f build/libtessera.so ]; }
nolib() { printf '*(Not shown: build/libtessera.so was not built when this page was generated; rerun tools/gen_tools_md.sh.)*\n\n'; }

cat <<'EOF'
# The `tessera` command

`build/tessera` (installed as `bin/tessera`) runs programs under tessera and
records, replays, compares and maps their allocations. One dispatcher
(`tools/tessera.c`) and one file per subcommand (`tools/cmd_*.c`); the
recorder is `tools/record/record.c` (`build/libtessera-record.so`). The
command finds its libraries next to itself, or in `../lib` when installed.
Reference: `man docs/tessera.1`, or `tessera help SUBCOMMAND`.

Every example below was produced by `sh tools/gen_tools_md.sh > docs/tools.md`
on the development machine (Debian 12, 2 cores); timings are from that
machine and are only meant to show the format. Traces come from the
malloc-lab set (`$TRACES`, see `../shared/traces/README.md`).

EOF

echo '## help'
show "$ROOT/$T help"
echo 'The options table is generated from `src/options.h`, the table the library reads:'
echo
show "$ROOT/$T help options"

echo '## run'
echo 'Runs a program with `libtessera.so` prepended to `LD_PRELOAD`. `--stats` asks the library for its statistics at exit (`TESSERA_STATS=1`, or `json`). The exit status is the program'"'"'s; a signal gives 128+signal.'
echo
if have_lib; then
  show "$ROOT/$T run --stats -- perl -e 'my %h; \$h{\$_} = [\$_] for 1..10000; print scalar(keys %h), \"\\n\"'"
  show "$ROOT/$T run --stats=json -- perl -e 1"
  echo '(Coreutils programs such as `ls` close their standard error at exit, so statistics written to fd 2 at exit are lost there; use `TESSERA_STATS_FILE`.)'
  echo
else nolib; fi
show "$ROOT/$T run --alloc glibc -- sh -c 'kill -TERM \$\$'; echo \"status \$?\""

echo '## record and convert'
echo 'The recorder logs every call of the allocation API with its thread, size, alignment, result and time, buffered per thread (format: `tools/trace_bin.h`). Here, a perl one-liner building a hash:'
echo
show "$ROOT/$T record -o perl.bin -- perl -e 'my %h; \$h{\$_} = \"x\" x (\$_ % 100) for 1..20000; print scalar(keys %h), \"\\n\"'"
show "$ROOT/$T convert --counts perl.bin"
show "$ROOT/$T convert perl.bin -o perl.rep && head -8 perl.rep"
echo 'A threaded program (`tests/cli/alloc_prog.c`: 4 threads, every function of the API, blocks freed by another thread than the one that allocated them):'
echo
if [ -x build/tests/cli/alloc_prog ]; then
  show "$ROOT/$T record -o threads.bin -- $ROOT/build/tests/cli/alloc_prog 4 1000"
  show "$ROOT/$T convert --counts threads.bin"
fi
echo 'The summary line comes from the chunk headers of the trace (calls and threads per chunk), not from decoding it, so it costs nothing next to the run; `tessera convert --counts` decodes and checks every record.'
echo
echo '### Overhead'
echo 'Per call the recorder adds a thread-local lookup and a few stores into the thread'"'"'s own 128 KiB buffer, with no lock and no loop. malloc and free, nearly every call, take a compact record: a first byte that names the call and the length of each field, then the size and the address in as many bytes as they need (no length bits of their own). A field equal to the thread'"'"'s previous one (the size of a repeated request, the address just freed) costs nothing, and an address is stored as its XOR with the thread'"'"'s previous address, less the 4 low bits that 16-byte alignment keeps at zero, so a malloc/free loop costs 1 byte per call and random sizes and addresses about 4 (larson 3.9; 4.9 with version 2 of the format, whose prefix varints spent a bit per byte on lengths). The clock is not read per call (`rdtsc` costs 28 ns on this virtual machine, more than a malloc/free pair): each thread samples it once per KiB of its records, and notes when another thread sampled it since its last call, which bounds every call from below; the converter merges the threads by those bounds and repairs the order where a free would come before its malloc. `tools/record/overhead.py` runs each workload plain and as `tessera record -- W`, interleaved, both on glibc malloc (the recorder forwards to the next malloc, glibc'"'"'s here), and compares medians of CPU time and wall time (from `tools/record/overhead.md`):'
echo
sed 1,2d tools/record/overhead.md
echo

echo '## replay'
echo 'Each trace against each allocator, each in a fresh process; every byte written, realloc contents and calloc zeros checked:'
echo
ALL=glibc,jemalloc,tcmalloc,mimalloc
have_lib && ALL=tessera,$ALL
show "$ROOT/$T replay --alloc $ALL $ROOT/$TRACES/amptjp-bal.rep $ROOT/$TRACES/realloc-bal.rep perl.bin threads.bin"
echo 'A malformed trace stops everything before the first table, with one message:'
echo
printf '0\n2\n2\n1\na 0 10\na 1\n' > "$W/broken.rep"
show "$ROOT/$T replay --alloc glibc $ROOT/$TRACES/short1-bal.rep broken.rep; echo \"status \$?\""

echo '## compare'
show "$ROOT/$T compare --alloc $ALL --runs 3 -- perl -e 'my %h; \$h{\$_} = [\$_] for 1..300000'"

echo '## map'
if have_lib; then
  show "$ROOT/$T map -o heap.html $ROOT/$TRACES/amptjp-bal.rep"
  echo 'The page is self-contained (inline SVG and script, the data as JSON in `#heap-data`). `make test-cli` renders it in headless Chromium and keeps a screenshot in `build/tests/cli/map-amptjp.png`.'
else
  nolib
  echo 'The page is self-contained (inline SVG and script, the data as JSON in `#heap-data`). `make test-cli` renders it in headless Chromium (with a mock library until libtessera.so exists) and keeps screenshots in `build/tests/cli/`.'
fi
echo
