"""``tradebook db``: migrate, status, refresh-stats and health on SQLite and PostgreSQL, and its errors.

Driven in-process through :func:`tradebook.cli.main`. The PostgreSQL cases use
a schema of their own and drop it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from _stores import drop_schema, new_schema_name, postgres_dsn_or_skip

import tradebook.oms
from tradebook import cli
from tradebook.cli.db import POSTGRES_EXTRA_HINT, parse_database_url

ACTIONS = ("migrate", "status", "refresh-stats", "health")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``tradebook *argv``."""
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(autouse=True)
def _no_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEBOOK_DATABASE_URL", raising=False)


@pytest.fixture
def pg() -> Iterator[tuple[str, str]]:
    dsn = postgres_dsn_or_skip()
    schema = new_schema_name()
    try:
        yield dsn, schema
    finally:
        asyncio.run(drop_schema(dsn, schema))


def sqlite_versions() -> list[int]:
    from tradebook.oms import sqlite

    return [version for version, _, _ in sqlite.migration_status("/nonexistent/never/created.db")]


def postgres_versions() -> list[int]:
    from tradebook.oms import postgres

    return [m.version for m in postgres.migrations()]


# -- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "location"),
    [
        ("postgresql://app@db:5432/trading", "postgresql", "postgresql://app@db:5432/trading"),
        ("postgres://app@db/trading", "postgresql", "postgres://app@db/trading"),
        ("PostgreSQL://app@db/trading", "postgresql", "PostgreSQL://app@db/trading"),
        ("sqlite:///data/tb.db", "sqlite", "data/tb.db"),
        ("sqlite:////var/lib/tb.db", "sqlite", "/var/lib/tb.db"),
        ("data/tb.db", "sqlite", "data/tb.db"),
        ("/var/lib/tb.db", "sqlite", "/var/lib/tb.db"),
        ("memory", "memory", ""),
        ("memory://", "memory", ""),
    ],
)
def test_database_urls(url: str, kind: str, location: str) -> None:
    target = parse_database_url(url)
    assert (target.kind, target.location) == (kind, location)
    assert target.schema == ("public" if kind == "postgresql" else None)


@pytest.mark.parametrize("url", ["", "  ", "mysql://root@db/x", "sqlite://", "sqlite:///", "sqlite://host/x.db"])
def test_bad_database_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_database_url(url)


def test_serve_and_db_read_urls_alike() -> None:
    """One parser: an unknown scheme is an error for serve too, never a SQLite file of that name."""
    from tradebook.http import ConfigError, ServerConfig

    with pytest.raises(ConfigError, match="unsupported database URL scheme 'mysql'"):
        ServerConfig(database="mysql://root@db/x")
    config = ServerConfig(database="postgres://app@db/x", schema="tb")
    assert config.database_target == parse_database_url("postgres://app@db/x", "tb")
    assert ServerConfig(database="memory").database_target.kind == "memory"
    assert parse_database_url("memory").display.startswith("memory")


def test_the_memory_store_has_nothing_to_maintain(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "db", "status", "--database", "memory")
    assert (status, out) == (2, "")
    assert "memory store keeps nothing" in err


async def test_open_stores_opens_each_kind(tmp_path: Path) -> None:
    from tradebook.oms.stores import open_stores

    for url in ("memory", str(tmp_path / "a.db"), f"sqlite:///{tmp_path}/b.db"):
        repository, wallet = await open_stores(url)
        await wallet.deposit("alice", "USD", 5)
        assert (await wallet.balances("alice"))["USD"].available == 5
        await wallet.close()
        await repository.close()
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()


def test_a_password_is_never_shown() -> None:
    target = parse_database_url("postgresql://app:s3cret@db/trading", "tb")
    assert "s3cret" not in target.display
    assert target.display == 'PostgreSQL postgresql://app:***@db/trading, schema "tb"'


def test_schema_is_for_postgresql_only() -> None:
    with pytest.raises(ValueError, match="PostgreSQL only"):
        parse_database_url("x.db", "tb")


# -- help and usage -------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_has_complete_help(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["db", action, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: tradebook db {action}" in out
    assert "--database URL" in out and "--schema NAME" in out
    assert ("--json" in out) == (action in ("status", "health"))
    if action in ("refresh-stats", "health"):
        assert "PostgreSQL only" in out


def test_db_help_lists_the_actions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["db", "--help"])
    out = capsys.readouterr().out
    for action in ACTIONS:
        assert action in out
    assert "TRADEBOOK_DATABASE_URL" in out


def test_db_without_an_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["db"])
    assert exited.value.code == 2


@pytest.mark.parametrize("action", ACTIONS)
def test_a_database_is_required(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "db", action)
    assert status == 2
    assert err == f"tradebook db {action}: error: --database is required (or set TRADEBOOK_DATABASE_URL)\n"


def test_unsupported_urls_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "db", "status", "--database", "mysql://root@db/x")
    assert status == 2
    assert "unsupported database URL scheme 'mysql'" in err
    status, _, err = run(capsys, "db", "status", "--database", "x.db", "--schema", "tb")
    assert status == 2
    assert "PostgreSQL only" in err


