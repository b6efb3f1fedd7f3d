"""Publish an L2 feed from the engine and keep a local order book in step from the deltas alone.

``MatchingEngine.subscribe`` calls back after every command that changed a book
with the levels it changed (their new total, 0 when a level is gone) and the
trades. A consumer applies the deltas to its own ladder and never reads the
engine's book; at the end the ladder equals the book's depth, level for level.

Run it with ``python examples/market_data.py`` once tradebook is installed.
"""

from __future__ import annotations

import random
from contextlib import suppress
from decimal import Decimal

from tradebook import Instrument, MarketDataUpdate, MatchingEngine, OrderNotFoundError, Side

SOL = Instrument("SOL/USDC", tick_size="0.001", lot_size="0.01")


class Ladder:
    """A consumer's L2 view: price -> total quantity per side, fed by deltas only."""

    def __init__(self) -> None:
        self.sides: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
        self.updates = self.trades = 0

    def on_update(self, update: MarketDataUpdate) -> None:
        self.updates += 1
        self.trades += len(update.trades)
        for delta in update.deltas:
            levels = self.sides[delta.side]
            if delta.quantity:
                levels[delta.price] = delta.quantity
            else:
                levels.pop(delta.price, None)

    def top(self, side: Side, n: int) -> list[tuple[Decimal, Decimal]]:
        prices = sorted(self.sides[side], reverse=side is Side.BUY)[:n]
        return [(p, self.sides[side][p]) for p in prices]


def main(commands: int = 20_000) -> None:
    engine = MatchingEngine([SOL])
    ladder = Ladder()
    unsubscribe = engine.subscribe(ladder.on_update)

    rng = random.Random(3)
    mid = SOL.price_to_ticks("150.000")
    live: list[int] = []
    for order_id in range(1, commands + 1):
        if live and rng.random() < 0.3:
            with suppress(OrderNotFoundError):  # it may have traded away already
                engine.cancel_raw(None, live.pop(rng.randrange(len(live))))
            continue
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        offset = rng.randint(-3, 40)  # now and then a negative offset crosses the spread
        price = mid - offset if side is Side.BUY else mid + offset
        engine.submit_raw(order_id, side, price, rng.randint(1, 500))
        live.append(order_id)
    unsubscribe()

    depth = engine.book().depth(5)
    assert ladder.top(Side.BUY, 5) == [(level.price, level.quantity) for level in depth.bids]
    assert ladder.top(Side.SELL, 5) == [(level.price, level.quantity) for level in depth.asks]
    print(f"{ladder.updates:,} updates, {ladder.trades:,} trades; the local ladder matches the book:")
    for price, quantity in reversed(ladder.top(Side.SELL, 5)):
        print(f"  ask {price:>9} x {quantity}")
    for price, quantity in ladder.top(Side.BUY, 5):
        print(f"  bid {price:>9} x {quantity}")


if __name__ == "__main__":
    main()
