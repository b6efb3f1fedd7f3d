"""OrderService.place refuses bad requests with a specific error and changes nothing.

"Nothing" means: no order row, no reservation, no wallet call at all, every
balance and every book as before, no ids consumed that a later order would
notice.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from _service_support import BTC, ETH, D, service_env

from tradebook import (
    Instrument,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    InvalidRequestError,
    OrderStatus,
    TradebookError,
    UnknownSymbolError,
)

S = "BTC/USDT"
LIM = Instrument(
    "LIM/USDT",
    "0.5",
    "0.1",
    min_quantity="1",
    max_quantity="100",
    min_price="10",
    max_price="1000",
    min_notional="50",
)


@pytest.fixture
async def env():
    async with service_env(instruments=(BTC, ETH, LIM)) as e:
        # something in the books, so "unchanged" is not trivially true
        await e.service.place_order("alice", S, "SELL", "1", "100")
        await e.service.place_order("carol", S, "BUY", "1", "99")
        yield e
        await e.check()


async def refused(env, error: type[Exception], code: str, *args, **kwargs) -> TradebookError:
    """Place with ``args``/``kwargs``, expect ``error`` (exactly that class), and check that nothing changed."""
    before = await env.snapshot()
    wallet_calls = len(env.wallet.calls)
    with pytest.raises(error) as caught:
        await env.service.place(*args, **kwargs)
    assert type(caught.value) is error
    assert caught.value.code == code
    assert await env.snapshot() == before
    assert len(env.wallet.calls) == wallet_calls, "a refused order reached the wallet"
    # the next accepted order gets the next id: the refused one left no row behind
    order = await env.service.place_order("bob", S, "BUY", "0.001", "1")
    assert order.id == max(before["orders"]) + 1
    await env.service.cancel_order("bob", order.id)
    return caught.value


async def test_unknown_symbol(env):
    err = await refused(env, UnknownSymbolError, "unknown_symbol", "bob", "DOGE/USDT", "BUY", "1", "1")
    assert isinstance(err, KeyError)
    await refused(env, UnknownSymbolError, "unknown_symbol", "bob", None, "BUY", "1", "1")
    await refused(env, UnknownSymbolError, "unknown_symbol", "bob", "btc/usdt", "BUY", "1", "1")


@pytest.mark.parametrize("side", ["buy", "BUYS", "", None, 1])
async def test_bad_side(env, side):
    err = await refused(env, InvalidOrderError, "invalid_order", "bob", S, side, "1", "100")
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("type_", ["limit", "ICEBERG", "STOP_MARKET", "", None])
async def test_bad_type(env, type_):
    await refused(env, InvalidOrderError, "invalid_order", "bob", S, "BUY", "1", "100", type=type_)


@pytest.mark.parametrize("tif", ["gtc", "DAY", "GTX", "gtd", "", None])
async def test_bad_time_in_force(env, tif):
    await refused(env, InvalidOrderError, "invalid_order", "bob", S, "BUY", "1", "100", time_in_force=tif)


@pytest.mark.parametrize("post_only", ["yes", 1, None])
async def test_post_only_must_be_a_bool(env, post_only):
    await refused(env, InvalidOrderError, "invalid_order", "bob", S, "BUY", "1", "90", post_only=post_only)


@pytest.mark.parametrize("price", ["100.001", "0.005", Decimal("99.999"), 0.1])
async def test_price_off_the_tick_grid(env, price):
    await refused(env, InvalidPriceError, "invalid_price", "bob", S, "BUY", "1", price)


@pytest.mark.parametrize("quantity", ["1.0001", "0.0005", Decimal("2.0000001"), 0.1])
async def test_quantity_off_the_lot_grid(env, quantity):
    await refused(env, InvalidQuantityError, "invalid_quantity", "bob", S, "BUY", quantity, "100")


@pytest.mark.parametrize(
    "quantity", ["0", 0, "-1", -1, "NaN", "sNaN", "Infinity", "-Infinity", "1e30", 2**70, True, None, "abc", [1]]
)
async def test_bad_quantity_values(env, quantity):
    await refused(env, InvalidQuantityError, "invalid_quantity", "bob", S, "BUY", quantity, "100")


@pytest.mark.parametrize("price", ["0", 0, "-100", "NaN", "Infinity", "1e30", 2**70, True, "abc"])
async def test_bad_price_values(env, price):
    await refused(env, InvalidPriceError, "invalid_price", "bob", S, "BUY", "1", price)


async def test_bad_market_quantity(env):
    await refused(env, InvalidQuantityError, "invalid_quantity", "bob", S, "BUY", "-1", type="MARKET")


async def test_limit_order_needs_a_price(env):
    await refused(env, InvalidPriceError, "invalid_price", "bob", S, "BUY", "1")
    await refused(env, InvalidPriceError, "invalid_price", "bob", S, "SELL", "1", None, time_in_force="IOC")


async def test_market_order_takes_no_price(env):
    await refused(env, InvalidPriceError, "invalid_price", "bob", S, "BUY", "1", "100", type="MARKET")
    await refused(env, InvalidPriceError, "invalid_price", "bob", S, "SELL", "1", "100", type="MARKET")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_in_force": "IOC", "price": "90"},
        {"time_in_force": "FOK", "price": "90"},
        {"type": "MARKET"},
        {"type": "MARKET", "time_in_force": "IOC"},
    ],
)
async def test_post_only_on_anything_but_limit_gtc(env, kwargs):
    await refused(env, InvalidOrderError, "invalid_order", "bob", S, "BUY", "1", post_only=True, **kwargs)


@pytest.mark.parametrize(
    ("quantity", "price", "error", "code"),
    [
        ("0.9", "100", InvalidQuantityError, "invalid_quantity"),  # below min_quantity
        ("100.1", "100", InvalidQuantityError, "invalid_quantity"),  # above max_quantity
        ("10", "9.5", InvalidPriceError, "invalid_price"),  # below min_price
        ("1", "1000.5", InvalidPriceError, "invalid_price"),  # above max_price
        ("4.9", "10", InvalidOrderError, "invalid_order"),  # notional 49 < min_notional 50
    ],
)
async def test_instrument_limits(env, quantity, price, error, code):
    await refused(env, error, code, "bob", "LIM/USDT", "BUY", quantity, price)


async def test_instrument_limits_at_their_bounds_are_accepted(env):
    low = await env.service.place_order("bob", "LIM/USDT", "BUY", "5", "10")  # notional exactly 50
    most = await env.service.place_order("bob", "LIM/USDT", "BUY", "100", "10")  # max_quantity
    high = await env.service.place_order("bob", "LIM/USDT", "BUY", "1", "1000")  # max_price
    assert low.status is most.status is high.status is OrderStatus.OPEN
    assert await env.balance("bob", "USDT") == (D("100000") - 2050, D("2050"))


async def test_market_orders_obey_the_quantity_limits(env):
    await refused(env, InvalidQuantityError, "invalid_quantity", "bob", "LIM/USDT", "BUY", "0.5", type="MARKET")
    await refused(env, InvalidQuantityError, "invalid_quantity", "bob", "LIM/USDT", "SELL", "200", type="MARKET")


@pytest.mark.parametrize("user", ["", None, 42, "x" * 129, "bad\nuser", "tab\tuser", b"alice"])
async def test_bad_user_id(env, user):
    err = await refused(env, InvalidRequestError, "invalid_request", user, S, "BUY", "1", "100")
    assert isinstance(err, ValueError)


async def test_longest_user_id_is_accepted(env):
    user = "u" * 128
    await env.ledger.deposit(user, "USDT", 100)
    env.users = (*env.users, user)
    env.initial_totals = await env.ledger.totals()
    order = await env.service.place_order(user, S, "BUY", "1", "99")
    assert order.user_id == user


@pytest.mark.parametrize("client_order_id", ["", "c" * 65, "caf\u00e9", "line\nbreak", "\u00a0", 7, b"abc"])
async def test_bad_client_order_id(env, client_order_id):
    await refused(env, InvalidOrderError, "invalid_order", "bob", S, "BUY", "1", "100", client_order_id=client_order_id)


async def test_longest_client_order_id_is_accepted(env):
    order = await env.service.place_order("bob", S, "BUY", "1", "90", client_order_id="c" * 64)
    assert order.client_order_id == "c" * 64


async def test_an_order_the_engine_refuses_leaves_nothing_behind():
    """A level whose total would pass 2**63-1 lots: the engine raises at submit, after the
    service wrote the pending row and reserved; both must be undone."""
    big = Instrument("BIG/USD", "1", "1")
    half = 2**62
    async with service_env(instruments=(big,), deposits={"USD": D(2**64), "BIG": D(2**64)}) as env:
        first = await env.service.place_order("alice", "BIG/USD", "BUY", half, 1)
        assert first.status is OrderStatus.OPEN
        before = await env.snapshot()
        with pytest.raises(InvalidQuantityError) as caught:
            await env.service.place("bob", "BIG/USD", "BUY", half, 1)
        assert caught.value.code == "invalid_quantity"
        assert await env.snapshot() == before
        await env.check()


async def test_amounts_beyond_28_significant_digits_are_exact_or_refused():
    fine = Instrument("FINE/USD", "0.00000001", "0.00000001")
    price, q1, q2 = D("12345678901.23456789"), D("793764298.77626437"), D("276332364.73355572")
    deposits = {"USD": D("20000000000000000000"), "FINE": D("2000000000")}
    async with service_env(instruments=(fine,), deposits=deposits) as env:
        await env.service.place_order("alice", "FINE/USD", "SELL", q1, price)
        await env.service.place_order("carol", "FINE/USD", "SELL", q2, price)
        before = await env.snapshot()
        try:
            placed = await env.service.place("bob", "FINE/USD", "BUY", q1 + q2, price)
        except InvalidOrderError:  # refusing such an order is a fix too
            assert await env.snapshot() == before
        else:
            assert placed.order.status is OrderStatus.FILLED
            # the two trades cost 9799559155955378769.0283352853530793 + 3411510645019314038.8461242974378308
            assert await env.balance("bob", "USD") == (D("6788930199025307192.1255404172090899"), 0)
            assert await env.balance("alice", "USD") == (D("29799559155955378769.0283352853530793"), 0)
        await env.check()


# -- the order types beyond limit and market ----------------------------------------------------

NAIVE = datetime(2030, 1, 1)
LATER = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("error", "code", "args", "kwargs"),
    [
        # stops
        (InvalidOrderError, "invalid_order", ("SELL", "1"), {"type": "STOP"}),  # no stop_price
        (InvalidQuantityError, "invalid_quantity", ("SELL", None), {"type": "STOP", "stop_price": "90"}),
        (InvalidOrderError, "invalid_order", ("SELL", "1", "100"), {"stop_price": "90"}),  # a stop price on a LIMIT
        (InvalidOrderError, "invalid_order", ("SELL", "1"), {"type": "MARKET", "stop_price": "90"}),
        (InvalidPriceError, "invalid_price", ("SELL", "1", "100"), {"type": "STOP", "stop_price": "90"}),  # a price
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "STOP_LIMIT", "stop_price": "90"}),  # none
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "STOP", "stop_price": "90.001"}),
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "STOP", "stop_price": "0"}),
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "STOP", "stop_price": "-5"}),
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "STOP", "stop_price": "NaN"}),
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "STOP", "stop_price": True}),
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "STOP", "stop_price": "1e30"}),
        (InvalidOrderError, "invalid_order", ("SELL", "1"), {"type": "STOP", "stop_price": "90", "post_only": True}),
        # a market stop buy on an instrument without a max_price: nothing bounds what it would pay
        (InvalidOrderError, "invalid_order", ("BUY", "1"), {"type": "STOP", "stop_price": "110"}),
        (InvalidOrderError, "invalid_order", ("BUY", "1"), {"type": "TRAILING_STOP", "trailing_offset": "1"}),
        # trailing stops
        (InvalidOrderError, "invalid_order", ("SELL", "1"), {"type": "TRAILING_STOP"}),
        (InvalidOrderError, "invalid_order", ("SELL", "1", "100"), {"trailing_offset": "1"}),
        (
            InvalidOrderError,
            "invalid_order",
            ("SELL", "1"),
            {"type": "TRAILING_STOP", "trailing_offset": "1", "stop_price": "90"},
        ),
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "TRAILING_STOP", "trailing_offset": "0.005"}),
        (InvalidPriceError, "invalid_price", ("SELL", "1"), {"type": "TRAILING_STOP", "trailing_offset": "0"}),
        # icebergs
        (InvalidOrderError, "invalid_order", ("SELL", "1"), {"type": "MARKET", "display_quantity": "0.1"}),
        (InvalidOrderError, "invalid_order", ("SELL", "1", "100"), {"time_in_force": "IOC", "display_quantity": "0.1"}),
        (
            InvalidOrderError,
            "invalid_order",
            ("SELL", "1", "100"),
            {"type": "STOP_LIMIT", "stop_price": "90", "display_quantity": "0.1"},
        ),
        (InvalidQuantityError, "invalid_quantity", ("SELL", "1", "100"), {"display_quantity": "1"}),
        (InvalidQuantityError, "invalid_quantity", ("SELL", "1", "100"), {"display_quantity": "2"}),
        (InvalidQuantityError, "invalid_quantity", ("SELL", "1", "100"), {"display_quantity": "0.0005"}),
        (InvalidQuantityError, "invalid_quantity", ("SELL", "1", "100"), {"display_quantity": "0"}),
        (InvalidQuantityError, "invalid_quantity", ("SELL", "1", "100"), {"display_quantity": [1]}),
        # GTD
        (InvalidOrderError, "invalid_order", ("SELL", "1", "100"), {"time_in_force": "GTD"}),
        (InvalidOrderError, "invalid_order", ("SELL", "1", "100"), {"expire_at": 1}),
        (
            InvalidOrderError,
            "invalid_order",
            ("SELL", "1"),
            {"type": "MARKET", "time_in_force": "GTD", "expire_at": LATER},
        ),
        *[
            (InvalidOrderError, "invalid_order", ("SELL", "1", "100"), {"time_in_force": "GTD", "expire_at": bad})
            for bad in ("1893456000000", 1.5e12, True, NAIVE, -1, 253402300800000, 2**64, Decimal(5))
        ],
        # quote-sized market orders
        (InvalidOrderError, "invalid_order", ("BUY", "1"), {"type": "MARKET", "quote_quantity": "100"}),
        (InvalidOrderError, "invalid_order", ("BUY", None, "100"), {"quote_quantity": "100"}),
        (
            InvalidOrderError,
            "invalid_order",
            ("SELL", None),
            {"type": "STOP", "stop_price": "90", "quote_quantity": "100"},
        ),
        (
            InvalidOrderError,
            "invalid_order",
            ("BUY", None),
            {"type": "MARKET", "time_in_force": "FOK", "quote_quantity": "100"},
        ),
        *[
            (InvalidQuantityError, "invalid_quantity", ("BUY", None), {"type": "MARKET", "quote_quantity": bad})
            for bad in ("100.000001", "0", "-1", "NaN", "Infinity", "abc", True, "1e40", 0.1)
        ],
    ],
)
async def test_bad_combinations_of_the_new_order_types(env, error, code, args, kwargs):
    await refused(env, error, code, "bob", S, *args, **kwargs)


async def test_a_stop_price_outside_the_instruments_band_is_refused(env):
    await refused(env, InvalidPriceError, "invalid_price", "bob", "LIM/USDT", "SELL", "1", type="STOP", stop_price="5")
    await refused(
        env, InvalidPriceError, "invalid_price", "bob", "LIM/USDT", "BUY", "1", type="STOP", stop_price="1000.5"
    )


async def test_the_new_order_types_at_their_bounds_are_accepted(env):
    svc = env.service
    stop = await svc.place_order("bob", "LIM/USDT", "BUY", "1", type="STOP", stop_price="1000")  # max_price
    assert (stop.status, await env.balance("bob", "USDT")) == (OrderStatus.UNTRIGGERED, (D(99000), D(1000)))
    await svc.cancel_order("bob", stop.id)
    ice = await svc.place_order("bob", S, "SELL", "1", "200", display_quantity="0.999")
    assert ice.visible_quantity == D("0.999")
    await svc.cancel_order("bob", ice.id)
    gtd = await svc.place_order("bob", S, "SELL", "1", "200", time_in_force="GTD", expire_at=253402300799999)
    assert gtd.expire_at == 253402300799999
    await svc.cancel_order("bob", gtd.id)
    quote = await svc.place("bob", S, "BUY", None, type="MARKET", quote_quantity="0.00001")  # one tick x one lot
    assert quote.order.quote_quantity == D("0.00001") and quote.trades == ()


async def test_expire_at_may_be_a_datetime_rounded_up_to_the_millisecond(env):
    moment = datetime(2030, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    order = await env.service.place_order("bob", S, "SELL", "1", "200", time_in_force="GTD", expire_at=moment)
    assert order.expire_at == (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1) + 1
    await env.service.cancel_order("bob", order.id)
