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
``report.py batch`` gives the per-command and per-order figures the team reports.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import workloads as wl
from scenarios import BatchScenario, run_stream

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
