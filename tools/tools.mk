# tools.mk -- the `tessera` CLI and the recorder preload library, included by
# the top-level Makefile (which defines CLI, WARN, CSTD, LIB_SO, LIB_CHECK).
# The CLI links only libc (+ libdl/libpthread/libm): it finds libtessera.so at
# run time next to itself, so it builds and works before the library exists.
# Also pulls in the CLI tests (target test-cli) from tests/cli/cli.mk.

TOOLS_CFLAGS := $(CSTD) -O2 -g $(WARN) -Iinclude -Isrc -Itools -Ibuild/tools \
                -DTSR_CLI_VERSION='"$(VERSION)"'
TOOLS_SRC    := tools/tessera.c tools/cli.c tools/cmd_help.c tools/cmd_run.c tools/cmd_check.c \
                tools/cmd_record.c tools/cmd_convert.c tools/cmd_replay.c \
                tools/cmd_compare.c tools/cmd_map.c tools/trace_bin.c \
                tools/replay_mt.c tools/trace.c
TOOLS_HDR    := tools/cli.h tools/trace_bin.h tools/trace.h tools/replay_mt.h \
                include/tessera.h src/options.h
RECORD_SO    := build/libtessera-record.so

all: $(RECORD_SO)

$(CLI): $(TOOLS_SRC) $(TOOLS_HDR) build/tools/map_page.h | build/tools
	$(CC) $(TOOLS_CFLAGS) -o $@ $(TOOLS_SRC) -ldl -lpthread -lm

# The map page's HTML/JS lives in a readable file and is embedded as a C
# string, so the CLI stays one self-contained binary.
build/tools/map_page.h: tools/map_page.html tools/embed.sh | build/tools
	sh tools/embed.sh tools/map_page.html map_page_html > $@.tmp && mv $@.tmp $@

# The recorder: hidden by default, initial-exec TLS (it is preloaded, so
# static TLS is available), and no stack protector or builtins that could
# turn our wrappers into calls of themselves.
$(RECORD_SO): tools/record/record.c tools/trace_bin.h | build/tools
	$(CC) $(CSTD) -O2 -g $(WARN) -fPIC -shared -fvisibility=hidden \
	  -ftls-model=initial-exec -fno-builtin-malloc -fno-builtin-free \
	  -fno-builtin-calloc -fno-builtin-realloc -o $@ $< -ldl -lpthread

build/tools:
	mkdir -p $@

.PHONY: tools install-tools
tools: $(CLI) $(RECORD_SO)

# `make install` installs the CLI and the man page (top-level Makefile); the
# recorder goes next to libtessera.so, where the installed CLI looks (../lib).
install: install-tools
install-tools: $(RECORD_SO)
	install -d $(DESTDIR)$(PREFIX)/lib
	install -m 755 $(RECORD_SO) $(DESTDIR)$(PREFIX)/lib/libtessera-record.so

-include tests/cli/cli.mk
