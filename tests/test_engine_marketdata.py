"""Market data (subscribe, L2 deltas, top of book) and engine snapshots, on both backends.

After each command that changed a book, every subscriber gets one
``MarketDataUpdate(symbol, deltas, trades)``: a delta per changed level with its
new total (0: gone). ``snapshot()``/``from_snapshot()`` capture and restore the
whole engine; replaying the same commands after a restore gives the same trades.
"""

from __future__ import annotations

import json
import logging
import random
from decimal import Decimal
from uuid import UUID

import pytest

from _backends import available_backends
from models.engine import Venue, check_books, report_key, unchanged
from tradebook import (
    Instrument,
    InvalidOrderError,
    L2Delta,
    MarketDataUpdate,
    OrderStatus,
    SelfTradePrevention,
    Side,
    TopOfBook,
)

ACME = Instrument("ACME/USD", "1", "1")
ZETA = Instrument("ZETA/USD", "0.5", "0.1", min_quantity="0.2")


@pytest.fixture
def venue(engine_backend):
    v = Venue(engine_backend, [ACME])
    v.updates = []
    v.unsubscribe = v.engine.subscribe(v.updates.append)
    return v


def deltas(update):
    return [(d.side, d.price, d.quantity) for d in update.deltas]


# -- subscribe ----------------------------------------------------------------------------


def test_a_resting_order_publishes_its_level(venue):
    venue.buy("b", 100, 3)
    assert len(venue.updates) == 1
    update = venue.updates[0]
    assert isinstance(update, MarketDataUpdate)
    assert update.symbol == "ACME/USD" and update.trades == []
    assert update.deltas == [L2Delta(Side.BUY, Decimal(100), Decimal(3), 100, 3)]
    venue.buy("b2", 100, 2)
    assert deltas(venue.updates[1]) == [(Side.BUY, 100, 5)]


def test_a_trade_publishes_the_changed_levels_and_the_trades(venue):
    venue.sell("a1", 100, 1)
    venue.sell("a2", 101, 3)
    venue.updates.clear()
    report = venue.buy("b", 102, 6)
    (update,) = venue.updates
    assert update.trades == report.trades and len(update.trades) == 2
    assert deltas(update) == [(Side.SELL, 100, 0), (Side.SELL, 101, 0), (Side.BUY, 102, 2)]
    assert [(d.price_ticks, d.quantity_lots) for d in update.deltas] == [(100, 0), (101, 0), (102, 2)]


def test_a_partial_fill_of_a_level_publishes_its_new_total(venue):
    venue.sell("a1", 100, 2)
    venue.sell("a2", 100, 2)
    venue.updates.clear()
    venue.buy("b", 100, 3)
    assert deltas(venue.updates[0]) == [(Side.SELL, 100, 1)]


def test_cancel_and_amend_publish_their_levels(venue):
    venue.sell("a", 100, 2)
    venue.sell("b", 100, 3)
    venue.updates.clear()
    venue.engine.cancel(None, "a")
    assert deltas(venue.updates[-1]) == [(Side.SELL, 100, 3)]
    venue.engine.amend(None, "b", price=105)
    assert deltas(venue.updates[-1]) == [(Side.SELL, 100, 0), (Side.SELL, 105, 3)]
    venue.engine.amend(None, "b", quantity=1)
    assert deltas(venue.updates[-1]) == [(Side.SELL, 105, 1)]
    venue.engine.cancel_raw(None, "b")
    assert deltas(venue.updates[-1]) == [(Side.SELL, 105, 0)]


def test_a_crossing_amend_publishes_old_level_maker_levels_and_new_level(venue):
    venue.sell("s", 101, 1)
    venue.buy("a", 99, 3)
    venue.updates.clear()
    report = venue.engine.amend(None, "a", price=101)
    (update,) = venue.updates
    assert update.trades == report.trades
    assert deltas(update) == [(Side.BUY, 99, 0), (Side.SELL, 101, 0), (Side.BUY, 101, 2)]


