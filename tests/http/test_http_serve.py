"""``tradebook serve`` and ``tradebook token``: the app it builds, its logs, its CLI, and a real server process."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from _http_support import SECRET, assert_error, drop_schema, new_schema_name, postgres_dsn_or_skip

from tradebook.cli import main
from tradebook.cli.serve import parse_ttl
from tradebook.http import ServerConfig, build_app, verify_token
from tradebook.http.server import JsonFormatter, configure_logging, redact, serve
from tradebook.http.settings import parse_account, parse_instrument

ROOT = Path(__file__).resolve().parents[2]
ORDER = {"symbol": "BTC/USDT", "side": "BUY", "quantity": "0.010", "price": "100.00"}


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEBOOK_AUTH_SECRET", SECRET)


@asynccontextmanager
async def running(config: ServerConfig) -> AsyncIterator[httpx.AsyncClient]:
    """The app ``tradebook serve`` would run, started (its lifespan), with a client."""
    app = build_app(config)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def bearer(user: str) -> dict[str, str]:
    from tradebook.http import issue_token

    return {"Authorization": f"Bearer {issue_token(user, SECRET)}"}


async def test_serve_on_sqlite_credits_demo_accounts_once_and_recovers_on_restart(
    tmp_path: Path, secret_env: None
) -> None:
    config = ServerConfig(
        database=str(tmp_path / "serve.db"),
        instruments=(parse_instrument("BTC/USDT:0.01:0.001"),),
        accounts=(parse_account("alice:USDT=1000"),),
    )
    async with running(config) as client:
        assert (await client.get("/health")).json()["wallet"] == "closed"
        placed = await client.post("/api/v1/orders", json=ORDER, headers=bearer("alice"))
        assert placed.status_code == 201
    async with running(config) as client:  # a restart: the order is back, the deposit is not repeated
        orders = (await client.get("/api/v1/orders", headers=bearer("alice"))).json()["orders"]
        assert [o["id"] for o in orders] == [placed.json()["id"]] and orders[0]["status"] == "OPEN"
        usdt = (await client.get("/api/v1/balances", headers=bearer("alice"))).json()["balances"][0]
        assert (usdt["available"], usdt["reserved"]) == ("999.00000", "1.00000")
        depth = (await client.get("/api/v1/depth?symbol=BTC/USDT", headers=bearer("alice"))).json()
        assert depth["bids"] == [{"price": "100.00", "quantity": "0.010", "orders": 1}]


async def test_serve_on_memory_with_trusted_headers_and_no_breaker(tmp_path: Path) -> None:
    config = ServerConfig(
        database="memory",
        auth_mode="trusted-header",
        user_header="X-Gateway-User",
        wallet_breaker=False,
        metrics=False,
        accounts=(parse_account("alice:USDT=1000"),),
    )
    async with running(config) as client:
        assert (await client.get("/health")).json()["wallet"] is None
        placed = await client.post("/api/v1/orders", json=ORDER, headers={"X-Gateway-User": "alice"})
        assert placed.status_code == 201
        assert_error(await client.get("/metrics"), 404, "not_found")


async def test_serve_on_postgresql(secret_env: None) -> None:
    dsn = postgres_dsn_or_skip()
    schema = new_schema_name()
    config = ServerConfig(database=dsn, schema=schema, accounts=(parse_account("alice:USDT=1000"),))
    try:
        async with running(config) as client:
            placed = await client.post("/api/v1/orders", json=ORDER, headers=bearer("alice"))
            assert placed.status_code == 201, placed.text
        async with running(config) as client:
            orders = (await client.get("/api/v1/orders", headers=bearer("alice"))).json()["orders"]
            assert [o["id"] for o in orders] == [placed.json()["id"]]
    finally:
        await drop_schema(dsn, schema)


async def test_serve_without_the_postgres_extra_says_so(monkeypatch: pytest.MonkeyPatch, secret_env: None) -> None:
    monkeypatch.setitem(sys.modules, "tradebook.oms.postgres", None)
    app = build_app(ServerConfig(database="postgresql://nowhere/db"))
    with pytest.raises(ImportError, match=r'pip install "tradebook\[postgres\]"'):
        async with app.router.lifespan_context(app):
            pass


async def test_a_store_that_fails_to_open_closes_what_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret_env: None
) -> None:
    from tradebook.oms import sqlite

    closed: list[str] = []
    original = sqlite.SQLiteOrderRepository.close

    async def close(self: Any) -> None:
        closed.append("repository")
        await original(self)

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("no wallet today")

    monkeypatch.setattr(sqlite.SQLiteOrderRepository, "close", close)
    monkeypatch.setattr(sqlite.SQLiteWallet, "open", refuse)
    app = build_app(ServerConfig(database=str(tmp_path / "x.db")))
    with pytest.raises(OSError, match="no wallet today"):
        async with app.router.lifespan_context(app):
            pass
    assert closed == ["repository"]


def test_json_logs() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream)
    try:
        log = logging.getLogger("tradebook.http")
        log.info("hello %s", "world", extra={"user_id": "alice", "count": 3})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        logging.getLogger("uvicorn.error").warning("from uvicorn", extra={"color_message": "\x1b[1mx"})
    finally:
        for name in ("tradebook", "uvicorn"):
            logging.getLogger(name).handlers = []
            logging.getLogger(name).propagate = True
            logging.getLogger(name).setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "hello world" and lines[0]["level"] == "info"
    assert (lines[0]["user_id"], lines[0]["count"], lines[0]["logger"]) == ("alice", 3, "tradebook.http")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", lines[0]["ts"])
    assert "ValueError: boom" in lines[1]["exc"]
    assert lines[2]["logger"] == "uvicorn.error" and "color_message" not in lines[2]
    record = logging.LogRecord("x", logging.INFO, "", 0, "plain", None, None)
    assert json.loads(JsonFormatter().format(record))["message"] == "plain"


def test_redact() -> None:
    assert redact("postgresql://trader:hunter2@db:5432/x") == "postgresql://trader:***@db:5432/x"
    assert redact("postgresql://trader@db/x") == "postgresql://trader@db/x"
    assert redact("tradebook.db") == "tradebook.db"


def test_serve_runs_uvicorn_with_the_configuration(monkeypatch: pytest.MonkeyPatch, secret_env: None) -> None:
    import uvicorn

    seen: dict[str, Any] = {}

    def fake_run(self: Any) -> None:
        seen.update(host=self.config.host, port=self.config.port, timeout=self.config.timeout_graceful_shutdown)
        self.started = seen["started"] = bool(seen.get("start", True))

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    try:
        assert serve(ServerConfig(host="127.0.0.2", port=0, shutdown_timeout=2.5, log_level="warning")) == 0
        assert seen == {"host": "127.0.0.2", "port": 0, "timeout": 3, "started": True}
        seen["start"] = False
        assert serve(ServerConfig()) == 1  # uvicorn gave up (say, the port is taken)
    finally:
        for name in ("tradebook", "uvicorn"):
            logging.getLogger(name).handlers = []
            logging.getLogger(name).propagate = True
            logging.getLogger(name).setLevel(logging.NOTSET)


@contextmanager
def captured_serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ServerConfig]]:
    import tradebook.http

    configs: list[ServerConfig] = []
    monkeypatch.setattr(tradebook.http, "serve", lambda config: configs.append(config) or 0)
    yield configs


def test_the_serve_command_merges_file_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret_env: None
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[server]\nport = 9000\nlog_level = "debug"\n[[accounts]]\nuser = "alice"\nbalances = { USDT = "5" }\n'
        '[[instruments]]\nsymbol = "X/Y"\ntick_size = "1"\nlot_size = "1"\n'
    )
    with captured_serve(monkeypatch) as configs:
        argv = ["serve", "--config", str(path), "--port", "9001", "--database", "memory", "--no-metrics"]
        argv += ["--instrument", "BTC/USDT:0.01:0.001", "--account", "bob:BTC=1", "--no-access-log"]
        argv += ["--no-wallet-breaker", "--shutdown-timeout", "3", "--max-body-bytes", "2048", "--schema", "s"]
        assert main(argv) == 0
        assert main(["serve"]) == 0
    merged, plain = configs
    assert (merged.port, merged.log_level, merged.database, merged.schema) == (9001, "debug", "memory", "s")
    assert not merged.metrics and not merged.access_log and not merged.wallet_breaker
    assert (merged.shutdown_timeout, merged.max_body_bytes) == (3, 2048)
    assert [i.symbol for i in merged.instruments] == ["BTC/USDT"]  # flags replace the file's instruments
    assert [a.user_id for a in merged.accounts] == ["alice", "bob"]  # and add to its accounts
    assert plain == ServerConfig()


def test_the_serve_command_refuses_bad_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TRADEBOOK_AUTH_SECRET", raising=False)
    with captured_serve(monkeypatch) as configs:
        assert main(["serve"]) == 2
        assert "set TRADEBOOK_AUTH_SECRET" in capsys.readouterr().err
        assert main(["serve", "--auth", "trusted-header", "--port", "99999"]) == 2
        assert "port must be an integer" in capsys.readouterr().err
        assert main(["serve", "--auth", "trusted-header", "--instrument", "BTC"]) == 2
        assert "SYMBOL:TICK_SIZE:LOT_SIZE" in capsys.readouterr().err
        assert main(["serve", "--auth", "trusted-header", "--config", str(tmp_path / "none.toml")]) == 2
        assert "cannot read" in capsys.readouterr().err
        assert main(["serve", "--auth", "trusted-header"]) == 0
    assert len(configs) == 1


def test_serve_help_is_complete(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--config",
        "--host",
        "--port",
        "--database",
        "--schema",
        "--instrument",
        "--account",
        "--auth",
        "--secret-env",
        "--user-header",
        "--max-body-bytes",
        "--no-metrics",
        "--no-access-log",
        "--no-wallet-breaker",
        "--log-level",
        "--shutdown-timeout",
        "TRADEBOOK_AUTH_SECRET",
        "[[instruments]]",
        "[[accounts]]",
        "SIGTERM",
        "tradebook token",
    ):
        assert option in text, option


def test_the_token_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADEBOOK_AUTH_SECRET", SECRET)
    assert main(["token", "alice", "--ttl", "1h"]) == 0
    token = capsys.readouterr().out.strip()
    assert verify_token(token, SECRET) == "alice"
    assert int(token.split(".")[2]) - time.time() == pytest.approx(3600, abs=5)
    monkeypatch.setenv("OTHER", SECRET[::-1])
    assert main(["token", "bob", "--secret-env", "OTHER"]) == 0
    assert verify_token(capsys.readouterr().out.strip(), SECRET[::-1]) == "bob"
    assert main(["token", "bad\nuser"]) == 2
    assert "user id" in capsys.readouterr().err
    monkeypatch.delenv("TRADEBOOK_AUTH_SECRET")
    assert main(["token", "alice"]) == 2
    assert "set TRADEBOOK_AUTH_SECRET" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["token", "alice", "--ttl", "soon"])
    assert "positive duration" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000)])
def test_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


# -- the real thing -------------------------------------------------------------------------------------------------


class Server:
    """``python -m tradebook serve`` in a subprocess on a free loopback port, its log in a file."""

    def __init__(self, tmp_path: Path, database: Path, name: str) -> None:
        self.log_path = tmp_path / f"{name}.log"
        env = {**os.environ, "TRADEBOOK_AUTH_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "tradebook", "serve", "--database", str(database), "--port", "0"]
        command += ["--account", "alice:USDT=100000", "--account", "bob:BTC=10", "--shutdown-timeout", "20"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while True:
            match = re.search(r"running on http://127\.0\.0\.1:(\d+)", self.log_path.read_text())
            if match:
                self.url = f"http://127.0.0.1:{match.group(1)}"
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"the server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


def cli_token(user: str) -> str:
    env = {**os.environ, "TRADEBOOK_AUTH_SECRET": SECRET}
    result = subprocess.run(
        [sys.executable, "-m", "tradebook", "token", user], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout.strip()


async def test_a_real_server_serves_then_shuts_down_gracefully_under_load(tmp_path: Path) -> None:
    database = tmp_path / "real.db"
    server = Server(tmp_path, database, "first")
    alice = {"Authorization": f"Bearer {cli_token('alice')}"}
    bob = {"Authorization": f"Bearer {cli_token('bob')}"}
    try:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
            assert (await client.get("/health")).json()["status"] == "ok"
            sell = await client.post(
                "/api/v1/orders",
                json={"symbol": "BTC/USDT", "side": "SELL", "quantity": "1.000", "price": "100.00"},
                headers=bob,
            )
            assert sell.status_code == 201
            buy = await client.post("/api/v1/orders", json={**ORDER, "client_order_id": "warm"}, headers=alice)
            assert buy.status_code == 201 and buy.json()["status"] == "FILLED"
            assert_error(await client.get(f"/api/v1/orders/{sell.json()['id']}", headers=alice), 404, "order_not_found")
            assert "tradebook_trades_total" in (await client.get("/metrics")).text

            # A burst of placements; SIGTERM as soon as the first is answered. Every one answered 201 must be
            # stored, nothing else may be; the server finishes what it took and exits.
            async def place(i: int) -> str | None:
                body = {**ORDER, "price": "90.00", "client_order_id": f"burst-{i}"}
                try:
                    response = await client.post("/api/v1/orders", json=body, headers=alice)
                except httpx.TransportError:
                    return None  # refused: the server was already closing
                assert response.status_code == 201, response.text
                if not stopped.is_set():
                    stopped.set()
                    server.process.send_signal(signal.SIGTERM)
                return body["client_order_id"]

            stopped = asyncio.Event()
            results = await asyncio.gather(*(place(i) for i in range(60)))
        acknowledged = {r for r in results if r is not None}
        print(f"{len(acknowledged)} of {len(results)} placements answered before the server closed")
        assert acknowledged
        assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    finally:
        server.stop()
    logs = server.logs()
    messages = [entry["message"] for entry in logs]
    assert "order service closed" in messages and "Application shutdown complete." in messages
    assert any(m.startswith("POST /api/v1/orders 201") for m in messages)  # the access log
    assert messages.index("order service closed") < messages.index("database closed")
    assert not [entry for entry in logs if entry["level"] in ("error", "critical")]

    restarted = Server(tmp_path, database, "second")
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as client:
            page = await client.get("/api/v1/orders", params={"limit": 1000}, headers=alice)
            stored = {o["client_order_id"] for o in page.json()["orders"]} - {"warm"}
            assert stored == acknowledged
            assert all(o["status"] == "OPEN" for o in page.json()["orders"] if o["client_order_id"] != "warm")
            balances = {b["asset"]: b for b in (await client.get("/api/v1/balances", headers=alice)).json()["balances"]}
            assert Decimal(balances["USDT"]["reserved"]) == Decimal("0.9") * len(acknowledged)  # 0.010 x 90.00 each
    finally:
        assert restarted.stop() in (0, -signal.SIGTERM)
    started = [entry for entry in restarted.logs() if entry["message"] == "order service started"]
    assert started[0]["orders_restored"] == {"BTC/USDT": len(acknowledged) + 1}  # and bob's partly filled sell
