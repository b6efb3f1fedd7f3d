"""A burst of orders through OrderService, run as a subprocess that the crash tests kill.

Usage: python _crash_driver.py KIND LOCATION_JSON SEED

Prints ``READY`` once recovery is done, then one line per command the service
has accepted (``PLACED id status filled trade_ids...`` or ``CANCELLED id``),
flushed, until it is killed or has placed 100,000 orders.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _crash_common import INSTRUMENTS, USERS
from _stores import open_store

from tradebook import InsufficientBalanceError, OrderConflictError
from tradebook.oms import OrderService


async def trader(service: OrderService, user: str, rng: random.Random, out: list[int]) -> None:
    mine: list[int] = []
    while out[0] < 100_000:
        inst = rng.choice(INSTRUMENTS)
        roll = rng.random()
        if roll < 0.2 and mine:
            order_id = mine.pop(rng.randrange(len(mine)))
            try:
                await service.cancel_order(user, order_id)
            except OrderConflictError:
                continue
            print(f"CANCELLED {order_id}", flush=True)
            continue
        side = rng.choice(("BUY", "SELL"))
        quantity = f"{rng.randint(1, 20) / 10:.1f}"
        kind = "MARKET" if roll > 0.93 else "LIMIT"
        price = (
            None
            if kind == "MARKET"
            else str(100 + rng.randint(-5, 5) + (1 if side == "SELL" else -1) * rng.randint(-3, 3))
        )
        tif = "IOC" if kind == "LIMIT" and roll > 0.85 else "GTC"
        try:
            placed = await service.place(
                user,
                inst.symbol,
                side,
                quantity,
                price,
                type=kind,
                time_in_force=tif,
                client_order_id=f"{user}-{rng.getrandbits(48)}",
            )
        except InsufficientBalanceError:
            continue
        out[0] += 1
        order = placed.order
        if order.is_active:
            mine.append(order.id)
        trade_ids = " ".join(str(t.id) for t in placed.trades)
        print(f"PLACED {order.id} {order.status.value} {order.filled_quantity} {trade_ids}".rstrip(), flush=True)


async def main() -> None:
    kind, location, seed = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    store = await open_store(kind, **location)
    service = OrderService(store.repository, store.wallet, INSTRUMENTS)
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
