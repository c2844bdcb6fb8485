"""What is retried and how long the manager waits: retries a secret can authenticate, 408,
Retry-After as a floor-kept backoff and as a pause remembered per endpoint, and the bounds
put on a server's expires_in."""

from __future__ import annotations

import itertools
import random

import pytest

import jwtmint
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, RetryPolicy, TokenManager, _retry

from .conftest import signing_key
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
    monkeypatch.setattr(_retry.random, "uniform", lambda low, high: high)
    async with TokenManager({"es": client}, retries=policy) as tokens:
        await tokens.get_token("es")
    requests = endpoint.requests
    assert [r.outcome for r in requests] == ["fault"] * 3 + ["issued"]
    assert all(later.at - earlier.at >= 0.09 for earlier, later in itertools.pairwise(requests))
