"""Sequence-numbered L2 and L3 market data and ``market_snapshot``, scenario by scenario, on both backends.

Each ``MarketDataUpdate`` carries ``seq`` (per symbol: 1, 2, 3... one per update
published, never a gap), ``time`` (the engine's) and ``orders``, the command's
L3 events: ADD (an order or an iceberg's next slice became visible; its
visible size), MODIFY (its visible size changed in place, keeping priority),
DELETE (it left the book for any reason but a fill; the visible size it had)
and EXECUTE (a resting maker traded; the traded quantity). Expected events are
worked out by hand from those rules (shared/api.md, "Market data with sequence
numbers, L2 and L3"); X/USD trades on a grid of 1 and 1.
"""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import UUID

import pytest

from models.engine import Venue, check_books
from models.feed import FeedBook, FeedGap, check_feed
from tradebook import (
    Depth,
    Instrument,
    InvalidOrderError,
    L2Delta,
    LevelSnapshot,
    MarketDataUpdate,
    MarketSnapshot,
    OrderEvent,
    Side,
    UnknownSymbolError,
)

X = Instrument("X/USD", "1", "1")
Y = Instrument("Y/USD", "0.5", "0.1")
BUY, SELL = Side.BUY, Side.SELL


class Tape:
    """A subscriber that keeps every update, and reads the engine's time as each arrives."""

    def __init__(self, engine):
        self.engine = engine
        self.updates = []
        self.times = []
        self.unsubscribe = engine.subscribe(self)

    def __call__(self, update):
        self.updates.append(update)
        self.times.append(self.engine.time)

    def take(self):
        """The events of every update since the last call, as plain tuples; the updates are dropped."""
        out = [[(e.kind, e.order_id, e.side, e.price, e.quantity, e.sequence) for e in u.orders] for u in self.updates]
        self.updates.clear()
        return out

    def last(self):
        (events,) = self.take()
        return events


@pytest.fixture
def venue(engine_backend):
    v = Venue(engine_backend, [X])
    v.tape = Tape(v.engine)
    return v


def seq_of(venue, oid):
    return venue.resting(oid).sequence


# -- the value types ----------------------------------------------------------------------


def test_the_new_types_are_exported_and_old_style_updates_still_build():
    update = MarketDataUpdate("X/USD", [], [])
    assert (update.seq, update.time, tuple(update.orders)) == (0, 0, ())
    assert len(update) == 6 and update[:3] == ("X/USD", [], [])
    event = OrderEvent("ADD", 7, SELL, Decimal("100"), Decimal("2"), 3)
    assert event._fields == ("kind", "order_id", "side", "price", "quantity", "sequence")
    assert MarketSnapshot._fields == ("seq", "time", "depth", "orders")


def test_a_fresh_engine_snapshot_is_empty_at_seq_0(engine_backend):
    engine = engine_backend.MatchingEngine([X])
    assert engine.market_snapshot() == MarketSnapshot(0, 0, Depth([], []), [])
    assert engine.market_snapshot("X/USD").seq == 0


def test_market_snapshot_needs_a_symbol_when_the_engine_trades_several(engine_backend):
    engine = engine_backend.MatchingEngine([X, Y])
    with pytest.raises(UnknownSymbolError):
        engine.market_snapshot()
    with pytest.raises(UnknownSymbolError):
        engine.market_snapshot("NOPE/USD")


# -- ADD ------------------------------------------------------------------------------------


def test_a_resting_order_is_an_add_with_its_sequence(venue):
    report = venue.sell("a", 101, 3)
    assert venue.tape.updates[0].orders == [OrderEvent("ADD", "a", SELL, Decimal(101), Decimal(3), 1)]
    assert report.order.sequence == 1
    assert venue.tape.take() == [[("ADD", "a", SELL, 101, 3, 1)]]


def test_a_partly_filled_taker_adds_its_remainder_after_the_makers_executions(venue):
    venue.sell("a", 100, 2)
    venue.tape.take()
    venue.buy("b", 101, 5)  # takes 2 from a, rests 3 at 101
    assert venue.tape.last() == [("EXECUTE", "a", SELL, 100, 2, 1), ("ADD", "b", BUY, 101, 3, 2)]


