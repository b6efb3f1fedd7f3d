"""Property tests of the sequence-numbered L2/L3 feed: a consumer that joins at any point stays exact.

Hypothesis draws command streams over every order type the engine has: limit
GTC/IOC/FOK/GTD (post-only among them), market orders by quantity and by quote
amount, icebergs (``display_quantity``), STOP, STOP_LIMIT and TRAILING_STOP
(their trigger cascades), owners under every self-trade mode, cancels
(``cancel`` and ``cancel_raw``), amends of price and quantity (``amend`` and
``amend_raw``), ``advance_time`` (GTD expiry) and the raw API, with int and
str ids. For each stream and each backend (``engine_backend``):

* a consumer that takes ``market_snapshot`` at a drawn point and then applies
  the updates with a larger ``seq`` holds exactly the engine's visible book
  after every later command: the same orders in the same FIFO order with the
  same sizes and sequences, the same depth, and the L2 deltas give the same
  levels (``models.feed.check_feed``);
* ``seq`` runs 1, 2, 3... with no gap, ``time`` is the engine's time, and the
  EXECUTE events are the trades' makers, in trade order;
* an engine restored from a JSON ``snapshot()`` at a drawn point publishes the
  same updates (same ``seq``) as the original from there on.

With both backends built, the compiled and the pure engine publish identical
update streams for the same commands.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _backends import available_backends
from models.engine import check_books, trade_key
from models.feed import FeedBook, check_feed
from tradebook import Instrument, TradebookError

X = Instrument("X/USD", "1", "1")
SYMBOL = X.symbol
MID = 100

SIDES = st.sampled_from(["BUY", "SELL"])
PRICES = st.integers(MID - 4, MID + 4)
LOTS = st.integers(1, 8)
OWNERS = st.sampled_from([None, "a", "b"])
MODES = st.sampled_from([None, None, "NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT"])

LIMIT = st.tuples(
    st.just("limit"),
    SIDES,
    PRICES,
    LOTS,
    st.sampled_from(["GTC", "GTC", "GTC", "IOC", "FOK", "GTD"]),
    st.booleans(),  # post-only (GTC only)
    OWNERS,
    MODES,
    st.one_of(st.none(), st.none(), st.integers(1, 3)),  # iceberg display
    st.integers(0, 8),  # GTD: expire this long after the engine's time
    st.booleans(),  # the raw API
)
MARKET = st.tuples(
    st.just("market"), SIDES, st.one_of(LOTS, st.none()), st.integers(50, 900), st.sampled_from(["GTC", "IOC"]),
    OWNERS, MODES,
)  # fmt: skip
STOP = st.tuples(
    st.just("stop"),
    SIDES,
    st.sampled_from(["STOP", "STOP_LIMIT", "TRAILING_STOP"]),
    st.integers(MID - 4, MID + 4),  # stop price
    st.integers(-2, 2),  # STOP_LIMIT: limit price from the stop
    st.integers(1, 3),  # trailing offset
    LOTS,
    st.sampled_from(["GTC", "GTC", "IOC", "FOK", "GTD"]),
    OWNERS,
    st.integers(0, 8),
)
BACK = st.integers(0, 12)  # cancels and amends aim at one of the latest orders (or the opening ladder)
CANCEL = st.tuples(st.just("cancel"), BACK, st.booleans())
AMEND = st.tuples(
    st.just("amend"), BACK, st.one_of(st.none(), LOTS, st.integers(8, 14)),
    st.one_of(st.none(), st.none(), PRICES), st.booleans(),
)  # fmt: skip
TIME = st.tuples(st.just("time"), st.integers(0, 4))

COMMAND = st.one_of(LIMIT, LIMIT, LIMIT, MARKET, STOP, CANCEL, AMEND, TIME)
COMMANDS = st.lists(COMMAND, min_size=8, max_size=60)

#: the book every stream starts from (commands -16..-1, published like any other): two levels a side with an
#: iceberg and owners "a" and "b" on each, and a waiting stop either way
OPENING: list[tuple] = [
    ("limit", side, price, lots, "GTC", False, owner, None, display, 0, False)
    for side, prices in (("BUY", (99, 98)), ("SELL", (101, 102)))
    for price in prices
    for lots, owner, display in ((9, "a", 3), (3, None, None), (4, "b", None))
] + [
    ("stop", "BUY", "STOP", 102, 0, 1, 4, "GTC", None, 0),
    ("stop", "SELL", "TRAILING_STOP", 0, 0, 2, 3, "GTC", "b", 0),
    ("limit", "BUY", 97, 5, "GTD", False, None, None, None, 6, False),
    ("limit", "SELL", 103, 5, "GTD", False, None, None, 2, 4, False),
]


def _id(i: int) -> Any:
    return i if i % 3 else f"o{i}"


def open_book(backend: Any, engine: Any) -> None:
    """Place the opening book (ids -16..-1)."""
    for i, cmd in enumerate(OPENING, start=-len(OPENING)):
        apply_command(backend, engine, i, cmd)


def apply_command(backend: Any, engine: Any, i: int, cmd: tuple) -> None:
    """Run command ``i`` (its id is ``_id(i)``); refusals (errors) change nothing and are ignored."""
    kind = cmd[0]
    oid = _id(i)
    try:
        if kind == "limit":
            _, side, price, lots, tif, post_only, owner, mode, display, ttl, raw = cmd
            if display is not None and (tif not in ("GTC", "GTD") or display >= lots):
                display = None
            expire_at = engine.time + ttl if tif == "GTD" else None
            if raw and mode is None and not post_only:
                engine.submit_raw_typed(oid, side, price, lots, time_in_force=tif, owner=owner, display=display,
                                        expire_at=expire_at)  # fmt: skip
                return
            engine.submit(
                backend.Order(oid, side, price, lots, owner=owner, time_in_force=tif, post_only=post_only and tif == "GTC",
                              self_trade_prevention=mode, display_quantity=display, expire_at=expire_at)
            )  # fmt: skip
        elif kind == "market":
            _, side, lots, quote, tif, owner, mode = cmd
            engine.submit(
                backend.Order(oid, side, None, lots, type="MARKET", time_in_force=tif, owner=owner,
                              self_trade_prevention=mode, quote_quantity=None if lots else quote)
            )  # fmt: skip
        elif kind == "stop":
            _, side, otype, stop, offset, trail, lots, tif, owner, ttl = cmd
            engine.submit(
                backend.Order(
                    oid, side, stop + offset if otype == "STOP_LIMIT" else None, lots, type=otype,
                    time_in_force=tif, owner=owner, expire_at=engine.time + ttl if tif == "GTD" else None,
                    stop_price=None if otype == "TRAILING_STOP" else stop,
                    trailing_offset=trail if otype == "TRAILING_STOP" else None,
                )
            )  # fmt: skip
        elif kind == "cancel":
            _, back, raw = cmd
            target = _id(i - 1 - back)
            if raw:
                engine.cancel_raw(SYMBOL, target)
            else:
                engine.cancel(SYMBOL, target)
        elif kind == "amend":
            _, back, lots, price, raw = cmd
            target = _id(i - 1 - back)
            if lots is None and price is None:
                price = MID
            if raw:
                engine.amend_raw(SYMBOL, target, quantity=lots, price=price)
            else:
                engine.amend(
                    SYMBOL, target, quantity=None if lots is None else Decimal(lots),
                    price=None if price is None else Decimal(price),
                )  # fmt: skip
        else:
            engine.advance_time(engine.time + cmd[1])
    except (TradebookError, ValueError):
        pass


class Recorder:
    """A subscriber that checks ``seq`` and ``time`` as updates arrive and keeps them."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.updates: list[Any] = []
        self.last_seq = engine.market_snapshot(SYMBOL).seq
        engine.subscribe(self)

    def __call__(self, update: Any) -> None:
        assert update.symbol == SYMBOL
        assert update.seq == self.last_seq + 1, "a gap in seq"
        assert update.time == self.engine.time
        assert update.orders, "an update with no event"
        assert len(update.deltas) == len({(d.side, d.price_ticks) for d in update.deltas})
        executions = [(e.order_id, e.price, e.quantity) for e in update.orders if e.kind == "EXECUTE"]
        assert executions == [(t.maker_order_id, t.price, t.quantity) for t in update.trades]
        self.last_seq = update.seq
        self.updates.append(update)


