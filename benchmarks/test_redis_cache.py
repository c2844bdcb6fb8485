"""RedisTokenCache's ``get_token``: our regression figures for issue #10 (local and Redis hits).

As in ``test_tokens.py``, one round is one ``loop.run_until_complete(...)``
of a coroutine awaiting ``get_token`` ``AWAITS`` times (the figures are per
round: ``extra_info["median_ns_per_call"]`` has them per call). The token
endpoint and ``redis-server`` (:class:`jwtmint.testing.RedisServer`) run on
loopback. The local-tier hit is a cached token in the in-process tier; the
Redis hit is a ``RedisTokenCache(local_entries=1)`` asked for two keys in
turn, so that every call misses the local tier and reads Redis. Each test
fails if a request reached the endpoint, and the Redis-hit test if any call
was not counted a Redis hit. ``jwtmint bench redis`` compares them with
``MemoryTokenCache`` and a bare ``GET`` in one run. Skipped, with the reason,
without ``redis-server`` or redis-py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from jwtmint.testing import RedisServer, TokenEndpoint, redis_server_available
from jwtmint.tokens import ClientCredentialsClient, RedisTokenCache, TokenManager

from .conftest import PedanticBenchmark, new_loop, record_awaits
from .test_tokens import SECRET

pytest.importorskip("redis", reason="redis-py is not installed (the redis extra)")
pytestmark = pytest.mark.skipif(
    not redis_server_available(), reason="redis-server is not installed"
)

LOCAL_AWAITS, REDIS_AWAITS = 10_000, 200  # a Redis hit is a round trip: ~100 µs
ROUNDS, WARMUP_ROUNDS = 100, 5
NAMES = ("a", "b")


class RedisCached:
    """A started TokenManager on a RedisTokenCache holding fresh tokens for ``NAMES``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, redis_url: str, local_entries: int):
        self.loop, self.redis_url, self.local_entries = loop, redis_url, local_entries
        self.endpoint = TokenEndpoint()
        self.cache: RedisTokenCache | None = None
        self.manager: TokenManager | None = None
        self.tokens: dict[str, str] = {}

    async def start(self) -> None:
        await self.endpoint.start()
        self.endpoint.register_client("bench", secret=SECRET)
        client = ClientCredentialsClient(
            "bench", token_endpoint=self.endpoint.token_url, client_secret=SECRET
        )
        self.cache = RedisTokenCache(self.redis_url, local_entries=self.local_entries)
        self.manager = TokenManager(dict.fromkeys(NAMES, client), cache=self.cache)
        await self.manager.start()
        for name in NAMES:
            self.tokens[name] = (await self.manager.get_token(name)).access_token
        await asyncio.sleep(0.05)  # the listener subscribes (and empties the local tier) once
        for name in NAMES:
            assert (await self.manager.get_token(name)).access_token == self.tokens[name]

    async def close(self) -> None:
        if self.manager is not None:
            await self.manager.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        await self.endpoint.close()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def _cached(loop_name: str, redis_url: str, local_entries: int) -> Iterator[RedisCached]:
    loop = new_loop(loop_name)
    state = RedisCached(loop, redis_url, local_entries)
    try:
        loop.run_until_complete(state.start())
        yield state
    finally:
        loop.run_until_complete(state.close())
        loop.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def local(request: pytest.FixtureRequest, redis_url: str) -> Iterator[RedisCached]:
    yield from _cached(request.param, redis_url, 10_000)


@pytest.fixture(params=["asyncio", "uvloop"])
def remote(request: pytest.FixtureRequest, redis_url: str) -> Iterator[RedisCached]:
    yield from _cached(request.param, redis_url, 1)


def test_local_tier_hit(benchmark: PedanticBenchmark, local: RedisCached) -> None:
    benchmark.group = f"RedisTokenCache local-tier hit, per {LOCAL_AWAITS} awaits"
    manager, cache = local.manager, local.cache
    assert manager is not None and cache is not None

    async def awaits() -> str:
        get_token = manager.get_token
        for _ in itertools.repeat(None, LOCAL_AWAITS - 1):
            await get_token("a")
        return (await get_token("a")).access_token

    before, reads = local.endpoint.request_count(), cache.stats()
    token = benchmark.pedantic(
        lambda: local.loop.run_until_complete(awaits()),
        rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS,
    )  # fmt: skip
    record_awaits(benchmark, local.loop, LOCAL_AWAITS)
    after = cache.stats()
    # every await was a local hit: no request, no Redis read, the same token throughout
    assert local.endpoint.request_count() == before == len(NAMES)
    assert (after.hits, after.misses, after.errors) == (reads.hits, reads.misses, reads.errors)
    assert token == local.tokens["a"]


def test_redis_hit(benchmark: PedanticBenchmark, remote: RedisCached) -> None:
    benchmark.group = f"RedisTokenCache Redis hit, per {REDIS_AWAITS} awaits"
    manager, cache = remote.manager, remote.cache
    assert manager is not None and cache is not None
    # two keys in turn through a one-entry local tier: the one asked for was just evicted
    turns = itertools.cycle(NAMES)
    wrong = calls = 0

    async def awaits() -> None:
        nonlocal wrong, calls
        get_token, expected = manager.get_token, remote.tokens
        for name in itertools.islice(turns, REDIS_AWAITS):
            if (await get_token(name)).access_token != expected[name]:
                wrong += 1
        calls += REDIS_AWAITS

    before, reads = remote.endpoint.request_count(), cache.stats()
    benchmark.pedantic(
        lambda: remote.loop.run_until_complete(awaits()),
        rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS,
    )  # fmt: skip
    record_awaits(benchmark, remote.loop, REDIS_AWAITS)
    after = cache.stats()
    assert remote.endpoint.request_count() == before and wrong == 0
    assert after.hits - reads.hits == calls > 0  # every call read Redis
    assert after.errors == reads.errors
