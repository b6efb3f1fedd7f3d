"""The statements both adapters send, in either placeholder style (``?`` for SQLite, ``%s`` for psycopg).

Listings are built per call and returned as ``(sql, params)``; status, side
and the page size go in as literals (enum values and an int checked here), so
the planners can match partial-index predicates (a user's open orders).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...enums import OrderStatus, Side
from .._paging import check_limit, decode_cursor
from ..models import OrderQuery
from .columns import ACTIVE, INT64_MAX, ORDER_COLUMNS, TRADE_COLUMNS

__all__ = ["Queries"]


def _same_bound(value: datetime, name: str) -> Any:
    return value


class Queries:
    """The repository's shared statements with ``mark`` as the placeholder."""

    def __init__(self, mark: str) -> None:
        p = self.mark = mark
        select_orders = f"SELECT {ORDER_COLUMNS} FROM orders"
        self.get_order = f"{select_orders} WHERE id = {p}"
        self.get_order_by_client_id = f"{select_orders} WHERE user_id = {p} AND client_order_id = {p}"
        self.active_orders = f"{select_orders} WHERE symbol = {p} AND {ACTIVE} ORDER BY coalesce(sequence, 0), id"
        self.pending_orders = f"{select_orders} WHERE status = 'PENDING' ORDER BY id"
        self.order_exists = f"SELECT 1 FROM orders WHERE id = {p}"
        self.order_status = f"SELECT status FROM orders WHERE id = {p}"
        self.cancel_order = f"UPDATE orders SET status = 'CANCELLED', updated_at = {p} WHERE id = {p} AND {ACTIVE}"
        self.delete_order = f"DELETE FROM orders WHERE id = {p} AND status = 'PENDING'"
        self.last_ids = (
            "SELECT (SELECT coalesce(max(id), 0) FROM orders), (SELECT coalesce(max(id), 0) FROM trades),"
            " (SELECT coalesce(max(sequence), 0) FROM orders), (SELECT coalesce(max(id), 0) FROM wallet_ops)"
        )

    def list_orders(
        self, user_id: str, query: OrderQuery, bound: Callable[[datetime, str], Any] | None = None
    ) -> tuple[str, list[Any]]:
        """A user's orders matching ``query``, newest first, one row past the page.

        ``bound(value, "since"|"until")`` is a time bound as the dialect compares it (as it is by default).
        """
        p = self.mark
        if bound is None:
            bound = _same_bound
        limit = check_limit(query.limit)
        before = decode_cursor(query.cursor)
        where = [f"user_id = {p}"]
        params: list[Any] = [user_id]
        if before is not None and before <= INT64_MAX:  # a larger cursor is above every stored id
            where.append(f"id < {p}")
            params.append(before)
        if query.symbol is not None:
            where.append(f"symbol = {p}")
            params.append(query.symbol)
        if query.status is not None:
            where.append(f"status = '{OrderStatus(query.status).value}'")
        if query.side is not None:
            where.append(f"side = '{Side(query.side).value}'")
        if query.since is not None:
            where.append(f"created_at >= {p}")
            params.append(bound(query.since, "since"))
        if query.until is not None:
            where.append(f"created_at < {p}")
            params.append(bound(query.until, "until"))
        return (
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {limit + 1}",
            params,
        )

    def list_trades(
        self, symbol: str | None, user_id: str | None, limit: int, cursor: str | None
    ) -> tuple[str, list[Any]]:
        """Trades newest first, by symbol and/or a user on either side, one row past the page."""
        p = self.mark
        limit = check_limit(limit)
        before = decode_cursor(cursor)
        where = ["true"]
        params: list[Any] = []
        if before is not None and before <= INT64_MAX:
            where.append(f"id < {p}")
            params.append(before)
        if symbol is not None:
            where.append(f"symbol = {p}")
            params.append(symbol)
        if user_id is not None:
            where.append(f"(buyer_id = {p} OR seller_id = {p})")
            params += [user_id, user_id]
        return (
            f"SELECT {TRADE_COLUMNS} FROM trades WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {limit + 1}",
            params,
        )
