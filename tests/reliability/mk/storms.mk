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
