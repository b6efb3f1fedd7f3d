"""The contract every :class:`~tradebook.oms.WalletClient` adapter passes (with ``deposit`` and ``totals``).

Each test runs on the ``store`` fixture (memory, SQLite, PostgreSQL). The
random-sequence test also replays every operation on a fresh
:class:`~tradebook.oms.MemoryWallet` and demands the same results, so the
reference behaviour is the memory ledger's.
"""

from __future__ import annotations

import asyncio
import decimal
import random
from decimal import Decimal
from typing import Any

import pytest
from _stores import Store

from tradebook.errors import InsufficientBalanceError
from tradebook.oms import Balance, MemoryWallet, Reservation, Settlement

D = Decimal


async def balance(store: Store, user: str, asset: str) -> tuple[Decimal, Decimal] | None:
    """``(available, reserved)`` of one account, ``None`` when the wallet has none."""
    found = (await store.wallet.balances(user)).get(asset)
    return None if found is None else (found.available, found.reserved)


async def funded(store: Store) -> Store:
    """alice holds 1000 USDT, bob 10 BTC."""
    await store.wallet.deposit("alice", "USDT", D("1000"))
    await store.wallet.deposit("bob", "BTC", D("10"))
    return store


def settlement(trade_id: int = 1, **changes: Any) -> Settlement:
    """alice buys 2 BTC from bob for 200 USDT, paying from reservation "a", delivering from "b"."""
    fields: dict[str, Any] = {
        "trade_id": trade_id,
        "base": "BTC",
        "quote": "USDT",
        "buyer_id": "alice",
        "seller_id": "bob",
        "buy_ref": "a",
        "sell_ref": "b",
        "quantity": D("2"),
        "notional": D("200"),
    }
    fields.update(changes)
    return Settlement(**fields)


async def snapshot(store: Store, users: tuple[str, ...] = ("alice", "bob", "fees"), refs: str = "ab") -> Any:
    """Everything a failed call must leave unchanged."""
    return (
        [await store.wallet.balances(user) for user in users],
        [await store.wallet.reserved(ref) for ref in refs],
        await store.wallet.totals(),
    )


# -- deposits and balances --------------------------------------------------------------------


async def test_deposit_and_balances(store: Store) -> None:
    wallet = store.wallet
    assert await wallet.balances("alice") == {}
    assert await wallet.totals() == {}
    await wallet.deposit("alice", "USDT", D("100.25"))
    await wallet.deposit("alice", "USDT", 50)
    await wallet.deposit("alice", "BTC", "0.00000001")
    await wallet.deposit("bob", "BTC", D("123456789012.12345678"))
    alice = await wallet.balances("alice")
    assert alice == {"BTC": Balance("BTC", D("0.00000001"), D(0)), "USDT": Balance("USDT", D("150.25"), D(0))}
    assert list(alice) == ["BTC", "USDT"]
    assert all(type(b.available) is Decimal and type(b.reserved) is Decimal for b in alice.values())
    assert str(alice["BTC"].available) == "1E-8"
    assert await balance(store, "bob", "BTC") == (D("123456789012.12345678"), D(0))
    assert await wallet.totals() == {"USDT": D("150.25"), "BTC": D("123456789012.12345679")}


@pytest.mark.parametrize(
    ("amount", "error"),
    [(D(0), ValueError), (D(-1), ValueError), ("abc", ValueError), (D("NaN"), ValueError), (1.5, TypeError)],
)
async def test_a_bad_deposit_changes_nothing(store: Store, amount: Any, error: type[Exception]) -> None:
    await store.wallet.deposit("alice", "USDT", D(5))
    with pytest.raises(error):
        await store.wallet.deposit("alice", "USDT", amount)
    with pytest.raises(error):
        await store.wallet.deposit("alice", "EUR", amount)
    assert await store.wallet.balances("alice") == {"USDT": Balance("USDT", D(5), D(0))}


async def test_arithmetic_is_exact_beyond_the_default_decimal_context(store: Store) -> None:
    big = D("1234567890123456789012345678.8")  # 29 digits: more than the default context (28) keeps
    await store.wallet.deposit("alice", "X", big)
    await store.wallet.deposit("alice", "X", D("0.1"))
    assert await balance(store, "alice", "X") == (D("1234567890123456789012345678.9"), D(0))
    with decimal.localcontext() as context:
        context.prec = 5  # a caller's narrow context does not round the ledger
        await store.wallet.deposit("alice", "X", D("0.01"))
        assert (await store.wallet.totals())["X"] == D("1234567890123456789012345678.91")
    assert await balance(store, "alice", "X") == (D("1234567890123456789012345678.91"), D(0))
    await store.wallet.reserve("alice", "X", D("0.000000000000000000000000001"), "tiny")
    assert await balance(store, "alice", "X") == (
        D("1234567890123456789012345678.909999999999999999999999999"),
        D("0.000000000000000000000000001"),
    )


