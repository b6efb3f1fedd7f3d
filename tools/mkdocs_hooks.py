"""MkDocs hooks for the docs site (``hooks:`` in ``mkdocs.yml``).

The API reference is complete by construction: the topic pages in
``docs/reference/`` document the public names they group, and any name in
``tradebook.__all__`` that none of them mentions is appended to the reference
index under "Other public names", so a name added to the package shows up on
the site even before someone files it under a topic. ``__all__`` is read from
the source, not imported, so building the site needs no compiled core.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INIT = ROOT / "src" / "tradebook" / "__init__.py"
REFERENCE = ROOT / "docs" / "reference"
_DIRECTIVE = re.compile(r"^::: tradebook\.(\w+)\s*$", re.MULTILINE)


def public_names() -> list[str]:
    """``tradebook.__all__`` as written in ``src/tradebook/__init__.py`` (imported if it is not a plain list)."""
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return [str(name) for name in ast.literal_eval(node.value)]
            except ValueError:
                break
    import tradebook

    return list(tradebook.__all__)


def undocumented() -> list[str]:
    """Public names that no page in ``docs/reference/`` has a ``::: tradebook.NAME`` for."""
    documented: set[str] = set()
    for page in REFERENCE.glob("*.md"):
        documented.update(_DIRECTIVE.findall(page.read_text()))
    return [name for name in public_names() if name not in documented]


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != "reference/index.md":
        return markdown
    missing = undocumented()
    if not missing:
        return markdown
    entries = "\n\n".join(f"::: tradebook.{name}" for name in missing)
    return f"{markdown}\n\n## Other public names\n\n{entries}\n"
