"""Smoke run of ``report.py ws`` (``ws_load.py``): a real ``tradebook serve``, few subscribers, short phases.

CI runs the benchmarks untimed (``pytest benchmarks --benchmark-disable``); this
checks the WebSocket load harness end to end: every subscriber receives every
update of the symbol in order with no gap, its trades match the updates that
had trades, and the latencies were measured. Throughput and latency targets are
not checked here (``report.py ws`` reports them on a quiet machine).
"""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("websockets")
pytest.importorskip("uvicorn")

import ws_load


def test_ws_load_smoke() -> None:
    parser = argparse.ArgumentParser()
    ws_load.add_arguments(parser)
    args = parser.parse_args(["--subscribers", "20", "--duration", "1.5", "--warmup", "0.3", "--rounds", "1"])
    report = ws_load.measure(args)
    assert report["errors"] == []
    with_subscribers = [p for p in report["phases"] if p["subscribers"]]
    assert len(with_subscribers) == 1 and len(report["phases"]) == 2
    phase = with_subscribers[0]
    assert phase["updates"] > 0 and phase["trade_updates"] > 0
    assert phase["delivered"] >= 20 * phase["updates"]  # every depth update reached every subscriber
    assert report["samples"] > 0 and report["p50_ms"] > 0
    assert report["rate_without"] > 0 and report["rate_with"] > 0
