"""Python code that calls back into a book while it changes, on both backends (issue 10, item 3).

A change to a book may run the caller's Python code half-way: an owner's
``__eq__`` (self-trade prevention), an order id's ``__hash__``/``__eq__`` (the id
map), an object's ``__del__``. The compiled core holds raw record and level
pointers across those calls, so code that cancelled the maker being matched, or
added orders until the record array moved, used to kill the process (SIGSEGV);
the pure core raised a stray ``KeyError`` or went on from a stale state. Now
both refuse the nested change with the same ``RuntimeError`` (reads stay
allowed) and end with a consistent book. Market data subscribers run after the
change and may submit, cancel and amend.

Each scenario runs in a subprocess (a crash must fail the test, not the run)
and prints its observations as JSON; both backends must print the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from _backends import need_engine

REENTERED = (
    "the order book was called back while it was changing (from an order id's or owner's __eq__ or __hash__, "
    "or a __del__): that code may read the book but not change it; market data subscribers may"
)

PRELUDE = """
import json, sys
if sys.argv[1] == "python":
    from tradebook import _book_py as bk, _engine_py as en
else:
    from tradebook import _book as bk, _engine as en
from tradebook import Instrument

ACME = Instrument("ACME/USD", "1", "1")
errors = []


def attempt(fn, *args, **kwargs):
    # a nested call: record the refusal instead of letting it unwind the outer one
    try:
        fn(*args, **kwargs)
    except RuntimeError as exc:
        errors.append(str(exc))
    else:
        errors.append("accepted")


def state(engine):
    book = engine.book()
    book._check()
    return {
        "len": len(book),
        "next_sequence": book.next_sequence,
        "next_trade_id": engine.next_trade_id,
        "depth": [list(map(list, side)) for side in book.depth_raw(100)],
    }


def trades(report):
    return [[getattr(t.maker_order_id, "v", t.maker_order_id), t.quantity_lots] for t in report.trades]


class Id:
    # an order id whose __hash__ and __eq__ run a hook once armed (hash 7 for all: they collide)
    hook = None
    eq_hook = None
    skip = 0  # hash calls to let pass before the hook runs

    def __init__(self, v):
        self.v = v

    def __hash__(self):
        if Id.hook is not None:
            if Id.skip:
                Id.skip -= 1
            else:
                hook, Id.hook = Id.hook, None
                hook()
        return 7

    def __eq__(self, other):
        if Id.eq_hook is not None:
            hook, Id.eq_hook = Id.eq_hook, None
            hook()
        return isinstance(other, Id) and other.v == self.v

    def __repr__(self):
        return f"Id({self.v!r})"


class Owner:
    # an owner whose __eq__ and __hash__ run a hook once armed
    hook = None
    hashed = 0

    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        if Owner.hook is not None:
            hook, Owner.hook = Owner.hook, None
            hook()
        return isinstance(other, Owner) and other.n == self.n

    def __hash__(self):
        Owner.hashed += 1
        if Owner.hook is not None:
            hook, Owner.hook = Owner.hook, None
            hook()
        return hash(self.n)

