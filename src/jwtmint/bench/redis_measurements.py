"""The timed part of ``jwtmint bench redis``: cache hits and misses, each checked before believed.

On one event loop, every contender in the same interleaved rounds
(:func:`jwtmint.bench.timing.measure_async`), each with its own client at
the token endpoint (a child process) and, for Redis, its own key prefix:

- ``memory``: cached ``await tokens.get_token(name)`` with ``MemoryTokenCache``;
- ``redis-local``: the same with ``RedisTokenCache``, answered by its in-process tier;
- ``redis-hit``: the in-process tier misses and Redis has the entry. The
  cache is made with ``local_entries=1`` and asked for two keys in turn, so
  the one asked for is always the one just evicted: every call is a ``GET``,
  a decode and a local write, through public API only (the eviction of a
  one-entry dict is the only extra, well under a µs). ``redis-hit-sealed``:
  the same with ``encryption_keys`` (AES-256-GCM values);
- ``redis GET`` / ``redis GET sealed``: a bare ``redis.asyncio`` ``GET`` of
  the same two values in the same alternation, on the same client (pool,
  timeouts: ``RedisTokenCache``'s own) as the two caches above;
- ``miss memory`` / ``miss redis``: a cold ``get_token`` per call (a fresh
  scope each: a new cache key), which requests a token; with Redis under its
  lock (``SET NX``, ``GET`` again, the request, ``SET`` + ``PUBLISH``, release).

Checks: no hit contender reached the endpoint while timed; the local-tier
hit made no Redis read; every Redis-hit call was a Redis hit (the cache's
own ``hits`` counter moved by exactly the number of calls) and returned the
expected token, every bare ``GET`` the expected bytes; every miss made
exactly one request, under a lock it took, and got a distinct live token.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..tokens import ClientCredentialsClient, RedisTokenCache, TokenManager
from .timing import Batch, Timing, measure_async
from .token_endpoint import EndpointProcess, MeasurementError, loop_kind
from .token_measurements import floor_batch, get_token_batch

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "CLIENTS",
    "FLOOR",
    "GET",
    "LOCAL",
    "MEMORY",
    "MISS_MEMORY",
    "MISS_REDIS",
    "OPERATION_TIMEOUT",
    "REDIS",
    "SEALED",
    "SEALED_GET",
    "LoopResult",
    "measure_loop",
]

FLOOR, MEMORY, LOCAL = "floor", "memory", "redis-local"
REDIS, GET, SEALED, SEALED_GET = "redis-hit", "redis-get", "redis-hit-sealed", "redis-get-sealed"
MISS_MEMORY, MISS_REDIS = "miss-memory", "miss-redis"
#: the contenders with a client of their own at the token endpoint
CLIENTS = (MEMORY, LOCAL, REDIS, SEALED, MISS_MEMORY, MISS_REDIS)
#: RedisTokenCache's default operation_timeout, which it gives a client it opens from a URL
OPERATION_TIMEOUT = 0.5
_SUBSCRIBE_TIMEOUT = 5.0


@dataclass
class LoopResult:
    """Every contender's timing on one event loop, how many calls each made, and the checks."""

    event_loop: str
    timings: dict[str, Timing]
    calls: dict[str, int]
    checks: dict[str, Any]


