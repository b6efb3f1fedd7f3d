"""OrderService queries: get_order, list_orders, list_trades, depth, balances."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _service_support import DEPOSITS, D, StepClock, service_env

from tradebook import (
    InvalidRequestError,
    LevelSnapshot,
    OrderNotFoundError,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    UnknownSymbolError,
)
from tradebook.oms import Balance, OrderQuery, OrderRecord

S, E = "BTC/USDT", "ETH/USDT"
USDT0 = DEPOSITS["USDT"]


@pytest.fixture
async def env():
    clock = StepClock()
    async with service_env(clock=clock) as e:
        e.clock = clock
        yield e
        await e.check()


# -- get_order ---------------------------------------------------------------------


async def test_get_order_returns_the_users_order_as_stored(env):
    order = await env.service.place_order("bob", S, "BUY", "1", "100", client_order_id="c")
    got = await env.service.get_order("bob", order.id)
    assert got == order == await env.repo.get_order(order.id)
    assert got.created_at.tzinfo is not None


async def test_get_order_follows_fills(env):
    order = await env.service.place_order("bob", S, "BUY", "2", "100")
    await env.service.place_order("alice", S, "SELL", "0.5", "100")
    got = await env.service.get_order("bob", order.id)
    assert (got.status, got.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, D("0.5"))


async def test_another_users_order_is_not_found(env):
    order = await env.service.place_order("bob", S, "BUY", "1", "100")
    with pytest.raises(OrderNotFoundError) as caught:
        await env.service.get_order("alice", order.id)
    assert isinstance(caught.value, KeyError) and caught.value.code == "order_not_found"


@pytest.mark.parametrize("order_id", [404, 0, -3, 2**63, "1", None, False])
async def test_unknown_or_malformed_ids_are_not_found(env, order_id):
    await env.service.place_order("bob", S, "BUY", "1", "100")
    with pytest.raises(OrderNotFoundError):
        await env.service.get_order("bob", order_id)


@pytest.mark.parametrize("user", ["", None, "x" * 129, "a\x00b"])
async def test_get_order_with_a_bad_user_id(env, user):
    with pytest.raises(InvalidRequestError):
        await env.service.get_order(user, 1)


async def test_a_pending_order_is_not_visible(env):
    now = env.clock()
    pending = OrderRecord(
        id=50,
        user_id="bob",
        symbol=S,
        side=Side.BUY,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price=D("1"),
        quantity=D("1"),
        filled_quantity=D("0"),
        status=OrderStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    async with env.repo.transaction() as uow:
        await uow.create_order(pending)
    with pytest.raises(OrderNotFoundError):
        await env.service.get_order("bob", 50)
    with pytest.raises(OrderNotFoundError):
        await env.service.cancel_order("bob", 50)
    async with env.repo.transaction() as uow:
        await uow.delete_order(50)


# -- list_orders -------------------------------------------------------------------


async def place_mix(env) -> dict[str, OrderRecord]:
    svc = env.service
    out = {}
    out["b1"] = await svc.place_order("bob", S, "BUY", "1", "100")
    out["b2"] = await svc.place_order("bob", S, "SELL", "1", "110")
    out["b3"] = await svc.place_order("bob", E, "BUY", "1", "50")
    out["a1"] = await svc.place_order("alice", S, "SELL", "1", "100")  # fills b1
    out["b4"] = await svc.place_order("bob", S, "BUY", "1", "90", time_in_force="IOC")  # expires
    out["b5"] = await svc.place_order("bob", E, "SELL", "2", "60")
    await svc.cancel_order("bob", out["b5"].id)
    return out


async def test_list_orders_newest_first_and_only_the_users(env):
    orders = await place_mix(env)
    page = await env.service.list_orders("bob")
    assert [o.id for o in page.items] == [orders[k].id for k in ("b5", "b4", "b3", "b2", "b1")]
    assert page.next_cursor is None
    assert [o.id for o in (await env.service.list_orders("alice")).items] == [orders["a1"].id]
    assert (await env.service.list_orders("nobody")).items == []


async def test_list_orders_shows_current_states(env):
    orders = await place_mix(env)
    by_id = {o.id: o for o in (await env.service.list_orders("bob")).items}
    assert by_id[orders["b1"].id].status is OrderStatus.FILLED
    assert by_id[orders["b2"].id].status is OrderStatus.OPEN
    assert by_id[orders["b4"].id].status is OrderStatus.EXPIRED
    assert by_id[orders["b5"].id].status is OrderStatus.CANCELLED


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        (OrderQuery(symbol=S), ["b4", "b2", "b1"]),
        (OrderQuery(symbol=E), ["b5", "b3"]),
        (OrderQuery(status=OrderStatus.OPEN), ["b3", "b2"]),
        (OrderQuery(status=OrderStatus.FILLED), ["b1"]),
        (OrderQuery(side=Side.SELL), ["b5", "b2"]),
        (OrderQuery(symbol=S, side=Side.BUY), ["b4", "b1"]),
        (OrderQuery(symbol=E, status=OrderStatus.CANCELLED, side=Side.SELL), ["b5"]),
        (OrderQuery(status=OrderStatus.REJECTED), []),
    ],
)
async def test_list_orders_filters(env, query, keys):
    orders = await place_mix(env)
    page = await env.service.list_orders("bob", query)
    assert [o.id for o in page.items] == [orders[k].id for k in keys]


async def test_list_orders_by_time_range(env):
    orders = await place_mix(env)
    b2, b4 = orders["b2"], orders["b4"]
    page = await env.service.list_orders("bob", OrderQuery(since=b2.created_at, until=b4.created_at))
    assert [o.id for o in page.items] == [orders["b3"].id, b2.id]  # since inclusive, until exclusive
    later = await env.service.list_orders("bob", OrderQuery(since=b4.created_at + timedelta(seconds=1)))
    assert [o.id for o in later.items] == [orders["b5"].id]


async def test_list_orders_pages_through_everything_once(env):
    ids = [(await env.service.place_order("bob", S, "BUY", "0.001", str(90 + i))).id for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        page = await env.service.list_orders("bob", OrderQuery(limit=3, cursor=cursor))
        seen += [o.id for o in page.items]
        pages += 1
        assert len(page.items) <= 3
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 3


async def test_list_orders_pages_with_a_filter(env):
    orders = await place_mix(env)
    first = await env.service.list_orders("bob", OrderQuery(symbol=S, limit=2))
    assert [o.id for o in first.items] == [orders["b4"].id, orders["b2"].id]
    second = await env.service.list_orders("bob", OrderQuery(symbol=S, limit=2, cursor=first.next_cursor))
    assert [o.id for o in second.items] == [orders["b1"].id] and second.next_cursor is None


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (OrderQuery(symbol="XRP/USDT"), UnknownSymbolError),
        (OrderQuery(limit=0), InvalidRequestError),
        (OrderQuery(limit=1001), InvalidRequestError),
        (OrderQuery(limit=True), InvalidRequestError),
        (OrderQuery(cursor="not-a-cursor"), InvalidRequestError),
        (OrderQuery(cursor="-1"), InvalidRequestError),
    ],
)
async def test_list_orders_bad_queries(env, query, error):
    with pytest.raises(error):
        await env.service.list_orders("bob", query)


async def test_list_orders_with_a_bad_user_id(env):
    with pytest.raises(InvalidRequestError):
        await env.service.list_orders("")


# -- list_trades -------------------------------------------------------------------


async def test_list_trades_by_symbol_and_by_user(env):
    svc = env.service
    await svc.place_order("alice", S, "SELL", "2", "100")
    t1 = (await svc.place("bob", S, "BUY", "1", "100")).trades[0]
    t2 = (await svc.place("carol", S, "BUY", "1", "100")).trades[0]
    await svc.place_order("carol", E, "SELL", "1", "50")
    t3 = (await svc.place("bob", E, "BUY", "1", "50")).trades[0]
    assert [t.id for t in (await svc.list_trades()).items] == [t3.id, t2.id, t1.id]
    assert [t.id for t in (await svc.list_trades(symbol=S)).items] == [t2.id, t1.id]
    assert [t.id for t in (await svc.list_trades(symbol=E)).items] == [t3.id]
    assert [t.id for t in (await svc.list_trades(user_id="bob")).items] == [t3.id, t1.id]
    assert [t.id for t in (await svc.list_trades(user_id="alice")).items] == [t2.id, t1.id]
    assert [t.id for t in (await svc.list_trades(symbol=E, user_id="carol")).items] == [t3.id]
    assert (await svc.list_trades(symbol=E, user_id="alice")).items == []
    assert (t3.buyer_id, t3.seller_id, t3.price, t3.quantity, t3.notional) == ("bob", "carol", D(50), D(1), D(50))
    first = await svc.list_trades(limit=2)
    assert [t.id for t in first.items] == [t3.id, t2.id]
    rest = await svc.list_trades(limit=2, cursor=first.next_cursor)
    assert [t.id for t in rest.items] == [t1.id] and rest.next_cursor is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"symbol": "NOPE/USDT"}, UnknownSymbolError),
        ({"user_id": ""}, InvalidRequestError),
        ({"limit": 0}, InvalidRequestError),
        ({"cursor": "x"}, InvalidRequestError),
    ],
)
async def test_list_trades_bad_arguments(env, kwargs, error):
    with pytest.raises(error):
        await env.service.list_trades(**kwargs)


# -- depth and balances ------------------------------------------------------------


async def test_depth_aggregates_levels_best_first(env):
    svc = env.service
    await svc.place_order("alice", S, "BUY", "1", "99")
    await svc.place_order("bob", S, "BUY", "2", "99")
    await svc.place_order("bob", S, "BUY", "1", "98.5")
    await svc.place_order("carol", S, "BUY", "1", "97")
    await svc.place_order("carol", S, "SELL", "0.5", "101")
    await svc.place_order("alice", S, "SELL", "0.25", "100.5")
    depth = svc.depth(S)
    assert depth.bids == [
        LevelSnapshot(D("99"), D("3"), 2),
        LevelSnapshot(D("98.5"), D("1"), 1),
        LevelSnapshot(D("97"), D("1"), 1),
    ]
    assert depth.asks == [LevelSnapshot(D("100.5"), D("0.25"), 1), LevelSnapshot(D("101"), D("0.5"), 1)]
    assert svc.depth(S, 1).bids == [LevelSnapshot(D("99"), D("3"), 2)]
    assert svc.depth(S, 1000) == depth
    assert svc.depth(E).bids == svc.depth(E).asks == []


@pytest.mark.parametrize("levels", [0, -1, 1001, True, "3", 2.0])
async def test_depth_bad_levels(env, levels):
    with pytest.raises(InvalidRequestError):
        env.service.depth(S, levels)


async def test_depth_of_an_unknown_symbol(env):
    with pytest.raises(UnknownSymbolError):
        env.service.depth("NOPE/USDT")
    with pytest.raises(UnknownSymbolError):
        env.service.depth(None)


async def test_balances_through_the_service(env):
    await env.service.place_order("bob", S, "BUY", "2", "100")
    balances = await env.service.balances("bob")
    assert balances["USDT"] == Balance("USDT", USDT0 - 200, D("200"))
    assert balances["USDT"].total == USDT0
    assert balances["BTC"] == Balance("BTC", DEPOSITS["BTC"], D("0"))
    assert await env.service.balances("stranger") == {}
    with pytest.raises(InvalidRequestError):
        await env.service.balances("")


async def test_the_injected_clock_stamps_orders(env):
    order = await env.service.place_order("bob", S, "BUY", "1", "100")
    assert order.created_at.year == 2030 and order.updated_at > order.created_at
