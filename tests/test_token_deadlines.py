"""One deadline per token request: discovery, lock waits, assertions, attempts and backoffs all
come out of ``RetryPolicy.deadline``, measured against real loopback servers that stall."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

import jwtmint
from jwtmint.errors import DiscoveryError, TokenEndpointTimeout
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import (
    ClientCredentialsClient,
    RetryPolicy,
    TokenManager,
    TokenRequestParameters,
    _resolve,
)

from .conftest import serving, signing_key
from .test_token_manager import es_client, wait_for
from .test_token_manager_edges import SharedTier

#: how far past its deadline a get_token may end: the loop's and the servers' own delays
TOLERANCE = 0.5


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    """A TCP server on 127.0.0.1 that takes connections and never answers a byte (a host
    behind a firewall that drops, a stuck proxy); yields its URL and the connections seen."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up and closes

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", writers
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


async def test_a_silent_issuer_costs_one_deadline_not_one_per_well_known_url() -> None:
    async with silent_server() as (issuer, connections):
        client = ClientCredentialsClient("b", issuer=issuer, client_secret="s" * 32)
        policy = RetryPolicy(attempts=4, deadline=1.5)
        async with TokenManager({"b": client}, retries=policy) as tokens:
            started = time.monotonic()
            with pytest.raises(DiscoveryError, match="TimeoutError"):
                await tokens.get_token("b")
            elapsed = time.monotonic() - started
    assert elapsed <= policy.deadline + TOLERANCE, elapsed
    assert connections  # it was asked, and did not answer


