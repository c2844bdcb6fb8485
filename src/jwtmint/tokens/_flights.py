"""Keyed single-flight for token requests: one request per cache key, renewal times, backoff."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from .._assertion import ClientAssertion
from ..errors import (
    ConfigurationError,
    ManagerNotRunningError,
    TokenEndpointError,
    TokenRequestError,
)
from ._cache import CacheEntry, CacheKey, MemoryTokenCache, TokenCache
from ._metrics import ClientCounters
from ._retry import Deadline, describe, out_of_time
from ._tasks import enter_within, wait_shared
from ._token import Token

__all__ = ["Fetch", "TokenFlights"]

_log = logging.getLogger("jwtmint.tokens")

#: requests the token for a key (client assertion, force_renewal, the flight's deadline): the
#: manager's requester
Fetch = Callable[[CacheKey, ClientAssertion | None, bool, Deadline], Awaitable[Token]]

#: background renewal backs off up to this many seconds between failed tries
BACKGROUND_MAX_BACKOFF = 60.0
#: the share of what is left of a flight's deadline that a lock which gives way is waited for
LOCK_SHARE = 0.5
#: a 401 from a resource forces a renewal at most this often per key (seconds)
FORCED_RENEWAL_GAP = 5.0


class TokenFlights:
    """Token requests in flight, at most one per cache key, and when to start the next.

    Concurrent callers for one key share one request and its result or error.
    A stored token is renewed ``renewal_buffer`` seconds before it expires (less
    a jitter, so that many instances do not renew together), or at half its life
    when it lives no longer than the buffer; until it expires it is served while
    the renewal runs in the background, which backs off when it fails. The
    clients named in ``callers_authenticate`` can make no assertion of their
    own: theirs is renewed only when a caller passes one (that caller is
    served the valid token while the renewal runs with its assertion), and a
    401 never forces a renewal for them. Each flight has ``deadline`` seconds,
    all it waits for included. With a shared cache tier, each request runs
    under the tier's lock, waited for within that deadline, and the tier is
    read again once it is held. Each client's ``counters`` count what happens
    after the caller's own cache lookup (see :mod:`._metrics`).
    """

    def __init__(
        self,
        cache: TokenCache,
        fetch: Fetch,
        *,
        clock: Callable[[], float],
        renewal_buffer: float,
        renewal_jitter: float,
        deadline: float,
        counters: Mapping[str, ClientCounters],
        callers_authenticate: Collection[str] = (),
    ) -> None:
        self._cache = cache
        self._counters = counters
        self._callers_authenticate = frozenset(callers_authenticate)
        self._fetch = fetch
        self._clock = clock
        self._renewal_buffer = renewal_buffer
        self._renewal_jitter = renewal_jitter
        self._deadline = deadline
        # the plain memory cache's get() is its peek() and its lock a no-op: nothing more
        # to ask on a miss (a subclass may add a tier, so the exact type)
        self._shared_tier = type(cache) is not MemoryTokenCache
        # a tier whose lock lets waiters go on without it (RedisTokenCache) is not worth
        # failing for: it gets part of the deadline, and then the request goes on alone
        self._lock_gives_way = getattr(cache, "max_lock_wait", None) is not None
        self._inflight: dict[CacheKey, asyncio.Task[Token]] = {}
        self._reads: dict[CacheKey, asyncio.Future[CacheEntry | None]] = {}
        self._forced: dict[CacheKey, float] = {}
        self._backoff: dict[CacheKey, tuple[int, float]] = {}
        self._running = False
        self._closed = False

    def __len__(self) -> int:
        return len(self._inflight)

    def __contains__(self, key: object) -> bool:
        return key in self._inflight

    # ---- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        """Accept requests from now on (the manager's session is ready)."""
        self._running = True

    def close(self) -> list[asyncio.Task[Any]]:
        """Refuse new requests; the flights still running, for the manager to cancel."""
        self._closed = True
        self._running = False
        return list(self._inflight.values())

    def is_closed(self) -> bool:
        return self._closed

    # ---- serving ---------------------------------------------------------------------

    async def obtain(
        self,
        key: CacheKey,
        peeked: CacheEntry | None,
        force_renewal: bool,
        client_assertion: ClientAssertion | None,
    ) -> Token:
        """A token for ``key`` when process memory had no fresh one (``peeked`` is what
        the cache's ``peek`` gave): from the shared tier, a stale one while it is renewed,
        or a request."""
        entry = peeked
        if force_renewal:
            # the token this instance holds is the one to replace (a shared tier may have a
            # newer one from another instance by the time the lock is held)
            held = self._cache.peek(key)
            return await self._join(key, client_assertion, True, held.token if held else None)
        if entry is None and self._shared_tier:
            if key in self._inflight:
                return await self._join(key, client_assertion, False)  # no tier read needed
            entry = await self._read_shared_tier(key)
        if entry is not None:
            now = self._clock()
            if now < entry.renew_at:
                self._counters[key.client].hits += 1
                return entry.token
            if now < entry.token.expires_at:
                # stale-while-revalidate: this caller does not wait for the renewal
                self._renew_in_background(key, now, client_assertion)
                self._counters[key.client].hits += 1
                return entry.token
        return await self._join(key, client_assertion, False)

    async def _read_shared_tier(self, key: CacheKey) -> CacheEntry | None:
        """The shared tier's entry; callers that miss locally together share one read.

        The first reads inline (no task: this is the path of every shared-tier hit) and
        hands its result to the others through a future; if it is cancelled, they get
        ``None`` and go on to the flight, which reads the tier again under its lock.
        """
        pending = self._reads.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CacheEntry | None] = asyncio.get_running_loop().create_future()
        self._reads[key] = future
        try:
            entry = await self._cache.get(key)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: nobody may be waiting
            else:
                future.set_result(None)
            raise
        else:
            future.set_result(entry)
        finally:
            del self._reads[key]
        return entry

    async def renew_after_refusal(self, key: CacheKey, refused: Token) -> Token | None:
        """The token to retry with after a resource refused ``refused`` (a 401), or ``None``:
        never ``refused`` itself, which the resource would only refuse again.

        One other than ``refused`` already cached, or a renewal in flight, is
        shared: a burst of 401s costs one renewal. ``None`` when no other token
        is to be had: within :data:`FORCED_RENEWAL_GAP` of the last forced
        renewal (while the cached token is valid), when the renewal failed
        (logged), or when the server handed back the refused token; the
        resource's 401 is then the caller's answer.
        """
        entry = self._cache.peek(key)
        cached = entry.token if entry and self._clock() < entry.token.expires_at else None
        counters = self._counters[key.client]
        if cached is not None and cached.access_token != refused.access_token:
            counters.hits += 1
            return cached
        try:
            in_flight = self._inflight.get(key)
            if in_flight is not None:
                counters.misses += 1
                counters.joins += 1
                renewed = await wait_shared(in_flight, self.is_closed)  # on its way
            else:
                now = time.monotonic()
                if cached is not None and now - self._forced.get(key, -1e9) < FORCED_RENEWAL_GAP:
                    # a resource that refuses every token (a wrong audience or scope, not a
                    # stale token) must not drive the authorization server at the API's rate;
                    # with nothing valid cached, the next request would renew anyway
                    return None
                if self._unauthenticated(key, None):
                    # nothing here can authenticate a renewal (only a get_token caller's
                    # assertion can): the 401 is the answer, not a ConfigurationError
                    _log.debug(
                        "no renewal after a 401 for client %r: it renews only with an "
                        "assertion passed to get_token",
                        key.client,
                    )
                    return None
                self._forced[key] = now
                renewed = await self._join(key, None, True, refused)
        except (TokenRequestError, ConfigurationError) as exc:
            # a ConfigurationError too (an assertion service that declined for a client
            # without a key): the adapters promise the resource's 401, not a raise
            _log.warning("renewing the token for client %r after a 401 failed: %s", key.client, exc)
            return None
        return renewed if renewed.access_token != refused.access_token else None

    # ---- one flight per key ----------------------------------------------------------

    def _unauthenticated(self, key: CacheKey, client_assertion: ClientAssertion | None) -> bool:
        """Whether a request for ``key`` could not authenticate: its client renews only with
        a caller's assertion (``callers_authenticate``), and there is none."""
        return client_assertion is None and key.client in self._callers_authenticate

    async def _join(
        self,
        key: CacheKey,
        client_assertion: ClientAssertion | None,
        force_renewal: bool,
        replaced: Token | None = None,
    ) -> Token:
        counters = self._counters[key.client]
        task = self._inflight.get(key)
        if task is None:
            if self._unauthenticated(key, client_assertion):
                # no flight that cannot authenticate: a caller with an assertion would join
                # it, and get its error instead of a token
                raise ConfigurationError(
                    f"client {key.client!r} can only be authenticated by its callers, and its "
                    "token has expired: pass an assertion to get_token(client_assertion=...)"
                )
            task = self._start(
                key, client_assertion, force_renewal, background=False, replaced=replaced
            )
        else:
            counters.joins += 1
        counters.misses += 1  # once a flight is there to wait for: started, or joined
        return await wait_shared(task, self.is_closed)

    def _start(
        self,
        key: CacheKey,
        client_assertion: ClientAssertion | None,
        force_renewal: bool,
        *,
        background: bool,
        replaced: Token | None = None,
    ) -> asyncio.Task[Token]:
        if self._closed:
            raise ManagerNotRunningError("this TokenManager is closed; make a new one")
        if not self._running:
            raise ManagerNotRunningError(
                "TokenManager is not started: use `async with TokenManager(...)` "
                "or `await manager.start()`"
            )
        task = asyncio.get_running_loop().create_task(
            self._request_and_store(key, client_assertion, force_renewal, replaced)
        )
        self._inflight[key] = task
        counters = self._counters[key.client]
        counters.requests += 1
        if background:
            counters.renewals += 1
        task.add_done_callback(functools.partial(self._flight_done, key, background))
        return task

    def _flight_done(self, key: CacheKey, background: bool, task: asyncio.Task[Token]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled():
            return
        error = task.exception()  # also marks it retrieved: waiters may all have gone
        counters = self._counters[key.client]
        if error is None:
            counters.tokens += 1
            self._backoff.pop(key, None)
            return
        counters.failed(error, background=background)
        if background:
            failures = self._backoff.get(key, (0, 0.0))[0] + 1
            wait = self._background_backoff(key, failures, error)
            self._backoff[key] = (failures, self._clock() + wait)
            _log.warning(
                "background renewal of the token for client %r failed (%s); the cached token "
                "is served until it expires, next try in %.1f s",
                key.client,
                describe(error),
                wait,
            )

    # ---- renewal schedule ------------------------------------------------------------

    def _renew_in_background(
        self, key: CacheKey, now: float, client_assertion: ClientAssertion | None = None
    ) -> None:
        if key in self._inflight or not self._running:
            return  # not running (a shared cache can hold this manager's tokens): serve only
        if self._unauthenticated(key, client_assertion):
            return  # a request without a caller's assertion could not authenticate
        backoff = self._backoff.get(key)
        if backoff is not None and now < backoff[1]:
            return
        self._start(key, client_assertion, False, background=True)

    def _background_backoff(self, key: CacheKey, failures: int, error: BaseException) -> float:
        """Seconds before the next background try: 1, 2, 4 ... 60 s with jitter, or the
        server's Retry-After if longer, but never so long that the token expires first."""
        ceiling = min(BACKGROUND_MAX_BACKOFF, 2.0 ** (failures - 1))
        wait = random.uniform(ceiling / 2, ceiling)
        retry_after = error.retry_after if isinstance(error, TokenEndpointError) else None
        if retry_after is not None:
            wait = max(wait, retry_after)
        entry = self._cache.peek(key)
        if entry is not None:
            # leave time for a few more tries before the cached token runs out
            left = entry.token.expires_at - self._clock()
            wait = min(wait, max(1.0, left / 3))
        return wait

    def renew_at(self, token: Token) -> float:
        """When a token received now is renewed (epoch seconds)."""
        now = self._clock()
        lifetime = token.expires_at - now
        buffer = self._renewal_buffer
        if lifetime <= buffer:
            return now + lifetime / 2
        spread = min(buffer * self._renewal_jitter, lifetime - buffer)
        return token.expires_at - buffer - random.uniform(0.0, spread)

    # ---- the flight itself -----------------------------------------------------------

    async def _request_and_store(
        self,
        key: CacheKey,
        client_assertion: ClientAssertion | None,
        force_renewal: bool,
        replaced: Token | None = None,
    ) -> Token:
        """Request and store the token for ``key``; with a shared tier, under its lock, and
        only if the tier holds no fresh token (for a forced renewal: none other than the
        ``replaced`` one, which another instance may have renewed meanwhile)."""
        deadline = Deadline(self._deadline)
        if not self._shared_tier:
            # one process: single-flight is the lock (the memory cache's own lock is a no-op)
            token = await self._fetch(key, client_assertion, force_renewal, deadline)
            return await self._store(key, token)
        lock = self._cache.lock(key)
        held = True
        wait = deadline.left() * (LOCK_SHARE if self._lock_gives_way else 1.0)
        try:
            # bounded (a shared tier's lock may be held by a process that died), and entered
            # in this task, which also exits it: locks that know their holder need that
            await enter_within(lock, wait)
        except (TimeoutError, asyncio.TimeoutError):
            if not self._lock_gives_way:
                raise out_of_time(
                    deadline,
                    key.client,
                    "waiting for the token cache's lock (another instance holds it)",
                ) from None
            _log.warning(
                "waited %.2f s of the deadline for another instance's token request for "
                "client %r; requesting directly",
                wait,
                key.client,
            )
            held = False
        try:
            entry = await self._cache.get(key)
            if (
                entry is not None
                and self._clock() < entry.renew_at
                and (not force_renewal or _renewed_since(entry, replaced))
            ):
                token = entry.token  # another process fetched it while this one waited
            else:
                token = await self._store(
                    key, await self._fetch(key, client_assertion, force_renewal, deadline)
                )
        except BaseException as exc:
            if held:
                await lock.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        if held:
            await lock.__aexit__(None, None, None)
        return token

    async def _store(self, key: CacheKey, token: Token) -> Token:
        await self._cache.set(key, CacheEntry(token, self.renew_at(token)))
        return token


def _renewed_since(entry: CacheEntry, replaced: Token | None) -> bool:
    """Whether ``entry`` holds another token than the one a forced renewal replaces (with
    none known, any token in the tier may be the one to replace)."""
    return replaced is not None and entry.token.access_token != replaced.access_token
