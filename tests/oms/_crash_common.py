"""What the crash driver and the crash tests share: instruments, users, deposits."""

from __future__ import annotations

from decimal import Decimal

from tradebook import Instrument

INSTRUMENTS = [Instrument("BTC/USDT", "1", "0.1"), Instrument("ETH/USDT", "1", "0.1")]
USERS = ["u1", "u2", "u3", "u4"]
DEPOSITS = {"USDT": Decimal(20_000), "BTC": Decimal(100), "ETH": Decimal(100)}
