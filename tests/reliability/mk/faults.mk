# faults.mk -- fault injection (tests/reliability/faults*.c): each test
# compiles the allocator in (unity build, UBSan) so it can inject OS failures
# and call tsr_invariant_check().
#   make test-faults        what `make test` runs: the checker's self-test, the
#                           full sweep of the release build, samples of it in
#                           secure mode, with purges as they fall due (-d 0)
#                           and of the check build, failures while threads
#                           race, RLIMIT_AS, and python3 under `ulimit -v`
#   make faults-full        every N of each sweep, the check build's too, and
#                           100 storm rounds (about half an hour on 2 cores)
FAULTS_CFLAGS = $(CSTD) -O1 -g $(WARN) -Wno-unused-function -fno-builtin -pthread -Iinclude -Isrc \
                -fsanitize=undefined -fno-sanitize-recover=undefined -fno-sanitize=alignment
FAULTS_BINS := build/tests/faults build/tests/faults_checker build/tests/faults_rlimit build/tests/faults_storm \
               build/tests/faults-check
# Address space python3 gets under `ulimit -v` (KiB): its start-up plus tessera's maps fit well below.
FAULTS_ULIMIT_KB := 600000

build/tests/faults: tests/reliability/faults.c $(SRC) $(HDR) | build/tests
	$(CC) $(FAULTS_CFLAGS) $< -o $@
build/tests/faults_checker: tests/reliability/faults_checker.c tests/api/check.h $(SRC) $(HDR) | build/tests
	$(CC) $(FAULTS_CFLAGS) $< -o $@
build/tests/faults_rlimit: tests/reliability/faults_rlimit.c tests/api/check.h $(SRC) $(HDR) | build/tests
	$(CC) $(FAULTS_CFLAGS) $< -o $@
build/tests/faults_storm: tests/reliability/faults_storm.c $(SRC) $(HDR) | build/tests
	$(CC) $(FAULTS_CFLAGS) $< -o $@
# The checking build: its own tables, guard pages and quarantine under failure too.
build/tests/faults-check: tests/reliability/faults.c $(SRC) $(HDR) | build/tests
	$(CC) $(FAULTS_CFLAGS) -DTSR_CHECK=1 -fno-omit-frame-pointer $< -o $@ -ldl

.PHONY: test-faults faults-full
test-faults: $(FAULTS_BINS) $(LIB_SO)
	@timeout 60 build/tests/faults_checker
	@timeout 300 build/tests/faults
	@TESSERA_SECURE=1 timeout 300 build/tests/faults -r 60
	@timeout 300 build/tests/faults -d 0 -r 30
	@timeout 120 build/tests/faults_storm
	@timeout 120 build/tests/faults_rlimit
	@timeout 120 build/tests/faults-check -r 16
	@ulimit -v $(FAULTS_ULIMIT_KB) && LD_PRELOAD=$(abspath $(LIB_SO)) timeout 120 /usr/bin/python3 -c \
	  'import sys; maps = open("/proc/self/maps").read(); assert "libtessera" in maps, "tessera not loaded"; \
	   blocks = []; \
	   exec("try:\n while True: blocks.append(bytearray(1 << 20))\nexcept MemoryError: pass"); \
	   n = len(blocks); assert n > 100, n; del blocks[:]; \
	   again = [bytearray(1 << 20) for _ in range(n)]; \
	   print("python3 under ulimit -v: %d MiB until MemoryError, %d MiB again after freeing" % (n, len(again)))'

faults-full: $(FAULTS_BINS)
	timeout 600 build/tests/faults
	TESSERA_SECURE=1 timeout 600 build/tests/faults
	timeout 600 build/tests/faults -d 0
	timeout 600 build/tests/faults_storm 100
	timeout 3600 build/tests/faults-check -r 100000

TEST_EXTRA += test-faults