def test_ids_of_every_kind_appear_as_given(engine_backend):
    venue = Venue(engine_backend, [X])
    tape = Tape(venue.engine)
    uid = UUID(int=5)
    venue.sell(uid, 100, 1)
    venue.sell(2**70, 100, 1)  # an int id beyond 64 bits
    venue.engine.submit_raw(3, "SELL", 100, 1, owner="o")
    venue.engine.submit_raw(4, "SELL", 100, 1)
    venue.buy("t", 100, 4)
    assert [e[1] for u in tape.take() for e in u] == [uid, 2**70, 3, 4, uid, 2**70, 3, 4]


# -- EXECUTE --------------------------------------------------------------------------------


def test_executions_are_the_makers_and_match_the_trades(venue):
    venue.sell("a1", 100, 2)
    venue.sell("a2", 100, 2)
    venue.sell("a3", 101, 5)
    venue.tape.take()
    report = venue.buy("t", 101, 7, time_in_force="IOC")
    (update,) = venue.tape.updates
    assert [(e.kind, e.order_id, e.price, e.quantity) for e in update.orders] == [
        ("EXECUTE", "a1", 100, 2),
        ("EXECUTE", "a2", 100, 2),
        ("EXECUTE", "a3", 101, 3),
    ]
    assert [(t.maker_order_id, t.price, t.quantity) for t in report.trades] == [
        (e.order_id, e.price, e.quantity) for e in update.orders
    ]
    assert all(e.order_id != "t" for e in update.orders), "the taker gets no event"
    assert update.deltas == [
        L2Delta(SELL, Decimal(100), Decimal(0), 100, 0),
        L2Delta(SELL, Decimal(101), Decimal(2), 101, 2),
    ]


def test_a_market_order_sized_by_quote_executes_what_its_budget_buys(venue):
    venue.sell("a", 10, 3)
    venue.sell("b", 12, 5)
    venue.tape.take()
    venue.submit("q", "BUY", None, None, type="MARKET", quote_quantity="60")  # 3 x 10, then 2 x 12 (24 of 30)
    assert venue.tape.last() == [("EXECUTE", "a", SELL, 10, 3, 1), ("EXECUTE", "b", SELL, 12, 2, 2)]


# -- MODIFY ---------------------------------------------------------------------------------


def test_lowering_a_quantity_is_a_modify_in_place(venue):
    venue.sell("a", 100, 5)
    venue.sell("b", 100, 2)
    venue.tape.take()
    venue.engine.amend(None, "a", quantity=3)
    assert venue.tape.last() == [("MODIFY", "a", SELL, 100, 3, 1)]
    assert [o.id for o in venue.engine.book().orders_at(SELL, 100)] == ["a", "b"]


def test_a_self_trade_decrement_modifies_the_maker(engine_backend):
    venue = Venue(engine_backend, [X], stp="DECREMENT")
    tape = Tape(venue.engine)
    venue.sell("own", 100, 5, owner="o")
    tape.take()
    venue.buy("t", 100, 2, owner="o")
    update = tape.updates[0]
    assert update.trades == []
    assert tape.last() == [("MODIFY", "own", SELL, 100, 3, 1)]


def test_a_modify_of_a_partly_filled_order_carries_its_visible_size(venue):
    venue.sell("a", 100, 10)
    venue.buy("t", 100, 4)
    venue.tape.take()
    venue.engine.amend(None, "a", quantity=8)  # 4 filled, 4 left visible
    assert venue.tape.last() == [("MODIFY", "a", SELL, 100, 4, 1)]


# -- DELETE ---------------------------------------------------------------------------------


def test_cancel_is_a_delete_with_the_visible_size(venue):
    venue.buy("a", 99, 4)
    venue.sell("s", 99, 1)
    venue.tape.take()
    venue.engine.cancel(None, "a")
    assert venue.tape.last() == [("DELETE", "a", BUY, 99, 3, 1)]
    venue.buy("b", 98, 2)
    venue.tape.take()
    assert venue.engine.cancel_raw(None, "b") == 2
    assert venue.tape.last() == [("DELETE", "b", BUY, 98, 2, 3)]


