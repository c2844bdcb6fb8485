"""TokenManager against jwtmint.testing.TokenEndpoint: real HTTP on 127.0.0.1, real signatures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web

import jwtmint
from jwtmint.errors import (
    ConfigurationError,
    DiscoveryError,
    InvalidTokenResponseError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
)
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import (
    ClientCredentialsClient,
    MemoryTokenCache,
    RetryPolicy,
    TokenManager,
    TokenManagerStats,
    TokenRequestParameters,
)

from .conftest import TOKEN_CLIENT_SECRET, serving, signing_key

SECRET = TOKEN_CLIENT_SECRET
FAST_RETRIES = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, deadline=5.0)


class FakeClock:
    """Epoch seconds that only move when a test says so (shared by server and manager)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def es_client(ep: TokenEndpoint, **kwargs: Any) -> ClientCredentialsClient:
    return ClientCredentialsClient(
        "es", issuer=ep.issuer, private_key=signing_key("ES256"), **kwargs
    )


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until ``condition`` holds; bounded, so a bug fails instead of hanging."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


# ---- cache and single-flight ------------------------------------------------------------


async def test_a_thousand_concurrent_cold_calls_make_one_request(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        results = await asyncio.gather(*(tokens.get_token("es") for _ in range(1000)))
    assert len({t.access_token for t in results}) == 1
    assert endpoint.request_count("es") == 1
    assert endpoint.requests[0].outcome == "issued"


async def test_second_call_is_served_from_the_cache(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        first = await tokens.get_token("es")
        second = await tokens.get_token("es")
    assert second is first
    assert endpoint.request_count() == 1
    info = endpoint.token_info(first.access_token)
    assert info is not None and info["client_id"] == "es"


async def test_force_renewal_makes_a_new_request(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        first = await tokens.get_token("es")
        renewed = await tokens.get_token("es", force_renewal=True)
        assert renewed.access_token != first.access_token
        assert await tokens.get_token("es") is renewed  # the renewal replaced the cached one
    assert endpoint.request_count() == 2
    jtis = [r.jti for r in endpoint.requests]
    assert len(set(jtis)) == 2


async def test_force_renewal_joins_a_request_in_flight(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        cold = asyncio.ensure_future(tokens.get_token("es"))
        await asyncio.sleep(0)  # the cold request is now in flight
        forced = await tokens.get_token("es", force_renewal=True)
        assert (await cold) is forced
    assert endpoint.request_count() == 1


async def test_scope_resource_and_parameters_select_distinct_entries(
    endpoint: TokenEndpoint,
) -> None:
    async with TokenManager({"es": es_client(endpoint, scope="read")}) as tokens:
        default = await tokens.get_token("es")
        variants = [
            await tokens.get_token("es", scope="write"),
            await tokens.get_token("es", resource="https://api.example.com"),
            await tokens.get_token("es", parameters={"tenant": "a"}),
            await tokens.get_token("es", parameters={"tenant": "b"}),
            await tokens.get_token("es", scope="read write"),
        ]
        assert endpoint.request_count() == 6
        assert len({t.access_token for t in [default, *variants]}) == 6
        # the same combinations again are cache hits; scope order does not matter
        assert await tokens.get_token("es", scope="read") is default
        assert await tokens.get_token("es", scope="write read") is variants[4]
        assert await tokens.get_token("es", parameters={"tenant": "b"}) is variants[3]
    assert endpoint.request_count() == 6
    sent = endpoint.requests
    assert sent[0].scope == "read" and sent[1].scope == "write"
    assert sent[2].resource == ("https://api.example.com",) and sent[2].scope == "read"
    assert sent[3].parameters == {"tenant": ["a"]}


async def test_concurrent_calls_for_different_keys_do_not_wait_on_each_other(
    endpoint: TokenEndpoint,
) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        results = await asyncio.gather(
            *(tokens.get_token("es", parameters={"tenant": str(i % 10)}) for i in range(200))
        )
    assert len({t.access_token for t in results}) == 10
    assert endpoint.request_count() == 10


# ---- renewal ----------------------------------------------------------------------------


async def test_renewal_happens_before_expiry_without_a_caller_waiting() -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=3600) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager(
            {"es": es_client(ep)}, clock=clock, renewal_buffer=60, renewal_jitter=0
        ) as tokens:
            first = await tokens.get_token("es")
            assert first.expires_at == clock.now + 3600
            clock.now += 3600 - 61  # not yet in the renewal window
            assert await tokens.get_token("es") is first
            clock.now += 30  # inside it, 31 s before expiry
            served = await tokens.get_token("es")
            # the caller got the current token at once; the renewal runs behind it
            assert served is first and ep.request_count() == 1
            await wait_for(lambda: ep.request_count() == 2 and not tokens._flights)
            renewed = await tokens.get_token("es")
            assert renewed.access_token != first.access_token
            assert renewed.expires_at == clock.now + 3600
            assert ep.request_count() == 2


async def test_an_expired_token_is_never_served() -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=600) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": es_client(ep)}, clock=clock) as tokens:
            first = await tokens.get_token("es")
            clock.now += 601
            second = await tokens.get_token("es")
    assert second.access_token != first.access_token
    assert ep.request_count() == 2


async def test_a_failed_background_renewal_keeps_serving_and_backs_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=3600) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager(
            {"es": es_client(ep)},
            clock=clock,
            renewal_jitter=0,
            retries=RetryPolicy(attempts=1),
        ) as tokens:
            first = await tokens.get_token("es")
            ep.set_fault(Fault(status=503))
            clock.now += 3600 - 30
            with caplog.at_level(logging.WARNING, logger="jwtmint.tokens"):
                assert await tokens.get_token("es") is first
                await wait_for(lambda: ep.request_count() == 2)
                await wait_for(lambda: not tokens._flights)
            assert "background renewal" in caplog.text and "'es'" in caplog.text
            # backing off: more calls right away serve the token and send nothing
            for _ in range(10):
                assert await tokens.get_token("es") is first
            await asyncio.sleep(0.05)
            assert ep.request_count() == 2
            ep.set_fault(None)
            clock.now += 10  # past the backoff, still before expiry
            assert await tokens.get_token("es") is first
            await wait_for(lambda: ep.request_count() == 3)
            await wait_for(lambda: not tokens._flights)
            assert (await tokens.get_token("es")).access_token != first.access_token
            stats = tokens.stats()
            assert (stats.background_renewals, stats.background_failures) == (2, 1)


async def test_short_lived_tokens_renew_at_half_life() -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=40) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": es_client(ep)}, clock=clock, renewal_buffer=60) as tokens:
            first = await tokens.get_token("es")  # lives 40 s: shorter than the buffer
            clock.now += 19
            assert await tokens.get_token("es") is first
            await asyncio.sleep(0.05)
            assert ep.request_count() == 1
            clock.now += 2  # past half its life: renewed in the background
            assert await tokens.get_token("es") is first
            await wait_for(lambda: ep.request_count() == 2)


