"""A burst of orders through OrderService, run as a subprocess that the crash tests kill.

Usage: python _crash_driver.py KIND LOCATION_JSON SEED

Prints ``READY`` once recovery is done, then one line per command the service
has accepted (``PLACED id status filled trade_ids...``, the trade ids of the
stops it triggered included, or ``CANCELLED id``), flushed, until it is killed
or has placed 100,000 orders. The orders are of every type: limit, IOC,
market, quote-sized market, stop, stop-limit, trailing stop, iceberg and GTD
(due within seconds, so that some expire while the process runs and some while
it is dead); a background task expires GTD orders every 0.2 s.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _crash_common import INSTRUMENTS, USERS
from _stores import open_store

from tradebook import InsufficientBalanceError, OrderConflictError
from tradebook.oms import OrderService


def order_of(rng: random.Random, side: str) -> tuple[str | None, str | None, dict[str, Any]]:
    """A random order of any type: (quantity, price, keyword arguments)."""
    quantity: str | None = f"{rng.randint(1, 20) / 10:.1f}"
    price: str | None = str(100 + rng.randint(-5, 5) + (1 if side == "SELL" else -1) * rng.randint(-3, 3))
    away = rng.randint(1, 6) * (1 if side == "BUY" else -1)  # a stop beyond the market
    roll = rng.random()
    kwargs: dict[str, Any]
    if roll < 0.55:
        kwargs = {"time_in_force": "IOC" if roll > 0.5 else "GTC"}
    elif roll < 0.62:
        price, kwargs = None, {"type": "MARKET"}
    elif roll < 0.67:
        quantity, price = None, None
        kwargs = {"type": "MARKET", "quote_quantity": str(rng.randint(50, 400))}
    elif roll < 0.74:
        kwargs = {"type": "STOP", "stop_price": str(100 + away)}
        price = None
    elif roll < 0.80:
        kwargs = {"type": "STOP_LIMIT", "stop_price": str(100 + away)}
    elif roll < 0.85:
        kwargs = {"type": "TRAILING_STOP", "trailing_offset": str(rng.randint(1, 4))}
        price = None
    elif roll < 0.93:
        kwargs = {"display_quantity": "0.3"} if quantity not in ("0.1", "0.2", "0.3") else {}
    else:  # GTD, due within three seconds: some expire while the process runs, some while it is dead
        kwargs = {"time_in_force": "GTD", "expire_at": now_ms() + rng.randint(0, 3000)}
        if roll > 0.97:  # a GTD stop
            kwargs.update(type="STOP", stop_price=str(100 + away))
            price = None
    return quantity, price, kwargs


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def trader(service: OrderService, user: str, rng: random.Random, out: list[int]) -> None:
    mine: list[int] = []
    while out[0] < 100_000:
        # SQLite's statements run inline: without a yield here one trader would run alone (and, trading
        # only with itself, never trade at all)
        await asyncio.sleep(0)
        inst = rng.choice(INSTRUMENTS)
        if rng.random() < 0.15 and mine:
            order_id = mine.pop(rng.randrange(len(mine)))
            try:
                await service.cancel_order(user, order_id)
            except OrderConflictError:
                continue
            print(f"CANCELLED {order_id}", flush=True)
            continue
        side = rng.choice(("BUY", "SELL"))
        quantity, price, kwargs = order_of(rng, side)
        try:
            placed = await service.place(
                user, inst.symbol, side, quantity, price, client_order_id=f"{user}-{rng.getrandbits(48)}", **kwargs
            )
        except InsufficientBalanceError:
            continue
        out[0] += 1
        order = placed.order
        if order.is_active:
            mine.append(order.id)
        trade_ids = " ".join(str(t.id) for t in placed.all_trades)
        print(f"PLACED {order.id} {order.status.value} {order.filled_quantity} {trade_ids}".rstrip(), flush=True)


async def main() -> None:
    kind, location, seed = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    store = await open_store(kind, **location)
    service = OrderService(store.repository, store.wallet, INSTRUMENTS, expiry_interval=0.2)
    await service.start()
    print("READY", flush=True)
    counter = [0]
    await asyncio.gather(
        *(trader(service, user, random.Random(seed * 100 + i), counter) for i, user in enumerate(USERS))
    )
    await service.close()
    await store.repository.close()
    await store.wallet.close()


if __name__ == "__main__":
    asyncio.run(main())
