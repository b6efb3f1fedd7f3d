"""A backtest loop: replay historical order flow through the engine and run a quoting strategy inside it.

The "history" is a seeded, generated stream of order events (new limit orders,
cancels, marketable orders), the shape a recorded exchange feed has once parsed:
``(timestamp_ns, kind, order_id, side, price_ticks, quantity_lots)``. The loop
feeds each event to the engine through the raw API, and a strategy quotes one
bid and one ask around the mid after every event, keeping track of its fills,
position and cash from the trades that name its orders. The engine is
deterministic, so the same history and strategy always give the same result.

Run it with ``python examples/backtest.py`` once tradebook is installed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import suppress

from tradebook import BACKEND, Instrument, MatchingEngine, OrderNotFoundError, Side

BTC = Instrument("BTC/USDT", tick_size="0.01", lot_size="0.001")
SYMBOL = BTC.symbol
MID = BTC.price_to_ticks("50000.00")
STRATEGY = "mm"  # the strategy's owner: its orders are the ones it gets trades for


def history(n: int, seed: int = 42) -> Iterator[tuple[int, str, int, str, int, int]]:
    """Seeded market events: mostly passive limit orders, some cancels, some marketable orders."""
    rng = random.Random(seed)
    resting: list[int] = []
    clock_ns = 1_700_000_000_000_000_000
    for order_id in range(1, n + 1):
        clock_ns += rng.randint(10_000, 2_000_000)
        side = "BUY" if rng.random() < 0.5 else "SELL"
        r = rng.random()
        if r < 0.25 and resting:
            yield clock_ns, "cancel", resting.pop(rng.randrange(len(resting))), side, 0, 0
        elif r < 0.35:  # marketable: crosses up to 20 ticks into the other side
            price = MID + rng.randint(1, 20) if side == "BUY" else MID - rng.randint(1, 20)
            yield clock_ns, "take", order_id, side, price, rng.randint(1, 400)
        else:
            away = int(rng.expovariate(1 / 15)) + 1
            price = MID - away if side == "BUY" else MID + away
            resting.append(order_id)
            yield clock_ns, "limit", order_id, side, price, rng.randint(1, 400)


class Quoter:
    """Quote one bid and one ask ``spread`` ticks either side of the mid; re-quote when the mid moves.

    Sizes and prices are lots and ticks; ``limit`` caps the position (in lots) either way.
    """

    def __init__(self, engine: MatchingEngine, spread: int, size: int, limit: int) -> None:
        self.engine, self.spread, self.size, self.limit = engine, spread, size, limit
        self.book = engine.book(SYMBOL)
        self.quotes: dict[Side, tuple[str, int] | None] = {Side.BUY: None, Side.SELL: None}
        self.next_id = 0
        self.position = 0  # lots
        self.cash = 0  # ticks x lots
        self.fills = 0

    def on_trade(self, maker_side: Side, price: int, lots: int) -> None:
        bought = maker_side is Side.BUY
        self.position += lots if bought else -lots
        self.cash += -price * lots if bought else price * lots
        self.fills += 1

    def requote(self) -> None:
        bid, ask = self.book.best_bid_raw, self.book.best_ask_raw
        if bid is None or ask is None:
            return
        mid = (bid + ask) // 2
        for side, price in ((Side.BUY, mid - self.spread), (Side.SELL, mid + self.spread)):
            current = self.quotes[side]
            if (self.position >= self.limit and side is Side.BUY) or (
                self.position <= -self.limit and side is Side.SELL
            ):
                price = 0  # at the position limit: stop quoting the side that would add to it
            if current is not None and current[1] == price and current[0] in self.book:
                continue  # still resting where it should be: keep its queue position
            if current is not None:
                with suppress(OrderNotFoundError):  # it may have been filled in the meantime
                    self.engine.cancel_raw(SYMBOL, current[0])
            if price == 0:
                self.quotes[side] = None
                continue
            self.next_id += 1
            order_id = f"{STRATEGY}-{self.next_id}"
            report = self.engine.submit_raw(order_id, side, price, self.size, owner=STRATEGY)
            for trade in report.trades:  # our quote crossed and took liquidity
                self.on_trade(side, trade.price_ticks, trade.quantity_lots)
            self.quotes[side] = (order_id, price) if report.remaining_lots else None


def main(events: int = 50_000) -> None:
    engine = MatchingEngine([BTC])
    strategy = Quoter(engine, spread=3, size=50, limit=500)
    trades = 0
    for _ts, kind, order_id, side, price, lots in history(events):
        if kind == "cancel":
            with suppress(OrderNotFoundError):  # it may have been filled already
                engine.cancel_raw(SYMBOL, order_id)
            continue
        tif = "IOC" if kind == "take" else "GTC"
        report = engine.submit_raw(order_id, side, price, lots, time_in_force=tif)  # no owner: no self-trade checks
        trades += len(report.trades)
        for trade in report.trades:
            if trade.maker_owner == STRATEGY:  # someone traded against our quote
                maker_side = Side.SELL if trade.taker_side is Side.BUY else Side.BUY
                strategy.on_trade(maker_side, trade.price_ticks, trade.quantity_lots)
        strategy.requote()

    bid, ask = engine.book(SYMBOL).best_bid_raw, engine.book(SYMBOL).best_ask_raw
    mark = (bid + ask) // 2 if bid is not None and ask is not None else MID
    pnl = strategy.cash + strategy.position * mark  # ticks x lots
    print(f"backend {BACKEND}: replayed {events:,} events, {trades:,} market trades")
    print(f"strategy: {strategy.fills} fills, position {BTC.lots_to_quantity(strategy.position)} BTC")
    value = BTC.ticks_to_price(1) * BTC.lots_to_quantity(1) * pnl
    print(f"marked to mid {BTC.ticks_to_price(mark)}: P&L {value:.2f} USDT")


if __name__ == "__main__":
    main()
