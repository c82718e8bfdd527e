# storms.mk -- signals that land inside malloc/free (tests/reliability/signals.c).
# fork and thread storms are tests/programs/{fork_threads,threads10k,
# thread_exit_free}.c, run by tests/run.sh.
#   make test-storms   both signal variants against build/libtessera.so
SIGNALS_BIN := build/tests/signals

$(SIGNALS_BIN): tests/reliability/signals.c | build/tests
	$(CC) $(CSTD) -O2 -g $(WARN) -fno-builtin -pthread -o $@ $<

.PHONY: test-storms
test-storms: $(LIB_SO) $(SIGNALS_BIN)
	@LD_PRELOAD=$(abspath $(LIB_SO)) timeout 120 $(SIGNALS_BIN) exit 40
	@LD_PRELOAD=$(abspath $(LIB_SO)) timeout 60 $(SIGNALS_BIN) safe 4

TEST_EXTRA += test-storms

# ThreadSanitizer: the thread-lifecycle programs linked with tessera's
# sources built with -fsanitize=thread (TSR_TSAN_OBJS, from tests/unit/unit.mk,
# read after this file: hence the second expansion), calling the tsr_* names.
# fork_threads and signals are not among them: docs/reliability.md says why.
TSAN_PROGRAMS := thread_exit_free threads10k
TSAN_PROGRAM_BINS := $(addprefix build/tests/tsan/,$(TSAN_PROGRAMS))
.SECONDEXPANSION:
$(TSAN_PROGRAM_BINS): build/tests/tsan/%: tests/programs/%.c tests/reliability/tsan_names.h $$(TSR_TSAN_OBJS) | build/tests
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(WARN) -Iinclude -pthread -fsanitize=thread -include tests/reliability/tsan_names.h \
	  -include tessera.h -o $@ $< $(TSR_TSAN_OBJS)

.PHONY: test-tsan-programs
test-tsan-programs: $(TSAN_PROGRAM_BINS)
	@timeout 300 build/tests/tsan/thread_exit_free
	@timeout 300 build/tests/tsan/threads10k 1000 32

TEST_EXTRA += test-tsan-programs

# Peer collection raced against the owners' fast paths (tests/reliability/peers.c).
build/tests/peers: tests/reliability/peers.c $(SRC) $(HDR) | build/tests
	$(CC) $(FAULTS_CFLAGS) $< -o $@
.PHONY: test-peers
build/tests/tsan/peers: tests/reliability/peers.c tests/reliability/tsan_names.h $$(TSR_TSAN_OBJS) | build/tests
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(WARN) -Iinclude -Isrc -pthread -fsanitize=thread -DPEERS_TSAN \
	  -include tests/reliability/tsan_names.h -o $@ $< $(TSR_TSAN_OBJS)
test-peers: build/tests/peers build/tests/tsan/peers
	@timeout 60 build/tests/peers 4
	@timeout 120 build/tests/tsan/peers 4
TEST_EXTRA += test-peers
