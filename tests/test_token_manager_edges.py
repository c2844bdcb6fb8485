"""TokenManager edge cases: closing with callers waiting, borrowed sessions, shared caches,
caller assertions and retries, background backoff, discovery fallbacks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

import jwtmint
from jwtmint.errors import ManagerNotRunningError, TokenEndpointError, TokenRequestError
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import (
    CacheEntry,
    CacheKey,
    ClientCredentialsClient,
    MemoryTokenCache,
    RetryPolicy,
    TokenManager,
    TokenRequestParameters,
)
from jwtmint.tokens._retry import Deadline
from jwtmint.tokens._tasks import enter_within, enter_within_legacy

from .conftest import serving, signing_key
from .test_token_manager import FAST_RETRIES, SECRET, FakeClock, es_client, wait_for


@contextlib.asynccontextmanager
async def metadata_server(
    token_endpoint: str,
    *,
    path: str = "/.well-known/openid-configuration",
    hits: list[str] | None = None,
) -> AsyncIterator[str]:
    """A server whose one document is metadata naming ``token_endpoint``, with its own URL
    as the issuer; yields that issuer. Requests for the document go into ``hits``."""

    async def metadata(request: web.Request) -> web.Response:
        if hits is not None:
            hits.append(request.path)
        return web.json_response({"issuer": issuer, "token_endpoint": token_endpoint})

    async with serving(web.get(path, metadata)) as issuer:
        yield issuer


# ---- lifecycle --------------------------------------------------------------------------


async def test_closing_with_callers_waiting_tells_them_why(endpoint: TokenEndpoint) -> None:
    endpoint.set_fault(Fault(status=200, delay=5.0))
    tokens = TokenManager({"es": es_client(endpoint)})
    await tokens.start()
    waiting = [asyncio.ensure_future(tokens.get_token("es")) for _ in range(3)]
    await wait_for(lambda: endpoint.request_count() == 1)
    await tokens.aclose()
    for caller in waiting:
        with pytest.raises(ManagerNotRunningError, match="closed while"):
            await caller
        assert not caller.cancelled()
    with pytest.raises(ManagerNotRunningError, match="closed"):
        await tokens.get_token("es")
    with pytest.raises(ManagerNotRunningError, match="closed"):
        await tokens.start()


async def test_a_caller_that_is_cancelled_stays_cancelled(endpoint: TokenEndpoint) -> None:
    endpoint.set_fault(Fault(status=200, delay=5.0))
    async with TokenManager({"es": es_client(endpoint)}) as tokens:
        caller = asyncio.ensure_future(tokens.get_token("es"))
        await wait_for(lambda: endpoint.request_count() == 1)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller


# ---- borrowed sessions ------------------------------------------------------------------


async def test_a_borrowed_session_lends_its_pool_not_its_settings(endpoint: TokenEndpoint) -> None:
    wrong = ClientCredentialsClient("basic", issuer=endpoint.issuer, client_secret="w" * 40)
    async with aiohttp.ClientSession(
        headers={"Authorization": "Bearer API-KEY-for-the-api-only"},
        raise_for_status=True,
        auth=None,
    ) as session:
        clients = {"es": es_client(endpoint), "wrong": wrong}
        async with TokenManager(clients, session=session) as tokens:
            assert (await tokens.get_token("es")).access_token
            # the OAuth error is read, not turned into aiohttp's ClientResponseError and retried
            with pytest.raises(TokenRequestError) as caught:
                await tokens.get_token("wrong")
            assert caught.value.error == "invalid_client" and caught.value.attempts == 1
        assert not session.closed and not session.connector.closed  # type: ignore[union-attr]
    assert [r.outcome for r in endpoint.requests] == ["issued", "invalid_client"]


# ---- shared caches ----------------------------------------------------------------------


async def test_managers_sharing_a_cache_never_trade_tokens_between_clients() -> None:
    cache = MemoryTokenCache()
    async with TokenEndpoint() as ep:
        ep.register_client("one", secret=SECRET)
        ep.register_client("two", secret=SECRET)
        first = {"api": ClientCredentialsClient("one", issuer=ep.issuer, client_secret=SECRET)}
        second = {"api": ClientCredentialsClient("two", issuer=ep.issuer, client_secret=SECRET)}
        async with TokenManager(first, cache=cache) as a, TokenManager(second, cache=cache) as b:
            token_a, token_b = await a.get_token("api"), await b.get_token("api")
    assert token_a.access_token != token_b.access_token
    assert (ep.request_count("one"), ep.request_count("two")) == (1, 1)


# ---- caller assertions and retries ------------------------------------------------------


async def test_a_callers_assertion_is_used_once_then_the_clients_own(
    endpoint: TokenEndpoint,
) -> None:
    endpoint.fail_next(2, Fault(status=503))
    passed = jwtmint.AssertionSigner(signing_key("ES256"), "es", endpoint.issuer)
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        await tokens.get_token("es", client_assertion=passed.client_assertion())
    jtis = [r.jti for r in endpoint.requests]
    assert len(jtis) == 3 and len(set(jtis)) == 3


async def test_a_callers_assertion_with_nothing_else_is_not_replayed(
    endpoint: TokenEndpoint,
) -> None:
    endpoint.fail_next(1, Fault(status=503))
    keyless = ClientCredentialsClient("es", issuer=endpoint.issuer, auth_method="private_key_jwt")
    passed = jwtmint.AssertionSigner(signing_key("ES256"), "es", endpoint.issuer)
    async with TokenManager({"es": keyless}, retries=FAST_RETRIES) as tokens:
        with pytest.raises(TokenEndpointError) as caught:
            await tokens.get_token("es", client_assertion=passed.client_assertion())
    assert caught.value.attempts == 1 and endpoint.request_count() == 1


async def test_the_assertion_service_is_asked_once_per_attempt(endpoint: TokenEndpoint) -> None:
    signer = jwtmint.AssertionSigner(signing_key("ES256"), "es", endpoint.issuer)
    asked: list[TokenRequestParameters] = []

    class Service:
        async def get_client_assertion(
            self, client_name: str, parameters: TokenRequestParameters
        ) -> jwtmint.ClientAssertion:
            asked.append(parameters)
            return signer.client_assertion()

    endpoint.fail_next(2, Fault(status=502))
    keyless = ClientCredentialsClient(
        "es", issuer=endpoint.issuer, auth_method="private_key_jwt", scope="read"
    )
    async with TokenManager(
        {"es": keyless}, assertion_service=Service(), retries=FAST_RETRIES
    ) as tokens:
        await tokens.get_token("es", parameters={"tenant": "t1"})
    assert len(asked) == 3
    assert asked[0].scope == "read" and dict(asked[0].parameters) == {"tenant": ("t1",)}
    assert len({r.jti for r in endpoint.requests}) == 3


@pytest.mark.parametrize("error", ["invalid_client", "invalid_scope", "unauthorized_client"])
async def test_refusals_are_never_retried(endpoint: TokenEndpoint, error: str) -> None:
    endpoint.set_fault(Fault(status=400, body={"error": error}))
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        with pytest.raises(TokenRequestError) as caught:
            await tokens.get_token("es")
    assert caught.value.error == error and endpoint.request_count() == 1


async def test_temporarily_unavailable_with_a_400_is_retried(endpoint: TokenEndpoint) -> None:
    endpoint.fail_next(1, Fault(status=400, body={"error": "temporarily_unavailable"}))
    async with TokenManager({"es": es_client(endpoint)}, retries=FAST_RETRIES) as tokens:
        assert (await tokens.get_token("es")).access_token
    assert endpoint.request_count() == 2


async def test_background_renewal_honours_retry_after() -> None:
    clock = FakeClock()
    async with TokenEndpoint(clock=clock, token_lifetime=3600) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager(
            {"es": es_client(ep)},
            clock=clock,
            renewal_buffer=1200,
            renewal_jitter=0,
            retries=RetryPolicy(attempts=1),
        ) as tokens:
            first = await tokens.get_token("es")
            ep.set_fault(Fault(status=429, headers={"Retry-After": "120"}))
            clock.now += 3600 - 1000  # renewal window: 1,000 s of life left
            assert await tokens.get_token("es") is first
            await wait_for(lambda: ep.request_count() == 2 and not tokens._flights)
            clock.now += 100  # within the server's 120 s: nothing is sent
            assert await tokens.get_token("es") is first
            await asyncio.sleep(0.05)
            assert ep.request_count() == 2
            ep.set_fault(None)
            clock.now += 21  # past it
            assert await tokens.get_token("es") is first
            await wait_for(lambda: ep.request_count() == 3)


# ---- discovery --------------------------------------------------------------------------


async def test_discovery_falls_back_to_rfc_8414_metadata(endpoint: TokenEndpoint) -> None:
    # a server with only /.well-known/oauth-authorization-server (no OpenID configuration)
    rfc8414 = "/.well-known/oauth-authorization-server"
    async with metadata_server(endpoint.token_url, path=rfc8414) as issuer:
        client = ClientCredentialsClient("basic", issuer=issuer, client_secret=SECRET)
        async with TokenManager({"b": client}) as tokens:
            assert (await tokens.get_token("b")).access_token
    assert endpoint.request_count("basic") == 1


async def test_metadata_that_points_to_plain_http_elsewhere_is_refused() -> None:
    async with metadata_server("http://idp.example/t") as issuer:
        client = ClientCredentialsClient("b", issuer=issuer, client_secret=SECRET)
        async with TokenManager({"b": client}) as tokens:
            with pytest.raises(jwtmint.DiscoveryError, match="plain http"):
                await tokens.get_token("b")


async def test_optional_discovery_is_one_short_try(endpoint: TokenEndpoint) -> None:
    # endpoint, issuer and key given: the metadata would only pick the algorithm
    hits: list[str] = []

    async def broken(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=503)

    async with serving(web.get("/{tail:.*}", broken)) as issuer:
        client = ClientCredentialsClient(
            "basic", issuer=issuer, token_endpoint=endpoint.token_url, client_secret=SECRET
        )
        keyed = ClientCredentialsClient(
            "es",
            issuer=issuer,
            token_endpoint=endpoint.token_url,
            private_key=signing_key("ES256"),
            audience=endpoint.issuer,
        )
        async with TokenManager({"b": client, "es": keyed}) as tokens:
            await tokens.get_token("b")  # needs no metadata at all
            assert hits == []
            await tokens.get_token("es")
    assert len(hits) == 2  # each well-known URL once, no retries
    assert endpoint.request_count() == 2


class SharedTier:
    """A stand-in for a Redis tier: one store and one lock per key shared by every
    "instance", each instance with its own in-process copy for ``peek``."""

    def __init__(self) -> None:
        self.store: dict[CacheKey, CacheEntry] = {}
        self.locks: dict[CacheKey, asyncio.Lock] = {}

    def instance(self) -> TierInstance:
        return TierInstance(self)


class TierInstance:
    def __init__(self, tier: SharedTier) -> None:
        self.tier = tier
        self.local: dict[CacheKey, CacheEntry] = {}
        self.gets = 0

    def peek(self, key: CacheKey) -> CacheEntry | None:
        return self.local.get(key)

    async def get(self, key: CacheKey) -> CacheEntry | None:
        self.gets += 1
        await asyncio.sleep(0)  # a round trip
        entry = self.tier.store.get(key)
        if entry is not None:
            self.local[key] = entry
        return entry

    async def set(self, key: CacheKey, entry: CacheEntry) -> None:
        await asyncio.sleep(0)
        self.tier.store[key] = self.local[key] = entry

    async def delete(self, key: CacheKey) -> None:
        self.tier.store.pop(key, None)
        self.local.pop(key, None)

    def lock(self, key: CacheKey) -> OwnedLock:
        return OwnedLock(self.tier.locks.setdefault(key, asyncio.Lock()))


class OwnedLock:
    """Like anyio's or a Redis client's locks: only the task that took it may release it."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.owner: asyncio.Task[object] | None = None

    async def __aenter__(self) -> None:
        await self.lock.acquire()
        self.owner = asyncio.current_task()

    async def __aexit__(self, *exc_info: object) -> None:
        assert asyncio.current_task() is self.owner, "released by a task that does not hold it"
        self.lock.release()

    async def acquire(self) -> None:
        await self.__aenter__()

    def release(self) -> None:
        self.lock.release()


