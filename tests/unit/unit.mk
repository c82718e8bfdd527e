# unit.mk -- one program per module (tests/unit/<module>.c), each compiled
# with the whole allocator inside (unity build) and UBSan; plus the
# ThreadSanitizer build of the allocator for the threaded stress test.
UNIT_TESTS := sizeclass span span_stats page heap format large
UNIT_BINS  := $(addprefix build/san/unit-,$(UNIT_TESTS))
UNIT_CFLAGS = $(CSTD) -O1 -g $(WARN) -Wno-unused-function -fno-builtin -pthread -Iinclude -Isrc \
              -fsanitize=undefined -fno-sanitize-recover=undefined -fno-sanitize=alignment

build/san/unit-%: tests/unit/%.c tests/unit/unit.h $(SRC) $(HDR) | build/san
	$(CC) $(UNIT_CFLAGS) $< -o $@

# TSan: the allocator's files (not the override shim: TSan owns malloc) for
# the stress test, which then calls the tsr_* names.
TSR_TSAN_OBJS := $(patsubst src/%.c,build/tsan/%.o,$(filter-out src/override.c,$(SRC)))
build/tsan/%.o: src/%.c $(HDR)
	@mkdir -p build/tsan
	$(CC) $(CSTD) -O1 -g $(WARN) -fPIC -fsanitize=thread -Iinclude -Isrc -c $< -o $@

.PHONY: test-unit
test-unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do \
	  if timeout 120 $$t > $$t.log 2>&1; then echo "PASS $$(tail -1 $$t.log)"; \
	  else echo "FAIL $$t"; cat $$t.log; fail=1; fi; done; exit $$fail
