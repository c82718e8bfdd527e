#!/bin/sh
# readme_options.sh -- regenerate the options table of README.md from the
# library's own table (build/tessera help options prints src/options.h), so
# the README cannot drift from the code. With --check, only report whether
# the README is current (exit 1 if not); `make test` runs that.
set -eu
cd "$(dirname "$0")/.."
table=$(build/tessera help options | awk '
  /^NAME / { on = 1; print "| variable | kind | default | meaning |"; print "|---|---|---|---|"; next }
  on && NF {
    n = split($0, f, /  +/)
    printf "| `%s` | %s | %s | %s |\n", f[2], tolower(f[3]), f[4] == "\"\"" ? "(none)" : f[4], f[5]
  }')
new=$(awk -v table="$table" '
  /<!-- options:begin -->/ { print; print table; skip = 1; next }
  /<!-- options:end -->/ { skip = 0 }
  !skip { print }' README.md)
if [ "${1:-}" = --check ]; then
  [ "$new" = "$(cat README.md)" ] || { echo "README.md options table is stale: run make readme-options" >&2; exit 1; }
  echo "readme-options: README.md matches the option table"
else
  printf '%s\n' "$new" > README.md
fi
