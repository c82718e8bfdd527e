# tessera -- top-level build. `make` builds the libraries and the CLI;
# `make test` builds and runs every test; `make demo` shows the main job;
# `make bench` compares tessera with its peers; `make deps` installs the
# Debian packages the tests and benchmarks need.
#
# Output folders (variants of the same sources):
#   build/release/  objects of libtessera.so / libtessera.a
#   build/check/    objects of libtessera-check.so (TSR_CHECK=1)
#   build/san/      UBSan build of the allocator for the unit tests
#   build/tests/    test programs, build/bench/ benchmark programs

CC       ?= cc
CXX      ?= c++
PREFIX   ?= /usr/local
VERSION  := 0.1.0
SOMAJOR  := 0

WARN     := -Wall -Wextra -Werror
CSTD     := -std=gnu11
OPT      ?= -O2
# The library: hidden by default (only override.c exports), initial-exec TLS
# (one pointer, so dlopen never exhausts static TLS), no PLT for internal calls.
LIBFLAGS := -fPIC -fvisibility=hidden -ftls-model=initial-exec -fno-plt \
            -fno-semantic-interposition -fno-builtin-malloc -fno-builtin-free \
            -fno-stack-protector -fno-exceptions -fno-math-errno \
            -fomit-frame-pointer
CFLAGS_LIB = $(CSTD) $(OPT) -g $(WARN) $(LIBFLAGS) -Iinclude -Isrc
LDLIBS_LIB := -lpthread

SRC      := $(filter-out src/unity.c,$(wildcard src/*.c))
HDR      := $(wildcard src/*.h) include/tessera.h

LIB_SO    := build/libtessera.so
LIB_A     := build/libtessera.a
LIB_CHECK := build/libtessera-check.so
CLI       := build/tessera

.PHONY: all clean test demo bench deps install examples unity fastpath
all: $(LIB_SO) $(LIB_A) $(LIB_CHECK) $(CLI)

# The shared libraries are unity builds: the fast paths of alloc.c/free.c
# inline into the exported entry points of override.c.
build/release/unity.o: src/unity.c $(SRC) $(HDR) | build/release
	$(CC) $(CFLAGS_LIB) -c $< -o $@
build/check/unity.o: src/unity.c $(SRC) $(HDR) | build/check
	$(CC) $(CFLAGS_LIB) -DTSR_CHECK=1 -fno-omit-frame-pointer -c $< -o $@

$(LIB_SO): build/release/unity.o
	$(CC) -shared -Wl,-soname,libtessera.so.$(SOMAJOR) -Wl,-z,nodelete -Wl,--version-script=src/exports.map -o $@ $< $(LDLIBS_LIB)
	ln -sf libtessera.so build/libtessera.so.$(SOMAJOR)
$(LIB_CHECK): build/check/unity.o
	$(CC) -shared -Wl,-soname,libtessera-check.so.$(SOMAJOR) -Wl,-z,nodelete -Wl,--version-script=src/exports.map -o $@ $< $(LDLIBS_LIB)
$(LIB_A): build/release/unity.o
	rm -f $@ && ar rcs $@ $<

# Per-file objects: the unity build must not hide a file that fails to
# compile on its own (headers are self-contained).
build/release/%.o: src/%.c $(HDR) | build/release
	$(CC) $(CFLAGS_LIB) -c $< -o $@
unity: $(patsubst src/%.c,build/release/%.o,$(SRC))

build/release build/check build/san build/tests build/bench:
	mkdir -p $@

# Fragments that add a test to `make test` append its target to TEST_EXTRA;
# they are read before tests/tests.mk, which expands it.
TEST_EXTRA :=
-include examples/examples.mk
-include fuzz/fuzz.mk
-include tests/reliability/reliability.mk
-include tools/tools.mk
-include tests/tests.mk
-include tests/wrong/wrong.mk
-include bench/bench.mk
-include docs/docs.mk

deps:
	sh scripts/deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/libtessera.so.$(VERSION)
	ln -sf libtessera.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtessera.so.$(SOMAJOR)
	ln -sf libtessera.so.$(SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libtessera.so
	install -m 755 $(LIB_CHECK) $(DESTDIR)$(PREFIX)/lib/libtessera-check.so
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/libtessera.a
	install -m 644 include/tessera.h $(DESTDIR)$(PREFIX)/include/tessera.h
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/tessera
	[ ! -f docs/tessera.1 ] || install -m 644 docs/tessera.1 $(DESTDIR)$(PREFIX)/share/man/man1/tessera.1
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' tessera.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tessera.pc

clean:
	rm -rf build

.PHONY: readme-options
readme-options: $(CLI)
	sh scripts/readme_options.sh
