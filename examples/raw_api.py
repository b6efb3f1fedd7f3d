"""A hot loop on the raw integer API: convert to ticks and lots once, then stay in integers.

Run it with ``python examples/raw_api.py [N]`` once tradebook is installed; N is
the number of orders (default 100000).
"""

from __future__ import annotations

import random
import sys
import time

import tradebook
from tradebook import Instrument, OrderBook, Side


def main(n: int = 100_000) -> None:
    eth = Instrument("ETH/USDT", tick_size="0.01", lot_size="0.0001")
    book = OrderBook(eth)

    # The edge: Decimal -> integer units, once, exactly (off-grid values raise).
    mid = eth.price_to_ticks("3000.00")  # 300000 ticks
    lot = eth.quantity_to_lots("0.05")  # 500 lots

    # Prepare the flow outside the timed loop, so the loop measures the book.
    rng = random.Random(7)
    sides = [Side.BUY if rng.random() < 0.5 else Side.SELL for _ in range(n)]
    prices = [mid - rng.randint(1, 200) if side is Side.BUY else mid + rng.randint(1, 200) for side in sides]
    sizes = [lot * rng.randint(1, 20) for _ in range(n)]

    add, remove, fill, amend = book.add_raw, book.remove_raw, book.fill_raw, book.amend_raw
    start = time.perf_counter()
    for order_id in range(n):  # int ids are the fastest
        add(order_id, sides[order_id], prices[order_id], sizes[order_id])
    for order_id in range(0, n, 3):  # cancel a third; remove_raw returns the lots left
        remove(order_id)
    for order_id in range(1, n, 3):  # fill half of another third; fill_raw returns the lots left
        fill(order_id, sizes[order_id] // 2)
    for order_id in range(2, n, 30):  # a new total quantity in lots (lower keeps priority)
        amend(order_id, quantity=sizes[order_id] - 1)
    elapsed = time.perf_counter() - start
    operations = n + len(range(0, n, 3)) + len(range(1, n, 3)) + len(range(2, n, 30))

    bid, ask = book.best_bid_raw, book.best_ask_raw  # ticks, O(1)
    assert bid is not None and ask is not None
    bid_lots, bid_orders = book.level_raw(Side.BUY, bid)
    print(f"{operations:,} operations in {elapsed:.3f} s: {operations / elapsed:,.0f} ops/s ({tradebook.BACKEND})")
    print(f"{len(book):,} resting; best bid {eth.ticks_to_price(bid)} x {eth.lots_to_quantity(bid_lots)}", end="")
    print(f" in {bid_orders} orders; best ask {eth.ticks_to_price(ask)}")

    # depth_raw gives (price ticks, total lots, order count) rows; convert back at the edge.
    bids, asks = book.depth_raw(3)
    for name, rows in (("asks", asks), ("bids", bids)):
        shown = ", ".join(f"{eth.ticks_to_price(p)} x {eth.lots_to_quantity(q)} ({c})" for p, q, c in rows)
        print(f"top {name}: {shown}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
