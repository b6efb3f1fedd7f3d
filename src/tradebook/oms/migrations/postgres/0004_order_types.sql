-- The order types beyond limit and market: stops (STOP, STOP_LIMIT, TRAILING_STOP),
-- icebergs, GTD and market orders sized by a quote amount.
--
-- New columns: stop_price (a trailing stop's current one), trailing_offset,
-- display_quantity and visible_quantity (an iceberg's current slice), expire_at
-- (GTD: the engine time in epoch milliseconds) and quote_quantity. quantity may
-- now be NULL (a market order sized by quote_quantity, and only then). The type,
-- time-in-force and status checks take the new values, and the partial indexes of
-- live orders also hold the stops waiting for their trigger (UNTRIGGERED), which
-- recovery restores and a user sees among their open orders.

ALTER TABLE orders
    ALTER COLUMN quantity DROP NOT NULL,
    ADD COLUMN stop_price       numeric,
    ADD COLUMN trailing_offset  numeric,
    ADD COLUMN display_quantity numeric,
    ADD COLUMN visible_quantity numeric,
    ADD COLUMN expire_at        bigint,
    ADD COLUMN quote_quantity   numeric,
    DROP CONSTRAINT orders_type_check,
    DROP CONSTRAINT orders_time_in_force_check,
    DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_type_check CHECK (type IN ('LIMIT', 'MARKET', 'STOP', 'STOP_LIMIT', 'TRAILING_STOP')),
    ADD CONSTRAINT orders_time_in_force_check CHECK (time_in_force IN ('GTC', 'IOC', 'FOK', 'GTD')),
    ADD CONSTRAINT orders_status_check CHECK (
        status IN (
            'PENDING', 'OPEN', 'PARTIALLY_FILLED', 'FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED', 'UNTRIGGERED'
        )
    ),
    ADD CONSTRAINT orders_quantity_check CHECK (quantity IS NOT NULL OR quote_quantity IS NOT NULL);

DROP INDEX orders_user_open_idx;
-- A user's open orders (resting or waiting for a trigger), newest first.
CREATE INDEX orders_user_open_idx
    ON orders (user_id, id DESC)
    WHERE status IN ('OPEN', 'PARTIALLY_FILLED', 'UNTRIGGERED');

DROP INDEX orders_symbol_active_idx;
-- A symbol's live orders by side and price (book rebuilds, depth queries).
CREATE INDEX orders_symbol_active_idx
    ON orders (symbol, side, price, sequence)
    WHERE status IN ('OPEN', 'PARTIALLY_FILLED', 'UNTRIGGERED');

-- The statistics view gains the waiting stops (a new column goes last: CREATE OR REPLACE VIEW keeps the others).
CREATE OR REPLACE VIEW user_order_stats AS
SELECT
    user_id,
    symbol,
    count(*)                                                       AS order_count,
    count(*) FILTER (WHERE status = 'PENDING')                     AS pending,
    count(*) FILTER (WHERE status = 'OPEN')                        AS open,
    count(*) FILTER (WHERE status = 'PARTIALLY_FILLED')            AS partially_filled,
    count(*) FILTER (WHERE status = 'FILLED')                      AS filled,
    count(*) FILTER (WHERE status = 'CANCELLED')                   AS cancelled,
    count(*) FILTER (WHERE status = 'REJECTED')                    AS rejected,
    count(*) FILTER (WHERE status = 'EXPIRED')                     AS expired,
    coalesce(sum(filled_quantity), 0)                              AS filled_volume,
    coalesce(sum(filled_quantity) FILTER (WHERE side = 'BUY'), 0)  AS bought_volume,
    coalesce(sum(filled_quantity) FILTER (WHERE side = 'SELL'), 0) AS sold_volume,
    max(created_at)                                                AS last_order_at,
    count(*) FILTER (WHERE status = 'UNTRIGGERED')                 AS untriggered
FROM orders
GROUP BY user_id, symbol;
