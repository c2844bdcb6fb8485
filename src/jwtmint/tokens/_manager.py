"""TokenManager: named clients, cached tokens, single-flight renewal before expiry."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from .. import __version__
from .._algorithms import get_algorithm
from .._assertion import AssertionSigner, ClientAssertion
from .._keys import SigningKey, load_secret
from ..errors import (
    ConfigurationError,
    DiscoveryError,
    InvalidKeyError,
    ManagerNotRunningError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
    UnknownClientError,
)
from ._cache import CacheEntry, CacheKey, MemoryTokenCache, Parameters, TokenCache, cache_key
from ._client import (
    CLIENT_SECRET_JWT,
    PRIVATE_KEY_JWT,
    ClientCredentialsClient,
    check_parameters,
    check_url,
    normal_resources,
    normal_scope,
)
from ._discovery import check_metadata, discovery_urls
from ._middleware import OriginScope, token_middleware
from ._request import (
    ClientAssertionService,
    Retry,
    Stop,
    TokenRequestParameters,
    credentials,
    post_token_request,
    read_capped,
    request_form,
)
from ._retry import RetryPolicy
from ._token import Token

if TYPE_CHECKING:
    import httpx

__all__ = ["TokenManager", "TokenManagerStats"]

_log = logging.getLogger("jwtmint.tokens")
_T = TypeVar("_T")
_M = TypeVar("_M", bound="TokenManager")

Clock = Callable[[], float]

#: background renewal backs off up to this many seconds between failed tries
_BACKGROUND_MAX_BACKOFF = 60.0
#: a 401 from a resource forces a renewal at most this often per key (seconds)
_FORCED_RENEWAL_GAP = 5.0
#: a client made without the metadata it wanted asks for it again after this many seconds
_METADATA_RETRY_AFTER = 300.0


async def _enter_within(manager: AbstractAsyncContextManager[object], seconds: float) -> None:
    """``await manager.__aenter__()`` in the current task, or TimeoutError after ``seconds``."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            await manager.__aenter__()
    else:  # pragma: no cover - exercised directly by the tests on every version
        await _enter_within_legacy(manager, seconds)


async def _enter_within_legacy(
    manager: AbstractAsyncContextManager[object], seconds: float
) -> None:
    """Python 3.10 has no asyncio.timeout: cancel this task when time is up (as
    async-timeout does), rather than wait_for, which would enter in another task."""
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        await manager.__aenter__()
    except asyncio.CancelledError:
        if expired:
            raise asyncio.TimeoutError from None
        raise
    finally:
        handle.cancel()


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.cancelled() or task.exception() is not None