"""


def run(backend, code: str) -> dict:
    """Run ``code`` after the prelude in a fresh interpreter on ``backend``; it must exit cleanly and print JSON."""
    need_engine(backend)
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), backend.name],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"exit code {proc.returncode} (-11 is SIGSEGV)\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- an owner's __eq__ / __hash__ (self-trade prevention) ----------------------------------------


@pytest.mark.parametrize("nested", ["cancel_maker", "cancel_other", "add_until_realloc", "book_add", "amend", "batch"])
def test_owner_eq_cannot_change_the_book_while_it_matches(backend, nested):
    out = run(
        backend,
        f"""
        engine = en.MatchingEngine([ACME], self_trade_prevention="CANCEL_MAKER")
        engine.submit_raw(1, "SELL", 100, 5, owner=Owner(1))
        engine.submit_raw(2, "SELL", 100, 5, owner=Owner(2))
        engine.submit_raw(4, "SELL", 105, 5, owner=Owner(4))

        def hook():
            nested = {nested!r}
            if nested == "cancel_maker":
                attempt(engine.cancel, None, 1)
            elif nested == "cancel_other":
                attempt(engine.cancel_raw, None, 4)
            elif nested == "add_until_realloc":
                for i in range(1000, 1600):  # far past the first record array's 256 slots
                    attempt(engine.submit_raw, i, "BUY", 1, 1)
            elif nested == "book_add":
                attempt(engine.book().add_raw, 99, "BUY", 1, 1)
            elif nested == "batch":  # refused up front, even when it holds nothing that touches the book
                attempt(engine.execute_batch, [])
                attempt(engine.execute_batch, [(9, 1, 0, 0, 0)])
            else:
                attempt(engine.amend_raw, None, 2, price=104)
            engine.book().depth_raw(10)  # reading is fine

        Owner.hook = hook
        report = engine.submit_raw(3, "BUY", 100, 7, owner=Owner(3))
        print(json.dumps({{"status": report.status.value, "trades": trades(report), "errors": sorted(set(errors)),
                          "refused": len(errors), **state(engine)}}))
        """,
    )
    assert out["errors"] == [REENTERED]
    assert out["refused"] == {"add_until_realloc": 600, "batch": 2}.get(nested, 1)
    assert out["status"] == "FILLED" and out["trades"] == [[1, 5], [2, 2]]
    assert out["depth"] == [[], [[100, 3, 1], [105, 5, 1]]]
    assert (out["len"], out["next_sequence"], out["next_trade_id"]) == (2, 5, 3)


def test_an_error_from_an_owner_eq_unwinds_with_a_consistent_book(backend):
    """The refusal propagates out of ``submit``: nothing traded yet, the book intact, the sequence number used."""
    out = run(
        backend,
        """
        engine = en.MatchingEngine([ACME], self_trade_prevention="CANCEL_MAKER")
        engine.submit_raw(1, "SELL", 100, 5)
        engine.submit_raw(2, "SELL", 100, 5, owner=Owner(2))
        Owner.hook = lambda: engine.cancel(None, 2)
        try:
            engine.submit_raw(3, "BUY", 100, 7, owner=Owner(3))
        except RuntimeError as exc:
            errors.append(str(exc))
        print(json.dumps({"errors": errors, **state(engine)}))
        """,
    )
    assert out["errors"] == [REENTERED]
    # order 1 traded before the owner of order 2 was compared; those 5 lots and trade id 1 are gone for good
    assert out["depth"] == [[], [[100, 5, 1]]]
    assert (out["len"], out["next_sequence"], out["next_trade_id"]) == (1, 4, 2)


def test_owner_hash_is_not_needed_and_cannot_change_the_book(backend):
    out = run(
        backend,
        """
        engine = en.MatchingEngine([ACME], self_trade_prevention="DECREMENT")
        Owner.hook = lambda: attempt(engine.submit_raw, 50, "BUY", 1, 1)
        engine.submit_raw(1, "SELL", 100, 5, owner=Owner(1))
        engine.submit_raw(2, "SELL", 100, 5, owner=Owner(2))
        report = engine.submit_raw(3, "BUY", 100, 7, owner=Owner(1))   # DECREMENT 5 against order 1, trade 2
        hooked = Owner.hook is None
        Owner.hook = None
        print(json.dumps({"status": report.status.value, "trades": trades(report), "errors": errors,
                          "cancelled": [o.id for o in report.cancelled], "hooked": hooked, "hashed": Owner.hashed,
                          **state(engine)}))
        """,
    )
    # the hook ran from Owner.__eq__ during matching (the engine never hashes an owner)
    assert out["hooked"] is True and out["errors"] == [REENTERED] and out["hashed"] == 0
    assert out["status"] == "FILLED" and out["trades"] == [[2, 2]] and out["cancelled"] == [1]
    assert out["depth"] == [[], [[100, 3, 1]]]


# -- an order id's __hash__ / __eq__ (the id map) -------------------------------------------------


@pytest.mark.parametrize("via", ["submit", "batch"])
def test_id_hash_cannot_change_the_book_while_a_filled_maker_leaves(backend, via):
    out = run(
        backend,
        f"""
        engine = en.MatchingEngine([ACME])
        engine.submit_raw(Id("a"), "SELL", 100, 5)
        engine.submit_raw(2, "SELL", 100, 5)
        engine.submit_raw(4, "SELL", 101, 5)

        def hook():
            attempt(engine.cancel, None, 2)             # the next maker in line
            attempt(engine.book().remove_raw, 4)
            for i in range(1000, 1300):
                attempt(engine.submit_raw, i, "BUY", 1, 1)

        Id.hook = hook
        if {via!r} == "submit":
            report = engine.submit_raw(3, "BUY", 100, 7)
            status, got = report.status.value, trades(report)
        else:
            result = engine.execute_batch([(1, 3, 0, 100, 7)])   # IOC buy 7 at 100
            status, got = list(result.statuses), [[getattr(t.maker_order_id, "v", t.maker_order_id),
                                                   t.quantity_lots] for t in result.trades]
        print(json.dumps({{"status": status, "trades": got, "errors": sorted(set(errors)), "refused": len(errors),
                          **state(engine)}}))
        """,
    )
    assert out["errors"] == [REENTERED] and out["refused"] == 302
    assert out["status"] == ("FILLED" if via == "submit" else [3])
    assert out["trades"] == [["a", 5], [2, 2]]
    assert out["depth"] == [[], [[100, 3, 1], [101, 5, 1]]]


def test_an_error_from_an_id_hash_unwinds_before_the_maker_trades(backend):
    """The refusal propagates out of the id map when a filled maker leaves: that trade is not made."""
    out = run(
        backend,
        """
        engine = en.MatchingEngine([ACME])
        engine.submit_raw(Id("a"), "SELL", 100, 5)
        engine.submit_raw(1, "SELL", 100, 5)

        def hook():
            engine.cancel(None, 1)

        Id.hook = hook
        try:
            engine.submit_raw(3, "BUY", 100, 7)
        except RuntimeError as exc:
            errors.append(str(exc))
        print(json.dumps({"errors": errors, **state(engine)}))
        """,
    )
    assert out["errors"] == [REENTERED]
    assert out["depth"] == [[], [[100, 10, 2]]]
    assert (out["len"], out["next_sequence"], out["next_trade_id"]) == (2, 4, 1)


def test_id_eq_cannot_change_the_book_during_an_id_lookup(backend):
    out = run(
        backend,
        """
        engine = en.MatchingEngine([ACME])
        book = engine.book()
        engine.submit_raw(Id("a"), "SELL", 101, 5)
        engine.submit_raw(Id("b"), "SELL", 100, 5)     # same hash as Id("a"): looking it up compares with a

        def hook():
            attempt(engine.cancel, None, Id("a"))
            attempt(book.add_raw, 50, "BUY", 1, 1)
            attempt(book.amend_raw, Id("a"), quantity=9)

        Id.eq_hook = hook
        report = engine.submit_raw(3, "BUY", 100, 5)     # fills Id("b"): its id leaves the map
        first = report.status.value, trades(report)
        Id.eq_hook = lambda: attempt(book.fill_raw, Id("a"), 1)
        book.add_raw(Id("c"), "SELL", 102, 1)           # adding Id("c") compares it with Id("a")
        print(json.dumps({"first": first, "errors": sorted(set(errors)), "refused": len(errors), **state(engine)}))
        """,
    )
    assert out["first"] == ["FILLED", [["b", 5]]]
    assert out["errors"] == [REENTERED] and out["refused"] == 4
    assert out["depth"] == [[], [[101, 5, 1], [102, 1, 1]]]


def test_book_methods_refuse_changes_from_an_id_hash(backend):
    """The book's own methods hash ids under its lock too (an add hashes the id once before the lock)."""
    out = run(
        backend,
        """
        book = bk.OrderBook(ACME)
        book.add_raw(Id("a"), "SELL", 100, 5)
        book.add_order(bk.Order(Id("b"), "SELL", 101, 5))
        c = bk.Order(Id("c"), "BUY", 90, 1)

        def hook():
            attempt(book.add_raw, 1, "BUY", 10, 1)
            attempt(book.remove_raw, Id("b"))
            book.depth_raw(5)  # reading is fine

        for skip, call in (
            (0, lambda: book.remove_order(Id("a"))),
            (0, lambda: book.fill_order(Id("b"), 1)),
            (0, lambda: book.amend_order(Id("b"), quantity=3)),
            (0, lambda: book.amend_raw(Id("b"), price=102)),
            (1, lambda: book.add_order(c)),
            (1, lambda: book.add_raw(Id("d"), "BUY", 91, 1)),
            (0, lambda: book.fill_raw(Id("c"), 1)),
        ):
            Id.skip, Id.hook = skip, hook
            call()
        book._check()
        print(json.dumps({"errors": sorted(set(errors)), "refused": len(errors), "len": len(book),
                          "depth": [list(map(list, side)) for side in book.depth_raw(100)]}))
        """,
    )
    assert out["errors"] == [REENTERED] and out["refused"] == 14
    assert out["len"] == 2
    assert out["depth"] == [[[91, 1, 1]], [[102, 2, 1]]]


