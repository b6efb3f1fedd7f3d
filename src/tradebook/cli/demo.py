"""``tradebook demo``: seeded random order flow replayed into a book, its ladder and the throughput."""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from typing import Any

from .. import BACKEND, Instrument, OrderBook, Side
from ..errors import InvalidInstrumentError
from ._args import positive_int
from .info import backend_lines

__all__ = ["add_command", "format_ladder", "generate_flow", "replay"]

# The demo's instrument grid and the price its flow clusters around.
TICK_SIZE = "0.01"
LOT_SIZE = "0.001"
MID_PRICE = "50000.00"

# One command of the flow is a 5-tuple ``(kind, order id, a, b, c)``:
#   ADD          (ADD, id, side, price ticks, lots)
#   CANCEL       (CANCEL, id, 0, 0, 0)
#   FILL         (FILL, id, lots, 0, 0)
#   AMEND_QTY    (AMEND_QTY, id, new total lots, 0, 0)
#   AMEND_PRICE  (AMEND_PRICE, id, new price ticks, 0, 0)
# A fixed shape lets the replay loop unpack without branching on length.
ADD, CANCEL, FILL, AMEND_QTY, AMEND_PRICE = range(5)
Command = tuple[int, int, object, int, int]

MEAN_DISTANCE = 25.0  # ticks from the mid; distances are exponential, so the top levels are busiest
MAX_LOTS = 2000


