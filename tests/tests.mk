# tests.mk -- build and run the tests (included by the top-level Makefile).
#
#   make test        everything, against build/libtessera.so: the lead's unit
#                    tests (test-unit, if tests/unit/unit.mk defines it), the
#                    CLI's (test-cli, if tests/cli/cli.mk defines it), then
#                    tests/run.sh (API, stress, sanitizers, programs, traces,
#                    real programs under LD_PRELOAD), then bench-quick if
#                    bench/bench.mk defines it
#   make test-glibc  the same suite without tessera (glibc baseline; the
#                    tessera-only tests are skipped)
#   make test-asan   only the ASan/UBSan builds of the API and stress tests
#   make demo        scripts/demo.sh: a real workload, glibc vs tessera
# Pick tests with TESTS='api stress-*', traces with TRACES=dir.

TEST_DIR    := build/tests
TEST_CFLAGS  = $(CSTD) -O2 -g $(WARN) -fno-builtin -Iinclude -Itools -pthread
TEST_CXXFLAGS = -std=c++17 -faligned-new -fno-allocation-dce -O1 -g $(WARN) -Iinclude
ASAN_CFLAGS  = $(CSTD) -O1 -g $(WARN) -fno-builtin -Iinclude -pthread \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# Programs that build without tessera (they find it at run time, if at all).
TEST_GLIBC_BIN := $(TEST_DIR)/contract $(TEST_DIR)/stress $(TEST_DIR)/replay_rep \
                  $(TEST_DIR)/threads10k $(TEST_DIR)/fork_threads $(TEST_DIR)/thread_exit_free \
                  $(TEST_DIR)/cxx_new $(TEST_DIR)/dlopen_tsr $(TEST_DIR)/hardening $(TEST_DIR)/huge_pages \
                  $(TEST_DIR)/asan/contract $(TEST_DIR)/asan/stress
# Programs linked with the library itself.
TEST_TSR_BIN   := $(TEST_DIR)/contract-tsr $(TEST_DIR)/static_malloc

# The lead's unit tests and the bench helper's quick run join `make test`
# only where their makefiles define them (grep, because bench.mk is read
# after this file and prerequisites are expanded as they are read).
-include tests/unit/unit.mk
TEST_UNIT   := $(if $(shell grep -s '^test-unit[ :]' tests/unit/unit.mk),test-unit)
BENCH_QUICK := $(if $(shell grep -s '^bench-quick[ :]' bench/bench.mk),bench-quick)
# The CLI's tests (tests/cli/cli.mk, pulled in by tools/tools.mk).
TEST_CLI    := $(if $(shell grep -s '^test-cli[ :]' tests/cli/cli.mk),test-cli)

# Hook for ThreadSanitizer: the threaded stress test with the allocator's
# sources linked in, through the tsr_* names (stress.c -DSTRESS_TSR_API).
# Define TSR_TSAN_OBJS (objects of src/ built with -fsanitize=thread, e.g.
# in tests/unit/unit.mk) and `make test` runs test-tsan as well.
TEST_TSAN := $(if $(TSR_TSAN_OBJS),test-tsan)

.PHONY: test test-build test-build-glibc test-glibc test-asan test-tsan deps-check demo

test: all deps-check test-build $(TEST_UNIT) $(TEST_CLI) $(TEST_TSAN) test-wrong $(TEST_EXTRA)
	@sh scripts/readme_options.sh --check
	@TSR_LIB=$(LIB_SO) TSR_BUILD=build TRACES="$(or $(TRACES),../shared/traces)" sh tests/run.sh
ifneq ($(BENCH_QUICK),)
	@$(MAKE) --no-print-directory bench-quick
endif

test-glibc: deps-check test-build-glibc
	@TSR_LIB= TSR_BUILD=build TRACES="$(or $(TRACES),../shared/traces)" sh tests/run.sh

test-asan: $(TEST_DIR)/asan/contract $(TEST_DIR)/asan/stress
	@TSR_LIB= TESTS='asan-*' sh tests/run.sh

test-build-glibc: $(TEST_GLIBC_BIN)
test-build: $(TEST_GLIBC_BIN) $(TEST_TSR_BIN)

# Quick when everything is installed; installs (apt) only what is missing.
deps-check:
	@sh scripts/deps.sh --check >/dev/null 2>&1 || sh scripts/deps.sh

demo: all
	@sh scripts/demo.sh

# ---- build rules -----------------------------------------------------------------

$(TEST_DIR)/contract: tests/api/contract.c tests/api/check.h include/tessera.h | build/tests
	$(CC) $(TEST_CFLAGS) -o $@ $< -ldl
# The tsr_* API checks, linked with libtessera.so (found next to build/tests).
$(TEST_DIR)/contract-tsr: tests/api/contract.c tests/api/check.h include/tessera.h $(LIB_SO) | build/tests
	$(CC) $(TEST_CFLAGS) -DWITH_TSR_API -o $@ $< -Lbuild -ltessera -Wl,-rpath,'$$ORIGIN/..' -ldl
$(TEST_DIR)/stress: tests/stress/stress.c | build/tests
	$(CC) $(TEST_CFLAGS) -o $@ $<
$(TEST_DIR)/replay_rep: tests/programs/replay_rep.c tools/trace.c tools/trace.h | build/tests
	$(CC) $(TEST_CFLAGS) -o $@ tests/programs/replay_rep.c tools/trace.c
$(TEST_DIR)/threads10k $(TEST_DIR)/fork_threads $(TEST_DIR)/thread_exit_free $(TEST_DIR)/hardening $(TEST_DIR)/huge_pages: $(TEST_DIR)/%: tests/programs/%.c | build/tests
	$(CC) $(TEST_CFLAGS) -o $@ $<
$(TEST_DIR)/dlopen_tsr: tests/programs/dlopen_tsr.c | build/tests
	$(CC) $(TEST_CFLAGS) -o $@ $< -ldl
$(TEST_DIR)/cxx_new: tests/programs/cxx_new.cpp include/tessera.h | build/tests
	$(CXX) $(TEST_CXXFLAGS) -o $@ $< -ldl
# Static: libtessera.a must replace glibc's malloc at link time.
$(TEST_DIR)/static_malloc: tests/programs/static_malloc.c include/tessera.h $(LIB_A) | build/tests
	$(CC) $(TEST_CFLAGS) -static -o $@ $< $(LIB_A) -lpthread

# Sanitizer builds, against glibc (ASan replaces malloc itself).
$(TEST_DIR)/asan/contract: tests/api/contract.c tests/api/check.h | build/tests
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -o $@ $< -ldl
$(TEST_DIR)/asan/stress: tests/stress/stress.c | build/tests
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -o $@ $<

ifneq ($(TSR_TSAN_OBJS),)
$(TEST_DIR)/tsan/stress: tests/stress/stress.c $(TSR_TSAN_OBJS) | build/tests
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(WARN) -Iinclude -pthread -fsanitize=thread -DSTRESS_TSR_API -o $@ $^
test-tsan: $(TEST_DIR)/tsan/stress
	timeout 300 $< -t 4 -n 20000 -s 5
endif
