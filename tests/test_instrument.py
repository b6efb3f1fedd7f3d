"""``Instrument``: grid, symbol parts, limits, exact conversions (shared by both backends)."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest

from tradebook import InvalidInstrumentError, InvalidPriceError, InvalidQuantityError, TradebookError
from tradebook.instrument import Instrument

INT64_MAX = (1 << 63) - 1


def test_basic_attributes():
    inst = Instrument("BTC/USDT", "0.01", "0.001")
    assert inst.symbol == "BTC/USDT"
    assert inst.base == "BTC"
    assert inst.quote == "USDT"
    assert inst.tick_size == Decimal("0.01")
    assert inst.lot_size == Decimal("0.001")
    assert isinstance(inst.tick_size, Decimal) and isinstance(inst.lot_size, Decimal)
    for name in ("min_quantity", "max_quantity", "min_notional", "min_price", "max_price"):
        assert getattr(inst, name) is None


@pytest.mark.parametrize("tick", ["0.01", Decimal("0.01"), 0.5, 1, Decimal("1E-8")])
def test_tick_size_types(tick):
    inst = Instrument("A/B", tick, 1)
    assert inst.tick_size == Decimal(tick)
    assert isinstance(inst.tick_size, Decimal)


def test_limits():
    inst = Instrument(
        "ETH/EUR",
        "0.05",
        "0.1",
        min_quantity="0.2",
        max_quantity=100,
        min_notional="10",
        min_price="1.00",
        max_price="99999.95",
    )
    assert inst.min_quantity == Decimal("0.2")
    assert inst.max_quantity == Decimal(100)
    assert inst.min_notional == Decimal(10)
    assert inst.min_price == Decimal("1.00")
    assert inst.max_price == Decimal("99999.95")


@pytest.mark.parametrize(
    "symbol",
    ["BTCUSDT", "/USDT", "BTC/", "/", "A/B/C", " BTC/USDT", "BTC/USDT ", "BTC /USDT", "", 42, None, b"BTC/USDT"],
)
def test_bad_symbol(symbol):
    with pytest.raises(InvalidInstrumentError) as info:
        Instrument(symbol, "0.01", "1")
    assert info.value.code == "invalid_instrument"
    assert isinstance(info.value, ValueError) and isinstance(info.value, TradebookError)


BAD_STEPS = [0, -1, "0", "-0.01", "abc", "", "NaN", "sNaN", "Infinity", "-inf", float("nan"), float("inf"), True, None]


@pytest.mark.parametrize("step", BAD_STEPS, ids=repr)
def test_bad_tick_size(step):
    with pytest.raises(InvalidInstrumentError):
        Instrument("A/B", step, "1")


@pytest.mark.parametrize("step", BAD_STEPS, ids=repr)
def test_bad_lot_size(step):
    with pytest.raises(InvalidInstrumentError):
        Instrument("A/B", "1", step)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_quantity": "0.15"},  # off the 0.1 lot grid
        {"max_quantity": "1.05"},
        {"min_price": "1.01"},  # off the 0.05 tick grid
        {"max_price": "0.07"},
        {"min_price": "0"},
        {"max_quantity": -1},
        {"min_notional": 0},
        {"min_notional": "x"},
        {"min_quantity": 2, "max_quantity": 1},
        {"min_price": "2", "max_price": "1"},
        {"min_price": 0.1},  # float 0.1 is not exactly on the 0.05 grid
    ],
)
def test_bad_limits(kwargs):
    with pytest.raises(InvalidInstrumentError):
        Instrument("A/B", "0.05", "0.1", **kwargs)


def test_equal_limits_allowed():
    inst = Instrument("A/B", "0.05", "0.1", min_quantity=1, max_quantity=1, min_price="2", max_price="2")
    assert inst.min_quantity == inst.max_quantity == 1


def test_read_only():
    inst = Instrument("A/B", "1", "1")
    for name in ("symbol", "base", "quote", "tick_size", "lot_size", "min_price"):
        with pytest.raises(AttributeError):
            setattr(inst, name, "x")
    with pytest.raises(AttributeError):
        inst.anything_else = 1


def test_price_and_quantity_conversions():
    inst = Instrument("BTC/USDT", "0.01", "0.001")
    assert inst.price_to_ticks("101.25") == 10125
    assert inst.price_to_ticks(Decimal("101.250000")) == 10125
    assert inst.price_to_ticks(101) == 10100
    assert inst.quantity_to_lots("1.5") == 1500
    assert inst.ticks_to_price(10125) == Decimal("101.25")
    assert inst.lots_to_quantity(1500) == Decimal("1.500")
    assert isinstance(inst.price_to_ticks("1"), int)
    assert isinstance(inst.ticks_to_price(1), Decimal)
    assert str(inst.ticks_to_price(10000)) == "100.00"


def test_float_exactness():
    # 0.5 is exactly representable: accepted on a 0.5 grid
    half = Instrument("A/B", "0.5", "0.5")
    assert half.price_to_ticks(0.5) == 1
    assert half.price_to_ticks(2.5) == 5
    assert half.quantity_to_lots(0.5) == 1
    # 0.1 is not exactly 1/10 as a float: rejected on a 0.01 grid
    cents = Instrument("A/B", "0.01", "0.01")
    with pytest.raises(InvalidPriceError):
        cents.price_to_ticks(0.1)
    with pytest.raises(InvalidQuantityError):
        cents.quantity_to_lots(0.1)
    assert cents.price_to_ticks(0.25) == 25  # exactly representable
    assert cents.price_to_ticks("0.1") == 10  # the string is exact


@pytest.mark.parametrize(
    "value",
    ["100.005", "0", "-1", "0.00", "NaN", "sNaN", "inf", "-Infinity", "abc", "", None, True, False, b"1", [1], 1 + 2j,
     Fraction(1, 2), 0.1, float("nan"), float("inf"), -0.5, "1E+999999999999999999", "1e-999999999999999999"],
    ids=repr,
)  # fmt: skip
def test_bad_price(value):
    inst = Instrument("BTC/USDT", "0.01", "0.001")
    with pytest.raises(InvalidPriceError) as info:
        inst.price_to_ticks(value)
    assert info.value.code == "invalid_price"
    with pytest.raises(InvalidQuantityError) as info2:
        inst.quantity_to_lots(value if value != "100.005" else "1.0005")
    assert info2.value.code == "invalid_quantity"


def test_int64_range():
    inst = Instrument("BTC/USDT", "0.01", "0.001")
    top_price = Decimal(INT64_MAX) * Decimal("0.01")
    assert inst.price_to_ticks(top_price) == INT64_MAX
    assert inst.ticks_to_price(INT64_MAX) == top_price
    with pytest.raises(InvalidPriceError):
        inst.price_to_ticks(top_price + Decimal("0.01"))
    with pytest.raises(InvalidPriceError):
        inst.price_to_ticks(Decimal(2**64))
    top_qty = Decimal(INT64_MAX) * Decimal("0.001")
    assert inst.quantity_to_lots(top_qty) == INT64_MAX
    with pytest.raises(InvalidQuantityError):
        inst.quantity_to_lots(top_qty + Decimal("0.001"))
    with pytest.raises(InvalidQuantityError):
        inst.quantity_to_lots(2**200)
    assert inst.price_to_ticks("0.01") == 1
    assert inst.quantity_to_lots("0.001") == 1


def test_dict_round_trip_and_equality():
    inst = Instrument("ETH/EUR", "0.05", "0.1", min_quantity="0.2", max_price="100", min_notional="5")
    data = inst.to_dict()
    assert json.loads(json.dumps(data)) == data
    copy = Instrument.from_dict(json.loads(json.dumps(data)))
    assert copy == inst
    assert hash(copy) == hash(inst)
    assert copy.min_quantity == Decimal("0.2") and copy.max_price == 100 and copy.min_notional == 5
    assert copy != Instrument("ETH/EUR", "0.05", "0.1")
    assert inst != "ETH/EUR"
    assert "ETH/EUR" in repr(inst)
    assert Instrument.from_dict(Instrument("A/B", 1, 1).to_dict()) == Instrument("A/B", "1", "1.0")


@pytest.mark.parametrize(
    "data",
    [None, [], {}, {"symbol": "A/B"}, {"symbol": "A/B", "tick_size": "1"}, {"symbol": "AB", "tick_size": "1", "lot_size": "1"},
     {"symbol": "A/B", "tick_size": "1", "lot_size": "1", "colour": "red"}],
)  # fmt: skip
def test_from_dict_rejects_bad_data(data):
    with pytest.raises(InvalidInstrumentError):
        Instrument.from_dict(data)


def test_conversions_stay_exact_over_many_distinct_values():
    # conversions may be cached; the answers must not depend on it
    inst = Instrument("BTC/USDT", "0.01", "0.001")
    for n in range(1, 70_000, 1):
        if n % 997 == 0 or n > 65_000:
            assert inst.ticks_to_price(n) == Decimal(n) / 100
            assert inst.lots_to_quantity(n) == Decimal(n) / 1000
        else:
            inst.ticks_to_price(n)
            inst.lots_to_quantity(n)
    assert inst.ticks_to_price(12345) == Decimal("123.45")
    assert str(inst.lots_to_quantity(1)) == "0.001"