# -- reserve ----------------------------------------------------------------------------------


async def test_reserve(store: Store) -> None:
    await funded(store)
    reservation = await store.wallet.reserve("alice", "USDT", D("250.5"), "a")
    assert reservation == Reservation("a", "alice", "USDT", D("250.5"))
    assert await balance(store, "alice", "USDT") == (D("749.5"), D("250.5"))
    assert await store.wallet.reserved("a") == D("250.5")
    assert await store.wallet.reserved("zzz") == D(0)
    await store.wallet.reserve("alice", "USDT", D("749.5"), "c")  # everything that is left
    assert await balance(store, "alice", "USDT") == (D(0), D(1000))
    assert await store.wallet.totals() == {"USDT": D(1000), "BTC": D(10)}


async def test_reserve_more_than_available_changes_nothing(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("600"), "a")
    before = await snapshot(store)
    with pytest.raises(InsufficientBalanceError) as info:
        await store.wallet.reserve("alice", "USDT", D("400.000001"), "c")
    assert info.value.code == "insufficient_balance"
    with pytest.raises(InsufficientBalanceError):
        await store.wallet.reserve("alice", "EUR", D("1"), "d")  # an asset never held
    with pytest.raises(InsufficientBalanceError):
        await store.wallet.reserve("nobody", "USDT", D("1"), "e")
    assert await snapshot(store) == before
    assert await store.wallet.reserved("c") == D(0)
    assert "EUR" not in await store.wallet.balances("alice")
    assert await store.wallet.balances("nobody") == {}
    # the refused ref is free for a reservation that fits
    assert (await store.wallet.reserve("alice", "USDT", D("400"), "c")).amount == D("400")


async def test_reserve_the_same_ref_twice_reserves_once(store: Store) -> None:
    await funded(store)
    first = await store.wallet.reserve("alice", "USDT", D("100"), "a")
    again = await store.wallet.reserve("alice", "USDT", D("100"), "a")
    other_amount = await store.wallet.reserve("alice", "USDT", D("999"), "a")
    assert first == again == other_amount == Reservation("a", "alice", "USDT", D("100"))
    assert await balance(store, "alice", "USDT") == (D("900"), D("100"))
    # after a partial release the retry sees what the reservation holds now
    await store.wallet.release("a", D("30"))
    assert await store.wallet.reserve("alice", "USDT", D("100"), "a") == Reservation("a", "alice", "USDT", D("70"))
    assert await balance(store, "alice", "USDT") == (D("930"), D("70"))


@pytest.mark.parametrize("amount", [D(0), D(-5), D("Infinity"), "x"])
async def test_reserve_refuses_a_bad_amount(store: Store, amount: Any) -> None:
    await funded(store)
    before = await snapshot(store)
    with pytest.raises(ValueError):
        await store.wallet.reserve("alice", "USDT", amount, "a")
    assert await snapshot(store) == before


# -- release ----------------------------------------------------------------------------------


async def test_release_part_then_the_rest(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("300"), "a")
    assert await store.wallet.release("a", D("100.5")) == D("100.5")
    assert await store.wallet.reserved("a") == D("199.5")
    assert await balance(store, "alice", "USDT") == (D("800.5"), D("199.5"))
    assert await store.wallet.release("a", D(0)) == D(0)
    assert await store.wallet.reserved("a") == D("199.5")
    assert await store.wallet.release("a") == D("199.5")
    assert await store.wallet.reserved("a") == D(0)
    assert await balance(store, "alice", "USDT") == (D(1000), D(0))
    assert await store.wallet.release("a") == D(0)  # gone


async def test_release_more_than_held_releases_what_is_held(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("300"), "a")
    assert await store.wallet.release("a", D("1000")) == D("300")
    assert await store.wallet.reserved("a") == D(0)
    assert await balance(store, "alice", "USDT") == (D(1000), D(0))
    # a reservation that reached zero is gone: the ref reserves afresh
    assert (await store.wallet.reserve("alice", "USDT", D("5"), "a")).amount == D(5)


async def test_release_exactly_all_removes_the_reservation(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("300.10"), "a")
    assert await store.wallet.release("a", D("300.1")) == D("300.1")
    assert await store.wallet.reserved("a") == D(0)
    assert await store.wallet.release("a", D("1")) == D(0)
    assert (await store.wallet.reserve("alice", "USDT", D("7"), "a")).amount == D(7)


async def test_release_of_an_unknown_ref_releases_nothing(store: Store) -> None:
    await funded(store)
    before = await snapshot(store)
    assert await store.wallet.release("missing") == D(0)
    assert await store.wallet.release("missing", D("5")) == D(0)
    assert await snapshot(store) == before


# -- settle -----------------------------------------------------------------------------------


