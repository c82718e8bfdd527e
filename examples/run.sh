#!/bin/sh
# run.sh -- run one example of docs/questions.md the way the page shows it:
# each command is printed after "$ ", then its output (stdout and stderr);
# a non-zero exit status is printed too, since several examples end in an
# error on purpose. `make examples` runs every example through this script,
# `make examples-docs` pastes its output into docs/questions.md, and
# examples/test.sh checks it.
# Usage: sh examples/run.sh NAME [BUILD_DIR]   (BUILD_DIR: default build)
# The binaries must be built (make examples does it). Commands are run from
# the repository root, so the paths printed are relative.
name=$1
B=${2:-build}
E=$B/examples

# run 'COMMAND LINE': print it, run it with sh, report a failure status.
run() {
  printf '$ %s\n' "$1"
  sh -c "$1" 2>&1
  st=$?
  [ $st -eq 0 ] || echo "(exit status $st)"
}

# The disassembly of function $2 in binary $1, without objdump's headers.
disasm() {
  printf '$ objdump -d --no-show-raw-insn --disassemble=%s %s\n' "$2" "$1"
  objdump -d --no-show-raw-insn --disassemble="$2" "$1" | sed -n "/<$2>:/,/^\$/p" | sed '/^$/d'
}

case $name in
realloc_shrink)
  run "$E/realloc_shrink"
  run "LD_PRELOAD=$B/libtessera.so $E/realloc_shrink"
  ;;
sbrk_mmap)
  run "$E/sbrk_mmap $E/mapped.txt"
  run "LD_PRELOAD=$B/libtessera.so $E/sbrk_mmap $E/mapped.txt"
  run "head -n 1 $E/mapped.txt"
  ;;
calloc_cost)
  run "$E/calloc_cost"
  run "LD_PRELOAD=$B/libtessera.so $E/calloc_cost"
  ;;
return_local)
  run "$E/return_local"
  run "$E/return_local free"
  run "$B/tessera check -- $E/return_local free"
  ;;
valgrind_classic)
  run "$B/tessera check -- $E/valgrind_classic"
  if command -v valgrind >/dev/null 2>&1; then
    run "valgrind --leak-check=full $E/valgrind_classic"
  else
    echo "(valgrind is not installed: skipped; make deps installs it)"
  fi
  ;;
alloca_runtime)
  run "$E/alloca_runtime 16 1000 100000"
  disasm "$E/alloca_runtime" use_alloca
  ;;
stack_heap_grow)
  run "$E/stack_heap_grow"
  run "LD_PRELOAD=$B/libtessera.so $E/stack_heap_grow"
  ;;
escape_go)
  if command -v go >/dev/null 2>&1; then
    # The cache under the build folder, no module or network look-ups: the
    # example builds the same everywhere and writes nothing in $HOME.
    case $E in /*) abs=$E ;; *) abs=$PWD/$E ;; esac
    export GOCACHE="$abs/go-cache" GOPATH="$abs/go-path" GO111MODULE=off \
           GOTOOLCHAIN=local GOFLAGS= GOPROXY=off
    run "go version"
    run "go build -gcflags=-m -o $E/escape examples/escape.go"
    run "$E/escape"
  else
    echo "(go is not installed: the Go example is skipped; apt-get install golang-go to run it)"
  fi
  ;;
stack_frame)
  run "$E/stack_frame"
  disasm "$E/stack_frame" square
  disasm "$E/stack_frame" sum_of_squares
  ;;
*)
  echo "run.sh: no example named '$name'" >&2
  exit 2
  ;;
esac
exit 0
