"""docs/http.md: how to install what is not published yet, and every ``tradebook serve`` setting documented."""

from __future__ import annotations

import re
from pathlib import Path

from tradebook.cli import build_parser
from tradebook.http.settings import _SECTIONS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "http.md"


def _shell_lines() -> list[str]:
    text = PAGE.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines()]


def test_install_commands_work_from_a_checkout_or_a_wheel() -> None:
    lines = [line for line in _shell_lines() if line.startswith("pip install")]
    assert lines, "no install command"
    # tradebook is not on PyPI: no command may install it by name from there.
    assert not [line for line in lines if re.match(r"""pip install ["']?tradebook\b""", line)], lines
    assert any(line.startswith('pip install -e ".[server') for line in lines)
    assert any("dist/tradebook-" in line and ".whl" in line for line in lines)
    assert "once it is released" in PAGE.read_text().lower()


def test_every_serve_flag_and_file_key_is_documented() -> None:
    text = PAGE.read_text()
    serve = next(action.choices["serve"] for action in build_parser()._actions if getattr(action, "choices", None))
    flags = [opt for action in serve._actions for opt in action.option_strings if opt.startswith("--")]
    missing = [flag for flag in flags if flag != "--help" and f"`{flag}" not in text]
    assert not missing, missing
    keys = [key for keys in _SECTIONS.values() for key in keys]
    assert not [key for key in keys if not re.search(rf"^{key} = ", text, flags=re.MULTILINE)]
