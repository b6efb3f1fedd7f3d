"""Shared set-up and checks for the OrderService unit tests (memory adapters only).

``service_env`` builds a started :class:`OrderService` over a
:class:`MemoryOrderRepository` and a wallet (a :class:`SpyWallet` around a
:class:`MemoryWallet` by default) with deposits for three users.
``check_invariants`` is the conservation and consistency check every scenario
ends with: reservations equal what live orders need, every asset's total is
unchanged, each book holds exactly the repository's resting orders and its
waiting stops exactly the repository's untriggered ones, and an engine restored
from the repository alone (what a restart does) equals the live one: the same
priorities, iceberg slices, stops, trailing references and last trade price.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from tradebook import Instrument, OrderStatus, OrderType, Side
from tradebook.errors import WalletUnavailableError
from tradebook.oms import MemoryOrderRepository, MemoryWallet, OrderService

D = Decimal
BTC = Instrument("BTC/USDT", "0.01", "0.001")
ETH = Instrument("ETH/USDT", "0.01", "0.01")
USERS = ("alice", "bob", "carol")
#: What every user holds at the start of a scenario.
DEPOSITS = {"USDT": D("100000"), "BTC": D("100"), "ETH": D("1000")}
FEES = "fees"


class SpyWallet:
    """A :class:`MemoryWallet` wrapper that records calls and fails on demand.

    ``down`` is a set of method names (``reserve``, ``release``, ``reserved``,
    ``settle``, ``balances``) that raise :class:`WalletUnavailableError` without
    reaching the ledger. ``calls`` lists ``(method, args)`` of every call that
    reached the ledger. ``gates`` maps a user id to an :class:`asyncio.Event`:
    that user's ``reserve`` waits for it (and sets ``waiting[user]`` meanwhile),
    so a test can hold a placement inside its symbol's lock.
    """

    def __init__(self, inner: MemoryWallet | None = None) -> None:
        self.inner = inner if inner is not None else MemoryWallet()
        self.down: set[str] = set()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.attempts: Counter[str] = Counter()
        self.gates: dict[str, asyncio.Event] = {}
        self.waiting: dict[str, asyncio.Event] = {}
        self.interleave = False  # when true, every call yields to the event loop first (as a remote wallet would)

    def _enter(self, name: str, *args: Any) -> None:
        self.attempts[name] += 1
        if name in self.down:
            raise WalletUnavailableError(f"wallet unavailable ({name} is down in this test)")
        self.calls.append((name, args))

    def gate(self, user_id: str) -> asyncio.Event:
        """Hold the user's next reservations until the returned event is set."""
        self.waiting[user_id] = asyncio.Event()
        gate = self.gates[user_id] = asyncio.Event()
        return gate

    def called(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every call of ``name`` that reached the ledger."""
        return [args for method, args in self.calls if method == name]

    async def deposit(self, user_id: str, asset: str, amount: Decimal | int | str) -> None:
        await self.inner.deposit(user_id, asset, amount)

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Any:
        if self.interleave:
            await asyncio.sleep(0)
        self._enter("reserve", user_id, asset, amount, ref)
        gate = self.gates.get(user_id)
        if gate is not None:
            self.waiting[user_id].set()
            await gate.wait()
        return await self.inner.reserve(user_id, asset, amount, ref)

    async def reserve_more(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Any:
        if self.interleave:
            await asyncio.sleep(0)
        self._enter("reserve_more", user_id, asset, amount, ref)
        return await self.inner.reserve_more(user_id, asset, amount, ref)

    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        if self.interleave:
            await asyncio.sleep(0)
        self._enter("release", ref, amount)
        return await self.inner.release(ref, amount)

    async def reserved(self, ref: str) -> Decimal:
        if self.interleave:
            await asyncio.sleep(0)
        self._enter("reserved", ref)
        return await self.inner.reserved(ref)

    async def settle(self, settlement: Any) -> None:
        if self.interleave:
            await asyncio.sleep(0)
        self._enter("settle", settlement)
        await self.inner.settle(settlement)

    async def balances(self, user_id: str) -> Any:
        if self.interleave:
            await asyncio.sleep(0)
        self._enter("balances", user_id)
        return await self.inner.balances(user_id)

    async def totals(self) -> dict[str, Decimal]:
        return await self.inner.totals()


class FailingRepository:
    """A :class:`MemoryOrderRepository` wrapper whose transactions can fail at commit.

    ``fail_on`` names a unit-of-work method (``create_order``, ``update_order``,
    ``cancel_order``, ...): the next transaction that calls it raises
    ``error`` after its body, instead of committing (so it rolls back), once.
    ``raise_in`` names a unit-of-work method that raises ``error`` itself when
    called, once. ``fail_active_orders`` makes :meth:`active_orders` raise (a
    rebuild fails).
    """

    def __init__(self, inner: MemoryOrderRepository | None = None) -> None:
        self.inner = inner if inner is not None else MemoryOrderRepository()
        self.fail_on: str | None = None
        self.raise_in: str | None = None
        self.error: BaseException = OSError("disk full (injected)")
        self.fail_active_orders = False
        self.failures = 0
        self.interleave = False  # when true, transactions yield to the event loop (as a database would)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        if self.interleave:
            await asyncio.sleep(0)
        async with self.inner.transaction() as uow:
            spy = _RecordingUnitOfWork(uow, self)
            yield spy
            if self.fail_on is not None and self.fail_on in spy.called:
                self.fail_on = None
                self.failures += 1
                raise self.error

    async def active_orders(self, symbol: str) -> Any:
        if self.fail_active_orders:
            raise OSError("cannot read active orders (injected)")
        return await self.inner.active_orders(symbol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _RecordingUnitOfWork:
    def __init__(self, inner: Any, repo: FailingRepository) -> None:
        self.inner = inner
        self.repo = repo
        self.called: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.called.add(name)
        if name == self.repo.raise_in:
            self.repo.raise_in = None
            self.repo.failures += 1
            error = self.repo.error

            async def fail(*args: Any, **kwargs: Any) -> None:
                raise error

            return fail
        return getattr(self.inner, name)


class ManualClock:
    """An injected clock that stands still until a test moves it (``advance(seconds=...)``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2030, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def ms(self, **delta: float) -> int:
        """The clock's time plus ``delta`` in epoch milliseconds (the engine clock's unit)."""
        moment = self.now + timedelta(**delta)
        return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


class StepClock:
    """An injected clock: each call returns the next second after 2030-01-01 UTC."""

    def __init__(self) -> None:
        self.start = datetime(2030, 1, 1, tzinfo=timezone.utc)
        self.ticks = 0

    def __call__(self) -> datetime:
        self.ticks += 1
        return self.start + timedelta(seconds=self.ticks)


@dataclass
class Env:
    """A started service and everything it runs on."""

    service: OrderService
    repo: Any
    wallet: Any
    ledger: MemoryWallet
    instruments: tuple[Instrument, ...]
    users: tuple[str, ...]
    initial_totals: dict[str, Decimal] = field(default_factory=dict)

    async def balance(self, user: str, asset: str) -> tuple[Decimal, Decimal]:
        """``(available, reserved)`` of one user's asset, straight from the ledger."""
        found = (await self.ledger.balances(user)).get(asset)
        return (D(0), D(0)) if found is None else (found.available, found.reserved)

    async def snapshot(self) -> dict[str, Any]:
        """Everything a refused command must leave unchanged."""
        return await state_of(self)

    async def check(self) -> None:
        await check_invariants(self)


async def fund(ledger: MemoryWallet, users: Iterable[str], deposits: dict[str, Decimal] = DEPOSITS) -> None:
    for user in users:
        for asset, amount in deposits.items():
            await ledger.deposit(user, asset, amount)


@asynccontextmanager
async def service_env(
    *,
    instruments: tuple[Instrument, ...] = (BTC, ETH),
    repo: Any = None,
    wallet: Any = None,
    users: tuple[str, ...] = USERS,
    deposits: dict[str, Decimal] | None = DEPOSITS,
    **options: Any,
) -> AsyncIterator[Env]:
    """A started service over memory adapters; the invariants are checked when the block ends cleanly."""
    repo = repo if repo is not None else MemoryOrderRepository()
    wallet = wallet if wallet is not None else SpyWallet()
    ledger = ledger_of(wallet)
    if deposits:
        await fund(ledger, users, deposits)
    options.setdefault("expiry_interval", None)  # tests move time themselves (ManualClock, advance_time)
    service = OrderService(repo, wallet, instruments, **options)
    await service.start()
    env = Env(service, repo, wallet, ledger, instruments, users, await ledger.totals())
    yield env
    await service.close()


def ledger_of(wallet: Any) -> MemoryWallet:
    """The :class:`MemoryWallet` at the bottom of a stack of wrappers."""
    while not isinstance(wallet, MemoryWallet):
        wallet = wallet.inner if hasattr(wallet, "inner") else wallet.wallet
    return wallet


def repo_of(repo: Any) -> MemoryOrderRepository:
    """The :class:`MemoryOrderRepository` under a wrapper."""
    while not isinstance(repo, MemoryOrderRepository):
        repo = repo.inner
    return repo


def book_of(service: OrderService, symbol: str) -> Any:
    """The symbol's live book (the service keeps one engine per symbol)."""
    return service._engines[symbol].book(symbol)


def book_orders(service: OrderService, symbol: str) -> dict[int, tuple[Side, Decimal, Decimal]]:
    """``{order id: (side, price, remaining quantity)}`` of every order resting in the book (an iceberg's hidden
    part included)."""
    book = book_of(service, symbol)
    out = {}
    for levels in (book.bids, book.asks):
        for level in levels:
            for order in level:
                out[order.id] = (order.side, order.price, order.remaining_quantity)
    return out


def book_queues(service: OrderService, symbol: str) -> list[tuple[Side, Decimal, list[int]]]:
    """Each level's order ids in time priority, best levels first."""
    book = book_of(service, symbol)
    return [(level.side, level.price, [o.id for o in level]) for levels in (book.bids, book.asks) for level in levels]


def need(order: Any, inst: Instrument) -> tuple[str, Decimal]:
    """The asset and amount a live order's reservation must hold (the reservation rules, written again)."""
    if order.status is OrderStatus.UNTRIGGERED:
        if order.side is Side.SELL:
            return inst.base, order.quantity
        if order.type is OrderType.STOP_LIMIT:
            return inst.quote, order.price * order.quantity
        return inst.quote, inst.max_price * order.quantity  # STOP and TRAILING_STOP buys
    if order.side is Side.SELL:
        return inst.base, order.remaining_quantity
    return inst.quote, order.price * order.remaining_quantity


def waiting_stops(service: OrderService, symbol: str) -> set[int]:
    """The ids of the stops waiting in the symbol's engine (from its snapshot: they are in no book)."""
    entry = service._engines[symbol].snapshot()["order_types"]["books"].get(symbol, {})
    return {stop["id"] for stop in entry.get("stops", ())}


def engine_state(engine: Any, symbol: str) -> dict[str, Any]:
    """An engine's book and waiting stops as data, sequences replaced by their rank (what orders them).

    Two engines with equal states match every future command alike, whatever numbers their sequences carry.
    """
    data = engine.snapshot()
    (book,) = data["books"]
    rows = sorted(book["orders"], key=lambda r: r["sequence"])
    resting = []
    for rank, row in enumerate(rows):
        row = {**row, "sequence": rank}
        extras = {k: v for k, v in row.get("extras", {}).items() if k != "accepted"}
        row.pop("extras", None)
        if extras:
            row["extras"] = extras
        resting.append(row)
    entry = data["order_types"]["books"].get(symbol, {})
    stops = sorted(entry.get("stops", ()), key=lambda r: r["extras"]["accepted"])
    waiting = [{**stop, "extras": {**stop["extras"], "accepted": rank}} for rank, stop in enumerate(stops)]
    return {"orders": resting, "stops": waiting, "last_trade_price": entry.get("last_trade_price")}


async def restored_state(service: OrderService, symbol: str) -> dict[str, Any]:
    """:func:`engine_state` of an engine rebuilt from the service's repository alone, as a restart rebuilds it."""
    fresh = OrderService(service.repository, service.wallet, service.instruments.values(), expiry_interval=None)
    fresh._next_sequence = service._next_sequence
    await fresh._rebuild(symbol)
    return engine_state(fresh._engines[symbol], symbol)


async def all_orders(service: OrderService, users: Iterable[str]) -> list[Any]:
    """Every order of these users, through the repository's pages."""
    from tradebook.oms import OrderQuery

    found = []
    for user in users:
        cursor = None
        while True:
            page = await service.repository.list_orders(user, OrderQuery(limit=1000, cursor=cursor))
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    return found


async def check_store(service: OrderService, users: Iterable[str], totals: dict[str, Decimal]) -> None:
    """:func:`check_invariants` for any store: only the ports' public methods are used.

    Reservations equal what live orders need, every order's fills equal its
    trades, totals are conserved, books and waiting stops match the
    repository, and a restart would restore each engine exactly.
    """
    repo, wallet = service.repository, service.wallet
    users = tuple(users)
    needed: Counter[tuple[str, str]] = Counter()
    for inst in service.instruments.values():
        symbol = inst.symbol
        active = await repo.active_orders(symbol)
        resting = [o for o in active if o.status is not OrderStatus.UNTRIGGERED]
        assert {o.id: (o.side, o.price, o.remaining_quantity) for o in resting} == book_orders(service, symbol)
        assert {o.id for o in active if o.status is OrderStatus.UNTRIGGERED} == waiting_stops(service, symbol)
        for order in active:
            asset, amount = need(order, inst)
            assert await wallet.reserved(str(order.id)) == amount, f"order {order.id} reservation"
            needed[(order.user_id, asset)] += amount
            if order.display_quantity is not None and order.status is not OrderStatus.UNTRIGGERED:
                shown = book_of(service, symbol).get_order(order.id).visible_quantity
                assert order.visible_quantity == shown, f"iceberg {order.id} slice"
        live = engine_state(service._engines[symbol], symbol)
        assert await restored_state(service, symbol) == live, (
            f"{symbol}: a restart would not restore the engine exactly"
        )
    filled: Counter[int] = Counter()
    cursor = None
    while True:
        page = await repo.list_trades(limit=1000, cursor=cursor)
        for trade in page.items:
            filled[trade.buy_order_id] += trade.quantity
            filled[trade.sell_order_id] += trade.quantity
        cursor = page.next_cursor
        if cursor is None:
            break
    for order in await all_orders(service, users):
        assert order.status is not OrderStatus.PENDING, f"order {order.id} left PENDING"
        assert order.filled_quantity == filled[order.id], f"order {order.id} fills differ from its trades"
        assert order.quantity is None or order.filled_quantity <= order.quantity
    for user in users:
        for asset, bal in (await wallet.balances(user)).items():
            assert bal.reserved == needed[(user, asset)], f"{user} {asset} reserved {bal.reserved}"
            assert bal.available >= 0
    assert await wallet.totals() == totals


async def state_of(env: Env) -> dict[str, Any]:
    """Orders, trades, reservations, every balance and every book, for before/after comparisons.

    The outbox is left out: taking operations that were already applied out of
    it is housekeeping that any transaction may do.
    """
    repo = repo_of(env.repo)
    balances = {}
    for user in (*env.users, FEES):
        for asset, bal in (await env.ledger.balances(user)).items():
            balances[(user, asset)] = (bal.available, bal.reserved)
    return {
        "orders": dict(repo._orders),
        "trades": dict(repo._trades),
        "reservations": dict(env.ledger._reservations),
        "balances": balances,
        "books": {inst.symbol: book_queues(env.service, inst.symbol) for inst in env.instruments},
        "depth": {inst.symbol: env.service.depth(inst.symbol, 1000) for inst in env.instruments},
    }


async def check_invariants(env: Env) -> None:
    """Reservations match active orders exactly, totals are conserved, books match the repository."""
    repo = repo_of(env.repo)
    needed: Counter[tuple[str, str]] = Counter()
    for inst in env.instruments:
        symbol = inst.symbol
        active = await repo.active_orders(symbol)
        in_book = book_orders(env.service, symbol)
        resting = [o for o in active if o.status is not OrderStatus.UNTRIGGERED]
        assert {o.id: (o.side, o.price, o.remaining_quantity) for o in resting} == in_book
        assert {o.id for o in active if o.status is OrderStatus.UNTRIGGERED} == waiting_stops(env.service, symbol)
        for order in resting:
            if order.display_quantity is not None:
                shown = book_of(env.service, symbol).get_order(order.id).visible_quantity
                assert order.visible_quantity == shown, f"iceberg {order.id} slice"
        live = engine_state(env.service._engines[symbol], symbol)
        assert await restored_state(env.service, symbol) == live, f"{symbol}: a restart would not restore it exactly"
        # priority: within a level, the book's queue follows the repository's sequence order
        by_id = {o.id: o for o in active}
        for _side, _price, ids in book_queues(env.service, symbol):
            sequences = [by_id[i].sequence for i in ids]
            assert sequences == sorted(sequences)
        book = book_of(env.service, symbol)
        if book.best_bid is not None and book.best_ask is not None:
            assert book.best_bid.price < book.best_ask.price, f"{symbol} book is crossed"
        for order in active:
            asset, amount = need(order, inst)
            assert await env.ledger.reserved(str(order.id)) == amount, f"order {order.id} reservation"
            needed[(order.user_id, asset)] += amount
    for order in repo._orders.values():
        assert D(0) <= order.filled_quantity
        assert order.quantity is None or order.filled_quantity <= order.quantity
        assert order.status is not OrderStatus.PENDING, f"order {order.id} left PENDING"
    for user in (*env.users, FEES):
        for asset, bal in (await env.ledger.balances(user)).items():
            assert bal.reserved == needed[(user, asset)], f"{user} {asset} reserved {bal.reserved}"
            assert bal.available >= 0
    active_refs = {str(o.id) for inst in env.instruments for o in await repo.active_orders(inst.symbol)}
    assert set(env.ledger._reservations) == active_refs, "a reservation outlived its order"
    assert await env.ledger.totals() == env.initial_totals
