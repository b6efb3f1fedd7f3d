"""The column lists of the tables both adapters read and write, in the order the codecs use."""

from __future__ import annotations

__all__ = ["ACTIVE", "INT64_MAX", "INT64_MIN", "OP_COLUMNS", "ORDER_COLUMNS", "ORDER_COLUMN_COUNT", "TRADE_COLUMNS"]

ORDER_COLUMNS = (
    "id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity, status,"
    " created_at, updated_at, client_order_id, post_only, sequence,"
    " stop_price, trailing_offset, display_quantity, visible_quantity, expire_at, quote_quantity"
)
#: How many columns ``ORDER_COLUMNS`` names.
ORDER_COLUMN_COUNT = ORDER_COLUMNS.count(",") + 1
TRADE_COLUMNS = "id, symbol, price, quantity, buy_order_id, sell_order_id, buyer_id, seller_id, taker_side, created_at"
OP_COLUMNS = "id, symbol, kind, payload"

#: The condition of a live order: resting in a book, or waiting for its stop to trigger (the partial
#: indexes of both dialects carry the same text, so that their planners use them).
ACTIVE = "status IN ('OPEN', 'PARTIALLY_FILLED', 'UNTRIGGERED')"

#: Ids are BIGINT / INTEGER columns: signed 64 bits.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
