"""Renewal before expiry against oidc-provider, in real time, with short-lived tokens.

The server issues tokens that live 4 s; the manager renews 3 s before expiry, so from
1 s on a call is served the current token at once while a renewal runs behind it
(stale-while-revalidate), and the next call gets the server's new token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp
import pytest

import jwtmint
from jwtmint import SigningKey
from jwtmint.tokens import ClientCredentialsClient, TokenManager

from .conftest import OidcProviderFactory, granted
from .oidc_server import private_key_jwt_client

TTL = 4


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return jwtmint.generate_key("ES256")


@pytest.fixture(scope="module")
def issuer(oidc_provider: OidcProviderFactory, key: SigningKey) -> Iterator[str]:
    clients = [private_key_jwt_client("renew-client", key)]
    with oidc_provider(clients, require_issuer_audience=True, access_token_ttl=TTL) as url:
        yield url


async def test_tokens_are_renewed_in_the_background_before_they_expire(
    issuer: str, key: SigningKey
) -> None:
    client = ClientCredentialsClient(
        "renew-client", issuer=issuer, private_key=key, scope="api.read"
    )
    async with TokenManager({"c": client}, renewal_buffer=3, renewal_jitter=0) as tokens:
        first = await tokens.get_token("c")
        assert first.expires_at - time.time() == pytest.approx(TTL, abs=1)
        await asyncio.sleep(first.expires_at - 3 - time.time() + 0.2)  # into the window
        served = await tokens.get_token("c")
        assert served is first  # at once: nobody waits for the renewal
        deadline = time.monotonic() + 10
        while tokens.stats().tokens < 2:
            assert time.monotonic() < deadline, "no renewal within 10 s"
            await asyncio.sleep(0.02)
        renewed = await tokens.get_token("c")
        assert time.time() < first.expires_at  # renewed before the first one expired
    assert renewed.access_token != first.access_token
    assert renewed.expires_at > first.expires_at
    stats = tokens.stats()
    assert (stats.requests, stats.background_renewals, stats.failures) == (2, 1, 0)
    async with aiohttp.ClientSession() as session:
        grants = await granted(session, issuer, "renew-client")
    assert len(grants) == 2
    jtis = {g["assertion"]["claims"]["jti"] for g in grants}
    assert len(jtis) == 2
