"""Seeded, realistic order flow for the benchmarks (shared by pytest-benchmark and ``ratios.py``).

The resting book: ``N_ORDERS`` (200,000) limit orders on BTC/USDT (tick 0.01, lot
0.001) around a mid of 50,000.00, about 2,000 price levels a side. A level's
distance from the touch is drawn from an exponential distribution (mean
``LEVEL_SCALE`` ticks), so most orders sit in the top few hundred levels and the
deep levels are thin and gappy, as in real books. Quantities are log-normal
(median 0.1 BTC). Arrival order is random, so each level's FIFO mixes old and new.

On top of the book the workload prepares, once and outside any timing:

* ``adds``: new orders; most land on existing levels (same distance
  distribution), ``NEW_LEVEL_SHARE`` of them on price levels that are empty in
  the book (gaps in the deep tail or beyond it), so they create a level;
* ``cancel_ids``: every resting id, shuffled, so cancels hit random resting orders;
* ``fill_ids``: shuffled ids of resting orders with at least 2 lots (a 1-lot
  partial fill leaves them resting, so the book size does not change);
* ``amends``: ``(id, new lots | None, new ticks | None)``: half lower the quantity
  by one lot (keeps priority), half move the order 1-5 ticks on its own side
  (back of the new level; never crossing the spread).

Everything is integers (ticks and lots) plus the ``Side`` enums; ``decimal_*``
helpers convert once, in advance, for the Decimal-API benchmarks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from tradebook import Instrument, Side

__all__ = [
    "BUY",
    "LEVEL_RANGE",
    "LEVEL_SCALE",
    "LOT",
    "MID_TICKS",
    "N_ORDERS",
    "NEW_LEVEL_SHARE",
    "SELL",
    "SEED",
    "SYMBOL",
    "TICK",
    "Workload",
    "build_book_decimal",
    "build_book_raw",
    "decimal_orders",
    "depth_of",
    "get_workload",
    "instrument",
    "level_totals",
]

SYMBOL = "BTC/USDT"
TICK = "0.01"
LOT = "0.001"
MID_TICKS = 5_000_000  # 50,000.00 USDT; best bid 49,999.99, best ask 50,000.01
N_ORDERS = 200_000
LEVEL_RANGE = 2_400  # a resting order sits at most this many ticks from the touch
LEVEL_SCALE = 320  # mean distance from the touch, in ticks: ~2,000 occupied levels a side
NEW_LEVEL_SHARE = 0.05
SEED = 20240601

BUY = Side.BUY
SELL = Side.SELL

OrderTuple = tuple[int, Side, int, int]  # (id, side, price ticks, quantity lots)
AmendTuple = tuple[int, int | None, int | None]  # (id, new quantity lots, new price ticks)
Levels = tuple[dict[int, list[int]], dict[int, list[int]]]  # per side: ticks -> [total lots, order count]


def instrument() -> Instrument:
    """The benchmark instrument: BTC/USDT, tick 0.01, lot 0.001."""
    return Instrument(SYMBOL, TICK, LOT)


def ticks_at(side: Side, offset: int) -> int:
    """The price in ticks ``offset`` ticks away from the touch on ``side``."""
    return MID_TICKS - 1 - offset if side is BUY else MID_TICKS + 1 + offset


def _offset(rng: random.Random) -> int:
    while True:
        k = int(rng.expovariate(1.0 / LEVEL_SCALE))
        if k < LEVEL_RANGE:
            return k


def _lots(rng: random.Random) -> int:
    # log-normal around 100 lots (0.1 BTC), 1 lot .. 50 BTC
    return min(50_000, max(1, round(rng.lognormvariate(math.log(100), 1.3))))


@dataclass(frozen=True)
class Workload:
    """The resting book and the prepared operation streams (see the module docstring)."""

    seed: int
    orders: list[OrderTuple]
    adds: list[OrderTuple]
    cancel_ids: list[int]
    fill_ids: list[int]
    amends: list[AmendTuple]
    levels: Levels  # the resting book's per-side ticks -> [total lots, order count]

    def levels_per_side(self) -> tuple[int, int]:
        """The number of occupied price levels (bids, asks) in the resting book."""
        return len(self.levels[0]), len(self.levels[1])

    def levels_with(self, changes: Iterable[tuple[Side, int, int, int]]) -> Levels:
        """The resting book's levels after ``(side, ticks, +-lots, +-orders)`` changes."""
        out: Levels = ({t: list(r) for t, r in self.levels[0].items()}, {t: list(r) for t, r in self.levels[1].items()})
        for side, ticks, lots, count in changes:
            levels = out[side is SELL]
            row = levels.setdefault(ticks, [0, 0])
            row[0] += lots
            row[1] += count
            if row[1] == 0:
                assert row[0] == 0, "reference model: an empty level with quantity left"
                del levels[ticks]
        return out


