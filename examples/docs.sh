#!/bin/sh
# docs.sh -- paste the real output of each example into a page. The page
# marks each output block with
#   <!-- output:NAME -->
#   ...anything (replaced)...
#   <!-- /output -->
# and this script replaces what lies between the two markers with a fenced
# block holding the output of `sh examples/run.sh NAME`, so the page never
# shows output that was typed by hand.
# Usage: sh examples/docs.sh PAGE [BUILD_DIR]   (run by make examples-docs)
set -eu
page=$1
B=${2:-build}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

for name in $(sed -n 's/^<!-- output:\([a-z_]*\) -->$/\1/p' "$page"); do
  echo "docs.sh: running $name"
  sh examples/run.sh "$name" "$B" >"$W/$name.txt"
done

awk -v dir="$W" '
  /^<!-- output:[a-z_]+ -->$/ {
    print
    name = $0
    sub(/^<!-- output:/, "", name); sub(/ -->$/, "", name)
    print "```text"
    file = dir "/" name ".txt"
    while ((getline line < file) > 0) print line
    close(file)
    print "```"
    skipping = 1
    next
  }
  /^<!-- \/output -->$/ { skipping = 0 }
  !skipping { print }
  END { if (skipping) { print "docs.sh: an output block is not closed" > "/dev/stderr"; exit 1 } }
' "$page" >"$W/page"
cp "$W/page" "$page"
echo "docs.sh: $page updated"
