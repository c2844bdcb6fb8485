"""A resource's 401 as both HTTP adapters meet it: the retry goes out only with another token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from aiohttp import web

import jwtmint
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, TokenManager, _flights

from .conftest import serving, signing_key

REQUESTS = 4


@pytest.fixture
async def refusing() -> AsyncIterator[tuple[str, list[str]]]:
    """A resource that refuses every token (a wrong audience, say), and what it was sent."""
    seen: list[str] = []

    async def refuse(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"error": "invalid_token"}, status=401)

    async with serving(web.get("/{tail:.*}", refuse)) as url:
        yield url, seen


async def _statuses(manager: TokenManager, adapter: str, url: str) -> list[int]:
    if adapter == "aiohttp":
        middleware = manager.middleware("es", origins=[url])
        async with aiohttp.ClientSession(middlewares=[middleware]) as api:
            statuses = []
            for i in range(REQUESTS):
                async with api.get(f"{url}/{i}") as response:
                    statuses.append(response.status)
            return statuses
    async with httpx.AsyncClient(auth=manager.httpx_auth("es", origins=[url])) as client:
        return [(await client.get(f"{url}/{i}")).status_code for i in range(REQUESTS)]


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
@pytest.mark.parametrize("adapter", ["aiohttp", "httpx"])
async def test_a_refused_token_is_never_sent_again(
    endpoint: TokenEndpoint,
    refusing: tuple[str, list[str]],
    adapter: str,
    dpop: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the whole test inside one renewal gap, however slow the machine
    monkeypatch.setattr(_flights, "FORCED_RENEWAL_GAP", 3600.0)
    url, seen = refusing
    client = ClientCredentialsClient(
        "es",
        issuer=endpoint.issuer,
        private_key=signing_key("ES256"),
        dpop_key=jwtmint.generate_key("ES256") if dpop else None,
    )
    async with TokenManager({"es": client}) as manager:
        statuses = await _statuses(manager, adapter, url)
    assert statuses == [401] * REQUESTS
    # the first 401 renews and retries once; the renewed token is then refused in turn, and
    # within the gap no renewal is forced again: each later request goes out once, not twice
    assert len(seen) == REQUESTS + 1
    assert endpoint.request_count() == 2
    first, renewed = seen[0], seen[1]
    assert first != renewed and seen[1:] == [renewed] * REQUESTS
    assert renewed.startswith("DPoP " if dpop else "Bearer ")


async def test_a_renewal_that_brings_back_the_refused_token_is_not_resent(
    endpoint: TokenEndpoint,
) -> None:
    # a server that hands out its cached token again (many do until it expires): the renewal
    # brings nothing new, so the resource's 401 stands
    client = ClientCredentialsClient("es", issuer=endpoint.issuer, private_key=signing_key("ES256"))
    async with TokenManager({"es": client}) as manager:
        token = await manager.get_token("es")
        again = {"access_token": token.access_token, "token_type": "Bearer", "expires_in": 300}
        endpoint.set_fault(Fault(status=200, body=again))
        assert await manager.token_source("es").renew_after_refusal(token) is None
    assert endpoint.request_count() == 2
