-- The order repository (orders, trades, the wallet outbox) and the ledger wallet
-- (balances, reservations, settled trade ids), in one schema.
--
-- Decimals are NUMERIC without a declared scale (exact, whatever the instrument's
-- grid, trailing zeros kept; never float), timestamps are timestamptz, enums are
-- text with CHECK constraints. Order and trade values are not range-checked here:
-- the engine validates them, and the repository stores what it is given, like the
-- memory adapter. The ledger keeps its invariants (no negative balance). Objects
-- are created unqualified: the migration runner sets the search_path to the
-- target schema.

CREATE TABLE orders (
    id              bigint      PRIMARY KEY,
    user_id         text        NOT NULL,
    symbol          text        NOT NULL,
    side            text        NOT NULL CHECK (side IN ('BUY', 'SELL')),
    type            text        NOT NULL CHECK (type IN ('LIMIT', 'MARKET')),
    time_in_force   text        NOT NULL CHECK (time_in_force IN ('GTC', 'IOC', 'FOK')),
    price           numeric,
    quantity        numeric     NOT NULL,
    filled_quantity numeric     NOT NULL DEFAULT 0,
    status          text        NOT NULL CHECK (
        status IN ('PENDING', 'OPEN', 'PARTIALLY_FILLED', 'FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED')
    ),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    client_order_id text,
    post_only       boolean     NOT NULL DEFAULT false,
    sequence        bigint
);

-- A user's open orders, newest first: the most frequent query of a trading UI.
-- Partial, so it holds only the (few) resting orders however long the history.
CREATE INDEX orders_user_open_idx
    ON orders (user_id, id DESC)
    WHERE status IN ('OPEN', 'PARTIALLY_FILLED');

-- All of a user's orders, newest first (list_orders with any other filter).
CREATE INDEX orders_user_id_idx ON orders (user_id, id DESC);

-- A symbol's resting orders by side and price (book rebuilds, depth queries).
CREATE INDEX orders_symbol_active_idx
    ON orders (symbol, side, price, sequence)
    WHERE status IN ('OPEN', 'PARTIALLY_FILLED');

-- One client order id per user; the unique violation is what reports a duplicate.
CREATE UNIQUE INDEX orders_user_client_order_id_key
    ON orders (user_id, client_order_id)
    WHERE client_order_id IS NOT NULL;

-- Recent orders across all users (monitoring, time-window exports).
CREATE INDEX orders_created_at_idx ON orders (created_at DESC);

-- Orders written but never accepted by the engine (recovery at start-up).
CREATE INDEX orders_pending_idx ON orders (id) WHERE status = 'PENDING';

-- The largest sequence (last_ids at start-up) without a scan of every order.
CREATE INDEX orders_sequence_idx ON orders (sequence) WHERE sequence IS NOT NULL;

CREATE TABLE trades (
    id            bigint      PRIMARY KEY,
    symbol        text        NOT NULL,
    price         numeric     NOT NULL,
    quantity      numeric     NOT NULL,
    buy_order_id  bigint      NOT NULL,
    sell_order_id bigint      NOT NULL,
    buyer_id      text        NOT NULL,
    seller_id     text        NOT NULL,
    taker_side    text        NOT NULL CHECK (taker_side IN ('BUY', 'SELL')),
    created_at    timestamptz NOT NULL
);

-- A symbol's trades, newest first (trade ids grow with time).
CREATE INDEX trades_symbol_idx ON trades (symbol, id DESC);
-- A user's trades on either side, newest first.
CREATE INDEX trades_buyer_idx ON trades (buyer_id, id DESC);
CREATE INDEX trades_seller_idx ON trades (seller_id, id DESC);
-- The trailing 24-hour window of the trading statistics.
CREATE INDEX trades_created_at_idx ON trades (created_at);

-- The wallet outbox: movements committed with the trades that caused them,
-- applied after the commit and deleted once done.
CREATE TABLE wallet_ops (
    id         bigint      PRIMARY KEY,
    symbol     text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('settle', 'release')),
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The ledger wallet: available and reserved funds per user and asset.
CREATE TABLE wallet_balances (
    user_id   text    NOT NULL,
    asset     text    NOT NULL,
    available numeric NOT NULL DEFAULT 0 CHECK (available >= 0),
    reserved  numeric NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    PRIMARY KEY (user_id, asset)
);

-- Funds set aside for one order, by reference; a row is deleted when it reaches zero.
CREATE TABLE wallet_reservations (
    ref     text    PRIMARY KEY,
    user_id text    NOT NULL,
    asset   text    NOT NULL,
    amount  numeric NOT NULL CHECK (amount > 0),
    FOREIGN KEY (user_id, asset) REFERENCES wallet_balances (user_id, asset)
);

-- Trades already settled, so that a replayed settlement is applied once.
CREATE TABLE wallet_settled_trades (
    trade_id   bigint      PRIMARY KEY,
    settled_at timestamptz NOT NULL DEFAULT now()
);
