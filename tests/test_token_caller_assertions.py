"""A client that authenticates only with assertions its callers pass: renewed with theirs.

A ``private_key_jwt`` client without a key of its own, in a manager without an
assertion service, has no way to make an assertion: only a
``get_token(client_assertion=...)`` can. Its token is renewed with the next
assertion a caller passes (in the renewal window that caller is served the
still-valid token while the renewal runs, as for any client), never by a
request that could not authenticate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import httpx
import jwt
import pytest

import jwtmint
from jwtmint.errors import ConfigurationError
from jwtmint.testing import TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, TokenManager, TokenRequestParameters

from .conftest import signing_key
from .test_token_manager import FakeClock, wait_for

LIFETIME = 3600


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def ep(clock: FakeClock) -> AsyncIterator[TokenEndpoint]:
    async with TokenEndpoint(clock=clock, token_lifetime=LIFETIME) as endpoint:
        endpoint.register_client("es", public_key=signing_key("ES256"))
        yield endpoint


@pytest.fixture
async def tokens(ep: TokenEndpoint, clock: FakeClock) -> AsyncIterator[TokenManager]:
    keyless = ClientCredentialsClient("es", issuer=ep.issuer, auth_method="private_key_jwt")
    async with TokenManager(
        {"es": keyless}, clock=clock, renewal_buffer=60, renewal_jitter=0
    ) as manager:
        yield manager


def caller(ep: TokenEndpoint, clock: FakeClock) -> jwtmint.AssertionSigner:
    """How the application makes its assertions (an HSM, a workload identity, ...)."""
    return jwtmint.AssertionSigner(signing_key("ES256"), "es", ep.issuer, clock=clock)


async def test_the_renewal_waits_for_a_callers_assertion_and_uses_it(
    ep: TokenEndpoint,
    clock: FakeClock,
    tokens: TokenManager,
    caplog: pytest.LogCaptureFixture,
) -> None:
    signer = caller(ep, clock)
    first = await tokens.get_token("es", client_assertion=signer.client_assertion())
    clock.now += LIFETIME - 30  # in the renewal window, 30 s before expiry
    with caplog.at_level(logging.DEBUG, logger="jwtmint.tokens"):
        # a caller with no assertion is served the valid token, and no request is made that
        # could not authenticate (nothing to fail, log and back off)
        for _ in range(3):
            assert await tokens.get_token("es") is first
            await asyncio.sleep(0)
        assert not tokens._flights and ep.request_count() == 1
        # the next assertion a caller passes renews the token; that caller is not held up
        passed = signer.client_assertion()
        assert await tokens.get_token("es", client_assertion=passed) is first
        await wait_for(lambda: ep.request_count() == 2 and not tokens._flights)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    renewed = await tokens.get_token("es")
    assert renewed.access_token != first.access_token
    assert ep.requests[1].outcome == "issued"
    # the caller's assertion went out (PyJWT reads its jti; the endpoint verified it)
    assert (
        ep.requests[1].jti == jwt.decode(passed.value, options={"verify_signature": False})["jti"]
    )
    stats = tokens.stats()
    assert (stats.background_renewals, stats.background_failures, stats.failures) == (1, 0, 0)


async def test_an_expired_token_needs_an_assertion_to_be_replaced(
    ep: TokenEndpoint, clock: FakeClock, tokens: TokenManager
) -> None:
    signer = caller(ep, clock)
    first = await tokens.get_token("es", client_assertion=signer.client_assertion())
    clock.now += LIFETIME + 1
    with pytest.raises(ConfigurationError, match=r"get_token\(client_assertion=") as caught:
        await tokens.get_token("es")
    assert "'es'" in str(caught.value)
    renewed = await tokens.get_token("es", client_assertion=signer.client_assertion())
    assert renewed.access_token != first.access_token and ep.request_count() == 2


@pytest.mark.parametrize("adapter", ["aiohttp", "httpx"])
async def test_the_adapters_return_the_401_when_only_a_caller_could_renew(
    ep: TokenEndpoint, clock: FakeClock, tokens: TokenManager, adapter: str
) -> None:
    signer = caller(ep, clock)
    first = await tokens.get_token("es", client_assertion=signer.client_assertion())
    ep.revoke(first.access_token)

    async def call(path: str) -> int:
        if adapter == "aiohttp":
            middleware = tokens.middleware("es", origins=[ep.url])
            async with (
                aiohttp.ClientSession(middlewares=[middleware]) as api,
                api.get(f"{ep.url}/api/{path}") as response,
            ):
                return response.status
        auth = tokens.httpx_auth("es", origins=[ep.url])
        async with httpx.AsyncClient(auth=auth) as client:
            return (await client.get(f"{ep.url}/api/{path}")).status_code

    # the promised 401, not a ConfigurationError from a renewal nobody could authenticate
    assert await call("refused") == 401
    assert ep.request_count() == 1
    # the application renews with its own assertion; the adapters send the new token
    await tokens.get_token("es", force_renewal=True, client_assertion=signer.client_assertion())
    assert await call("accepted") == 200
    assert ep.api_requests == [("refused", 401), ("accepted", 200)]


async def test_a_401_with_a_declining_assertion_service_is_returned_too(
    ep: TokenEndpoint, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # with a service the manager cannot know it will decline: the renewal is tried, fails
    # for want of an assertion, and the middleware still returns the resource's 401
    class Declining:
        async def get_client_assertion(
            self, client_name: str, parameters: TokenRequestParameters
        ) -> None:
            return None

    keyless = ClientCredentialsClient("es", issuer=ep.issuer, auth_method="private_key_jwt")
    signer = caller(ep, clock)
    async with TokenManager({"es": keyless}, assertion_service=Declining(), clock=clock) as tokens:
        first = await tokens.get_token("es", client_assertion=signer.client_assertion())
        ep.revoke(first.access_token)
        middleware = tokens.middleware("es", origins=[ep.url])
        with caplog.at_level(logging.WARNING, logger="jwtmint.tokens"):
            async with (
                aiohttp.ClientSession(middlewares=[middleware]) as api,
                api.get(f"{ep.url}/api/x") as response,
            ):
                assert response.status == 401
    assert "after a 401 failed" in caplog.text and "client_assertion" in caplog.text
    assert ep.request_count() == 1


@pytest.mark.parametrize("force_renewal", [False, True])
async def test_a_callers_assertion_never_joins_a_flight_that_cannot_authenticate(
    ep: TokenEndpoint, clock: FakeClock, tokens: TokenManager, force_renewal: bool
) -> None:
    # a review found: a call without an assertion started a flight doomed to fail, and a
    # concurrent call with one joined it and got its ConfigurationError
    signer = caller(ep, clock)
    first = await tokens.get_token("es", client_assertion=signer.client_assertion())
    clock.now += LIFETIME + 1
    without, with_one = await asyncio.gather(
        tokens.get_token("es", force_renewal=force_renewal),
        tokens.get_token(
            "es", force_renewal=force_renewal, client_assertion=signer.client_assertion()
        ),
        return_exceptions=True,
    )
    assert isinstance(without, ConfigurationError)
    assert not isinstance(with_one, BaseException), with_one
    assert with_one.access_token != first.access_token