def test_a_del_that_calls_back_does_not_crash(backend):
    """An owner kept alive only by its order: dropping the order runs its ``__del__`` inside or after the change.

    When exactly refcounting runs ``__del__`` differs between the backends, so only a clean exit and a consistent
    book are demanded.
    """
    out = run(
        backend,
        """
        engine = en.MatchingEngine([ACME])

        class Ghost:
            def __del__(self):
                try:
                    for i in range(2000, 2400):
                        engine.submit_raw(i, "BUY", 1, 1)
                except RuntimeError:
                    pass

        for i in range(1, 50):
            engine.submit_raw(i, "SELL", 100 + i, 1, owner=Ghost())
        for i in range(1, 25):
            engine.cancel_raw(None, i)
        engine.submit_raw(99, "BUY", 200, 100)
        print(json.dumps(state(engine)))
        """,
    )
    assert out["depth"][1] == []


# -- market data subscribers: they run after the change and may change the book -------------------


@pytest.mark.parametrize("via", ["submit", "batch"])
def test_subscribers_may_submit_cancel_and_amend_from_their_callback(backend, via):
    out = run(
        backend,
        f"""
        engine = en.MatchingEngine([ACME])
        book = engine.book()
        seen = []

        def on_update(update):
            # each update shows the book right after its command
            seen.append([[d.price_ticks, d.quantity_lots, (book.level_raw(d.side, d.price_ticks) or [0])[0]]
                         for d in update.deltas])
            if len(seen) == 4:
                engine.submit_raw(20, "BUY", 100, 1)       # crosses: trades with order 1
                engine.cancel(None, 2)
                engine.amend_raw(None, 3, price=99)

        engine.subscribe(on_update)
        if {via!r} == "submit":
            engine.submit_raw(1, "SELL", 100, 2)
            engine.submit_raw(2, "SELL", 101, 2)
            engine.submit_raw(3, "SELL", 102, 2)
            engine.submit_raw(4, "BUY", 90, 1)
        else:
            engine.execute_batch([(0, 1, 1, 100, 2), (0, 2, 1, 101, 2), (0, 3, 1, 102, 2), (0, 4, 0, 90, 1)])
        print(json.dumps({{"seen": seen, **state(engine)}}))
        """,
    )
    assert out["seen"][:4] == [[[100, 2, 2]], [[101, 2, 2]], [[102, 2, 2]], [[90, 1, 1]]]
    assert out["seen"][4:] == [[[100, 1, 1]], [[101, 0, 0]], [[102, 0, 0], [99, 2, 2]]]
    assert out["depth"] == [[[90, 1, 1]], [[99, 2, 1], [100, 1, 1]]]
    assert (out["next_sequence"], out["next_trade_id"]) == (7, 2)


