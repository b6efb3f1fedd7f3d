"""``matching-engine``: pure Python, 3.12+; reported, not wired in yet."""

from __future__ import annotations

from typing import ClassVar

from peers.base import TABLE_ENGINE, Peer


class MatchingEnginePeer(Peer):
    """``matching-engine`` (pure Python, 3.12+). Measured only where it installs; reported either way."""

    key = "matching-engine"
    label = "matching-engine"
    table = TABLE_ENGINE
    dist = "matching-engine"
    module = "matching_engine"
    requires = ((3, 12), "it declares Requires-Python >= 3.12, and its code uses PEP 695 `type` statements")
    api: ClassVar[dict[str, str | None]] = {"add": None, "cancel": None, "top": None, "depth": None, "match": None}

    def unavailable(self) -> str | None:
        reason = super().unavailable()
        if reason is None:
            return "installed; not wired into compare.py yet (its API was not available to read on Python 3.11)"
        return reason