def generate_flow(count: int, seed: int, mid: int) -> list[Command]:
    """Return ``count`` commands of seeded random order flow around ``mid`` ticks.

    About half are adds, a quarter cancels, and the rest fills and amends of
    random resting orders. The generator tracks what rests, so every command
    is valid when the list is replayed in order into an empty book. O(count).
    """
    rng = random.Random(seed)
    rand, expo = rng.random, rng.expovariate
    rate = 1.0 / MEAN_DISTANCE
    live: list[int] = []  # resting ids; removal swaps the last one into the hole
    state: dict[int, list[int]] = {}  # id -> [is_buy, total lots, filled lots]
    flow: list[Command] = []
    next_id = 1

    def price_for(is_buy: int) -> int:
        distance = 1 + int(expo(rate))
        return mid - distance if is_buy else mid + distance

    def drop(i: int) -> None:
        del state[live[i]]
        last = live.pop()
        if i < len(live):
            live[i] = last

    for _ in range(count):
        r = rand()
        if r < 0.5 or not live:
            is_buy = int(rand() < 0.5)
            lots = 1 + int(rand() * MAX_LOTS)
            flow.append((ADD, next_id, Side.BUY if is_buy else Side.SELL, price_for(is_buy), lots))
            state[next_id] = [is_buy, lots, 0]
            live.append(next_id)
            next_id += 1
            continue
        i = int(rand() * len(live))
        oid = live[i]
        order = state[oid]
        is_buy, total, filled = order
        if r < 0.75:
            flow.append((CANCEL, oid, 0, 0, 0))
            drop(i)
        elif r < 0.9:
            lots = 1 + int(rand() * (total - filled))
            flow.append((FILL, oid, lots, 0, 0))
            if filled + lots == total:
                drop(i)
            else:
                order[2] = filled + lots
        elif r < 0.95:
            # A new total above the filled part: lower keeps priority, higher goes to the back.
            new_total = filled + 1 + int(rand() * (total - filled + MAX_LOTS // 4))
            if new_total == total:
                new_total += 1
            flow.append((AMEND_QTY, oid, new_total, 0, 0))
            order[1] = new_total
        else:
            flow.append((AMEND_PRICE, oid, price_for(is_buy), 0, 0))
    return flow


def replay(book: OrderBook, flow: Sequence[Command]) -> float:
    """Apply ``flow`` to ``book`` through the raw integer API; return the seconds it took."""
    add, remove, fill, amend = book.add_raw, book.remove_raw, book.fill_raw, book.amend_raw
    start = time.perf_counter()
    for kind, oid, a, b, c in flow:
        if kind == ADD:
            add(oid, a, b, c)  # type: ignore[arg-type]
        elif kind == CANCEL:
            remove(oid)
        elif kind == FILL:
            fill(oid, a)  # type: ignore[arg-type]
        elif kind == AMEND_QTY:
            amend(oid, quantity=a)  # type: ignore[arg-type]
        else:
            amend(oid, price=a)  # type: ignore[arg-type]
    return time.perf_counter() - start


def format_ladder(book: OrderBook, levels: int) -> list[str]:
    """The book's top ``levels`` levels a side as text: asks above (best ask lowest), bids below."""
    depth = book.depth(levels)
    asks = [(str(p), str(q), str(n)) for p, q, n in reversed(depth.asks)]
    bids = [(str(p), str(q), str(n)) for p, q, n in depth.bids]
    header = ("price", "quantity", "orders")
    wp, wq, wn = (max(len(row[i]) for row in (header, *asks, *bids)) for i in range(3))

    def line(label: str, row: tuple[str, str, str]) -> str:
        price, quantity, count = row
        return f"{label:3}  {price:>{wp}}  {quantity:>{wq}}  {count:>{wn}}"

    spread, mid = book.spread, book.mid_price
    middle = "-- a side is empty --" if spread is None else f"-- spread {spread}  mid {mid} --"
    width = len(line("", header))
    return [
        line("", header),
        *(line("ask", row) for row in asks),
        middle.center(width).rstrip(),
        *(line("bid", row) for row in bids),
    ]


def _run(args: argparse.Namespace) -> int:
    try:
        instrument = Instrument(args.symbol, TICK_SIZE, LOT_SIZE)
    except InvalidInstrumentError as exc:
        args.parser.error(f"argument --symbol: {exc}")
    book = OrderBook(instrument)
    if args.backend_info:
        print(*backend_lines(), sep="\n", end="\n\n")
    flow = generate_flow(args.orders, args.seed, instrument.price_to_ticks(MID_PRICE))
    seconds = replay(book, flow)
    counts = [0] * 5
    for command in flow:
        counts[command[0]] += 1
    print(
        f"{instrument.symbol}: {len(book):,} resting orders on {len(book.bids):,} bid and "
        f"{len(book.asks):,} ask levels (tick {instrument.tick_size}, lot {instrument.lot_size})"
    )
    print(*format_ladder(book, args.levels), sep="\n")
    print()
    print(f"backend: {BACKEND}")
    print(
        f"operations: {len(flow):,} (seed {args.seed}: {counts[ADD]:,} adds, {counts[CANCEL]:,} cancels, "
        f"{counts[FILL]:,} fills, {counts[AMEND_QTY] + counts[AMEND_PRICE]:,} amends)"
    )
    rate = len(flow) / seconds if seconds > 0 else float("inf")
    print(f"throughput: {rate:,.0f} ops/s ({seconds:.3f} s, raw integer API from a Python loop)")
    return 0


def add_command(commands: Any) -> None:
    """Add ``demo`` to the ``tradebook`` command's subparsers."""
    demo = commands.add_parser(
        "demo",
        help="replay seeded random order flow into a book; print its ladder and the throughput",
        description=(
            "Generate seeded random order flow (adds clustered near the mid, random cancels, fills and "
            "amends), replay it into an OrderBook through the raw integer API, then print the depth "
            "ladder (asks above, bids below: price, quantity, order count), the live backend and the "
            "throughput in operations per second. Generating the flow is not timed; the replay is."
        ),
    )
    demo.add_argument(
        "--orders", type=positive_int, default=200_000, metavar="N", help="operations to replay (default: 200000)"
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same book (default: 1)")
    demo.add_argument(
        "--symbol", default="BTC/USDT", help=f"BASE/QUOTE symbol, tick {TICK_SIZE}, lot {LOT_SIZE} (default: BTC/USDT)"
    )
    demo.add_argument(
        "--levels", type=positive_int, default=10, metavar="K", help="ladder levels per side (default: 10)"
    )
    demo.add_argument(
        "--backend-info", action="store_true", help="first print which implementation is live and where it is"
    )
    demo.set_defaults(run=_run, parser=demo)