def _cancelling() -> int:
    """How many cancellations the current task has pending (0 before Python 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return int(cancelling()) if cancelling is not None else 0


@dataclass(frozen=True, slots=True)
class TokenManagerStats:
    """What a :class:`TokenManager` has done, for metrics (``manager.stats()``).

    Cache hits are not counted: counting would cost the hot path more than
    the lookup itself. ``coalesced`` is callers that joined a request already
    in flight (single-flight at work).
    """

    #: token requests started (each may make several HTTP attempts)
    requests: int = 0
    #: HTTP attempts sent to token endpoints, retries included
    attempts: int = 0
    #: tokens received and cached
    tokens: int = 0
    #: requests that ended in an error (refusals and exhausted retries)
    failures: int = 0
    #: renewals started in the background while the cached token was served
    background_renewals: int = 0
    #: background renewals that failed (the cached token was served on)
    background_failures: int = 0
    #: callers that joined a request already in flight
    coalesced: int = 0
    #: requests in flight now
    in_flight: int = 0


class _Resolved:
    """A client made ready to request: its endpoint, and the signer for its assertions.

    ``until`` (monotonic) is set when it was made without the metadata it wanted,
    so that discovery is tried again later rather than never.
    """

    __slots__ = ("signer", "token_endpoint", "until")

    def __init__(
        self, token_endpoint: str, signer: AssertionSigner | None, until: float | None = None
    ) -> None:
        self.token_endpoint = token_endpoint
        self.signer = signer
        self.until = until


class TokenManager:
    """Access tokens for named clients, cached and renewed before they expire.

    ``get_token`` serves a cached token until ``renewal_buffer`` seconds
    before it expires, with no I/O, no lock and no task switch. From then
    until expiry it still serves it, and renews it in the background
    (stale-while-revalidate), at a jittered time so that many instances do
    not renew together. A token that lives no longer than the buffer is
    renewed at half its life. Concurrent requests for one cache key share
    one HTTP request and its result or error (single-flight).

    Failed requests (network errors, timeouts, 5xx, 429) are retried per
    ``retries`` (a :class:`RetryPolicy`, or an int of retries); refusals
    (``invalid_client``, ``invalid_scope``, ...) raise at once. Errors are
    never cached.

    Use it as an async context manager: it owns a pooled
    :class:`aiohttp.ClientSession`, or borrows ``session`` (not closed).
    It belongs to the event loop it was started on. ``clock`` (epoch
    seconds) is the time of assertions, token expiry and renewal; tests
    inject it.
    """

    def __init__(
        self,
        clients: Mapping[str, ClientCredentialsClient],
        *,
        cache: TokenCache | None = None,
        assertion_service: ClientAssertionService | None = None,
        session: aiohttp.ClientSession | None = None,
        renewal_buffer: float = 60.0,
        renewal_jitter: float = 0.1,
        request_timeout: float = 10.0,
        retries: RetryPolicy | int | None = None,
        default_lifetime: float = 300.0,
        clock: Clock | None = None,
        connection_limit: int = 100,
    ) -> None:
        if not isinstance(clients, Mapping):
            raise ConfigurationError(
                "clients must be a mapping of names to ClientCredentialsClient"
            )
        for name, client in clients.items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"client names must be non-empty strings, got {name!r}")
            if not isinstance(client, ClientCredentialsClient):
                raise ConfigurationError(
                    f"client {name!r} must be a ClientCredentialsClient, "
                    f"got {type(client).__name__}"
                )
        _check_seconds("renewal_buffer", renewal_buffer, allow_zero=True)
        _check_seconds("request_timeout", request_timeout)
        _check_seconds("default_lifetime", default_lifetime)
        if not 0 <= renewal_jitter <= 1:
            raise ConfigurationError("renewal_jitter is a fraction of renewal_buffer, 0 to 1")
        if cache is not None and not isinstance(cache, TokenCache):
            raise ConfigurationError(
                "cache must implement TokenCache (peek, get, set, delete, lock)"
            )
        if assertion_service is not None and not isinstance(
            assertion_service, ClientAssertionService
        ):
            raise ConfigurationError(
                "assertion_service must have async get_client_assertion(client_name, parameters)"
            )
        self._clients = MappingProxyType(dict(clients))
        self._cache: TokenCache = cache if cache is not None else MemoryTokenCache()
        # the plain memory cache's get() is its peek(): nothing more to ask on a miss (a
        # subclass may add a tier, so the exact type)
        self._tiered = type(self._cache) is not MemoryTokenCache
        self._service = assertion_service
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise ConfigurationError("session must be an aiohttp.ClientSession")
        self._borrowed_session = session
        self._session: aiohttp.ClientSession | None = None
        self._renewal_buffer = float(renewal_buffer)
        self._renewal_jitter = float(renewal_jitter)
        self._request_timeout = float(request_timeout)
        self._retries = _retry_policy(retries)
        self._default_lifetime = float(default_lifetime)
        self._clock: Clock = clock if clock is not None else time.time
        self._connection_limit = connection_limit
        self._default_keys = {
            name: cache_key(name, c.identity, c.scope, c.resource, c.parameters)
            for name, c in self._clients.items()
        }
        self._inflight: dict[CacheKey, asyncio.Task[Token]] = {}
        self._resolved: dict[str, _Resolved] = {}
        self._resolving: dict[str, asyncio.Task[_Resolved]] = {}
        self._metadata: dict[tuple[str, bool], asyncio.Task[dict[str, Any]]] = {}
        self._forced: dict[CacheKey, float] = {}
        self._backoff: dict[CacheKey, tuple[int, float]] = {}
        self._closed = False
        self._counts = dict.fromkeys(
            ("requests", "attempts", "tokens", "failures", "background_renewals",
             "background_failures", "coalesced"),
            0,
        )  # fmt: skip

    # ---- lifecycle -------------------------------------------------------------------

    async def __aenter__(self: _M) -> _M:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the pooled session (``async with`` does this)."""
        if self._closed:
            raise ManagerNotRunningError("this TokenManager is closed; make a new one")
        if self._session is not None:
            return
        borrowed = self._borrowed_session
        if borrowed is not None and (borrowed.closed or borrowed.connector is None):
            raise ConfigurationError("the session given to TokenManager is closed")
        # a borrowed session lends its connection pool only: its default headers, auth,
        # raise_for_status and middlewares are for its API calls and must not touch
        # token requests (an API key sent to the token endpoint, a 401 turned into an
        # exception before the OAuth error is read)
        self._session = aiohttp.ClientSession(
            connector=borrowed.connector
            if borrowed is not None
            else aiohttp.TCPConnector(limit=self._connection_limit),
            connector_owner=borrowed is None,
            timeout=aiohttp.ClientTimeout(total=self._request_timeout),
            headers={"Accept": "application/json", "User-Agent": f"jwtmint/{__version__}"},
        )

    async def aclose(self) -> None:
        """Cancel requests in flight and close the session, unless it was borrowed."""
        self._closed = True
        pending: list[asyncio.Task[Any]] = [
            *self._inflight.values(),
            *self._resolving.values(),
            *self._metadata.values(),
        ]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()  # a borrowed connector stays open: connector_owner=False

    def __repr__(self) -> str:
        return (
            f"TokenManager(clients={sorted(self._clients)!r}, cache={self._cache!r}, "
            f"in_flight={len(self._inflight)})"
        )

    @property
    def clients(self) -> Mapping[str, ClientCredentialsClient]:
        """The named clients (read-only: a manager's clients are fixed when it is made)."""
        return self._clients

    @property
    def cache(self) -> TokenCache:
        return self._cache

    def stats(self) -> TokenManagerStats:
        """A snapshot of the counters (see :class:`TokenManagerStats`)."""
        return TokenManagerStats(**self._counts, in_flight=len(self._inflight))

    # ---- the hot path ----------------------------------------------------------------

    async def get_token(
        self,
        name: str,
        *,
        force_renewal: bool = False,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        parameters: Mapping[str, str | Sequence[str]] | None = None,
        client_assertion: ClientAssertion | None = None,
    ) -> Token:
        """A valid access token for client ``name``.

        ``scope``, ``resource`` and ``parameters`` override the client's
        (parameters are merged, the request's winning); each combination is
        cached on its own. ``force_renewal`` skips the cache, but joins a
        request already in flight for the same key. ``client_assertion``
        authenticates the request if one is made (it wins over the
        assertion service and the client's own key).
        """
        if scope is None and resource is None and parameters is None:
            key = self._default_keys.get(name)
            if key is None:
                raise UnknownClientError(name, self._clients)
        else:
            key = self._request_key(name, scope, resource, parameters)
        entry = None
        if not force_renewal:
            entry = self._cache.peek(key)
            if entry is not None and self._clock() < entry.renew_at:
                return entry.token
        return await self._unfresh(key, entry, force_renewal, client_assertion)

    async def _unfresh(
        self,
        key: CacheKey,
        entry: CacheEntry | None,
        force_renewal: bool,
        client_assertion: ClientAssertion | None,
    ) -> Token:
        """No fresh token in process memory (``entry`` is what ``peek`` gave): a shared
        tier, a stale token, or a request."""
        if not force_renewal:
            if entry is None and self._tiered:
                entry = await self._cache.get(key)
            if entry is not None:
                now = self._clock()
                if now < entry.renew_at:
                    return entry.token
                if now < entry.token.expires_at:
                    # stale-while-revalidate: this caller does not wait for the renewal
                    self._renew_in_background(key, now)
                    return entry.token
        return await self._join(key, client_assertion, force_renewal)

    def _request_key(
        self,
        name: str,
        scope: str | Sequence[str] | None,
        resource: str | Sequence[str] | None,
        parameters: Mapping[str, str | Sequence[str]] | None,
    ) -> CacheKey:
        client = self._clients.get(name)
        if client is None:
            raise UnknownClientError(name, self._clients)
        try:
            chosen_scope = client.scope if scope is None else normal_scope(scope)
            chosen_resource = client.resource if resource is None else normal_resources(resource)
            chosen_parameters = _merge(client.parameters, check_parameters(parameters))
        except ConfigurationError as exc:
            raise ConfigurationError(f"get_token({name!r}): {exc}") from None
        return cache_key(name, client.identity, chosen_scope, chosen_resource, chosen_parameters)

    # ---- single-flight ---------------------------------------------------------------

    async def _join(
        self, key: CacheKey, client_assertion: ClientAssertion | None, force_renewal: bool
    ) -> Token:
        task = self._inflight.get(key)
        if task is None:
            task = self._start_flight(key, client_assertion, force_renewal, background=False)
        else:
            self._counts["coalesced"] += 1
        return await self._wait(task)

    async def _wait(self, task: asyncio.Task[_T]) -> _T:
        """Await a shared task; shield it, since one impatient caller's cancellation
        must not cancel the request everyone else waits for."""
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and self._closed and not _cancelling():
                # the manager closed under this caller, who was not cancelled: say so
                raise ManagerNotRunningError(
                    "the TokenManager was closed while this request was in flight"
                ) from None
            raise

    def _start_flight(
        self,
        key: CacheKey,
        client_assertion: ClientAssertion | None,
        force_renewal: bool,
        *,
        background: bool,
    ) -> asyncio.Task[Token]:
        if self._closed:
            raise ManagerNotRunningError("this TokenManager is closed; make a new one")
        if self._session is None:
            raise ManagerNotRunningError(
                "TokenManager is not started: use `async with TokenManager(...)` "
                "or `await manager.start()`"
            )
        task = asyncio.get_running_loop().create_task(
            self._refresh(key, client_assertion, force_renewal)
        )
        self._inflight[key] = task
        self._counts["requests"] += 1
        if background:
            self._counts["background_renewals"] += 1
        task.add_done_callback(functools.partial(self._landed, key, background))
        return task

    def _landed(self, key: CacheKey, background: bool, task: asyncio.Task[Token]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled():
            return
        error = task.exception()  # also marks it retrieved: waiters may all have gone
        if error is None:
            self._counts["tokens"] += 1
            self._backoff.pop(key, None)
            return
        self._counts["failures"] += 1
        if background:
            self._counts["background_failures"] += 1
            failures = self._backoff.get(key, (0, 0.0))[0] + 1
            wait = self._background_backoff(key, failures, error)
            self._backoff[key] = (failures, self._clock() + wait)
            _log.warning(
                "background renewal of the token for client %r failed (%s); the cached token "
                "is served until it expires, next try in %.1f s",
                key.client,
                _describe(error),
                wait,
            )

    def _background_backoff(self, key: CacheKey, failures: int, error: BaseException) -> float:
        """Seconds before the next background try: 1, 2, 4 ... 60 s with jitter, or the
        server's Retry-After if longer, but never so long that the token expires first."""
        ceiling = min(_BACKGROUND_MAX_BACKOFF, 2.0 ** (failures - 1))
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

    def _renew_in_background(self, key: CacheKey, now: float) -> None:
        if key in self._inflight or self._closed or self._session is None:
            return  # not running (a shared cache can hold this manager's tokens): serve only
        backoff = self._backoff.get(key)
        if backoff is not None and now < backoff[1]:
            return
        self._start_flight(key, None, False, background=True)

    async def _refresh(
        self, key: CacheKey, client_assertion: ClientAssertion | None, force_renewal: bool
    ) -> Token:
        if not self._tiered:
            # one process: single-flight is the lock (the memory cache's own lock is a no-op)
            return await self._fetch_and_store(key, client_assertion, force_renewal)
        lock = self._cache.lock(key)
        deadline = self._retries.deadline
        try:
            # bounded (a shared tier's lock may be held by a process that died), and entered
            # in this task, which also exits it: locks that know their holder need that
            await _enter_within(lock, deadline)
        except (TimeoutError, asyncio.TimeoutError):
            raise TokenEndpointTimeout(
                f"waited {deadline:.0f} s for the token cache's lock on client "
                f"{key.client!r}; another instance holds it",
                client=key.client,
            ) from None
        try:
            entry = None if force_renewal else await self._cache.get(key)
            if entry is not None and self._clock() < entry.renew_at:
                token = entry.token  # another process fetched it while this one waited
            else:
                token = await self._fetch_and_store(key, client_assertion, force_renewal)
        except BaseException as exc:
            await lock.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await lock.__aexit__(None, None, None)
        return token

    async def _fetch_and_store(
        self, key: CacheKey, client_assertion: ClientAssertion | None, force_renewal: bool
    ) -> Token:
        token = await self._request_token(key, client_assertion, force_renewal)
        await self._cache.set(key, CacheEntry(token, self._renew_at(token)))
        return token

    def _renew_at(self, token: Token) -> float:
        now = self._clock()
        lifetime = token.expires_at - now
        buffer = self._renewal_buffer
        if lifetime <= buffer:
            return now + lifetime / 2
        spread = min(buffer * self._renewal_jitter, lifetime - buffer)
        return token.expires_at - buffer - random.uniform(0.0, spread)

    # ---- one token request, with retries ---------------------------------------------

    async def _request_token(
        self, key: CacheKey, client_assertion: ClientAssertion | None, force_renewal: bool
    ) -> Token:
        name = key.client
        client = self._clients[name]
        resolved = await self._resolve(name, client)
        parameters = TokenRequestParameters(
            key.scope, key.resource, dict(key.parameters), force_renewal
        )
        form = request_form(key)
        session = self._session
        assert session is not None
        policy = self._retries
        if client_assertion is not None and self._service is None and resolved.signer is None:
            # the caller's assertion is all there is, and a retry would replay its jti
            policy = RetryPolicy(attempts=1, deadline=policy.deadline)
        last: TokenEndpointError | None = None

        async def attempt(timeout: float) -> Token:
            nonlocal last
            # a fresh assertion (new jti) for every attempt: servers reject one they have
            # seen, so the caller's own assertion is used for the first attempt only (every
            # later attempt follows a failed one, which set ``last``)
            passed = client_assertion if last is None else None
            try:
                auth_form, headers = await credentials(
                    name, client, resolved.signer, self._service, parameters, passed
                )
            except ConfigurationError:
                if last is None:
                    raise
                # nothing can authenticate another attempt (the service declined, and the
                # caller's assertion was spent): the endpoint's error is the one to report
                raise Stop(last) from None
            self._counts["attempts"] += 1
            _log.debug("token request for client %r to %s", name, resolved.token_endpoint)
            try:
                return await post_token_request(
                    session,
                    resolved.token_endpoint,
                    form + auth_form,
                    headers,
                    timeout=timeout,
                    client=name,
                    requested_scope=key.scope,
                    now=self._clock(),
                    default_lifetime=self._default_lifetime,
                )
            except Retry as retry:
                last = retry.error
                raise

        return await self._retrying(attempt, policy)

    async def _retrying(self, attempt: Callable[[float], Awaitable[_T]], policy: RetryPolicy) -> _T:
        started = time.monotonic()
        number = 0
        while True:
            number += 1
            left = policy.deadline - (time.monotonic() - started)
            try:
                return await attempt(max(0.001, min(self._request_timeout, left)))
            except Retry as retry:
                error = retry.error
                delay = policy.delay(number, error.retry_after)
                elapsed = time.monotonic() - started
                if number >= policy.attempts or elapsed + delay >= policy.deadline:
                    raise _final(error, number, elapsed) from None
                _log.info("retrying in %.2f s after %s", delay, _describe(error))
                await asyncio.sleep(delay)
            except Stop as stop:
                elapsed = time.monotonic() - started
                error = _final(stop.error, number - 1, elapsed)
                error.args = (
                    f"{error.args[0]}; nothing could authenticate another attempt (the caller's "
                    "assertion was used, and the assertion service declined)",
                )
                raise error from None
            except TokenRequestError as error:
                error.attempts = number
                raise

    # ---- discovery and signers -------------------------------------------------------

    async def _resolve(self, name: str, client: ClientCredentialsClient) -> _Resolved:
        resolved = self._resolved.get(name)
        if resolved is not None and (resolved.until is None or time.monotonic() < resolved.until):
            return resolved
        task = self._resolving.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._build_resolved(client))
            self._resolving[name] = task
            task.add_done_callback(functools.partial(self._resolving_done, name))
        return await self._wait(task)

    def _resolving_done(self, name: str, task: asyncio.Task[_Resolved]) -> None:
        self._resolving.pop(name, None)
        if not task.cancelled() and task.exception() is None:
            self._resolved[name] = task.result()

    async def _build_resolved(self, client: ClientCredentialsClient) -> _Resolved:
        metadata: dict[str, Any] | None = None
        endpoint = client.token_endpoint
        until: float | None = None
        if client.issuer is not None and endpoint is None:
            metadata = await self._discover(client.issuer, optional=False)
            endpoint = metadata["token_endpoint"]
            try:
                # checked per client: clients sharing an issuer may differ on plain http
                check_url(
                    "the discovered token_endpoint", endpoint, allow_http=client.allow_insecure_http
                )
            except ConfigurationError as exc:
                raise DiscoveryError(f"issuer {client.issuer!r}: {exc}") from None
        elif client.issuer is not None and client.uses_assertion and not client.signing_algorithm:
            # the endpoint is known; the metadata would only say which algorithms the server
            # takes: one short try, and without it the key's own algorithm (asked again later)
            try:
                metadata = await self._discover(client.issuer, optional=True)
            except DiscoveryError as exc:
                _log.debug("no metadata for %r (%s); signing with the key's algorithm", client, exc)
                until = time.monotonic() + _METADATA_RETRY_AFTER
        assert endpoint is not None
        return _Resolved(endpoint, _signer(client, endpoint, metadata, self._clock), until)

    async def _discover(self, issuer: str, *, optional: bool) -> dict[str, Any]:
        # keyed by how hard to try too: a client that needs the endpoint must not join, and
        # inherit the failure of, a single try made for a client that only wanted the algorithms
        slot = (issuer, optional)
        if optional:
            # a lookup that must succeed, done or under way, serves an optional one too
            required = self._metadata.get((issuer, False))
            if required is not None and not (required.done() and _failed(required)):
                slot = (issuer, False)
        task = self._metadata.get(slot)
        if task is None or (task.done() and _failed(task)):
            policy = RetryPolicy(attempts=1) if slot[1] else self._retries
            task = asyncio.get_running_loop().create_task(self._fetch_metadata(issuer, policy))
            self._metadata[slot] = task
        return await self._wait(task)

    async def _fetch_metadata(self, issuer: str, policy: RetryPolicy) -> dict[str, Any]:
        """RFC 8414 / OpenID Connect Discovery metadata; each well-known URL in turn."""
        session = self._session
        assert session is not None

        async def attempt(timeout: float) -> dict[str, Any]:
            problems: list[str] = []
            transient = False
            for url in discovery_urls(issuer):
                try:
                    async with session.get(
                        url,
                        timeout=aiohttp.ClientTimeout(total=timeout),
                        allow_redirects=False,
                        middlewares=(),
                    ) as response:
                        status, body = response.status, await read_capped(response)
                except (TimeoutError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
                    problems.append(f"{url}: {type(exc).__name__}")
                    transient = True
                    continue  # the other well-known URL may answer
                if status != 200 or body is None:
                    problems.append(f"{url} answered HTTP {status}")
                    transient = transient or status >= 500 or status == 429
                    continue
                checked = check_metadata(issuer, url, body)
                if isinstance(checked, str):
                    raise DiscoveryError(checked)
                return checked
            error = DiscoveryError(
                f"no authorization server metadata for issuer {issuer!r} ("
                + "; ".join(problems)
                + "); check the issuer, or configure token_endpoint="
            )
            if transient:
                raise Retry(error)
            raise error

        return await self._retrying(attempt, policy)

    # ---- attaching tokens to API calls -----------------------------------------------

    def middleware(
        self,
        name: str,
        *,
        origins: Iterable[str] | None = None,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        parameters: Mapping[str, str | Sequence[str]] | None = None,
    ) -> aiohttp.ClientMiddlewareType:
        """An aiohttp client middleware that sends client ``name``'s token.

        It sets ``Authorization`` on requests to ``origins`` (``scheme://host[:port]``).
        Without them: the origins of the client's http(s) ``resource`` values,
        else the origin of the first request it sees; a redirect elsewhere
        never gets the token. On a 401 it renews the token once and retries
        the request once (unless its body was a stream, which cannot be sent
        twice).
        """
        key = self._request_key(name, scope, resource, parameters)  # unknown names raise
        return token_middleware(self, key, OriginScope(origins, key.resource))

    def httpx_auth(
        self,
        name: str,
        *,
        origins: Iterable[str] | None = None,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        parameters: Mapping[str, str | Sequence[str]] | None = None,
    ) -> httpx.Auth:
        """The same as :meth:`middleware`, as an ``httpx.Auth`` for ``httpx.AsyncClient``
        (needs httpx installed)."""
        key = self._request_key(name, scope, resource, parameters)  # unknown names raise
        try:
            from ._httpx import TokenAuth
        except ImportError:  # httpx is optional
            raise ConfigurationError("httpx_auth needs httpx: pip install httpx") from None
        return TokenAuth(self, key, OriginScope(origins, key.resource))

    async def token_for_key(self, key: CacheKey) -> Token:
        """The token for an exact cache key (the middleware's way in)."""
        entry = self._cache.peek(key)
        if entry is not None and self._clock() < entry.renew_at:
            return entry.token
        return await self._unfresh(key, entry, False, None)

    async def renew_after_401(self, key: CacheKey, failed: Token) -> Token | None:
        """The token to retry with after a resource refused ``failed``, or ``None``.

        One other than ``failed`` already cached, or a renewal in flight, is
        shared: a burst of 401s costs one renewal. ``None`` when the renewal
        failed (logged: the resource's 401 is the caller's answer).
        """
        entry = self._cache.peek(key)
        cached = entry.token if entry and self._clock() < entry.token.expires_at else None
        if cached is not None and cached.access_token != failed.access_token:
            return cached
        try:
            in_flight = self._inflight.get(key)
            if in_flight is not None:
                return await self._wait(in_flight)  # a renewal is on its way: share it
            now = time.monotonic()
            if cached is not None and now - self._forced.get(key, -1e9) < _FORCED_RENEWAL_GAP:
                # a resource that refuses every token (a wrong audience or scope, not a stale
                # token) must not drive the authorization server at the API's request rate
                return cached
            self._forced[key] = now
            return await self._join(key, None, True)
        except TokenRequestError as exc:
            _log.warning("renewing the token for client %r after a 401 failed: %s", key.client, exc)
            return None


def _signer(
    client: ClientCredentialsClient,
    endpoint: str,
    metadata: Mapping[str, Any] | None,
    clock: Clock,
) -> AssertionSigner | None:
    if not client.uses_assertion:
        return None
    key: SigningKey
    if client.auth_method == CLIENT_SECRET_JWT:
        secret = client.client_secret
        assert secret is not None
        algorithm = client.signing_algorithm or _server_choice(metadata, "HS256", secret)
        key = load_secret(secret, algorithm)
    else:
        assert client.auth_method == PRIVATE_KEY_JWT
        if client.private_key is None:
            return None  # its assertions come from the ClientAssertionService
        key = client.private_key
        algorithm = client.signing_algorithm or _server_choice(metadata, key.algorithm, key)
    # the issuer, not the endpoint, is the audience (draft-ietf-oauth-rfc7523bis;
    # CVE-2025-27370/27371 abused endpoint audiences)
    audience = client.audience or client.issuer or endpoint
    return AssertionSigner(
        key,
        client.client_id,
        audience,
        algorithm=algorithm,
        lifetime=client.assertion_lifetime,
        clock=clock,  # one time source for assertions and token expiry
    )


def _server_choice(
    metadata: Mapping[str, Any] | None, default: str, key: SigningKey | str | bytes
) -> str:
    """The key's default algorithm, or the first one the server lists that the key can do."""
    listed = (metadata or {}).get("token_endpoint_auth_signing_alg_values_supported")
    if not isinstance(listed, list) or not listed or default in listed:
        return default
    for name in listed:
        if not isinstance(name, str) or name == "none":
            continue
        try:
            algorithm = get_algorithm(name)
            algorithm.check_key(load_secret(key, name) if not isinstance(key, SigningKey) else key)
        except (InvalidKeyError, ValueError):
            continue
        return algorithm.name
    raise ConfigurationError(
        f"the server lists token_endpoint_auth_signing_alg_values_supported={listed!r}, "
        f"and the client's key can sign none of them; set signing_algorithm= or change the key"
    )


def _merge(base: Parameters, override: Parameters) -> Parameters:
    if not override:
        return base
    merged = dict(base)
    merged.update(override)
    return tuple(sorted(merged.items()))


def _retry_policy(retries: RetryPolicy | int | None) -> RetryPolicy:
    if retries is None:
        return RetryPolicy()
    if isinstance(retries, RetryPolicy):
        return retries
    if type(retries) is int and retries >= 0:
        return RetryPolicy(attempts=retries + 1)
    raise ConfigurationError(f"retries must be a RetryPolicy or an int >= 0, got {retries!r}")


def _check_seconds(name: str, value: object, *, allow_zero: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or (value == 0 and not allow_zero)
        or value != value
        or value == float("inf")
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")


def _describe(error: BaseException) -> str:
    if isinstance(error, TokenRequestError) and error.error:
        return f"{type(error).__name__}: {error.error}"
    return f"{type(error).__name__}: {error}"


def _final(error: TokenEndpointError, attempts: int, elapsed: float) -> TokenEndpointError:
    error.attempts = attempts
    note = f" (gave up after {attempts} attempt{'s' * (attempts > 1)} in {elapsed:.1f} s"
    if error.retry_after is not None:
        note += f"; the server asked to retry after {error.retry_after:.0f} s"
    error.args = (f"{error.args[0]}{note})",)
    return error