async def test_missing_expires_in_uses_the_default_lifetime() -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=None) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": es_client(ep)}, clock=clock, default_lifetime=120) as tokens:
            token = await tokens.get_token("es")
    assert "expires_in" not in token.raw
    assert token.expires_at == clock.now + 120


# ---- assertions -------------------------------------------------------------------------


async def test_assertion_audience_is_the_issuer(
    endpoint: TokenEndpoint, kernel: ModuleType
) -> None:
    # the manager's signers mint through the active kernel: run on the C one and its twin
    key = signing_key("ES256")
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        await tokens.get_token("es")
    claims = endpoint.requests[0].assertion_claims
    header = endpoint.requests[0].assertion_header
    assert claims is not None and header is not None
    assert claims["aud"] == endpoint.issuer
    assert claims["iss"] == claims["sub"] == "es"
    assert header["typ"] == "client-authentication+jwt" and header["alg"] == "ES256"
    assert header["kid"] == key.kid


async def test_without_an_issuer_the_audience_is_the_token_endpoint() -> None:
    async with TokenEndpoint(accept_token_endpoint_audience=True) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        client = ClientCredentialsClient(
            "es", token_endpoint=ep.token_url, private_key=signing_key("ES256")
        )
        async with TokenManager({"es": client}) as tokens:
            await tokens.get_token("es")
    claims = ep.requests[0].assertion_claims
    assert claims is not None and claims["aud"] == ep.token_url


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256", "EdDSA", "HS256"])
async def test_the_assertions_sent_verify_with_pyjwt(algorithm: str) -> None:
    # a bare server that keeps the raw form, so the very assertion sent is checked by PyJWT
    forms: list[dict[str, str]] = []

    async def token(request: web.Request) -> web.Response:
        forms.append(dict(await request.post()))  # type: ignore[arg-type]
        return web.json_response({"access_token": "AT", "token_type": "Bearer"})

    key = signing_key(algorithm)
    async with serving(web.post("/token", token)) as base:
        url = f"{base}/token"
        if isinstance(key.key, bytes):
            client = ClientCredentialsClient(
                "app", token_endpoint=url, client_secret=key.key, auth_method="client_secret_jwt"
            )
            verify_with: Any = key.key
        else:
            client = ClientCredentialsClient(
                "app", token_endpoint=url, private_key=key, signing_algorithm=algorithm
            )
            verify_with = key.key.public_key()
        async with TokenManager({"app": client}) as tokens:
            await tokens.get_token("app")
            await tokens.get_token("app", force_renewal=True)
    assert len(forms) == 2
    seen = set()
    for form in forms:
        assert form["grant_type"] == "client_credentials" and form["client_id"] == "app"
        assert form["client_assertion_type"] == jwtmint.JWT_BEARER
        claims = jwt.decode(
            form["client_assertion"], verify_with, algorithms=[algorithm], audience=url
        )
        assert claims["iss"] == claims["sub"] == "app"
        assert claims["exp"] - claims["iat"] == 60
        seen.add(claims["jti"])
        assert jwt.get_unverified_header(form["client_assertion"])["typ"] == (
            "client-authentication+jwt"
        )
    assert len(seen) == 2


