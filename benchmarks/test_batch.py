"""``MatchingEngine.execute_batch`` benchmarks: the engine streams as batch rows, both backends.

Each case builds its own engine on the ~200k-order book (``workloads.py``) and
runs consecutive batches of one stream through ``execute_batch`` with
``benchmark.pedantic``: one warm-up batch, then ``ROUNDS`` timed batches; the
rows are made in the untimed setup. ``test_mixed_batch`` makes one call per
batch of 10,000 mixed commands; ``test_matching_batch`` one call per chunk of
16 marketable orders plus one per chunk's refills (both in the round time).
After the last batch each case checks its trades per batch, the resting orders
and every level against the generator's reference run; smoke mode
(``--benchmark-disable``) runs one batch and also walks the book's invariants.
``test_*_array`` run the mixed flow and the add-heavy flow (60% adds, 30%
cancels, 10% marketable IOC orders, batches of ``wl.ADD_HEAVY_BATCH``) through
``execute_array`` (numpy rows in, numpy trade rows out). ``test_one_command_*``
time a one-command ``execute_batch`` against the ``submit_raw`` it stands for.
``report.py batch`` gives the per-command and per-order figures the team reports.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import workloads as wl
from scenarios import ArrayScenario, BatchScenario, run_stream

ROUNDS = 15  # timed batches per case, after one warm-up batch


def run_case(benchmark: Any, backend: SimpleNamespace, flow: str) -> BatchScenario:
    """Benchmark one flow through ``execute_batch``; check trades and the book afterwards."""
    n = 1 if benchmark.disabled else ROUNDS + 1
    stream = wl.mixed_stream(n) if flow == "mixed" else wl.matching_stream(n)
    scenario = BatchScenario(backend, stream)
    benchmark.group = f"batch-{flow}"
    first = stream.batches[0]
    benchmark.extra_info.update(
        backend=backend.name, flow=flow, commands_per_round=first.n_commands, takers_per_round=first.n_takers
    )
    run_stream(benchmark, scenario)
    return scenario


@pytest.mark.parametrize("backend", ["python", "cython"], indirect=True)
def test_mixed_batch(benchmark: Any, backend: SimpleNamespace) -> None:
    """10,000 mixed commands (60% new, 30% cancel, 10% amend) in one ``execute_batch`` call a round."""
    run_case(benchmark, backend, "mixed")


@pytest.mark.parametrize("backend", ["python", "cython"], indirect=True)
def test_matching_batch(benchmark: Any, backend: SimpleNamespace) -> None:
    """4,000 marketable orders a round, one call per chunk of 16 and one per chunk's refills."""
    run_case(benchmark, backend, "matching")


def run_array_case(benchmark: Any, backend: SimpleNamespace, flow: str) -> ArrayScenario:
    """Benchmark one flow through ``execute_array``; check trades and the book afterwards."""
    pytest.importorskip("numpy")
    n = 1 if benchmark.disabled else ROUNDS + 1
    stream = wl.mixed_stream(n) if flow == "mixed" else wl.add_heavy_stream(n)
    scenario = ArrayScenario(backend, stream)
    benchmark.group = f"array-{flow}"
    benchmark.extra_info.update(backend=backend.name, flow=flow, commands_per_round=stream.batches[0].n_commands)
    run_stream(benchmark, scenario)
    return scenario


@pytest.mark.parametrize("backend", ["python", "cython"], indirect=True)
def test_mixed_array(benchmark: Any, backend: SimpleNamespace) -> None:
    """10,000 mixed commands in one ``execute_array`` call a round (target: >= 5,000,000 commands/s)."""
    run_array_case(benchmark, backend, "mixed")


@pytest.mark.parametrize("backend", ["python", "cython"], indirect=True)
def test_add_heavy_array(benchmark: Any, backend: SimpleNamespace) -> None:
    """60% adds, 30% cancels, 10% marketable on the ~200k-order book (target: >= 10,000,000 commands/s)."""
    run_array_case(benchmark, backend, "add-heavy")


ONE_COMMAND_CALLS = 2_000  # one-command calls a round
ONE_COMMAND_ROUNDS = 15


def _one_command_engine(backend: SimpleNamespace) -> Any:
    engine = backend.MatchingEngine([wl.instrument()])
    engine.execute_batch(wl.batch_rows(wl.base_orders()[:20_000]))
    return engine


def _one_command_ids(*, rows: bool) -> Any:
    """Fresh ids (or their one-command rows) for each round, made untimed (``benchmark.pedantic`` setup)."""
    start = [10_000_001]

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        ids = range(start[0], start[0] + ONE_COMMAND_CALLS)
        start[0] += ONE_COMMAND_CALLS
        return ([wl.batch_rows([(oid, wl.SELL, FAR, 1)]) for oid in ids] if rows else ids,), {}

    return setup


FAR = wl.ticks_at(wl.SELL, wl.LEVEL_RANGE + 500)  # a passive price behind the whole book


@pytest.mark.parametrize("backend", ["python", "cython"], indirect=True)
def test_one_command_batch(benchmark: Any, backend: SimpleNamespace) -> None:
    """A new passive order as a one-command ``execute_batch``: the batch's fixed cost (target: <= 1.5x submit_raw)."""
    engine = _one_command_engine(backend)
    execute = engine.execute_batch

    def run(batches: list[Any]) -> None:
        for rows in batches:
            execute(rows)

    benchmark.group = "batch-one-command"
    benchmark.extra_info.update(backend=backend.name, calls_per_round=ONE_COMMAND_CALLS)
    rounds = 1 if benchmark.disabled else ONE_COMMAND_ROUNDS
    benchmark.pedantic(run, setup=_one_command_ids(rows=True), rounds=rounds, iterations=1)
    assert len(engine.book()) == 20_000 + rounds * ONE_COMMAND_CALLS


@pytest.mark.parametrize("backend", ["python", "cython"], indirect=True)
def test_one_command_submit_raw(benchmark: Any, backend: SimpleNamespace) -> None:
    """The single call a one-command batch stands for."""
    engine = _one_command_engine(backend)
    submit = engine.submit_raw
    sell = wl.SELL

    def run(ids: range) -> None:
        for oid in ids:
            submit(oid, sell, FAR, 1)

    benchmark.group = "batch-one-command"
    benchmark.extra_info.update(backend=backend.name, calls_per_round=ONE_COMMAND_CALLS)
    rounds = 1 if benchmark.disabled else ONE_COMMAND_ROUNDS
    benchmark.pedantic(run, setup=_one_command_ids(rows=False), rounds=rounds, iterations=1)
    assert len(engine.book()) == 20_000 + rounds * ONE_COMMAND_CALLS


def test_batch_rows_match_the_commands() -> None:
    """The rows say what the commands say: op, id, side, ticks, lots per command."""
    from tradebook import BatchOp

    batch = wl.mixed_stream(1).batches[0]
    rows = wl.mixed_rows(batch.commands)
    assert len(rows) == 5 * len(batch.commands)
    for i, (kind, oid, side, ticks, lots, tif) in enumerate(batch.commands[:500]):
        op, rid, sell, rticks, rlots = rows[5 * i : 5 * i + 5]
        assert rid == oid
        if kind == wl.NEW:
            assert op == (BatchOp.IOC if tif is wl.IOC else BatchOp.LIMIT)
            assert (sell, rticks, rlots) == (side is wl.SELL, ticks, lots)
        elif kind == wl.CANCEL:
            assert op == BatchOp.CANCEL
        else:
            assert (op, rticks, rlots) == (BatchOp.AMEND, ticks or 0, lots or 0)
