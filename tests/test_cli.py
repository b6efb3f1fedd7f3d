"""The ``tradebook`` command line: ``demo``, ``info``, ``--version``, ``python -m tradebook``."""

from __future__ import annotations

import argparse
import os
import re
import runpy
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import tradebook
from tradebook import _book_py, _compat, cli
from tradebook.cli import info

SRC = str(Path(tradebook.__file__).resolve().parent.parent)
ROW = re.compile(r"^(ask|bid) +(\S+) +(\S+) +(\d+)$")


def ladder(out: str) -> tuple[list[tuple[Decimal, Decimal, int]], list[tuple[Decimal, Decimal, int]]]:
    """The ask and bid rows of a printed ladder, top to bottom."""
    rows: dict[str, list[tuple[Decimal, Decimal, int]]] = {"ask": [], "bid": []}
    for line in out.splitlines():
        m = ROW.match(line)
        if m:
            rows[m[1]].append((Decimal(m[2]), Decimal(m[3]), int(m[4])))
    return rows["ask"], rows["bid"]


def subprocess_env() -> dict[str, str]:
    """This environment, with the tradebook under test first on the child's path."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, *filter(None, [os.environ.get("PYTHONPATH")])]))


def run_demo(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["demo", *args]) == 0
    return capsys.readouterr().out


def test_demo_prints_ladder_backend_and_throughput(capsys):
    out = run_demo(capsys, "--orders", "3000", "--seed", "7", "--levels", "5")
    asks, bids = ladder(out)
    assert 0 < len(asks) <= 5
    assert 0 < len(bids) <= 5
    # asks above bids, both columns descending in price, the spread line between them
    prices = [p for p, _, _ in asks + bids]
    assert prices == sorted(prices, reverse=True)
    assert asks[-1][0] > bids[0][0]
    assert "-- spread " in out
    assert out.index("\nask ") < out.index("-- spread ") < out.index("\nbid ")
    assert f"backend: {tradebook.BACKEND}\n" in out
    assert re.search(r"^operations: 3,000 \(seed 7: ", out, re.M)
    assert re.search(r"^throughput: [\d,]+ ops/s", out, re.M)


def test_ladder_is_the_book_depth(capsys):
    out = run_demo(capsys, "--orders", "2000", "--seed", "3", "--levels", "4")
    inst = tradebook.Instrument("BTC/USDT", cli.TICK_SIZE, cli.LOT_SIZE)
    book = tradebook.OrderBook(inst)
    cli.replay(book, cli.generate_flow(2000, 3, inst.price_to_ticks(cli.MID_PRICE)))
    depth = book.depth(4)
    asks, bids = ladder(out)
    assert asks == [tuple(level) for level in reversed(depth.asks)]
    assert bids == [tuple(level) for level in depth.bids]


def test_same_seed_same_book_different_seed_different_book(capsys):
    first = ladder(run_demo(capsys, "--orders", "1500", "--seed", "11"))
    assert ladder(run_demo(capsys, "--orders", "1500", "--seed", "11")) == first
    assert ladder(run_demo(capsys, "--orders", "1500", "--seed", "12")) != first


def test_flow_is_valid_and_both_backends_agree(backend):
    """Every generated command is legal in sequence, and each backend ends with the same book."""
    inst = tradebook.Instrument("ETH/USDT", "0.01", "0.001")
    flow = cli.generate_flow(5000, 5, 300_000)
    kinds = {command[0] for command in flow}
    assert kinds == {cli.ADD, cli.CANCEL, cli.FILL, cli.AMEND_QTY, cli.AMEND_PRICE}
    book = backend.OrderBook(inst)
    cli.replay(book, flow)
    book._check()
    reference = _book_py.OrderBook(inst)
    cli.replay(reference, flow)
    assert book.depth_raw(1 << 30) == reference.depth_raw(1 << 30)
    assert len(book) == len(reference)


def test_one_sided_book_prints_a_ladder(capsys):
    out = run_demo(capsys, "--orders", "1", "--levels", "3")
    asks, bids = ladder(out)
    assert len(asks) + len(bids) == 1
    assert "-- a side is empty --" in out


def test_backend_info(capsys):
    out = run_demo(capsys, "--orders", "10", "--backend-info")
    assert out.startswith(f"backend: {tradebook.BACKEND}\ncore module: {tradebook.OrderBook.__module__} (")


def test_backend_info_explains_a_forced_fallback(capsys, monkeypatch):
    monkeypatch.setenv("TRADEBOOK_NO_EXTENSIONS", "1")
    assert cli.main(["info"]) == 0
    assert "TRADEBOOK_NO_EXTENSIONS='1' forces the pure-Python backend" in capsys.readouterr().out


@pytest.fixture
def fallback(monkeypatch):
    """Pretend the pure-Python backend was selected without TRADEBOOK_NO_EXTENSIONS."""
    monkeypatch.delenv("TRADEBOOK_NO_EXTENSIONS", raising=False)
    monkeypatch.setattr(info, "BACKEND", "python")
    return monkeypatch


def test_backend_info_explains_a_missing_compiled_core(fallback):
    fallback.setattr(_compat, "IMPORT_ERROR", ImportError("No module named 'tradebook._engine'"))
    assert cli.backend_lines()[-1] == (
        "compiled core unavailable: No module named 'tradebook._engine' (reinstall with a C compiler; see docs/backends.md)"
    )


def test_backend_info_on_another_interpreter(fallback):
    fallback.setattr(info.platform, "python_implementation", lambda: "PyPy")
    assert cli.backend_lines()[-1] == "compiled core unavailable: PyPy always uses the pure-Python backend"


def test_backend_info_without_a_recorded_reason(fallback):
    fallback.setattr(_compat, "IMPORT_ERROR", None)
    assert cli.backend_lines()[-1] == "compiled core unavailable: unknown"


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"tradebook {tradebook.__version__}\nbackend: {tradebook.BACKEND}\n")
    assert re.search(r"^python: 3\.\d+", out, re.M)
    assert "\nplatform: " in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"tradebook {tradebook.__version__}\n"


@pytest.mark.parametrize("argv", [["demo", "--help"], ["--help"]])
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tradebook")
    expected = (
        ["--orders", "--seed", "--symbol", "--levels", "--backend-info"] if argv[0] == "demo" else ["demo", "info"]
    )
    for word in expected:
        assert word in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["demo", "--orders", "0"],
        ["demo", "--orders", "many"],
        ["demo", "--levels", "-1"],
        ["demo", "--seed", "x"],
        ["demo", "--symbol", "BTCUSDT"],
        ["demo", "--unknown"],
        ["info", "extra"],
    ],
)
def test_bad_arguments_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_python_m_tradebook_runs_main(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tradebook", "demo", "--orders", "50"])
    monkeypatch.delitem(sys.modules, "tradebook.__main__", raising=False)
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("tradebook", run_name="__main__")
    assert exc.value.code == 0
    assert f"backend: {tradebook.BACKEND}" in capsys.readouterr().out


@pytest.mark.parametrize("forced", [False, True], ids=["selected", "no-extensions"])
def test_python_m_tradebook_subprocess(forced):
    env = subprocess_env()
    if forced:
        env["TRADEBOOK_NO_EXTENSIONS"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "tradebook", "demo", "--orders", "2000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    asks, bids = ladder(done.stdout)
    assert asks and bids
    # the child inherits this process's environment, so unforced it selects what we selected
    expected = "python" if forced else tradebook.BACKEND
    assert f"\nbackend: {expected}\n" in done.stdout


def test_subprocess_bad_arguments_exit_2():
    done = subprocess.run(
        [sys.executable, "-m", "tradebook", "demo", "--orders", "-3"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--orders" in done.stderr


def test_the_old_command_module_paths_still_import():
    """``tradebook.serve_cli`` and ``tradebook.oms.db_cli`` moved into ``tradebook.cli``; the old names stay."""
    from tradebook.cli import db, serve
    from tradebook.oms import db_cli
    from tradebook.serve_cli import add_server_commands, parse_ttl

    assert parse_ttl is serve.parse_ttl
    commands = argparse.ArgumentParser().add_subparsers()
    add_server_commands(commands)
    assert set(commands.choices) == {"serve", "token"}
    assert db_cli.parse_database_url is db.parse_database_url and db_cli.add_db_command is db.add_command
    assert db_cli.POSTGRES_EXTRA_HINT == db.POSTGRES_EXTRA_HINT
