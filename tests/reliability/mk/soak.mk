# soak.mk -- the soak test (tests/reliability/soak.c): larson-style churn with
# RSS sampled, then two 1 GiB bursts that must be given back.
#   make soak [SOAK_SECONDS=300]   minutes of churn (default 120 s)
#   make test-soak                 the short run of `make test` (12 s of churn)
SOAK_SECONDS ?= 120
SOAK_BIN := build/tests/soak

$(SOAK_BIN): tests/reliability/soak.c include/tessera.h | build/tests
	$(CC) $(CSTD) -O2 -g $(WARN) -fno-builtin -pthread -Iinclude -o $@ $< -ldl

.PHONY: soak test-soak
soak: $(LIB_SO) $(SOAK_BIN)
	LD_PRELOAD=$(abspath $(LIB_SO)) timeout $$(( $(SOAK_SECONDS) + 120 )) $(SOAK_BIN) -s $(SOAK_SECONDS)

# -B report: the burst bars pass in `make soak` but not in every short run on
# a loaded machine (an idle thread keeps its direct-table first pages:
# docs/reliability.md, "Soak"); `make test` prints them and enforces the rest.
test-soak: $(LIB_SO) $(SOAK_BIN)
	@LD_PRELOAD=$(abspath $(LIB_SO)) timeout 120 $(SOAK_BIN) -s 12 -B report

TEST_EXTRA += test-soak