async def test_a_shared_tier_makes_one_request_across_instances(endpoint: TokenEndpoint) -> None:
    tier = SharedTier()
    caches = [tier.instance() for _ in range(3)]
    managers = [TokenManager({"es": es_client(endpoint)}, cache=cache) for cache in caches]
    for manager in managers:
        await manager.start()
    try:
        results = await asyncio.gather(*(m.get_token("es") for m in managers for _ in range(20)))
        # every instance now answers from its own copy, with no round trip
        gets = [cache.gets for cache in caches]
        again = [await m.get_token("es") for m in managers]
    finally:
        for manager in managers:
            await manager.aclose()
    assert endpoint.request_count() == 1
    assert len({t.access_token for t in [*results, *again]}) == 1
    assert [cache.gets for cache in caches] == gets


# ---- second review ----------------------------------------------------------------------


async def test_a_strict_client_never_uses_plain_http_another_client_allowed() -> None:
    async with metadata_server("http://idp.example/t") as issuer:
        lax = ClientCredentialsClient(
            "a", issuer=issuer, client_secret=SECRET, allow_insecure_http=True
        )
        strict = ClientCredentialsClient("b", issuer=issuer, client_secret=SECRET)
        async with TokenManager({"a": lax, "b": strict}) as tokens:
            assert tokens._session is not None
            # discovery made for the lax client
            resolved = await tokens._resolver.resolve(tokens._session, "a", lax, Deadline(5.0))
            assert resolved.token_endpoint == "http://idp.example/t"
            with pytest.raises(jwtmint.DiscoveryError, match="plain http"):
                await tokens.get_token("b")


