#!/bin/sh
# test.sh -- run every example of docs/questions.md (through run.sh) and
# check what its output must show: the facts the page's answers rest on.
# A check that fails means the page's answer is no longer true (or the
# allocator changed): read the output printed under the FAIL line.
# Usage: sh examples/test.sh [BUILD_DIR]   (run by make test-examples)
B=${1:-build}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
pass=0
skipped=0

ok()  { pass=$((pass + 1)); echo "ok   $cur: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $cur: $1"; sed 's/^/     | /' "$W/$cur.txt" | head -n 60; }
skip() { skipped=$((skipped + 1)); echo "skip $cur: $1"; }
# has REGEX DESCRIPTION: the output has a line matching the extended REGEX.
has() { if grep -Eq -- "$1" "$W/$cur.txt"; then ok "$2"; else bad "$2 (no line matching: $1)"; fi; }
# The output of the command run as "$ PREFIX...", up to the next "$ " line.
section() { awk -v p="\$ $1" 'index($0, "$ ") == 1 { on = index($0, p) == 1; next } on' "$W/$cur.txt"; }
# number AFTER SECTION: the first number after the text AFTER (a regex), without "+".
number() { section "$2" | sed -n "s/.*$1 *[+]*\([-]*[0-9][0-9]*\).*/\1/p" | head -n 1; }
# at_most / at_least VALUE LIMIT DESCRIPTION
at_most()  { if [ -n "$1" ] && [ "$1" -le "$2" ]; then ok "$3 ($1)"; else bad "$3: got '$1', limit $2"; fi; }
at_least() { if [ -n "$1" ] && [ "$1" -ge "$2" ]; then ok "$3 ($1)"; else bad "$3: got '$1', limit $2"; fi; }

E=$B/examples
G="$E/"            # the glibc run's command starts with the binary
T="LD_PRELOAD="    # the tessera run's with the preload

