"""Matching-engine benchmarks: mixed order flow and matching-heavy flow, every backend, both APIs.

Each case builds its own 200,209-order book (``workloads.py``) and runs
consecutive batches of one seeded command stream through it with
``benchmark.pedantic``: one warm-up batch, then ``ROUNDS`` timed batches, each a
plain Python loop over pre-generated tuples (the Decimal API's Decimals are made
in the untimed setup; ``Order(...)`` construction is timed with ``submit``).
Every report's ``.trades`` is counted inside the loop, so the trades exist as
``Trade`` objects. GC stays on.

* ``test_mixed``: batches of 10,000 commands, 60% new limit orders (a third
  marketable, some sweeping 2-5 levels), 30% cancels of random resting orders,
  10% amends. The table's figures are per batch; ``extra_info`` has
  ``ns_per_command_median`` and ``commands_per_s``.
* ``test_matching``: batches of 4,000 marketable orders sweeping 1-5 levels, in
  chunks of 16, each chunk followed by refills (one passive maker per maker it
  filled, ~3.4 a taker). pytest-benchmark's clock covers takers *and* refills
  (``ns_per_command_median`` counts both as commands); the loop also times the
  takers alone and ``extra_info`` gives ``ns_per_taker_median`` and
  ``takers_per_s`` from that.

Cases are ``[backend-api]``: ``python`` (pure engine), ``cython`` (compiled
``tradebook._engine``; skipped with the import error when it is not built) and,
raw API only, the plain ``sortedcontainers`` matcher. After the last batch every
case checks its trade count per batch, the number of resting orders and every
level against the generator's reference run (the same for all backends, so the
backends agree with each other); smoke mode (``--benchmark-disable``) runs one
batch per case and also walks the book's own invariants (``_check()``).
"""

from __future__ import annotations

import statistics
from types import SimpleNamespace
from typing import Any

import pytest

import workloads as wl
from baselines import SortedMatcher
from scenarios import API_DECIMAL, API_RAW, EngineScenario, check_trades_materialised, run_stream

ROUNDS = 15  # timed batches per case, after one warm-up batch
SMALL_BOOK = 20_000  # deep orders of the book the trade-by-trade comparison uses

CASES = [
    pytest.param(backend, api, id=f"{backend}-{api}")
    for backend, api in (
        ("python", API_RAW),
        ("python", API_DECIMAL),
        ("cython", API_RAW),
        ("cython", API_DECIMAL),
        ("sortedcontainers", API_RAW),
    )
]


def _stream(flow: str, disabled: bool) -> wl.Stream:
    n = 1 if disabled else ROUNDS + 1
    return wl.mixed_stream(n) if flow == "mixed" else wl.matching_stream(n)


def run_case(benchmark: Any, backend: SimpleNamespace, api: str, flow: str) -> EngineScenario:
    """Benchmark one flow on one backend and API; check trades and the book afterwards."""
    stream = _stream(flow, benchmark.disabled)
    scenario = EngineScenario(backend, api, stream, settle_gc=not benchmark.disabled)
    first = stream.batches[0]
    benchmark.group = f"engine-{flow}"
    benchmark.extra_info.update(
        backend=backend.name,
        api=api,
        flow=flow,
        commands_per_round=first.n_commands,
        takers_per_round=first.n_takers,
        book_orders=len(stream.orders),
    )
    timed = run_stream(benchmark, scenario)
    done = stream.batches[: scenario.batches]
    benchmark.extra_info["trades_per_round"] = round(statistics.mean(b.n_trades for b in done), 1)
    if benchmark.stats is not None and flow == "matching":
        spent = [r[1] for r in scenario.results[-len(timed) :]]
        per_taker = statistics.median(ns / b.n_takers for ns, b in zip(spent, timed, strict=True))
        benchmark.extra_info["ns_per_taker_median"] = round(per_taker, 1)
        benchmark.extra_info["takers_per_s"] = round(1e9 / per_taker)
    return scenario


@pytest.mark.parametrize(("backend", "api"), CASES, indirect=["backend"])
def test_mixed(benchmark: Any, backend: SimpleNamespace, api: str) -> None:
    """10,000 commands a round: 60% new limit orders (1/3 marketable), 30% cancels, 10% amends."""
    run_case(benchmark, backend, api, "mixed")


@pytest.mark.parametrize(("backend", "api"), CASES, indirect=["backend"])
def test_matching(benchmark: Any, backend: SimpleNamespace, api: str) -> None:
    """4,000 marketable orders a round sweeping 1-5 levels, plus refills (in the round time; not in the per-taker figures)."""
    run_case(benchmark, backend, api, "matching")


# -- the streams themselves --------------------------------------------------------------


