"""A Griffe extension for the docs site: show docstrings' doctest examples as ``pycon`` code blocks.

tradebook's docstrings carry plain doctests (``>>>`` lines and their output),
which the test suite runs. Rendered as Markdown those lines would read as
nested quotes; this extension fences each run of them when mkdocstrings loads
the API, leaving the source untouched. Used by ``mkdocs.yml``.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """Wrap every run of doctest lines (``>>>``/``...`` lines and the output after them) in a pycon fence."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if not stripped.startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        block = []
        while i < len(lines) and lines[i].strip():  # a doctest example ends at a blank line
            block.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        out.extend([f"{indent}```pycon", *(f"{indent}{b}" for b in block), f"{indent}```"])
    return "\n".join(out)


class PyconDoctests(griffe.Extension):
    """Fence doctest examples in every docstring mkdocstrings loads."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
