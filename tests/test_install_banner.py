"""An install that falls back to pure Python says so without ``pip -v``, on a terminal.

pip captures a build's stdout and stderr and shows them only when the build
fails or with ``-v``; setup.py also writes its banner to the controlling
terminal. The test installs a copy of the source with pip under ``script`` (a
pseudo-terminal) with ``TRADEBOOK_NO_EXTENSIONS=1`` (the quick path to the same
banner function as a failed compile) and reads what the terminal showed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BANNER = "TRADEBOOK_NO_EXTENSIONS is set"


def _source_copy(tmp_path: Path) -> Path:
    src = tmp_path / "src-copy"
    ignore = shutil.ignore_patterns("*.so", "*.c", "*.pyd", "__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "src", src / "src", ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    return src


def _pip_install(src: Path, target: Path) -> list[str]:
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
        "--no-index", "--target", str(target), str(src),
    ]  # fmt: skip


@pytest.mark.skipif(sys.platform == "win32", reason="script(1) gives the pseudo-terminal")
def test_the_fallback_banner_reaches_the_terminal_without_verbose(tmp_path: Path) -> None:
    script = shutil.which("script")
    if script is None:
        pytest.skip("no script(1) to give pip a terminal")
    pytest.importorskip("setuptools")
    src = _source_copy(tmp_path)
    env = {**os.environ, "TRADEBOOK_NO_EXTENSIONS": "1"}
    env.pop("TRADEBOOK_REQUIRE_EXTENSIONS", None)
    command = " ".join(f"'{part}'" for part in _pip_install(src, tmp_path / "tty"))
    shown = subprocess.run(
        [script, "-qec", command, os.devnull], capture_output=True, text=True, env=env, timeout=300, check=True
    ).stdout
    assert BANNER in shown, f"the terminal showed:\n{shown}"
    # without a terminal pip swallows it, as docs/backends.md says: -v shows it there
    piped = subprocess.run(
        _pip_install(src, tmp_path / "pipe"), capture_output=True, text=True, env=env, timeout=300, check=True
    )
    assert BANNER not in piped.stdout + piped.stderr
    assert (tmp_path / "pipe" / "tradebook" / "__init__.py").exists()
