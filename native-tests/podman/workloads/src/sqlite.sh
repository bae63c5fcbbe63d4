# sqlite3 in WAL mode: a table of 20000 rows, inserted in transactions, an index, a checkpoint, an integrity check.
# Every sqlite3 waits up to 5 s for a lock (.timeout), as applications do: in WAL mode without it, a
# connection that opens while another closes (checkpoint, WAL removed) fails with 'database is locked'.
set -e
db=/var/lib/wl.db
sqlite3 -cmd '.timeout 5000' $db 'PRAGMA journal_mode=WAL;' 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER);'
for k in 0 1 2 3; do
  sqlite3 -cmd '.timeout 5000' $db "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000)
               INSERT INTO t(v, n) SELECT printf('row-%d-%d', $k, i), i * $k FROM c;"
done
sqlite3 -cmd '.timeout 5000' $db 'CREATE INDEX tv ON t(v);' 'UPDATE t SET n = n + 1 WHERE id % 3 = 0;' 'DELETE FROM t WHERE id % 10 = 0;'
# a reader while a writer runs
sqlite3 -cmd '.timeout 5000' $db 'SELECT count(*) FROM t;' &
sqlite3 -cmd '.timeout 5000' $db "INSERT INTO t(v, n) VALUES ('late', 1);"
wait
sqlite3 -cmd '.timeout 5000' $db 'PRAGMA wal_checkpoint(TRUNCATE);' 'PRAGMA integrity_check;' 'SELECT count(*), sum(n) FROM t;'
