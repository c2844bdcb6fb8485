"""RedisTokenCache: tokens shared by a fleet, in process memory in front of Redis.

``peek`` answers from the in-process tier (a dict lookup: the hot path stays
what it is with :class:`MemoryTokenCache`); ``get`` reads Redis on a local miss;
``set`` writes both and tells the other instances over pub/sub, which drop
their local copy (a token a resource refused is not served on by the rest of
the fleet); ``lock`` is a :class:`RedisLock`. Calls go through a
:class:`RedisLink`, which bounds each and makes any trouble a miss; a value
that does not open is a miss too. Nothing Redis does makes ``get_token`` raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigurationError
from ._cache import CacheEntry, CacheKey, MemoryTokenCache
from ._dpop import DPoPNonces
from ._redis_format import EntryCodec, entry_id
from ._redis_link import TROUBLE, RedisLink, Trouble, bounded
from ._redis_lock import TAKE, RedisLock
from ._redis_nonces import NONCE, SharedNonces

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisCacheStats", "RedisTokenCache"]

_log = logging.getLogger("jwtmint.tokens")
_T = TypeVar("_T")
_C = TypeVar("_C", bound="RedisTokenCache")

#: what an announcement on the channel says of an entry (and NONCE: a DPoP nonce)
_WRITTEN, _RELEASED = "w", "r"
#: the listener pings this often (seconds), and takes this much silence for a dead link
_PING_EVERY = 5.0
_SILENT_FOR = 2 * _PING_EVERY + 1.0
#: KEYS[1] a value, ARGV[1] the unreadable value read: delete it only if it is still that
_DELETE_IF_SAME = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class RedisCacheStats:
    """What a :class:`RedisTokenCache` has seen (``cache.stats()``); local hits are not
    counted (that would cost the hot path more than the lookup)."""

    #: Redis reads that found a valid entry / found none
    hits: int = 0
    misses: int = 0
    #: values that did not open or parse (a moved, altered, foreign or unkeyed value)
    invalid: int = 0
    #: entries written to Redis
    writes: int = 0
    #: Redis calls that failed or timed out (each one a miss, or a write skipped)
    errors: int = 0
    #: locks taken; requests that waited for another instance's; waits that ran out
    locks_taken: int = 0
    lock_waits: int = 0
    lock_waits_expired: int = 0
    #: locks that expired while their request was still running
    locks_lost: int = 0
    #: local copies dropped because another instance wrote the entry
    invalidations: int = 0
    #: entries in the in-process tier now
    local_entries: int = 0


#: the counters the cache keeps itself (errors are the link's; local entries are counted)
_COUNTERS = tuple(
    f.name for f in fields(RedisCacheStats) if f.name not in ("errors", "local_entries")
)


class RedisTokenCache:
    """A :class:`~jwtmint.tokens.TokenCache` shared by every instance that uses the same
    Redis (``jwtmint[redis]``): standalone (a ``redis://`` URL or a ``redis.asyncio.Redis``)
    or a ``redis.asyncio.cluster.RedisCluster``.

    ``encryption_keys`` (32-byte keys, the first seals, any opens) seal every
    value with AES-256-GCM bound to its cache key; without them Redis holds
    bearer tokens that anyone who can ``GET`` may use. ``lock_timeout`` is how
    long a lock outlives an instance that died holding it; ``wait_timeout`` how
    long an instance waits for another's request before making its own;
    ``local_entries`` bounds the in-process tier; ``max_connections`` the pool opened
    from a URL (callers beyond it wait their turn). Use it with ``async with``, or
    call :meth:`aclose`: it closes the connection pool it opened from a URL, and
    never one it was given.
    """

    def __init__(
        self,
        redis: str | Redis | RedisCluster,
        *,
        prefix: str = "jwtmint:",
        encryption_keys: Sequence[bytes] | None = None,
        lock_timeout: float = 5.0,
        wait_timeout: float = 10.0,
        local_entries: int = 10_000,
        operation_timeout: float = 0.5,
        max_connections: int = 64,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise ConfigurationError("prefix must be a string without braces (hash tags)")
        for name, value in (
            ("lock_timeout", lock_timeout),
            ("wait_timeout", wait_timeout),
            ("operation_timeout", operation_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        self._link = RedisLink(
            redis, operation_timeout=operation_timeout, max_connections=max_connections
        )
        self._codec = EntryCodec(encryption_keys)
        self._local = MemoryTokenCache(local_entries)
        # the hot path: the bound lookup of the local tier itself, as fast as MemoryTokenCache
        self.peek: Callable[[CacheKey], CacheEntry | None] = self._local.peek
        self._prefix = f"{prefix}v1:"
        self._channel = f"{self._prefix}invalidate"
        self._lock_timeout = float(lock_timeout)
        self._wait_timeout = float(wait_timeout)
        #: its lock lets a waiter go on without it (after ``wait_timeout``, and a late take
        #: or two): the manager, bound by its deadline, may go on without it sooner
        self.max_lock_wait = self._wait_timeout + 3 * float(operation_timeout)
        self._clock = clock if clock is not None else time.time
        self._instance = secrets.token_hex(8)
        self._ids: dict[str, CacheKey] = {}
        self._id_of: dict[CacheKey, str] = {}
        self._woken: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}
        #: per entry id, how many writes other instances announced (see get)
        self._generations: dict[str, int] = {}
        self._listener: asyncio.Task[None] | None = None
        #: set while subscribed to other instances' writes (tests and benchmarks wait on it)
        self._subscribed = asyncio.Event()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._nonces = SharedNonces(self._codec, self._instance, self._publish_soon)
        self._publishing: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        where = "cluster" if self._link.is_cluster else "redis"
        return (
            f"RedisTokenCache({where}, prefix={self._prefix[:-3]!r}, "
            f"sealed={self._codec.sealed}, local_entries={len(self._local)})"
        )

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening for other instances' writes; close the pool opened from a URL."""
        self._link.closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        if self._publishing:  # each bounded by operation_timeout
            await asyncio.gather(*self._publishing, return_exceptions=True)
        await self._link.aclose()

    def stats(self) -> RedisCacheStats:
        return RedisCacheStats(
            **self._counts, errors=self._link.errors, local_entries=len(self._local)
        )

    # ---- the TokenCache protocol -----------------------------------------------------

    async def get(self, key: CacheKey) -> CacheEntry | None:
        ident = self._entry_id(key)
        # a write announced while this read is under way makes its result stale: it is
        # then returned, but not kept locally (the GET reply and the announcement arrive
        # on different connections, in no fixed order)
        generation = self._generations.get(ident, 0)
        value = await self._call(lambda redis: redis.get(self._value_name(ident)))
        if value is TROUBLE and self.available():
            # a late reply while Redis still answers (congestion): one more try, since a
            # miss here under the fleet lock would mean a second token request for the entry
            value = await self._call(lambda redis: redis.get(self._value_name(ident)))
        if value is TROUBLE:
            return self._local.peek(key)  # Redis is down: what this process has, if anything
        if value is None:
            self._counts["misses"] += 1
            await self._local.delete(key)
            return None
        try:
            entry = self._codec.decode(key, value) if isinstance(value, bytes) else None
        except Exception:  # a value this codec cannot read is a miss, whatever it holds
            entry = None
        if entry is None:
            # never an exception: a value that does not open is a miss, deleted and refetched
            self._counts["invalid"] += 1
            _log.warning("dropped an unreadable token cache entry %s (moved, altered or sealed "
                         "with a key this instance does not have)", ident)  # fmt: skip
            # only if it is still the value read: another instance may have written since
            await self._call(
                lambda redis: redis.eval(_DELETE_IF_SAME, 1, self._value_name(ident), value)
            )
            return None
        self._counts["hits"] += 1
        if self._generations.get(ident, 0) == generation:
            await self._keep_locally(key, ident, entry)
        return entry

    async def set(self, key: CacheKey, entry: CacheEntry) -> None:
        ident = self._entry_id(key)
        await self._keep_locally(key, ident, entry)
        milliseconds = int((entry.token.expires_at - self._clock()) * 1000)
        if milliseconds > 0:
            value = self._codec.encode(key, entry)
            written = await self._call(
                lambda redis: redis.set(self._value_name(ident), value, px=milliseconds)
            )
            if written is not TROUBLE:
                self._counts["writes"] += 1
                await self._announce(ident)
        self._wake(ident)

    async def delete(self, key: CacheKey) -> None:
        ident = self._entry_id(key)
        await self._local.delete(key)
        self._ids.pop(ident, None)
        if await self._call(lambda redis: redis.delete(self._value_name(ident))) is not TROUBLE:
            await self._announce(ident)

    def lock(self, key: CacheKey) -> RedisLock:
        ident = self._entry_id(key)
        return RedisLock(
            self,
            f"{self._prefix}{{{ident}}}:lock",
            ident,
            timeout=self._lock_timeout,
            wait_timeout=self._wait_timeout,
        )

    # ---- what RedisLock asks of it (LockBackend) -------------------------------------

    async def take(self, name: str, owner: str, milliseconds: int) -> bool | None:
        # a script, not SET NX: a take retried after a late reply finds the lock its first
        # try may have taken, and keeps it
        taken = await self.run_script(TAKE, name, owner, milliseconds)
        return None if taken is None else bool(taken)

    async def run_script(self, script: str, name: str, *args: Any) -> Any:
        result = await self._call(lambda redis: redis.eval(script, 1, name, *args))
        return None if result is TROUBLE else result

    def woken(self, entry: str) -> asyncio.Event:
        event = self._woken.get(entry)
        if event is None:
            event = self._woken[entry] = asyncio.Event()
        return event

    def waiting(self, entry: str, change: int) -> None:
        """A waiter for ``entry`` starts (+1) or stops (-1); the last one forgets its event."""
        count = self._waiting.get(entry, 0) + change
        if count > 0:
            self._waiting[entry] = count
        else:
            self._waiting.pop(entry, None)
            self._woken.pop(entry, None)

    def count(self, counter: str) -> None:
        self._counts[counter] += 1

    # ---- Redis calls -----------------------------------------------------------------

    def _entry_id(self, key: CacheKey) -> str:
        """The entry's id, remembered: hashing the key costs more than the local tier."""
        ident = self._id_of.get(key)
        if ident is None:
            if len(self._id_of) >= 2 * self._local.max_entries:
                self._id_of.clear()  # a bound, not an LRU: recomputing is cheap enough
            ident = self._id_of[key] = entry_id(key)
        return ident

    def _value_name(self, ident: str) -> str:
        return f"{self._prefix}{{{ident}}}:token"

    async def _call(self, call: Callable[[Any], Awaitable[_T]]) -> _T | Trouble:
        if self._listener is None and not self._link.closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        return await self._link.call(call)

    def available(self) -> bool:
        return self._link.available()

    async def _keep_locally(self, key: CacheKey, ident: str, entry: CacheEntry) -> None:
        await self._local.set(key, entry)
        self._ids[ident] = key
        if len(self._ids) > 2 * self._local.max_entries:
            # forget the ids of entries the local tier has evicted since
            self._ids = {i: k for i, k in self._ids.items() if self._local.peek(k) is not None}

    async def _announce(self, ident: str, kind: str = _WRITTEN) -> None:
        message = f"{self._instance} {ident} {kind}"
        await self._call(lambda redis: redis.publish(self._channel, message))

    async def released(self, entry: str) -> None:
        """A lock of this instance was released: its waiters here and elsewhere try again
        now (they would find it still held if woken by the write, which comes first)."""
        self._wake(entry)
        await self._announce(entry, _RELEASED)

    def _wake(self, ident: str) -> None:
        event = self._woken.pop(ident, None)
        if event is not None:
            event.set()

    def share_dpop_nonces(self, nonces: DPoPNonces) -> None:
        """Share the DPoP nonces ``nonces`` is challenged for with the other instances, and
        learn theirs (see :mod:`jwtmint.tokens._redis_nonces`)."""
        self._nonces.attach(nonces)

    def _publish_soon(self, message: str) -> None:
        if self._link.closed:
            return
        task = asyncio.get_running_loop().create_task(
            self._call(lambda redis: redis.publish(self._channel, message))
        )
        # held until done: a task only the loop references may be collected mid-way
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    def _announced(self, data: bytes | str) -> None:
        text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
        instance, ident, kind = [*text.split(" "), "", ""][:3]
        if instance == self._instance:
            return
        if kind == NONCE:
            self._nonces.received(ident)
            return
        if kind != _RELEASED:
            # written by another instance: this one's copy is not the token to serve now
            if len(self._generations) >= 2 * self._local.max_entries:
                self._generations.clear()  # a read under way then keeps a copy: rare, bounded
            self._generations[ident] = self._generations.get(ident, 0) + 1
            key = self._ids.pop(ident, None)
            if key is not None and self._local.discard(key):
                self._counts["invalidations"] += 1
        self._wake(ident)

    async def _listen(self) -> None:
        """Follow the other instances' writes; after any gap (a reconnect) the local tier
        is emptied, since writes announced meanwhile were missed."""
        pause = 0.1
        while not self._link.closed:
            client = self._link.connect()
            if client is None:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            try:
                await self._link.ready(client)
                pubsub = client.pubsub()
            except Exception as exc:
                self._link.trouble(exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            try:
                await bounded(pubsub.subscribe(self._channel), self._link.timeout)
                self._local.clear()
                self._ids.clear()
                self._subscribed.set()
                pause = 0.1
                heard = pinged = time.monotonic()
                while not self._link.closed:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=min(1.0, _PING_EVERY)
                    )
                    now = time.monotonic()
                    if message is not None:
                        heard = now
                        if message.get("type") == "message":
                            self._announced(message["data"])
                    elif now - heard > _SILENT_FOR:
                        # no pong either: a connection that died silently (a proxy, a NAT)
                        # delivers nothing, and the writes announced meanwhile are lost
                        raise TimeoutError("the pub/sub connection went silent")
                    if now - pinged >= _PING_EVERY:
                        pinged = now
                        await bounded(pubsub.ping(), self._link.timeout)
            except Exception as exc:
                # counted and logged; the rest of the cache keeps using Redis meanwhile
                self._link.trouble(exc, rest=False)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
