"""Page sizes and opaque cursors shared by the repository adapters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from ..errors import InvalidRequestError
from .models import Page

__all__ = ["MAX_PAGE", "check_limit", "decode_cursor", "encode_cursor", "page_of"]

#: The largest page a listing returns.
MAX_PAGE = 1000


def check_limit(limit: object) -> int:
    """``limit`` as a page size in ``1..MAX_PAGE``, or :class:`InvalidRequestError`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
    return limit


def encode_cursor(last_id: int) -> str:
    """The cursor of the page that follows the row with id ``last_id`` (newest first)."""
    return str(last_id)


def decode_cursor(cursor: object) -> int | None:
    """The id a cursor points below, or ``None`` for the first page."""
    if cursor is None:
        return None
    if isinstance(cursor, str) and cursor.isascii() and cursor.isdigit() and len(cursor) <= 19:
        return int(cursor)
    raise InvalidRequestError(f"cursor {cursor!r} is not one this service issued")


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


_T = TypeVar("_T", bound=_HasId)


def page_of(found: Sequence[_T], limit: int) -> Page[_T]:
    """The first ``limit`` of ``found`` (newest first; up to ``limit + 1`` rows) as a page with its cursor."""
    items = found[:limit]
    return Page(items, encode_cursor(items[-1].id) if len(found) > limit else None)
