"""Differential property test: both backends and the reference model get the same random commands.

A hypothesis ``RuleBasedStateMachine`` sends every command (valid or not, through
the raw and the Decimal API) to each available backend and to ``_model.Model``.
Both backends must answer identically (same return value, or the same exception
class), the model must agree (its error set must contain the class raised), and
after each step every book must show exactly the model's state and pass ``_check()``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from _backends import available_backends
from _helpers import book_state, tier
from models.book import INT64_MAX, Model, assert_matches
from tradebook import Instrument, OrderNotFoundError, Side

INST = Instrument("BTC/USDT", "0.01", "0.001")
TICK, LOT = INST.tick_size, INST.lot_size

ids = st.one_of(st.integers(0, 10), st.sampled_from(["a", "b", ""]))
bad_ids = st.sampled_from([None, [], {1: 2}])
sides = st.sampled_from(["BUY", "SELL", Side.BUY, Side.SELL])
bad_sides = st.sampled_from(["buy", "Sell", None, 0, ""])
good_units = st.integers(1, 6)
bad_units = st.sampled_from([0, -1, INT64_MAX + 1, 2**80, True, 1.0, 2.5, None, "3", Decimal(2)])
prices = st.integers(1, 8)
apis = st.sampled_from(["raw", "decimal"])
faults = st.sampled_from([None] * 8 + ["duplicate", "id", "side", "price", "quantity", "off grid", "big"])


def _dec(value: Any, step: Decimal) -> Any:
    """The Decimal-API twin of a raw value: ``n * step`` for ints, an invalid number for other bad values."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value * step  # 0, negatives and > 2**63-1 units stay invalid
    return "NaN"


def _outcome(fn, *args, **kwargs) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:
        return "error", type(exc)


