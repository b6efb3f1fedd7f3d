"""What market data costs the engine: the mixed flow with no subscriber and with one.

The flow is ``test_engine.py``'s mixed one (batches of 10,000 raw commands on
the 200,000-order book: 60% new limit orders, a third of them marketable, 30%
cancels, 10% amends), run by ``EngineScenario``. With ``subscribers=1`` a
subscriber that checks each update's ``seq`` and drops it is attached: every
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


class Subscriber:
    """Checks that ``seq`` has no gap and counts the updates; keeps none (a host would send them on)."""

    def __init__(self) -> None:
        self.last = 0
        self.count = 0

    def __call__(self, update: Any) -> None:
        if update.seq != self.last + 1:
            raise AssertionError(f"update {update.seq} after {self.last}")
        self.last = update.seq
        self.count += 1


@pytest.mark.parametrize("subscribers", [0, 1])
def test_market_data_cost(benchmark: Any, backend: SimpleNamespace, subscribers: int) -> None:
    """10,000 mixed commands a round, with no market data subscriber or with one."""
    stream = wl.mixed_stream(1 if benchmark.disabled else ROUNDS + 1)
    scenario = EngineScenario(backend, API_RAW, stream, settle_gc=not benchmark.disabled)
    subscriber = Subscriber()
    if subscribers:
        scenario.engine.subscribe(subscriber)
    benchmark.group = "market-data"
    benchmark.extra_info.update(
        backend=backend.name, subscribers=subscribers, commands_per_round=len(stream.batches[0].commands)
    )
    run_stream(benchmark, scenario)  # checks the book against the reference run of the flow
    seq = scenario.engine.market_snapshot(wl.SYMBOL).seq
    if subscribers:
        # a subscriber failing raises nothing in the engine (it is logged): check what it saw here
        assert subscriber.count == seq == subscriber.last > 0
        benchmark.extra_info["updates_per_round"] = round(subscriber.count / scenario.batches)
    else:
        assert seq == 0
