-- The quickstart's sample database: a small shop.
CREATE TABLE customers (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status      text NOT NULL DEFAULT 'new',
    total       numeric(12, 2) NOT NULL,
    items       jsonb NOT NULL DEFAULT '[]',
    placed_at   timestamptz NOT NULL DEFAULT now()
);

-- A customer who exists before weir starts: the initial snapshot reads this row
-- (op "r"), then streaming carries the traffic that follows.
INSERT INTO customers (email, name) VALUES ('edsger@example.com', 'Edsger Dijkstra');