def update_key(update: Any) -> tuple:
    return (
        update.symbol,
        update.seq,
        update.time,
        tuple(update.deltas),
        tuple(update.orders),
        tuple(trade_key(t) for t in update.trades),
    )


_SETTINGS = settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(commands=COMMANDS, join=st.integers(0, 60))
def test_a_consumer_joining_at_any_point_holds_the_visible_book(engine_backend, commands, join):
    engine = engine_backend.MatchingEngine([X], self_trade_prevention="DECREMENT")  # other modes: per order
    tape = Recorder(engine)
    open_book(engine_backend, engine)
    join = min(join, len(commands))
    feed = None
    for i, cmd in enumerate(commands):
        if i == join:
            feed = FeedBook(engine.market_snapshot())
            for update in tape.updates:  # buffered before the snapshot: all already in it
                assert not feed.apply(update)
        apply_command(engine_backend, engine, i, cmd)
        if feed is not None:
            for update in tape.updates[feed.seq :]:
                assert feed.apply(update)
            check_feed(feed, engine)
    if feed is None:
        feed = FeedBook(engine.market_snapshot())
    check_feed(feed, engine)
    assert [u.seq for u in tape.updates] == list(range(1, len(tape.updates) + 1))
    check_books(engine)


@_SETTINGS
@given(commands=COMMANDS, cut=st.integers(0, 60))
def test_a_restored_engine_publishes_what_the_original_does(engine_backend, commands, cut):
    engine = engine_backend.MatchingEngine([X], self_trade_prevention="CANCEL_MAKER")
    original = Recorder(engine)
    open_book(engine_backend, engine)
    cut = min(cut, len(commands))
    for i, cmd in enumerate(commands[:cut]):
        apply_command(engine_backend, engine, i, cmd)
    restored = engine_backend.MatchingEngine.from_snapshot(json.loads(json.dumps(engine.snapshot())))
    assert restored.market_snapshot() == engine.market_snapshot()
    copy = Recorder(restored)
    feed = FeedBook(restored.market_snapshot())
    before = len(original.updates)
    for i, cmd in enumerate(commands[cut:], start=cut):
        apply_command(engine_backend, engine, i, cmd)
        apply_command(engine_backend, restored, i, cmd)
    assert [update_key(u) for u in copy.updates] == [update_key(u) for u in original.updates[before:]]
    for update in copy.updates:
        feed.apply(update)
    check_feed(feed, restored)