def test_a_missing_postgres_extra_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes "import psycopg" fail
    monkeypatch.delitem(sys.modules, "tradebook.oms.postgres", raising=False)
    monkeypatch.delattr(tradebook.oms, "postgres", raising=False)
    for action in ACTIONS:
        status, out, err = run(capsys, "db", action, "--database", "postgresql://nobody@127.0.0.1:1/none")
        assert status == 1
        assert err == f"tradebook db {action}: error: {POSTGRES_EXTRA_HINT}\n"
        assert 'pip install "tradebook[postgres]"' in err
        assert out == ""


# -- SQLite -----------------------------------------------------------------------------------


def test_sqlite_migrate_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tb.db"
    versions = sqlite_versions()
    status, out, _ = run(capsys, "db", "status", "--database", str(path))
    assert status == 0
    assert out.count("not applied") == len(versions)
    assert f"0 of {len(versions)} applied; {len(versions)} pending: run `tradebook db migrate`" in out
    assert not path.exists()  # status changes nothing

    status, out, _ = run(capsys, "db", "migrate", "--database", f"sqlite:///{path}")  # absolute: four slashes
    assert status == 0
    assert out.splitlines()[0] == f"SQLite {path}"
    assert f"applied {len(versions)} migration" in out
    status, out, _ = run(capsys, "db", "migrate", "--database", str(path))
    assert status == 0
    assert "already up to date" in out

    status, out, _ = run(capsys, "db", "status", "--database", str(path))
    assert status == 0
    assert "not applied" not in out
    assert f"{len(versions)} of {len(versions)} applied; up to date" in out

    status, out, _ = run(capsys, "db", "status", "--database", str(path), "--json")
    assert status == 0
    data = json.loads(out)
    assert data["backend"] == "sqlite"
    assert data["schema"] is None
    assert [m["version"] for m in data["migrations"]] == versions
    assert all(datetime.fromisoformat(m["applied_at"]) for m in data["migrations"])
    assert data["pending"] == [] and data["up_to_date"] is True


def test_sqlite_relative_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, _ = run(capsys, "db", "migrate", "--database", "sqlite:///rel.db")
    assert status == 0
    assert (tmp_path / "rel.db").exists()


