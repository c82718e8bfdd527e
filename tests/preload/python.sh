#!/bin/sh
# python.sh -- /usr/bin/python3 on a dict/list/string-heavy script.
. "$(dirname "$0")/lib.sh"
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
S=$ROOT/tests/preload/python_work.py
plain py /usr/bin/python3 "$S" 1
tsr py /usr/bin/python3 "$S" 1
same py
reached py 2000
say "python: $(cat "$W/py.tsr")"
