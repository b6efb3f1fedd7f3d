"""Helpers shared by the test modules (plain functions, no fixtures)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

INT64_MAX = (1 << 63) - 1
ALL = 1 << 30  # "every level" for depth()/depth_raw()

#: ``TRADEBOOK_TEST_TIER=full`` (what .ci/run sets) runs the long stress, differential and
#: property runs at their full size; the default ("quick") runs the same tests with fewer
#: commands and examples, so the README's test command stays short on a loaded machine.
FULL_TIER = os.environ.get("TRADEBOOK_TEST_TIER", "quick") == "full"


def tier(full: int, quick: int) -> int:
    """``full`` commands/examples in the full tier (CI), ``quick`` in the default one."""
    return full if FULL_TIER else quick


def order_fields(order: Any) -> tuple[Any, ...]:
    """Every observable field of an order, as a comparable tuple."""
    return (
        order.id,
        order.side,
        order.price,
        order.quantity,
        order.filled_quantity,
        order.remaining_quantity,
        order.type,
        order.time_in_force,
        order.post_only,
        order.owner,
        order.client_order_id,
        order.symbol,
        order.status,
        order.sequence,
        order.is_filled,
        order.price_ticks,
        order.quantity_lots,
        order.filled_lots,
    )


def book_state(book: Any) -> dict[str, Any]:
    """Everything observable about a book, for before/after comparisons."""
    try:
        snap: Any = book.snapshot()
    except TypeError:  # ids or owners of a type snapshots do not support
        snap = None
    levels = []
    for side in (book.bids, book.asks):
        for level in side:
            levels.append(
                (
                    level.side,
                    level.price,
                    level.price_ticks,
                    level.quantity,
                    level.quantity_lots,
                    level.order_count,
                    len(level),
                    [order_fields(o) for o in level],
                )
            )
    return {
        "snapshot": snap,
        "len": len(book),
        "depth_raw": book.depth_raw(ALL),
        "depth": book.depth(ALL),
        "best": (book.best_bid_raw, book.best_ask_raw, book.spread, book.mid_price),
        "levels": levels,
        "sides": (len(book.bids), len(book.asks)),
    }


@contextlib.contextmanager
def unchanged(book: Any) -> Iterator[None]:
    """Assert that the block (which is expected to raise) leaves ``book`` exactly as it was."""
    before = book_state(book)
    try:
        yield
    finally:
        book._check()
        assert book_state(book) == before, "a failed call changed the book"


def fill_book(book: Any, bids: dict[int, list[int]], asks: dict[int, list[int]], start_id: int = 1) -> int:
    """Add raw orders: ``{price_ticks: [lots, ...]}`` per side; returns the next free id."""
    oid = start_id
    for side, levels in (("BUY", bids), ("SELL", asks)):
        for ticks, quantities in levels.items():
            for lots in quantities:
                book.add_raw(oid, side, ticks, lots)
                oid += 1
    return oid


def raises_unchanged(book: Any, exc_type: type[BaseException], code: str | None, fn: Any, *args: Any, **kwargs: Any):
    """Call ``fn(*args, **kwargs)``; assert it raises ``exc_type`` (with ``.code``) and leaves ``book`` unchanged."""
    import pytest

    from tradebook import InvalidOrderError, OrderNotFoundError, TradebookError

    with unchanged(book), pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    err = info.value
    if code is not None:
        assert err.code == code
    if issubclass(exc_type, TradebookError):
        # every tradebook error has its class's stable code and belongs to its built-in family
        assert err.code == type(err).code
        if isinstance(err, InvalidOrderError):
            assert isinstance(err, ValueError)
        if isinstance(err, OrderNotFoundError):
            assert isinstance(err, KeyError) and not isinstance(err, ValueError)
    return err
