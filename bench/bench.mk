# bench.mk -- the benchmarks, included by the top-level Makefile.
#
#   make bench            every workload under tessera (when build/libtessera.so
#                         exists) and the peers, ROUNDS=3 interleaved rounds;
#                         report in bench/results/<date>-<commit>.{md,json,svg}
#   make bench QUICK=1    seconds-long smoke run, report in build/bench/results
#   make bench-quick      the same smoke run for the test suite: no package
#                         installs, fails on a crash or a wrong check value
#   make fastpath         callgrind instruction counts of two malloc/free loops
#   make bench BENCH_GROUPS=check   only the "Checking mode" section: the
#                         allocation-heavy workloads under glibc, tessera check,
#                         ASan (build/bench/asan/) and Valgrind memcheck
# Knobs: THREADS=1,2,4 (default 1,2,nproc), ROUNDS=, TRACES= (folder of .rep,
# default ../shared/traces), BENCH_ONLY= (regex on row labels), PYTHON=,
# BENCH_GROUPS= (comma list of micro,alloc,program,trace,check; default all).
# The workloads are built apart from the library on purpose: they must run
# unchanged under every allocator through LD_PRELOAD.

PYTHON     ?= python3
TRACES     ?= ../shared/traces
ROUNDS     ?=
THREADS    ?=
QUICK      ?=
BENCH_ONLY ?=
BENCH_GROUPS ?=

# -fno-builtin-*: GCC may delete a malloc/free pair whose block is unused;
# the workloads measure exactly such pairs.
BENCH_CFLAGS := $(CSTD) -O2 $(WARN) -pthread -fno-builtin-malloc -fno-builtin-free \
                -fno-builtin-calloc -fno-builtin-realloc
BENCH_WORKLOADS := micro larson prodcons cache churn bigblock pool
# The checking-mode section's ASan column: the same workloads built with
# -fsanitize=address, only where the compiler can link it (no hard dependency).
# The instrumented code makes GCC see impossible calloc sizes in wl.h: not an error.
BENCH_ASAN_OK := $(shell echo 'int main(void){return 0;}' | $(CC) -fsanitize=address -x c - -o /dev/null 2>/dev/null && echo 1)
BENCH_ASAN := $(if $(BENCH_ASAN_OK),$(addprefix build/bench/asan/,$(BENCH_WORKLOADS)))
# The trace replayer is the test suite's (tests/programs/replay_rep.c over
# tools/trace.c, rule in tests/tests.mk): one parser and one replay engine.
BENCH_REPLAY := build/tests/replay_rep
BENCH_BINS := $(addprefix build/bench/,$(BENCH_WORKLOADS)) $(BENCH_REPLAY) build/bench/fastpath \
              build/bench/measure $(BENCH_ASAN)
# Benchmark tessera as built from this tree whenever the tree has its sources.
BENCH_LIB  := $(if $(wildcard src/unity.c),$(LIB_SO))
BENCH_ARGS := --traces "$(TRACES)" --replay $(BENCH_REPLAY) $(if $(THREADS),--threads "$(THREADS)") $(if $(ROUNDS),--rounds $(ROUNDS)) \
              $(if $(BENCH_ONLY),--only "$(BENCH_ONLY)") $(if $(BENCH_GROUPS),--groups "$(BENCH_GROUPS)")

.PHONY: bench bench-quick bench-bins fastpath

$(addprefix build/bench/,$(BENCH_WORKLOADS)): build/bench/%: bench/workloads/%.c bench/workloads/wl.h | build/bench
	$(CC) $(BENCH_CFLAGS) $< -o $@

$(BENCH_ASAN): build/bench/asan/%: bench/workloads/%.c bench/workloads/wl.h
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -Wno-alloc-size-larger-than -fsanitize=address -fno-omit-frame-pointer $< -o $@

# -fno-builtin: the loop must call the preloaded malloc and free every time.
build/bench/fastpath: bench/fastpath.c | build/bench
	$(CC) $(CSTD) -O2 $(WARN) -fno-builtin $< -o $@

build/bench/measure: bench/measure.c | build/bench
	$(CC) $(CSTD) -O2 $(WARN) $< -o $@

bench-bins: $(BENCH_BINS)

bench: $(BENCH_BINS) $(BENCH_LIB) $(if $(BENCH_LIB),$(LIB_CHECK) $(CLI))
	sh scripts/deps.sh
	$(PYTHON) bench/run.py $(if $(QUICK),--quick) $(BENCH_ARGS)

bench-quick: $(BENCH_BINS) $(BENCH_LIB) $(if $(BENCH_LIB),$(LIB_CHECK) $(CLI))
	sh bench/test_measure.sh
	$(PYTHON) bench/run.py --quick $(BENCH_ARGS)

fastpath: build/bench/fastpath $(BENCH_LIB)
	$(PYTHON) bench/run.py --fastpath-only

# ---- make hardening-cost: what each piece of the default hardening costs ----
#   make hardening-cost   the default library against variants built from the
#                         same sources with one piece taken out (the test-only
#                         TSR_HARDEN_NO_* switches of src/internal.h), and
#                         TESSERA_SECURE=1 against the default; report in
#                         bench/results/<date>-<commit>-hardening.{md,json}
# Knobs: ROUNDS= (CPU-time rounds, default 5), HARDEN_ARGS= (more options of
# bench/hardening_cost.py, e.g. --ir-scale 0.05 --no-ir), THREADS, TRACES,
# BENCH_ONLY as for make bench.
HARDEN_VARIANTS := no-free-checks no-link-encoding no-guard-pages
HARDEN_DEFS_no-free-checks   := -DTSR_HARDEN_NO_FREE_CHECKS
HARDEN_DEFS_no-link-encoding := -DTSR_HARDEN_NO_LINK_ENCODING
HARDEN_DEFS_no-guard-pages   := -DTSR_HARDEN_NO_GUARD_PAGES
HARDEN_LIBS := $(foreach v,$(HARDEN_VARIANTS),build/variants/$(v)/libtessera.so)
HARDEN_ARGS ?=

.PHONY: hardening-cost hardening-variants
$(HARDEN_LIBS): build/variants/%/libtessera.so: src/unity.c $(SRC) $(HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_LIB) $(HARDEN_DEFS_$*) -c $< -o $(@D)/unity.o
	$(CC) -shared -Wl,-soname,libtessera.so.$(SOMAJOR) -Wl,-z,nodelete -Wl,--version-script=src/exports.map -o $@ $(@D)/unity.o $(LDLIBS_LIB)

hardening-variants: $(HARDEN_LIBS)

hardening-cost: $(BENCH_BINS) $(LIB_SO) $(HARDEN_LIBS)
	$(PYTHON) bench/hardening_cost.py --traces "$(TRACES)" --replay $(BENCH_REPLAY) $(if $(THREADS),--threads "$(THREADS)") \
	  $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(BENCH_ONLY),--only "$(BENCH_ONLY)") $(HARDEN_ARGS)