def test_mixed_stream_shape() -> None:
    """The mixed flow is what it claims: 60/30/10, a third of new orders marketable, a stable book."""
    stream = wl.mixed_stream(1)
    batch = stream.batches[0]
    kinds = [c[0] for c in batch.commands]
    n = len(kinds)
    assert abs(kinds.count(wl.NEW) / n - 0.60) < 0.02
    assert abs(kinds.count(wl.CANCEL) / n - 0.30) < 0.02
    assert abs(kinds.count(wl.AMEND) / n - 0.10) < 0.01
    counts = batch.counts
    assert abs(batch.n_takers / kinds.count(wl.NEW) - 1 / 3) < 0.03
    assert counts["new_sweep"] > 0 and counts["ioc"] > 0
    assert min(counts["amend_down"], counts["amend_up"], counts["amend_price"]) > 0.25 * kinds.count(wl.AMEND)
    assert abs(batch.orders_after - len(stream.orders)) < 0.02 * len(stream.orders)
    bids, asks = batch.depth_after
    assert 1_900 <= len(bids) <= 2_300 and 1_900 <= len(asks) <= 2_300
    assert batch.n_trades > batch.n_takers  # sweeps: more trades than marketable orders
    assert len({c[1] for c in batch.commands if c[0] == wl.NEW}) == kinds.count(wl.NEW)  # fresh ids


def test_matching_stream_shape() -> None:
    """Every marketable order sweeps 1-5 levels, refills keep the book's size exactly."""
    stream = wl.matching_stream(1)
    batch = stream.batches[0]
    assert batch.n_takers == wl.MATCHING_BATCH
    assert all(len(takers) <= wl.CHUNK for takers, _ in batch.commands)
    assert all(batch.counts[f"sweep_{k}"] > 0.15 * batch.n_takers for k in range(1, 6))
    assert batch.orders_after == len(stream.orders)
    assert 2 < batch.n_trades / batch.n_takers < 8


def test_streams_are_seeded() -> None:
    """Same seed, same commands: every backend and every run sees the same flow."""
    a = wl.mixed_stream.__wrapped__(1, 500, seed=5, n_deep=SMALL_BOOK)
    b = wl.mixed_stream.__wrapped__(1, 500, seed=5, n_deep=SMALL_BOOK)
    assert a.batches[0].commands == b.batches[0].commands
    assert a.batches[0].n_trades == b.batches[0].n_trades


def _replay(engine: Any, backend: Any, api: str, commands: list[Any]) -> list[Any]:
    """Run mixed commands through a tradebook engine; return every trade printed."""
    trades: list[Any] = []
    if api == API_DECIMAL:
        commands = wl.decimal_mixed(commands)
    for kind, oid, side, price, qty, tif in commands:
        if kind == wl.NEW:
            if api == API_RAW:
                report = engine.submit_raw(oid, side, price, qty, time_in_force=tif)
            else:
                report = engine.submit(backend.Order(oid, side, price, qty, time_in_force=tif))
        elif kind == wl.CANCEL:
            engine.cancel(wl.SYMBOL, oid)
            continue
        elif api == API_RAW:
            report = engine.amend_raw(wl.SYMBOL, oid, quantity=qty, price=price)
        else:
            report = engine.amend(wl.SYMBOL, oid, quantity=qty, price=price)
        trades += report.trades
    return trades


def test_backends_print_the_same_trades(backend: SimpleNamespace) -> None:
    """Trade by trade, each engine prints what the sortedcontainers matcher prints, raw and Decimal APIs alike."""
    check_trades_materialised(backend)
    # The same generator on a 20k-order book keeps this cheap; the full-size runs check counts and levels.
    stream = wl.mixed_stream(1, 5_000, n_deep=SMALL_BOOK)
    commands = stream.batches[0].commands
    ref = SortedMatcher()
    for order in stream.orders:
        ref.add(*order)
    expected = []
    for kind, oid, side, price, qty, tif in commands:
        if kind == wl.NEW:
            expected += ref.submit(oid, side, price, qty, tif is wl.IOC)
        elif kind == wl.CANCEL:
            ref.cancel(oid)
        else:
            expected += ref.amend(oid, qty, price)
    assert len(expected) == stream.batches[0].n_trades > 1_000
    for api in (API_RAW, API_DECIMAL):
        engine = backend.MatchingEngine([wl.instrument()])
        book = engine.book(wl.SYMBOL)
        for order in stream.orders:
            book.add_raw(*order)
        got = _replay(engine, backend, api, commands)
        assert [(t.price_ticks, t.quantity_lots, t.maker_order_id, t.taker_order_id) for t in got] == expected, api
        assert [t.id for t in got] == list(range(1, len(got) + 1)), api
        assert book.depth_raw(1 << 30) == ref.depth(1 << 30), api
        book._check()