def test_the_streams_cover_every_event_kind(engine_backend):
    """The command mix reaches every kind of event (a fixed long stream, drawn once)."""
    import random

    rng = random.Random(14)
    engine = engine_backend.MatchingEngine([X], self_trade_prevention="DECREMENT")
    tape = Recorder(engine)
    feed = FeedBook(engine.market_snapshot())
    for i in range(3000):
        roll = rng.random()
        side = rng.choice(["BUY", "SELL"])
        if roll < 0.5:
            tif = rng.choice(["GTC", "GTC", "IOC", "GTD"])
            lots = rng.randint(1, 8)
            display = rng.choice([None, None, 1, 2]) if tif in ("GTC", "GTD") else None
            cmd = ("limit", side, rng.randint(96, 104), lots, tif, False, rng.choice([None, "a", "b"]), None,
                   display, rng.randint(0, 8), False)  # fmt: skip
        elif roll < 0.58:
            cmd = ("market", side, rng.choice([None, 3]), rng.randint(50, 900), "IOC", None, None)
        elif roll < 0.68:
            cmd = ("stop", side, rng.choice(["STOP", "STOP_LIMIT", "TRAILING_STOP"]), rng.randint(96, 104),
                   rng.randint(-2, 2), rng.randint(1, 3), rng.randint(1, 8), "GTC", None, 0)  # fmt: skip
        elif roll < 0.8:
            cmd = ("cancel", rng.randint(0, 30), rng.random() < 0.5)
        elif roll < 0.95:
            cmd = ("amend", rng.randint(0, 30), rng.choice([None, 2, 5, 12]), rng.choice([None, 98, 100, 102]), False)
        else:
            cmd = ("time", rng.randint(0, 3))
        apply_command(engine_backend, engine, i, cmd)
    for update in tape.updates:
        feed.apply(update)
    check_feed(feed, engine)
    assert min(feed.kinds.values()) > 20, feed.kinds
    refreshes = sum(
        1
        for u in tape.updates
        for a, b in zip(u.orders, u.orders[1:], strict=False)
        if a.kind == "EXECUTE" and b.kind == "ADD" and a.order_id == b.order_id
    )
    assert refreshes > 5


@settings(max_examples=80)
@given(commands=COMMANDS)
def test_both_backends_publish_identical_streams(commands):
    backends = {n: b for n, b in available_backends().items() if b.MatchingEngine is not None}
    if len(backends) < 2:
        pytest.skip("the compiled engine is not available: nothing to compare the pure one with")
    streams = []
    for backend in backends.values():
        engine = backend.MatchingEngine([X], self_trade_prevention="DECREMENT")
        tape = Recorder(engine)
        open_book(backend, engine)
        for i, cmd in enumerate(commands):
            apply_command(backend, engine, i, cmd)
        snap = engine.market_snapshot()
        streams.append(([update_key(u) for u in tape.updates], snap.seq, snap.time, snap.depth, snap.orders))
    assert streams[0] == streams[1]
