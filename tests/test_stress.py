"""Seeded random command streams against the reference model, with ``_check()`` along the way."""

from __future__ import annotations

import random

import pytest

from models.book import INT64_MAX, Model, assert_matches


def _run(backend, inst, seed: int, steps: int, check_every: int, price_span: int) -> None:
    rng = random.Random(seed)
    book = backend.OrderBook(inst)
    model = Model()
    next_id = 0
    for step in range(steps):
        ids = list(model.orders)
        roll = rng.random()
        if roll < 0.4 or not ids:
            side = rng.choice(["BUY", "SELL"])
            ticks = 1000 + rng.randrange(-price_span, price_span)
            lots = rng.choice([1, 2, 3, 10, rng.randrange(1, 1000)])
            if rng.random() < 0.03:
                lots = INT64_MAX - rng.randrange(3)  # brush the level limit
            oid = next_id if rng.random() < 0.95 else rng.choice(ids or [0])  # some duplicates
            next_id += 1
            expected = model.add(oid, side, ticks, lots)
            _apply(expected, book.add_raw, oid, side, ticks, lots)
        elif roll < 0.6:
            oid = rng.choice(ids) if rng.random() < 0.9 else -1
            expected, left = model.remove(oid)
            got = _apply(expected, book.remove_raw, oid)
            assert got == left
        elif roll < 0.8:
            oid = rng.choice(ids)
            rem = model.orders[oid].remaining
            lots = rng.choice([1, rem, rng.randrange(1, rem + 1), rem + 1])
            expected, left = model.fill(oid, lots)
            got = _apply(expected, book.fill_raw, oid, lots)
            assert got == left
        else:
            oid = rng.choice(ids)
            o = model.orders[oid]
            lots = rng.choice([None, o.lots, o.filled, o.filled + 1, o.lots + 5, max(1, o.lots - 1)])
            ticks = rng.choice([None, o.ticks, 1000 + rng.randrange(-price_span, price_span)])
            if lots is None and ticks is None:
                ticks = o.ticks
            expected = model.amend(oid, lots, ticks)
            _apply(expected, book.amend_raw, oid, quantity=lots, price=ticks)
        if step % check_every == 0:
            book._check()
            assert_matches(book, model)
    book._check()
    assert_matches(book, model)


def _apply(expected, fn, *args, **kwargs):
    if expected:
        with pytest.raises(tuple(expected)):
            fn(*args, **kwargs)
        return None
    return fn(*args, **kwargs)


@pytest.mark.parametrize("seed", range(4))
def test_book_stress(backend, btc, seed):
    _run(backend, btc, seed, steps=3000, check_every=150, price_span=[5, 50, 500, 2][seed])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 103))
def test_book_stress_long(backend, btc, seed):
    _run(backend, btc, seed, steps=20_000, check_every=1000, price_span=[10, 100, 1000][seed - 100])