async def test_settle_moves_both_assets(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("250"), "a")
    await store.wallet.reserve("bob", "BTC", D("3"), "b")
    await store.wallet.settle(settlement())
    assert await store.wallet.balances("alice") == {
        "BTC": Balance("BTC", D(2), D(0)),
        "USDT": Balance("USDT", D(750), D(50)),
    }
    assert await store.wallet.balances("bob") == {
        "BTC": Balance("BTC", D(7), D(1)),
        "USDT": Balance("USDT", D(200), D(0)),
    }
    assert (await store.wallet.reserved("a"), await store.wallet.reserved("b")) == (D(50), D(1))
    assert await store.wallet.totals() == {"USDT": D(1000), "BTC": D(10)}


async def test_settle_consumes_exact_reservations(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("200"), "a")
    await store.wallet.reserve("bob", "BTC", D("2"), "b")
    await store.wallet.settle(settlement())
    assert (await store.wallet.reserved("a"), await store.wallet.reserved("b")) == (D(0), D(0))
    assert await store.wallet.release("a") == D(0)
    assert await store.wallet.release("b") == D(0)
    assert await balance(store, "alice", "USDT") == (D(800), D(0))
    assert await balance(store, "bob", "BTC") == (D(8), D(0))


async def test_settle_twice_is_a_no_op(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("500"), "a")
    await store.wallet.reserve("bob", "BTC", D("5"), "b")
    await store.wallet.settle(settlement(7))
    after_once = await snapshot(store)
    await store.wallet.settle(settlement(7))
    await store.wallet.settle(settlement(7, quantity=D("1"), notional=D("100")))  # same trade id: still no-op
    assert await snapshot(store) == after_once
    # a new trade id settles
    await store.wallet.settle(settlement(8))
    assert await balance(store, "alice", "BTC") == (D(4), D(0))


async def test_concurrent_settles_of_one_trade_apply_once(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("1000"), "a")
    await store.wallet.reserve("bob", "BTC", D("10"), "b")
    await asyncio.gather(*(store.wallet.settle(settlement(3)) for _ in range(10)))
    assert await balance(store, "alice", "BTC") == (D(2), D(0))
    assert await balance(store, "bob", "USDT") == (D(200), D(0))
    assert (await store.wallet.reserved("a"), await store.wallet.reserved("b")) == (D(800), D(8))


async def test_settle_with_fees_credits_the_fee_account_and_conserves_totals(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("200"), "a")
    await store.wallet.reserve("bob", "BTC", D("2"), "b")
    fees = settlement(buyer_fee=D("0.002"), seller_fee=D("0.20"), fee_account="fees")
    await store.wallet.settle(fees)
    assert await balance(store, "alice", "BTC") == (D("1.998"), D(0))
    assert await balance(store, "bob", "USDT") == (D("199.80"), D(0))
    assert await store.wallet.balances("fees") == {
        "BTC": Balance("BTC", D("0.002"), D(0)),
        "USDT": Balance("USDT", D("0.20"), D(0)),
    }
    assert await store.wallet.totals() == {"USDT": D(1000), "BTC": D(10)}


async def test_settle_with_fees_needs_a_fee_account(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("200"), "a")
    await store.wallet.reserve("bob", "BTC", D("2"), "b")
    before = await snapshot(store)
    with pytest.raises(ValueError):
        await store.wallet.settle(settlement(buyer_fee=D("0.01")))
    assert await snapshot(store) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"notional": D("200.01")},  # the buyer's reservation is too small
        {"quantity": D("2.000001")},  # the seller's reservation is too small
        {"buy_ref": "missing"},
        {"sell_ref": "missing"},
        {"quote": "EUR"},  # the buyer's reservation holds another asset
        {"base": "ETH"},
    ],
)
async def test_settle_that_cannot_be_paid_changes_nothing(store: Store, changes: dict[str, Any]) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("200"), "a")
    await store.wallet.reserve("bob", "BTC", D("2"), "b")
    before = await snapshot(store)
    with pytest.raises(InsufficientBalanceError):
        await store.wallet.settle(settlement(5, **changes))
    assert await snapshot(store) == before
    # the trade id was not recorded as settled: the correct settlement still applies
    await store.wallet.settle(settlement(5))
    assert await balance(store, "alice", "BTC") == (D(2), D(0))


# -- conservation and concurrency -------------------------------------------------------------


