#!/bin/sh
# sqlite.sh -- sqlite3 builds, indexes and queries a table of a million rows
# (recursive CTE); the query results must match.
. "$(dirname "$0")/lib.sh"
ROWS=${SQLITE_ROWS:-1000000}
cat >"$W/q.sql" <<SQL
PRAGMA cache_size = -65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, s TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $ROWS)
INSERT INTO t SELECT i, (i * 2654435761) % 100003, printf('row-%08d-%s', i, substr('abcdefghijklmnop', 1 + i % 16)) FROM c;
CREATE INDEX t_k ON t(k);
SELECT count(*), sum(k), max(s), min(s) FROM t;
SELECT k, count(*) AS n, group_concat(id) FROM t WHERE k < 30 GROUP BY k ORDER BY k;
SELECT substr(s, 14), count(*), avg(k) FROM t GROUP BY substr(s, 14) ORDER BY 1;
SELECT id, s FROM t ORDER BY s DESC LIMIT 5;
SELECT count(DISTINCT k), total(length(s)) FROM t;
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*), sum(id) FROM t;
SQL
plain sql sqlite3 "$W/plain.db" <"$W/q.sql"
tsr sql sqlite3 "$W/tsr.db" <"$W/q.sql"
same sql
reached sql 10000
say "sqlite: $ROWS rows, $(wc -l <"$W/sql.tsr") result lines identical"