async def test_a_closed_borrowed_session_is_refused() -> None:
    session = aiohttp.ClientSession()
    await session.close()
    tokens = TokenManager(
        {"a": ClientCredentialsClient("a", token_endpoint="https://idp/t", auth_method="none")},
        session=session,
    )
    with pytest.raises(jwtmint.ConfigurationError, match="closed"):
        await tokens.start()


async def test_a_declining_service_after_a_spent_caller_assertion_reports_the_endpoint_error(
    endpoint: TokenEndpoint,
) -> None:
    class Declining:
        async def get_client_assertion(
            self, client_name: str, parameters: TokenRequestParameters
        ) -> None:
            return None

    endpoint.set_fault(Fault(status=503))
    keyless = ClientCredentialsClient("es", issuer=endpoint.issuer, auth_method="private_key_jwt")
    passed = jwtmint.AssertionSigner(signing_key("ES256"), "es", endpoint.issuer)
    async with TokenManager(
        {"es": keyless}, assertion_service=Declining(), retries=FAST_RETRIES
    ) as tokens:
        with pytest.raises(TokenEndpointError) as caught:
            await tokens.get_token("es", client_assertion=passed.client_assertion())
    assert caught.value.status == 503 and caught.value.attempts == 1
    assert endpoint.request_count() == 1