class Service:
    """A ClientAssertionService that mints with its own signer, or declines."""

    def __init__(self, signer: jwtmint.AssertionSigner | None) -> None:
        self.signer = signer
        self.calls: list[tuple[str, TokenRequestParameters]] = []

    async def get_client_assertion(
        self, client_name: str, parameters: TokenRequestParameters
    ) -> jwtmint.ClientAssertion | None:
        self.calls.append((client_name, parameters))
        return self.signer.client_assertion() if self.signer else None


async def test_assertion_precedence_parameter_then_service_then_signer_then_secret() -> None:
    own, service_key, passed_key = (jwtmint.generate_key("ES256") for _ in range(3))
    async with TokenEndpoint() as ep:
        ep.register_client("es", public_key=own)
        ep.register_client("svc", public_key=service_key)
        ep.register_client("passed", public_key=passed_key)
        ep.register_client("hs", secret=SECRET, auth_method="client_secret_jwt")
        clients = {
            "es": ClientCredentialsClient("es", issuer=ep.issuer, private_key=own),
            "svc": ClientCredentialsClient("svc", issuer=ep.issuer, auth_method="private_key_jwt"),
            "passed": ClientCredentialsClient("passed", issuer=ep.issuer, private_key=own),
            "hs": ClientCredentialsClient(
                "hs", issuer=ep.issuer, client_secret=SECRET, auth_method="client_secret_jwt"
            ),
        }
        service = Service(jwtmint.AssertionSigner(service_key, "svc", ep.issuer))
        declining = Service(None)
        async with TokenManager(clients, assertion_service=service) as tokens:
            # the service's assertion (signed with service_key) beats the client's own key
            await tokens.get_token("svc")
            # an assertion passed in wins over the service: signed with passed_key here
            passed = jwtmint.AssertionSigner(passed_key, "passed", ep.issuer).client_assertion()
            await tokens.get_token("passed", client_assertion=passed)
        async with TokenManager(clients, assertion_service=declining) as tokens:
            await tokens.get_token("es")  # service says None: the client's own signer
            await tokens.get_token("hs")  # the secret signs an assertion, never sent as such
    outcomes = {r.client_id: (r.outcome, r.auth_method) for r in ep.requests}
    assert outcomes == {
        "svc": ("issued", "private_key_jwt"),
        "passed": ("issued", "private_key_jwt"),
        "es": ("issued", "private_key_jwt"),
        "hs": ("issued", "client_secret_jwt"),
    }
    assert service.calls[0][0] == "svc" and service.calls[0][1].force_renewal is False
    assert [name for name, _ in declining.calls] == ["es", "hs"]


