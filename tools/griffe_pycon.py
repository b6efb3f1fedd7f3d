"""A Griffe extension for the docs site: docstrings written for the REPL and Sphinx, shown as Markdown.

tradebook's docstrings carry plain doctests (``>>>`` lines and their output),
which the test suite runs, and Sphinx cross-reference roles such as
``:class:`~tradebook.MatchingEngine```. Rendered as Markdown the doctests would
read as nested quotes and the roles as stray text; this extension fences each
run of doctest lines as a ``pycon`` block and turns each role into inline code
when mkdocstrings loads the API, leaving the sources untouched. Used by
``mkdocs.yml``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj|const):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """``:class:`~a.b.C``` -> ```C```, ``:mod:`a.b``` -> ```a.b```."""
    text = _ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)
    return text.replace("`\\ ", "`")  # RST's escaped space after a role ("`Protocol`\\ s")


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
    """Fence doctest examples and flatten Sphinx roles in every docstring mkdocstrings loads."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = obj.docstring.value
        if ">>>" in text:
            text = fence_doctests(text)
        if ":`" in text:
            text = plain_roles(text)
        obj.docstring.value = text