@pytest.mark.parametrize("mode", ["CANCEL_MAKER", "CANCEL_BOTH"])
def test_self_trade_cancellations_are_deletes(engine_backend, mode):
    venue = Venue(engine_backend, [X], stp=mode)
    tape = Tape(venue.engine)
    venue.sell("own", 100, 2, owner="o")
    venue.sell("other", 100, 2)
    tape.take()
    venue.buy("t", 100, 3, owner="o")
    if mode == "CANCEL_MAKER":  # the maker goes, the taker trades on with "other" and rests 1
        assert tape.last() == [
            ("DELETE", "own", SELL, 100, 2, 1),
            ("EXECUTE", "other", SELL, 100, 2, 2),
            ("ADD", "t", BUY, 100, 1, 3),
        ]
    else:  # both go: the taker never rests
        assert tape.last() == [("DELETE", "own", SELL, 100, 2, 1)]


def test_a_decrement_that_uses_a_maker_up_deletes_it(engine_backend):
    venue = Venue(engine_backend, [X], stp="DECREMENT")
    tape = Tape(venue.engine)
    venue.sell("own", 100, 2, owner="o")
    tape.take()
    venue.buy("t", 100, 5, owner="o")  # both lose 2: own leaves, t rests 3
    assert tape.last() == [("DELETE", "own", SELL, 100, 2, 1), ("ADD", "t", BUY, 100, 3, 2)]


def test_gtd_expiry_is_a_delete_stamped_with_the_new_time(venue):
    venue.sell("g", 101, 3, time_in_force="GTD", expire_at=10)
    venue.tape.take()
    venue.engine.advance_time(7)
    assert venue.tape.updates == []
    venue.engine.advance_time(12)
    (update,) = venue.tape.updates
    assert update.time == 12 == venue.tape.times[-1]
    assert venue.tape.last() == [("DELETE", "g", SELL, 101, 3, 1)]


def test_a_price_amend_is_delete_then_add_with_a_new_sequence(venue):
    venue.sell("a", 101, 3)
    venue.sell("b", 102, 1)
    venue.tape.take()
    venue.engine.amend(None, "a", price=102)
    assert venue.tape.last() == [("DELETE", "a", SELL, 101, 3, 1), ("ADD", "a", SELL, 102, 3, 3)]
    assert seq_of(venue, "a") == 3


def test_raising_a_quantity_loses_priority_delete_then_add(venue):
    venue.sell("a", 101, 3)
    venue.sell("b", 101, 1)
    venue.tape.take()
    venue.engine.amend(None, "a", quantity=5)
    assert venue.tape.last() == [("DELETE", "a", SELL, 101, 3, 1), ("ADD", "a", SELL, 101, 5, 3)]
    assert [o.id for o in venue.engine.book().orders_at(SELL, 101)] == ["b", "a"]


def test_a_crossing_amend_deletes_then_trades_then_adds(venue):
    venue.sell("s", 101, 1)
    venue.buy("a", 99, 3)
    venue.tape.take()
    venue.engine.amend(None, "a", price=101)
    assert venue.tape.last() == [
        ("DELETE", "a", BUY, 99, 3, 2),
        ("EXECUTE", "s", SELL, 101, 1, 1),
        ("ADD", "a", BUY, 101, 2, 3),
    ]


def test_an_amend_that_changes_nothing_publishes_nothing(venue):
    venue.sell("a", 101, 3)
    venue.tape.take()
    venue.engine.amend(None, "a", price=101)
    venue.engine.amend(None, "a", quantity=3)
    assert venue.tape.updates == []
    venue.sell("b", 101, 1)
    assert venue.tape.updates[-1].seq == 2


# -- icebergs -----------------------------------------------------------------------------------


