"""What is retried and how long the manager waits: retries a secret can authenticate, 408,
Retry-After as a floor-kept backoff and as a pause remembered per endpoint, and the bounds
put on a server's expires_in."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import Any

import orjson
import pytest
from aiohttp import web

import jwtmint
from jwtmint.errors import TokenEndpointError
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, RetryPolicy, TokenManager, _token
from jwtmint.tokens._retry import MAX_PAUSE, MAX_PAUSED, Pauses
from jwtmint.tokens._token import parse_token_response

from .conftest import serving, signing_key
from .test_token_manager import FAST_RETRIES, SECRET

#: the bounds put on expires_in (see jwtmint.tokens._token)
MIN_LIFETIME = 5.0
MAX_LIFETIME = 86_400.0

# ---- a caller's assertion, then the client's secret -------------------------------------


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "client_secret_jwt"]
)
async def test_after_a_callers_assertion_a_secret_client_retries_with_its_secret(
    endpoint: TokenEndpoint, method: str
) -> None:
    endpoint.register_client("secret", secret=SECRET, auth_method=method)
    client = ClientCredentialsClient(
        "secret", issuer=endpoint.issuer, client_secret=SECRET, auth_method=method
    )
    passed = jwtmint.AssertionSigner(signing_key("ES256"), "secret", endpoint.issuer)
    endpoint.fail_next(1, Fault(status=503))
    async with TokenManager({"c": client}, retries=FAST_RETRIES) as tokens:
        assert (
            await tokens.get_token("c", client_assertion=passed.client_assertion())
        ).access_token
    first, second = endpoint.requests
    assert first.jti is not None  # the caller's assertion, once
    assert (second.auth_method, second.outcome) == (method, "issued")
    assert second.jti != first.jti


# ---- 408 --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, b""])
async def test_a_408_is_retried(endpoint: TokenEndpoint, body: bytes | None) -> None:
    # RFC 9110 §15.5.9: the server timed out waiting for the request; sending it again is fine
    endpoint.fail_next(1, Fault(status=408, body=body))
    client = ClientCredentialsClient("es", issuer=endpoint.issuer, private_key=signing_key("ES256"))
    async with TokenManager({"es": client}, retries=FAST_RETRIES) as tokens:
        assert (await tokens.get_token("es")).access_token
    assert [r.outcome for r in endpoint.requests] == ["fault", "issued"]


# ---- Retry-After: the policy's backoff stays the floor ----------------------------------


@pytest.mark.parametrize("retry_after", [0.0, 0.05])
def test_a_retry_after_shorter_than_the_backoff_keeps_the_backoff(retry_after: float) -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=4.0)
    for attempt in (1, 2, 3):
        random.seed(attempt)
        own = policy.delay(attempt)
        random.seed(attempt)
        assert policy.delay(attempt, retry_after) == max(own, retry_after)
    assert policy.delay(1, 3.0) == 3.0  # a longer one wins


@pytest.mark.parametrize("value", ["0", "Thu, 01 Jan 2004 00:00:00 GMT"])
async def test_retry_after_zero_or_past_does_not_hammer(
    endpoint: TokenEndpoint, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.fail_next(3, Fault(status=503, headers={"Retry-After": value}))
    client = ClientCredentialsClient("es", issuer=endpoint.issuer, private_key=signing_key("ES256"))
    policy = RetryPolicy(attempts=4, backoff=0.1, max_backoff=0.1, deadline=5)
    # the jitter at its top, so that the backoff is exactly 0.1 s
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    async with TokenManager({"es": client}, retries=policy) as tokens:
        await tokens.get_token("es")
    requests = endpoint.requests
    assert [r.outcome for r in requests] == ["fault"] * 3 + ["issued"]
    assert all(later.at - earlier.at >= 0.09 for earlier, later in itertools.pairwise(requests))


# ---- Retry-After remembered per token endpoint ------------------------------------------


async def test_a_retry_after_is_remembered_until_it_passes(endpoint: TokenEndpoint) -> None:
    endpoint.set_fault(Fault(status=429, headers={"Retry-After": "86400"}))
    clients = {
        "es": ClientCredentialsClient(
            "es", issuer=endpoint.issuer, private_key=signing_key("ES256")
        ),
        "basic": ClientCredentialsClient("basic", issuer=endpoint.issuer, client_secret=SECRET),
    }
    async with TokenManager(clients, retries=FAST_RETRIES) as tokens:
        errors: list[TokenEndpointError] = []
        for name in ["es"] * 5 + ["basic"]:  # one endpoint: the other client is held back too
            with pytest.raises(TokenEndpointError) as caught:
                await tokens.get_token(name, force_renewal=name == "basic")
            errors.append(caught.value)
        assert endpoint.request_count() == 1
        first, *later = errors
        assert first.attempts == 1 and first.retry_after == 86400
        for error in later:
            assert type(error) is TokenEndpointError
            assert error.status == 429 and error.attempts == 0
            assert error.retry_after is not None and 86000 < error.retry_after <= 86400
            assert "retry after" in str(error) and "not sent" in str(error)
        assert later[-1].client == "basic"
        assert tokens.stats().attempts == 1
    async with TokenManager(clients, retries=FAST_RETRIES) as tokens:
        endpoint.set_fault(None)
        assert (await tokens.get_token("es")).access_token  # a new manager starts afresh


async def test_a_token_from_the_endpoint_lifts_its_pause(endpoint: TokenEndpoint) -> None:
    # a review found: one 503 with Retry-After 3600 (a draining node behind a load balancer)
    # held every later request back for an hour, even after the endpoint issued tokens again
    endpoint.register_client("basic", secret=SECRET)
    client = ClientCredentialsClient("basic", issuer=endpoint.issuer, client_secret=SECRET)
    async with TokenManager({"basic": client}, retries=FAST_RETRIES) as tokens:
        await tokens.get_token("basic")  # discovery done
        # the first request is refused at once; the second, sent meanwhile, is answered after
        # the pause was noted (latency applies to tokens, not faults)
        endpoint.fail_next(1, Fault(status=503, headers={"Retry-After": "3600"}))
        endpoint.latency = 0.4
        paused, served = await asyncio.gather(
            tokens.get_token("basic", scope="a"),
            tokens.get_token("basic", scope="b"),
            return_exceptions=True,
        )
        assert isinstance(paused, TokenEndpointError) and not isinstance(served, BaseException)
        endpoint.latency = 0.0
        assert (await tokens.get_token("basic", scope="c")).access_token  # sent, not refused
    assert endpoint.request_count() == 4


async def test_a_short_retry_after_is_waited_out_by_the_next_request(
    endpoint: TokenEndpoint,
) -> None:
    endpoint.fail_next(1, Fault(status=503, headers={"Retry-After": "1"}))
    client = ClientCredentialsClient("es", issuer=endpoint.issuer, private_key=signing_key("ES256"))
    policy = RetryPolicy(attempts=1, deadline=3.0)
    async with TokenManager({"es": client}, retries=policy) as tokens:
        with pytest.raises(TokenEndpointError):
            await tokens.get_token("es")  # one attempt only: the error says to wait 1 s
        started = time.monotonic()
        assert (await tokens.get_token("es")).access_token
        waited = time.monotonic() - started
    assert waited >= 0.9  # the server's second, not a request sent into it
    first, second = endpoint.requests
    assert second.at - first.at >= 0.9


def test_the_pauses_are_bounded_in_number_and_length() -> None:
    pauses = Pauses(time.monotonic)
    asked = TokenEndpointError("busy", status=429)
    asked.retry_after = 60.0
    for n in range(MAX_PAUSED + 50):
        pauses.note(f"https://idp{n}.example/token", asked)
    assert len(pauses) == MAX_PAUSED
    asked.retry_after = 1e12  # an HTTP-date in the year 33,000
    pauses.note("https://idp0.example/token", asked)
    assert 0 < pauses.left("https://idp0.example/token") <= MAX_PAUSE
    asked.retry_after = 1e-6
    pauses.note("https://gone.example/token", asked)
    time.sleep(0.001)
    assert pauses.left("https://gone.example/token") == 0.0  # passed: forgotten
    assert len(pauses) == MAX_PAUSED - 1  # it took the place of the one ending soonest


# ---- expires_in bounds ------------------------------------------------------------------


def _parse(expires_in: Any) -> float:
    body = orjson.dumps({"access_token": "AT", "token_type": "Bearer", "expires_in": expires_in})
    token = parse_token_response(
        body,
        status=200,
        content_type="application/json",
        now=1000.0,
        requested_scope=None,
        default_lifetime=300.0,
        client="c",
    )
    return token.expires_at - 1000.0


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [
        (1e-9, MIN_LIFETIME),
        (0.5, MIN_LIFETIME),
        (MIN_LIFETIME, MIN_LIFETIME),
        (3600, 3600),
        (MAX_LIFETIME, MAX_LIFETIME),
        (1e12, MAX_LIFETIME),
        (1e300, MAX_LIFETIME),
        ("1e12", MAX_LIFETIME),
    ],
)
def test_expires_in_is_bounded(expires_in: Any, lifetime: float) -> None:
    assert (_token.MIN_LIFETIME, _token.MAX_LIFETIME) == (MIN_LIFETIME, MAX_LIFETIME)
    assert _parse(expires_in) == lifetime


async def test_a_token_that_expires_at_once_is_still_cached_for_a_while() -> None:
    answered: list[str] = []

    async def token(request: web.Request) -> web.Response:
        answered.append(request.path)
        body = {"access_token": f"t{len(answered)}", "token_type": "Bearer", "expires_in": 1e-9}
        return web.json_response(body)

    async with serving(web.post("/token", token)) as url:
        client = ClientCredentialsClient("c", token_endpoint=url + "/token", client_secret=SECRET)
        async with TokenManager({"c": client}) as tokens:
            first = await tokens.get_token("c")
            assert first.expires_at > time.time() + MIN_LIFETIME - 1
            assert await tokens.get_token("c") is first
    assert len(answered) == 1
