#!/bin/sh
# git.sh -- git init/add/commit of a few thousand generated files, with
# fixed identities and dates: commit and tree hashes and `git log --stat`
# must match. Each git command is its own run (and statistics file).
. "$(dirname "$0")/lib.sh"
export GIT_AUTHOR_NAME=T GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=T GIT_COMMITTER_EMAIL=t@example.org
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
export GIT_CONFIG_NOSYSTEM=1 HOME="$W" GIT_CONFIG_GLOBAL=/dev/null
FILES=${GIT_FILES:-3000}
python3 - "$W/src" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%02d" % (i % 40), "e%d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "w") as f:
        f.write(("line %d of file %d\n" % (i, i)) * (1 + i % 50))
PY
for mode in plain tsr; do
    rm -rf "$W/repo" && cp -r "$W/src" "$W/repo"
    g() { n=$1; shift; $mode "$n" git -C "$W/repo" -c gc.auto=0 -c init.defaultBranch=main "$@"; }
    g init init -q
    g add add -A
    g commit commit -q -m "first"
    echo "more" >>"$W/repo/d00/e0/f00000.txt"
    rm "$W/repo/d01/e1/f00001.txt"
    g add2 add -A
    g commit2 commit -q -m "second"
    g log log --stat --format='%H %T %s'
    g fsck fsck --no-progress --strict
done
same log
reached add 5000
reached log 1000
say "git: $FILES files, 2 commits, identical log and hashes: $(head -1 "$W/log.tsr" | cut -c1-81)"