async def test_a_service_that_declines_for_a_keyless_client_is_a_configuration_error(
    endpoint: TokenEndpoint,
) -> None:
    client = ClientCredentialsClient("es", issuer=endpoint.issuer, auth_method="private_key_jwt")
    async with TokenManager({"es": client}, assertion_service=Service(None)) as tokens:
        with pytest.raises(ConfigurationError, match="without a private_key"):
            await tokens.get_token("es")
    assert endpoint.request_count() == 0


async def test_every_retry_carries_a_new_jti(endpoint: TokenEndpoint, kernel: ModuleType) -> None:
    endpoint.fail_next(2, Fault(status=503))
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        token = await tokens.get_token("es")
    assert token.access_token
    assert [r.outcome for r in endpoint.requests] == ["fault", "fault", "issued"]
    jtis = [r.jti for r in endpoint.requests]
    assert None not in jtis and len(set(jtis)) == 3


async def test_the_signing_algorithm_comes_from_discovery() -> None:
    rsa = signing_key("RS256")
    async with TokenEndpoint() as ep:
        jwk = rsa.public_jwk()
        del jwk["alg"]  # registered for any RSA algorithm; the server's list decides
        ep.register_client("rs", public_key=jwk)
        ep.metadata_overrides["token_endpoint_auth_signing_alg_values_supported"] = ["PS256"]
        client = ClientCredentialsClient("rs", issuer=ep.issuer, private_key=rsa)
        async with TokenManager({"rs": client}) as tokens:
            await tokens.get_token("rs")
    header = ep.requests[0].assertion_header
    assert header is not None and header["alg"] == "PS256"


# ---- the secret-based methods -----------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_secret_methods(method: str) -> None:
    odd = "id:with+odd chars"
    async with TokenEndpoint() as ep:
        ep.register_client(odd, secret=SECRET + ":+", auth_method=method)
        client = ClientCredentialsClient(
            odd, token_endpoint=ep.token_url, client_secret=SECRET + ":+", auth_method=method
        )
        async with TokenManager({"c": client}) as tokens:
            await tokens.get_token("c")
    assert [(r.client_id, r.auth_method, r.outcome) for r in ep.requests] == [
        (odd, method, "issued")
    ]


async def test_public_client_sends_only_its_id() -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("pub", auth_method="none")
        client = ClientCredentialsClient("pub", token_endpoint=ep.token_url, auth_method="none")
        async with TokenManager({"pub": client}) as tokens:
            await tokens.get_token("pub")
    assert ep.requests[0].auth_method == "none" and ep.requests[0].outcome == "issued"


# ---- errors and retries -----------------------------------------------------------------


