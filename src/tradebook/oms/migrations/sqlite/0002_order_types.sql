-- The order types beyond limit and market: stops (STOP, STOP_LIMIT, TRAILING_STOP),
-- icebergs, GTD and market orders sized by a quote amount.
--
-- New columns: stop_price (a trailing stop's current one), trailing_offset,
-- display_quantity and visible_quantity (an iceberg's current slice), expire_at
-- (GTD: the engine time in epoch milliseconds) and quote_quantity. quantity may
-- now be NULL (a market order sized by quote_quantity). SQLite cannot drop a
-- NOT NULL in place, so the table is rebuilt and its indexes made again; the
-- live orders' index now also holds the stops waiting for their trigger
-- (UNTRIGGERED), which recovery restores.

CREATE TABLE orders_v2 (
    id               INTEGER PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    symbol           TEXT    NOT NULL,
    side             TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    type             TEXT    NOT NULL,
    time_in_force    TEXT    NOT NULL,
    price            TEXT,
    quantity         TEXT,
    filled_quantity  TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    client_order_id  TEXT,
    post_only        INTEGER NOT NULL DEFAULT 0 CHECK (post_only IN (0, 1)),
    sequence         INTEGER,
    stop_price       TEXT,
    trailing_offset  TEXT,
    display_quantity TEXT,
    visible_quantity TEXT,
    expire_at        INTEGER,
    quote_quantity   TEXT,
    CHECK (quantity IS NOT NULL OR quote_quantity IS NOT NULL)
);

INSERT INTO orders_v2 (
    id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity, status,
    created_at, updated_at, client_order_id, post_only, sequence
)
SELECT
    id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity, status,
    created_at, updated_at, client_order_id, post_only, sequence
FROM orders;

DROP TABLE orders;

ALTER TABLE orders_v2 RENAME TO orders;

-- A user's orders, newest first (list_orders).
CREATE INDEX orders_user_id_idx ON orders (user_id, id DESC);

-- One client order id per user.
CREATE UNIQUE INDEX orders_user_client_order_id_uq
    ON orders (user_id, client_order_id)
    WHERE client_order_id IS NOT NULL;

-- A symbol's live orders (resting, or waiting for a trigger) in priority order (active_orders, recovery).
CREATE INDEX orders_active_idx
    ON orders (symbol, sequence, id)
    WHERE status IN ('OPEN', 'PARTIALLY_FILLED', 'UNTRIGGERED');

-- Orders written but never accepted (pending_orders, recovery).
CREATE INDEX orders_pending_idx ON orders (id) WHERE status = 'PENDING';

-- The largest sequence (last_ids at start-up).
CREATE INDEX orders_sequence_idx ON orders (sequence) WHERE sequence IS NOT NULL;
