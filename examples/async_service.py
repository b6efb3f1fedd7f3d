"""The async order service on SQLite: concurrent clients, balances, queries, a restart.

``OrderService`` validates each order, reserves its funds in the wallet, writes
it, matches it and settles its trades, one command per symbol at a time and
symbols in parallel. Here forty clients place orders on two symbols at once
against one SQLite file (standard library only, no server); then the process
"restarts" by opening the file again, and the books come back as they were.

Run it with ``python examples/async_service.py`` once tradebook is installed.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from decimal import Decimal
from pathlib import Path

from tradebook import Instrument, InsufficientBalanceError, InvalidPriceError
from tradebook.oms import OrderQuery, OrderService
from tradebook.oms.sqlite import SQLiteOrderRepository, SQLiteWallet

INSTRUMENTS = [Instrument("BTC/USDT", "0.01", "0.001"), Instrument("ETH/USDT", "0.01", "0.01")]
MID = {"BTC/USDT": Decimal("60000"), "ETH/USDT": Decimal("3000")}


async def client(service: OrderService, user: str, seed: int) -> int:
    """One trader: a few limit orders around the mid, some of them crossing."""
    rng = random.Random(seed)
    placed = 0
    for _ in range(5):
        symbol = rng.choice(list(MID))
        side = rng.choice(["BUY", "SELL"])
        ticks = rng.randint(-20, 20) * (1 if side == "SELL" else -1) + rng.randint(-3, 3)
        price = MID[symbol] + Decimal(ticks)
        try:
            await service.place_order(user, symbol, side, "0.05" if symbol == "BTC/USDT" else "1", price)
            placed += 1
        except InsufficientBalanceError:
            pass  # this trader ran out of that asset: a business refusal, nothing was reserved
    return placed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exchange.db"
        repo, wallet = await SQLiteOrderRepository.open(path), await SQLiteWallet.open(path)
        users = [f"trader-{i}" for i in range(40)]
        for user in users:
            for asset, amount in (("BTC", "1"), ("ETH", "20"), ("USDT", "100000")):
                await wallet.deposit(user, asset, amount)

        async with OrderService(repo, wallet, INSTRUMENTS) as service:
            placed = await asyncio.gather(*(client(service, user, i) for i, user in enumerate(users)))
            print(f"{sum(placed)} orders placed by {len(users)} concurrent clients")
            for symbol in MID:
                trades = await service.list_trades(symbol=symbol, limit=1000)
                depth = service.depth(symbol, 1)
                top = (depth.bids[0].price if depth.bids else None, depth.asks[0].price if depth.asks else None)
                print(f"{symbol}: {len(trades.items)} trades, best bid/ask {top}")

            try:
                await service.place_order("trader-0", "BTC/USDT", "BUY", "0.05", "60000.005")
            except InvalidPriceError as exc:
                print(f"refused before anything was reserved: {exc.code}: {exc}")

            page = await service.list_orders("trader-0", OrderQuery(limit=2))
            mine = [(o.id, o.symbol, o.side.value, str(o.price), o.status.value) for o in page.items]
            print(f"trader-0's newest orders: {mine}, more after cursor {page.next_cursor!r}")
            resting = await service.list_orders("trader-0", OrderQuery(status="OPEN"))
            if resting.items:
                cancelled = await service.cancel_order("trader-0", resting.items[0].id)
                print(f"cancelled order {cancelled.id}: {cancelled.status.value}")
            btc = (await service.balances("trader-0"))["BTC"]
            print(f"trader-0 BTC: {btc.available} available, {btc.reserved} reserved")
            before = {symbol: service.depth(symbol, 50) for symbol in MID}
        await repo.close()
        await wallet.close()

        # A restart: open the same file again; the service recovers its books from it.
        repo, wallet = await SQLiteOrderRepository.open(path), await SQLiteWallet.open(path)
        async with OrderService(repo, wallet, INSTRUMENTS) as service:
            assert {symbol: service.depth(symbol, 50) for symbol in MID} == before
            print("after a restart the books are exactly as they were")
        await repo.close()
        await wallet.close()


if __name__ == "__main__":
    asyncio.run(main())
