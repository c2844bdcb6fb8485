"""TokenManager: the facade over named clients, their cached tokens and the HTTP adapters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from .. import __version__
from .._assertion import ClientAssertion
from ..errors import ConfigurationError, ManagerNotRunningError, UnknownClientError
from ._cache import CacheKey, MemoryTokenCache, TokenCache, peeker
from ._client import ClientCredentialsClient, request_key
from ._config import ConfigSource, PathName, manager_from_config
from ._credentials import ClientAssertionService
from ._dpop import ApiProofs, DPoPNonces
from ._flights import TokenFlights
from ._metrics import ClientCounters, TokenManagerStats, snapshot
from ._middleware import OriginScope, token_middleware
from ._requester import TokenRequester
from ._resolve import ClientResolver
from ._retry import Deadline, RetryPolicy
from ._source import TokenSource
from ._token import Token

if TYPE_CHECKING:
    import httpx
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ._otel import Telemetry

__all__ = ["TokenManager", "TokenManagerStats"]

_M = TypeVar("_M", bound="TokenManager")

Clock = Callable[[], float]


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

    :meth:`stats` counts per client (hits, misses, requests, renewals,
    joins, failures by error code). With ``opentelemetry-api`` installed
    (``jwtmint[otel]``) the manager reports to the meter and tracer named
    ``jwtmint`` of ``meter_provider`` and ``tracer_provider`` (default: the
    global ones); the instruments are listed in :mod:`jwtmint.tokens._otel`.
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
        connection_limit: int | None = 100,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
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
        if connection_limit is not None and (
            type(connection_limit) is not int or connection_limit < 0
        ):
            raise ConfigurationError(
                "connection_limit must be an int >= 0 (0 or None: no limit), "
                f"got {connection_limit!r}"
            )
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
        self._peek = peeker(self._cache)
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise ConfigurationError("session must be an aiohttp.ClientSession")
        self._borrowed_session = session
        self._session: aiohttp.ClientSession | None = None
        self._request_timeout = float(request_timeout)
        self._connection_limit = connection_limit
        self._clock: Clock = clock if clock is not None else time.time
        policy = _retry_policy(retries)
        # the latest DPoP-Nonce per origin, for token requests and API calls alike; a shared
        # cache (RedisTokenCache) shares them with the other instances
        self._nonces = DPoPNonces()
        share = getattr(self._cache, "share_dpop_nonces", None)
        if callable(share) and any(c.dpop is not None for c in self._clients.values()):
            share(self._nonces)
        # one closed state, the flights': the resolver's waiters ask it too
        self._resolver = ClientResolver(
            policy, self._request_timeout, self._clock, closed=lambda: self._flights.is_closed()
        )
        self._requester = TokenRequester(
            self._clients,
            self._resolver,
            assertion_service,
            retries=policy,
            request_timeout=self._request_timeout,
            default_lifetime=float(default_lifetime),
            clock=self._clock,
            nonces=self._nonces,
        )
        # per client: its default cache key (the hot path's one dict lookup) and its stats
        self._counters = {
            name: ClientCounters(request_key(name, client))
            for name, client in self._clients.items()
        }
        self._requester.telemetry = _telemetry(self._counters, meter_provider, tracer_provider)
        self._flights = TokenFlights(
            self._cache,
            self._request,
            clock=self._clock,
            renewal_buffer=float(renewal_buffer),
            renewal_jitter=float(renewal_jitter),
            deadline=policy.deadline,
            counters=self._counters,
            callers_authenticate=()
            if assertion_service is not None
            else [name for name, client in self._clients.items() if client.needs_assertions],
        )

    @classmethod
    def from_config(
        cls: type[_M], source: ConfigSource, *, base_dir: PathName | None = None, **settings: Any
    ) -> _M:
        """A manager (not started) for a clients file's (or mapping's) clients and [manager]
        settings; keyword arguments (``cache=``, ...) add to those and win. Relative paths
        resolve against ``base_dir`` (default: the file's directory). Mistakes raise
        :class:`~jwtmint.errors.ConfigurationError` naming file, client and field."""
        return manager_from_config(cls, source, base_dir=base_dir, overrides=settings)

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
        if self._flights.is_closed():
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
            else aiohttp.TCPConnector(limit=self._connection_limit or 0),
            connector_owner=borrowed is None,
            timeout=aiohttp.ClientTimeout(total=self._request_timeout),
            headers={"Accept": "application/json", "User-Agent": f"jwtmint/{__version__}"},
        )
        self._flights.open()

    async def aclose(self) -> None:
        """Cancel requests in flight and close the session, unless it was borrowed."""
        pending: list[asyncio.Task[Any]] = [*self._flights.close(), *self._resolver.pending()]
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
            f"in_flight={len(self._flights)})"
        )

    @property
    def clients(self) -> Mapping[str, ClientCredentialsClient]:
        """The named clients (read-only: a manager's clients are fixed when it is made)."""
        return self._clients

    @property
    def cache(self) -> TokenCache:
        return self._cache

    def stats(self) -> TokenManagerStats:
        """A snapshot of the counters, in total and per client (``stats().clients[name]``,
        a :class:`ClientStats`): see :class:`TokenManagerStats` for what adds up."""
        return snapshot(
            self._counters,
            self._cache,
            self._clock,
            attempts=self._requester.attempts,
            in_flight=len(self._flights),
            dpop_nonces=self._nonces.updates,
        )

    # ---- tokens ----------------------------------------------------------------------

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
            counters = self._counters.get(name)
            if counters is None:
                raise UnknownClientError(name, self._clients)
            key = counters.key
        else:
            key = self._key(name, scope, resource, parameters)
            counters = self._counters[name]
        entry = None
        if not force_renewal:
            # the hot path: a dict lookup, a clock read and a count, no await on I/O, no lock
            entry = self._peek(key)
            if entry is not None and self._clock() < entry.renew_at:
                counters.hits += 1
                return entry.token
        return await self._flights.obtain(key, entry, force_renewal, client_assertion)

    def _key(
        self,
        name: str,
        scope: str | Sequence[str] | None,
        resource: str | Sequence[str] | None,
        parameters: Mapping[str, str | Sequence[str]] | None,
    ) -> CacheKey:
        client = self._clients.get(name)
        if client is None:
            raise UnknownClientError(name, self._clients)
        return request_key(name, client, scope, resource, parameters)

    async def _request(
        self,
        key: CacheKey,
        client_assertion: ClientAssertion | None,
        force_renewal: bool,
        deadline: Deadline,
    ) -> Token:
        session = self._session
        if session is None:  # closed while the flight was being set up
            raise ManagerNotRunningError("this TokenManager is closed; make a new one")
        return await self._requester.request(
            session, key, client_assertion, force_renewal, deadline
        )

    # ---- attaching tokens to API calls -----------------------------------------------

    def token_source(
        self,
        name: str,
        *,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        parameters: Mapping[str, str | Sequence[str]] | None = None,
    ) -> TokenSource:
        """Client ``name``'s token for one scope/resource/parameters choice, as an object
        to hand to an HTTP adapter of your own (``current()``, ``renew_after_refusal()``)."""
        key = self._key(name, scope, resource, parameters)  # unknown names raise
        signer = self._clients[name].dpop
        dpop = ApiProofs(signer, self._nonces) if signer is not None else None
        return TokenSource(key, self._peek, self._flights, self._clock, dpop, self._counters[name])

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
        the request once with the new token, never with the refused one
        (and not when its body was a stream, which cannot be sent twice).
        For a DPoP client each request (and retry) carries a fresh proof
        bound to the method, URL and token; nonces are learned from every
        response, and a ``use_dpop_nonce`` challenge is met by one retry with
        a new proof before any renewal.
        """
        source = self.token_source(name, scope=scope, resource=resource, parameters=parameters)
        return token_middleware(source, self._origin_scope(name, origins, source))

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
        source = self.token_source(name, scope=scope, resource=resource, parameters=parameters)
        try:
            from ._httpx import TokenAuth
        except ImportError:  # httpx is optional
            raise ConfigurationError("httpx_auth needs httpx: pip install httpx") from None
        return TokenAuth(source, self._origin_scope(name, origins, source))

    def _origin_scope(
        self, name: str, origins: Iterable[str] | None, source: TokenSource
    ) -> OriginScope:
        insecure = self._clients[name].allow_insecure_http
        return OriginScope(origins, source.key.resource, allow_http=insecure)


def _telemetry(
    counters: Mapping[str, ClientCounters],
    meter_provider: MeterProvider | None,
    tracer_provider: TracerProvider | None,
) -> Telemetry | None:
    """OpenTelemetry instruments and tracer for the manager, or None without opentelemetry-api
    (imported here, when a manager is made: never when jwtmint is imported)."""
    try:
        from ._otel import Telemetry
    except ImportError:
        if meter_provider is not None or tracer_provider is not None:
            raise ConfigurationError(
                "meter_provider and tracer_provider need opentelemetry-api: "
                "pip install 'jwtmint[otel]'"
            ) from None
        return None
    return Telemetry(counters, meter_provider, tracer_provider)


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
