-- The ledger wallet's operations as server-side functions: the adapter runs each
-- one as a single autocommit statement (one round trip, one commit; a function
-- call is atomic) instead of a transaction of several statements.
--
-- Locking is as before: a reserve takes its balance row (a conditional update, so
-- concurrent reserves queue on the row and re-check what is left) and then adds
-- the reservation; release and settle lock reservations first (in ref order),
-- then balances (in (user_id, asset) order), so concurrent calls cannot deadlock.
-- A refused reserve changes nothing and reports what was available; a refused
-- settlement raises one of these SQLSTATEs, and its whole statement rolls back
-- (the trade id is not recorded as settled):
--
--   TB001  the buyer's reservation cannot pay (missing, too small, another asset)
--   TB002  the seller's reservation cannot deliver
--   TB003  a settlement with fees but no fee account
--
-- The search_path of the migration (this schema) is pinned, so any caller's works.

-- ok = true: the reservation now held under p_ref (a new one, or the one the ref
-- already held, unchanged). ok = false: nothing was reserved, and amount is what
-- the account had available (0 when there is no account).
CREATE FUNCTION tb_reserve(
    p_user_id text, p_asset text, p_amount numeric, p_ref text,
    OUT ok boolean, OUT held_user_id text, OUT held_asset text, OUT amount numeric
)
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    SELECT r.user_id, r.asset, r.amount INTO held_user_id, held_asset, amount
    FROM wallet_reservations r WHERE r.ref = p_ref;
    IF FOUND THEN
        ok := true;
        RETURN;
    END IF;
    UPDATE wallet_balances b SET available = b.available - p_amount, reserved = b.reserved + p_amount
    WHERE b.user_id = p_user_id AND b.asset = p_asset AND b.available >= p_amount;
    IF FOUND THEN
        -- A concurrent reserve of the same ref makes this wait, then find the ref taken.
        INSERT INTO wallet_reservations (ref, user_id, asset, amount) VALUES (p_ref, p_user_id, p_asset, p_amount)
        ON CONFLICT (ref) DO NOTHING;
        IF FOUND THEN
            ok := true;
            held_user_id := p_user_id;
            held_asset := p_asset;
            amount := p_amount;
            RETURN;
        END IF;
        UPDATE wallet_balances b SET available = b.available + p_amount, reserved = b.reserved - p_amount
        WHERE b.user_id = p_user_id AND b.asset = p_asset;
        SELECT r.user_id, r.asset, r.amount INTO held_user_id, held_asset, amount
        FROM wallet_reservations r WHERE r.ref = p_ref;
        IF FOUND THEN
            ok := true;
            RETURN;
        END IF;
    END IF;
    ok := false;
    held_user_id := NULL;
    held_asset := NULL;
    SELECT b.available INTO amount FROM wallet_balances b WHERE b.user_id = p_user_id AND b.asset = p_asset;
    amount := coalesce(amount, 0);
END;
$$;

-- Returns what was released: all of the reservation when p_amount is NULL, else
-- the smaller of p_amount and what it holds; 0 for an unknown ref. A reservation
-- brought to zero is deleted.
CREATE FUNCTION tb_release(p_ref text, p_amount numeric) RETURNS numeric
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    held wallet_reservations%ROWTYPE;
    released numeric;
BEGIN
    SELECT * INTO held FROM wallet_reservations r WHERE r.ref = p_ref FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    released := CASE WHEN p_amount IS NULL OR held.amount < p_amount THEN held.amount ELSE p_amount END;
    IF released = held.amount THEN
        DELETE FROM wallet_reservations r WHERE r.ref = p_ref;
    ELSIF released <> 0 THEN
        UPDATE wallet_reservations r SET amount = r.amount - released WHERE r.ref = p_ref;
    END IF;
    IF released <> 0 THEN
        UPDATE wallet_balances b SET reserved = b.reserved - released, available = b.available + released
        WHERE b.user_id = held.user_id AND b.asset = held.asset;
    END IF;
    RETURN released;
END;
$$;