async def test_refusals_raise_at_once_and_are_not_cached(endpoint: TokenEndpoint) -> None:
    wrong = ClientCredentialsClient("es", issuer=endpoint.issuer, private_key=signing_key("PS256"))
    async with TokenManager({"wrong": wrong, "es": es_client(endpoint)}) as tokens:
        for _ in range(2):  # the second call asks again: errors are not cached
            with pytest.raises(TokenRequestError) as caught:
                await tokens.get_token("wrong")
            error = caught.value
            assert not isinstance(error, TokenEndpointError)
            assert error.error == "invalid_client" and error.status in (400, 401)
            assert error.attempts == 1 and error.client == "wrong"
        assert endpoint.request_count() == 2
        endpoint.fail_next(1, Fault(status=400, body={"error": "invalid_scope"}))
        with pytest.raises(TokenRequestError) as caught:
            await tokens.get_token("es")
        assert caught.value.error == "invalid_scope" and endpoint.request_count() == 3
        assert (await tokens.get_token("es")).access_token  # then it works: nothing cached
    assert endpoint.request_count() == 4


async def test_server_errors_are_retried_then_raise(endpoint: TokenEndpoint) -> None:
    endpoint.set_fault(Fault(status=503))
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        with pytest.raises(TokenEndpointError) as caught:
            await tokens.get_token("es")
    error = caught.value
    assert error.status == 503 and error.attempts == 3
    assert error.error == "temporarily_unavailable"
    assert "gave up after 3 attempts" in str(error)
    assert endpoint.request_count() == 3


async def test_retry_after_is_honoured(endpoint: TokenEndpoint) -> None:
    endpoint.fail_next(1, Fault(status=429, headers={"Retry-After": "1"}))
    loop = asyncio.get_running_loop()
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        started = loop.time()
        await tokens.get_token("es")
        assert loop.time() - started >= 0.95
    assert [r.outcome for r in endpoint.requests] == ["fault", "issued"]


async def test_retry_after_beyond_the_deadline_raises_at_once(endpoint: TokenEndpoint) -> None:
    endpoint.fail_next(1, Fault(status=429, headers={"Retry-After": "120"}))
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        with pytest.raises(TokenEndpointError, match="retry after 120 s") as caught:
            await tokens.get_token("es")
    assert caught.value.status == 429 and endpoint.request_count() == 1


async def test_a_slow_endpoint_times_out(endpoint: TokenEndpoint) -> None:
    endpoint.set_fault(Fault(status=200, delay=2.0))
    retries = RetryPolicy(attempts=2, backoff=0.01, deadline=5)
    async with TokenManager(
        {"es": es_client(endpoint)}, request_timeout=0.2, retries=retries
    ) as tokens:
        with pytest.raises(TokenEndpointTimeout) as caught:
            await tokens.get_token("es")
    assert isinstance(caught.value, TimeoutError) and caught.value.attempts == 2


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [(Fault(garbage=True), InvalidTokenResponseError), (Fault(drop=True), TokenEndpointError)],
)
async def test_garbage_and_dropped_connections_are_retried_then_raise(
    endpoint: TokenEndpoint, fault: Fault, error_type: type[Exception]
) -> None:
    endpoint.set_fault(fault)
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        with pytest.raises(error_type):
            await tokens.get_token("es")
        assert endpoint.request_count() == 3
        endpoint.set_fault(None)
        assert (await tokens.get_token("es")).access_token


async def test_one_error_reaches_every_waiter_and_is_not_cached(endpoint: TokenEndpoint) -> None:
    endpoint.fail_next(1, Fault(status=401, body={"error": "invalid_client"}))
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        results = await asyncio.gather(
            *(tokens.get_token("es") for _ in range(50)), return_exceptions=True
        )
        assert all(isinstance(r, TokenRequestError) for r in results)
        assert len({id(r) for r in results}) == 1  # one request, one error, shared
        assert (await tokens.get_token("es")).access_token
    assert endpoint.request_count() == 2


