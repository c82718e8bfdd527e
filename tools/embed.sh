#!/bin/sh
# embed.sh FILE NAME -- print FILE as a C string constant NAME (for the CLI's
# embedded HTML page): each line becomes one escaped string literal.
set -eu
printf '/* generated from %s by tools/embed.sh: do not edit */\n' "$1"
printf 'static const char %s[] =\n' "$2"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/  "/' -e 's/$/\\n"/' "$1"
printf ';\n'