-- Applies one trade's movements once per trade id; returns false when the trade
-- was settled already (nothing changes). Raises TB001, TB002 or TB003 (above).
CREATE FUNCTION tb_settle(
    p_trade_id bigint, p_base text, p_quote text, p_buyer_id text, p_seller_id text,
    p_buy_ref text, p_sell_ref text, p_quantity numeric, p_notional numeric,
    p_buyer_fee numeric, p_seller_fee numeric, p_fee_account text
) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    held wallet_reservations%ROWTYPE;
    buy wallet_reservations%ROWTYPE;
    sell wallet_reservations%ROWTYPE;
    move record;
BEGIN
    -- First, so that a concurrent settle of the same trade waits here and then does nothing.
    INSERT INTO wallet_settled_trades (trade_id) VALUES (p_trade_id) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    FOR held IN
        SELECT * FROM wallet_reservations r WHERE r.ref IN (p_buy_ref, p_sell_ref) ORDER BY r.ref COLLATE "C" FOR UPDATE
    LOOP
        IF held.ref = p_buy_ref THEN
            buy := held;
        END IF;
        IF held.ref = p_sell_ref THEN
            sell := held;
        END IF;
    END LOOP;
    IF buy.ref IS NULL OR buy.amount < p_notional OR buy.asset <> p_quote THEN
        RAISE EXCEPTION 'reservation % cannot pay % %', p_buy_ref, p_notional, p_quote USING ERRCODE = 'TB001';
    END IF;
    IF sell.ref IS NULL OR sell.amount < p_quantity OR sell.asset <> p_base THEN
        RAISE EXCEPTION 'reservation % cannot deliver % %', p_sell_ref, p_quantity, p_base USING ERRCODE = 'TB002';
    END IF;
    IF (p_buyer_fee <> 0 OR p_seller_fee <> 0) AND p_fee_account IS NULL THEN
        RAISE EXCEPTION 'a settlement with fees needs a fee_account' USING ERRCODE = 'TB003';
    END IF;
    -- Every account touched (fee accounts even for a zero fee, like the memory wallet),
    -- its changes summed, in key order.
    FOR move IN
        SELECT m.user_id, m.asset, sum(m.available) AS available, sum(m.reserved) AS reserved
        FROM (VALUES
            (buy.user_id, p_quote, 0::numeric, -p_notional),
            (sell.user_id, p_base, 0::numeric, -p_quantity),
            (p_buyer_id, p_base, p_quantity - p_buyer_fee, 0::numeric),
            (p_seller_id, p_quote, p_notional - p_seller_fee, 0::numeric),
            (p_fee_account, p_base, p_buyer_fee, 0::numeric),
            (p_fee_account, p_quote, p_seller_fee, 0::numeric)
        ) AS m (user_id, asset, available, reserved)
        WHERE m.user_id IS NOT NULL
        GROUP BY m.user_id, m.asset
        ORDER BY m.user_id COLLATE "C", m.asset COLLATE "C"
    LOOP
        UPDATE wallet_balances b
        SET available = b.available + move.available, reserved = b.reserved + move.reserved
        WHERE b.user_id = move.user_id AND b.asset = move.asset;
        IF NOT FOUND THEN
            -- A new account (one that receives only); a concurrent first credit updates instead.
            INSERT INTO wallet_balances AS b (user_id, asset, available, reserved)
            VALUES (move.user_id, move.asset, move.available, move.reserved)
            ON CONFLICT (user_id, asset) DO UPDATE
            SET available = b.available + excluded.available, reserved = b.reserved + excluded.reserved;
        END IF;
    END LOOP;
    IF buy.amount = p_notional THEN
        DELETE FROM wallet_reservations r WHERE r.ref = p_buy_ref;
    ELSIF p_notional <> 0 THEN
        UPDATE wallet_reservations r SET amount = r.amount - p_notional WHERE r.ref = p_buy_ref;
    END IF;
    IF p_sell_ref = p_buy_ref THEN
        sell.amount := sell.amount - p_notional;  -- one reservation paying both legs: the second from what is left
    END IF;
    IF sell.amount = p_quantity THEN
        DELETE FROM wallet_reservations r WHERE r.ref = p_sell_ref;
    ELSIF p_quantity <> 0 THEN
        UPDATE wallet_reservations r SET amount = r.amount - p_quantity WHERE r.ref = p_sell_ref;
    END IF;
    RETURN true;
END;
$$;
