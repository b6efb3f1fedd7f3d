"""The documentation site stays complete: every public name has an API reference entry, every page is in the nav."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import tradebook

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_every_public_name_is_in_the_api_reference():
    documented = set()
    for page in (DOCS / "reference").glob("*.md"):
        documented |= set(re.findall(r"^::: tradebook\.(\w+)\s*$", page.read_text(), flags=re.MULTILINE))
    missing = sorted(set(tradebook.__all__) - documented)
    assert not missing, f"add these to a page in docs/reference/ (a '::: tradebook.NAME' line each): {missing}"
    modules = {name for name in documented if importlib.util.find_spec(f"tradebook.{name}") is not None}
    unknown = sorted(documented - set(tradebook.__all__) - modules)
    assert not unknown, f"docs/reference/ documents names that are not in tradebook.__all__: {unknown}"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = set(re.findall(r"([\w./-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.MULTILINE))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav <= pages, f"mkdocs.yml names pages that do not exist: {sorted(nav - pages)}"
    assert pages <= nav, f"pages missing from mkdocs.yml's nav: {sorted(pages - nav)}"


def test_every_example_is_on_the_examples_page():
    page = (DOCS / "examples.md").read_text()
    scripts = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    missing = [name for name in scripts if f'--8<-- "examples/{name}"' not in page]
    assert not missing, f"add these scripts to docs/examples.md: {missing}"
