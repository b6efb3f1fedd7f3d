"""The engine clock of the order service: epoch milliseconds, and its conversions from and to datetimes.

The service's clock gives timezone-aware datetimes; its engines keep time as an
``int``, which the service sets to the clock's epoch milliseconds (rounded
down). A GTD order's ``expire_at`` is in that unit: an ``int``, or a datetime
rounded *up* to the next millisecond (an order good till 10:00:00.0005 is still
live at 10:00:00.000 and expired at 10:00:00.001).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..errors import InvalidOrderError

__all__ = ["MAX_EXPIRE_AT", "epoch_ms", "expire_at_ms", "from_epoch_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)

#: The latest ``expire_at`` the service takes, 9999-12-31T23:59:59.999Z (the last instant a datetime holds).
MAX_EXPIRE_AT = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) - _EPOCH) // _MILLISECOND


def epoch_ms(moment: datetime) -> int:
    """``moment`` (timezone-aware) in whole milliseconds since 1970-01-01T00:00Z, rounded down.

    >>> epoch_ms(datetime(1970, 1, 1, 0, 0, 1, 999, tzinfo=timezone.utc))
    1000
    """
    return (moment - _EPOCH) // _MILLISECOND


def from_epoch_ms(ms: int) -> datetime:
    """The UTC datetime of ``ms`` epoch milliseconds (within the range :data:`MAX_EXPIRE_AT` allows)."""
    return _EPOCH + ms * _MILLISECOND


def expire_at_ms(value: object) -> int:
    """A GTD order's ``expire_at`` as epoch milliseconds, or :class:`~tradebook.InvalidOrderError`.

    Takes an ``int`` (epoch milliseconds, 0 to :data:`MAX_EXPIRE_AT`) or a
    timezone-aware datetime (rounded up to the next millisecond).

    >>> expire_at_ms(datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc)) - expire_at_ms(1893456000000)
    1
    """
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise InvalidOrderError(f"expire_at must be timezone-aware, not {value!r}")
        ms = -((_EPOCH - value) // _MILLISECOND)  # rounded up; aware subtraction never overflows
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    else:
        raise InvalidOrderError(
            f"expire_at must be epoch milliseconds (an int) or a timezone-aware datetime, not {value!r}"
        )
    if not 0 <= ms <= MAX_EXPIRE_AT:
        raise InvalidOrderError(
            f"expire_at must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z (0 to {MAX_EXPIRE_AT} ms), "
            f"not {value!r}"
        )
    return ms
