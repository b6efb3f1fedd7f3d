"""``Order``: construction, validation and read-only views, on both backends."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tradebook import (
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TradebookError,
)

READ_ONLY = [
    "id",
    "side",
    "price",
    "quantity",
    "filled_quantity",
    "remaining_quantity",
    "type",
    "time_in_force",
    "post_only",
    "owner",
    "client_order_id",
    "symbol",
    "status",
    "sequence",
    "is_filled",
    "price_ticks",
    "quantity_lots",
    "filled_lots",
]


def test_defaults(backend):
    order = backend.Order(1, Side.BUY, "101.5", 2)
    assert order.id == 1
    assert order.side is Side.BUY
    assert order.price == Decimal("101.5") and isinstance(order.price, Decimal)
    assert order.quantity == Decimal(2) and isinstance(order.quantity, Decimal)
    assert order.filled_quantity == 0 and isinstance(order.filled_quantity, Decimal)
    assert order.remaining_quantity == 2 and isinstance(order.remaining_quantity, Decimal)
    assert order.type is OrderType.LIMIT
    assert order.time_in_force is TimeInForce.GTC
    assert order.post_only is False
    assert order.owner is None
    assert order.client_order_id is None
    assert order.symbol is None
    assert order.status is OrderStatus.PENDING
    assert order.sequence is None
    assert order.is_filled is False
    assert order.self_trade_prevention is None
    # raw views before the order joins a book
    assert order.price_ticks is None
    assert order.quantity_lots is None
    assert order.filled_lots == 0


def test_all_keywords(backend):
    owner = uuid.UUID(int=7)
    order = backend.Order(
        "abc",
        Side.SELL,
        Decimal("99.99"),
        "0.5",
        symbol="BTC/USDT",
        owner=owner,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        post_only=True,
        client_order_id="my-ref",
        self_trade_prevention=SelfTradePrevention.DECREMENT,
    )
    assert order.id == "abc"
    assert order.side is Side.SELL
    assert order.price == Decimal("99.99")
    assert order.quantity == Decimal("0.5")
    assert order.symbol == "BTC/USDT"
    assert order.owner == owner
    assert order.post_only is True
    assert order.client_order_id == "my-ref"
    assert order.self_trade_prevention is SelfTradePrevention.DECREMENT


def test_enum_string_values_accepted(backend):
    order = backend.Order(1, "SELL", "1", "1", type="LIMIT", time_in_force="IOC", self_trade_prevention="CANCEL_BOTH")
    assert order.side is Side.SELL
    assert order.type is OrderType.LIMIT
    assert order.time_in_force is TimeInForce.IOC
    assert order.self_trade_prevention is SelfTradePrevention.CANCEL_BOTH
    market = backend.Order(2, "BUY", None, "3", type="MARKET", time_in_force="FOK")
    assert market.type is OrderType.MARKET
    assert market.time_in_force is TimeInForce.FOK
    assert market.price is None


@pytest.mark.parametrize("quantity", [Decimal("1.5"), "1.5", 1.5])
def test_number_types(backend, quantity):
    order = backend.Order(1, "BUY", 100, quantity)
    assert order.quantity == Decimal("1.5")
    assert order.price == Decimal(100)


@pytest.mark.parametrize(
    "oid", [0, -1, 2**70, "x", "", uuid.UUID(int=0x1234_5678_9ABC_DEF0), (1, "a"), 1.5, b"id", frozenset({1})], ids=repr
)
def test_any_hashable_id(backend, oid):
    assert backend.Order(oid, "BUY", 1, 1).id == oid


class _Unhashable:
    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"id": None}, InvalidOrderError),
        ({"id": []}, InvalidOrderError),
        ({"id": {}}, InvalidOrderError),
        ({"id": _Unhashable()}, InvalidOrderError),
        ({"side": "buy"}, InvalidOrderError),
        ({"side": "LONG"}, InvalidOrderError),
        ({"side": None}, InvalidOrderError),
        ({"side": 1}, InvalidOrderError),
        ({"side": OrderType.LIMIT}, InvalidOrderError),
        ({"type": "STOP"}, InvalidOrderError),
        ({"type": None}, InvalidOrderError),
        ({"time_in_force": "DAY"}, InvalidOrderError),
        ({"time_in_force": None}, InvalidOrderError),
        ({"self_trade_prevention": "SOMETIMES"}, InvalidOrderError),
        ({"post_only": 1}, InvalidOrderError),
        ({"post_only": "yes"}, InvalidOrderError),
        ({"post_only": None}, InvalidOrderError),
        ({"post_only": True, "time_in_force": "IOC"}, InvalidOrderError),
        ({"post_only": True, "time_in_force": "FOK"}, InvalidOrderError),
        ({"post_only": True, "type": "MARKET", "price": None}, InvalidOrderError),
        ({"symbol": 5}, InvalidOrderError),
        ({"symbol": b"BTC/USDT"}, InvalidOrderError),
        ({"price": None}, InvalidPriceError),
        ({"price": 0}, InvalidPriceError),
        ({"price": "-1"}, InvalidPriceError),
        ({"price": "abc"}, InvalidPriceError),
        ({"price": "NaN"}, InvalidPriceError),
        ({"price": float("inf")}, InvalidPriceError),
        ({"price": True}, InvalidPriceError),
        ({"price": [1]}, InvalidPriceError),
        ({"type": "MARKET"}, InvalidPriceError),  # a market order takes no price
        ({"quantity": 0}, InvalidQuantityError),
        ({"quantity": "-0.5"}, InvalidQuantityError),
        ({"quantity": None}, InvalidQuantityError),
        ({"quantity": "x"}, InvalidQuantityError),
        ({"quantity": float("nan")}, InvalidQuantityError),
        ({"quantity": Decimal("-Infinity")}, InvalidQuantityError),
        ({"quantity": False}, InvalidQuantityError),
    ],
)
def test_validation_at_construction(backend, kwargs, error):
    args = {"id": 1, "side": "BUY", "price": "100", "quantity": "1"}
    args.update(kwargs)
    oid, side, price, quantity = args.pop("id"), args.pop("side"), args.pop("price"), args.pop("quantity")
    with pytest.raises(error) as info:
        backend.Order(oid, side, price, quantity, **args)
    assert isinstance(info.value, TradebookError)
    assert isinstance(info.value, ValueError)
    assert info.value.code == error.code


@pytest.mark.parametrize("name", READ_ONLY)
def test_read_only_attributes(backend, name):
    order = backend.Order(1, "BUY", "100", "1")
    before = getattr(order, name)
    with pytest.raises(AttributeError):
        setattr(order, name, 5)
    assert getattr(order, name) == before


def test_cannot_add_new_attributes_or_delete(backend):
    order = backend.Order(1, "BUY", "100", "1")
    with pytest.raises(AttributeError):
        order.colour = "red"
    with pytest.raises(AttributeError):
        del order.status


def test_repr_mentions_id(backend):
    assert "42" in repr(backend.Order(42, "BUY", "100", "1"))


def test_off_grid_values_are_kept_until_added(backend, btc):
    # An order does not know its instrument yet: grid checks happen in the book.
    order = backend.Order(1, "BUY", "100.001", "1")
    assert order.price == Decimal("100.001")
    book = backend.OrderBook(btc)
    with pytest.raises(InvalidPriceError):
        book.add_order(order)
    assert order.status is OrderStatus.PENDING
    assert order.sequence is None