@lru_cache(maxsize=2)
def get_workload(seed: int = SEED, n_orders: int = N_ORDERS, n_adds: int = 10_000) -> Workload:
    """Generate (and cache) the seeded workload. Deterministic for a given seed."""
    rng = random.Random(seed)
    orders: list[OrderTuple] = []
    occupied: tuple[set[int], set[int]] = (set(), set())
    for oid in range(1, n_orders + 1):
        side = BUY if rng.random() < 0.5 else SELL
        offset = _offset(rng)
        occupied[side is SELL].add(offset)
        orders.append((oid, side, ticks_at(side, offset), _lots(rng)))

    # New-level candidates: empty ticks in the tail and just beyond it.
    empty = tuple([k for k in range(LEVEL_RANGE + 600) if k not in occupied[sell]] for sell in (0, 1))
    adds: list[OrderTuple] = []
    for i in range(n_adds):
        side = BUY if rng.random() < 0.5 else SELL
        new_level = rng.random() < NEW_LEVEL_SHARE
        offset = rng.choice(empty[side is SELL]) if new_level else _offset(rng)
        adds.append((n_orders + 1 + i, side, ticks_at(side, offset), _lots(rng)))

    cancel_ids = [o[0] for o in orders]
    rng.shuffle(cancel_ids)
    fill_ids = [o[0] for o in orders if o[3] >= 2]
    rng.shuffle(fill_ids)

    amend_ids = [o[0] for o in orders if o[3] >= 2]
    rng.shuffle(amend_ids)
    amends: list[AmendTuple] = []
    for oid in amend_ids:
        _, side, ticks, lots = orders[oid - 1]
        if rng.random() < 0.5:
            amends.append((oid, lots - 1, None))
        else:
            step = rng.randint(1, 5) * (1 if rng.random() < 0.5 else -1)
            new = ticks + step
            # stay on the own side of the spread (bids < mid < asks)
            if (side is BUY and new >= MID_TICKS) or (side is SELL and new <= MID_TICKS):
                new = ticks - step
            amends.append((oid, None, new))
    return Workload(seed, orders, adds, cancel_ids, fill_ids, amends, level_totals(orders))


# -- building books ----------------------------------------------------------------


def build_book_raw(order_book_cls: Any, orders: Iterable[OrderTuple]) -> Any:
    """Build a tradebook ``OrderBook`` through the raw integer API (fast)."""
    book = order_book_cls(instrument())
    add = book.add_raw
    for oid, side, ticks, lots in orders:
        add(oid, side, ticks, lots)
    return book


def decimal_orders(orders: Iterable[OrderTuple]) -> list[tuple[int, Side, Decimal, Decimal]]:
    """The same orders with ``Decimal`` price and quantity (converted once, exactly)."""
    inst = instrument()
    price, qty = inst.ticks_to_price, inst.lots_to_quantity
    return [(oid, side, price(ticks), qty(lots)) for oid, side, ticks, lots in orders]


def build_book_decimal(order_cls: Any, order_book_cls: Any, orders: Iterable[OrderTuple]) -> Any:
    """Build the same book through the Decimal API: ``add_order(Order(...))``."""
    book = order_book_cls(instrument())
    add = book.add_order
    for oid, side, price, qty in decimal_orders(orders):
        add(order_cls(oid, side, price, qty))
    return book


# -- a reference model for correctness checks -----------------------------------------


def level_totals(orders: Iterable[Sequence[Any]]) -> Levels:
    """Per-side ``ticks -> [total lots, order count]`` of ``(id, side, ticks, lots)`` rows."""
    out: Levels = ({}, {})
    for _, side, ticks, lots in orders:
        levels = out[side is SELL]
        row = levels.get(ticks)
        if row is None:
            levels[ticks] = [lots, 1]
        else:
            row[0] += lots
            row[1] += 1
    return out


def depth_of(levels: Levels, n: int = 10) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """The expected ``depth_raw(n)`` of a book with these level totals."""
    bids, asks = levels
    return (
        [(t, bids[t][0], bids[t][1]) for t in sorted(bids, reverse=True)[:n]],
        [(t, asks[t][0], asks[t][1]) for t in sorted(asks)[:n]],
    )
