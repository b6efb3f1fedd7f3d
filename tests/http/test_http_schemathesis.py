"""Schemathesis against the OpenAPI document: generated requests, valid and invalid, never a 5xx.

The app runs in-process over a memory store (its lifespan opens the service) and
every request carries a valid token, so the generated data reaches the
handlers. Each operation gets a bounded number of examples.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tradebook import Instrument
from tradebook.http import TokenAuthenticator, create_app
from tradebook.oms import MemoryOrderRepository, MemoryWallet, OrderService

SECRET = "schemathesis-secret-0123456789-abcdef"
AUTH = TokenAuthenticator(SECRET)
TOKEN = AUTH.issue("alice", ttl=3600)


@asynccontextmanager
async def _memory_service() -> AsyncIterator[OrderService]:
    wallet = MemoryWallet()
    for asset, amount in (("BTC", "1000"), ("ETH", "1000"), ("USDT", "100000000")):
        await wallet.deposit("alice", asset, amount)
    instruments = [Instrument("BTC/USDT", "0.01", "0.001"), Instrument("ETH/USDT", "0.01", "0.001")]
    async with OrderService(MemoryOrderRepository(), wallet, instruments) as service:
        yield service


APP = create_app(open_service=_memory_service, authenticator=AUTH)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_document(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
