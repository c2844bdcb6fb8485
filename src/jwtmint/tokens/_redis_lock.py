"""One token request per cache entry across a fleet: a Redis lock with an owner, kept alive.

``SET lock owner NX PX timeout`` takes it; only the owner may extend or
release it (compare-and-set in Lua, as redis-py's ``Lock`` does), so an
instance whose lock expired never deletes the next owner's. The owner extends
it every third of ``timeout`` while its token request runs: a slow
authorization server never gets a second request, and a lock whose owner
died expires by itself. Those that lose wait, woken when the entry is written
and again when it is released (or polling with backoff), then try again: once they hold the lock the
manager reads the entry the winner stored and makes no request. Past
``wait_timeout`` a waiter goes on without the lock rather than fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Protocol

__all__ = ["EXTEND", "RELEASE", "TAKE", "LockBackend", "RedisLock"]

_log = logging.getLogger("jwtmint.tokens")

#: KEYS[1] the lock, ARGV[1] the owner value, ARGV[2] milliseconds: take it if it is free,
#: or keep it if it is already ours (a retried take whose first reply came too late)
TAKE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
if redis.call('get', KEYS[1]) == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return 1
end
return 0
"""
#: KEYS[1] the lock, ARGV[1] the owner value: delete it only if it is still ours
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
#: ... ARGV[2] milliseconds: extend it only if it is still ours
EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

#: releases under way (strong references, so that none is collected before it is done)
_releasing: set[asyncio.Task[None]] = set()

#: first and longest pause between tries of a waiter (seconds)
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.2


class LockBackend(Protocol):
    """What a :class:`RedisLock` needs of its cache: Redis calls that never raise (they
    answer ``None`` on Redis trouble, which the cache counts and logs), a wake-up per
    entry, and counters."""

    async def take(self, name: str, owner: str, milliseconds: int) -> bool | None: ...

    def available(self) -> bool: ...

    async def run_script(self, script: str, name: str, *args: Any) -> Any: ...

    async def released(self, entry: str) -> None: ...

    def woken(self, entry: str) -> asyncio.Event: ...

    def waiting(self, entry: str, change: int) -> None: ...

    def count(self, counter: str) -> None: ...


class RedisLock:
    """The async context manager ``RedisTokenCache.lock(key)`` returns; ``owned`` says
    whether this instance holds the lock (False: it waited out, or Redis failed)."""

    __slots__ = ("_backend", "_entry", "_keeper", "_name", "_owner", "_timeout", "_wait", "owned")

    def __init__(
        self, backend: LockBackend, name: str, entry: str, *, timeout: float, wait_timeout: float
    ) -> None:
        self._backend = backend
        self._name = name
        self._entry = entry
        self._timeout = timeout
        self._wait = wait_timeout
        self._owner = secrets.token_hex(16)
        self._keeper: asyncio.Task[None] | None = None
        self.owned = False

    async def __aenter__(self) -> RedisLock:
        try:
            await self._acquire()
        except BaseException:
            # cancelled (the manager closed, or its own bound ran out) while a take may have
            # reached Redis: give back what may be ours rather than leave it until it expires
            self._release_soon()
            raise
        return self

    async def _acquire(self) -> None:
        backend = self._backend
        milliseconds = max(1, int(self._timeout * 1000))
        deadline = time.monotonic() + self._wait
        pause = _FIRST_PAUSE
        waited = False
        backend.waiting(self._entry, +1)
        try:
            while True:
                taken = await backend.take(self._name, self._owner, milliseconds)
                if taken is None and not backend.available():
                    return  # Redis is down: request without the lock (counted, logged)
                if taken:
                    self.owned = True
                    backend.count("locks_taken")
                    loop = asyncio.get_running_loop()
                    self._keeper = loop.create_task(self._keep(milliseconds))
                    return
                if not waited and taken is not None:
                    waited = True
                    backend.count("lock_waits")
                left = deadline - time.monotonic()
                if left <= 0:
                    backend.count("lock_waits_expired")
                    _log.warning(
                        "waited %.1f s for another instance's token request; requesting directly",
                        self._wait,
                    )
                    return
                await _wait_for_event(backend.woken(self._entry), min(pause, left))
                pause = min(pause * 2, _LONGEST_PAUSE)
        finally:
            backend.waiting(self._entry, -1)

    async def _keep(self, milliseconds: int) -> None:
        while True:
            await asyncio.sleep(self._timeout / 3)
            kept = await self._backend.run_script(EXTEND, self._name, self._owner, milliseconds)
            if kept == 0:
                self._backend.count("locks_lost")
                _log.warning("lost the token cache lock of entry %s (it expired)", self._entry)
                return

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
        if self.owned:
            # in a task of its own, shielded: a cancellation of this one must not leave the
            # lock held until it expires
            await asyncio.shield(self._release_soon())

    def _release_soon(self) -> asyncio.Task[None]:
        self.owned = False
        task = asyncio.get_running_loop().create_task(self._release())
        _releasing.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(_releasing.discard)
        return task

    async def _release(self) -> None:
        await self._backend.run_script(RELEASE, self._name, self._owner)
        await self._backend.released(self._entry)


async def _wait_for_event(event: asyncio.Event, seconds: float) -> None:
    waiter: Awaitable[Any] = event.wait()
    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
        await asyncio.wait_for(waiter, seconds)
