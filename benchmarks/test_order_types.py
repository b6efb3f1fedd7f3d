"""What the new order types cost: a stop trigger and an iceberg refresh, each against its plain twin.

The four scenarios are the instruction gate's (``instructions.py``, ``_typed_op``),
timed here with pytest-benchmark, every backend, in one run:

* ``stop_trigger``: a ladder of asks, 2 lots a level, a waiting BUY stop at
  each level; each operation is a 1-lot IOC buy at the touch that prints,
  triggers the stop at that price, and the stop buys the level's other lot.
* ``stop_trigger_base``: the same ladder with no stops; each operation is a
  2-lot IOC buy at the touch (the same two trades).
* ``iceberg_refresh``: one iceberg showing 1 lot of a large total; each
  operation is a 1-lot IOC buy that uses the slice up, so the next slice is
  shown at the back of the level.
* ``iceberg_refresh_base``: plain 1-lot orders at that price; each operation
  is a 1-lot IOC buy that fills one of them.

The cost of the feature is the difference between a scenario and its twin
(``extra_info["ns_per_op"]``); ``python benchmarks/report.py instructions``
gives the same differences in instructions.
"""

from __future__ import annotations

import statistics
from types import SimpleNamespace
from typing import Any

import pytest

from instructions import TYPED_OPS, _typed_op
from tradebook import Instrument

OPS_PER_ROUND = 2_000
ROUNDS = 10


@pytest.mark.parametrize("op", TYPED_OPS)
def test_order_type_cost(benchmark: Any, backend: SimpleNamespace, op: str) -> None:
    inst = Instrument("X/USD", "1", "1")
    disabled = benchmark.disabled
    n = 200 if disabled else OPS_PER_ROUND
    engines: list[Any] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        engine, run, items = _typed_op(op, n, inst, backend.MatchingEngine, backend.Order)
        engines.append(engine)
        return (run, items), {}

    def body(run: Any, items: list[Any]) -> None:
        run(items)

    benchmark.pedantic(body, setup=setup, rounds=1 if disabled else ROUNDS, warmup_rounds=0 if disabled else 1)
    engine = engines[-1]
    book = engine.book()
    if op.startswith("stop_trigger"):
        # every level of the ladder is used up, and no stop is left waiting
        assert book.best_ask_raw is None
        assert engine.snapshot()["order_types"]["books"].get("X/USD", {}).get("stops", []) == []
    else:
        assert book.level_raw("SELL", 1_000_000) == (1, 1)  # the last lot of the iceberg, or of the plain orders
    if not disabled:
        benchmark.extra_info["ns_per_op"] = statistics.median(benchmark.stats.stats.data) / n * 1e9
