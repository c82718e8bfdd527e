# cli.mk -- tests of the `tessera` CLI (included from tools/tools.mk).
#   make test-cli    build the CLI, the recorder and the test helpers, then
#                    run tests/cli/test_cli.sh (about 30-60 s, bounded).
# The map test uses build/libtessera.so when it exists and the mock library
# (tests/cli/mock_tessera.c) always; it needs chromium (installed on demand).

CLI_TEST_DIR := build/tests/cli
CLI_TEST_BIN := $(CLI_TEST_DIR)/alloc_prog $(CLI_TEST_DIR)/bad_realloc.so $(CLI_TEST_DIR)/mock_tessera.so

$(CLI_TEST_DIR):
	mkdir -p $@
$(CLI_TEST_DIR)/alloc_prog: tests/cli/alloc_prog.c | $(CLI_TEST_DIR)
	$(CC) $(CSTD) -O2 -g $(WARN) -fno-builtin -pthread -o $@ $<
$(CLI_TEST_DIR)/bad_realloc.so: tests/cli/bad_realloc.c | $(CLI_TEST_DIR)
	$(CC) $(CSTD) -O2 -g $(WARN) -fPIC -shared -o $@ $<
$(CLI_TEST_DIR)/mock_tessera.so: tests/cli/mock_tessera.c include/tessera.h | $(CLI_TEST_DIR)
	$(CC) $(CSTD) -O2 -g $(WARN) -fPIC -shared -Iinclude -o $@ $<

.PHONY: test-cli
test-cli: $(CLI) $(RECORD_SO) $(CLI_TEST_BIN)
	@TRACES="$(or $(TRACES),../shared/traces)" timeout 300 sh tests/cli/test_cli.sh
