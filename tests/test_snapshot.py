"""``OrderBook.snapshot()`` / ``OrderBook.from_snapshot()``: a JSON round trip that rebuilds an identical book."""

from __future__ import annotations

import copy
import json
import uuid
from decimal import Decimal

import pytest

from _helpers import ALL, book_state, order_fields
from tradebook import Instrument, InvalidInstrumentError, OrderStatus, Side, TradebookError

D = Decimal


def _json(data):
    return json.loads(json.dumps(data))


def _mixed_book(backend, inst):
    book = backend.OrderBook(inst)
    u1, u2 = uuid.UUID(int=1), uuid.UUID("12345678-1234-5678-1234-567812345678")
    specs = [
        (1, "BUY", "100.00", "1", {"owner": 7}),
        ("b", "BUY", "100.00", "2", {"owner": "alice", "client_order_id": "c-1"}),
        (u1, "BUY", "99.50", "0.5", {"owner": u2, "client_order_id": u1}),
        (2**62, "SELL", "101.00", "3", {"post_only": True, "self_trade_prevention": "DECREMENT"}),
        ("", "SELL", "101.00", "0.001", {"time_in_force": "IOC"}),
        (-5, "SELL", "102.25", "4", {"owner": -1, "client_order_id": 12}),
        (0, "BUY", "98", "1", {}),
    ]
    for oid, side, price, qty, kw in specs:
        book.add_order(backend.Order(oid, side, price, qty, **kw))
    book.add_raw("raw", "SELL", 10300, 5)
    book.fill_order(1, "0.25")
    book.fill_raw(-5, 1000)
    book.amend_order("b", quantity="1.5")  # keeps priority
    book.amend_order(0, price="98.5")  # new sequence
    book.add_raw("gone", "BUY", 1, 1)
    book.remove_raw("gone")  # a gap in the sequence numbers
    return book


def test_snapshot_is_plain_json_data(backend, btc):
    book = _mixed_book(backend, btc)
    data = book.snapshot()
    assert json.loads(json.dumps(data)) == data
    assert isinstance(data, dict)


@pytest.mark.parametrize("via_json", [True, False])
def test_round_trip_identical_book(backend, btc, via_json):
    book = _mixed_book(backend, btc)
    data = book.snapshot()
    copy_ = backend.OrderBook.from_snapshot(_json(data) if via_json else data)
    assert isinstance(copy_, backend.OrderBook)
    copy_._check()
    assert copy_.snapshot() == data
    assert copy_.instrument == btc and copy_.symbol == btc.symbol
    assert book_state(copy_) == book_state(book)
    assert len(copy_) == len(book)
    for level in book.bids:
        for order in level:
            assert order_fields(copy_.get_order(order.id)) == order_fields(order)
    # the same sequence counter: the next order gets the same number in both
    book.add_raw("next", "BUY", 10000, 1)
    copy_.add_raw("next", "BUY", 10000, 1)
    assert copy_.get_order("next").sequence == book.get_order("next").sequence
    assert [o.id for o in copy_.orders_at("BUY", "100")] == [o.id for o in book.orders_at("BUY", "100")]
    assert copy_.snapshot() == book.snapshot()


def test_ids_and_owners_keep_their_type(backend, btc):
    book = _mixed_book(backend, btc)
    copy_ = backend.OrderBook.from_snapshot(_json(book.snapshot()))
    u1 = uuid.UUID(int=1)
    order = copy_.get_order(u1)
    assert type(order.id) is uuid.UUID and order.id == u1
    assert type(order.owner) is uuid.UUID
    assert type(order.client_order_id) is uuid.UUID
    assert type(copy_.get_order(1).id) is int and copy_.get_order(1).owner == 7
    assert type(copy_.get_order(1).owner) is int
    assert copy_.get_order("b").owner == "alice" and copy_.get_order("b").client_order_id == "c-1"
    assert copy_.get_order(2**62).post_only is True
    assert copy_.get_order("").time_in_force == "IOC"
    assert copy_.get_order(-5).client_order_id == 12
    assert "1" not in copy_ and 1 in copy_
    assert str(u1) not in copy_