def test_the_database_may_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEBOOK_DATABASE_URL", str(tmp_path / "env.db"))
    status, _, _ = run(capsys, "db", "migrate")
    assert status == 0
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize("action", ["refresh-stats", "health"])
def test_postgres_only_actions_refuse_sqlite(action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tb.db"
    status, out, err = run(capsys, "db", action, "--database", str(path))
    assert status == 2
    assert out == ""
    assert err.startswith(f"tradebook db {action}: error: {action} is a PostgreSQL feature")
    assert err.endswith(f"{path} is an SQLite database\n")
    assert not path.exists()


def test_sqlite_failures_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_db = tmp_path / "junk.db"
    not_a_db.write_bytes(b"this is not an SQLite file, not at all" * 100)
    for action in ("migrate", "status"):
        status, _, err = run(capsys, "db", action, "--database", str(not_a_db))
        assert status == 1
        assert err.startswith(f"tradebook db {action}: error: ")
        assert err.count("\n") == 1


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_migrate_and_status(pg: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    dsn, schema = pg
    versions = postgres_versions()
    status, out, _ = run(capsys, "db", "status", "--database", dsn, "--schema", schema)
    assert status == 0
    assert out.count("not applied") == len(versions)

    status, out, _ = run(capsys, "db", "migrate", "--database", dsn, "--schema", schema)
    assert status == 0
    assert out.splitlines()[0] == f'PostgreSQL {dsn}, schema "{schema}"'
    assert out.splitlines()[1].startswith(f"applied {len(versions)} migrations: 0001 ")
    status, out, _ = run(capsys, "db", "migrate", "--database", dsn, "--schema", schema)
    assert "already up to date" in out

    status, out, _ = run(capsys, "db", "status", "--database", dsn, "--schema", schema)
    assert status == 0
    lines = out.splitlines()
    assert lines[1].split() == ["version", "name", "applied", "at"]
    assert [line.split()[0] for line in lines[2 : 2 + len(versions)]] == [f"{v:04d}" for v in versions]
    assert lines[-1] == f"{len(versions)} of {len(versions)} applied; up to date"

    status, out, _ = run(capsys, "db", "status", "--database", dsn, "--schema", schema, "--json")
    data = json.loads(out)
    assert (data["backend"], data["schema"], data["up_to_date"]) == ("postgresql", schema, True)
    assert [m["version"] for m in data["migrations"]] == versions
    assert all(datetime.fromisoformat(m["applied_at"]).utcoffset().total_seconds() == 0 for m in data["migrations"])


@pytest.mark.postgres
def test_postgres_refresh_stats(pg: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    import psycopg
    from psycopg import sql

    dsn, schema = pg
    status, out, err = run(capsys, "db", "refresh-stats", "--database", dsn, "--schema", schema)
    assert status == 1
    assert err.count("\n") == 1 and "tradebook db migrate" in err
    run(capsys, "db", "migrate", "--database", dsn, "--schema", schema)
    status, out, _ = run(capsys, "db", "refresh-stats", "--database", dsn, "--schema", schema)
    assert status == 0
    assert out.splitlines()[-1] == "refreshed trading_stats_24h: 0 symbols traded in the last 24 hours"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, symbol, price, quantity, buy_order_id, sell_order_id, buyer_id, seller_id,"
                " taker_side, created_at) VALUES (1, 'BTC/USD', 10, 1, 1, 2, 'a', 'b', 'BUY', now())"
            ).format(sql.Identifier(schema, "trades"))
        )
    status, out, _ = run(capsys, "db", "refresh-stats", "--database", dsn, "--schema", schema)
    assert out.splitlines()[-1] == "refreshed trading_stats_24h: 1 symbol traded in the last 24 hours"


@pytest.mark.postgres
def test_postgres_health(pg: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    dsn, schema = pg
    run(capsys, "db", "migrate", "--database", dsn, "--schema", schema)
    status, out, _ = run(capsys, "db", "health", "--database", dsn, "--schema", schema)
    assert status == 0
    assert out.startswith(f'PostgreSQL {dsn}, schema "{schema}"; server ')
    for heading in (
        "indexes (scans",
        "unused indexes (never scanned, not unique): ",
        "tables (dead rows",
        "slowest statements",
    ):
        assert heading in out
    assert "orders_user_open_idx" in out
    assert "orders.orders_user_open_idx" in out  # unused: nothing has run yet

    status, out, _ = run(capsys, "db", "health", "--database", dsn, "--schema", schema, "--json", "--top", "3")
    assert status == 0
    data = json.loads(out)
    assert data["schema"] == schema and data["backend"] == "postgresql"
    assert {i["index"] for i in data["indexes"]} >= {"orders_pkey", "orders_user_open_idx", "trades_symbol_idx"}
    assert "orders.orders_user_open_idx" in data["unused_indexes"]
    assert {t["table"] for t in data["tables"]} >= {"orders", "trades", "wallet_balances"}
    assert {"live_rows", "dead_rows", "dead_ratio", "table_bytes", "total_bytes"} <= set(data["tables"][0])
    assert data["slow_statements"] is None or isinstance(data["slow_statements"], list)
    assert data["slow_statements"] is not None or "pg_stat_statements" in data["statements_note"]


@pytest.mark.parametrize("action", ACTIONS)
def test_postgres_unreachable_is_one_line(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("psycopg")
    dsn = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2"
    status, out, err = run(capsys, "db", action, "--database", dsn)
    assert status == 1
    assert out == ""
    assert err.startswith(f"tradebook db {action}: error: ")
    assert "127.0.0.1" in err and err.count("\n") == 1


@pytest.mark.postgres
def test_postgres_refusals_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    dsn = postgres_dsn_or_skip()
    # a schema name PostgreSQL reserves: refused by the server, not a connection failure
    status, _, err = run(capsys, "db", "migrate", "--database", dsn, "--schema", "pg_tbtest_reserved")
    assert status == 1
    assert err.startswith("tradebook db migrate: error: ReservedName: ")
    assert err.count("\n") == 1


def test_negative_top_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["db", "health", "--database", "postgresql://x@y/z", "--top", "-1"])
    assert exited.value.code == 2


def test_health_text_lists_the_slowest_statements(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres = pytest.importorskip("tradebook.oms.postgres")
    long_query = "SELECT " + ", ".join(f"column_{i}" for i in range(40)) + " FROM orders"
    report = postgres.HealthReport(
        schema="tb",
        server_version="15.0",
        indexes=[postgres.IndexUsage("orders", "orders_pkey", 3, 8192, True)],
        unused_indexes=[],
        tables=[postgres.TableHealth("orders", 10, 0, 0.0, 8192, 16384, None, None)],
        slow_statements=[
            postgres.SlowStatement("SELECT\n  1", 5, 12.5, 62.5, 5),
            postgres.SlowStatement(long_query, 1, 0.25, 0.25, 0),
        ],
        statements_note=None,
    )

    async def fake_report(dsn: str, schema: str, *, statements: int) -> object:
        assert (schema, statements) == ("tb", 2)
        return report

    monkeypatch.setattr(postgres, "health_report", fake_report)
    status, out, _ = run(capsys, "db", "health", "--database", "postgresql://x@y/z", "--schema", "tb", "--top", "2")
    assert status == 0
    assert "unused indexes (never scanned, not unique): none" in out
    assert "slowest statements (mean time, pg_stat_statements):" in out
    assert "12.500 ms x 5" in out and "SELECT 1\n" in out  # whitespace folded
    assert "column_0" in out and out.count("...") == 1  # long statements shortened

    report.slow_statements.clear()
    status, out, _ = run(capsys, "db", "health", "--database", "postgresql://x@y/z", "--schema", "tb", "--top", "2")
    assert "slowest statements: none recorded yet" in out


def test_the_examples_in_the_url_module_run() -> None:
    import doctest

    from tradebook.oms import stores

    assert doctest.testmod(stores).failed == 0