async def test_a_cancelled_caller_does_not_cancel_the_others(endpoint: TokenEndpoint) -> None:
    endpoint.fail_next(1, Fault(status=200, delay=0.3))
    endpoint.fail_next(0)
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        impatient = asyncio.ensure_future(tokens.get_token("es"))
        patient = asyncio.ensure_future(tokens.get_token("es"))
        await asyncio.sleep(0.05)
        impatient.cancel()
        token = await patient
        assert impatient.cancelled() and token.access_token


# ---- discovery --------------------------------------------------------------------------


async def test_discovery_is_fetched_once_for_many_clients() -> None:
    async with TokenEndpoint() as ep:
        names = [f"c{i}" for i in range(20)]
        for name in names:
            ep.register_client(name, secret=SECRET)
        clients = {
            n: ClientCredentialsClient(n, issuer=ep.issuer, client_secret=SECRET) for n in names
        }
        async with TokenManager(clients) as tokens:
            await asyncio.gather(*(tokens.get_token(n) for n in names))
            assert len(tokens._resolver._metadata) == 1
    assert ep.request_count() == 20


async def test_metadata_for_another_issuer_is_refused() -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        ep.metadata_overrides["issuer"] = "https://evil.example"
        async with TokenManager({"es": es_client(ep)}, retries=FAST_RETRIES) as tokens:
            with pytest.raises(DiscoveryError, match="RFC 8414"):
                await tokens.get_token("es")
    assert ep.request_count() == 0


async def test_no_metadata_and_no_token_endpoint_is_a_discovery_error() -> None:
    async with TokenEndpoint(discovery=False) as ep:
        ep.register_client("basic", secret=SECRET)
        client = ClientCredentialsClient("basic", issuer=ep.issuer, client_secret=SECRET)
        async with TokenManager({"b": client}, retries=FAST_RETRIES) as tokens:
            with pytest.raises(DiscoveryError, match="configure token_endpoint="):
                await tokens.get_token("b")
        # with the endpoint given, metadata is optional even for assertions
        keyed = ClientCredentialsClient(
            "es", issuer=ep.issuer, token_endpoint=ep.token_url, private_key=signing_key("ES256")
        )
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": keyed}) as tokens:
            assert (await tokens.get_token("es")).access_token


# ---- session and lifecycle --------------------------------------------------------------


async def test_a_borrowed_session_is_not_closed(endpoint: TokenEndpoint) -> None:
    async with aiohttp.ClientSession() as session:
        async with TokenManager({"es": es_client(endpoint)}, session=session) as tokens:
            await tokens.get_token("es")
        assert not session.closed


async def test_a_shared_cache_serves_a_second_manager(endpoint: TokenEndpoint) -> None:
    cache = MemoryTokenCache()
    async with TokenManager({"es": es_client(endpoint)}, cache=cache) as one:
        first = await one.get_token("es")
    async with TokenManager({"es": es_client(endpoint)}, cache=cache) as two:
        assert await two.get_token("es") is first
    assert endpoint.request_count() == 1


async def test_repr_shows_no_tokens(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        token = await tokens.get_token("es")
        assert token.access_token not in repr(tokens) + repr(tokens.cache) + repr(token)


async def test_stats_count_requests_attempts_and_coalesced_callers(
    endpoint: TokenEndpoint,
) -> None:
    endpoint.fail_next(1, Fault(status=503))
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        assert tokens.stats().requests == 0 and tokens.stats().hits == 0
        await asyncio.gather(*(tokens.get_token("es") for _ in range(10)))
        endpoint.set_fault(Fault(status=400, body={"error": "invalid_scope"}))
        with pytest.raises(TokenRequestError):
            await tokens.get_token("es", scope="other")
        stats = tokens.stats()
    assert replace(stats, clients={}) == TokenManagerStats(
        requests=2, attempts=3, tokens=1, failures=1, coalesced=9, misses=11, clients={}
    )
