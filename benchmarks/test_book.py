"""Per-operation benchmarks of the order book, both backends, both APIs, and a baseline.

Every case runs on its own freshly built 200,000-order book (see ``workloads.py``)
and times batches of operations in a plain Python loop with
``benchmark.pedantic``; an untimed setup restores the book's size before each
round. The per-operation figure is in ``extra_info`` (``ns_per_op_median``,
``ns_per_op_min``); the table's own columns are per batch of ``ops_per_round``.
GC stays on. After the last round each case checks what it returned and the
whole book against a reference model (in smoke mode, ``--benchmark-disable``,
also the book's own invariant walk).

Cases are ``[backend-api]``: backends ``python``, ``cython`` and, for add,
cancel, best bid/ask and depth, the plain ``sortedcontainers`` book; APIs ``raw``
(integer ticks and lots) and ``decimal`` (``add_order(Order(...))`` etc. with
the Decimals prepared in advance).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import workloads as wl
from scenarios import API_DECIMAL, API_RAW, BATCH, BookScenario

TRADEBOOK_CASES = [
    pytest.param(backend, api, id=f"{backend}-{api}")
    for backend in ("python", "cython")
    for api in (API_RAW, API_DECIMAL)
]
ALL_CASES = [*TRADEBOOK_CASES, pytest.param("sortedcontainers", API_RAW, id="sortedcontainers-raw")]

# Timed rounds per case (plus one warm-up round). Batches of 10,000 operations
# (depth: 1,000) keep a pure-Python round at 5-60 ms and the whole run well under
# three minutes on two cores; fills and amends have 19 distinct batches of fresh
# orders, so rounds + warm-up must stay below that.
ROUNDS = dict.fromkeys(("add", "cancel", "best", "depth", "fill", "amend"), 15)


def run_case(benchmark: Any, backend: SimpleNamespace, api: str, op: str, workload: wl.Workload) -> BookScenario:
    """Benchmark one operation and check its result and the book afterwards."""
    scenario = BookScenario(backend, api, op, workload)
    benchmark.group = op
    benchmark.extra_info.update(
        backend=backend.name,
        api=api,
        op=op,
        ops_per_round=scenario.ops_per_batch,
        book_orders=len(workload.orders),
    )
    result = benchmark.pedantic(
        scenario.run, setup=scenario.pedantic_setup, rounds=ROUNDS[op], warmup_rounds=1, iterations=1
    )
    assert result == scenario.expected_result(), f"{scenario.name} returned {result!r}"
    scenario.check(deep=benchmark.disabled)
    if benchmark.stats is not None:
        stats = benchmark.stats.stats
        benchmark.extra_info["ns_per_op_median"] = round(stats.median * 1e9 / scenario.ops_per_batch, 1)
        benchmark.extra_info["ns_per_op_min"] = round(stats.min * 1e9 / scenario.ops_per_batch, 1)
    return scenario


@pytest.mark.parametrize(("backend", "api"), ALL_CASES, indirect=["backend"])
def test_add(benchmark: Any, backend: SimpleNamespace, api: str, workload: wl.Workload) -> None:
    """Rest 10,000 new orders (95% on existing levels, 5% opening a level)."""
    run_case(benchmark, backend, api, "add", workload)


@pytest.mark.parametrize(("backend", "api"), ALL_CASES, indirect=["backend"])
def test_cancel(benchmark: Any, backend: SimpleNamespace, api: str, workload: wl.Workload) -> None:
    """Cancel 10,000 random resting orders (``remove_raw`` / ``remove_order``)."""
    run_case(benchmark, backend, api, "cancel", workload)


@pytest.mark.parametrize(("backend", "api"), ALL_CASES, indirect=["backend"])
def test_best(benchmark: Any, backend: SimpleNamespace, api: str, workload: wl.Workload) -> None:
    """Read best bid and best ask 10,000 times each (per op = one of the two reads)."""
    run_case(benchmark, backend, api, "best", workload)


@pytest.mark.parametrize(("backend", "api"), ALL_CASES, indirect=["backend"])
def test_depth(benchmark: Any, backend: SimpleNamespace, api: str, workload: wl.Workload) -> None:
    """Take the top 10 levels of both sides 1,000 times."""
    run_case(benchmark, backend, api, "depth", workload)


@pytest.mark.parametrize(("backend", "api"), TRADEBOOK_CASES, indirect=["backend"])
def test_fill(benchmark: Any, backend: SimpleNamespace, api: str, workload: wl.Workload) -> None:
    """Fill one lot of 10,000 random resting orders (partial fills: they stay)."""
    run_case(benchmark, backend, api, "fill", workload)


@pytest.mark.parametrize(("backend", "api"), TRADEBOOK_CASES, indirect=["backend"])
def test_amend(benchmark: Any, backend: SimpleNamespace, api: str, workload: wl.Workload) -> None:
    """Amend 10,000 random resting orders: half lower the quantity, half move 1-5 ticks."""
    run_case(benchmark, backend, api, "amend", workload)


# -- the workload itself ----------------------------------------------------------


def test_workload_shape(workload: wl.Workload) -> None:
    """The book is the one the benchmarks claim: 200k orders, ~2,000 clustered levels a side."""
    assert len(workload.orders) == wl.N_ORDERS
    assert len({o[0] for o in workload.orders}) == wl.N_ORDERS
    bids, asks = wl.level_totals(workload.orders)
    for levels, best in ((bids, max(bids)), (asks, min(asks))):
        assert 1_800 <= len(levels) <= 2_200
        top300 = sum(row[1] for t, row in levels.items() if abs(t - best) < 300)
        assert top300 > 0.55 * sum(row[1] for row in levels.values())
    assert max(bids) < wl.MID_TICKS < min(asks)
    new_level = sum(1 for _, side, t, _ in workload.adds if t not in (asks if side is wl.SELL else bids))
    assert 0.03 < new_level / len(workload.adds) < 0.08
    assert len(workload.adds) >= BATCH["add"]
    assert sorted(workload.cancel_ids) == [o[0] for o in workload.orders]


def test_workload_is_seeded() -> None:
    """Same seed, same workload: every backend and every run sees the same order flow."""
    a = wl.get_workload.__wrapped__(seed=7, n_orders=2_000, n_adds=100)
    b = wl.get_workload.__wrapped__(seed=7, n_orders=2_000, n_adds=100)
    assert a == b


def test_decimal_build_matches_raw(backend: SimpleNamespace, workload: wl.Workload) -> None:
    """Building through ``add_order(Order(...))`` gives the same book as ``add_raw``."""
    raw = wl.build_book_raw(backend.OrderBook, workload.orders)
    dec = wl.build_book_decimal(backend.Order, backend.OrderBook, workload.orders)
    assert len(raw) == len(dec) == wl.N_ORDERS
    assert raw.depth_raw(1 << 30) == dec.depth_raw(1 << 30) == wl.depth_of(wl.level_totals(workload.orders), 1 << 30)
    assert raw.depth(10) == dec.depth(10)