def test_every_subscriber_sees_the_updates_in_command_order_when_one_of_them_trades(backend):
    """A subscriber's own command is published after the update in hand has reached every subscriber.

    Before, the nested update went out at once: the second subscriber got it before the update that caused it,
    and a book mirrored from the deltas ended on the stale total.
    """
    out = run(
        backend,
        """
        engine = en.MatchingEngine([ACME])
        got = {"first": [], "mirror": []}
        mirror = {}

        def first(update):
            got["first"].append([[d.price_ticks, d.quantity_lots] for d in update.deltas])
            if len(got["first"]) == 1:
                engine.submit_raw(2, "BUY", 100, 1)      # trades with the order just published
                engine.submit_raw(3, "BUY", 99, 4)

        def second(update):
            got["mirror"].append([[d.price_ticks, d.quantity_lots] for d in update.deltas])
            for d in update.deltas:
                mirror[str(d.price_ticks)] = d.quantity_lots

        engine.subscribe(first)
        engine.subscribe(second)
        engine.submit_raw(1, "SELL", 100, 2)
        print(json.dumps({**got, "mirror_state": mirror, **state(engine)}))
        """,
    )
    in_order = [[[100, 2]], [[100, 1]], [[99, 4]]]
    assert out["first"] == in_order and out["mirror"] == in_order
    assert out["mirror_state"] == {"100": 1, "99": 4}
    assert out["depth"] == [[[99, 4, 1]], [[100, 1, 1]]]
