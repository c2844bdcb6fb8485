"""Per-client stats of TokenManager (hits, misses, requests, renewals, joins, failures by code)
against a loopback TokenEndpoint, and what adds up: calls = hits + misses and
misses = (requests - renewals) + joins."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import socket

import aiohttp
import pytest

from jwtmint.errors import (
    ConfigurationError,
    DiscoveryError,
    InvalidTokenResponseError,
    ManagerNotRunningError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
    UnknownClientError,
)
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import (
    ClientCredentialsClient,
    ClientStats,
    RetryPolicy,
    TokenManager,
    TokenManagerStats,
)
from jwtmint.tokens._metrics import MAX_ERROR_CODES, ClientCounters, error_code

from .conftest import TOKEN_CLIENT_SECRET, signing_key
from .test_token_manager import FakeClock, es_client, wait_for

NO_RETRIES = RetryPolicy(attempts=1, deadline=5.0)


def basic_client(ep: TokenEndpoint, secret: str = TOKEN_CLIENT_SECRET) -> ClientCredentialsClient:
    return ClientCredentialsClient(
        "basic", token_endpoint=ep.token_url, client_secret=secret, allow_insecure_http=True
    )


def assert_adds_up(stats: TokenManagerStats, calls: dict[str, int]) -> None:
    """The documented sums, per client and in total; ``calls`` per client counted by the test."""
    for name, client in stats.clients.items():
        assert client.hits + client.misses == calls.get(name, 0), name
        assert client.misses == client.requests - client.renewals + client.joins, name
    assert stats.hits == sum(c.hits for c in stats.clients.values())
    assert stats.misses == sum(c.misses for c in stats.clients.values())
    assert stats.hits + stats.misses == sum(calls.values())
    assert stats.misses == stats.requests - stats.background_renewals + stats.coalesced
    assert stats.requests == stats.tokens + stats.failures + stats.in_flight


async def test_a_new_manager_lists_every_client_with_nothing_counted(
    endpoint: TokenEndpoint,
) -> None:
    async with TokenManager({"es": es_client(endpoint), "basic": basic_client(endpoint)}) as t:
        stats = t.stats()
    assert set(stats.clients) == {"es", "basic"}
    assert stats.clients["es"] == ClientStats(
        hits=0,
        misses=0,
        requests=0,
        renewals=0,
        joins=0,
        failures={},
        last_error=None,
        expires_in=None,
        tokens=0,
    )
    assert (stats.hits, stats.misses) == (0, 0)


async def test_hits_after_one_request_and_seconds_to_expiry(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint), "basic": basic_client(endpoint)}) as t:
        first = await t.get_token("es")
        for _ in range(25):
            assert await t.get_token("es") is first
        stats = t.stats()
    es = stats.clients["es"]
    assert (es.hits, es.misses, es.requests, es.joins, es.tokens) == (25, 1, 1, 0, 1)
    assert es.expires_in is not None and 3500 < es.expires_in <= 3600  # the endpoint's 1 h
    assert stats.clients["basic"].expires_in is None  # nothing cached for it
    assert endpoint.request_count() == 1
    assert_adds_up(stats, {"es": 26})


async def test_calls_with_their_own_scope_count_for_the_client(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as t:
        await t.get_token("es", scope="a")
        await t.get_token("es", scope="a")
        await t.get_token("es", scope="b")
        stats = t.stats()
    es = stats.clients["es"]
    assert (es.hits, es.misses, es.requests) == (1, 2, 2)
    assert es.expires_in is None  # only the default token (no scope of the call's) is told
    assert_adds_up(stats, {"es": 3})


async def test_concurrent_cold_calls_are_one_request_and_joins(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as t:
        await asyncio.gather(*(t.get_token("es") for _ in range(50)))
        stats = t.stats()
    es = stats.clients["es"]
    assert (es.hits, es.misses, es.requests, es.joins) == (0, 50, 1, 49)
    assert stats.coalesced == 49 and endpoint.request_count() == 1
    assert_adds_up(stats, {"es": 50})


async def test_a_refusal_is_counted_by_its_rfc6749_code(endpoint: TokenEndpoint) -> None:
    wrong = basic_client(endpoint, secret="not the secret registered for this client")
    async with TokenManager({"basic": wrong, "es": es_client(endpoint)}) as t:
        for _ in range(2):
            with pytest.raises(TokenRequestError) as refused:
                await t.get_token("basic")
            assert refused.value.error == "invalid_client"
        await t.get_token("es")
        stats = t.stats()
    basic = stats.clients["basic"]
    assert basic.failures == {"invalid_client": 2} and basic.last_error == "invalid_client"
    assert (basic.misses, basic.requests, basic.tokens) == (2, 2, 0)
    assert stats.clients["es"].failures == {} and stats.clients["es"].last_error is None
    assert stats.failures == 2
    assert_adds_up(stats, {"basic": 2, "es": 1})


async def test_a_timeout_and_an_unreachable_endpoint_are_counted(
    endpoint: TokenEndpoint,
) -> None:
    with socket.socket() as unused:  # a port nothing listens on once closed
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    gone = ClientCredentialsClient(
        "gone",
        token_endpoint=f"http://127.0.0.1:{port}/token",
        client_secret=TOKEN_CLIENT_SECRET,
        allow_insecure_http=True,
    )
    clients = {"es": es_client(endpoint), "gone": gone}
    async with TokenManager(clients, retries=NO_RETRIES, request_timeout=0.3) as t:
        endpoint.fail_next(1, Fault(delay=3.0))
        with pytest.raises(TokenEndpointTimeout):
            await t.get_token("es")
        await t.get_token("es")  # the next request is answered
        with pytest.raises(TokenEndpointError):
            await t.get_token("gone")
        stats = t.stats()
    es, unreachable = stats.clients["es"], stats.clients["gone"]
    assert es.failures == {"timeout": 1} and es.last_error == "timeout"
    assert (es.requests, es.tokens, es.misses) == (2, 1, 2)
    assert es.expires_in is not None  # the last failure does not hide the cached token
    assert unreachable.failures == {"unreachable": 1}
    assert_adds_up(stats, {"es": 2, "gone": 1})


async def test_background_renewals_of_short_lived_tokens() -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=40) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": es_client(ep)}, clock=clock, renewal_buffer=60) as t:
            first = await t.get_token("es")  # lives 40 s: renewed at half its life
            clock.now += 21
            assert await t.get_token("es") is first  # served while the renewal starts
            assert await t.get_token("es") is first  # the renewal is in flight: served too
            await wait_for(lambda: not t._flights)
            renewed = await t.get_token("es")
            assert renewed.access_token != first.access_token
            stats = t.stats()
    es = stats.clients["es"]
    assert (es.requests, es.renewals, es.tokens) == (2, 1, 2)
    assert (es.hits, es.misses, es.joins) == (3, 1, 0)
    assert es.expires_in is not None and 39 <= es.expires_in <= 40  # the renewed token's
    assert stats.background_renewals == 1
    assert_adds_up(stats, {"es": 4})


async def test_a_failed_background_renewal_is_a_failure_of_the_client() -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=40) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager(
            {"es": es_client(ep)}, clock=clock, renewal_buffer=60, retries=NO_RETRIES
        ) as t:
            first = await t.get_token("es")
            ep.set_fault(Fault(status=400, body={"error": "invalid_grant"}))
            clock.now += 21
            assert await t.get_token("es") is first
            await wait_for(lambda: not t._flights)
            stats = t.stats()
    es = stats.clients["es"]
    assert (es.requests, es.renewals, es.failures) == (2, 1, {"invalid_grant": 1})
    assert stats.background_failures == 1 and es.last_error == "invalid_grant"
    assert_adds_up(stats, {"es": 2})


async def test_calls_that_fail_before_looking_are_not_counted(endpoint: TokenEndpoint) -> None:
    t = TokenManager({"es": es_client(endpoint)})
    with pytest.raises(UnknownClientError):
        await t.get_token("nobody")
    with pytest.raises(UnknownClientError):
        await t.get_token("nobody", scope="x")
    with pytest.raises(ManagerNotRunningError):  # not started: no request could be made
        await t.get_token("es")
    assert_adds_up(t.stats(), {})


async def test_middleware_lookups_count_as_calls(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as t:
        source = t.token_source("es")
        first = await source.current()
        assert await source.current() is first
        await t.get_token("es")
        stats = t.stats()
    assert (stats.clients["es"].hits, stats.clients["es"].misses) == (2, 1)
    assert_adds_up(stats, {"es": 3})


async def test_a_burst_of_401s_through_the_middleware_adds_up(endpoint: TokenEndpoint) -> None:
    async with (
        TokenManager({"es": es_client(endpoint)}) as t,
        aiohttp.ClientSession(middlewares=[t.middleware("es")]) as api,
    ):
        async with api.get(f"{endpoint.url}/api/warm") as response:
            assert response.status == 200
        endpoint.revoke_all()

        async def call(i: int) -> int:
            async with api.get(f"{endpoint.url}/api/{i}") as response:
                return response.status

        assert await asyncio.gather(*(call(i) for i in range(20))) == [200] * 20
        stats = t.stats()
    es = stats.clients["es"]
    assert (es.requests, es.renewals, es.tokens) == (2, 0, 2)
    # 21 lookups (1 miss, then 20 hits of the revoked token); 20 renewals after the 401s: one
    # request, joined or served the renewed token
    assert es.misses >= 2 and es.hits >= 20
    assert_adds_up(stats, {"es": es.hits + es.misses})
    assert es.hits + es.misses == 21 + 20


async def test_a_forced_renewal_is_a_miss(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as t:
        await t.get_token("es")
        await asyncio.gather(*(t.get_token("es", force_renewal=True) for _ in range(3)))
        stats = t.stats()
    es = stats.clients["es"]
    assert (es.misses, es.requests, es.joins, es.hits) == (4, 2, 2, 0)
    assert_adds_up(stats, {"es": 4})


async def test_a_shared_tier_hit_is_a_hit(endpoint: TokenEndpoint) -> None:
    from .test_token_manager_edges import SharedTier

    tier = SharedTier()
    async with (
        TokenManager({"es": es_client(endpoint)}, cache=tier.instance()) as first,
        TokenManager({"es": es_client(endpoint)}, cache=tier.instance()) as second,
    ):
        token = await first.get_token("es")
        assert await second.get_token("es") == token  # read from the tier: no request
        assert await second.get_token("es") == token  # then from its own memory
        stats = second.stats()
    es = stats.clients["es"]
    assert (es.hits, es.misses, es.requests) == (2, 0, 0)
    assert es.expires_in is not None  # its in-process copy
    assert endpoint.request_count() == 1
    assert_adds_up(stats, {"es": 2})


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TokenRequestError("refused", error="invalid_scope"), "invalid_scope"),
        (TokenEndpointError("503", error="temporarily_unavailable"), "temporarily_unavailable"),
        (TokenRequestError("bad code", error="line\nbreak"), "invalid_response"),
        (TokenRequestError("too long", error="x" * 65), "invalid_response"),
        (TokenEndpointTimeout("slow"), "timeout"),
        (DiscoveryError("no metadata"), "discovery"),
        (InvalidTokenResponseError("html"), "invalid_response"),
        (TokenEndpointError("refused connection"), "unreachable"),
        (TokenEndpointError("bad gateway", status=502), "http_502"),
        (TokenRequestError("a 404 page, no OAuth error", status=404), "http_404"),
        (TokenRequestError("a bare 401", status=401), "http_401"),
        (ConfigurationError("no key"), "configuration"),
        (RuntimeError("a bug"), "other"),
    ],
)
def test_error_codes(error: BaseException, code: str) -> None:
    assert error_code(error) == code


def test_a_server_inventing_codes_fills_one_other_bucket() -> None:
    from jwtmint.tokens._cache import CacheKey

    counters = ClientCounters(CacheKey("es"))
    for number in range(MAX_ERROR_CODES + 5):
        counters.failed(TokenRequestError("x", error=f"code_{number}"), background=False)
    assert len(counters.failures) == MAX_ERROR_CODES + 1
    assert counters.failures["other"] == 5 and counters.last_error == "other"


async def test_stats_are_a_snapshot_that_asdict_and_pickle_take(endpoint: TokenEndpoint) -> None:
    async with TokenManager({"es": es_client(endpoint)}) as t:
        await t.get_token("es")
        stats = t.stats()
        stats.clients["es"].failures["made_up"] = 1  # type: ignore[index]
        assert t.stats().clients["es"].failures == {}  # a copy: the manager's are untouched
    with pytest.raises(AttributeError):
        stats.hits = 1  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(stats)) == stats
    as_dict = dataclasses.asdict(stats)
    assert as_dict["clients"]["es"]["misses"] == 1 and as_dict["misses"] == 1
    json.dumps(as_dict)
