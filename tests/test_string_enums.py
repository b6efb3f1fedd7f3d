"""Enum arguments given as strings: the fast paths (interned literals, other exact
strs, str subclasses) give the same members, and anything else keeps its error."""

from __future__ import annotations

import pytest

from tradebook import InvalidOrderError, OrderType, SelfTradePrevention, Side, TimeInForce


def fresh(text: str) -> str:
    """An equal str that is not the interned literal (as json.loads would hand one over)."""
    out = "".join(list(text))
    assert out == text
    return out


class StrSub(str):
    pass


def spellings(member: object) -> list[object]:
    value = member.value  # type: ignore[attr-defined]
    return [member, value, fresh(value), StrSub(value)]


@pytest.mark.parametrize("side", list(Side))
def test_side_spellings_give_the_member(backend, btc, side):
    for i, given in enumerate(spellings(side), 1):
        order = backend.Order(i, given, "100.00", "1")
        assert order.side is side
        book = backend.OrderBook(btc)
        book.add_raw(i, given, 10_000, 1)
        assert book.get_order(i).side is side
        assert book.level_raw(given, 10_000) == (1, 1)
        assert backend.PriceLevel(book, given, 10_000).side is side
        assert backend.BookSide(book, given).side is side
        book._check()


@pytest.mark.parametrize("member", [*OrderType, *TimeInForce, *SelfTradePrevention])
def test_order_enum_spellings_give_the_member(backend, member):
    keyword = {
        OrderType: "type",
        TimeInForce: "time_in_force",
        SelfTradePrevention: "self_trade_prevention",
    }[type(member)]
    attribute = {"type": "type", "time_in_force": "time_in_force", "self_trade_prevention": "self_trade_prevention"}
    # what each new type needs besides its name (api.md, "Order types beyond limit and market")
    extra = {
        OrderType.STOP: {"stop_price": "100.00"},
        OrderType.STOP_LIMIT: {"stop_price": "100.00"},
        OrderType.TRAILING_STOP: {"trailing_offset": "1.00"},
        TimeInForce.GTD: {"expire_at": 5},
    }.get(member, {})
    for given in spellings(member):
        price = None if member in (OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP) else "100.00"
        order = backend.Order(1, "BUY", price, "1", **{keyword: given}, **extra)
        assert getattr(order, attribute[keyword]) is member


@pytest.mark.parametrize("tif", list(TimeInForce))
def test_submit_raw_time_in_force_spellings(engine_backend, btc, tif):
    results = []
    for given in spellings(tif):
        engine = engine_backend.MatchingEngine([btc])
        engine.submit_raw(1, fresh("SELL"), 10_000, 2)
        report = engine.submit_raw(2, "BUY", 10_000, 3, time_in_force=given)
        results.append((report.status, report.filled_lots, report.order.time_in_force, len(engine.book())))
        engine.book()._check()
    assert all(r == results[0] for r in results)
    assert results[0][2] is tif


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"side": "buy"}, "side must be one of BUY, SELL; got 'buy'"),
        ({"side": " BUY"}, "side must be one of BUY, SELL; got ' BUY'"),
        ({"side": 1}, "side must be one of BUY, SELL; got 1"),
        ({"type": "limit"}, "order type must be one of LIMIT, MARKET, STOP, STOP_LIMIT, TRAILING_STOP; got 'limit'"),
        ({"time_in_force": "gtc"}, "time in force must be one of GTC, IOC, FOK, GTD; got 'gtc'"),
        ({"time_in_force": None}, "time in force must be one of GTC, IOC, FOK, GTD; got None"),
        ({"self_trade_prevention": "cancel_taker"}, "self_trade_prevention must be one of"),
        ({"self_trade_prevention": OrderType.LIMIT}, "self_trade_prevention must be one of"),
    ],
)
def test_wrong_spellings_keep_their_errors(backend, kwargs, message):
    args = {"side": "BUY", **kwargs}
    side = args.pop("side")
    with pytest.raises(InvalidOrderError) as info:
        backend.Order(1, side, "100.00", "1", **args)
    assert str(info.value).startswith(message)


def test_enum_members_of_another_enum_are_refused(backend, book):
    # Side and TimeInForce share no values, but a member of one is a str equal to nothing in the other
    with pytest.raises(InvalidOrderError):
        book.add_raw(1, TimeInForce.GTC, 10_000, 1)
    with pytest.raises(InvalidOrderError):
        backend.Order(1, "BUY", "1", "1", time_in_force=Side.BUY)
    assert len(book) == 0
    book._check()
