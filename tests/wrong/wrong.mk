# wrong.mk -- the deliberately buggy programs (tests/wrong) under the checking
# build. Included from the top-level Makefile.
#   make test-wrong   build them and run tests/wrong/run.sh (about a minute)
# -O0 with frame pointers: the bugs stay in the code and the stacks are full;
# the prefix map keeps this checkout's path out of the reports.

WRONG_DIR    := build/tests/wrong
WRONG_C      := $(wildcard tests/wrong/*.c)
WRONG_CXX    := $(wildcard tests/wrong/*.cpp)
WRONG_BIN    := $(patsubst tests/wrong/%.c,$(WRONG_DIR)/%,$(WRONG_C)) $(patsubst tests/wrong/%.cpp,$(WRONG_DIR)/%,$(WRONG_CXX))
WRONG_FLAGS  := -O0 -g -fno-omit-frame-pointer -fno-builtin -pthread -ffile-prefix-map=$(CURDIR)=.

$(WRONG_DIR):
	mkdir -p $@
$(WRONG_DIR)/%: tests/wrong/%.c tests/wrong/wrong.h | $(WRONG_DIR)
	$(CC) $(CSTD) $(WRONG_FLAGS) -Wall -o $@ $< -ldl
$(WRONG_DIR)/%: tests/wrong/%.cpp | $(WRONG_DIR)
	$(CXX) -std=c++17 -faligned-new $(WRONG_FLAGS) -fno-allocation-dce -Wall -o $@ $<

.PHONY: test-wrong
test-wrong: $(LIB_CHECK) $(CLI) $(WRONG_BIN)
	@timeout 600 sh tests/wrong/run.sh build
