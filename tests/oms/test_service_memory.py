"""Memory stays flat over 10,000 placements and cancels through OrderService.

On SQLite, so that what the repository keeps lives in the database file and not
in Python objects: whatever grows in the process is the service's (or an
adapter's) leak. Traced with tracemalloc after a warm-up.
"""

from __future__ import annotations

import gc
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest

from tradebook import Instrument, OrderStatus
from tradebook.oms import OrderService
from tradebook.oms.sqlite import SQLiteOrderRepository, SQLiteWallet

INST = Instrument("BTC/USD", "0.01", "0.001")


async def cycle(service: OrderService, i: int) -> None:
    side = "BUY" if i % 2 else "SELL"
    price = Decimal(10_000 - 5 - i % 7 if side == "BUY" else 10_005 + i % 7).scaleb(-2)
    placed = await service.place_order(f"u{i % 8}", INST.symbol, side, "0.5", price, client_order_id=f"c{i}")
    assert placed.status is OrderStatus.OPEN
    cancelled = await service.cancel_order(placed.user_id, placed.id)
    assert cancelled.status is OrderStatus.CANCELLED


@pytest.mark.slow
async def test_memory_is_flat_over_10000_placements_and_cancels(tmp_path: Path) -> None:
    path = str(tmp_path / "flat.db")
    repo, wallet = await SQLiteOrderRepository.open(path), await SQLiteWallet.open(path)
    for u in range(8):
        await wallet.deposit(f"u{u}", "USD", 10**9)
        await wallet.deposit(f"u{u}", "BTC", 10**6)
    service = OrderService(repo, wallet, [INST])
    await service.start()
    try:
        for i in range(2_000):  # warm-up: caches, pools, interned values
            await cycle(service, i)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for i in range(2_000, 12_000):
            await cycle(service, i)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        top = "\n".join(str(s) for s in after.compare_to(before, "lineno")[:8])
        assert growth < 256 * 1024, f"grew {growth} bytes over 10,000 placements and cancels:\n{top}"
        assert service.depth(INST.symbol).bids == []
        assert len(service._active) == 0
        assert all(not queue for queue in service._outbox.values())
        assert len(service._applied) < 10
        assert not service._inflight
        balances = await wallet.balances("u1")
        assert balances["USD"].reserved == 0
    finally:
        await service.close()
        await repo.close()
        await wallet.close()
