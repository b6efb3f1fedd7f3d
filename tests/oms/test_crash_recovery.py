"""Kill -9 during a burst of orders, restart, and check that nothing accepted was lost or doubled.

A real subprocess (``_crash_driver.py``) runs an OrderService on SQLite or
PostgreSQL with four users trading two symbols with orders of every type
(limit, market, quote-sized market, stop, stop-limit, trailing stop, iceberg,
GTD); the test kills it with SIGKILL after a random number of accepted
commands, opens the store again, starts a new service (recovery) and checks:

- every order the driver reported as accepted exists with a final or resting
  state at least as far along as reported, and every trade it reported exists
  (those of the stops it triggered too);
- trades are unique and consistent with the orders' filled quantities;
- the rebuilt books hold exactly the repository's resting orders (icebergs
  showing their slice), and the waiting stops exactly its untriggered ones;
- no GTD order past its time is live: those due while the process was dead
  expired at start;
- each asset's total over all users equals what was deposited (funds
  conserved), and every reservation equals what its live order's rule needs;
- the recovered service goes on trading.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from _crash_common import DEPOSITS, INSTRUMENTS, USERS
from _service_support import check_store
from _stores import drop_schema, open_store, store_location

from tradebook import OrderStatus
from tradebook.oms import OrderService

DRIVER = Path(__file__).with_name("_crash_driver.py")
ROUNDS = 3  # kill, recover and go on, three times over one store


async def seed(kind: str, location: dict) -> None:
    store = await open_store(kind, **location)
    for user in USERS:
        for asset, amount in DEPOSITS.items():
            await store.wallet.deposit(user, asset, amount)
    await store.repository.close()
    await store.wallet.close()


def run_and_kill(kind: str, location: dict, seed_value: int, kill_after: int) -> list[str]:
    """Start the driver, read its accepted commands, SIGKILL it after ``kill_after`` of them."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), kind, json.dumps(location), str(seed_value)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if line == "READY":
                continue
            lines.append(line)
            if len(lines) >= kill_after or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the driver ended by itself ({proc.returncode}):\n{err}"
    assert len(lines) >= kill_after, f"the driver accepted only {len(lines)} commands:\n{err}"
    return lines


async def check_recovered(kind: str, location: dict, accepted: list[str]) -> None:
    store = await open_store(kind, **location)
    repo, wallet = store.repository, store.wallet
    service = OrderService(repo, wallet, INSTRUMENTS, expiry_interval=None)
    try:
        report = await service.start()
        started = time.time_ns() // 1_000_000
        assert report.wallet_ops_outstanding == 0

        # accepted commands are all there
        reported_trades: set[int] = set()
        for line in accepted:
            word, order_id, *rest = line.split()
            order = await repo.get_order(int(order_id))
            assert order is not None, f"accepted order {order_id} was lost"
            assert order.status is not OrderStatus.PENDING
            if word == "CANCELLED":
                assert order.status is OrderStatus.CANCELLED
            else:
                status, filled, *trade_ids = rest
                assert order.filled_quantity >= Decimal(filled)
                if status in ("FILLED", "CANCELLED", "EXPIRED", "REJECTED"):
                    assert order.status.value == status
                reported_trades.update(int(t) for t in trade_ids)

        # trades: unique, and every accepted one kept
        trades = []
        cursor = None
        while True:
            page = await repo.list_trades(limit=1000, cursor=cursor)
            trades.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        ids = [t.id for t in trades]
        assert len(ids) == len(set(ids))
        assert reported_trades <= set(ids), "an accepted trade was lost"

        # no live GTD order is past its time once the service has started (those due while it was down
        # expired at start, their funds released)
        for inst in INSTRUMENTS:
            for order in await repo.active_orders(inst.symbol):
                assert order.expire_at is None or order.expire_at > started - 5_000, order
                if order.expire_at is not None:
                    assert order.expire_at > service._engines[inst.symbol].time, order
        for order_id in report.expired:
            assert (await repo.get_order(order_id)).status is OrderStatus.EXPIRED

        # every order's fills equal its trades; the books and the waiting stops are exactly the repository's
        # live orders (icebergs showing their slice); funds conserved in total and reserved exactly what each
        # live order's rule needs; a second rebuild from the repository gives the same engines
        totals = {asset: amount * len(USERS) for asset, amount in DEPOSITS.items()}
        await check_store(service, USERS, totals)
        for inst in INSTRUMENTS:
            depth = service.depth(inst.symbol, 1000)
            if depth.bids and depth.asks:
                assert depth.bids[0].price < depth.asks[0].price

        # and the service goes on trading
        placed = await service.place("u1", "BTC/USDT", "BUY", "0.1", "1")
        assert placed.order.status is OrderStatus.OPEN
        await service.cancel_order("u1", placed.order.id)
    finally:
        await service.close()
        await repo.close()
        await wallet.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_sigkill_during_a_burst_loses_and_duplicates_nothing(kind: str, tmp_path: Path) -> None:
    location = store_location(kind, tmp_path)
    try:
        await seed(kind, location)
        rng = random.Random(f"crash-{kind}")
        accepted: list[str] = []
        for round_number in range(ROUNDS):
            accepted += run_and_kill(kind, location, seed_value=round_number, kill_after=rng.randint(40, 250))
            await check_recovered(kind, location, accepted)
    finally:
        if kind == "postgres":
            await drop_schema(location["dsn"], location["schema"])
