"""docs/performance.md reads at the page's width: legible figures, tables that fit the text column.

mkdocs-material at a 1280 px window gives the text about 690 CSS px. A figure
wider than that is scaled down to it, so its text shows at
``points * dpi / 72 * min(1, 690 / width_px)`` px; below 11 px it cannot be read.
The last test renders the built page in headless Chromium (when mkdocs and
Chromium are installed) and measures the real layout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGE = DOCS / "performance.md"
REPORT = DOCS / "assets" / "compare.json"
COLUMN_PX = 690  # measured: mkdocs-material's text column at a 1280 px window
MIN_TEXT_PX = 11
MAX_CELL_CHARS = 40  # longer cells (reasons, code) crush a table's last column


def _figures_on_page() -> list[Path]:
    return [DOCS / rel for rel in re.findall(r"!\[[^\]]*\]\((assets/[^)]+\.png)\)", PAGE.read_text())]


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_page_shows_its_figures() -> None:
    figures = _figures_on_page()
    assert len(figures) == 3
    assert all(path.exists() for path in figures)


def test_no_figure_is_shrunk_more_than_twofold() -> None:
    """A 1,760 px figure in a 690 px column shrinks 2.6 times: its 8 pt labels end up 5 px."""
    for path in _figures_on_page():
        width, _ = _png_size(path)
        assert width <= 2 * COLUMN_PX, f"{path.name} is {width} px wide for a {COLUMN_PX} px column"


def _compare_module() -> Any:
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import compare
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return compare


def test_every_text_in_the_figures_is_legible_at_the_page_width() -> None:
    compare = _compare_module()
    report = json.loads(REPORT.read_text())
    figures = {
        "book": compare.table_figure(report, compare.TABLE_BOOK),
        "engine": compare.table_figure(report, compare.TABLE_ENGINE),
        "scaling": compare.scaling_figure(report),
    }
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    try:
        for name, fig in figures.items():
            assert fig is not None, name
            fig.canvas.draw()
            width_px = fig.get_figwidth() * compare.SAVE_DPI
            scale = compare.SAVE_DPI / 72 * min(1.0, COLUMN_PX / width_px)
            texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
            assert len(texts) > 20, name  # tick labels, value labels, titles: the check sees them
            small = sorted(
                {
                    f"{t.get_text()!r} {t.get_fontsize() * scale:.1f} px"
                    for t in texts
                    if t.get_fontsize() * scale < MIN_TEXT_PX
                }
            )
            assert not small, f"{name}: text under {MIN_TEXT_PX} px on the page: {small[:5]}"
    finally:
        plt.close("all")


def test_the_figures_on_disk_are_the_ones_the_code_draws() -> None:
    """Same width as the code's figures: the PNGs were regenerated (python benchmarks/report.py compare --render)."""
    compare = _compare_module()
    for path in _figures_on_page():
        width, _ = _png_size(path)
        assert width == round(compare.FIG_WIDTH_IN * compare.SAVE_DPI), path.name


def _tables(text: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_the_tables_fit_the_column() -> None:
    tables = _tables(PAGE.read_text())
    assert len(tables) >= 4
    for table in tables:
        assert len(table[0]) <= 8, f"a table of {len(table[0])} columns: {table[0]}"
        if len(table[0]) <= 3:
            continue  # a term and its description: the text wraps in the wide last column
        long = [c for row in table for c in row if len(c) > MAX_CELL_CHARS]
        assert not long, f"cells too long for a table at {COLUMN_PX} px: {long[:3]}"


_MEASURE = """
<script>
addEventListener("load", () => {
  const column = document.querySelector("article.md-content__inner").clientWidth;
  const tables = [...document.querySelectorAll("article table")].map(t => ({
    overflow: t.scrollWidth - t.clientWidth, head: t.rows[0].innerText.slice(0, 40)}));
  const images = [...document.querySelectorAll("article img")].map(i => ({
    src: i.getAttribute("src"), natural: i.naturalWidth, shown: i.getBoundingClientRect().width}));
  const out = document.createElement("pre");
  out.id = "tb-layout";
  out.textContent = JSON.stringify({column, tables, images});
  document.body.appendChild(out);
});
</script>
"""


def test_the_built_page_at_1280_px(tmp_path: Path) -> None:
    """Chromium lays out the built page: no table scrolls sideways, every figure at most halved."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("TRADEBOOK_REQUIRE_BROWSER"):
            pytest.fail("TRADEBOOK_REQUIRE_BROWSER is set but there is no chromium on PATH")
        pytest.skip("no chromium to render the page")
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    page = site / "performance" / "index.html"
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", _MEASURE + "</body>"))
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,4000",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r'<pre id="tb-layout">(.*?)</pre>', dom, flags=re.DOTALL)
    assert found, "the probe script did not run"
    layout = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert 600 <= layout["column"] <= 800, layout["column"]
    assert len(layout["tables"]) >= 4 and len(layout["images"]) == 3
    crushed = [t for t in layout["tables"] if t["overflow"] > 1]
    assert not crushed, f"tables wider than the column: {crushed}"
    for image in layout["images"]:
        assert image["shown"] <= layout["column"] + 1, image
        # drawn at 200 dpi, a 10 pt label is 28 px in the PNG: 13 px or more on the page
        assert image["natural"] <= 2.1 * image["shown"], f"{image['src']} is shrunk more than twofold: {image}"
