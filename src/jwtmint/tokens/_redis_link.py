"""The Redis connection of a token cache: made lazily, every call bounded, trouble a miss.

A :class:`RedisLink` owns the client it opens from a URL (a blocking pool: a
burst of callers waits its turn for a connection rather than failing) or
borrows one it is given. :meth:`RedisLink.call` bounds every call by
``operation_timeout`` whatever the client's own timeouts and retries, and
turns any failure into :data:`TROUBLE`: counted, logged at most every ten
seconds, and, when Redis looks down (refused, reset, or no reply at all for a
while), Redis is left alone for a second so that callers do not each wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["TROUBLE", "RedisLink", "Trouble", "bounded"]

_log = logging.getLogger("jwtmint.tokens")
_T = TypeVar("_T")

#: after Redis looked down, it is not asked again for this long (seconds)
_REST_AFTER_TROUBLE = 1.0
#: at most one warning per this many seconds while Redis is in trouble
_LOG_EVERY = 10.0
#: no reply for this many operation timeouts, and a call timing out: Redis hangs, rest it
_HUNG_AFTER_TIMEOUTS = 2


class Trouble:
    """What a Redis call that failed returns (``None`` is a value Redis returns)."""


TROUBLE = Trouble()


class RedisLink:
    """One cache's way to Redis; ``errors`` counts the calls that failed."""

    def __init__(
        self,
        redis: str | Redis | RedisCluster,
        *,
        operation_timeout: float,
        max_connections: int,
    ) -> None:
        try:
            from redis.asyncio import Redis
            from redis.asyncio.cluster import RedisCluster
        except ImportError:  # the redis extra is optional
            raise ConfigurationError(
                "RedisTokenCache needs redis-py: pip install 'jwtmint[redis]'"
            ) from None
        if isinstance(redis, str):
            if not redis.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError("redis must be a redis://, rediss:// or unix:// URL")
            self._url: str | None = redis
            self.client: Redis | RedisCluster | None = None
        elif isinstance(redis, Redis | RedisCluster):
            if _decodes_responses(redis):
                raise ConfigurationError(
                    "the Redis client must return bytes: create it with decode_responses=False"
                )
            self._url = None
            self.client = redis
        else:
            raise ConfigurationError(
                "redis must be a URL, a redis.asyncio.Redis or a redis.asyncio.cluster.RedisCluster"
            )
        if type(max_connections) is not int or max_connections < 2:
            raise ConfigurationError("max_connections must be an int >= 2 (one is for pub/sub)")
        self._max_connections = max_connections
        self.timeout = float(operation_timeout)
        self._initialized = False
        self._initializing = asyncio.Lock()
        self._rest_until = 0.0
        self._answered_at = time.monotonic()
        self._logged_at = -_LOG_EVERY
        self.closed = False
        self.errors = 0

    @property
    def is_cluster(self) -> bool:
        from redis.asyncio.cluster import RedisCluster

        return isinstance(self.client, RedisCluster)

    def available(self) -> bool:
        """Whether Redis is being asked (not resting after trouble, not closed)."""
        return not self.closed and time.monotonic() >= self._rest_until

    def connect(self) -> Redis | RedisCluster | None:
        """The client, made in the running loop the first time; ``None`` while resting."""
        if not self.available():
            return None
        if self.client is None:
            from redis.asyncio import BlockingConnectionPool, Redis

            assert self._url is not None
            pool = BlockingConnectionPool.from_url(
                self._url,
                max_connections=self._max_connections,
                timeout=self.timeout,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
            )
            self.client = Redis.from_pool(pool)
        return self.client

    async def call(self, call: Callable[[Any], Awaitable[_T]]) -> _T | Trouble:
        redis = self.connect()
        if redis is None:
            return TROUBLE
        try:
            await self.ready(redis)
            # a hard bound whatever the client's own timeouts and retries (redis-py retries
            # failed calls with backoff by default)
            result = await bounded(call(redis), self.timeout)
        except Exception as exc:  # any failure of Redis or of its client is a miss
            self.trouble(exc)
            return TROUBLE
        self._answered_at = time.monotonic()
        return result

    async def ready(self, redis: Any) -> None:
        """A cluster client learns the slot map once, before concurrent first calls (which
        would otherwise each start it, and trip over each other's half-made connections).
        The wait for another caller's try counts in ``operation_timeout`` too."""
        if not self._initialized:
            await bounded(self._initialize(redis), self.timeout)

    async def _initialize(self, redis: Any) -> None:
        async with self._initializing:
            if not self._initialized:
                if not self.available():
                    raise ConnectionError("Redis is resting after trouble")
                if self.is_cluster:
                    await redis.initialize()
                self._initialized = True

    def trouble(self, exc: BaseException, *, rest: bool = True) -> None:
        """Count and log a failed call; with ``rest``, leave Redis alone a while when it
        looks down."""
        self.errors += 1
        now = time.monotonic()
        if not rest:
            pass
        elif _is_slow_reply(exc):
            # a late reply: this call is a miss. Other calls still answering means a busy
            # process or Redis (congestion), where skipping the fleet lock would only add
            # token requests; none answering for a while means Redis hangs: rest it
            if now - self._answered_at > _HUNG_AFTER_TIMEOUTS * self.timeout:
                self._rest_until = now + _REST_AFTER_TROUBLE
        elif type(exc).__name__ != "MaxConnectionsError":
            # refused, reset, unreachable: Redis is down, leave it alone a second (a given
            # client's exhausted pool is this process being busy, not Redis down)
            self._rest_until = now + _REST_AFTER_TROUBLE
        if now - self._logged_at >= _LOG_EVERY:
            self._logged_at = now
            _log.warning(
                "Redis token cache unavailable (%s); tokens are requested directly meanwhile",
                type(exc).__name__,
            )

    async def aclose(self) -> None:
        """Close the client opened from a URL (and its pool); never a borrowed one."""
        self.closed = True
        if self._url is not None and self.client is not None:
            client, self.client = self.client, None
            with contextlib.suppress(Exception):
                await client.aclose()  # from_pool: closes the pool too


def _is_slow_reply(exc: BaseException) -> bool:
    """A reply that came too late, or a wait for a free pooled connection that ran out
    (redis-py raises ConnectionError from the TimeoutError): congestion, not an outage."""
    from redis.exceptions import TimeoutError as RedisTimeout

    slow = (TimeoutError, asyncio.TimeoutError, RedisTimeout)
    return isinstance(exc, slow) or isinstance(exc.__cause__, slow)


def _decodes_responses(client: Any) -> bool:
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        return bool(pool.connection_kwargs.get("decode_responses"))
    return bool(client.get_connection_kwargs().get("decode_responses"))  # RedisCluster


async def bounded(awaitable: Awaitable[_T], seconds: float) -> _T:
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - 3.10