class BookMachine(RuleBasedStateMachine):
    backends: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.counter = 0
        self.books = {name: b.OrderBook(INST) for name, b in self.backends.items()}

    # -- running one command everywhere -------------------------------------------------

    def _run(self, expected: set[type[Exception]], call, normalise=lambda name, value: value) -> Any:
        outcomes = {}
        for name, book in self.books.items():
            kind, value = _outcome(call, name, book)
            outcomes[name] = (kind, normalise(name, value) if kind == "ok" else value)
        distinct = set(outcomes.values())
        assert len(distinct) == 1, f"backends disagree: {outcomes}"
        kind, value = distinct.pop()
        if expected:
            assert kind == "error", f"expected one of {expected}, got {value!r}"
            assert value in expected, f"expected one of {expected}, got {value}"
        else:
            assert kind == "ok", f"unexpected {value}"
        return value

    # -- commands ---------------------------------------------------------------------------

    @initialize(orders=st.lists(st.tuples(sides, prices, good_units), max_size=10))
    def seed(self, orders):
        for side, ticks, lots in orders:
            oid = self._fresh_id()
            expected = self.model.add(oid, side, ticks, lots)
            self._run(expected, lambda name, book, a=(oid, side, ticks, lots): book.add_raw(*a))

    def _fresh_id(self) -> Any:
        self.counter += 1
        return self.counter if self.counter % 3 else f"s{self.counter}"

    @rule(
        side=sides,
        ticks=prices,
        lots=good_units,
        fault=faults,
        data=st.data(),
        api=apis,
        owner=st.sampled_from([None, "alice", 7]),
    )
    def add(self, side, ticks, lots, fault, data, api, owner):
        """Add an order (raw or Decimal API), usually valid, sometimes with one fault injected."""
        oid = self._fresh_id()
        price_off = qty_off = False
        if fault == "duplicate":
            oid = data.draw(st.sampled_from(list(self.model.orders) or [oid]), label="duplicate id")
        elif fault == "id":
            oid = data.draw(bad_ids, label="bad id")
        elif fault == "side":
            side = data.draw(bad_sides, label="bad side")
        elif fault == "price":
            ticks = data.draw(bad_units, label="bad price")
        elif fault == "quantity":
            lots = data.draw(bad_units, label="bad quantity")
        elif fault == "off grid":
            price_off = api == "decimal" and data.draw(st.booleans(), label="price off grid")
            qty_off = api == "decimal" and not price_off
        elif fault == "big":
            lots = data.draw(st.sampled_from([1 << 62, INT64_MAX - 1, INT64_MAX]), label="big quantity")
            ticks = data.draw(st.sampled_from([ticks, INT64_MAX]), label="big price")
        expected = self.model.add(oid, side, "bad" if price_off else ticks, "bad" if qty_off else lots)
        if api == "raw":
            self._run(expected, lambda name, book: book.add_raw(oid, side, ticks, lots))
            return
        price = _dec(ticks, TICK)
        quantity = _dec(lots, LOT)
        if price_off:
            price += TICK / 2
        if qty_off:
            quantity += LOT / 2

        def call(name, book):
            book.add_order(self.backends[name].Order(oid, side, price, quantity, owner=owner))

        self._run(expected, call)

    @rule(side=sides, ticks=prices, lots=good_units, api=apis)
    def add_valid(self, side, ticks, lots, api):
        """A valid add (a second add rule, so books grow)."""
        self.add(side, ticks, lots, None, None, api, None)

    @rule(oid=st.one_of(ids, bad_ids), data=st.data(), api=apis)
    def absent_id(self, oid, data, api):
        """Commands on an id that may not be resting (or cannot be an id at all)."""
        command = data.draw(st.sampled_from(["remove", "fill", "amend", "get"]), label="command")
        present = self.model._get(oid) is not None
        if command == "get":
            expected = set() if present else {OrderNotFoundError}
            self._run(expected, lambda name, book: book.get_order(oid), lambda name, o: (o.id, o.sequence))
        elif command == "remove":
            expected, _ = self.model.remove(oid)
            self._run(expected, lambda name, book: book.remove_raw(oid) if api == "raw" else book.remove_order(oid).id)
        elif command == "fill":
            expected, _ = self.model.fill(oid, 1)
            self._run(
                expected, lambda name, book: book.fill_raw(oid, 1) if api == "raw" else book.fill_order(oid, LOT).id
            )
        else:
            expected = self.model.amend(oid, 9, None)
            self._run(
                expected,
                lambda name, book: (
                    book.amend_raw(oid, quantity=9) if api == "raw" else book.amend_order(oid, quantity=9 * LOT).id
                ),
            )

    def _pick(self, data) -> Any:
        """Mostly a resting id, sometimes any id (possibly absent or invalid)."""
        live = list(self.model.orders)
        if live and data.draw(st.integers(0, 9), label="live?") < 8:
            return live[data.draw(st.integers(0, len(live) - 1), label="which")]
        return data.draw(st.one_of(ids, bad_ids), label="oid")

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), api=apis)
    def remove(self, data, api):
        oid = self._pick(data)
        expected, left = self.model.remove(oid)
        if api == "raw":
            got = self._run(expected, lambda name, book: book.remove_raw(oid))
            assert expected or got == left
        else:
            got = self._run(
                expected,
                lambda name, book: book.remove_order(oid),
                lambda name, o: (o.id, o.status, o.remaining_quantity, o.filled_quantity, o.sequence),
            )
            assert expected or (got[1] == "CANCELLED" and got[2] == left * LOT)

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), api=apis)
    def fill(self, data, api):
        oid = self._pick(data)
        mo = self.model._get(oid)
        rem = 1 if mo is None else mo.remaining
        fault = data.draw(st.sampled_from([None] * 6 + ["too much", "bad"]), label="fault")
        if fault == "bad":
            lots = data.draw(bad_units, label="bad lots")
        elif fault == "too much":
            lots = rem + 1
        else:
            lots = data.draw(st.sampled_from([1, rem, rem, max(1, rem // 2), max(1, rem - 1)]), label="lots")
        expected, left = self.model.fill(oid, lots)
        if api == "raw":
            got = self._run(expected, lambda name, book: book.fill_raw(oid, lots))
            assert expected or got == left
        else:
            got = self._run(
                expected,
                lambda name, book: book.fill_order(oid, _dec(lots, LOT)),
                lambda name, o: (o.id, o.status, o.remaining_quantity, o.filled_quantity, o.is_filled),
            )
            if not expected:
                assert got[2] == left * LOT
                assert got[1] == ("FILLED" if left == 0 else "PARTIALLY_FILLED")

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), api=apis)
    def amend(self, data, api):
        oid = self._pick(data)
        mo = self.model._get(oid)
        filled, total, at = (0, 3, 3) if mo is None else (mo.filled, mo.lots, mo.ticks)
        lots = data.draw(
            st.sampled_from([None, filled + 1, max(filled + 1, total - 1), total, total + 1, total + 4]), label="lots"
        )
        ticks = data.draw(st.one_of(st.sampled_from([None, at]), prices), label="ticks")
        fault = data.draw(st.sampled_from([None] * 7 + ["nothing", "filled", "lots", "ticks", "big"]), label="fault")
        if fault == "nothing":
            lots = ticks = None
        elif fault == "filled":
            lots = data.draw(st.sampled_from([filled, max(1, filled - 1)]), label="at most filled")
        elif fault == "lots":
            lots = data.draw(bad_units, label="bad lots")
        elif fault == "ticks":
            ticks = data.draw(bad_units, label="bad ticks")
        elif fault == "big":
            lots = data.draw(st.sampled_from([1 << 62, INT64_MAX]), label="big lots")
        expected = self.model.amend(oid, lots, ticks)
        if api == "raw":
            self._run(expected, lambda name, book: book.amend_raw(oid, quantity=lots, price=ticks))
        else:
            self._run(
                expected,
                lambda name, book: book.amend_order(oid, quantity=_dec(lots, LOT), price=_dec(ticks, TICK)),
                lambda name, o: (o.id, o.status, o.price, o.quantity, o.sequence),
            )

    @rule(oid=ids)
    def lookups(self, oid):
        present = oid in self.model.orders
        for book in self.books.values():
            assert (oid in book) is present
        if present:
            mo = self.model.orders[oid]
            self._run(set(), lambda name, book: book.get_order(oid), lambda name, o: (o.id, o.sequence))
            for name, book in self.books.items():
                assert [o.id for o in book.orders_at(mo.side, mo.ticks * TICK)] == dict(self.model.levels(mo.side))[
                    mo.ticks
                ], name

    @rule(source=st.sampled_from(["python", "cython"]))
    def snapshot_round_trip(self, source):
        if source not in self.books:
            source = "python"
        data = json.loads(json.dumps(self.books[source].snapshot()))
        self.books = {name: b.OrderBook.from_snapshot(data) for name, b in self.backends.items()}

    # -- what must hold after every step -------------------------------------------------------

    @invariant()
    def books_match_the_model(self):
        for book in self.books.values():
            book._check()
            assert_matches(book, self.model)

    @invariant()
    def backends_agree(self):
        states = [book_state(book) for book in self.books.values()]
        assert all(s == states[0] for s in states[1:])


def test_backends_and_model_agree():
    BookMachine.backends = available_backends()
    run_state_machine_as_test(
        BookMachine, settings=settings(settings.default, max_examples=tier(120, 40), stateful_step_count=35)
    )