def test_priorities_survive(backend, btc):
    book = backend.OrderBook(btc)
    for i in range(6):
        book.add_raw(i, "SELL", 500, i + 1)
    book.amend_raw(0, quantity=10)  # to the back
    book.amend_raw(3, quantity=1)  # keeps its place
    book.fill_raw(4, 2)
    copy_ = backend.OrderBook.from_snapshot(_json(book.snapshot()))
    expected = [1, 2, 3, 4, 5, 0]
    assert [o.id for o in book.orders_at("SELL", "5")] == expected
    assert [o.id for o in copy_.orders_at("SELL", "5")] == expected
    assert [o.sequence for o in copy_.orders_at("SELL", "5")] == [o.sequence for o in book.orders_at("SELL", "5")]
    assert copy_.get_order(4).status is OrderStatus.PARTIALLY_FILLED
    assert copy_.get_order(4).filled_quantity == D("0.002")
    assert copy_.get_order(1).status is OrderStatus.OPEN


def test_empty_book_round_trip(backend, btc):
    book = backend.OrderBook(btc)
    copy_ = backend.OrderBook.from_snapshot(_json(book.snapshot()))
    assert len(copy_) == 0 and copy_.snapshot() == book.snapshot()
    book.add_raw(1, "BUY", 1, 1)
    book.remove_raw(1)
    copy_ = backend.OrderBook.from_snapshot(_json(book.snapshot()))
    copy_.add_raw(2, "BUY", 1, 1)
    assert copy_.get_order(2).sequence == 2


def test_extreme_values_round_trip(backend, btc):
    book = backend.OrderBook(btc)
    top = (1 << 63) - 1
    book.add_raw(1, "SELL", top, top)
    book.add_raw(2, "BUY", 1, 1)
    book.fill_raw(1, top - 1)
    copy_ = backend.OrderBook.from_snapshot(_json(book.snapshot()))
    assert copy_.snapshot() == book.snapshot()
    assert copy_.depth_raw(ALL) == book.depth_raw(ALL) == ([(1, 1, 1)], [(top, 1, 1)])


def test_instrument_limits_survive(backend):
    inst = Instrument("ETH/EUR", "0.05", "0.1", min_quantity="0.2", max_price="1000", min_notional="5")
    book = backend.OrderBook(inst)
    book.add_raw(1, "BUY", 20, 3)
    copy_ = backend.OrderBook.from_snapshot(_json(book.snapshot()))
    assert copy_.instrument == inst
    assert copy_.instrument.min_notional == D(5)


def test_snapshot_is_detached_from_the_book(backend, btc):
    book = _mixed_book(backend, btc)
    data = book.snapshot()
    kept = copy.deepcopy(data)
    book.remove_order(1)
    book.add_raw(99, "BUY", 5, 5)
    assert data == kept
    data["orders"].clear()
    assert len(book) == len(kept["orders"])


def test_snapshot_independent_of_source_book(backend, btc):
    book = _mixed_book(backend, btc)
    copy_ = backend.OrderBook.from_snapshot(book.snapshot())
    copy_.remove_order(1)
    copy_.fill_order("b", "0.5")
    assert 1 in book
    assert book.get_order("b").filled_quantity == 0


def _corrupt(data, mutate):
    data = _json(data)
    mutate(data)
    return data


