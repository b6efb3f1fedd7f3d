"""What the crash driver and the crash tests share: instruments, users, deposits."""

from __future__ import annotations

from decimal import Decimal

from tradebook import Instrument

# a max_price, so that stop and trailing-stop buys can reserve against it
INSTRUMENTS = [
    Instrument("BTC/USDT", "1", "0.1", max_price="1000"),
    Instrument("ETH/USDT", "1", "0.1", max_price="1000"),
]
USERS = ["u1", "u2", "u3", "u4"]
DEPOSITS = {"USDT": Decimal(20_000), "BTC": Decimal(100), "ETH": Decimal(100)}
