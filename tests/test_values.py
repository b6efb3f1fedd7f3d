"""Enumerations, errors and the public names (shared by both backends)."""

from __future__ import annotations

import pytest

import tradebook
from tradebook import (
    DuplicateOrderError,
    InvalidInstrumentError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    SymbolMismatchError,
    TimeInForce,
    TradebookError,
    UnknownSymbolError,
)

CORE_NAMES = [
    "BACKEND",
    "BookSide",
    "Depth",
    "DuplicateOrderError",
    "Instrument",
    "InvalidInstrumentError",
    "InvalidOrderError",
    "InvalidPriceError",
    "InvalidQuantityError",
    "LevelSnapshot",
    "Order",
    "OrderBook",
    "OrderNotFoundError",
    "OrderStatus",
    "OrderType",
    "PriceLevel",
    "PriceTree",
    "SelfTradePrevention",
    "Side",
    "SymbolMismatchError",
    "TimeInForce",
    "TradebookError",
    "UnknownSymbolError",
]


@pytest.mark.parametrize("name", CORE_NAMES)
def test_public_name_importable_from_package(name):
    assert hasattr(tradebook, name)
    assert name in tradebook.__all__


def test_all_names_exist():
    for name in tradebook.__all__:
        assert hasattr(tradebook, name), name


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (Side, ["BUY", "SELL"]),
        (OrderType, ["LIMIT", "MARKET", "STOP", "STOP_LIMIT", "TRAILING_STOP"]),
        (TimeInForce, ["GTC", "IOC", "FOK", "GTD"]),
        (
            OrderStatus,
            ["PENDING", "OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED", "UNTRIGGERED"],
        ),
        (SelfTradePrevention, ["NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT"]),
    ],
)
def test_enum_members_are_str_values(enum, values):
    assert [m.value for m in enum] == values
    for value in values:
        member = enum[value]
        assert member.value == value
        assert member == value  # a str enum compares equal to its value
        assert isinstance(member, str)
        assert str(member) == value
        assert enum(value) is member


ERRORS = [
    (TradebookError, "tradebook_error", ()),
    (InvalidOrderError, "invalid_order", (TradebookError, ValueError)),
    (InvalidPriceError, "invalid_price", (InvalidOrderError, TradebookError, ValueError)),
    (InvalidQuantityError, "invalid_quantity", (InvalidOrderError, TradebookError, ValueError)),
    (SymbolMismatchError, "symbol_mismatch", (InvalidOrderError, TradebookError, ValueError)),
    (InvalidInstrumentError, "invalid_instrument", (TradebookError, ValueError)),
    (DuplicateOrderError, "duplicate_order", (TradebookError,)),
    (OrderNotFoundError, "order_not_found", (TradebookError, KeyError)),
    (UnknownSymbolError, "unknown_symbol", (TradebookError, KeyError)),
]


@pytest.mark.parametrize(("cls", "code", "bases"), ERRORS, ids=[e[0].__name__ for e in ERRORS])
def test_error_codes_and_hierarchy(cls, code, bases):
    assert cls.code == code
    err = cls("something went wrong")
    assert err.code == code
    assert isinstance(err, Exception)
    for base in bases:
        assert isinstance(err, base)
    # plain message, even for the KeyError family (KeyError would quote it)
    assert str(err) == "something went wrong"


def test_error_families_are_distinct():
    assert not issubclass(InvalidOrderError, KeyError)
    assert not issubclass(OrderNotFoundError, ValueError)
    assert not issubclass(UnknownSymbolError, ValueError)
    assert not issubclass(DuplicateOrderError, (ValueError, KeyError))
    assert not issubclass(InvalidInstrumentError, InvalidOrderError)


def test_error_codes_are_unique_snake_case():
    codes = [cls.code for cls, _, _ in ERRORS]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert code == code.lower() and " " not in code and "-" not in code


def test_error_with_several_args_keeps_them():
    err = OrderNotFoundError("a", "b")
    assert err.args == ("a", "b")
    assert "a" in str(err) and "b" in str(err)


def test_version_is_a_string():
    assert isinstance(tradebook.__version__, str)
