# docs.mk -- `make docs`: regenerate what README.md and docs/design.md show
# from real runs (scripts/docs_figures.py says what comes from where):
#   docs/figures/*.svg      `tessera map` of malloc-lab traces ($(TRACES))
#   docs/design.md          figure captions, `tessera run --stats` on perl,
#                           the fast-path counts of the newest bench results
#   README.md               a `tessera check` report, the comparison tables
#                           from the newest bench/results/*.md, the options
# About 15 seconds; needs chromium (make deps) to run the map page's script.
# Not part of `make test`: it rewrites tracked files.

DOCS_PYTHON := $(firstword $(wildcard /usr/bin/python3) python3)

.PHONY: docs
docs: $(LIB_SO) $(LIB_CHECK) $(CLI) build/tests/wrong/double_free readme-options
	$(DOCS_PYTHON) scripts/docs_figures.py --traces "$(or $(TRACES),../shared/traces)"
