"""The documentation site stays whole: the API reference covers every public name, the nav and examples page are right."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import tradebook

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_the_api_reference_is_complete_and_names_only_public_things():
    """Names no topic page covers are appended by tools/mkdocs_hooks.py; a page must not name what is not public."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import mkdocs_hooks
    finally:
        sys.path.remove(str(ROOT / "tools"))
    assert mkdocs_hooks.public_names() == list(tradebook.__all__)
    documented = set()
    for page in (DOCS / "reference").glob("*.md"):
        documented |= set(re.findall(r"^::: tradebook\.(\w+)\s*$", page.read_text(), flags=re.MULTILINE))
    modules = {name for name in documented if importlib.util.find_spec(f"tradebook.{name}") is not None}
    unknown = sorted(documented - set(tradebook.__all__) - modules)
    assert not unknown, f"docs/reference/ documents names that are not in tradebook.__all__: {unknown}"
    assert set(mkdocs_hooks.undocumented()) == set(tradebook.__all__) - documented


def test_every_nav_entry_exists():
    nav = set(re.findall(r"([\w./-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.MULTILINE))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav <= pages, f"mkdocs.yml names pages that do not exist: {sorted(nav - pages)}"


def test_every_example_is_on_the_examples_page():
    page = (DOCS / "examples.md").read_text()
    scripts = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    missing = [name for name in scripts if f'--8<-- "examples/{name}"' not in page]
    assert not missing, f"add these scripts to docs/examples.md: {missing}"
