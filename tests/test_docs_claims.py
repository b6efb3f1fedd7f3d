"""The docs say what the code does: the command list, how SQLite runs, how to install.

Each test reads the pages under docs/ (and the code they describe) and fails when
they part ways.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tradebook import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HTTP_PAGE = DOCS / "http.md"  # the HTTP engineer's page: its install lines are checked separately


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_lines() -> list[str]:
    """``tradebook CMD`` and ``tradebook CMD ACTION`` for every command the parser knows."""
    found = []
    for name, sub in _subcommands(cli.build_parser()).items():
        found.append(f"tradebook {name}")
        found += [f"tradebook {name} {action}" for action in _subcommands(sub)]
    return found


def test_the_parser_has_the_commands_we_expect() -> None:
    """Guards the next test against a parser walk that finds nothing."""
    assert {"tradebook demo", "tradebook serve", "tradebook db migrate"} <= set(_command_lines())


@pytest.mark.parametrize("command", _command_lines())
def test_the_home_page_lists_every_command(command: str) -> None:
    section = (DOCS / "index.md").read_text().split("## The command line", 1)[1].split("\n## ", 1)[0]
    assert f"`{command}" in section, f"docs/index.md's command list lacks {command!r}"


# how SQLite runs: docs/orders.md used to say its blocking calls ran on a thread of their own
_SQLITE_OFF_LOOP = re.compile(r"(off the event loop|on a thread of their own|on a thread that owns)", re.IGNORECASE)


def test_no_page_says_sqlite_statements_run_off_the_event_loop() -> None:
    said = [
        f"{page.relative_to(ROOT)}: {line.strip()}"
        for page in _pages()
        for line in page.read_text().splitlines()
        if _SQLITE_OFF_LOOP.search(line)
    ]
    assert not said, (
        "SQLite statements run inline on the event loop (see tradebook/oms/sqlite/connection.py):\n" + "\n".join(said)
    )


@pytest.mark.parametrize("page", ["orders.md", "guides/adapters.md"])
def test_the_sqlite_pages_say_statements_run_inline_with_a_shared_writer(page: str) -> None:
    text = " ".join((DOCS / page).read_text().split())
    assert "inline, on the event loop's thread" in text
    assert "share one writing connection" in text


def test_the_sqlite_module_still_runs_statements_inline() -> None:
    """If the adapter moves its statements to a thread, the pages above must change too."""
    source = (ROOT / "src/tradebook/oms/sqlite/connection.py").read_text()
    assert "Statements run on the event loop's thread" in source


# how to install: tradebook is not published, so `pip install tradebook` only as what will work once it is
_FROM_INDEX = re.compile(r"""pip install\s+["']?tradebook\b""")


def _paragraphs(page: Path) -> list[str]:
    return re.split(r"\n\s*\n", page.read_text())


@pytest.mark.parametrize("page", [p.relative_to(DOCS).as_posix() for p in _pages() if p != HTTP_PAGE])
def test_install_from_the_index_is_offered_only_as_what_works_once_published(page: str) -> None:
    wrong = [
        para.strip()
        for para in _paragraphs(DOCS / page)
        if _FROM_INDEX.search(para)
        and not re.search(r"once (tradebook|it) is (published|released)|not on PyPI yet", para, flags=re.IGNORECASE)
    ]
    assert not wrong, f"{page} offers an install from PyPI, where tradebook is not yet:\n" + "\n---\n".join(wrong)


def test_the_quickstart_says_how_to_install_from_a_clone_and_from_a_wheel() -> None:
    install = (DOCS / "quickstart.md").read_text().split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "not on PyPI yet" in install
    assert re.search(r"^pip install \.\s", install, flags=re.MULTILINE)
    assert "python -m build --wheel" in install and "pip install dist/tradebook-*.whl" in install
