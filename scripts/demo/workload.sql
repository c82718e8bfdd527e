-- workload.sql -- the demo's sqlite3 workload: build, index, aggregate and
-- rewrite a table of 400,000 rows (sqlite's page cache and sorter allocate).
PRAGMA cache_size = -100000;
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, item TEXT, qty INTEGER, price REAL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400000)
INSERT INTO orders SELECT i, printf('customer-%05d', (i * 7919) % 20011), printf('item-%04d', (i * 104729) % 5003),
       1 + i % 9, ((i * 31) % 10000) / 100.0 FROM c;
CREATE INDEX orders_customer ON orders(customer);
CREATE TABLE totals AS SELECT customer, count(*) AS n, sum(qty * price) AS spent FROM orders GROUP BY customer;
SELECT count(*), printf('%.2f', sum(spent)), max(n) FROM totals;
SELECT item, sum(qty) FROM orders GROUP BY item ORDER BY 2 DESC, 1 LIMIT 3;
UPDATE orders SET customer = upper(customer) WHERE id % 4 = 0;
SELECT count(DISTINCT customer) FROM orders;
SELECT group_concat(customer, ',') FROM (SELECT customer FROM orders ORDER BY customer DESC LIMIT 5);
