"""RedisTokenCache when Redis or the network misbehave: short or foreign values, a silent
pub/sub connection, a read overtaken by a write, cancellation while a lock is taken, a
cluster node that never answers, and waits longer than the manager's deadline."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import ClusterNode, RedisCluster

from jwtmint.testing import RedisServer, TokenEndpoint
from jwtmint.tokens import (
    CacheEntry,
    ClientCredentialsClient,
    RedisTokenCache,
    RetryPolicy,
    Token,
    TokenManager,
    _redis_cache,
)
from jwtmint.tokens._cache import CacheKey
from jwtmint.tokens._redis_format import entry_id

from .conftest import TOKEN_CLIENT_SECRET
from .tcp_proxy import TcpProxy

KEY = os.urandom(32)


def _entry(access_token: str) -> CacheEntry:
    now = time.time()
    return CacheEntry(Token(access_token, "Bearer", now + 3600), now + 3000)


def _name(key: CacheKey, kind: str = "token") -> str:
    return f"jwtmint:v1:{{{entry_id(key)}}}:{kind}"


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.mark.parametrize("length", [4, 12, 14, 24, 35])
async def test_a_sealed_value_cut_short_is_a_miss_deleted_never_an_exception(
    redis_server: RedisServer, raw: redis_asyncio.Redis, length: int
) -> None:
    key = CacheKey("c")
    async with RedisTokenCache(redis_server.url, encryption_keys=[KEY]) as cache:
        await cache.set(key, _entry("T1"))
        value = await raw.get(_name(key))
        assert value is not None
        await raw.set(_name(key), value[:length])  # no TTL: it would stay forever
        assert await cache.get(key) is None
        assert cache.stats().invalid == 1
        assert await raw.exists(_name(key)) == 0


async def test_a_stored_token_without_a_type_is_refused(
    redis_server: RedisServer, raw: redis_asyncio.Redis
) -> None:
    key = CacheKey("c")
    async with RedisTokenCache(redis_server.url) as cache:
        await raw.set(
            _name(key),
            b'JM1P{"access_token":"T","token_type":"","expires_at":1e12,"renew_at":1e12,'
            b'"scope":null,"raw":{}}',
        )
        assert await cache.get(key) is None and cache.stats().invalid == 1


async def test_a_silent_pubsub_connection_is_noticed_and_the_local_tier_emptied(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis_cache, "_PING_EVERY", 0.2)
    monkeypatch.setattr(_redis_cache, "_SILENT_FOR", 0.6)
    key = CacheKey("c")
    async with TcpProxy(redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.listen_port}/0"
        async with RedisTokenCache(redis_server.url) as writer, RedisTokenCache(url) as reader:
            await writer.set(key, _entry("T1"))
            assert (await reader.get(key)) is not None
            await asyncio.wait_for(reader._subscribed.wait(), 3)
            assert (await reader.get(key)) is not None and reader.peek(key) is not None
            proxy.silence()  # its open connections, the subscription among them, go silent
            await writer.set(key, _entry("T2"))  # an announcement the reader never gets
            deadline = time.monotonic() + 5
            while reader.peek(key) is not None:  # emptied once the silence is noticed
                assert time.monotonic() < deadline, "a dead subscription went unnoticed"
                await asyncio.sleep(0.05)
            await asyncio.wait_for(reader._subscribed.wait(), 5)  # and subscribed again
            # its pooled connections went silent too: each is dropped after a late reply
            entry = await reader.get(key)
            while entry is None or entry.token.access_token != "T2":
                assert time.monotonic() < deadline + 5, "the reader never read T2"
                await asyncio.sleep(0.05)
                entry = await reader.get(key)


async def test_a_read_overtaken_by_an_announced_write_is_not_kept_locally(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = CacheKey("c")
    async with (
        RedisTokenCache(redis_server.url) as writer,
        RedisTokenCache(redis_server.url) as reader,
    ):
        await writer.set(key, _entry("T1"))
        await reader.get(key)
        await asyncio.wait_for(reader._subscribed.wait(), 3)
        reader._local.clear()
        real_call = reader._link.call

        async def late_reply(call: Any) -> Any:
            result = await real_call(call)
            await asyncio.sleep(0.3)  # the GET's reply is read after the announcement
            return result

        monkeypatch.setattr(reader._link, "call", late_reply)
        read = asyncio.ensure_future(reader.get(key))
        await asyncio.sleep(0.1)  # the GET has its answer (T1), not yet handed back
        await writer.set(key, _entry("T2"))  # announced on the reader's undelayed channel
        stale = await read
        assert stale is not None and stale.token.access_token == "T1"
        assert reader.peek(key) is None  # the replaced T1 is not served on from memory


async def test_cancelled_while_taking_the_lock_gives_it_back(
    redis_server: RedisServer, raw: redis_asyncio.Redis
) -> None:
    key = CacheKey("c")
    async with TcpProxy(redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.listen_port}/0"
        async with RedisTokenCache(url, lock_timeout=30.0) as cache:
            await cache.get(key)  # connected
            proxy.delay = 0.3
            lock = cache.lock(key)
            entering = asyncio.ensure_future(lock.__aenter__())
            await asyncio.sleep(0.1)  # the take has reached Redis; its reply has not come back
            entering.cancel()
            with pytest.raises(asyncio.CancelledError):
                await entering
            proxy.delay = 0.0
            deadline = time.monotonic() + 5
            while await raw.exists(_name(key, "lock")):
                assert time.monotonic() < deadline, "the lock was left for its 30 s timeout"
                await asyncio.sleep(0.05)
            assert not cache._woken and not cache._waiting


async def test_waiters_forget_their_wake_up_events(
    redis_server: RedisServer, raw: redis_asyncio.Redis
) -> None:
    key = CacheKey("c")
    async with RedisTokenCache(redis_server.url, wait_timeout=0.2) as cache:
        await raw.set(_name(key, "lock"), "someone-else", px=10_000)
        async with cache.lock(key) as lock:
            assert not lock.owned  # waited out
        assert not cache._woken and not cache._waiting


async def test_a_cluster_node_that_never_answers_costs_the_bound_not_a_queue() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # accepts, and never says a word
        port = silent.getsockname()[1]
        client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port)])
        async with RedisTokenCache(client, operation_timeout=0.2) as cache:
            started = time.monotonic()
            results = await asyncio.gather(*(cache.get(CacheKey(f"c{i}")) for i in range(20)))
            assert results == [None] * 20
            assert time.monotonic() - started < 2.0
        await client.aclose()


async def test_a_waiter_goes_on_alone_within_the_managers_deadline(
    redis_server: RedisServer, raw: redis_asyncio.Redis, endpoint: TokenEndpoint
) -> None:
    # the lock would give way after its wait_timeout, past the deadline: the manager waits
    # half of its deadline, then requests on its own rather than fail
    client = ClientCredentialsClient(
        "basic", token_endpoint=endpoint.token_url, client_secret=TOKEN_CLIENT_SECRET
    )
    async with RedisTokenCache(redis_server.url, wait_timeout=1.0) as cache:
        retries = RetryPolicy(deadline=0.5)
        async with TokenManager({"basic": client}, cache=cache, retries=retries) as tokens:
            lock = _name(tokens.token_source("basic").key, "lock")
            await raw.set(lock, "a-stuck-instance", px=30_000)
            started = time.monotonic()
            token = await tokens.get_token("basic")  # no TokenEndpointTimeout
            assert token.access_token and 0.25 <= time.monotonic() - started < 1.0
            assert cache.stats().lock_waits == 1 and endpoint.request_count() == 1
