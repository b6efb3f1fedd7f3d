"""The contestants of ``report.py compare``: tradebook, its baselines and the other Python order books.

Each is a :class:`peers.base.Peer` in a module of its own; the base class owns
the timing loop and the checks, an adapter only says which calls its library
makes (see ``peers/base.py`` for the rules every adapter follows).
"""

from __future__ import annotations

from collections.abc import Callable

from peers.base import TABLE_BOOK, TABLE_ENGINE, Peer, dist_version
from peers.baseline import SortedBaselineBook, SortedBaselineEngine
from peers.lightmatchingengine import LightMatchingEngine
from peers.matching_engine import MatchingEnginePeer
from peers.nanobook import NanobookEngine
from peers.nautilus import NautilusBook
from peers.order_book import OrderBookL2
from peers.ours import TradebookBook, TradebookEngine
from peers.pyorderbook import PyOrderBook

__all__ = ["PEERS", "TABLE_BOOK", "TABLE_ENGINE", "Peer", "dist_version", "make"]


def _registry() -> dict[tuple[str, str], Callable[[], Peer]]:
    out: dict[tuple[str, str], Callable[[], Peer]] = {}
    for backend in ("cython", "python"):
        for decimal in (False, True):
            tag = f"tradebook-{backend}-{'decimal' if decimal else 'raw'}"
            out[TABLE_BOOK, tag] = lambda b=backend, d=decimal: TradebookBook(b, d)
            out[TABLE_ENGINE, tag] = lambda b=backend, d=decimal: TradebookEngine(b, d)
    for cls in (
        SortedBaselineBook,
        OrderBookL2,
        NautilusBook,
        SortedBaselineEngine,
        LightMatchingEngine,
        NanobookEngine,
        PyOrderBook,
        MatchingEnginePeer,
    ):
        out[cls.table, cls.key] = cls
    return out


PEERS = _registry()


def make(table: str, key: str) -> Peer:
    return PEERS[table, key]()