def test_stp_cancellations_and_decrements_are_published(engine_backend):
    venue = Venue(engine_backend, [ACME], stp="DECREMENT")
    venue.sell("own", 100, 5, owner="x")
    venue.sell("own2", 101, 1, owner="x")
    updates = []
    venue.engine.subscribe(updates.append)
    venue.buy("t", 100, 2, owner="x")
    assert deltas(updates[-1]) == [(Side.SELL, 100, 3)] and updates[-1].trades == []
    venue.buy("t2", 101, 4, owner="x", self_trade_prevention="CANCEL_MAKER")
    assert deltas(updates[-1]) == [(Side.SELL, 100, 0), (Side.SELL, 101, 0), (Side.BUY, 101, 4)]


def test_commands_that_change_nothing_publish_nothing(venue):
    venue.sell("a", 101, 1, owner="x")
    venue.buy("b", 99, 1)
    venue.updates.clear()
    venue.buy("po", 101, 1, post_only=True)  # rejected
    venue.buy("fok", 101, 2, time_in_force="FOK")  # expired
    venue.buy("ioc", 100, 1, time_in_force="IOC")  # nothing to take
    venue.buy("stp", 101, 1, owner="x")  # cancelled by CANCEL_TAKER before any change
    with pytest.raises(InvalidOrderError):
        venue.engine.amend(None, "b")
    assert venue.updates == []


def test_a_market_order_on_an_empty_side_publishes_nothing(venue):
    venue.market_buy("m", 1)
    assert venue.updates == []


def test_unsubscribe_and_several_subscribers(venue):
    other = []
    stop_other = venue.engine.subscribe(other.append)
    venue.buy("a", 100, 1)
    assert len(venue.updates) == len(other) == 1
    venue.unsubscribe()
    venue.buy("b", 100, 1)
    assert len(venue.updates) == 1 and len(other) == 2
    stop_other()
    venue.buy("c", 100, 1)
    assert len(other) == 2
    venue.unsubscribe()  # a second call is harmless


def test_a_failing_subscriber_is_logged_and_does_not_interrupt(venue, caplog):
    def boom(update):
        raise RuntimeError("subscriber bug")

    after = []
    venue.engine.subscribe(boom)
    venue.engine.subscribe(after.append)
    with caplog.at_level(logging.ERROR, logger="tradebook"):
        report = venue.buy("a", 100, 1)
    assert report.status is OrderStatus.OPEN
    assert len(after) == 1 and len(venue.updates) == 1
    assert "subscriber" in caplog.text
    check_books(venue.engine)


def test_subscribe_takes_a_callable(venue):
    with pytest.raises(TypeError):
        venue.engine.subscribe(42)


def test_updates_carry_their_symbol(engine_backend):
    venue = Venue(engine_backend, [ACME, ZETA])
    seen = []
    venue.engine.subscribe(seen.append)
    venue.buy(1, 100, 1, symbol="ACME/USD")
    venue.sell(1, "7.5", "0.3", symbol="ZETA/USD")
    assert [u.symbol for u in seen] == ["ACME/USD", "ZETA/USD"]
    assert seen[1].deltas == [L2Delta(Side.SELL, Decimal("7.5"), Decimal("0.3"), 15, 3)]


def test_deltas_replayed_onto_an_empty_ladder_give_the_book(engine_backend):
    """Applying every delta in order to a plain dict reproduces the book's levels exactly."""
    venue = Venue(engine_backend, [ACME], stp="DECREMENT")
    ladder = {}

    def apply(update):
        for d in update.deltas:
            if d.quantity_lots:
                ladder[(d.side, d.price_ticks)] = d.quantity_lots
            else:
                ladder.pop((d.side, d.price_ticks), None)

    venue.engine.subscribe(apply)
    rng = random.Random(5)
    for i in range(600):
        roll = rng.random()
        try:
            if roll < 0.6:
                venue.engine.submit_raw(
                    i, rng.choice(["BUY", "SELL"]), rng.randint(95, 105), rng.randint(1, 5),
                    owner=rng.choice([None, 1, 2]), time_in_force=rng.choice(["GTC", "GTC", "IOC"]),
                )  # fmt: skip
            elif roll < 0.8:
                venue.engine.cancel(None, rng.randrange(i + 1))
            else:
                venue.engine.amend_raw(
                    None, rng.randrange(i + 1), quantity=rng.randint(1, 6), price=rng.randint(95, 105)
                )
        except (KeyError, ValueError):
            pass
    bids, asks = venue.engine.book().depth_raw(1000)
    expected = {(Side.BUY, p): q for p, q, _ in bids} | {(Side.SELL, p): q for p, q, _ in asks}
    assert ladder == expected


