# examples.mk -- the programs behind docs/questions.md. Included from the
# top-level Makefile.
#   make examples        build them (build/examples/) and run each under a header
#   make examples-docs   rerun them and paste the output into docs/questions.md
#   make test-examples   run them and check what their output must show (part of make test)
# Built -O0 so that what the C says is what runs (a returned local's slot, a
# read after free), except the two whose point is the compiled code
# (stack_frame, alloca_runtime): -O2, the code a real build gets. Frame
# pointers everywhere: tessera check's stacks and the frame layout need them.

EX_DIR   := build/examples
EX_C     := $(wildcard examples/*.c)
EX_BIN   := $(patsubst examples/%.c,$(EX_DIR)/%,$(EX_C))
# The order of the page: run.sh knows how to run each one.
EX_NAMES := realloc_shrink sbrk_mmap calloc_cost return_local valgrind_classic \
            alloca_runtime stack_heap_grow escape_go stack_frame
EX_FLAGS := -g -fno-omit-frame-pointer -ffile-prefix-map=$(CURDIR)=.
EX_OPT   := -O0
$(EX_DIR)/stack_frame $(EX_DIR)/alloca_runtime: EX_OPT := -O2

$(EX_DIR):
	mkdir -p $@
$(EX_DIR)/%: examples/%.c examples/measure.h | $(EX_DIR)
	$(CC) $(CSTD) $(WARN) $(EX_OPT) $(EX_FLAGS) -o $@ $<

.PHONY: examples examples-build examples-docs test-examples
examples-build: $(LIB_SO) $(LIB_CHECK) $(CLI) $(EX_BIN)

examples: examples-build
	@for n in $(EX_NAMES); do \
	  echo "==== $$n ===="; sh examples/run.sh $$n build || exit 1; echo; \
	done

examples-docs: examples-build
	sh examples/docs.sh docs/questions.md build

test-examples: examples-build
	@timeout 120 sh examples/test.sh build

TEST_EXTRA += test-examples