async def test_discovery_and_the_token_request_share_one_deadline() -> None:
    async def slow_metadata(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({"issuer": issuer, "token_endpoint": ep.token_url})

    async with TokenEndpoint() as ep, serving(web.get("/{tail:.*}", slow_metadata)) as issuer:
        ep.set_fault(Fault(status=200, delay=30))  # the token endpoint never answers
        client = ClientCredentialsClient("b", issuer=issuer, client_secret="s" * 32)
        policy = RetryPolicy(attempts=4, deadline=1.5)
        async with TokenManager({"b": client}, retries=policy) as tokens:
            started = time.monotonic()
            with pytest.raises(TokenEndpointTimeout):
                await tokens.get_token("b")
            elapsed = time.monotonic() - started
    assert ep.request_count() == 1
    assert elapsed <= policy.deadline + TOLERANCE, elapsed


async def test_an_optional_discovery_that_hangs_is_retried_off_the_request_path(
    endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issuer, endpoint and key given: the metadata would only pick the signing algorithm
    monkeypatch.setattr(_resolve, "METADATA_RETRY_AFTER", 0.2)
    async with silent_server() as (issuer, connections):
        client = ClientCredentialsClient(
            "es",
            issuer=issuer,
            token_endpoint=endpoint.token_url,
            private_key=signing_key("ES256"),
            audience=endpoint.issuer,
        )
        policy = RetryPolicy(deadline=2.0)
        async with TokenManager({"es": client}, retries=policy) as tokens:
            started = time.monotonic()
            assert (await tokens.get_token("es")).access_token  # with the key's own algorithm
            first = time.monotonic() - started
            assert len(connections) == 1  # one try, cut short by the deadline
            await wait_for(lambda: len(connections) == 2)  # again, in the background
            await asyncio.sleep(0.3)  # past the time the lookup was due again (before: 300 s)
            started = time.monotonic()
            await tokens.get_token("es", force_renewal=True)
            second = time.monotonic() - started
    assert first <= policy.deadline + TOLERANCE, first
    assert second < 0.5, second  # a loopback token request, no discovery: milliseconds
    assert endpoint.request_count() == 2


async def test_a_background_discovery_that_succeeds_brings_the_servers_algorithm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_resolve, "METADATA_RETRY_AFTER", 0.1)
    rsa = signing_key("RS256")
    answering = asyncio.Event()

    async def metadata(request: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(answering.wait(), 10)
        return web.json_response(
            {
                "issuer": issuer,
                "token_endpoint": ep.token_url,
                "token_endpoint_auth_signing_alg_values_supported": ["PS256"],
            }
        )

    async with TokenEndpoint() as ep, serving(web.get("/{tail:.*}", metadata)) as issuer:
        jwk = rsa.public_jwk()
        del jwk["alg"]  # registered for any RSA algorithm
        ep.register_client("rs", public_key=jwk)
        client = ClientCredentialsClient(
            "rs", issuer=issuer, token_endpoint=ep.token_url, private_key=rsa, audience=ep.issuer
        )
        async with TokenManager({"rs": client}, retries=RetryPolicy(deadline=1.0)) as tokens:
            await tokens.get_token("rs")
            answering.set()  # the issuer answers from now on

            def algorithm() -> object:
                header = ep.requests[-1].assertion_header
                return header and header["alg"]

            assert algorithm() == "RS256"
            for _ in range(200):
                await tokens.get_token("rs", force_renewal=True)
                if algorithm() == "PS256":
                    break
                await asyncio.sleep(0.02)
    assert algorithm() == "PS256"
    answering.set()


async def test_the_lock_wait_counts_against_the_deadline(endpoint: TokenEndpoint) -> None:
    tier = SharedTier()
    cache = tier.instance()
    policy = RetryPolicy(attempts=4, deadline=1.5)
    async with TokenManager({"es": es_client(endpoint)}, cache=cache, retries=policy) as tokens:
        held = cache.lock(tokens._counters["es"].key)
        await held.acquire()  # another instance, requesting for a second
        asyncio.get_running_loop().call_later(1.0, held.release)
        endpoint.set_fault(Fault(status=200, delay=30))
        started = time.monotonic()
        with pytest.raises(TokenEndpointTimeout):
            await tokens.get_token("es")
        elapsed = time.monotonic() - started
    assert endpoint.request_count() == 1
    assert elapsed <= policy.deadline + TOLERANCE, elapsed


async def test_an_assertion_service_that_hangs_is_bounded_too(endpoint: TokenEndpoint) -> None:
    class Stuck:
        async def get_client_assertion(
            self, client_name: str, parameters: TokenRequestParameters
        ) -> jwtmint.ClientAssertion:
            await asyncio.sleep(30)
            raise AssertionError("unreachable")

    keyless = ClientCredentialsClient("es", issuer=endpoint.issuer, auth_method="private_key_jwt")
    policy = RetryPolicy(deadline=1.0)
    async with TokenManager({"es": keyless}, assertion_service=Stuck(), retries=policy) as tokens:
        started = time.monotonic()
        with pytest.raises(TokenEndpointTimeout):
            await tokens.get_token("es")
        elapsed = time.monotonic() - started
    assert endpoint.request_count() == 0
    assert elapsed <= policy.deadline + TOLERANCE, elapsed


async def test_timeouts_are_not_rounded_up_to_whole_seconds(endpoint: TokenEndpoint) -> None:
    # aiohttp rounds a timeout of 5 s or more up to the loop's next whole second: pick a
    # deadline that ends just past one, where that rounding would add 0.9 s
    now = asyncio.get_running_loop().time()
    deadline = 5.0 + (0.1 - now % 1.0) % 1.0
    endpoint.set_fault(Fault(status=200, delay=30))
    policy = RetryPolicy(attempts=1, deadline=deadline)
    async with TokenManager({"es": es_client(endpoint)}, retries=policy) as tokens:
        started = time.monotonic()
        with pytest.raises(TokenEndpointTimeout):
            await tokens.get_token("es")
        elapsed = time.monotonic() - started
    assert elapsed <= deadline + TOLERANCE, (elapsed, deadline)
    assert math.isclose(elapsed, deadline, abs_tol=TOLERANCE)