# -- top of book -------------------------------------------------------------------------------


def test_top_of_book_on_an_empty_book(venue):
    assert venue.engine.top_of_book() == TopOfBook(None, None, None, None)
    assert venue.engine.top_of_book_raw() == (None, None, None, None)


def test_top_of_book_shows_best_prices_and_their_level_totals(engine_backend):
    venue = Venue(engine_backend, [ACME, ZETA])
    venue.buy("b1", 99, 1, symbol="ACME/USD")
    venue.buy("b2", 99, 2, symbol="ACME/USD")
    venue.buy("b3", 98, 7, symbol="ACME/USD")
    top = venue.engine.top_of_book("ACME/USD")
    assert top == TopOfBook(Decimal(99), Decimal(3), None, None)
    assert top.bid_price == 99 and top.ask_quantity is None
    venue.sell("s", 102, 4, symbol="ACME/USD")
    assert venue.engine.top_of_book_raw("ACME/USD") == (99, 3, 102, 4)
    venue.sell("s2", 99, 4, symbol="ACME/USD")  # takes the 99 level, 1 rests at 99
    assert venue.engine.top_of_book_raw("ACME/USD") == (98, 7, 99, 1)
    assert venue.engine.top_of_book("ZETA/USD") == TopOfBook(None, None, None, None)
    venue.sell("z", "12.5", "0.4", symbol="ZETA/USD")
    assert venue.engine.top_of_book("ZETA/USD") == TopOfBook(None, None, Decimal("12.5"), Decimal("0.4"))


# -- snapshots ---------------------------------------------------------------------------------------


def _busy_engine(engine_backend, stp="CANCEL_MAKER"):
    venue = Venue(engine_backend, [ACME, ZETA], stp=stp)
    venue.sell(1, 101, 5, owner="alice", symbol="ACME/USD")
    venue.sell("two", 101, 2, owner=7, symbol="ACME/USD", self_trade_prevention="DECREMENT")
    venue.sell(UUID(int=3), 103, 1, symbol="ACME/USD")
    venue.buy(4, 99, 3, post_only=True, symbol="ACME/USD")
    venue.buy(5, 101, 2, owner="bob", symbol="ACME/USD")  # partially fills order 1
    venue.engine.submit_raw(6, "BUY", 98, 4, symbol="ACME/USD")
    venue.engine.submit_raw("r7", "SELL", 30, 5, symbol="ZETA/USD", owner="carol")
    venue.buy(8, "14.5", "0.2", symbol="ZETA/USD")
    return venue


def test_snapshot_round_trips_through_json(engine_backend):
    venue = _busy_engine(engine_backend)
    data = venue.engine.snapshot()
    text = json.dumps(data)
    restored = engine_backend.MatchingEngine.from_snapshot(json.loads(text))
    check_books(restored)
    assert json.dumps(restored.snapshot()) == text
    assert restored.symbols == ["ACME/USD", "ZETA/USD"]
    assert restored.self_trade_prevention is SelfTradePrevention.CANCEL_MAKER
    assert restored.next_trade_id == venue.engine.next_trade_id == 2
    for symbol in restored.symbols:
        assert restored.top_of_book(symbol) == venue.engine.top_of_book(symbol)
        assert restored.book(symbol).next_sequence == venue.engine.book(symbol).next_sequence
        assert restored.book(symbol).instrument == venue.engine.book(symbol).instrument
    order = restored.book("ACME/USD").get_order(1)
    assert (order.owner, order.filled_quantity, order.sequence) == ("alice", 2, 1)
    assert restored.book("ACME/USD").get_order("two").self_trade_prevention is SelfTradePrevention.DECREMENT
    assert restored.book("ACME/USD").get_order(UUID(int=3)).id == UUID(int=3)
    assert restored.book("ACME/USD").get_order(4).post_only is True
    assert restored.book("ZETA/USD").get_order("r7").owner == "carol"


