"""RedisTokenCache against a real redis-server: sharing, sealing, rotation, bad values,
invalidation, the lock, and Redis trouble as a miss."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as redis_asyncio

from jwtmint.errors import ConfigurationError
from jwtmint.testing import RedisServer, TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, RedisTokenCache, Token, TokenManager
from jwtmint.tokens._cache import CacheKey
from jwtmint.tokens._redis_format import entry_id

from .conftest import TOKEN_CLIENT_SECRET

KEY_1, KEY_2 = os.urandom(32), os.urandom(32)
TENANT_SECRET = "tenant-acme-7f3c"  # a parameter value: never in a Redis key name or value


def _client(endpoint: TokenEndpoint) -> ClientCredentialsClient:
    return ClientCredentialsClient(
        "basic", token_endpoint=endpoint.token_url, client_secret=TOKEN_CLIENT_SECRET
    )


class Fleet:
    """Managers, each on its own RedisTokenCache (its own connections), one Redis."""

    def __init__(self, endpoint: TokenEndpoint, stack: AsyncExitStack) -> None:
        self.endpoint = endpoint
        self.stack = stack
        self.caches: list[RedisTokenCache] = []

    async def manager(self, url: str, **options: object) -> TokenManager:
        cache = await self.stack.enter_async_context(RedisTokenCache(url, **options))  # type: ignore[arg-type]
        self.caches.append(cache)
        manager = TokenManager({"basic": _client(self.endpoint)}, cache=cache)
        return await self.stack.enter_async_context(manager)


@pytest.fixture
async def fleet(endpoint: TokenEndpoint) -> AsyncIterator[Fleet]:
    async with AsyncExitStack() as stack:
        yield Fleet(endpoint, stack)


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def _eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _everything(raw: redis_asyncio.Redis) -> dict[bytes, bytes]:
    names = [name async for name in raw.scan_iter(count=1000)]
    values = await raw.mget(names) if names else []
    return {
        name: value for name, value in zip(names, values, strict=True) if isinstance(value, bytes)
    }


# ---- sharing -----------------------------------------------------------------------------


async def test_two_instances_make_one_request_per_key(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    first = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    second = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    calls = [m.get_token("basic", scope=f"s{i}") for i in range(40) for m in (first, second)]
    tokens = await asyncio.gather(*calls)
    assert fleet.endpoint.request_count() == 40
    for i in range(40):
        assert tokens[2 * i] == tokens[2 * i + 1]
    assert len({t.access_token for t in tokens}) == 40
    stats = [cache.stats() for cache in fleet.caches]
    assert sum(s.writes for s in stats) == 40 and sum(s.errors for s in stats) == 0


async def test_concurrent_callers_of_one_instance_share_one_redis_read_and_request(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    tokens = await fleet.manager(redis_server.url)
    results = await asyncio.gather(*(tokens.get_token("basic") for _ in range(200)))
    assert len(set(results)) == 1 and fleet.endpoint.request_count() == 1
    stats = fleet.caches[0].stats()
    # the first caller's read, and the flight's read under the lock; the rest join the flight
    assert stats.misses + stats.hits <= 3, stats


async def test_a_burst_beyond_the_pool_waits_its_turn_instead_of_failing(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    # 300 calls through 4 connections take a while on a busy machine: a roomy bound, so that
    # what is measured is the waiting for a connection, not a late reply
    tokens = await fleet.manager(redis_server.url, max_connections=4, operation_timeout=5.0)
    results = await asyncio.gather(*(tokens.get_token("basic", scope=f"s{i}") for i in range(300)))
    assert len(set(results)) == 300 and fleet.endpoint.request_count() == 300
    stats = fleet.caches[0].stats()
    assert stats.errors == 0 and stats.writes == 300 and stats.locks_taken == 300


async def test_a_value_expires_in_redis_with_its_token(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis
) -> None:
    tokens = await fleet.manager(redis_server.url)
    token = await tokens.get_token("basic")
    (name,) = (await _everything(raw)).keys()
    left = await raw.pttl(name) / 1000
    assert token.expires_at - time.time() - 2 < left <= token.expires_at - time.time() + 1


async def test_a_local_hit_needs_no_redis(redis_server: RedisServer, fleet: Fleet) -> None:
    tokens = await fleet.manager(redis_server.url)
    token = await tokens.get_token("basic")
    redis_server.stop()
    assert await tokens.get_token("basic") is token
    assert fleet.caches[0].stats().errors == 0  # not even asked


# ---- sealed at rest ----------------------------------------------------------------------


async def test_sealed_values_hold_no_token_secret_or_parameter_in_clear(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis
) -> None:
    tokens = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    token = await tokens.get_token("basic", parameters={"tenant": TENANT_SECRET})
    stored = await _everything(raw)
    assert len(stored) == 1
    for name, value in stored.items():
        for secret in (token.access_token, TOKEN_CLIENT_SECRET, TENANT_SECRET, "basic"):
            assert secret.encode() not in name and secret.encode() not in value
        assert value.startswith(b"JM1S")
        assert name.startswith(b"jwtmint:v1:{") and name.endswith(b"}:token")


async def test_without_keys_redis_holds_the_bearer_token(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis
) -> None:
    # the README says so plainly: this test keeps the README honest
    tokens = await fleet.manager(redis_server.url)
    token = await tokens.get_token("basic")
    (value,) = (await _everything(raw)).values()
    assert value.startswith(b"JM1P") and token.access_token.encode() in value


async def test_a_value_moved_to_another_entry_is_refused_and_refetched(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis
) -> None:
    writer = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    stolen = await writer.get_token("basic", scope="admin")
    (admin_name, admin_value), = (await _everything(raw)).items()  # fmt: skip
    reader = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    target = _value_name(reader, "read")
    await raw.set(target, admin_value, px=60_000)  # the admin token copied into read's slot
    token = await reader.get_token("basic", scope="read")
    assert token != stolen and token.scope == "read"
    assert fleet.endpoint.request_count() == 2
    assert fleet.caches[1].stats().invalid == 1
    assert await raw.get(target) != admin_value  # deleted, then the new token stored
    assert admin_name != target.encode()


@pytest.mark.parametrize(
    "damage",
    [
        lambda value: value[:-1] + bytes([value[-1] ^ 1]),  # one flipped bit of the tag
        lambda value: value[:20],  # truncated
        lambda value: b"hello",  # not ours at all
        lambda value: b"JM1P" + b'{"access_token": "forged"}',  # plain, where keys are set
        lambda value: b"JM9" + value[3:],  # a future version
    ],
)
async def test_a_damaged_value_is_a_miss_never_an_exception(
    redis_server: RedisServer,
    fleet: Fleet,
    raw: redis_asyncio.Redis,
    damage: Callable[[bytes], bytes],
) -> None:
    writer = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    first = await writer.get_token("basic")
    (name, value), = (await _everything(raw)).items()  # fmt: skip
    await raw.set(name, damage(value), px=60_000)
    reader = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    second = await reader.get_token("basic")
    assert second != first and fleet.endpoint.request_count() == 2
    assert fleet.caches[1].stats().invalid == 1


@pytest.mark.parametrize(
    "bad",
    [
        b"JM1P[]",
        b"JM1P{}",
        b'JM1P{"access_token": 7, "token_type": "Bearer", "expires_at": 1e12, '
        b'"renew_at": 1e12, "scope": null, "raw": {}}',
        # a token that would inject a header line into every API call
        b'JM1P{"access_token": "a\\r\\nX-Injected: 1", "token_type": "Bearer", '
        b'"expires_at": 1e12, "renew_at": 1e12, "scope": null, "raw": {}}',
    ],
)
async def test_plain_values_that_are_no_token_are_misses(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis, bad: bytes
) -> None:
    writer = await fleet.manager(redis_server.url)
    first = await writer.get_token("basic")
    (name,) = (await _everything(raw)).keys()
    await raw.set(name, bad, px=60_000)
    reader = await fleet.manager(redis_server.url)
    token = await reader.get_token("basic")
    assert token != first and "\r" not in token.authorization
    assert fleet.caches[1].stats().invalid == 1


async def test_keys_rotate_old_values_are_read_until_they_expire(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    old = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    token = await old.get_token("basic")
    rotated = await fleet.manager(redis_server.url, encryption_keys=[KEY_2, KEY_1])
    assert await rotated.get_token("basic") == token  # opened with the second key
    stranger = await fleet.manager(redis_server.url, encryption_keys=[KEY_2])
    assert await stranger.get_token("basic") != token  # cannot open it: a miss, refetched
    assert fleet.endpoint.request_count() == 2
    # and the new value, sealed with KEY_2, is read by the rotated instance
    fresh = await fleet.manager(redis_server.url, encryption_keys=[KEY_2, KEY_1])
    assert (await fresh.get_token("basic")).access_token != token.access_token


# ---- invalidation ------------------------------------------------------------------------


async def test_a_forced_renewal_drops_the_other_instances_copy(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    first = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    second = await fleet.manager(redis_server.url, encryption_keys=[KEY_1])
    old = await first.get_token("basic")
    assert await second.get_token("basic") == old
    for cache in fleet.caches:
        await asyncio.wait_for(cache._subscribed.wait(), 5)
    assert await second.get_token("basic") == old  # read again if subscribing cleared it
    assert fleet.caches[1].stats().local_entries == 1
    fleet.endpoint.revoke(old.access_token)  # the resource server refuses it now
    new = await first.get_token("basic", force_renewal=True)
    await _eventually(lambda: fleet.caches[1].stats().invalidations == 1)
    assert await second.get_token("basic") == new != old
    assert fleet.endpoint.request_count() == 2


async def test_a_401_storm_across_the_fleet_costs_one_renewal(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    managers = [await fleet.manager(redis_server.url, encryption_keys=[KEY_1]) for _ in range(4)]
    refused = await managers[0].get_token("basic")
    assert all([await m.get_token("basic") == refused for m in managers])
    fleet.endpoint.revoke(refused.access_token)
    sources = [m.token_source("basic") for m in managers]
    renewed = await asyncio.gather(*(source.renew_after_refusal(refused) for source in sources))
    assert len({token.access_token for token in renewed if token is not None}) == 1
    assert None not in renewed and refused not in renewed
    assert fleet.endpoint.request_count() == 2  # the first token, and one renewal


async def test_instances_renewing_together_make_one_request(redis_server: RedisServer) -> None:
    async with TokenEndpoint(token_lifetime=3) as endpoint, AsyncExitStack() as stack:
        endpoint.register_client("basic", secret=TOKEN_CLIENT_SECRET)
        fleet = Fleet(endpoint, stack)
        managers = []
        for _ in range(4):
            cache = await stack.enter_async_context(RedisTokenCache(redis_server.url))
            fleet.caches.append(cache)
            manager = TokenManager({"basic": _client(endpoint)}, cache=cache, renewal_buffer=2)
            managers.append(await stack.enter_async_context(manager))
        first = await managers[0].get_token("basic")
        assert all([await m.get_token("basic") == first for m in managers])
        deadline = time.monotonic() + 6
        while True:
            # every instance asks now and then; past renew_at each starts a background renewal
            seen = [await m.get_token("basic") for m in managers]
            if first not in seen:
                break
            assert time.monotonic() < deadline, "the token was never renewed"
            await asyncio.sleep(0.05)
        assert len(set(seen)) == 1
        await asyncio.sleep(0.3)  # any second renewal would have been made by now
        assert endpoint.request_count() == 2


# ---- the lock ----------------------------------------------------------------------------


async def test_a_lock_whose_owner_died_expires_and_the_next_instance_requests(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis
) -> None:
    tokens = await fleet.manager(redis_server.url, lock_timeout=0.5)
    lock = _value_name(tokens, None).replace(":token", ":lock")
    await raw.set(lock, "a-dead-instance", px=500)
    started = time.monotonic()
    await tokens.get_token("basic")
    assert 0.3 < time.monotonic() - started < 3.0
    assert fleet.endpoint.request_count() == 1
    stats = fleet.caches[0].stats()
    assert stats.lock_waits == 1 and stats.locks_taken == 1


async def test_a_waiter_past_wait_timeout_requests_on_its_own(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis
) -> None:
    tokens = await fleet.manager(redis_server.url, wait_timeout=0.3)
    lock = _value_name(tokens, None).replace(":token", ":lock")
    await raw.set(lock, "a-stuck-instance", px=30_000)
    started = time.monotonic()
    await tokens.get_token("basic")
    assert 0.25 < time.monotonic() - started < 3.0
    assert fleet.caches[0].stats().lock_waits_expired == 1
    assert await raw.get(lock) == b"a-stuck-instance"  # not ours: left alone


async def test_the_lock_is_kept_while_a_slow_server_answers(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis
) -> None:
    fleet.endpoint.latency = 3.0  # longer than the lock lives without extension
    first = await fleet.manager(redis_server.url, lock_timeout=1.0)
    second = await fleet.manager(redis_server.url, lock_timeout=1.0)
    lock = _value_name(first, None).replace(":token", ":lock")
    request = asyncio.ensure_future(first.get_token("basic"))
    deadline = time.monotonic() + 3
    while not await raw.exists(lock):
        assert time.monotonic() < deadline, "the lock was never taken"
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.6)  # past lock_timeout: only an extension keeps it
    assert await raw.pttl(lock) > 0
    assert not request.done() and fleet.endpoint.request_count() == 0  # still answering
    joined = await second.get_token("basic")
    assert await request == joined
    assert fleet.endpoint.request_count() == 1
    assert await raw.exists(lock) == 0  # released by its owner


# ---- Redis trouble -----------------------------------------------------------------------


async def test_redis_stopped_mid_run_is_a_miss_and_the_cache_recovers(
    redis_server: RedisServer, fleet: Fleet, raw: redis_asyncio.Redis
) -> None:
    tokens = await fleet.manager(redis_server.url, operation_timeout=0.2)
    cached = await tokens.get_token("basic", scope="before")
    redis_server.stop()
    assert await tokens.get_token("basic", scope="before") is cached  # the local tier
    during = [await tokens.get_token("basic", scope=f"during{i}") for i in range(3)]
    assert len({t.access_token for t in during}) == 3
    cache = fleet.caches[0]
    assert cache.stats().errors >= 1
    redis_server.start()
    await asyncio.sleep(1.1)  # the cache rests a second after trouble, then asks again
    await tokens.get_token("basic", scope="after")
    await _eventually(lambda: cache.stats().writes == 2)
    assert len(await _everything(raw)) == 1  # "after" (the restart emptied Redis)


async def test_an_unreachable_redis_never_fails_a_token_request(fleet: Fleet) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    tokens = await fleet.manager(url, operation_timeout=0.2)
    started = time.monotonic()
    for i in range(5):
        assert isinstance(await tokens.get_token("basic", scope=f"s{i}"), Token)
    assert time.monotonic() - started < 5
    assert fleet.caches[0].stats().errors >= 1
    assert fleet.endpoint.request_count() == 5


# ---- settings and lifecycle --------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"redis": "http://127.0.0.1:6379"},
        {"redis": 6379},
        {"encryption_keys": [b"short"]},
        {"encryption_keys": []},
        {"encryption_keys": KEY_1},
        {"encryption_keys": ["k" * 32]},
        {"prefix": "a{b}"},
        {"lock_timeout": 0},
        {"wait_timeout": -1},
        {"operation_timeout": True},
        {"local_entries": 0},
        {"max_connections": 1},
    ],
)
def test_bad_settings_are_configuration_errors(options: dict[str, object]) -> None:
    settings: dict[str, object] = {"redis": "redis://127.0.0.1:6379/0", **options}
    with pytest.raises(ConfigurationError):
        RedisTokenCache(**settings)  # type: ignore[arg-type]


async def test_a_client_that_decodes_responses_is_refused() -> None:
    client = redis_asyncio.Redis(decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisTokenCache(client)
    await client.aclose()


async def test_aclose_closes_what_it_opened_and_not_a_borrowed_client(
    redis_server: RedisServer, endpoint: TokenEndpoint, raw: redis_asyncio.Redis
) -> None:
    borrowed = RedisTokenCache(raw)
    async with TokenManager({"basic": _client(endpoint)}, cache=borrowed) as tokens:
        await tokens.get_token("basic")
    await borrowed.aclose()
    assert await raw.ping()  # still usable
    owned = RedisTokenCache(redis_server.url)
    async with TokenManager({"basic": _client(endpoint)}, cache=owned) as tokens:
        await tokens.get_token("basic", scope="x")
    await owned.aclose()
    assert owned._link.client is None
    assert "secret" not in repr(owned).lower() and "sealed=False" in repr(owned)


# ---- helpers -----------------------------------------------------------------------------


def _key_of(tokens: TokenManager, scope: str | None = None) -> CacheKey:
    return tokens.token_source("basic", scope=scope).key


def _value_name(tokens: TokenManager, scope: str | None) -> str:
    return f"jwtmint:v1:{{{entry_id(_key_of(tokens, scope))}}}:token"


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there once the probe is closed