def test_an_iceberg_shows_its_slice_and_a_refresh_is_execute_then_add(venue):
    venue.sell("ice", 100, 10, display_quantity=3)
    venue.sell("late", 100, 2)
    assert venue.tape.take() == [[("ADD", "ice", SELL, 100, 3, 1)], [("ADD", "late", SELL, 100, 2, 2)]]
    venue.buy("t", 100, 4)  # 3 from ice (refresh: 3 more behind late), then 1 from late
    assert venue.tape.last() == [
        ("EXECUTE", "ice", SELL, 100, 3, 1),
        ("ADD", "ice", SELL, 100, 3, 4),
        ("EXECUTE", "late", SELL, 100, 1, 2),
    ]
    assert seq_of(venue, "ice") == 4


def test_iceberg_amends_show_only_visible_changes(venue):
    venue.sell("ice", 100, 10, display_quantity=3)
    venue.tape.take()
    venue.engine.amend(None, "ice", quantity=8)  # hidden 7 -> 5: nothing visible changes
    assert venue.tape.updates == []
    venue.engine.amend(None, "ice", quantity=2)  # hidden gone, the slice shrinks in place
    assert venue.tape.last() == [("MODIFY", "ice", SELL, 100, 2, 1)]
    venue.engine.amend(None, "ice", quantity=6)  # more hidden: the back of the level
    assert venue.tape.last() == [("DELETE", "ice", SELL, 100, 2, 1), ("ADD", "ice", SELL, 100, 2, 2)]
    venue.engine.amend(None, "ice", price=105)
    assert venue.tape.last() == [("DELETE", "ice", SELL, 100, 2, 2), ("ADD", "ice", SELL, 105, 2, 3)]


def test_an_expiring_iceberg_deletes_its_slice(venue):
    venue.sell("ice", 100, 10, display_quantity=3, time_in_force="GTD", expire_at=5)
    venue.tape.take()
    venue.engine.advance_time(5)
    assert venue.tape.last() == [("DELETE", "ice", SELL, 100, 3, 1)]


# -- stops and their cascade --------------------------------------------------------------------


def test_each_stop_of_a_cascade_is_its_own_update(venue):
    venue.sell("a", 100, 1)
    venue.sell("b", 101, 1)
    venue.sell("c", 102, 5)
    venue.submit("s1", "BUY", None, 1, type="STOP", stop_price=100)  # waits: no update
    venue.submit("s2", "BUY", None, 2, type="STOP", stop_price=101)
    assert [u.seq for u in venue.tape.updates] == [1, 2, 3]
    venue.tape.take()
    report = venue.buy("t", 100, 1)  # prints 100: s1 buys b at 101, which triggers s2 (2 of c at 102)
    assert [r.order.id for r in report.triggered] == ["s1", "s2"]
    assert [u.seq for u in venue.tape.updates] == [4, 5, 6]
    assert venue.tape.take() == [
        [("EXECUTE", "a", SELL, 100, 1, 1)],
        [("EXECUTE", "b", SELL, 101, 1, 2)],
        [("EXECUTE", "c", SELL, 102, 2, 3)],
    ]


def test_a_triggered_stop_limit_rests_as_an_add(venue):
    venue.sell("a", 100, 1)
    venue.submit("sl", "BUY", 99, 4, type="STOP_LIMIT", stop_price=100)
    venue.tape.take()
    venue.buy("t", 100, 1)
    sl_seq = seq_of(venue, "sl")
    assert venue.tape.take() == [[("EXECUTE", "a", SELL, 100, 1, 1)], [("ADD", "sl", BUY, 99, 4, sl_seq)]]


# -- seq, time and joining ------------------------------------------------------------------------------


def test_seq_counts_updates_per_symbol(engine_backend):
    venue = Venue(engine_backend, [X, Y])
    tape = Tape(venue.engine)
    venue.sell(1, 100, 1, symbol="X/USD")
    venue.sell(2, "7.5", "0.3", symbol="Y/USD")
    venue.sell(3, 101, 1, symbol="X/USD")
    assert [(u.symbol, u.seq) for u in tape.updates] == [("X/USD", 1), ("Y/USD", 1), ("X/USD", 2)]
    assert venue.engine.market_snapshot("X/USD").seq == 2 and venue.engine.market_snapshot("Y/USD").seq == 1


