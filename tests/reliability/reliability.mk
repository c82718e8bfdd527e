# reliability.mk -- issue 6's tests: fault injection, thread and fork storms,
# soak. Each part lives in its own fragment under tests/reliability/mk/ and
# appends its `make test` target to TEST_EXTRA.
-include $(wildcard tests/reliability/mk/*.mk)