CORRUPTIONS = {
    "not a dict": lambda d: d.clear(),
    "wrong format": lambda d: d.update(format="something/else"),
    "no orders": lambda d: d.pop("orders"),
    "orders not a list": lambda d: d.update(orders={}),
    "no sequence": lambda d: d.pop("next_sequence"),
    "sequence str": lambda d: d.update(next_sequence="9"),
    "sequence zero": lambda d: d.update(next_sequence=0),
    "sequence too small": lambda d: d.update(next_sequence=2),
    "order not a dict": lambda d: d["orders"].append([1, 2]),
    "bad side": lambda d: d["orders"][0].update(side="buy"),
    "price zero": lambda d: d["orders"][0].update(price=0),
    "price float": lambda d: d["orders"][0].update(price=100.0),
    "price huge": lambda d: d["orders"][0].update(price=2**63),
    "quantity negative": lambda d: d["orders"][0].update(quantity=-1),
    "quantity str": lambda d: d["orders"][0].update(quantity="5"),
    "filled all": lambda d: d["orders"][0].update(filled=d["orders"][0]["quantity"]),
    "filled negative": lambda d: d["orders"][0].update(filled=-1),
    "filled float": lambda d: d["orders"][0].update(filled=0.5),
    "sequence missing": lambda d: d["orders"][0].pop("sequence"),
    "sequence bool": lambda d: d["orders"][0].update(sequence=True),
    "id missing": lambda d: d["orders"][0].pop("id"),
    "id list": lambda d: d["orders"][0].update(id=[1]),
    "id bad tag": lambda d: d["orders"][0].update(id={"uuid": "not-a-uuid"}),
    "duplicate id": lambda d: d["orders"][1].update(id=d["orders"][0]["id"]),
    "duplicate sequence": lambda d: d["orders"][1].update(sequence=d["orders"][0]["sequence"]),
    "market order": lambda d: d["orders"][0].update(type="MARKET"),
    "bad type": lambda d: d["orders"][0].update(type="STOP"),
    "owner float": lambda d: d["orders"][0].update(owner=1.5),
    # found by the fuzz target: ints and floats passed an ``in (True, False)`` test, and the
    # pure book then gave back ``1`` where the compiled one gave ``True``
    "post_only int": lambda d: d["orders"][0].update(post_only=1),
    "post_only zero": lambda d: d["orders"][0].update(post_only=0),
    "post_only float": lambda d: d["orders"][0].update(post_only=1.0),
    "post_only str": lambda d: d["orders"][0].update(post_only="true"),
    "no instrument": lambda d: d.pop("instrument"),
    "bad tick": lambda d: d["instrument"].update(tick_size="0"),
    "bad symbol": lambda d: d["instrument"].update(symbol="BTCUSDT"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupt_snapshot_rejected(backend, btc, name):
    book = _mixed_book(backend, btc)
    data = _corrupt(book.snapshot(), CORRUPTIONS[name])
    with pytest.raises(TradebookError) as info:
        backend.OrderBook.from_snapshot(data)
    assert isinstance(info.value, ValueError)


def test_corrupt_instrument_is_an_instrument_error(backend, btc):
    data = _corrupt(_mixed_book(backend, btc).snapshot(), CORRUPTIONS["bad tick"])
    with pytest.raises(InvalidInstrumentError):
        backend.OrderBook.from_snapshot(data)


@pytest.mark.parametrize("data", [None, [], "snapshot", 42])
def test_not_a_snapshot(backend, data):
    with pytest.raises(TradebookError):
        backend.OrderBook.from_snapshot(data)


def test_snapshot_level_overflow_rejected(backend, btc):
    # a book never holds a level whose total exceeds 2**63-1 lots; neither may a snapshot build one
    book = backend.OrderBook(btc)
    book.add_raw(1, "BUY", 100, 1 << 62)
    book.add_raw(2, "BUY", 101, 1 << 62)
    data = book.snapshot()
    data["orders"][1]["price"] = data["orders"][0]["price"]
    data["orders"][1]["quantity"] = (1 << 62) + 1
    with pytest.raises(TradebookError):
        backend.OrderBook.from_snapshot(data)


def test_unsupported_id_types_cannot_be_snapshotted(backend, btc):
    book = backend.OrderBook(btc)
    book.add_raw((1, 2), "BUY", 100, 1)
    with pytest.raises(TypeError):
        book.snapshot()
    book.remove_raw((1, 2))
    book.add_order(backend.Order(1, "BUY", "1", "1", owner=(1, 2)))
    with pytest.raises(TypeError):
        book.snapshot()
    book._check()


def test_snapshots_cross_backends(btc):
    from _backends import available_backends

    backends = available_backends()
    for src in backends.values():
        book = _mixed_book(src, btc)
        data = _json(book.snapshot())
        for dst in backends.values():
            rebuilt = dst.OrderBook.from_snapshot(data)
            rebuilt._check()
            assert rebuilt.snapshot() == book.snapshot()
            assert rebuilt.get_order(uuid.UUID(int=1)).side is Side.BUY