def test_commands_that_change_nothing_take_no_seq(venue):
    venue.sell("a", 101, 1, owner="x")
    venue.buy("po", 101, 1, post_only=True)  # rejected
    venue.buy("fok", 101, 2, time_in_force="FOK")  # expired
    venue.buy("stp", 101, 1, owner="x")  # stopped by CANCEL_TAKER before any change
    venue.market_sell("m", 1)  # no bids
    venue.submit("s", "BUY", None, 1, type="STOP", stop_price=150)  # waits off the book
    venue.engine.cancel(None, "s")
    venue.engine.advance_time(50)
    assert [u.seq for u in venue.tape.updates] == [1]
    venue.buy("b", 99, 1)
    assert [u.seq for u in venue.tape.updates] == [1, 2]


def test_updates_carry_the_engine_time(venue):
    venue.engine.advance_time(40)
    venue.sell("a", 101, 1)
    venue.engine.advance_time(45)
    venue.buy("b", 101, 1)
    assert [u.time for u in venue.tape.updates] == [40, 45]
    assert venue.engine.market_snapshot().time == 45


def test_market_snapshot_lists_orders_best_first_fifo_within_a_level(venue):
    venue.buy("b1", 98, 1)
    venue.buy("b2", 99, 2)
    venue.buy("b3", 98, 3)
    venue.sell("a1", 102, 4)
    venue.sell("ice", 101, 9, display_quantity=2)
    venue.sell("a2", 101, 1)
    snap = venue.engine.market_snapshot()
    assert snap.seq == 6
    assert [(e.kind, e.order_id, e.side, e.price, e.quantity, e.sequence) for e in snap.orders] == [
        ("ADD", "b2", BUY, 99, 2, 2),
        ("ADD", "b1", BUY, 98, 1, 1),
        ("ADD", "b3", BUY, 98, 3, 3),
        ("ADD", "ice", SELL, 101, 2, 5),
        ("ADD", "a2", SELL, 101, 1, 6),
        ("ADD", "a1", SELL, 102, 4, 4),
    ]
    assert snap.depth == Depth(
        [LevelSnapshot(Decimal(99), Decimal(2), 1), LevelSnapshot(Decimal(98), Decimal(4), 2)],
        [LevelSnapshot(Decimal(101), Decimal(3), 2), LevelSnapshot(Decimal(102), Decimal(4), 1)],
    )


def test_joining_mid_stream_from_a_snapshot(venue):
    """Subscribe, buffer, take the snapshot, then apply only the updates after it."""
    venue.sell("a", 101, 5)
    venue.buy("b", 99, 2)
    buffered = list(venue.tape.updates)  # what a late joiner buffered before its snapshot
    feed = FeedBook(venue.engine.market_snapshot())
    assert feed.seq == 2
    venue.buy("c", 101, 2)
    venue.engine.amend(None, "a", quantity=4)
    venue.engine.cancel(None, "b")
    applied = [feed.apply(u) for u in buffered + venue.tape.updates[2:]]
    assert applied == [False, False, True, True, True]
    check_feed(feed, venue.engine)


def test_a_missing_update_is_a_gap(venue):
    feed = FeedBook(venue.engine.market_snapshot())
    venue.sell("a", 101, 5)
    venue.sell("b", 102, 5)
    with pytest.raises(FeedGap):
        feed.apply(venue.tape.updates[1])


def test_commands_run_without_a_subscriber_are_in_the_snapshot_not_in_seq(venue):
    venue.sell("a", 101, 5)
    venue.tape.unsubscribe()
    venue.sell("b", 102, 5)  # nobody listens: nothing is published, no number is used
    snap = venue.engine.market_snapshot()
    assert snap.seq == 1 and [e.order_id for e in snap.orders] == ["a", "b"]
    tape = Tape(venue.engine)
    feed = FeedBook(snap)
    venue.buy("c", 102, 6)
    assert [u.seq for u in tape.updates] == [2]
    feed.apply(tape.updates[0])
    check_feed(feed, venue.engine)