async def test_an_idle_manager_serves_a_stale_token_from_a_shared_cache() -> None:
    clock = FakeClock()
    cache = MemoryTokenCache()
    async with TokenEndpoint(clock=clock) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": es_client(ep)}, cache=cache, clock=clock) as running:
            token = await running.get_token("es")
        idle = TokenManager({"es": es_client(ep)}, cache=cache, clock=clock)
        clock.now = token.expires_at - 30  # stale, still valid
        assert await idle.get_token("es") is token  # served; no renewal without a session
    assert ep.request_count() == 1


async def test_the_shared_lock_wait_is_bounded(endpoint: TokenEndpoint) -> None:
    tier = SharedTier()
    cache = tier.instance()
    key_holder = TokenManager({"es": es_client(endpoint)}, cache=cache)
    key = key_holder._counters["es"].key
    held = cache.lock(key)
    await held.acquire()  # another instance, stuck
    retries = RetryPolicy(attempts=1, deadline=0.2)
    try:
        async with TokenManager({"es": es_client(endpoint)}, cache=cache, retries=retries) as t:
            with pytest.raises(jwtmint.TokenEndpointTimeout, match="lock"):
                await t.get_token("es")
    finally:
        held.release()
    assert endpoint.request_count() == 0


async def test_a_subclass_of_the_memory_cache_is_asked_like_a_tier(
    endpoint: TokenEndpoint,
) -> None:
    class Counting(MemoryTokenCache):
        gets = 0

        async def get(self, key: CacheKey) -> CacheEntry | None:
            Counting.gets += 1
            return await super().get(key)

    async with TokenManager({"es": es_client(endpoint)}, cache=Counting()) as tokens:
        await tokens.get_token("es")
    assert Counting.gets >= 1


async def test_metadata_is_fetched_once_for_clients_that_need_it_and_clients_that_want_it(
    endpoint: TokenEndpoint,
) -> None:
    hits: list[str] = []
    async with metadata_server(endpoint.token_url, hits=hits) as issuer:
        needs = ClientCredentialsClient("basic", issuer=issuer, client_secret=SECRET)
        wants = ClientCredentialsClient(
            "es",
            issuer=issuer,
            token_endpoint=endpoint.token_url,
            private_key=signing_key("ES256"),
            audience=endpoint.issuer,
        )
        async with TokenManager({"needs": needs, "wants": wants}) as tokens:
            await asyncio.gather(tokens.get_token("needs"), tokens.get_token("wants"))
            await tokens.get_token("wants", force_renewal=True)
    assert hits == ["/.well-known/openid-configuration"]


async def test_a_malformed_discovered_endpoint_is_a_discovery_error() -> None:
    async with metadata_server("https://[::1/t") as issuer:
        client = ClientCredentialsClient("b", issuer=issuer, client_secret=SECRET)
        async with TokenManager({"b": client}, retries=FAST_RETRIES) as tokens:
            with pytest.raises(jwtmint.DiscoveryError, match="no usable token_endpoint"):
                await tokens.get_token("b")


@pytest.mark.parametrize("enter", [enter_within, enter_within_legacy])
async def test_entering_a_lock_within_a_deadline(
    enter: Callable[[OwnedLock, float], Awaitable[None]],
) -> None:
    lock = OwnedLock(asyncio.Lock())
    await enter(lock, 1.0)  # free: entered at once, by this task
    assert lock.owner is asyncio.current_task()
    other = OwnedLock(lock.lock)
    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        await enter(other, 0.05)  # held: times out
    await lock.__aexit__(None, None, None)
    await enter(other, 1.0)
    await other.__aexit__(None, None, None)