for cur in realloc_shrink sbrk_mmap calloc_cost return_local valgrind_classic \
           alloca_runtime stack_heap_grow escape_go stack_frame; do
  sh examples/run.sh "$cur" "$B" >"$W/$cur.txt" 2>&1
  case $cur in
  realloc_shrink)
    for run in "$G" "$T"; do
      who=glibc; [ "$run" = "$T" ] && who=tessera
      before=$(number "malloc(1000) -> usable" "$run"); after=$(number "to 100 -> usable" "$run")
      [ -n "$before" ] && [ -n "$after" ] && [ "$after" -lt "$before" ] &&
        ok "$who: realloc(1000 -> 100) gives a smaller block ($before -> $after)" ||
        bad "$who: realloc(1000 -> 100) gives a smaller block ('$before' -> '$after')"
      at_most "$(number "realloc to 4 MiB: same address, usable [0-9]* KiB, RSS" "$run")" -32768 \
        "$who: shrinking a touched 64 MiB block in place returns its tail to the OS at once (KiB)"
      at_most "$(number "after malloc_trim(0)" "$run")" -64 \
        "$who: malloc_trim(0) returns the 120 KiB block's freed tail (KiB)"
      at_most "$(number "then malloc_trim(0):" "$run")" -2048 \
        "$who: after free and malloc_trim(0) the 4 MiB that remained are back with the OS (KiB)"
    done
    section "$T" | grep -q 'usable 1024 bytes; realloc to 600 -> usable 1024 bytes, same address' &&
      ok "tessera: a shrink that keeps at least half the block stays in place" ||
      bad "tessera: a shrink that keeps at least half the block stays in place"
    section "$G" | grep -q 'to 100 -> usable [0-9]* bytes, same address' &&
      ok "glibc: shrinks the small block in place" || bad "glibc: shrinks the small block in place"
    at_most "$(number "150 ms later" "$T")" -64 \
      "tessera: the 120 KiB block's memory goes back after the purge delay, without malloc_trim (KiB)"
    ;;
  sbrk_mmap)
    at_least "$(number "the break moved by" "$G")" 4 "glibc: the first malloc moves the break (KiB)"
    at_most "$(number "the break moved by" "$T")" 0 "tessera: malloc never moves the break (KiB)"
    has 'sbrk\(\+64 KiB\): new memory .* in \[heap\]' "sbrk's memory is the [heap] region"
    at_least "$(number "after writing every byte" "$G")" 1000 "an anonymous mapping costs RSS once written (KiB)"
    at_most "$(number "RSS after mmap" "$G")" 64 "an anonymous mapping costs no RSS before it is touched (KiB)"
    has '^read\(\) before munmap: [0-9]+ bytes, the same bytes' "read() sees the stores through a MAP_SHARED mapping at once"
    has '^read\(\) after munmap and close: file size 4096, first line: written through memory at 0x' "the file holds what was written through memory"
    has '^written through memory at 0x' "the file on disk holds it (head)"
    has '/dev/zero.*: 0 non-zero bytes' "a /dev/zero mapping reads as zeros"
    ;;
  calloc_cost)
    for run in "$G" "$T"; do
      who=glibc; [ "$run" = "$T" ] && who=tessera
      at_most "$(number "calloc: *[0-9.]* ms, RSS" "$run")" 16384 \
        "$who: calloc of fresh 64 MiB raises RSS by less than a quarter of it (KiB)"
      at_least "$(number "malloc + memset: *[0-9.]* ms, RSS" "$run")" 49152 \
        "$who: malloc + memset of 64 MiB raises RSS by most of it (KiB)"
      # Only where the kernel maps read faults to its shared zero page: on
      # one that does not, a plain mapping read the same way costs RSS too.
      k=$(number "kernel: reading a fresh 4 MiB mapping ([0-9]* zero bytes): RSS" "$run")
      if [ -n "$k" ] && [ "$k" -le 256 ]; then
        at_most "$(number "reading all of it: 0 non-zero bytes, RSS" "$run")" 1024 \
          "$who: reading untouched calloc memory costs (almost) no RSS (KiB)"
      else
        skip "$who: reading untouched calloc memory costs no RSS: this kernel gives read faults their own pages (a plain mapping too)"
      fi
      section "$run" | grep -q 'calloc after free of a written block: .* 0 non-zero bytes' &&
        ok "$who: calloc of reused memory is zero" || bad "$who: calloc of reused memory is zero"
    done
    ;;
  return_local)
    has '^make_counter\(\) returned 0x[0-9a-f]+, in \[stack\]' "the returned pointer points into the stack"
    has "^main's own local is at +0x[0-9a-f]+: [0-9]+ bytes above it" "the dead frame lies below main's"
    section "$E/return_local free" | grep -q '^(exit status [1-9]' &&
      ok "glibc stops the program at free() of a stack address" || bad "glibc stops the program at free() of a stack address"
    has "^tessera: invalid-free: free of 0x[0-9a-f]+, a pointer tessera never returned" "tessera check reports an invalid free"
    has "is on thread T1's stack .*a pointer to a local variable" "tessera check says the address is on the stack"
    has "in main \./examples/return_local\.c:[0-9]+" "tessera check names the source line of the free"
    section "$B/tessera check" | grep -q '^(exit status 23)' &&
      ok "tessera check exits with its error status" || bad "tessera check exits with its error status"
    ;;
  valgrind_classic)
    for class in heap-buffer-overflow use-after-free double-free memory-leak; do
      has "^tessera: $class:" "tessera check finds the $class"
    done
    has '^tessera: memory-leak: 40 bytes in 1 block is definitely lost' "tessera check: the leak is f()'s 40 bytes"
    if command -v valgrind >/dev/null 2>&1; then
      has '== Invalid write of size 4' "valgrind finds the overrun"
      has '== Invalid read of size 1' "valgrind finds the read after free"
      has '== Conditional jump or move depends on uninitialised value' "valgrind finds the uninitialised value"
      has '== Invalid free\(\)' "valgrind finds the double free"
      has '== +definitely lost: 40 bytes in 1 blocks' "valgrind finds the leak"
    else
      has 'valgrind is not installed: skipped' "valgrind absent: skipped with a message"
    fi
    ;;
  alloca_runtime)
    for n in 16 1000 100000; do
      below=$(sed -n "s/^alloca( *$n) = 0x[0-9a-f]* in \[stack\], *\([0-9]*\) bytes below.*/\1/p" "$W/$cur.txt")
      at_least "$below" "$n" "alloca($n) is in [stack], at least $n bytes below the frame's local"
    done
    has "before ([0-9]+), after \1 \(mallinfo2\)" "malloc's byte count does not change"
    has 'stack limit: killed by signal 11' "an alloca larger than the stack limit kills the program"
    has 'sub +%r[a-z0-9]+,%rsp' "the disassembly moves the stack pointer by a register (the run-time size)"
    ;;
  stack_heap_grow)
    downs=$(grep -c '^recursion depth [1-9]: local at 0x[0-9a-f]*  (-[0-9]* bytes)' "$W/$cur.txt")
    at_least "$downs" 8 "each deeper frame is below its caller's, in both runs (lines)"
    for run in "$G" "$T"; do
      who=glibc; [ "$run" = "$T" ] && who=tessera
      ups=$(section "$run" | grep -c '^malloc(32) #[2-9]: 0x[0-9a-f]*  (+[0-9]* bytes)')
      at_least "$ups" 5 "$who: successive malloc(32) in a fresh heap go up (lines)"
      at_least "$(number "\[stack\] now starts" "$run")" 1024 "$who: the [stack] mapping grows down as frames use it (KiB)"
    done
    at_least "$(number "malloc(32) #2: 0x[0-9a-f]*  (" "$G")" 40 "glibc: a 32-byte block takes room for a header too (bytes)"
    at_most "$(number "malloc(32) #2: 0x[0-9a-f]*  (" "$T")" 32 "tessera: a 32-byte block takes 32 bytes (bytes)"
    at_least "$(number "the break (top of \[heap\]) moved up by" "$G")" 64 "glibc: the heap grows up with the break (KiB)"
    at_most "$(number "the break (top of \[heap\]) moved up by" "$T")" 0 "tessera: never moves the break (KiB)"
    ;;
  escape_go)
    if command -v go >/dev/null 2>&1; then
      has 'escape\.go:[0-9]+:[0-9]+: moved to heap: counter' "go build -gcflags=-m moves the returned local to the heap"
      has 'heap allocations per call: newCounter 1, sumTo 0' "only the escaping local costs a heap allocation"
    else
      has 'go is not installed: the Go example is skipped' "go absent: skipped with a message"
    fi
    ;;
  stack_frame)
    ra=$(sed -n 's/^  \[%rbp + 8\] = \(0x[0-9a-f]*\)  return address (__builtin_return_address(0) = \(0x[0-9a-f]*\),.*/\1 \2/p' "$W/$cur.txt")
    [ -n "$ra" ] && [ "${ra% *}" = "${ra#* }" ] && ok "[%rbp+8] holds the return address" ||
      bad "[%rbp+8] holds the return address ('$ra')"
    fp_main=$(sed -n "s/^main's frame pointer = \(0x[0-9a-f]*\) .*/\1/p" "$W/$cur.txt")
    fp_saved=$(sed -n "s/^  \[%rbp + 0\] = \(0x[0-9a-f]*\)  main's frame pointer.*/\1/p" "$W/$cur.txt")
    [ -n "$fp_main" ] && [ "$fp_main" = "$fp_saved" ] && ok "[%rbp] holds the caller's frame pointer" ||
      bad "[%rbp] holds the caller's frame pointer ('$fp_main' vs '$fp_saved')"
    has '^  local\[1\] at %rbp -[0-9]+, local\[0\] at %rbp -[0-9]+' "the locals are below %rbp"
    has '^sum_of_squares\(3, 4\) = 25$' "sum_of_squares works"
    body=$(section "objdump -d --no-show-raw-insn --disassemble=sum_of_squares")
    saved=$(echo "$body" | sed -n 's/.*push *\(%rbx\|%r1[2-5]\)$/\1/p' | head -n 1)
    [ -n "$saved" ] && echo "$body" | grep -q "pop *$saved\$" &&
      ok "sum_of_squares saves and restores callee-saved $saved around its calls" ||
      bad "sum_of_squares saves and restores a callee-saved register"
    [ "$(echo "$body" | grep -c 'call .*<square>')" -eq 2 ] && ok "sum_of_squares calls square twice" ||
      bad "sum_of_squares calls square twice"
    section "objdump -d --no-show-raw-insn --disassemble=square" | grep -q 'push' &&
      bad "square (a leaf) pushes nothing" || ok "square (a leaf) pushes nothing"
    ;;
  esac
done
echo "examples: $pass passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ]
