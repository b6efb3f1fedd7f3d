"""The Grafana dashboard (deploy/grafana/tradebook.json) is importable and asks only for metrics the app exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from _http_support import SwitchableWallet, close_api, open_api
from prometheus_client.parser import text_string_to_metric_families

from tradebook.oms import CircuitBreakerWallet

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tradebook.json"


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return found


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "tradebook-oms" and dashboard["title"] == "tradebook"
    assert dashboard["id"] is None  # importable: Grafana assigns its own
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["symbol"]["includeAll"] and variables["symbol"]["multi"]
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        mine = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all(t["expr"] and t["datasource"] == panel["datasource"] for t in panel["targets"])


async def test_every_metric_the_dashboard_asks_for_is_exported(tmp_path: Path) -> None:
    api, location = await open_api(
        "memory", tmp_path, wrap_wallet=lambda w: CircuitBreakerWallet(SwitchableWallet(w), failure_threshold=1)
    )
    try:
        await api.place("alice", side="SELL", quantity="1.000", price="100.00")
        order = await api.place("bob", side="BUY", quantity="0.500", price="99.00")
        await api.place("bob", side="BUY", quantity="0.100", price="100.00")
        await api.delete("bob", f"/api/v1/orders/{order['id']}")
        await api.place("carol", expect=422, side="BUY", quantity="999.000", price="99999.00")
        api.service.wallet.wallet.down = True
        await api.place("carol", expect=503, side="BUY", quantity="0.001", price="1.00")
        exposition = (await api.client.get("/metrics")).text
    finally:
        await close_api(api, location)
    exported = {s.name for family in text_string_to_metric_families(exposition) for s in family.samples}
    wanted = {
        name
        for panel in panels()
        for target in panel.get("targets", ())
        for name in re.findall(r"\btradebook_[a-z_]+\b", target["expr"])
    }
    wanted |= set(re.findall(r"\btradebook_[a-z_]+\b", json.dumps(json.loads(DASHBOARD.read_text())["templating"])))
    assert wanted and wanted <= exported, sorted(wanted - exported)
