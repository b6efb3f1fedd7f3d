"""What market data costs the engine: the mixed flow with no subscriber and with one.

The flow is ``test_engine.py``'s mixed one (batches of 10,000 raw commands on
the 200,000-order book: 60% new limit orders, a third of them marketable, 30%
cancels, 10% amends), run by ``EngineScenario``. With ``subscribers=1`` a
subscriber that only keeps each ``MarketDataUpdate`` is attached: every
command that changes the book then records its L3 events and builds its
update (deltas with level totals, ``OrderEvent``s with Decimal prices and
quantities, the next ``seq``). The cost of the feed per command is the
difference of the two cases' ``extra_info["ns_per_command_median"]``; with no
subscriber the engine records nothing at all (the instruction gate,
``report.py instructions``, keeps that path as it was).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import workloads as wl
from scenarios import API_RAW, EngineScenario, run_stream

ROUNDS = 8  # timed batches per case, after one warm-up batch


@pytest.mark.parametrize("subscribers", [0, 1])
def test_market_data_cost(benchmark: Any, backend: SimpleNamespace, subscribers: int) -> None:
    """10,000 mixed commands a round, with no market data subscriber or with one that keeps the updates."""
    stream = wl.mixed_stream(1 if benchmark.disabled else ROUNDS + 1)
    scenario = EngineScenario(backend, API_RAW, stream, settle_gc=not benchmark.disabled)
    updates: list[Any] = []
    if subscribers:
        scenario.engine.subscribe(updates.append)
    setup = scenario.pedantic_setup

    def fresh_batch() -> tuple[tuple[Any], dict[str, Any]]:
        updates.clear()  # untimed: the subscriber's list does not grow across rounds
        return setup()

    scenario.pedantic_setup = fresh_batch  # type: ignore[method-assign]
    benchmark.group = "market-data"
    benchmark.extra_info.update(
        backend=backend.name, subscribers=subscribers, commands_per_round=len(stream.batches[0].commands)
    )
    run_stream(benchmark, scenario)
    if subscribers:
        # the last round's updates: numbered without a gap, one per command that changed the book
        assert updates, "a subscriber got no update"
        seqs = [u.seq for u in updates]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert scenario.engine.market_snapshot(wl.SYMBOL).seq == seqs[-1]
        benchmark.extra_info["updates_per_round"] = len(updates)
        benchmark.extra_info["events_per_round"] = sum(len(u.orders) for u in updates)
    else:
        assert scenario.engine.market_snapshot(wl.SYMBOL).seq == 0
