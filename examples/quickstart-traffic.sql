-- Sample writes the quickstart makes once weir is streaming: inserts, an update and a
-- delete, in a few transactions.
INSERT INTO customers (email, name) VALUES
    ('ada@example.com', 'Ada Lovelace'),
    ('grace@example.com', 'Grace Hopper');

BEGIN;
INSERT INTO orders (customer_id, total, items) VALUES
    (1, 129.90, '[{"sku": "loom-01", "qty": 1}]'),
    (2, 42.00, '[{"sku": "bug-jar", "qty": 2}]');
UPDATE orders SET status = 'paid' WHERE id = 1;
COMMIT;

DELETE FROM orders WHERE id = 2;