async def test_totals_are_conserved_by_random_operations_like_the_memory_ledger(store: Store) -> None:
    rng = random.Random(20240102)
    users = ("u1", "u2", "u3")
    reference = MemoryWallet()
    wallets = (store.wallet, reference)
    for user in users:
        for asset, amount in (("BTC", D("5.5")), ("USDT", D("10000.25"))):
            for wallet in wallets:
                await wallet.deposit(user, asset, amount)
    start = await reference.totals()
    refs: list[tuple[str, str, str]] = []  # (ref, user, asset)
    outcomes: list[str] = []

    async def both(method: str, *args: Any) -> Any:
        results = []
        for wallet in wallets:
            try:
                results.append(await getattr(wallet, method)(*args))
            except InsufficientBalanceError as exc:
                results.append(("refused", str(exc)))
        assert results[0] == results[1], (method, args)
        return results[0]

    for step in range(150):
        roll = rng.random()
        if roll < 0.45 or not refs:
            user, asset = rng.choice(users), rng.choice(("BTC", "USDT"))
            amount = D(rng.randint(1, 40000)).scaleb(-3 if asset == "BTC" else -1)
            ref = f"r{step}"
            result = await both("reserve", user, asset, amount, ref)
            if isinstance(result, Reservation):
                refs.append((ref, user, asset))
                outcomes.append("reserved")
            else:
                outcomes.append("refused")
        elif roll < 0.65:
            ref = rng.choice(refs)[0]
            amount = None if rng.random() < 0.3 else D(rng.randint(0, 20000)).scaleb(-3)
            await both("release", ref, amount)
            outcomes.append("released")
        else:
            buys = [r for r in refs if r[2] == "USDT"]
            sells = [r for r in refs if r[2] == "BTC"]
            if not buys or not sells:
                continue
            buy, sell = rng.choice(buys), rng.choice(sells)
            held_quote = await reference.reserved(buy[0])
            held_base = await reference.reserved(sell[0])
            quantity = min(held_base, D(rng.randint(1, 2000)).scaleb(-3))
            price = D(rng.randint(1, 300))
            trade_id = rng.choice((step, step, max(step - 5, 0)))  # sometimes a replayed trade id
            fee = rng.random() < 0.5
            result = await both(
                "settle",
                Settlement(
                    trade_id=trade_id,
                    base="BTC",
                    quote="USDT",
                    buyer_id=buy[1],
                    seller_id=sell[1],
                    buy_ref=buy[0],
                    sell_ref=sell[0],
                    quantity=quantity if quantity > 0 else D("0.001"),
                    notional=min(quantity * price, held_quote + D(rng.choice((0, 0, 0, 1)))),
                    buyer_fee=quantity / 1000 if fee else D(0),
                    seller_fee=D("0.01") if fee else D(0),
                    fee_account="fees" if fee else None,
                ),
            )
            outcomes.append("refused" if result is not None else "settled")
        assert await store.wallet.totals() == start
        for user in (*users, "fees"):
            assert await store.wallet.balances(user) == await reference.balances(user)
        reserved_by_refs: dict[tuple[str, str], Decimal] = {}
        for ref, user, asset in refs:
            assert await store.wallet.reserved(ref) == await reference.reserved(ref)
            reserved_by_refs[(user, asset)] = reserved_by_refs.get((user, asset), D(0)) + await reference.reserved(ref)
        for (user, asset), amount in reserved_by_refs.items():
            assert (await store.wallet.balances(user))[asset].reserved == amount
    # the sequence exercised every path
    assert {"reserved", "refused", "released", "settled"} <= set(outcomes)


async def test_concurrent_reserves_never_overdraw(store: Store) -> None:
    await store.wallet.deposit("alice", "USDT", D("100"))
    results = await asyncio.gather(
        *(store.wallet.reserve("alice", "USDT", D("10"), f"order-{i}") for i in range(50)), return_exceptions=True
    )
    reserved = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, InsufficientBalanceError)]
    assert (len(reserved), len(refused)) == (10, 40)
    assert await balance(store, "alice", "USDT") == (D(0), D(100))
    held = [await store.wallet.reserved(f"order-{i}") for i in range(50)]
    assert sum(held) == D(100)
    assert sorted(held).count(D(10)) == 10


async def test_concurrent_reserves_of_one_ref_reserve_once(store: Store) -> None:
    await store.wallet.deposit("alice", "USDT", D("100"))
    results = await asyncio.gather(*(store.wallet.reserve("alice", "USDT", D("10"), "same") for _ in range(20)))
    assert set(results) == {Reservation("same", "alice", "USDT", D(10))}
    assert await balance(store, "alice", "USDT") == (D(90), D(10))


async def test_balances_survive_a_reopen(store: Store) -> None:
    await funded(store)
    await store.wallet.reserve("alice", "USDT", D("200.5"), "a")
    await store.wallet.reserve("bob", "BTC", D("2"), "b")
    await store.wallet.settle(settlement(1, notional=D("150.25"), quantity=D("1.5")))
    before = await snapshot(store)
    await store.reopen()
    assert await snapshot(store) == before
    await store.wallet.settle(settlement(1, notional=D("150.25"), quantity=D("1.5")))  # still settled once
    assert await snapshot(store) == before
    assert await store.wallet.release("a") == D("50.25")