async def measure_loop(
    server: EndpointProcess,
    redis_url: str,
    secrets_by_name: dict[str, str],
    client_ids: dict[str, str],
    prefix: str,
    *,
    rounds: int,
    batch_seconds: float,
) -> LoopResult:
    """Set every contender up, time them in interleaved rounds, check, or raise
    :class:`MeasurementError`. ``prefix`` keeps this run's Redis keys apart."""
    from redis.asyncio import Redis

    redis = Redis.from_url(
        redis_url, socket_timeout=OPERATION_TIMEOUT, socket_connect_timeout=OPERATION_TIMEOUT
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            bench = _Bench(server, redis, secrets_by_name, client_ids, prefix, stack)
            await bench.set_up()
            before = bench.counts()
            timings = await measure_async(
                bench.contenders(), repeats=rounds, batch_seconds=batch_seconds
            )
            checks = await bench.check(before)
    finally:
        await redis.aclose()
    return LoopResult(loop_kind(asyncio.get_running_loop()), timings, bench.calls, checks)


class _Bench:
    """The contenders of one loop: their managers, caches, expected tokens and counters."""

    def __init__(
        self,
        server: EndpointProcess,
        redis: Redis,
        secrets_by_name: dict[str, str],
        client_ids: dict[str, str],
        prefix: str,
        stack: contextlib.AsyncExitStack,
    ) -> None:
        self.server, self.redis, self.prefix, self.stack = server, redis, prefix, stack
        self.secrets, self.ids = secrets_by_name, client_ids
        self.managers: dict[str, TokenManager] = {}
        self.caches: dict[str, RedisTokenCache] = {}
        #: per hit contender, the (name, expected) pairs it alternates over
        self.pairs: dict[str, list[tuple[str, Any]]] = {}
        self.calls = dict.fromkeys((MEMORY, LOCAL, REDIS, GET, SEALED, SEALED_GET), 0)
        self.calls |= dict.fromkeys((MISS_MEMORY, MISS_REDIS), 0)
        self.wrong = dict.fromkeys(self.calls, 0)
        self.missed: dict[str, list[str]] = {MISS_MEMORY: [], MISS_REDIS: []}
        self._scopes = itertools.count()

    async def _manager(
        self, contender: str, names: Sequence[str], cache: RedisTokenCache | None = None
    ) -> TokenManager:
        client = ClientCredentialsClient(
            self.ids[contender],
            token_endpoint=self.server.token_url,
            client_secret=self.secrets[contender],
        )
        manager = TokenManager(dict.fromkeys(names, client), cache=cache)
        self.managers[contender] = await self.stack.enter_async_context(manager)
        return manager

    def _cache(self, contender: str, **options: Any) -> RedisTokenCache:
        # given a client, the cache never closes it; aclose() stops its listener
        cache = RedisTokenCache(self.redis, prefix=f"{self.prefix}{contender}:", **options)
        self.stack.push_async_callback(cache.aclose)
        self.caches[contender] = cache
        return cache

    async def _subscribed(self, contender: str) -> None:
        """Wait until the cache listens for the other instances' writes: subscribing empties
        its in-process tier, which must not happen while the clock runs."""
        deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT
        while not await self.redis.pubsub_channels(f"{self.prefix}{contender}:*"):
            if time.monotonic() > deadline:
                raise MeasurementError(f"{contender}: the cache never subscribed to its channel")
            await asyncio.sleep(0.005)

    async def set_up(self) -> None:
        memory = await self._manager(MEMORY, [MEMORY])
        self.pairs[MEMORY] = [(MEMORY, (await memory.get_token(MEMORY)).access_token)]
        local = await self._manager(LOCAL, [LOCAL], self._cache(LOCAL))
        first = (await local.get_token(LOCAL)).access_token
        for contender, get in ((REDIS, GET), (SEALED, SEALED_GET)):
            sealed = {"encryption_keys": [os.urandom(32)]} if contender == SEALED else {}
            names = [f"{contender}-a", f"{contender}-b"]
            manager = await self._manager(
                contender, names, self._cache(contender, local_entries=1, **sealed)
            )
            self.pairs[contender] = [(n, (await manager.get_token(n)).access_token) for n in names]
            self.pairs[get] = await self._values(contender)
        for contender in self.caches:
            await self._subscribed(contender)
        # read again, now that the listener has emptied the local tier once: a Redis hit
        if (await local.get_token(LOCAL)).access_token != first:
            raise MeasurementError("the local-tier contender's token changed during set-up")
        if local.cache.peek(local.token_source(LOCAL).key) is None:
            raise MeasurementError("the local-tier contender's token is not in process memory")
        self.pairs[LOCAL] = [(LOCAL, first)]
        await self._manager(MISS_MEMORY, [MISS_MEMORY])
        miss = await self._manager(MISS_REDIS, [MISS_REDIS], self._cache(MISS_REDIS))
        for contender in (MISS_MEMORY, MISS_REDIS):  # connections made, code paths warm
            await self.managers[contender].get_token(contender, scope="warm-up")
        await self._subscribed(MISS_REDIS)
        if miss.cache.peek(miss.token_source(MISS_REDIS, scope="warm-up").key) is None:
            raise MeasurementError("the Redis miss contender did not keep its token")

    async def _values(self, contender: str) -> list[tuple[str, Any]]:
        """The two values the contender's cache wrote, read by key pattern (lock keys are gone
        once a request is done): what the bare ``GET`` reads."""
        names = [name async for name in self.redis.scan_iter(match=f"{self.prefix}{contender}:*")]
        if len(names) != 2:
            raise MeasurementError(f"{contender}: expected 2 keys in Redis, found {len(names)}")
        return [(name, await self.redis.get(name)) for name in sorted(names)]

    def contenders(self) -> list[tuple[str, Batch]]:
        return [
            (FLOOR, floor_batch),
            (MEMORY, self._counted(MEMORY, get_token_batch(self.managers[MEMORY], MEMORY))),
            (LOCAL, self._counted(LOCAL, get_token_batch(self.managers[LOCAL], LOCAL))),
            (REDIS, self._token_batch(REDIS)),
            (GET, self._get_batch(GET)),
            (SEALED, self._token_batch(SEALED)),
            (SEALED_GET, self._get_batch(SEALED_GET)),
            (MISS_MEMORY, self._miss_batch(MISS_MEMORY)),
            (MISS_REDIS, self._miss_batch(MISS_REDIS)),
        ]

    def _counted(self, contender: str, batch: Batch) -> Batch:
        async def counted(n: int) -> float:
            self.calls[contender] += n
            return await batch(n)

        return counted

    def _token_batch(self, contender: str) -> Batch:
        """``get_token`` of the two names in turn, each result checked (a string compare: a
        few ns against a round trip). The turn goes on across batches: a batch that started
        again with the name the last one ended on would hit the local tier."""
        get_token = self.managers[contender].get_token
        turns = itertools.cycle(self.pairs[contender])

        async def batch(n: int) -> float:
            wrong, perf_counter = 0, time.perf_counter
            start = perf_counter()
            for name, expected in itertools.islice(turns, n):
                if (await get_token(name)).access_token != expected:
                    wrong += 1
            elapsed = perf_counter() - start
            self.calls[contender] += n
            self.wrong[contender] += wrong
            return elapsed

        return batch

    def _get_batch(self, contender: str) -> Batch:
        """A bare ``GET`` of the two values in turn, each result checked the same way."""
        get, turns = self.redis.get, itertools.cycle(self.pairs[contender])

        async def batch(n: int) -> float:
            wrong, perf_counter = 0, time.perf_counter
            start = perf_counter()
            for name, expected in itertools.islice(turns, n):
                if await get(name) != expected:
                    wrong += 1
            elapsed = perf_counter() - start
            self.calls[contender] += n
            self.wrong[contender] += wrong
            return elapsed

        return batch

    def _miss_batch(self, contender: str) -> Batch:
        """Cold ``get_token`` calls, each with a scope never asked for before (made before the
        clock starts): a new cache key, so a token request."""
        get_token, tokens = self.managers[contender].get_token, self.missed[contender]

        async def batch(n: int) -> float:
            scopes = [f"miss-{next(self._scopes)}" for _ in range(n)]
            perf_counter = time.perf_counter
            start = perf_counter()
            for scope in scopes:
                tokens.append((await get_token(contender, scope=scope)).access_token)
            elapsed = perf_counter() - start
            self.calls[contender] += n
            return elapsed

        return batch

    def counts(self) -> dict[str, Any]:
        """The endpoint's request count per client and each Redis cache's counters."""
        per_client = self.server.stats(self.ids.values()).per_client
        return {
            "requests": {name: per_client[self.ids[name]] for name in CLIENTS},
            "caches": {name: asdict(cache.stats()) for name, cache in self.caches.items()},
        }

    async def check(self, before: dict[str, Any]) -> dict[str, Any]:
        """What held while timed; :class:`MeasurementError` when a figure would not mean what
        its label says."""
        after = self.counts()
        requests = {n: after["requests"][n] - before["requests"][n] for n in CLIENTS}
        moved = {
            name: {k: v - before["caches"][name][k] for k, v in counters.items()}
            for name, counters in after["caches"].items()
        }
        problems: list[str] = []
        for name in (MEMORY, LOCAL, REDIS, SEALED):
            if requests[name]:
                problems.append(f"{name}: {requests[name]} token requests while timed")
        for name in (MEMORY, LOCAL):
            again = (await self.managers[name].get_token(name)).access_token
            if again != self.pairs[name][0][1]:
                problems.append(f"{name}: the cached token changed")
        local = moved[LOCAL]
        redis_reads = local["hits"] + local["misses"] + local["invalid"] + local["errors"]
        if redis_reads:
            problems.append(f"{LOCAL}: {redis_reads} Redis reads while timed (not a local hit)")
        for name in (REDIS, SEALED):
            if moved[name]["hits"] != self.calls[name]:
                problems.append(
                    f"{name}: {moved[name]['hits']} Redis hits for {self.calls[name]} calls"
                )
        for name, count in self.wrong.items():
            if count:
                problems.append(f"{name}: {count} calls returned an unexpected token or value")
        for name in (MISS_MEMORY, MISS_REDIS):
            tokens = self.missed[name]
            if not len(tokens) == len(set(tokens)) == requests[name] == self.calls[name]:
                problems.append(
                    f"{name}: {self.calls[name]} calls, {requests[name]} requests, "
                    f"{len(set(tokens))} distinct tokens"
                )
        live = {
            name: self.server.verify_pairs((self.ids[name], t) for t in self.missed[name])
            for name in (MISS_MEMORY, MISS_REDIS)
        }
        problems += [f"{n}: only {live[n]} live tokens" for n in live if live[n] != self.calls[n]]
        miss = moved[MISS_REDIS]
        if miss["locks_taken"] != self.calls[MISS_REDIS] or miss["lock_waits"]:
            calls = self.calls[MISS_REDIS]
            problems.append(
                f"{MISS_REDIS}: {miss['locks_taken']} locks, {miss['lock_waits']} waits, {calls} "
                "calls"
            )
        errors = {name: m["errors"] for name, m in moved.items() if m["errors"]}
        if errors:
            problems.append(f"Redis errors while timed: {errors}")
        if problems:
            raise MeasurementError("; ".join(problems))
        return {
            "endpoint_requests_while_timed": requests,
            "redis_counters_while_timed": moved,
            "unexpected_results": dict(self.wrong),
            "miss_tokens_live": live,
        }