def test_a_restored_engine_keeps_limits_priorities_and_stp(engine_backend):
    venue = _busy_engine(engine_backend)
    restored = engine_backend.MatchingEngine.from_snapshot(json.loads(json.dumps(venue.engine.snapshot())))
    with unchanged(restored), pytest.raises(Exception, match="minimum"):
        restored.submit(engine_backend.Order("tiny", "SELL", "20", "0.1", symbol="ZETA/USD"))
    with unchanged(restored), pytest.raises(InvalidOrderError):
        restored.amend("ACME/USD", 4, price=101)  # post-only kept
    report = restored.submit(engine_backend.Order("x", "BUY", 101, 4, owner=7, symbol="ACME/USD"))
    # order 1 (alice, 3 left) trades first; then "two" (owner 7) meets the taker's default CANCEL_MAKER
    assert [(t.maker_order_id, t.quantity) for t in report.trades] == [(1, 3)]
    assert [o.id for o in report.cancelled] == ["two"]
    assert report.trades[0].id == 2


def test_replaying_after_a_restore_gives_the_same_trades(engine_backend):
    """Run A; snapshot; run B on the original and on a restored copy: identical reports and final state."""
    rng = random.Random(11)

    def commands(n):
        out = []
        for i in range(n):
            out.append((i, rng.choice(["BUY", "SELL"]), rng.choice([None, *range(95, 106)]), rng.randint(1, 6),
                        rng.choice(["GTC", "GTC", "IOC", "FOK"]), rng.choice([None, "p", "q"]),
                        rng.choice(["ACME/USD", "ZETA/USD"])))  # fmt: skip
        return out

    def run(engine, cmds, offset):
        keys = []
        for i, side, ticks, lots, tif, owner, symbol in cmds:
            try:
                if rng_local.random() < 0.2:
                    keys.append(engine.cancel_raw(symbol, rng_local.randrange(offset + i + 1)))
                else:
                    rep = engine.submit_raw(
                        offset + i, side, ticks, lots, symbol=symbol, time_in_force=tif, owner=owner
                    )
                    keys.append(report_key(rep))
            except (KeyError, ValueError) as exc:
                keys.append(type(exc).__name__)
        return keys

    engine = engine_backend.MatchingEngine([ACME, ZETA], self_trade_prevention="DECREMENT")
    rng_local = random.Random(1)
    run(engine, commands(400), 0)
    data = json.loads(json.dumps(engine.snapshot()))
    restored = engine_backend.MatchingEngine.from_snapshot(data)
    tail = commands(400)
    rng_local = random.Random(2)
    first = run(engine, tail, 1000)
    rng_local = random.Random(2)
    second = run(restored, tail, 1000)
    assert first == second
    assert any(k[1] for k in first if isinstance(k, tuple)), "the replay should trade"
    assert engine.snapshot() == restored.snapshot()
    check_books(restored)


def test_snapshots_restore_across_backends():
    backends = [b for b in available_backends().values() if b.MatchingEngine is not None]
    if len(backends) < 2:
        pytest.skip("only one engine backend is available")
    for source in backends:
        data = json.loads(json.dumps(_busy_engine(source).engine.snapshot()))
        for target in backends:
            restored = target.MatchingEngine.from_snapshot(data)
            assert restored.snapshot() == data, (source.name, target.name)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {},
        {"format": "tradebook.orderbook/1"},
        {"format": "tradebook.engine/1", "next_trade_id": 0, "books": []},
        {"format": "tradebook.engine/1", "next_trade_id": 1, "books": None},
        {"format": "tradebook.engine/1", "next_trade_id": "1", "books": []},
    ],
)
def test_from_snapshot_rejects_what_is_not_an_engine_snapshot(engine_backend, data):
    with pytest.raises(InvalidOrderError):
        engine_backend.MatchingEngine.from_snapshot(data)


def test_from_snapshot_rejects_a_symbol_twice(engine_backend):
    data = Venue(engine_backend, [ACME]).engine.snapshot()
    data["books"] = data["books"] * 2
    with pytest.raises(InvalidOrderError):
        engine_backend.MatchingEngine.from_snapshot(data)


def test_an_empty_engine_round_trips(engine_backend):
    engine = engine_backend.MatchingEngine(self_trade_prevention="NONE")
    restored = engine_backend.MatchingEngine.from_snapshot(json.loads(json.dumps(engine.snapshot())))
    assert restored.symbols == [] and restored.self_trade_prevention is SelfTradePrevention.NONE
    assert restored.next_trade_id == 1
