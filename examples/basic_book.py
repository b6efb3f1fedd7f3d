"""Build an order book, change it, and print its depth.

Run it with ``python examples/basic_book.py`` once tradebook is installed.
"""

from __future__ import annotations

import tradebook
from tradebook import Instrument, Order, OrderBook, Side


def main() -> None:
    # Prices are multiples of the tick size and quantities of the lot size;
    # pass them as str or Decimal (a float only if it is exactly on the grid).
    btc = Instrument("BTC/USDT", tick_size="0.01", lot_size="0.001")
    book = OrderBook(btc)

    book.add_order(Order("b1", Side.BUY, "64999.50", "0.250", owner="alice"))
    book.add_order(Order("b2", "BUY", "64999.50", "1.000", owner="bob"))  # a str works for an enum too
    book.add_order(Order("b3", Side.BUY, "64998.00", "2.000", owner="carol"))
    book.add_order(Order("a1", Side.SELL, "65001.00", "0.400", owner="dave"))
    book.add_order(Order("a2", Side.SELL, "65002.50", "1.500", owner="erin"))
    book.add_order(Order("a3", Side.SELL, "65002.50", "0.750", owner="frank"))

    print(f"{len(book)} orders, best bid {book.best_bid.price}, best ask {book.best_ask.price}, spread {book.spread}")

    filled = book.fill_order("a1", "0.100")  # a partial fill; the order keeps its place
    print(f"a1: {filled.status.value}, {filled.remaining_quantity} left")

    book.amend_order("b2", quantity="0.600")  # lowering the quantity keeps time priority
    book.amend_order("b1", price="65000.00")  # a new price sends it to the back of its new level
    cancelled = book.remove_order("a3")
    print(f"a3: {cancelled.status.value}")

    level = book.level(Side.BUY, "64999.50")
    print(f"bids at 64999.50: {[order.id for order in level]}, {level.quantity} in total")

    depth = book.depth(levels=5)
    print("\nasks (best last):")
    for price, quantity, count in reversed(depth.asks):
        print(f"  {price:>10}  {quantity:>7}  {count} order(s)")
    print("bids (best first):")
    for price, quantity, count in depth.bids:
        print(f"  {price:>10}  {quantity:>7}  {count} order(s)")
    print(f"\nmid {book.mid_price}, backend {tradebook.BACKEND}")


if __name__ == "__main__":
    main()