def test_a_subscriber_that_trades_from_its_callback_sees_seq_in_order(engine_backend):
    venue = Venue(engine_backend, [X])
    first, second = [], []

    def reacting(update):
        first.append(update.seq)
        if update.seq == 1:
            venue.buy("r", 101, 1)  # its update (2) reaches every subscriber after this one (1)

    venue.engine.subscribe(reacting)
    venue.engine.subscribe(lambda u: second.append(u.seq))
    venue.sell("a", 101, 3)
    assert first == second == [1, 2]


def test_batches_and_arrays_publish_one_numbered_update_per_command(engine_backend):
    venue = Venue(engine_backend, [X])
    tape = Tape(venue.engine)
    venue.engine.execute_batch([(0, 1, 1, 100, 5), (0, 2, 0, 100, 2), (4, 1, 0, 0, 0)])
    assert [u.seq for u in tape.updates] == [1, 2, 3]
    assert tape.take() == [
        [("ADD", 1, SELL, 100, 5, 1)],
        [("EXECUTE", 1, SELL, 100, 2, 1)],
        [("DELETE", 1, SELL, 100, 3, 1)],
    ]
    np = pytest.importorskip("numpy")
    from tradebook import COMMAND_DTYPE

    rows = np.zeros(2, COMMAND_DTYPE)
    rows[["op", "side", "id", "price", "quantity"]] = [(0, 0, 7, 99, 4), (0, 1, 8, 99, 1)]
    venue.engine.execute_array(rows)
    assert [u.seq for u in tape.updates] == [4, 5]
    assert tape.take() == [[("ADD", 7, BUY, 99, 4, 3)], [("EXECUTE", 7, BUY, 99, 1, 3)]]


# -- engine snapshots keep the sequence -------------------------------------------------------------


def test_a_restored_engine_goes_on_with_the_sequence(engine_backend):
    venue = Venue(engine_backend, [X, Y])
    tape = Tape(venue.engine)
    venue.sell("a", 101, 5, symbol="X/USD")
    venue.sell("b", 102, 5, symbol="X/USD")
    venue.engine.advance_time(9)
    data = json.loads(json.dumps(venue.engine.snapshot()))
    assert data["order_types"]["books"]["X/USD"]["market_data_seq"] == 2
    assert "Y/USD" not in data["order_types"]["books"]  # nothing published there yet
    restored = engine_backend.MatchingEngine.from_snapshot(data)
    assert restored.market_snapshot("X/USD") == venue.engine.market_snapshot("X/USD")
    assert restored.market_snapshot("Y/USD").seq == 0
    assert restored.snapshot() == data
    feed = FeedBook(restored.market_snapshot("X/USD"))
    copy = Tape(restored)
    for engine in (venue.engine, restored):
        engine.submit(venue.Order("c", "BUY", 101, 7, symbol="X/USD"))
    assert [u.seq for u in copy.updates] == [3] == [u.seq for u in tape.updates[2:]]
    assert copy.updates[0].orders == tape.updates[2].orders and copy.updates[0].time == 9
    feed.apply(copy.updates[0])
    check_feed(feed, restored, "X/USD")
    check_books(restored)


def test_a_snapshot_without_a_sequence_restores_at_0(engine_backend):
    venue = Venue(engine_backend, [X])
    Tape(venue.engine)
    venue.sell("a", 101, 5)
    data = json.loads(json.dumps(venue.engine.snapshot()))
    del data["order_types"]["books"]["X/USD"]["market_data_seq"]
    assert engine_backend.MatchingEngine.from_snapshot(data).market_snapshot().seq == 0


@pytest.mark.parametrize("bad", [0, -1, "3", 1.5, 2**63])
def test_a_bad_sequence_in_a_snapshot_is_refused(engine_backend, bad):
    venue = Venue(engine_backend, [X])
    data = json.loads(json.dumps(venue.engine.snapshot()))
    data["order_types"]["books"]["X/USD"] = {"market_data_seq": bad}
    with pytest.raises(InvalidOrderError):
        engine_backend.MatchingEngine.from_snapshot(data)
