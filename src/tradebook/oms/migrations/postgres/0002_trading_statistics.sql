-- Reporting: 24-hour per-symbol trading statistics (a materialized view with a
-- refresh function) and per-user order statistics (a plain view).

-- One row per symbol that traded in the 24 hours before the last refresh.
-- open/close are the first/last trade by (created_at, id); one sort per refresh
-- feeds both the window functions and the grouping.
CREATE MATERIALIZED VIEW trading_stats_24h AS
SELECT
    symbol,
    count(*)                AS trade_count,
    sum(quantity)           AS volume,
    sum(price * quantity)   AS notional,
    min(open_price)         AS open,
    max(price)              AS high,
    min(price)              AS low,
    min(close_price)        AS close,
    min(created_at)         AS first_trade_at,
    max(created_at)         AS last_trade_at,
    now()                   AS refreshed_at
FROM (
    SELECT
        symbol,
        price,
        quantity,
        created_at,
        first_value(price) OVER w AS open_price,
        last_value(price) OVER w  AS close_price
    FROM trades
    WHERE created_at >= now() - interval '24 hours'
    WINDOW w AS (
        PARTITION BY symbol ORDER BY created_at, id
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    )
) AS windowed
GROUP BY symbol
WITH DATA;

-- REFRESH ... CONCURRENTLY needs a unique index over all rows.
CREATE UNIQUE INDEX trading_stats_24h_symbol_key ON trading_stats_24h (symbol);

-- Recompute the statistics without blocking readers. The search_path of the
-- migration (this schema) is pinned, so any caller's search_path works.
CREATE FUNCTION refresh_trading_stats() RETURNS void
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY trading_stats_24h;
END;
$$;

-- Per user and symbol: orders by status, and the filled volume (bought, sold).
CREATE VIEW user_order_stats AS
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
    max(created_at)                                                AS last_order_at
FROM orders
GROUP BY user_id, symbol;
