# fuzz.mk -- the libFuzzer harness (fuzz/fuzz_api.c), included by the top
# Makefile before tests/tests.mk.
#
#   make fuzz             fuzz for FUZZ_TIME seconds (default 300), starting
#                         from the seed corpus fuzz/corpus/ and the inputs
#                         found so far (build/fuzz/corpus/); a crash is saved
#                         as build/fuzz/release/crash-* (rerun: build/fuzz/release/fuzz_api FILE)
#   make fuzz FUZZ_BUILD=check   the same against the checking build's sources
#                         (TSR_CHECK=1: redzones, quarantine, guard pages)
#   make test-fuzz-smoke  (part of `make test`) every seed once, then
#                         FUZZ_SMOKE_RUNS inputs (5000) of fuzzing from a fixed
#                         seed, FUZZ_SMOKE_TIME seconds (60) at most
#   make fuzz-corpus      regenerate the seed corpus (fuzz/gen_corpus.py)
#
# Build: Debian's clang. The allocator's unity build is compiled into the
# fuzzer with coverage (fuzzer-no-link) and UBSan, override shim included,
# so tessera is the malloc of the whole process, libFuzzer's own included.
# No ASan: ASan must own malloc, and with the shim left out ASan would see
# tessera's blocks only as unpoisoned mmap memory -- the model's pattern and
# overlap checks are what catch a bad block here.

FUZZ_CC         ?= clang
FUZZ_TIME       ?= 300
FUZZ_SMOKE_TIME ?= 60
# A fixed seed: the smoke mutates the same way on every run, so `make test`
# does not turn red by chance on the open double free (docs/reliability.md,
# Fuzzing); `make fuzz` and FUZZ_SMOKE_SEED=0 (libFuzzer's own) hunt it.
FUZZ_SMOKE_SEED ?= 1
# and a fixed number of inputs (a faster machine does not go further)
FUZZ_SMOKE_RUNS ?= 5000
FUZZ_BUILD      ?= release
FUZZ_BIN        := build/fuzz/$(FUZZ_BUILD)/fuzz_api
FUZZ_SAN        := -fsanitize=undefined -fno-sanitize-recover=undefined -fno-sanitize=alignment
FUZZ_CFLAGS      = $(CSTD) -O1 -g $(WARN) -Iinclude -Isrc $(FUZZ_SAN)
# Flags of the library build that matter to its code (TLS model, no builtin
# malloc assumptions); visibility does not matter inside one executable.
FUZZ_LIBFLAGS   := -fPIC -ftls-model=initial-exec -fno-builtin-malloc -fno-builtin-free
# libFuzzer's options for every run: crashes next to the binary, a memory
# limit well above the harness's own cap (so a leak in tessera shows).
FUZZ_OPTS       := -artifact_prefix=build/fuzz/$(FUZZ_BUILD)/ -rss_limit_mb=2048 -print_final_stats=1
# The checking build reports blocks still live at exit: libFuzzer's own.
# tessera's own stop (double free, ...) resets SIGABRT, so libFuzzer saves no
# crash file: the harness keeps the running input in last-input instead.
FUZZ_LAST       := build/fuzz/$(FUZZ_BUILD)/last-input
FUZZ_ENV        := TESSERA_CHECK_LEAKS=no FUZZ_LAST_INPUT=$(FUZZ_LAST)

.PHONY: fuzz test-fuzz-smoke fuzz-corpus

# Kept: the fuzzer relinks without recompiling the allocator.
.PRECIOUS: build/fuzz/%/unity.o build/fuzz/%/fuzz_api.o

build/fuzz/release build/fuzz/check:
	mkdir -p $@

# No comparison tracing in tessera: libFuzzer copies the operands of traced
# comparisons into its inputs, and free()'s double-free test compares a
# block's second word with its address XOR the process secret. The fuzzer
# learned that value and planted it at bytes 8..15 of an input; its own copy
# of the input, allocated at the same address, then read as a freed block,
# and free() reported a double free of a live block (2026-11-26, the "open
# double free" of docs/reliability.md). Edge coverage stays.
build/fuzz/%/unity.o: src/unity.c $(SRC) $(HDR) | build/fuzz/%
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LIBFLAGS) $(if $(filter check,$*),-DTSR_CHECK=1) -fsanitize=fuzzer-no-link -fno-sanitize-coverage=trace-cmp -c $< -o $@

# The harness itself gets no coverage instrumentation: libFuzzer should chase
# new paths in tessera, not in the model, and the model's byte checks run
# ten times slower with every comparison traced.
build/fuzz/%/fuzz_api.o: fuzz/fuzz_api.c include/tessera.h | build/fuzz/%
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

build/fuzz/%/fuzz_api: build/fuzz/%/fuzz_api.o build/fuzz/%/unity.o
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ -lpthread

fuzz: $(FUZZ_BIN)
	@mkdir -p build/fuzz/corpus
	@$(FUZZ_ENV) $(FUZZ_BIN) $(FUZZ_OPTS) -max_total_time=$(FUZZ_TIME) build/fuzz/corpus fuzz/corpus || \
	  { echo "fuzz: stopped; the input that was running: $(FUZZ_LAST)"; exit 1; }

# Every seed runs once while the corpus loads, then the smoke fuzzes from
# an empty scratch corpus, so its run does not depend on earlier runs.
test-fuzz-smoke: $(FUZZ_BIN)
	@rm -rf build/fuzz/smoke && mkdir -p build/fuzz/smoke
	@seeds=$$(ls fuzz/corpus | wc -l); \
	if [ "$$seeds" -eq 0 ]; then echo "FAIL fuzz-smoke: fuzz/corpus is empty"; exit 1; fi; \
	if timeout $$(($(FUZZ_SMOKE_TIME) + 120)) env $(FUZZ_ENV) $(FUZZ_BIN) $(FUZZ_OPTS) -seed=$(FUZZ_SMOKE_SEED) -runs=$(FUZZ_SMOKE_RUNS) -max_total_time=$(FUZZ_SMOKE_TIME) \
	     build/fuzz/smoke fuzz/corpus > build/fuzz/smoke.log 2>&1; then \
	  echo "PASS fuzz-smoke: $$seeds seeds, $$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/smoke.log) executions (seed $(FUZZ_SMOKE_SEED))"; \
	else echo "FAIL fuzz-smoke (log: build/fuzz/smoke.log; the input that was running: $(FUZZ_LAST))"; \
	  tail -40 build/fuzz/smoke.log; exit 1; fi

fuzz-corpus:
	/usr/bin/env python3 fuzz/gen_corpus.py fuzz/corpus

TEST_EXTRA += test-fuzz-smoke
