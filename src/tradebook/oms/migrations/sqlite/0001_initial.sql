-- The order repository and the ledger wallet, in one file.
--
-- Decimals are TEXT (exact, converted with Decimal; never REAL), timestamps are
-- ISO-8601 UTC text with microseconds ("2024-01-02T03:04:05.000006+00:00", which
-- sorts chronologically as text), enums are their string values.

CREATE TABLE orders (
    id              INTEGER PRIMARY KEY,
    user_id         TEXT    NOT NULL,
    symbol          TEXT    NOT NULL,
    side            TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    type            TEXT    NOT NULL,
    time_in_force   TEXT    NOT NULL,
    price           TEXT,
    quantity        TEXT    NOT NULL,
    filled_quantity TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    client_order_id TEXT,
    post_only       INTEGER NOT NULL DEFAULT 0 CHECK (post_only IN (0, 1)),
    sequence        INTEGER
);

-- A user's orders, newest first (list_orders).
CREATE INDEX orders_user_id_idx ON orders (user_id, id DESC);

-- One client order id per user.
CREATE UNIQUE INDEX orders_user_client_order_id_uq
    ON orders (user_id, client_order_id)
    WHERE client_order_id IS NOT NULL;

-- A symbol's resting orders in priority order (active_orders, recovery).
CREATE INDEX orders_active_idx
    ON orders (symbol, sequence, id)
    WHERE status IN ('OPEN', 'PARTIALLY_FILLED');

-- Orders written but never accepted (pending_orders, recovery).
CREATE INDEX orders_pending_idx ON orders (id) WHERE status = 'PENDING';

-- The largest sequence (last_ids at start-up).
CREATE INDEX orders_sequence_idx ON orders (sequence) WHERE sequence IS NOT NULL;

CREATE TABLE trades (
    id            INTEGER PRIMARY KEY,
    symbol        TEXT    NOT NULL,
    price         TEXT    NOT NULL,
    quantity      TEXT    NOT NULL,
    buy_order_id  INTEGER NOT NULL,
    sell_order_id INTEGER NOT NULL,
    buyer_id      TEXT    NOT NULL,
    seller_id     TEXT    NOT NULL,
    taker_side    TEXT    NOT NULL CHECK (taker_side IN ('BUY', 'SELL')),
    created_at    TEXT    NOT NULL
);

CREATE INDEX trades_symbol_idx ON trades (symbol, id DESC);
CREATE INDEX trades_buyer_idx ON trades (buyer_id, id DESC);
CREATE INDEX trades_seller_idx ON trades (seller_id, id DESC);

-- The wallet outbox: movements committed with the trades that caused them,
-- applied after the commit and deleted once done.
CREATE TABLE wallet_ops (
    id      INTEGER PRIMARY KEY,
    symbol  TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('settle', 'release')),
    payload TEXT NOT NULL
);

-- The ledger wallet: available and reserved funds per user and asset.
CREATE TABLE wallet_balances (
    user_id   TEXT NOT NULL,
    asset     TEXT NOT NULL,
    available TEXT NOT NULL,
    reserved  TEXT NOT NULL,
    PRIMARY KEY (user_id, asset)
) WITHOUT ROWID;

-- Funds set aside for one order, by reference; a row is deleted when it reaches zero.
CREATE TABLE wallet_reservations (
    ref     TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    asset   TEXT NOT NULL,
    amount  TEXT NOT NULL
) WITHOUT ROWID;

-- Trades already settled, so that a replayed settlement is applied once.
CREATE TABLE wallet_settled_trades (
    trade_id   INTEGER PRIMARY KEY,
    settled_at TEXT NOT NULL
);
